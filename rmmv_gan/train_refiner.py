"""Training the face refiner (rmmv_gan.face_refiner) for a pack.

The refiner learns to turn the face model's drawing of a person into the artist's face of that
person. The pairs are made once, at the start of a run, from the pack as it is (its face model,
encoder and emotions do not change while the refiner trains):

- procedural (`procedural_pairs`, for packs trained on the renderers, like the default pack):
  a vector v; the input is the face model's drawing of v's person with one of the pack's
  emotions mixed in, the person's w taken either from the pipeline's face step on v's walk
  sheet (the encoder's answer, as exported characters get it) or from the face model's own
  mapping of v (half each; the mapping alone when the pack has no encoder); the target is the
  renderer's portrait of v with that expression;
- matched art (`folder_pairs`): `characters/X.png` character i with `faces/X.png` face i, as
  for train-encoder; the input is the pipeline's neutral face of the character's sheet, the
  target the artist's face.
Both sides are mirrored at random (a face read left to right is as good as one read right to
left). The loss is L1 plus L1 on the horizontal and vertical differences, so a line one pixel
off costs twice. Where the art holds details the face model's drawing does not settle (a
strand's place), an L1 answer is their average, a soft line; with `gan_weight` above 0 a small
discriminator also judges ~22-px patches of the refined face beside the drawing it came from
(pix2pix's conditional patch GAN), which pays for a line drawn rather than averaged. A run folder holds `checkpoint.pt` (resumed when the same command runs again;
the pairs are made again from the same seed), `train.log` and, at the end,
`refiner.safetensors`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .face_refiner import FaceRefiner, faces_tensor, save_face_refiner
from .fileio import atomic_write
from .latent import to_uint8
from .pipeline import apply_mix, face_w_from_sprite
from .train import reconstruction_loss
from .train_encoder import PairsError, as_drawn, neutral_face_z, read_pairs, run_steps


@dataclass
class RefinerConfig:
    outdir: str
    steps: int = 3000
    batch: int = 16
    lr: float = 0.002
    pairs: int = 8000  # procedural pairs made at the start (a folder gives what it holds)
    channels: int = 24
    low_channels: int = 48
    low_blocks: int = 3
    seed: int = 0
    device: str = "cpu"
    gan_weight: float = 0.0  # weight of the patch discriminator's loss beside the L1 (0: none)
    d_channels: int = 32
    log_every: int = 50
    checkpoint_every: int = 250


def _draw(opened, ws: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return to_uint8(opened.face.synthesis(ws, noise_mode="const"))[..., :3]


def procedural_pairs(opened, n: int, seed: int = 0, progress: Callable | None = None):
    """(inputs, targets): n uint8 RGB faces the face model draws, and the renderer's portraits
    of the same people and expressions (see the module doc). PairsError for a pack whose face
    model was not trained on the renderers, or with no emotion the renderer draws."""
    from . import procedural

    G_f = opened.face
    if G_f.z_dim != procedural.PORTRAIT_DIM + 2 or tuple(G_f.img_shape) != (procedural.PORTRAIT_SIZE,) * 2:
        raise PairsError("procedural pairs need a face model trained on the procedural renderers "
                         f"(z {procedural.PORTRAIT_DIM + 2}, {procedural.PORTRAIT_SIZE} px); this pack's has z "
                         f"{G_f.z_dim}, {G_f.img_shape[1]} x {G_f.img_shape[0]}: train on a folder of pairs")
    emotions = [e for e in opened.pack.emotions if e.name in procedural.EXPRESSIONS]
    if not emotions:
        raise PairsError(f"none of the pack's emotions is one the renderer draws ({', '.join(procedural.EXPRESSIONS)})")
    rng = np.random.RandomState(seed)
    v = rng.randn(n, procedural.PORTRAIT_DIM).astype(np.float32)
    which = rng.randint(0, len(emotions), n)
    from_sheet = (rng.rand(n) < 0.5) & (opened.encoder is not None)
    with torch.no_grad():
        true_ws = G_f.mapping(torch.from_numpy(neutral_face_z(v)).to(G_f.mapping.w_avg.device), None)
    inputs = np.empty((n, *G_f.img_shape, 3), np.uint8)
    targets = np.empty_like(inputs)
    for start in range(0, n, 64):
        idx = range(start, min(start + 64, n))
        ws = []
        for i in idx:
            w = face_w_from_sprite(opened, procedural.sprite_from_vector(v[i]), seed=i, steps=0) if from_sheet[i] \
                else true_ws[i]
            ws.append(apply_mix(w, opened, "face", emotions[which[i]].face))
            targets[i] = procedural.portrait_from_vector(v[i], emotions[which[i]].name, 0.0)
        inputs[idx.start:idx.stop] = _draw(opened, torch.stack(ws))
        if progress is not None:
            progress(idx.stop, n)
    return inputs, targets


def folder_pairs(opened, folder, progress: Callable | None = None):
    """(inputs, targets) from a folder of matched art (read as train-encoder reads it): the
    pipeline's neutral face of each character's sheet, and the artist's face."""
    G_s, G_f = opened.sprite, opened.face
    sheets, faces = read_pairs(folder, G_s.img_shape, G_f.img_shape, opened.pack.sprite_background,
                               opened.pack.face_background)
    inputs = np.empty_like(faces)
    for i, sheet in enumerate(sheets):
        w = face_w_from_sprite(opened, sheet, seed=i)
        inputs[i] = _draw(opened, as_drawn(opened, w[None]))[0]
        if progress is not None:
            progress(i + 1, len(sheets))
    return inputs, faces


class PatchDiscriminator(nn.Module):
    """Real-or-refined logits for overlapping patches of a face, seen beside the face model's
    drawing it came from: [N, 6, H, W] (drawing, face) -> [N, 1, H/4, W/4], each logit seeing
    about 22 x 22 px (two 4x4 stride-2 convolutions, then two 3x3)."""

    def __init__(self, channels: int = 32):
        super().__init__()
        c = channels
        self.convs = nn.ModuleList([nn.Conv2d(6, c, 4, 2, 1), nn.Conv2d(c, 2 * c, 4, 2, 1),
                                    nn.Conv2d(2 * c, 2 * c, 3, 1, 1)])
        self.out = nn.Conv2d(2 * c, 1, 3, 1, 1)

    def forward(self, drawing, face):
        h = torch.cat([drawing, face], 1)
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)
        return self.out(h)


class RefinerTrainer:
    def __init__(self, cfg: RefinerConfig, inputs: np.ndarray, targets: np.ndarray,
                 log: Callable[[str], None] = print):
        if inputs.shape != targets.shape or len(inputs) == 0:
            raise ValueError(f"inputs {inputs.shape} and targets {targets.shape} must be the same, non-empty")
        self.cfg, self.log = cfg, log
        self.out = Path(cfg.outdir)
        self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)
        # Kept as uint8 [N, H, W, 3] (a quarter of float32's memory), converted a batch at a time.
        self.inputs, self.targets = np.asarray(inputs, np.uint8), np.asarray(targets, np.uint8)
        self.device = torch.device(cfg.device)
        self.refiner = FaceRefiner(cfg.channels, cfg.low_channels, cfg.low_blocks).to(self.device)
        self.opt = torch.optim.Adam(self.refiner.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.D = self.opt_D = None
        if cfg.gan_weight > 0:
            self.D = PatchDiscriminator(cfg.d_channels).to(self.device)
            self.opt_D = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=(0.5, 0.99))
        self.step = 0

    def start_from(self, refiner: FaceRefiner) -> None:
        """Go on from a trained refiner (e.g. a pack's own, after its face model was trained
        further): its weights and its size replace the new one's, the optimiser starts afresh."""
        self.cfg.channels, self.cfg.low_channels, self.cfg.low_blocks = (refiner.channels, refiner.low_channels,
                                                                         refiner.low_blocks)
        self.refiner = refiner.float().to(self.device).train().requires_grad_(True)
        self.opt = torch.optim.Adam(self.refiner.parameters(), lr=self.cfg.lr, betas=(0.9, 0.99))

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def save_checkpoint(self):
        state = {"refiner": self.refiner.state_dict(), "opt": self.opt.state_dict(), "step": self.step,
                 "gen": self.gen.get_state(), "config": json.dumps(asdict(self.cfg))}
        if self.D is not None:
            state |= {"D": self.D.state_dict(), "opt_D": self.opt_D.state_dict()}
        atomic_write(self.checkpoint_path, lambda f: torch.save(state, f), overwrite=True)  # never a torn one

    def resume(self) -> bool:
        if not self.checkpoint_path.exists():
            return False
        try:
            state = torch.load(self.checkpoint_path, map_location=self.device, weights_only=True)
            self.refiner.load_state_dict(state["refiner"])
            self.opt.load_state_dict(state["opt"])
            self.gen.set_state(state["gen"].cpu())
            self.step = int(state["step"])
            if self.D is not None and "D" in state:  # a run without the GAN loss goes on with a new D
                self.D.load_state_dict(state["D"])
                self.opt_D.load_state_dict(state["opt_D"])
        except Exception as exc:  # noqa: BLE001 - a torn or foreign file: say which
            raise ValueError(f"{self.checkpoint_path}: not a checkpoint of this refiner ({exc})") from None
        self.log(f"resumed at step {self.step}")
        return True

    def train_step(self) -> dict:
        idx = torch.randint(0, len(self.inputs), (self.cfg.batch,), generator=self.gen).numpy()
        x, y = faces_tensor(self.inputs[idx], self.device), faces_tensor(self.targets[idx], self.device)
        flip = (torch.rand(len(idx), generator=self.gen) < 0.5).to(self.device)
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        y = torch.where(flip[:, None, None, None], y.flip(3), y)
        fake = self.refiner(x)
        loss = reconstruction_loss(fake, y)
        stats = {"loss": loss.item()}
        if self.D is not None:
            # Non-saturating losses: D tells the art from refined faces, the refiner answers it.
            self.D.requires_grad_(False)
            g_adv = F.softplus(-self.D(x, fake)).mean()
            loss = loss + self.cfg.gan_weight * g_adv
            stats["g"] = g_adv.item()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.D is not None:
            self.D.requires_grad_(True)
            d_loss = F.softplus(-self.D(x, y)).mean() + F.softplus(self.D(x, fake.detach())).mean()
            self.opt_D.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_D.step()
            stats["d"] = d_loss.item()
        return stats

    def run(self, progress: Callable | None = None) -> FaceRefiner:
        cfg = self.cfg
        self.refiner.train()

        def lr_at(step):  # a short warm-up, then a cosine decay to a tenth: the lines settle at the end
            warm = min(1.0, (step + 1) / max(1, cfg.steps // 20))
            return cfg.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / cfg.steps)))

        def lr_both(step):
            lr = lr_at(step)
            if self.opt_D is not None:
                for g in self.opt_D.param_groups:
                    g["lr"] = lr
            return lr

        run_steps(self, lr_both, progress)
        self.refiner.eval()
        return self.refiner.cpu()

    def export(self, path=None) -> Path:
        path = Path(path or self.out / "refiner.safetensors")
        save_face_refiner(path, self.refiner)
        return path
