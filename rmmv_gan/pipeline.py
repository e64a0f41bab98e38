"""The character pipeline: (pack, request) -> a walk sheet, an emotion face sheet, and how
they were made. Every step of the character pipeline is in this file, in order:

1. sprite w: z from the seed, mapped with truncation psi;
2. sprite style mix: the archetype's preset layers;
3. the walk sheet drawn, cleaned to transparency frame by frame, redrawn as pixel art with
   one palette (when the pack asks for it: `sprite.palette`), scaled to 48-px frames;
4-5. the face's w from the sprite (stage "face"): the pack's sprite-to-face encoder reads
   the whole walk sheet (rmmv_gan.encoder), optionally refined by projection; packs without
   an encoder project the head crop (the standing, facing-down frame, cut at the pack's box)
   into the face model's W space, as the source article did;
6. face style mix: the archetype's preset layers;
7. emotions: each a further mix with an emotion preset (the first may be the identity),
   drawn, and redrawn by the pack's face refiner where it has one (rmmv_gan.face_refiner);
8. the face sheet (576 x 288, faceIndex order).

It knows nothing of HTTP or of game folders: transports hand it a request and write what it
returns (see rmmv_gan.game). The same request gives the same pixels.

The request contract lives here too: `LIMITS` holds every field's bounds (the daemon serves
them at /api/pack, and the web pages and the plugin read them from there), and
`CharacterRequest.from_json` / `.resolved` are the one way a request is checked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Callable

import numpy as np
import torch

from . import __version__
from .game import MAX_NAME_LENGTH, AssetNameError, character_name
from .latent import MAX_SEED, archetype_mix, to_uint8, truncate, z_from_seeds
from .packs import OpenPack, PackError
from .pixel_art import pixel_art_sheet
from .projector import ProjectionCancelled, ProjectionSettings, project
from .encoder import sheet_tensor
from .face_cutout import cut_out_bust
from .face_refiner import refine_faces
from .sheets import clean_sheet, face_sheet, head_crop, idle_frame, native_to_character_sheet

STAGES = ("sprite", "cleanup", "palette", "face", "faces")
MAX_BODY = 64 * 1024  # bytes: the largest request body (HTTP) or request file (watcher) read


class RequestError(ValueError):
    """A request that cannot be run; the message names the field."""


class Cancelled(RuntimeError):
    """The cancel callback asked the pipeline to stop."""


@dataclass(frozen=True)
class Limit:
    """What one request field accepts: its JSON type, and bounds (the value for numbers, the
    length for text, the count for lists; None: unbounded)."""

    kind: str  # "number", "integer", "text" or "names" (a list of text)
    low: float | None = None
    high: float | None = None

    def type_error(self, value) -> str | None:
        """Why `value` is not of this field's JSON type, or None."""
        ok = {"number": (int, float, np.floating), "integer": (int, np.integer), "text": (str,),
              "names": (list,)}[self.kind]
        if isinstance(value, bool) or not isinstance(value, ok):
            want = {"number": "a number", "integer": "a whole number", "text": "text", "names": "a list of names"}
            return f"must be {want[self.kind]}, not {type(value).__name__}"
        if self.kind == "names" and not all(isinstance(v, str) for v in value):
            return "must be a list of names"
        return None

    def check(self, key: str, value):
        """RequestError naming `key` unless `value` is of the field's type and within bounds."""
        why = self.type_error(value)
        if why is not None:
            raise RequestError(f"{key}: {why}")
        size = len(value) if self.kind in ("text", "names") else value
        finite = self.kind != "number" or np.isfinite(value)
        if not (finite and (self.low is None or size >= self.low) and (self.high is None or size <= self.high)):
            want = {"number": f"a number in {self.bounds}", "integer": f"a whole number in {self.bounds}",
                    "text": f"{self.low} to {self.high} characters long",
                    "names": f"{self.low} to {self.high} names"}[self.kind]
            raise RequestError(f"{key}: must be {want}, not {value!r}")

    def cast(self, value):
        """The checked value as plain Python (numpy numbers from callers become float / int)."""
        return {"number": float, "integer": int}.get(self.kind, lambda v: v)(value)

    @property
    def bounds(self) -> list:
        return [self.low, self.high]


# Every field of a character request, with what it accepts: one line per field. The daemon
# serves the bounds at /api/pack; pages, plugin, packs and the probe read them from here.
LIMITS = {
    "archetype": Limit("text"),  # the pack says which
    "psi": Limit("number", -2, 2),
    "seed": Limit("integer", 0, MAX_SEED),
    "name": Limit("text", 1, MAX_NAME_LENGTH),
    "steps": Limit("integer", 0, 5000),  # 0: the encoder's face as it is (packs without one: see limits_for)
    "emotions": Limit("names", 1, 8),  # a face sheet holds 8
    "strength": Limit("number", 0, 1),  # of the archetype: 0 = its type alone .. 1 = its preset character
}


def limits_for(pack) -> dict:
    """LIMITS as they hold for `pack` (what /api/pack serves): without a face encoder, a face
    needs at least one projection step."""
    if pack.face_encoder:
        return LIMITS
    steps = LIMITS["steps"]
    return LIMITS | {"steps": Limit(steps.kind, max(steps.low, 1), steps.high)}


@dataclass
class CharacterRequest:
    archetype: str | None = None
    psi: float | None = None
    seed: int | None = None
    name: str | None = None
    steps: int | None = None
    emotions: list | None = None
    strength: float | None = None  # of the archetype: 0 = its type alone .. 1 = its preset character

    @classmethod
    def from_json(cls, body) -> "CharacterRequest":
        """A request from parsed JSON (a POST body, a request file): only known fields, each of
        its JSON type; RequestError names the field. Not resolved: see `resolved`."""
        if not isinstance(body, dict):
            raise RequestError("body: must be a JSON object")
        for key in body:
            if key not in LIMITS:
                raise RequestError(f"{key}: unknown field (known: {', '.join(LIMITS)})")
        values = {}
        for key, limit in LIMITS.items():
            if body.get(key) is None:
                continue
            why = limit.type_error(body[key])
            if why is not None:
                raise RequestError(f"{key}: {why}")
            values[key] = body[key]
        return cls(**values)

    def as_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def resolved(self, pack, rng: np.random.Generator | None = None) -> "CharacterRequest":
        """Check every field against LIMITS and the pack and fill in the defaults (a random
        seed, the archetype's psi, a generated name). Done once, where a request arrives: a
        request resolved for this pack is returned as it is."""
        if getattr(self, "_resolved_for", None) is pack:
            return self
        archetype = self.archetype if self.archetype is not None else pack.default_archetype
        if not isinstance(archetype, str) or archetype not in pack.archetypes:
            raise RequestError(f"archetype: unknown archetype {archetype!r} "
                               f"(this pack has: {', '.join(pack.archetypes)})")
        limits = limits_for(pack)
        values = self.as_json() | {"archetype": archetype}
        defaults = {"psi": lambda: pack.archetypes[archetype].psi,
                    "strength": lambda: pack.archetypes[archetype].strength, "steps": lambda: pack.projection_steps,
                    "seed": lambda: int((rng or np.random.default_rng()).integers(limits["seed"].low,
                                                                                  limits["seed"].high + 1))}
        for key, default in defaults.items():
            if values[key] is None:
                values[key] = default()
        for key, value in values.items():
            if value is not None and key != "name":  # a name is checked as a file name below
                limits[key].check(key, value)
                values[key] = limits[key].cast(value)
        try:
            values["emotions"] = [e.name for e in pack.select_emotions(values["emotions"])]
        except PackError as exc:
            raise RequestError(str(exc)) from None
        if values["name"] is None:
            values["name"] = f"{archetype}_{values['seed']}"
        try:  # as it will be saved: NFC, within the file systems' bytes (game.character_name)
            values["name"] = character_name(values["name"], max_length=limits["name"].high)
        except AssetNameError as exc:
            raise RequestError(f"name: {exc}") from None
        out = CharacterRequest(**values)
        out._resolved_for = pack  # not a field: not compared, not in as_json
        return out


@dataclass
class Character:
    request: CharacterRequest  # resolved: every field set
    walk_sheet: np.ndarray  # [192, 144, 4] uint8, MV `$` sheet (at 48-px frames)
    face_sheet: np.ndarray  # [288, 576, 4] uint8
    sprite_native: np.ndarray  # the model's own image, uint8 RGB
    faces: list  # one uint8 image per emotion, at the face model's size (RGBA on transparency)
    sprite_w: torch.Tensor  # [num_ws, w_dim] after the archetype mix
    face_w: torch.Tensor  # from the sprite (encoder or projection), after the archetype mix
    emotion_ws: list
    metadata: dict = field(default_factory=dict)


def head_of(opened: OpenPack, sheet: np.ndarray) -> np.ndarray:
    """The head crop of a native walk sheet, at the face model's size, on its background."""
    pack = opened.pack
    return head_crop(idle_frame(sheet, pack.layout), pack.head_box, opened.face.img_shape[0],
                     background=pack.face_background)


def face_w_from_sprite(opened: OpenPack, sheet: np.ndarray, seed: int = 0, steps: int | None = None,
                       progress: Callable | None = None, cancel: Callable | None = None) -> torch.Tensor:
    """The neutral face's w [num_ws, w_dim] for a native walk sheet (uint8 RGB [H, W, 3], as
    the sprite model draws it), before the archetype mix.

    With the pack's encoder: its answer, refined by `steps` projection steps of the head crop
    (0: as it is). Without: `steps` steps of projection from the average face (the article's
    method), pulled back toward the average by the pack's projection.psi. The projection
    compares the faces at the head crop's own resolution: a 12-pixel head holds no more.
    `steps` defaults to the pack's; progress(step, total) follows the projection.
    """
    pack, G_f = opened.pack, opened.face
    steps = pack.projection_steps if steps is None else steps
    device = G_f.mapping.w_avg.device
    start = None
    if opened.encoder is not None:
        with torch.no_grad():
            start = opened.encoder(sheet_tensor(sheet[..., :3], opened.encoder.in_shape, device))
            if pack.face_encoder_gain != 1.0:
                start = G_f.mapping.w_avg + pack.face_encoder_gain * (start - G_f.mapping.w_avg)
        if steps == 0:
            return start[0]
    elif steps < 1:
        raise RequestError("steps: this pack has no face encoder, so the face needs at least 1 projection step")
    head = head_of(opened, sheet[..., :3])
    target = torch.from_numpy(head).permute(2, 0, 1).float().to(device) / 127.5 - 1
    side = max(pack.head_box[2], pack.head_box[3])
    settings = ProjectionSettings(steps=steps, loss=pack.projection_loss, wplus=pack.projection_wplus or start is not None,
                                  optimize_noise=pack.projection_noise, seed=seed % (2**31),
                                  compare_size=(side, side) if side < G_f.img_shape[0] else None)
    if start is not None:  # a refinement: a smaller first step than a search from the average
        settings.initial_learning_rate = 0.02
        settings.initial_noise_factor = 0.0
    try:
        w = project(G_f, target, settings, D=opened.face_D, init_ws=start, cancel=cancel,
                    progress=None if progress is None else (lambda step, total, _d: progress(step, total))).ws[0]
    except ProjectionCancelled as exc:  # callers catch one Cancelled, whichever step stopped
        raise Cancelled(str(exc)) from None
    # A crop unlike the face model's images can pull w off the model's manifold (speckled
    # faces); the pack may pull it back toward the average face.
    if start is None and pack.projection_psi != 1:
        w = truncate(w[None], G_f.mapping.w_avg, pack.projection_psi)[0]
    return w


def apply_mix(w, opened: OpenPack, model: str, m, strength=0.0, typed=None):
    """w [num_ws, w_dim] of `model` ("sprite" or "face") after the pack's mix `m` (an
    archetype's or an emotion's) at `strength`; `typed`: the same character's w drawn as the
    type, for a mix with traits (see latent.archetype_mix and sprite_ws)."""
    if m.preset is None:
        return w
    offset_from = getattr(opened, model).mapping.w_avg if m.mode == "offset" else None
    return archetype_mix(w, opened.presets[(model, m.preset)], m.layers, strength, offset_from,
                         typed, m.traits_weight)


@torch.no_grad()
def sprite_ws(opened: OpenPack, seeds, psis, archetypes, strengths) -> torch.Tensor:
    """Steps 1-2: the sprite w [N, num_ws, w_dim] of each seed, mapped at its psi, after its
    archetype's sprite mix at its strength. An archetype with traits also maps the seed's z
    with the type's latent components set (the same person drawn as the type by the model)."""
    G = opened.sprite
    z = z_from_seeds(list(seeds), G.z_dim, G.mapping.w_avg.device)
    out = []
    for i, (psi, name, strength) in enumerate(zip(psis, archetypes, strengths)):
        m = opened.pack.archetypes[name].sprite
        w = G.mapping(z[i : i + 1], None, truncation_psi=psi)[0]
        typed = None
        if m.traits:
            zt = z[i : i + 1].clone()
            zt[0, list(m.traits)] = torch.tensor(list(m.traits.values()), dtype=zt.dtype, device=zt.device)
            typed = G.mapping(zt, None, truncation_psi=psi)[0]
        out.append(apply_mix(w, opened, "sprite", m, strength, typed))
    return torch.stack(out)


def make_characters(opened: OpenPack, requests, progress: Callable | None = None,
                    cancel: Callable | None = None) -> list[Character]:
    """Run the pipeline for several requests; the sprite synthesis runs as one batch.

    progress(stage, fraction) is called as the work advances (fraction over all requests);
    cancel() returning True stops with Cancelled between steps.
    """
    pack, G_s, G_f = opened.pack, opened.sprite, opened.face
    reqs = [r.resolved(pack) for r in requests]  # no work for requests resolved where they arrived
    n = len(reqs)
    timings = [{s: 0.0 for s in STAGES} for _ in reqs]

    def report(stage, fraction):
        if cancel is not None and cancel():
            raise Cancelled(f"cancelled during {stage}")
        if progress is not None:
            progress(stage, fraction)

    # 1-3. Sprites: map, mix, draw (one batch), clean, lay out.
    report("sprite", 0.0)
    t = time.perf_counter()
    ws = sprite_ws(opened, [r.seed for r in reqs], [r.psi for r in reqs], [r.archetype for r in reqs],
                   [r.strength for r in reqs])
    with torch.no_grad():
        natives = to_uint8(G_s.synthesis(ws, noise_mode="const"))[..., :3]
    for tm in timings:
        tm["sprite"] = (time.perf_counter() - t) / n
    results = []
    for i, r in enumerate(reqs):
        arch = pack.archetypes[r.archetype]
        t = time.perf_counter()
        report("cleanup", i / n)
        clean = clean_sheet(natives[i], pack.layout, background=pack.sprite_background)
        timings[i]["cleanup"] = time.perf_counter() - t
        if pack.palette is not None:  # the pack's model draws pixel art: redraw it as such
            t = time.perf_counter()
            report("palette", i / n)
            clean = pixel_art_sheet(clean, pack.layout, pack.palette, pack.sprite_background)
            timings[i]["palette"] = time.perf_counter() - t
        walk = native_to_character_sheet(clean, pack.layout, pack.frame_size)

        # 4-5. The neutral face's w from the sprite: the pack's encoder (refined by `steps`
        # projection steps, if any), else a projection of the head crop.
        t = time.perf_counter()
        report("face", i / n)

        def projection_progress(step, total, i=i):
            report("face", (i + step / total) / n)

        projected = face_w_from_sprite(opened, natives[i], seed=r.seed, steps=r.steps, progress=projection_progress,
                                       cancel=cancel)
        # 6. The archetype's face layers.
        face_w = apply_mix(projected, opened, "face", arch.face, r.strength)
        timings[i]["face"] = time.perf_counter() - t

        # 7-8. Emotions and the face sheet.
        t = time.perf_counter()
        report("faces", i / n)
        emotion_ws = [apply_mix(face_w, opened, "face", e.face) for e in pack.select_emotions(r.emotions)]
        with torch.no_grad():
            drawn = to_uint8(G_f.synthesis(torch.stack(emotion_ws), noise_mode="const"))[..., :3]
        faces = list(drawn if opened.refiner is None else refine_faces(opened.refiner, drawn))
        if pack.face_transparent:
            faces = [cut_out_bust(f, pack.face_background) for f in faces]
        sheet = face_sheet(faces, pack.face_size)
        timings[i]["faces"] = time.perf_counter() - t
        meta = {
            "name": r.name, "seed": r.seed, "psi": r.psi, "archetype": r.archetype, "strength": r.strength, "steps": r.steps,
            "emotions": r.emotions, "pack": pack.name, "pack_hash": opened.content_hash,
            "rmmv_gan_version": __version__, "timings": {k: round(v, 4) for k, v in timings[i].items()},
        }
        results.append(Character(r, walk, sheet, natives[i], faces, ws[i].cpu(), face_w.cpu(),
                                 [w.cpu() for w in emotion_ws], meta))
    report("faces", 1.0)
    return results


def make_character(opened: OpenPack, request: CharacterRequest, progress=None, cancel=None) -> Character:
    """One character: make_characters for a single request."""
    return make_characters(opened, [request], progress=progress, cancel=cancel)[0]
