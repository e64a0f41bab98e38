"""Training the sprite-to-face encoder (rmmv_gan.encoder) against a pack's two models.

Pairs of (walk sheet, face) teach it; two sources of pairs:

- the procedural renderers (`ProceduralPairs`, for packs whose models were trained on them,
  like the default pack): a vector v draws a walk sheet and a portrait of one person, and the
  face model's z for v is known, so beside the face image the true w is known too. Half the
  sheets are drawn by the pack's sprite model from the same v (its z is the renderer's
  vector), so the encoder learns the sprite model's own drawing, speckles and colour drift
  included; the renderer's sheets get the same kinds of noise added;
- matched art (`FolderPairs`): `characters/X.png` character i with `faces/X.png` face i, the
  convention of RPG Maker's own assets (a game folder's `img/`, or any folder holding those
  two sub-folders). A `$X.png` sheet holds one character, paired with face 0 of `X.png`.

The loss (per batch):
- image: L1 between the face model's drawing of the encoder's w and the target face, at the
  model's size and area-downsampled to 18 x 18 (where a person's hair, skin and clothes
  colours are, and what the identity benchmark measures); with `either_side`, against the
  nearer of the target and its mirror image. The w is drawn as the pipeline
  draws the neutral face: with the pack's first emotion mixed in, so the encoder puts the
  person into the layers that the emotions leave alone;
- w: squared distance to the true w, where it is known (procedural pairs), weighted by
  `w_weight`. The true w is the face model's mapping of v, a single w at every layer, which
  draws v's person only roughly (the default face model loses hoods, hats and eye colours
  there, while a W+ found per layer draws them), so once the image loss is on it is a light
  pull only;
- W+ spread (e4e's regulariser): squared distance of each layer's w from the mean over layers,
  which keeps w where the face model was trained to draw: a W+ free at every layer reaches
  faces the model never learned and draws them smeared.
A run folder holds `checkpoint.pt` (resumed when the same command runs again), `train.log` and,
at the end, `encoder.safetensors`.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .encoder import SpriteFaceEncoder, save_encoder
from .fileio import atomic_write
from .pipeline import apply_mix

IDENTITY_SIZE = 18  # the identity benchmark compares faces at 18 x 18 (benchmarks/face_identity.py)


class PairsError(ValueError):
    """A pairs folder that cannot be used: the message names the file and what is wrong."""


# ----------------------------------------------------------------------------------------------
# Neutral face of the default pack's face model


def neutral_face_z(v: np.ndarray) -> np.ndarray:
    """Face-model z [N, 34] for renderer vectors v [N, 32]: neutral expression, no head turn.

    The portrait model's z is (v, expression component, turn component); the expression is the
    bin of Phi(component) in eighths, neutral the first: the middle of that bin is Phi^-1(1/16).
    """
    v = np.asarray(v, np.float32)
    extra = np.zeros((len(v), 2), np.float32)
    extra[:, 0] = NormalDist().inv_cdf(1 / 16)
    return np.concatenate([v, extra], axis=1)


def as_drawn(opened, ws: torch.Tensor) -> torch.Tensor:
    """Face ws [N, num_ws, w_dim] as the pipeline draws the neutral face: with the pack's first
    emotion mixed in."""
    emotions = opened.pack.emotions
    return apply_mix(ws, opened, "face", emotions[0].face) if emotions else ws


def neutral_ws(opened, z: torch.Tensor) -> torch.Tensor:
    """The face model's w for z, with the pack's neutral emotion (its first) mixed in."""
    with torch.no_grad():
        return as_drawn(opened, opened.face.mapping(z, None))


# ----------------------------------------------------------------------------------------------
# Pairs


def _speckle(sheets: np.ndarray, rng: np.random.RandomState, amount: float) -> np.ndarray:
    """The sprite model's kinds of noise on clean sheets: per-sheet colour drift, per-pixel
    jitter, and a few pixels swapped with a neighbour (stray colours at the edges)."""
    out = sheets.astype(np.int16)
    n = len(out)
    out += rng.randint(-10, 11, (n, 1, 1, 3)).astype(np.int16)  # tint
    out += (rng.randn(*out.shape) * 6 * amount).astype(np.int16)  # jitter
    mask = rng.rand(n, out.shape[1], out.shape[2]) < 0.04 * amount
    shifted = np.roll(out, rng.choice([-1, 1]), axis=1 + rng.randint(2))
    out[mask] = shifted[mask]
    return out.clip(0, 255).astype(np.uint8)


class ProceduralPairs:
    """(sheets, faces, true ws) from the procedural renderers and the pack's sprite model."""

    def __init__(self, opened, seed: int = 0, model_share: float = 0.5, type_share: float = 0.0,
                 style_share: float = 0.0, styles=None):
        from . import procedural
        from .procedural.archetypes import TrainingShares

        self.p = procedural
        self.opened = opened
        self.rng = np.random.RandomState(seed)
        self.model_share = model_share
        # Shares of the people drawn as one of the default pack's types (hoods, hats and armour
        # are 11-22 % of random vectors each) or with an uncovered hair style (train.TrainConfig).
        self.shares = TrainingShares(seed, type_share, style_share, styles)
        G_s, G_f = opened.sprite, opened.face
        if G_s.z_dim != procedural.SPRITE_DIM or G_f.z_dim != procedural.PORTRAIT_DIM + 2:
            raise PairsError("procedural pairs need models trained on the procedural renderers "
                             f"(sprite z {procedural.SPRITE_DIM}, face z {procedural.PORTRAIT_DIM + 2}); "
                             f"this pack's have {G_s.z_dim} and {G_f.z_dim}: train on a folder of pairs")

    def vectors(self, n: int) -> np.ndarray:
        """n renderer vectors [n, SPRITE_DIM]: N(0, I), a style_share of them given an uncovered hair
        style, then a type_share of them a type's traits."""
        return self.shares.apply(self.rng.randn(n, self.p.SPRITE_DIM).astype(np.float32))

    def batch(self, n: int):
        v = self.vectors(n)
        sheets = np.stack([self.p.sprite_from_vector(x) for x in v])
        sheets = _speckle(sheets, self.rng, amount=1.0)
        k = int(round(n * self.model_share))
        if k:
            with torch.no_grad():
                drawn = self.opened.sprite(torch.from_numpy(v[:k]), None, noise_mode="const")
            sheets[:k] = (drawn.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()[..., :3]
        faces = np.stack([self.p.portrait_from_vector(x, "neutral", 0.0) for x in v])
        ws = neutral_ws(self.opened, torch.from_numpy(neutral_face_z(v)))
        return sheets, faces, ws


def _read_rgba(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = 4096 * 4096  # a sheet is far smaller; refuse decompression bombs
    try:
        with Image.open(path) as im:
            if im.width * im.height > 4096 * 4096:
                raise PairsError(f"{path}: {im.width} x {im.height} is too large for a sheet")
            return np.asarray(im.convert("RGBA"))
    except PairsError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise PairsError(f"{path}: not a readable PNG ({exc})") from None


def find_pair_folders(folder) -> tuple[Path, Path]:
    """(characters, faces) folders of a game folder (img/...) or of a folder of pairs."""
    folder = Path(folder)
    for base in (folder / "img", folder):
        if (base / "characters").is_dir() and (base / "faces").is_dir():
            return base / "characters", base / "faces"
    raise PairsError(f"{folder}: no characters/ and faces/ folders (nor img/characters and img/faces)")


def read_pairs(folder, sheet_size, face_size, sprite_background=(255, 255, 255),
               face_background=(255, 255, 255)):
    """Every (walk sheet, face) pair of a folder: uint8 RGB arrays, sheets at sheet_size (h, w),
    faces at face_size (h, w), composited over the models' backgrounds.

    Raises PairsError naming the file when a sheet has no face sheet, when the counts of
    characters and faces differ, or when a sheet's size is not a character or face sheet's."""
    from .sheets import composite, resize, slice_eight_sheet, slice_face_sheet

    chars_dir, faces_dir = find_pair_folders(folder)
    sheets, faces = [], []
    for path in sorted(chars_dir.glob("*.png")):
        single = path.name.startswith(("$", "!$"))
        face_path = faces_dir / (path.name.lstrip("!$") if single else path.name)
        if not face_path.is_file():
            raise PairsError(f"{path}: no matching face sheet {face_path}")
        rgba, face_rgba = _read_rgba(path), _read_rgba(face_path)
        h, w = rgba.shape[:2]
        if (single and (w % 3 or h % 4)) or (not single and (w % 12 or h % 8)) or w < 12 or h < 8:
            raise PairsError(f"{path}: {w} x {h} is not a character sheet "
                             f"({'3 x 4' if single else '12 x 8'} frames)")
        fh, fw = face_rgba.shape[:2]
        if fw % 4 or fh % 2 or fw // 4 != fh // 2:
            raise PairsError(f"{face_path}: {fw} x {fh} is not a face sheet (4 x 2 square faces)")
        chars = [rgba] if single else slice_eight_sheet(rgba)
        cells = slice_face_sheet(face_rgba)
        used = [i for i, c in enumerate(chars) if c[..., 3].max() > 0]
        with_face = [i for i in used if cells[i][..., 3].max() > 0]
        if len(with_face) != len(used):
            missing = sorted(set(used) - set(with_face))
            raise PairsError(f"{face_path}: {len(used)} characters in {path.name} but face cell(s) "
                             f"{missing} are empty")
        for i in used:
            sheets.append(composite(resize(chars[i], sheet_size[1], sheet_size[0]), sprite_background))
            faces.append(composite(resize(cells[i], face_size[1], face_size[0]), face_background))
    if not sheets:
        raise PairsError(f"{chars_dir}: no character sheets (*.png) with faces")
    return np.stack(sheets), np.stack(faces)


class FolderPairs:
    """(sheets, faces, None) drawn from a folder's matched art; mirrored sheets are not used
    (a walk sheet's left and right rows would swap)."""

    def __init__(self, opened, folder, seed: int = 0):
        G_s, G_f = opened.sprite, opened.face
        self.sheets, self.faces = read_pairs(folder, G_s.img_shape, G_f.img_shape, opened.pack.sprite_background,
                                             opened.pack.face_background)
        self.rng = np.random.RandomState(seed)

    def __len__(self):
        return len(self.sheets)

    def batch(self, n: int):
        idx = self.rng.randint(0, len(self.sheets), n)
        return _speckle(self.sheets[idx], self.rng, amount=0.5), self.faces[idx], None


# ----------------------------------------------------------------------------------------------
# The loop


@dataclass
class EncoderConfig:
    outdir: str
    steps: int = 4000
    batch: int = 16
    lr: float = 0.001
    w_only_steps: int = 0  # first steps with the w loss alone (cheap: no face synthesis)
    image_weight: float = 1.0
    w_weight: float = 1.0  # see the module doc: lower it to let the image loss find better ws
    spread_weight: float = 0.05
    # The drawn face is compared with the target face and with its mirror image, and the nearer
    # counts. A walk sheet does not tell which side of the face a ponytail or a swept fringe
    # falls on (the renderer's sprite draws a ponytail at the back), so against one side only
    # the encoder's best answer is no ponytail at all, which is what the default pack drew.
    either_side: bool = False
    channels: int = 32
    hidden: int = 512
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 250


def image_loss_each(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Per face [N]: L1 at full size plus L1 at the identity size (area-downsampled)."""
    small = lambda x: F.adaptive_avg_pool2d(x, IDENTITY_SIZE)  # noqa: E731
    return (fake - real).abs().mean((1, 2, 3)) + (small(fake) - small(real)).abs().mean((1, 2, 3))


def image_loss(fake: torch.Tensor, real: torch.Tensor, either_side: bool = False) -> torch.Tensor:
    """The batch's mean of image_loss_each; with either_side, each face against the nearer of
    the target and its mirror image (EncoderConfig.either_side)."""
    each = image_loss_each(fake, real)
    if either_side:
        each = torch.minimum(each, image_loss_each(fake, real.flip(-1)))
    return each.mean()


def check_fits(encoder: SpriteFaceEncoder, opened) -> None:
    """ValueError unless the encoder reads the pack's sprite sheets and answers its face model's ws."""
    G_s, G_f = opened.sprite, opened.face
    if encoder.in_shape != tuple(G_s.img_shape) or (encoder.num_ws, encoder.w_dim) != (G_f.num_ws, G_f.w_dim):
        raise ValueError(f"the encoder reads {encoder.in_shape[1]} x {encoder.in_shape[0]} sheets and answers "
                         f"{encoder.num_ws} x {encoder.w_dim} ws; this pack's models need "
                         f"{G_s.img_shape[1]} x {G_s.img_shape[0]} and {G_f.num_ws} x {G_f.w_dim}")


def run_steps(trainer, lr_at: Callable[[int], float], progress: Callable | None = None) -> None:
    """The loop of a small network's training: from trainer.step to trainer.cfg.steps, each step
    at the learning rate lr_at(step), a log line every cfg.log_every steps and a checkpoint every
    cfg.checkpoint_every (and both at the end); a non-finite loss stops the run."""
    cfg = trainer.cfg
    t0, n0 = time.perf_counter(), trainer.step
    while trainer.step < cfg.steps:
        for g in trainer.opt.param_groups:
            g["lr"] = lr_at(trainer.step)
        stats = trainer.train_step()
        if not all(math.isfinite(v) for v in stats.values()):
            raise FloatingPointError(f"step {trainer.step}: non-finite loss {stats}")
        trainer.step += 1
        if progress is not None:
            progress(trainer.step, cfg.steps, stats)
        if trainer.step % cfg.log_every == 0 or trainer.step == cfg.steps:
            rate = (time.perf_counter() - t0) / max(trainer.step - n0, 1)
            trainer.log(f"step {trainer.step}/{cfg.steps} " + " ".join(f"{k} {v:.4f}" for k, v in stats.items())
                        + f" ({rate:.2f} s/step)")
        if trainer.step % cfg.checkpoint_every == 0 or trainer.step == cfg.steps:
            trainer.save_checkpoint()


class EncoderTrainer:
    def __init__(self, cfg: EncoderConfig, opened, pairs, log: Callable[[str], None] = print):
        self.cfg, self.opened, self.pairs, self.log = cfg, opened, pairs, log
        self.out = Path(cfg.outdir)
        self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)
        G_s, G_f = opened.sprite, opened.face
        self.G = copy.deepcopy(G_f).eval()  # a private copy: batches run whole, gradients reach w only
        self.G.synthesis.split_batch = False
        self.encoder = SpriteFaceEncoder(G_s.img_shape, G_f.num_ws, G_f.w_dim, cfg.channels, cfg.hidden)
        with torch.no_grad():
            self.encoder.w_avg.copy_(G_f.mapping.w_avg)
        self.opt = torch.optim.Adam(self.encoder.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
        self.step = 0

    def start_from(self, encoder: SpriteFaceEncoder) -> None:
        """Go on from a trained encoder (e.g. a pack's own, after its face model was trained
        further): its weights and its size replace the new one's, the optimiser starts afresh.
        ValueError (check_fits) if it does not fit this pack's models."""
        check_fits(encoder, self.opened)
        self.cfg.channels, self.cfg.hidden = encoder.channels, encoder.hidden
        self.encoder = encoder.train().requires_grad_(True)  # a loaded encoder is frozen for inference
        self.opt = torch.optim.Adam(self.encoder.parameters(), lr=self.cfg.lr, betas=(0.9, 0.99))

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def save_checkpoint(self):
        state = {"encoder": self.encoder.state_dict(), "opt": self.opt.state_dict(), "step": self.step,
                 "config": json.dumps(asdict(self.cfg))}
        atomic_write(self.checkpoint_path, lambda f: torch.save(state, f), overwrite=True)  # never a torn one

    def resume(self) -> bool:
        if not self.checkpoint_path.exists():
            return False
        try:
            state = torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)
            self.encoder.load_state_dict(state["encoder"])
            self.opt.load_state_dict(state["opt"])
            self.step = int(state["step"])
        except Exception as exc:  # noqa: BLE001 - a torn or foreign file: say which
            raise ValueError(f"{self.checkpoint_path}: not a checkpoint of this encoder ({exc})") from None
        self.log(f"resumed at step {self.step}")
        return True

    def _tensor(self, imgs: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1

    def train_step(self) -> dict:
        cfg = self.cfg
        sheets, faces, true_ws = self.pairs.batch(cfg.batch)
        ws = self.encoder(self._tensor(sheets))
        loss, stats = 0.0, {}
        if true_ws is not None and cfg.w_weight > 0:
            lw = (ws - true_ws).square().sum(-1).mean() / ws.shape[-1]
            loss = loss + cfg.w_weight * lw
            stats["w"] = lw.item()
        spread = (ws - ws.mean(1, keepdim=True)).square().sum(-1).mean() / ws.shape[-1]
        loss = loss + cfg.spread_weight * spread
        stats["spread"] = spread.item()
        if self.step >= cfg.w_only_steps or true_ws is None:
            fake = self.G.synthesis(as_drawn(self.opened, ws), noise_mode="const")
            li = image_loss(fake, self._tensor(faces), cfg.either_side)
            loss = loss + cfg.image_weight * li
            stats["image"] = li.item()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return stats

    def run(self, progress: Callable | None = None):
        cfg = self.cfg
        self.G.requires_grad_(False)
        # A cosine decay over the run settles the encoder at the end.
        run_steps(self, lambda step: cfg.lr * (0.55 + 0.45 * math.cos(math.pi * step / cfg.steps)), progress)
        self.encoder.eval()
        return self.encoder

    def export(self, path=None) -> Path:
        path = Path(path or self.out / "encoder.safetensors")
        save_encoder(path, self.encoder)
        return path
