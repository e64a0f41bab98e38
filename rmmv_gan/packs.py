"""Model packs: a folder with a manifest (`pack.json`), two models, and preset w files.

The manifest says everything about one pair of trained models that the pipeline needs and
that code must not assume (which layers carry what belongs to a trained model, not to
rmmv-gan): the sprite model and its sheet layout, the face model and where the head is cut,
named layer groups, archetypes, the emotions of the face sheet, projection settings. Field by
field: docs/packs.md.

Presets are w files named in the manifest by preset name: `presets/<model>/<name>.npy`.

`load_pack(dir)` reads and checks the manifest (structure, files); `open_pack(dir, device)`
(dir None: the embedded default pack, DEFAULT_PACK) also loads both models and checks everything against them (layer indices, preset shapes).
Every problem is a `PackError` whose message starts with the field it is about.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .encoder import EncoderFileError, load_encoder
from .face_refiner import FaceRefinerFileError, load_face_refiner
from .fileio import atomic_write_bytes
from .latent import check_psi, load_w
from .models import ModelFileError, convert, load_discriminator, load_generator
from .projector import LOSSES
from .sheets import SheetLayout

MANIFEST = "pack.json"
FORMAT = "rmmv-gan-pack"
MODELS = ("sprite", "face")
MIX_MODES = ("replace", "offset")
NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]{0,63}")  # whole names only: fullmatch
# Output sizes in pixels: MV/MZ use 48 and 144; the bounds keep a typo from asking for
# sheets of gigabytes.
FRAME_SIZE_RANGE = (8, 512)
FACE_SIZE_RANGE = (16, 1024)
# The pack that ships inside the package; `open_pack(None)` opens it.
DEFAULT_PACK = Path(__file__).resolve().parent / "packs" / "default"


def _request_limit(key: str):
    """A request field's limit (rmmv_gan.pipeline.LIMITS): a pack's defaults obey the same
    bounds as a request. Imported late: the pipeline imports this module."""
    from .pipeline import LIMITS

    return LIMITS[key]


def _within(value, key: str, where: str):
    low, high = _request_limit(key).bounds
    if not low <= value <= high:
        _fail(where, f"{value} is outside [{low}, {high}]")
    return value


class PackError(ValueError):
    """A pack that cannot be used; the message names the field."""


def _fail(where: str, what: str):
    raise PackError(f"{where}: {what}")


def _get(data: dict, key: str, where: str, kind, default=...):
    if key not in data:
        if default is ...:
            _fail(f"{where}.{key}" if where else key, "missing")
        return default
    value = data[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join(k.__name__ for k in kinds)
        _fail(f"{where}.{key}" if where else key, f"must be {names}, not {type(value).__name__}")
    return value


def _name(value: str, where: str) -> str:
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        _fail(where, f"{value!r} is not a valid name (letters, digits, _ and -, at most 64)")
    return value


@dataclass
class Mix:
    """Layers of a model's w taken from a preset (no preset: nothing changes)."""

    preset: str | None
    layers: list[int]
    # "replace": the layers become the preset's (the article's mix); "offset": they are shifted
    # by the preset's difference from the model's average w, so the base keeps its own
    # traits where the preset is average (see latent.archetype_mix).
    mode: str = "replace"
    # Archetype sprite mixes only: latent components {index: value} that make the seed's own z
    # the type, for a model whose z has known meaning (the default pack's models take the
    # procedural renderer's vector). The listed layers move `traits_weight` of the way to the
    # w of that typed z (latent.archetype_mix's `typed`; pipeline.sprite_ws).
    traits: dict = field(default_factory=dict)
    traits_weight: float = 1.0


@dataclass
class Archetype:
    name: str
    sprite: Mix
    face: Mix
    psi: float
    # Default of the request's strength: 0 = the type alone, 1 = the preset character itself.
    strength: float = 0.0


@dataclass
class Emotion:
    name: str
    face: Mix


@dataclass
class ModelEntry:
    file: str
    layer_groups: dict[str, list[int]]


@dataclass
class Pack:
    root: Path
    name: str
    description: str
    sprite: ModelEntry
    face: ModelEntry
    layout: SheetLayout
    frame_size: int  # the sprite frames are scaled to this (48 for MV/MZ)
    sprite_background: tuple[int, int, int]
    head_box: tuple[int, int, int, int]  # x, y, w, h in the standing down frame
    face_background: tuple[int, int, int]
    face_size: int  # face cells are scaled to this (144)
    archetypes: dict[str, Archetype]
    emotions: list[Emotion]
    projection_steps: int
    projection_loss: str
    projection_wplus: bool
    projection_noise: bool
    default_archetype: str
    projection_psi: float = 1.0
    # The sprite-to-face encoder's file (rmmv_gan.encoder), inside the pack; None: projection only.
    face_encoder: str | None = None
    # Face sheets on transparency (the bust cut out of the model's background), as RPG Maker's
    # own face sets are; a painted model may keep its background (false).
    face_transparent: bool = True
    # w = w_avg + gain * (encoder's w - w_avg). A regressor trained on squared error answers
    # the average of the faces a sheet could be, so its faces are more alike than the sprites
    # are; a gain above 1 gives the spread back (docs/default-pack.md measures the trade).
    face_encoder_gain: float = 1.0
    # The face refiner's file (rmmv_gan.face_refiner), inside the pack: it redraws every face
    # the face model draws with the art's line work. None: faces as the face model draws them.
    face_refiner: str | None = None
    palette: tuple[int, int] | None = None  # colours per walk sheet (low, high); None: off
    raw: dict = field(repr=False, default_factory=dict)

    def model_path(self, model: str) -> Path:
        return self.root / getattr(self, model).file

    def preset_path(self, model: str, name: str) -> Path:
        return self.root / "presets" / model / f"{name}.npy"

    def content_hash(self) -> str:
        """sha256 over the manifest, the models and the presets: what a result was made with."""
        h = hashlib.sha256()
        files = [self.root / MANIFEST, self.model_path("sprite"), self.model_path("face")]
        files += [self.root / f for f in (self.face_encoder, self.face_refiner) if f]
        files += sorted((self.root / "presets").rglob("*.npy")) if (self.root / "presets").is_dir() else []
        for path in files:
            h.update(str(path.relative_to(self.root)).encode())
            with path.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        return h.hexdigest()

    def select_emotions(self, names=None) -> list[Emotion]:
        """The emotions of a face sheet, in the order asked (default: the pack's, all)."""
        if names is None:
            return list(self.emotions)
        known = {e.name: e for e in self.emotions}
        names = list(names)
        low, high = _request_limit("emotions").bounds
        if not low <= len(names) <= high:
            raise PackError(f"emotions: a face sheet holds {low} to {high} emotions, not {len(names)}")
        for n in names:
            if n not in known:
                raise PackError(f"emotions: unknown emotion {n!r} (this pack has: {', '.join(known)})")
        return [known[n] for n in names]

    def presets_used(self):
        """(field, model, preset name, layers) for every preset reference in the manifest."""
        for a in self.archetypes.values():
            yield f"archetypes.{a.name}.sprite", "sprite", a.sprite.preset, a.sprite.layers
            yield f"archetypes.{a.name}.face", "face", a.face.preset, a.face.layers
        for i, e in enumerate(self.emotions):
            yield f"emotions[{i}] ({e.name})", "face", e.face.preset, e.face.layers


# ----------------------------------------------------------------------------------------------
# Reading


def _layers(value, groups: dict, where: str) -> list[int]:
    """A layer list: [ints], or a group name, or a list mixing both."""
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, bool):
            _fail(where, "layers must be numbers or layer-group names")
        if isinstance(item, int):
            if item < 0:
                _fail(where, f"layer {item} is negative")
            out.append(item)
        elif isinstance(item, str):
            if item not in groups:
                _fail(where, f"unknown layer group {item!r} (groups: {', '.join(sorted(groups)) or 'none'})")
            out.extend(groups[item])
        else:
            _fail(where, "layers must be numbers or layer-group names")
    return sorted(set(out))


# Bounds of an archetype's latent traits: z components are standard normal, so |value| <= 8
# is anything a model has seen; the index bound only keeps a typo from building a huge table.
TRAIT_VALUE_BOUND = 8.0
TRAIT_INDEX_LIMIT = 4096


def _traits(data: dict, where: str) -> tuple[dict, float]:
    traits = _get(data, "traits", where, dict, {})
    out = {}
    for key, value in traits.items():
        if not (isinstance(key, str) and key.isascii() and key.isdigit() and int(key) < TRAIT_INDEX_LIMIT):
            _fail(f"{where}.traits", f"{key!r} is not a latent component index (0-{TRAIT_INDEX_LIMIT - 1})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not abs(value) <= TRAIT_VALUE_BOUND:
            _fail(f"{where}.traits.{key}", f"must be a number in [-{TRAIT_VALUE_BOUND:g}, {TRAIT_VALUE_BOUND:g}]")
        out[int(key)] = float(value)
    weight = _get(data, "traits_weight", where, float, 1.0)
    if not 0 <= weight <= 1:
        _fail(f"{where}.traits_weight", f"{weight!r} is outside [0, 1]")
    return out, float(weight)


def _mix(data, groups, where, traits_allowed=False) -> Mix:
    if data is None:
        return Mix(None, [])
    if not isinstance(data, dict):
        _fail(where, "must be an object with 'preset' and 'layers'")
    preset = data.get("preset")
    if preset is not None:
        _name(preset, f"{where}.preset")
    layers = _layers(data.get("layers", []), groups, f"{where}.layers")
    if layers and preset is None:
        _fail(f"{where}.preset", "missing (layers are given, but no preset to take them from)")
    mode = _get(data, "mode", where, str, "replace")
    if mode not in MIX_MODES:
        _fail(f"{where}.mode", f"unknown mode {mode!r} (one of {', '.join(MIX_MODES)})")
    if not traits_allowed and ("traits" in data or "traits_weight" in data):
        _fail(f"{where}.traits", "only an archetype's sprite mix takes traits (only the sprite's z is the seed's)")
    traits, weight = _traits(data, where) if traits_allowed else ({}, 1.0)
    if traits and preset is None:
        _fail(f"{where}.preset", "missing (traits are given; the preset is the type's character at strength 1)")
    return Mix(preset, layers, mode, traits, weight)


def _size(data: dict, key: str, where: str, default: int, bounds: tuple[int, int]) -> int:
    value = _get(data, key, where, int, default)
    if not bounds[0] <= value <= bounds[1]:
        _fail(f"{where}.{key}", f"{value} is outside [{bounds[0]}, {bounds[1]}] pixels")
    return value


def _color(value, where):
    if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in value)):
        _fail(where, "must be [r, g, b] with values 0-255")
    return tuple(value)


def _palette(value, where):
    """`sprite.palette`: "off" (or absent) or [low, high], the colours of one walk sheet."""
    if value == "off":
        return None
    if not (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        _fail(where, f"must be \"off\" or [low, high] (colours per walk sheet), not {value!r}")
    low, high = value
    if not 2 <= low <= high <= 256:
        _fail(where, f"{value} needs 2 <= low <= high <= 256")
    return (low, high)


def _model(data, where) -> ModelEntry:
    file = _get(data, "file", where, str)
    if Path(file).is_absolute() or ".." in Path(file).parts:
        _fail(f"{where}.file", "must be a path inside the pack")
    groups = {}
    for gname, layers in _get(data, "layer_groups", where, dict, {}).items():
        _name(gname, f"{where}.layer_groups")
        if not (isinstance(layers, list) and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in layers)):
            _fail(f"{where}.layer_groups.{gname}", "must be a list of layer numbers")
        groups[gname] = sorted(set(layers))
    return ModelEntry(file, groups)


def _encoder_gain(fd: dict) -> float:
    gain = _get(fd, "encoder_gain", "face", float, 1.0)
    if not 0.5 <= gain <= 2.0:  # NaN fails too
        _fail("face.encoder_gain", f"{gain!r} is outside [0.5, 2]")
    return float(gain)


def parse_manifest(root: Path, data: dict) -> Pack:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        _fail("format", f"not an rmmv-gan pack manifest (expected \"format\": \"{FORMAT}\")")
    sprite = _model(_get(data, "sprite", "", dict), "sprite")
    face = _model(_get(data, "face", "", dict), "face")
    sd, fd = data["sprite"], data["face"]
    try:
        layout = SheetLayout.from_dict(_get(sd, "layout", "sprite", dict))
    except (TypeError, ValueError, KeyError) as exc:
        _fail("sprite.layout", str(exc))
    frame_size = _size(sd, "frame_size", "sprite", 48, FRAME_SIZE_RANGE)
    face_size = _size(fd, "face_size", "face", 144, FACE_SIZE_RANGE)
    box = _get(fd, "head_box", "face", list)
    if not (len(box) == 4 and all(isinstance(v, int) for v in box) and box[2] > 0 and box[3] > 0):
        _fail("face.head_box", "must be [x, y, width, height] with a positive size")
    if box[0] < 0 or box[1] < 0 or box[0] + box[2] > layout.frame_w or box[1] + box[3] > layout.frame_h:
        _fail("face.head_box", f"{box} does not fit in a {layout.frame_w} x {layout.frame_h} frame")
    archetypes = {}
    for aname, a in _get(data, "archetypes", "", dict).items():
        where = f"archetypes.{_name(aname, 'archetypes')}"
        if not isinstance(a, dict):
            _fail(where, "must be an object")
        psi = _within(_get(a, "psi", where, float, 0.7), "psi", f"{where}.psi")
        strength = _within(_get(a, "strength", where, float, 0.0), "strength", f"{where}.strength")
        archetypes[aname] = Archetype(aname, _mix(a.get("sprite"), sprite.layer_groups, f"{where}.sprite", True),
                                      _mix(a.get("face"), face.layer_groups, f"{where}.face"), psi, strength)
    if not archetypes:
        _fail("archetypes", "at least one archetype is needed")
    emotions = []
    for i, e in enumerate(_get(data, "emotions", "", list)):
        where = f"emotions[{i}]"
        if not isinstance(e, dict):
            _fail(where, "must be an object")
        name = _name(_get(e, "name", where, str), f"{where}.name")
        if any(name == other.name for other in emotions):
            _fail(f"{where}.name", f"{name!r} appears twice")
        emotions.append(Emotion(name, _mix(e, face.layer_groups, where)))
    low, high = _request_limit("emotions").bounds
    if not low <= len(emotions) <= high:
        _fail("emotions", f"a face sheet holds {low} to {high} emotions (faceIndex 0-7), not {len(emotions)}")
    encoder = _get(fd, "encoder", "face", str, None)
    refiner = _get(fd, "refiner", "face", str, None)
    for key, name in (("encoder", encoder), ("refiner", refiner)):
        if name is not None and (Path(name).is_absolute() or ".." in Path(name).parts):
            _fail(f"face.{key}", "must be a path inside the pack")
    proj = _get(data, "projection", "", dict, {})
    # 0: the encoder's w as it is; more: that many projection steps refine it.
    steps = _within(_get(proj, "steps", "projection", int, 200), "steps", "projection.steps")
    if steps < 1 and not encoder:
        _fail("projection.steps", f"{steps} is outside [1, {_request_limit('steps').high}] (0 needs a face.encoder)")
    loss = _get(proj, "loss", "projection", str, "pixel")
    if loss not in LOSSES:
        _fail("projection.loss", f"unknown loss {loss!r} (one of {', '.join(LOSSES)})")
    psi = _get(proj, "psi", "projection", float, 1.0)
    if not 0 <= psi <= 1:
        _fail("projection.psi", f"{psi!r} is outside [0, 1]")
    default = _get(data, "default_archetype", "", str, next(iter(archetypes)))
    if default not in archetypes:
        _fail("default_archetype", f"unknown archetype {default!r} (archetypes: {', '.join(archetypes)})")
    return Pack(root=root, name=_get(data, "name", "", str, root.name), description=_get(data, "description", "", str, ""),
                sprite=sprite, face=face, layout=layout, frame_size=frame_size,
                sprite_background=_color(sd.get("background", [255, 255, 255]), "sprite.background"),
                head_box=tuple(box), face_background=_color(fd.get("background", [255, 255, 255]), "face.background"),
                face_size=face_size, archetypes=archetypes, emotions=emotions,
                projection_steps=steps, projection_loss=loss,
                projection_wplus=_get(proj, "wplus", "projection", bool, False),
                projection_noise=_get(proj, "noise", "projection", bool, True), default_archetype=default,
                projection_psi=float(psi), face_encoder=encoder,
                face_transparent=_get(fd, "transparent", "face", bool, True),
                face_encoder_gain=_encoder_gain(fd), face_refiner=refiner,
                palette=_palette(sd.get("palette", "off"), "sprite.palette"), raw=data)


def load_pack(root=None) -> Pack:
    """Read and check a pack's manifest, and that every file it names exists. root None: the
    embedded default pack (DEFAULT_PACK)."""
    root = DEFAULT_PACK if root is None else Path(root)
    manifest = root / MANIFEST
    if not manifest.is_file():
        if root == DEFAULT_PACK:
            raise PackError("the embedded default pack is not built yet; give a pack folder (see docs/packs.md)")
        raise PackError(f"{root}: not a pack (no {MANIFEST})")
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackError(f"{MANIFEST}: not valid JSON ({exc})") from None
    pack = parse_manifest(root, data)
    for model in MODELS:
        _inside(root, pack.model_path(model), f"{model}.file")
    if pack.face_encoder:
        _inside(root, root / pack.face_encoder, "face.encoder")
    if pack.face_refiner:
        _inside(root, root / pack.face_refiner, "face.refiner")
    for where, model, preset, _ in pack.presets_used():
        if preset is not None:
            _inside(root, pack.preset_path(model, preset), f"{where}.preset")
    return pack


def _inside(root: Path, path: Path, where: str) -> None:
    """A file the pack names must exist and, links followed, lie inside the pack's folder: a
    pack passed around must not read (or hash into its results) files elsewhere."""
    if not path.is_file():
        _fail(where, f"{path} does not exist")
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        _fail(where, f"{path} is a link to {path.resolve()}, outside the pack's folder")


@dataclass
class OpenPack:
    """A pack with its models loaded and every preset read and checked."""

    pack: Pack
    sprite: torch.nn.Module
    face: torch.nn.Module
    face_D: torch.nn.Module | None
    presets: dict  # (model, name) -> w [num_ws, w_dim]
    content_hash: str
    encoder: torch.nn.Module | None = None  # sprite sheet -> face W+ (rmmv_gan.encoder)
    refiner: torch.nn.Module | None = None  # face -> face with line work (rmmv_gan.face_refiner)


def open_pack(root=None, device="cpu") -> OpenPack:
    """Load a pack (None: the embedded default pack) and both its models on `device`, and
    check the manifest against them."""
    pack = load_pack(root)
    nets = {}
    for model in MODELS:
        try:
            nets[model] = load_generator(pack.model_path(model), device)
        except ModelFileError as exc:
            _fail(f"{model}.file", str(exc))
    G = nets["sprite"]
    layout = pack.layout
    need_w, need_h = layout.size
    if need_w > G.img_shape[1] or need_h > G.img_shape[0]:
        _fail("sprite.layout", f"needs a {need_w} x {need_h} image, the model draws {G.img_shape[1]} x {G.img_shape[0]}")
    for model in MODELS:
        num_ws = nets[model].num_ws
        for gname, layers in getattr(pack, model).layer_groups.items():
            bad = [i for i in layers if i >= num_ws]
            if bad:
                _fail(f"{model}.layer_groups.{gname}", f"layer {bad[0]} is beyond the {model} model's {num_ws} layers (0-{num_ws - 1})")
    for a in pack.archetypes.values():
        bad = [i for i in a.sprite.traits if i >= nets["sprite"].z_dim]
        if bad:
            _fail(f"archetypes.{a.name}.sprite.traits", f"component {bad[0]} is beyond the sprite model's "
                                                        f"{nets['sprite'].z_dim} latent components")
    presets = {}
    for where, model, preset, layers in pack.presets_used():
        net = nets[model]
        bad = [i for i in layers if i >= net.num_ws]
        if bad:
            _fail(f"{where}.layers", f"layer {bad[0]} is beyond the {model} model's {net.num_ws} layers (0-{net.num_ws - 1})")
        if preset is not None and (model, preset) not in presets:
            try:
                presets[(model, preset)] = load_w(pack.preset_path(model, preset), net.num_ws, net.w_dim).to(device)
            except ValueError as exc:
                _fail(f"{where}.preset", str(exc))
    try:
        face_D = load_discriminator(pack.model_path("face"), device) if pack.projection_loss in ("auto", "discriminator") else None
    except ModelFileError:
        if pack.projection_loss == "discriminator":
            _fail("projection.loss", "discriminator, but the face model file holds no discriminator")
        face_D = None
    encoder = None
    if pack.face_encoder:
        try:
            encoder = load_encoder(pack.root / pack.face_encoder, device)
        except EncoderFileError as exc:
            _fail("face.encoder", str(exc))
        if (encoder.num_ws, encoder.w_dim) != (nets["face"].num_ws, nets["face"].w_dim):
            _fail("face.encoder", f"gives {encoder.num_ws} x {encoder.w_dim} ws, the face model takes "
                                  f"{nets['face'].num_ws} x {nets['face'].w_dim}")
    refiner = None
    if pack.face_refiner:
        try:
            refiner = load_face_refiner(pack.root / pack.face_refiner, device)
        except FaceRefinerFileError as exc:
            _fail("face.refiner", str(exc))
        if nets["face"].img_shape[0] % 2 or nets["face"].img_shape[1] % 2:
            _fail("face.refiner", f"the refiner needs faces of even size; the face model draws "
                                  f"{nets['face'].img_shape[1]} x {nets['face'].img_shape[0]}")
    return OpenPack(pack, nets["sprite"], nets["face"], face_D, presets, pack.content_hash(), encoder, refiner)


# ----------------------------------------------------------------------------------------------
# Making packs and presets


def _thirds(num_ws: int) -> dict:
    a, b = num_ws // 3, 2 * num_ws // 3
    return {"coarse": list(range(0, a)), "middle": list(range(a, b)), "fine": list(range(b, num_ws))}


def init_pack(root, sprite_model, face_model, name=None) -> Pack:
    """A starter pack for a user's own models: both converted to rmmv-gan's format (so the
    pickles are never read again), a 3 x 4 layout over the whole sprite image, a head box in
    the top of the standing frame, layer groups in thirds, one archetype and one emotion
    (both the identity). Edit pack.json afterwards; `preset add` makes presets."""
    root = Path(root)
    if (root / MANIFEST).exists():
        raise PackError(f"{root / MANIFEST} already exists")
    for model in MODELS:
        if (root / f"{model}.safetensors").exists():
            raise PackError(f"{root / f'{model}.safetensors'} already exists")
    made_root = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    try:
        for model, src in (("sprite", sprite_model), ("face", face_model)):
            try:
                convert(src, root / f"{model}.safetensors")
            except ModelFileError as exc:
                raise PackError(f"--{model}: {exc}") from None
    except BaseException:
        # Leave nothing half-made: the models converted so far, and the folder if we made it.
        for model in MODELS:
            (root / f"{model}.safetensors").unlink(missing_ok=True)
        if made_root:
            root.rmdir()
        raise
    G_s = load_generator(root / "sprite.safetensors")
    G_f = load_generator(root / "face.safetensors")
    h, w = G_s.img_shape
    fw, fh = w // 3, h // 4
    side = max(1, min(fw, fh) * 3 // 4)
    manifest = {
        "format": FORMAT, "version": 1, "name": name or root.name,
        "description": "Starter pack made by rmmv-gan pack init: set the layer groups and presets.",
        "sprite": {"file": "sprite.safetensors", "frame_size": 48, "background": [255, 255, 255],
                   "layout": SheetLayout(frame_w=fw, frame_h=fh).to_dict(), "layer_groups": _thirds(G_s.num_ws)},
        "face": {"file": "face.safetensors", "face_size": 144, "background": [255, 255, 255],
                 "head_box": [(fw - side) // 2, 0, side, side], "layer_groups": _thirds(G_f.num_ws)},
        "archetypes": {"default": {"psi": 0.7}},
        "emotions": [{"name": "neutral"}],
        "projection": {"steps": 200, "loss": "pixel", "wplus": False},
        "default_archetype": "default",
    }
    atomic_write_bytes(root / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode("utf-8"), overwrite=True)
    return load_pack(root)


def add_preset(root, model: str, name: str, *, seed=None, image=None, w_file=None, psi=1.0, steps=None,
               device="cpu", progress=None) -> Path:
    """Write presets/<model>/<name>.npy from a seed (mapped at psi), a w file, or an image
    (projected into the model with the pack's projection settings, or `steps`)."""
    from .latent import map_seed, save_w
    from .projector import ProjectionSettings, load_target, project

    pack = load_pack(root)
    if model not in MODELS:
        raise PackError(f"--model: {model!r} is neither sprite nor face")
    _name(name, "--name")
    if sum(v is not None for v in (seed, image, w_file)) != 1:
        raise PackError("give exactly one of --seed, --image, --w")
    try:
        psi = check_psi(psi)
    except ValueError as exc:
        raise PackError(f"--psi: {exc}") from None
    G = load_generator(pack.model_path(model), device)
    if seed is not None:
        w = map_seed(G, int(seed), psi=psi)
    elif w_file is not None:
        w = load_w(w_file, G.num_ws, G.w_dim)
    else:
        background = pack.sprite_background if model == "sprite" else pack.face_background
        target = load_target(image, G.img_shape, background=background)
        settings = ProjectionSettings(steps=steps or pack.projection_steps, loss=pack.projection_loss,
                                      wplus=pack.projection_wplus, optimize_noise=pack.projection_noise)
        D = None
        if settings.loss in ("auto", "discriminator"):
            try:
                D = load_discriminator(pack.model_path(model), device)
            except ModelFileError:
                D = None
        w = project(G, target, settings, D=D, progress=progress).ws[0]
    if not torch.isfinite(w).all():
        raise PackError(f"--name {name}: the preset came out as NaN or infinite values; nothing was written")
    path = pack.preset_path(model, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_w(path, w)
    return path
