"""Training StyleGAN2 on rmmv-gan's own networks: the default pack's models, or a user's.

Two phases, both on the same networks:

1. Reconstruction (procedural data only). The procedural renderers draw an image from a
   Gaussian vector v; the generator gets z = v and learns G(z) = render(v) with an L1 plus
   edge loss. Exact targets converge far faster than an adversarial game, which matters on a
   2-core CPU (see docs/default-pack.md).
2. Adversarial. Non-saturating logistic loss, R1 penalty on real images every `r1_interval`
   steps (lazy regularisation, scaled by the interval), style-mixing regularisation, and an
   exponential moving average of G's weights (G_ema, the network that ships). For procedural
   data the reconstruction loss can stay on with a weight, keeping G(z) tied to the renderer.

Data: the procedural renderers ("sprites", "portraits"), or a folder of RPG Maker character
sheets (`$NAME.png` holds one character, other sheets eight), sliced with the asset layer and
scaled to the model's canvas.

Checkpoints (`checkpoint.pt`: state dicts and step, read back with weights_only=True) allow a
run to resume across working periods; `network.safetensors` is the exported G_ema and D.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .fileio import atomic_write
from .latent import to_uint8
from .models import load_generator, new_network, save_networks

# Canvases and networks sized for CPU training (see docs/default-pack.md for the reasoning).
PRESETS = {
    # 3 x 4 walk sheet of 16-px frames: 48 wide, 64 high; constant 4 x 3 (h x w).
    "sprite": dict(img_resolution=64, init_res=[4, 3], channel_base=2048, channel_max=128, w_dim=128,
                   mapping_layers=4),
    # 72-px portrait: constant 9 x 9, doubled three times.
    "portrait": dict(img_resolution=32, init_res=[9, 9], channel_base=1024, channel_max=128, w_dim=128,
                     mapping_layers=4),
    # A few seconds of training, for tests and smoke runs: 12 x 16 canvas.
    "tiny": dict(img_resolution=16, init_res=[4, 3], channel_base=256, channel_max=32, w_dim=32, mapping_layers=2),
}


@dataclass
class TrainConfig:
    data: str  # "sprites", "portraits", or a folder of MV character sheets
    outdir: str
    steps: int = 10000  # total steps of both phases
    recon_steps: int = 4000  # phase 1 length (procedural data only)
    recon_weight: float = 1.0  # reconstruction loss weight kept during phase 2
    # Procedural data: the share of each batch drawn as one of the default pack's character
    # types (procedural.archetypes: a random type's traits set, the rest of the vector random).
    # Random vectors draw a hood, a hat or armour in a tenth to a fifth of the characters, and
    # the sprite model learned to ignore them; this shows each type often enough to be drawn.
    type_share: float = 0.0
    # Procedural data: the share of each batch given a hair style drawn uniformly (not bald) and
    # no headwear (procedural.palette.styled_share), before the types above take their share:
    # spikes and ponytails are rare uncovered, and the face model drew them as other cuts.
    style_share: float = 0.0
    # The hair styles that share draws from (names in procedural.palette.HAIR_STYLES); empty
    # for all but bald. Naming one style teaches a model the one it misses (spiky crowns).
    styles: list = field(default_factory=list)
    # The mapping network's learning rate is 0.01x the rest (StyleGAN's lr_multiplier), which
    # keeps the adversarial game stable but makes the supervised phase learn z -> traits (the
    # renderer's thresholds and colour ramps) very slowly. During reconstruction its Adam
    # learning rate is multiplied by this, i.e. it learns as fast as the synthesis network.
    recon_mapping_lr: float = 100.0
    # Supervised regression takes a larger step and momentum than the adversarial game (which
    # needs lr 0.0025 and beta1 0): 400-step sprite trials reached held-out L1+edge 0.76 with
    # these against 1.11 with the GAN settings.
    recon_lr: float = 0.01
    recon_beta1: float = 0.9
    batch: int = 16
    preset: str = ""  # defaults to "sprite" or "portrait" by data
    z_dim: int = 0  # defaults to the renderer's vector length (procedural) or 64
    lr: float = 0.0025
    r1_gamma: float = 0.1
    r1_interval: int = 16
    style_mixing: float = 0.9
    # Portraits: the w layers that alone decide the expression. At these layers the generator
    # gets one learned w per expression (the trainer's `expression_ws`, not the mapping's
    # output); the other layers get the mapping of z and must not carry the expression. Each
    # batch holds pairs: the same face with two expressions. Beside the reconstruction of both,
    # the pair's difference is matched to the renderer's (squared error, weighted by
    # `expression_weight`): an expression changes a few dozen pixels, too few for a plain L1 to
    # notice, and an L1 on the difference is smallest at no difference at all until the change
    # is drawn in exactly the right pixels (the first default pack drew one expression for
    # every z, and plain style mixing left identity in every layer). Emotion presets are then
    # found by projection, and "mix an emotion preset into these layers" changes the
    # expression and nothing else.
    expression_layers: list = field(default_factory=list)
    # How the expression's learned w enters the expression layers. "replace": it is their w,
    # so those layers draw every face alike and all of the person (hair outline, hat brim,
    # ponytail) must pass through the layers before them: the 18- and 36-px layers of the
    # default face model, which then drew mostly bob cuts. "offset": they take the person's
    # own w shifted by (expression w - the mapping's w_avg), so the person reaches every
    # layer and the pair's shared w still leaves the difference to the expression alone. A
    # pack draws such a model with its emotion mixes in mode "offset" (latent.archetype_mix),
    # the learned w as the preset: the same sum.
    expression_mode: str = "replace"
    expression_weight: float = 10.0
    # Weight of a loss, added to every reconstruction loss (the GAN phase's too), that reads z
    # back from the mapping's w (a learned linear read-out, squared error, trained in the
    # reconstruction steps), so w keeps every component of the renderer's vector.
    # Without it the default face model's mapping learnt to use a dozen of its 34 components
    # and left the rest (eye colour, headwear, the accent colour, chin, eye shape, brows) at
    # their initial weights: the synthesis never saw them vary, so it never learnt to draw
    # them, and so the mapping had no reason to pass them on.
    latent_weight: float = 0.0
    # Weight of a squared-error term added to every reconstruction loss (beside the L1 and edge
    # terms). L1 pulls every wrong pixel back with the same force, however wrong it is, so a
    # large shape the model has not started to draw (a ponytail, spikes, a headband: white where
    # the art has hair) weighs no more per pixel than the faint colour errors all over the face;
    # the default face model drew ponytails as a bob after 55,000 steps. A squared error pulls in
    # proportion to the error: in a 300-step test on 16 ponytailed portraits, weight 2 drew the
    # ponytails on their own sides where L1 alone drew a faint smudge.
    squared_weight: float = 0.0
    ema_kimg: float = 2.0  # half-life of the EMA, in thousands of images
    seed: int = 0
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 250
    device: str = "cpu"
    extra: dict = field(default_factory=dict)

    def resolved_preset(self) -> str:
        return self.preset or ("portrait" if self.data == "portraits" else "sprite")


# ----------------------------------------------------------------------------------------------
# Data


class ProceduralData:
    """Batches (z, images in [-1, 1]) from a procedural renderer, z ~ N(0, I).

    Sprites: z is the renderer's vector. Portraits: z is the vector plus two components that
    choose the expression (eight equally likely bins of the normal distribution) and the
    head turn (2 * Phi(z) - 1), so an unconditional face model learns all of them.
    """

    def __init__(self, kind: str, seed: int, type_share: float = 0.0, style_share: float = 0.0, styles=()):
        from . import procedural
        from .procedural.archetypes import TrainingShares

        self.procedural = procedural
        self.kind = "sprite" if kind == "sprites" else "portrait"
        base = procedural.SPRITE_DIM if self.kind == "sprite" else procedural.PORTRAIT_DIM
        self.base = base
        self.dim = base if self.kind == "sprite" else base + 2
        self.rng = np.random.RandomState(seed)
        # see TrainConfig.type_share, style_share and styles
        self.shares = TrainingShares(seed, type_share, style_share, styles)

    def vectors(self, n) -> np.ndarray:
        """n latent vectors [n, dim]: N(0, I), a style_share of them given an uncovered hair
        style, then a type_share of them a random type's traits."""
        z = self.rng.randn(n, self.dim).astype(np.float32)
        self.shares.apply(z[:, : self.base])  # not a portrait's expression and turn
        return z

    def render(self, z: np.ndarray) -> np.ndarray:
        p = self.procedural
        if self.kind == "sprite":
            return p.sprite_from_vector(z)
        expression, turn = portrait_controls(z[p.PORTRAIT_DIM :])
        return p.portrait_from_vector(z[: p.PORTRAIT_DIM], p.EXPRESSIONS[expression], turn)

    def batch(self, n, device):
        z = self.vectors(n)
        return torch.from_numpy(z).to(device), self._draw(z, device)

    def expression_pairs(self, n, device):
        """(z, ea, eb, a, b): faces z drawn with expressions ea (a) and eb (b), both indices."""
        if self.kind != "portrait":
            raise ValueError("expression pairs need portraits")
        z = self.vectors(n)
        e = self.procedural.PORTRAIT_DIM  # the expression component (see portrait_controls)
        drawn = z.copy()
        drawn[:, e] = self.rng.randn(n)
        ea = [portrait_controls(v[e:])[0] for v in z]
        eb = [portrait_controls(v[e:])[0] for v in drawn]
        t = lambda a: torch.as_tensor(a).to(device)  # noqa: E731
        return t(z), t(ea), t(eb), self._draw(z, device), self._draw(drawn, device)

    def _draw(self, z, device):
        imgs = np.stack([self.render(v) for v in z])
        return (torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1).to(device)


def portrait_controls(extra: np.ndarray) -> tuple[int, float]:
    """(expression index, turn) from the two extra latent components of a portrait."""
    from statistics import NormalDist

    cdf = NormalDist().cdf
    expression = min(int(cdf(float(extra[0])) * 8), 7)
    turn = 2 * cdf(float(extra[1])) - 1
    return expression, turn


def portrait_latent(v, expression: int = 0, turn: float = 0.0) -> np.ndarray:
    """The face model's z for renderer vector(s) v [..., PORTRAIT_DIM]: v and the two extra
    components that portrait_controls reads back as this expression index and turn."""
    from statistics import NormalDist

    ppf = NormalDist().inv_cdf
    v = np.asarray(v, np.float32)
    extra = np.array([ppf((expression + 0.5) / 8), ppf((turn + 1) / 2)], np.float32)
    return np.concatenate([v, np.broadcast_to(extra, v.shape[:-1] + (2,))], -1)


class FolderData:
    """Characters sliced from the MV sheets in a folder, composited on white, at the canvas size."""

    def __init__(self, folder: str, shape, seed: int):
        from .images import read_image
        from .sheets import resize, slice_eight_sheet

        h, w = shape
        chars = []
        for path in sorted(Path(folder).glob("*.png")):
            rgba = np.asarray(read_image(path).convert("RGBA"))  # ImageFileError (a ValueError) names the file
            sheets = [rgba] if path.name.startswith(("$", "!$")) else slice_eight_sheet(rgba)
            for sheet in sheets:
                if sheet[..., 3].max() == 0:
                    continue  # an empty slot of an 8-character sheet
                small = resize(sheet, w, h).astype(np.float32)
                a = small[..., 3:] / 255.0
                chars.append((small[..., :3] * a + 255 * (1 - a)).astype(np.uint8))
        if not chars:
            raise ValueError(f"{folder}: no RPG Maker character sheets (*.png) found")
        self.images = torch.from_numpy(np.stack(chars)).permute(0, 3, 1, 2).float() / 127.5 - 1
        self.rng = np.random.RandomState(seed)
        self.dim = 0

    def batch(self, n, device):
        # No mirror augmentation: flipping a walk sheet would swap its left and right rows.
        idx = self.rng.randint(0, len(self.images), n)
        return None, self.images[idx].to(device)


# ----------------------------------------------------------------------------------------------
# Losses


def edge_l1(a, b):
    """L1 distance of horizontal and vertical differences: sharp edges count, not just colour."""
    dx = (a[..., :, 1:] - a[..., :, :-1]) - (b[..., :, 1:] - b[..., :, :-1])
    dy = (a[..., 1:, :] - a[..., :-1, :]) - (b[..., 1:, :] - b[..., :-1, :])
    return dx.abs().mean() + dy.abs().mean()


def reconstruction_loss(fake, real, squared_weight: float = 0.0):
    """L1 + edge L1 of images in [-1, 1], plus `squared_weight` times the squared error
    (TrainConfig.squared_weight)."""
    loss = (fake - real).abs().mean() + edge_l1(fake, real)
    if squared_weight > 0:
        loss = loss + squared_weight * (fake - real).square().mean()
    return loss


def style_mixed_ws(G, z, prob, gen):
    """Map z; with probability `prob` per sample, layers from a cut-off on come from another z."""
    ws = G.mapping(z, None)
    if prob <= 0:
        return ws
    n, num_ws = ws.shape[:2]
    z2 = torch.randn(z.shape, generator=gen).to(z.device)
    ws2 = G.mapping(z2, None)
    cutoff = torch.randint(1, num_ws, (n,), generator=gen)
    use = torch.rand(n, generator=gen) < prob
    layer = torch.arange(num_ws)[None, :]
    mask = (use[:, None] & (layer >= cutoff[:, None])).to(z.device)[..., None]
    return torch.where(mask, ws2, ws)


# ----------------------------------------------------------------------------------------------
# The loop


class Trainer:
    def __init__(self, cfg: TrainConfig, log: Callable[[str], None] = print):
        self.cfg = cfg
        self.log = log
        self.device = torch.device(cfg.device)
        self.out = Path(cfg.outdir)
        self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed + 1)
        preset = dict(PRESETS[cfg.resolved_preset()])
        shape = (preset["init_res"][0] * preset["img_resolution"] // 4, preset["init_res"][1] * preset["img_resolution"] // 4)
        if cfg.data in ("sprites", "portraits"):
            self.data = ProceduralData(cfg.data, cfg.seed, cfg.type_share, cfg.style_share, cfg.styles)
            drawn = self.data.render(np.zeros(self.data.dim, np.float32)).shape[:2]
            if tuple(drawn) != shape:
                raise ValueError(f"preset {cfg.resolved_preset()!r} draws {shape[1]} x {shape[0]}, but the "
                                 f"{cfg.data} renderer draws {drawn[1]} x {drawn[0]}")
        else:
            self.data = FolderData(cfg.data, shape, cfg.seed)
        z_dim = cfg.z_dim or self.data.dim or 64
        if self.data.dim and z_dim != self.data.dim:
            raise ValueError(f"z_dim must equal the renderer's vector length {self.data.dim} for procedural data")
        common = dict(img_resolution=preset["img_resolution"], img_channels=3, channel_base=preset["channel_base"],
                      channel_max=preset["channel_max"], init_res=preset["init_res"], num_fp16_res=0)
        self.G = new_network("G", "stylegan2", z_dim=z_dim, c_dim=0, w_dim=preset["w_dim"],
                             mapping_kwargs=dict(num_layers=preset["mapping_layers"]), conv_clamp=None, **common)
        self.D = new_network("D", "stylegan2", c_dim=0, conv_clamp=None, **common)
        self.G_ema = new_network("G", "stylegan2", z_dim=z_dim, c_dim=0, w_dim=preset["w_dim"],
                                 mapping_kwargs=dict(num_layers=preset["mapping_layers"]), conv_clamp=None, **common)
        self.G_ema.load_state_dict(self.G.state_dict())
        if cfg.expression_layers:
            num_ws = self.G.num_ws
            if cfg.data != "portraits":
                raise ValueError("expression layers need the portrait renderer (--data portraits)")
            if not all(isinstance(i, int) and 0 <= i < num_ws for i in cfg.expression_layers):
                raise ValueError(f"expression layers must lie in 0..{num_ws - 1}, got {cfg.expression_layers}")
        if cfg.expression_mode not in ("replace", "offset"):
            raise ValueError(f"expression mode must be 'replace' or 'offset', got {cfg.expression_mode!r}")
        # One learned w per expression (see TrainConfig.expression_layers): small offsets from
        # zero for a new network, from its average w when a run without them is resumed.
        n_expr = 8 if cfg.expression_layers else 0
        self._expression_offsets = 0.1 * torch.randn(n_expr, preset["w_dim"], generator=self.gen).to(self.device)
        self.expression_ws = torch.nn.Parameter(self._expression_offsets.clone())
        # The read-out of TrainConfig.latent_weight, with its own optimiser (not part of G).
        self.latent_readout = torch.nn.Linear(preset["w_dim"], z_dim).to(self.device)
        self.opt_latent = torch.optim.Adam(self.latent_readout.parameters(), lr=0.01)
        for net in (self.G, self.D, self.G_ema):
            net.to(self.device)
        for net in (self.G, self.G_ema):
            net.synthesis.split_batch = False  # training wants real batches
        self.G_ema.eval().requires_grad_(False)
        self.G.train()
        self.D.train()
        # Lazy R1: the optimiser's betas and lr are adjusted for the interval, as in the paper.
        mb = cfg.r1_interval / (cfg.r1_interval + 1)
        mapping = list(self.G.mapping.parameters())
        ids = {id(p) for p in mapping}
        rest = [p for p in self.G.parameters() if id(p) not in ids]
        self.opt_G = torch.optim.Adam([{"params": rest}, {"params": mapping, "mapping": True},
                                       {"params": [self.expression_ws]}], lr=cfg.lr, betas=(0.0, 0.99))
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=cfg.lr * mb, betas=(0.0, 0.99**mb))
        self.step = 0
        self.fixed_z = torch.randn(16, z_dim, generator=torch.Generator().manual_seed(123)).to(self.device)
        self.shape = shape
        self.history = []

    # -- checkpoints ------------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def save_checkpoint(self):
        state = {"G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
                 "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(), "step": self.step,
                 "expression_ws": self.expression_ws.detach(),
                 "latent_readout": self.latent_readout.state_dict(), "opt_latent": self.opt_latent.state_dict(),
                 "config": json.dumps(asdict(self.cfg))}
        # a crash leaves the previous checkpoint whole
        atomic_write(self.checkpoint_path, lambda f: torch.save(state, f), overwrite=True)

    def resume(self) -> bool:
        if not self.checkpoint_path.exists():
            return False
        fix = "delete it, or give --no-resume or another --outdir"
        try:
            state = torch.load(self.checkpoint_path, map_location=self.device, weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch reports a damaged file in many ways
            raise ValueError(f"{self.checkpoint_path}: not a readable checkpoint "
                             f"({type(exc).__name__}); {fix}") from None
        if not isinstance(state, dict) or not {"G", "D", "G_ema", "opt_G", "opt_D", "step"} <= set(state):
            raise ValueError(f"{self.checkpoint_path}: not a checkpoint of rmmv-gan train; {fix}")
        try:
            self.G.load_state_dict(state["G"])
            self.D.load_state_dict(state["D"])
            self.G_ema.load_state_dict(state["G_ema"])
        except (RuntimeError, TypeError, AttributeError):
            raise ValueError(f"{self.checkpoint_path}: a checkpoint of other networks than --preset "
                             f"{self.cfg.resolved_preset()} and --data make; {fix}") from None
        try:
            saved_mode = json.loads(state["config"]).get("expression_mode", "replace")
        except (KeyError, TypeError, ValueError, AttributeError):
            saved_mode = self.cfg.expression_mode  # a checkpoint without its config: nothing to check
        if self.cfg.expression_layers and saved_mode != self.cfg.expression_mode:
            raise ValueError(f"{self.checkpoint_path}: trained with expression mode {saved_mode!r}, not "
                             f"{self.cfg.expression_mode!r}; give --expression-mode {saved_mode}")
        with torch.no_grad():
            if "expression_ws" in state and state["expression_ws"].shape == self.expression_ws.shape:
                self.expression_ws.copy_(state["expression_ws"])
            else:  # a run that did not learn them yet: start at its average w
                self.expression_ws.copy_(self.G.mapping.w_avg + self._expression_offsets)
        if isinstance(state.get("latent_readout"), dict):
            try:
                self.latent_readout.load_state_dict(state["latent_readout"])
                if isinstance(state.get("opt_latent"), dict):
                    self.opt_latent.load_state_dict(state["opt_latent"])
            except (RuntimeError, TypeError, ValueError):
                self.log("latent read-out does not fit: starting it afresh")
        try:
            self.opt_G.load_state_dict(state["opt_G"])
        except ValueError:  # a checkpoint from before the mapping got its own parameter group
            self.log("G optimiser state does not fit (older checkpoint): starting it afresh")
        self.opt_D.load_state_dict(state["opt_D"])
        self.step = int(state["step"])
        self.log(f"resumed at step {self.step}")
        return True

    def export(self, path=None, half=True) -> Path:
        path = Path(path or self.out / "network.safetensors")
        save_networks(path, {"G": self.G_ema.cpu(), "D": self.D.cpu()}, half=half)
        self.G_ema.to(self.device)
        self.D.to(self.device)
        return path

    # -- steps ------------------------------------------------------------------------------

    def _ema(self):
        beta = 0.5 ** (self.cfg.batch / max(self.cfg.ema_kimg * 1000, 1e-8))
        with torch.no_grad():
            for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
                p_ema.copy_(p.detach().lerp(p_ema, beta))
            for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
                b_ema.copy_(b)

    def with_expressions(self, ws, expressions):
        """ws [N, num_ws, w_dim] with the learned w of each sample's expression at the expression layers."""
        ws = ws.clone()
        layers, expression = self.cfg.expression_layers, self.expression_ws[expressions][:, None, :]
        if self.cfg.expression_mode == "offset":
            ws[:, layers] = ws[:, layers] + (expression - self.G.mapping.w_avg.detach())
        else:
            ws[:, layers] = expression
        return ws

    def expressions_of(self, z):
        """The expression index each portrait z draws (see portrait_controls)."""
        e = self.data.procedural.PORTRAIT_DIM
        return torch.tensor([portrait_controls(v[e:])[0] for v in z.cpu().numpy()], device=z.device)

    def _styles(self, G, z, mixing=0.0, psi=1.0):
        """ws for z: style-mixed with probability `mixing`, learned expressions where configured."""
        ws = style_mixed_ws(G, z, mixing, self.gen) if psi == 1.0 else G.mapping(z, None, truncation_psi=psi)
        return self.with_expressions(ws, self.expressions_of(z)) if self.cfg.expression_layers else ws

    def _reconstruction_loss(self, v=None, real=None, update_emas=False):
        """The reconstruction loss of a batch (drawn here unless given), expression pairs where configured."""
        cfg = self.cfg
        if not cfg.expression_layers:
            if v is None:
                v, real = self.data.batch(cfg.batch, self.device)
            ws = self.G.mapping(v, None, update_emas=update_emas)
            fake = self.G.synthesis(ws, update_emas=update_emas, noise_mode="random")
            return reconstruction_loss(fake, real, cfg.squared_weight) + self._latent_loss(v, ws)
        z, ea, eb, a, b = self.data.expression_pairs(max(cfg.batch // 2, 1), self.device)
        mapped = self.G.mapping(z, None, update_emas=update_emas)  # [N, num_ws, w_dim]
        ws = torch.cat([self.with_expressions(mapped, ea), self.with_expressions(mapped, eb)])
        # One noise for both halves: their difference should be the expression alone.
        fake_a, fake_b = self.G.synthesis(ws, noise_mode="const").chunk(2)
        return (reconstruction_loss(torch.cat([fake_a, fake_b]), torch.cat([a, b]), cfg.squared_weight)
                + cfg.expression_weight * F.mse_loss(fake_b - fake_a, b - a) + self._latent_loss(z, mapped))

    def _latent_loss(self, z, ws):
        """TrainConfig.latent_weight times the read-out's squared error from w [N, num_ws, w_dim] to z."""
        if self.cfg.latent_weight <= 0:
            return 0.0
        return self.cfg.latent_weight * F.mse_loss(self.latent_readout(ws[:, 0]), z)

    def reconstruction_step(self):
        loss = self._reconstruction_loss(update_emas=True)
        self.opt_G.zero_grad(set_to_none=True)
        self.opt_latent.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_G.step()
        if self.cfg.latent_weight > 0:
            self.opt_latent.step()
        return {"recon": loss.item()}

    def adversarial_step(self):
        cfg, stats = self.cfg, {}
        v, real = self.data.batch(cfg.batch, self.device)
        z = v if v is not None else torch.randn(cfg.batch, self.G.z_dim, generator=self.gen).to(self.device)
        # G: fool D (style mixing regularisation), stay near the renderer where there is one.
        self.D.requires_grad_(False)
        fake = self.G.synthesis(self._styles(self.G, z, cfg.style_mixing), noise_mode="random")
        loss_g = F.softplus(-self.D(fake, None)).mean()
        stats["g"] = loss_g.detach().item()
        if v is not None and cfg.recon_weight > 0:
            recon = self._reconstruction_loss(v, real)
            loss_g = loss_g + cfg.recon_weight * recon
            stats["recon"] = recon.detach().item()
        self.opt_G.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_G.step()
        self.D.requires_grad_(True)
        # D: real vs fake; R1 on reals every r1_interval steps, scaled by the interval.
        with torch.no_grad():
            fake = self.G.synthesis(self._styles(self.G, z, cfg.style_mixing), noise_mode="random")
        loss_d = F.softplus(self.D(fake, None)).mean() + F.softplus(-self.D(real, None)).mean()
        stats["d"] = loss_d.detach().item()
        if self.step % cfg.r1_interval == 0 and cfg.r1_gamma > 0:
            real_r = real.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.D(real_r, None).sum(), real_r, create_graph=True)
            r1 = grad.square().sum(dim=[1, 2, 3]).mean()
            loss_d = loss_d + r1 * (cfg.r1_gamma / 2) * cfg.r1_interval
            stats["r1"] = r1.detach().item()
        self.opt_D.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_D.step()
        with torch.no_grad():  # track w_avg for truncation
            self.G.mapping(z, None, update_emas=True)
        return stats

    def sample_grid(self, path=None) -> np.ndarray:
        from .sheets import contact_sheet

        with torch.no_grad():
            img = self.G_ema.synthesis(self._styles(self.G_ema, self.fixed_z, psi=0.7), noise_mode="const")
        imgs = to_uint8(img)
        scale = 2
        imgs = [np.repeat(np.repeat(i, scale, 0), scale, 1) for i in imgs]
        grid = contact_sheet(imgs, columns=8, pad=2, background=(40, 40, 40, 255))
        if path is not None:
            from PIL import Image

            Image.fromarray(grid).save(path)
        return grid

    def run(self, steps=None, progress: Callable | None = None):
        cfg = self.cfg
        end = cfg.steps if steps is None else min(cfg.steps, self.step + steps)
        procedural = isinstance(self.data, ProceduralData)
        t0, n0 = time.perf_counter(), self.step
        while self.step < end:
            phase = "recon" if procedural and self.step < cfg.recon_steps else "gan"
            for group in self.opt_G.param_groups:  # see TrainConfig.recon_*
                recon = phase == "recon"
                group["lr"] = (cfg.recon_lr if recon else cfg.lr) * (
                    cfg.recon_mapping_lr if recon and group.get("mapping") else 1.0)
                group["betas"] = (cfg.recon_beta1 if recon else 0.0, 0.99)
            stats = self.reconstruction_step() if phase == "recon" else self.adversarial_step()
            if not all(math.isfinite(v) for v in stats.values()):
                raise FloatingPointError(f"step {self.step}: non-finite loss {stats}")
            self._ema()
            self.step += 1
            self.history.append(stats)
            if progress is not None:
                progress(self.step, end, stats)
            if self.step % cfg.log_every == 0 or self.step == end:
                rate = (time.perf_counter() - t0) / max(self.step - n0, 1)
                self.log(f"step {self.step}/{cfg.steps} {phase} " + " ".join(f"{k} {v:.4f}" for k, v in stats.items())
                         + f" ({rate:.2f} s/step)")
            if self.step % cfg.sample_every == 0 or self.step == end:
                self.sample_grid(self.out / f"samples_{self.step:06d}.png")
            if self.step % cfg.checkpoint_every == 0 or self.step == end:
                self.save_checkpoint()
        return self.history


def fine_tune_from(trainer: Trainer, network_path) -> None:
    """Start from an existing rmmv-gan model of the same configuration (user fine-tuning)."""
    G = load_generator(network_path, trainer.device)  # ModelFileError (a ValueError) for a bad file
    try:
        trainer.G.load_state_dict(G.state_dict())
    except RuntimeError:
        raise ValueError(f"--from-network {network_path}: a generator of another size than --preset "
                         f"{trainer.cfg.resolved_preset()} makes (give the --preset it was trained with)") from None
    trainer.G_ema.load_state_dict(G.state_dict())
