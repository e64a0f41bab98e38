"""Image -> w: projection into a generator's latent space (StyleGAN2 paper, section 5).

The procedure: start every target at the mean w; optimise w (one w broadcast to all layers,
"W", or one per layer, "W+") with Adam under a learning rate that ramps up over the first 5%
of the steps and down along a cosine over the last 25%; add Gaussian noise to w whose scale
(a fraction of the spread of w) decays to zero over the first 75%; for StyleGAN2 models also
optimise the per-layer noise maps, regularised towards white noise by a multi-scale
autocorrelation penalty and renormalised after each step.

The distance between the rendered and the target image is one of:
- "vgg": LPIPS-style distance of VGG16 features, from the official `vgg16.pt` TorchScript file
  the user points to (never downloaded);
- "discriminator": distance of the snapshot discriminator's intermediate features;
- "pixel": 10 x mean squared error plus (1 - multi-scale SSIM), always available.
"auto" picks the first of these that is at hand.
"""

from __future__ import annotations

import copy
import math
import warnings
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .latent import class_labels

LOSSES = ("auto", "vgg", "discriminator", "pixel")


class ProjectionError(ValueError):
    """A projection that cannot run as asked (bad target, missing loss network, bad option)."""


class ProjectionCancelled(RuntimeError):
    """Raised when the cancel callback asks to stop."""


# ----------------------------------------------------------------------------------------------
# Statistics of w, computed once per model


@dataclass
class WStats:
    w_avg: torch.Tensor  # [1, 1, w_dim]
    w_std: float  # root mean squared distance of w from w_avg (summed over w_dim)


_W_STATS: "weakref.WeakKeyDictionary[torch.nn.Module, dict]" = weakref.WeakKeyDictionary()
w_stats_computations = 0  # how many times statistics were computed (tests check the cache)


@torch.no_grad()
def w_stats(G, class_idx=None, samples=10000) -> WStats:
    """Mean and spread of w over `samples` random z (RandomState(123), as the official
    projector draws them); cached per model and class."""
    global w_stats_computations
    cache = _W_STATS.setdefault(G, {})
    key = (class_idx, samples)
    if key not in cache:
        device = G.mapping.w_avg.device
        z = torch.from_numpy(np.random.RandomState(123).randn(samples, G.z_dim)).to(device)
        c = class_labels(G, class_idx, samples, device)
        w = torch.cat([G.mapping(z[i : i + 1000], None if c is None else c[i : i + 1000])[:, :1, :]
                       for i in range(0, samples, 1000)]).float()  # [N, 1, w_dim]
        w_avg = w.mean(dim=0, keepdim=True)
        w_std = float(((w - w_avg).square().sum() / samples).sqrt())
        cache[key] = WStats(w_avg, w_std)
        w_stats_computations += 1
    return cache[key]


# ----------------------------------------------------------------------------------------------
# Targets


def load_target(image, size, background=(255, 255, 255)) -> torch.Tensor:
    """Any image (path, PIL image or uint8 array; RGB, RGBA, greyscale, palette) as a
    [3, H, W] tensor in [-1, 1] at `size` = (H, W): transparency composited over
    `background`, centre-cropped to the model's aspect ratio, then resized."""
    from PIL import Image

    from .images import ImageFileError, read_image

    if isinstance(image, (str, Path)):
        try:
            img = read_image(image)
        except ImageFileError as exc:
            raise ProjectionError(str(exc)) from None
    elif isinstance(image, np.ndarray):
        img = Image.fromarray(image)
    else:
        img = image
    if img.mode in ("P", "PA", "LA", "RGBA", "La") or "transparency" in img.info:
        img = img.convert("RGBA")
        canvas = Image.new("RGBA", img.size, tuple(background) + (255,))
        img = Image.alpha_composite(canvas, img)
    img = img.convert("RGB")
    h, w = size
    sw, sh = img.size
    if sw * h != sh * w:  # crop to the model's aspect ratio, about the centre
        if sw * h > sh * w:
            cw = round(sh * w / h)
            img = img.crop(((sw - cw) // 2, 0, (sw - cw) // 2 + cw, sh))
        else:
            ch = round(sw * h / w)
            img = img.crop((0, (sh - ch) // 2, sw, (sh - ch) // 2 + ch))
    if img.size != (w, h):
        img = img.resize((w, h), Image.LANCZOS)
    arr = torch.from_numpy(np.asarray(img, dtype=np.float32).copy()).permute(2, 0, 1)
    return arr / 127.5 - 1


# ----------------------------------------------------------------------------------------------
# Distances. Each maps (synth [B, 3, H, W], target [B, 3, H, W]) in [-1, 1] to [B].


def _gaussian_window(size, sigma, device, dtype):
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return g


def _ssim_terms(x, y, window):
    c = x.shape[1]
    k = window.numel()
    wx = window.reshape(1, 1, 1, k).expand(c, 1, 1, k)
    wy = window.reshape(1, 1, k, 1).expand(c, 1, k, 1)

    def blur(t):
        return F.conv2d(F.conv2d(t, wx, groups=c), wy, groups=c)

    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2  # dynamic range 2 ([-1, 1])
    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    return (lum * cs).mean(dim=[1, 2, 3]), cs.mean(dim=[1, 2, 3])


def ms_ssim(x, y, scales=4) -> torch.Tensor:
    """Multi-scale SSIM per image ([B]); as many scales as the image size allows."""
    weights = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333][:scales]
    values = []
    for i in range(scales):
        size = min(11, min(x.shape[2:]) - (min(x.shape[2:]) + 1) % 2)
        window = _gaussian_window(size, 1.5 * size / 11, x.device, x.dtype)
        ssim, cs = _ssim_terms(x, y, window)
        last = i == scales - 1 or min(x.shape[2:]) < 16
        values.append(ssim if last else cs)
        if last:
            break
        x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    w = torch.tensor(weights[: len(values)], device=x.device)
    w = w / w.sum()
    vals = torch.stack(values, dim=1).clamp(min=1e-6)  # [B, S]; negative cs would break the power
    return torch.prod(vals ** w, dim=1)


class PixelDistance:
    """10 * mean squared error + (1 - MS-SSIM). Near a match the squared error (of images in
    [-1, 1]) is about a tenth of the structural term; the weight lets both steer. (Measured on
    the golden StyleGAN2 model, 1000 steps, W: 4 of 5 targets above 45 dB against 2 of 5
    with weight 1.)"""

    name = "pixel"

    def __init__(self, target):
        self.target = target

    def __call__(self, synth):
        mse = (synth - self.target).square().mean(dim=[1, 2, 3])
        return 10 * mse + (1 - ms_ssim(synth, self.target))


class VGGDistance:
    """LPIPS-style distance with NVIDIA's `vgg16.pt` (TorchScript: vgg(img, resize_images,
    return_lpips) on images in [0, 255], at most 256 px)."""

    name = "vgg"

    def __init__(self, target, vgg_path, device):
        path = Path(vgg_path) if vgg_path else None
        if path is None:
            raise ProjectionError("the vgg loss needs --vgg FILE (the official vgg16.pt; it is never downloaded)")
        if not path.is_file():
            raise ProjectionError(f"--vgg {path}: no such file")
        try:
            # A TorchScript file the user named: a graph of tensor operations, not Python code.
            with warnings.catch_warnings():  # TorchScript is deprecated, but it is the file's format
                warnings.simplefilter("ignore", DeprecationWarning)
                self.vgg = torch.jit.load(str(path), map_location=device).eval()
            for p in self.vgg.parameters():  # (ScriptModules have no requires_grad_)
                p.requires_grad_(False)
            with torch.no_grad():
                self.target_features = self._features(target)
        except Exception as exc:  # noqa: BLE001 - torch.jit reports bad files in many ways
            raise ProjectionError(f"--vgg {path}: not a usable VGG16 TorchScript file ({type(exc).__name__})") from None

    def _features(self, img):
        img = (img + 1) * 127.5
        if img.shape[2] > 256:
            img = F.interpolate(img, size=(256, round(256 * img.shape[3] / img.shape[2])), mode="area")
        return self.vgg(img, resize_images=False, return_lpips=True)

    def __call__(self, synth):
        return (self._features(synth) - self.target_features).square().flatten(1).sum(dim=1)


class DiscriminatorDistance:
    """Distance of the discriminator's intermediate activations, each layer normalised by
    its energy on the target."""

    name = "discriminator"

    def __init__(self, target, D, c=None):
        self.D, self.c = D, c
        with torch.no_grad():
            self.target_features = self._features(target)
        self.scales = [f.square().mean(dim=[1, 2, 3]).clamp(min=1e-8) for f in self.target_features]

    def _features(self, img):
        # One image at a time: the minibatch-std layer mixes a batch, and a target's distance
        # must not depend on the other targets.
        per_image = []
        for i in range(img.shape[0]):
            feats = []
            self.D(img[i : i + 1], None if self.c is None else self.c[i : i + 1], features=feats)
            per_image.append([f for f in feats if f.ndim == 4])
        return [torch.cat(layer) for layer in zip(*per_image)]

    def __call__(self, synth):
        feats = self._features(synth)
        return sum((f - t).square().mean(dim=[1, 2, 3]) / s for f, t, s in zip(feats, self.target_features, self.scales))


def make_distance(loss, target, *, D=None, vgg=None, c=None, device="cpu"):
    if loss not in LOSSES:
        raise ProjectionError(f"unknown loss {loss!r}: choose one of {', '.join(LOSSES)}")
    if loss == "auto":
        loss = "vgg" if vgg else ("discriminator" if D is not None else "pixel")
    if loss == "vgg":
        return VGGDistance(target, vgg, device)
    if loss == "discriminator":
        if D is None:
            raise ProjectionError("the discriminator loss needs a snapshot that holds a discriminator; this one has none")
        return DiscriminatorDistance(target, D, c)
    return PixelDistance(target)


# ----------------------------------------------------------------------------------------------
# The optimisation


@dataclass
class ProjectionSettings:
    steps: int = 1000
    wplus: bool = False
    loss: str = "auto"
    initial_learning_rate: float = 0.1
    initial_noise_factor: float = 0.05
    lr_rampdown_length: float = 0.25
    lr_rampup_length: float = 0.05
    noise_ramp_length: float = 0.75
    regularize_noise_weight: float = 1e5
    optimize_noise: bool = True  # False: keep the model's own noise maps (details come from w only)
    seed: int = 0
    # (h, w): compare the images area-downsampled to this size, e.g. a 12-pixel head crop's own
    # resolution: a tiny crop scaled up to the model's size holds no detail worth matching pixel
    # by pixel, and matching its blocks pulls the face toward blocky smears. None: full size.
    compare_size: tuple | None = None

    def check(self):
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ProjectionError(f"steps must be a whole number of at least 1, not {self.steps!r}")
        if self.loss not in LOSSES:
            raise ProjectionError(f"unknown loss {self.loss!r}: choose one of {', '.join(LOSSES)}")
        if self.compare_size is not None and not (
                len(self.compare_size) == 2 and all(isinstance(v, int) and v >= 1 for v in self.compare_size)):
            raise ProjectionError(f"compare_size must be (height, width) in whole pixels, not {self.compare_size!r}")

    def learning_rate(self, t: float) -> float:
        ramp = min(1.0, (1.0 - t) / self.lr_rampdown_length)
        ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
        ramp = ramp * min(1.0, t / self.lr_rampup_length)
        return self.initial_learning_rate * ramp


@dataclass
class ProjectionResult:
    ws: torch.Tensor  # [B, num_ws, w_dim]
    images: torch.Tensor  # [B, C, H, W] in about [-1, 1], rendered from ws
    loss: str  # the distance used
    distances: list = field(default_factory=list)  # mean distance per step
    frames: list = field(default_factory=list)  # [B, C, H, W] snapshots, if recorded


def _noise_regularization(bufs) -> torch.Tensor:
    """Sum over maps and scales of squared autocorrelations (shift 1 in x and y), per sample."""
    reg = 0.0
    for v in bufs:
        while True:
            reg = reg + (v * torch.roll(v, 1, dims=3)).mean(dim=[1, 2, 3]) ** 2
            reg = reg + (v * torch.roll(v, 1, dims=2)).mean(dim=[1, 2, 3]) ** 2
            if min(v.shape[2:]) <= 8:
                break
            v = F.avg_pool2d(v, 2)
    return reg


def project(G, targets, settings: ProjectionSettings | None = None, *, D=None, vgg=None, class_idx=None,
            progress: Callable | None = None, cancel: Callable | None = None, record_every: int = 0,
            init_ws: torch.Tensor | None = None) -> ProjectionResult:
    """Project target images ([B, 3, H, W] or [3, H, W] in [-1, 1]) into G's latent space.

    init_ws ([B, num_ws, w_dim]) starts the search there instead of at the mean w (for W, from
    its mean over layers): a refinement of an encoder's answer. progress(step, total, distance)
    is called after each step; cancel() returning True stops with ProjectionCancelled. The
    result is deterministic given settings.seed.
    """
    settings = settings or ProjectionSettings()
    settings.check()
    device = G.mapping.w_avg.device
    targets = targets.to(device, torch.float32)
    if targets.ndim == 3:
        targets = targets[None]
    b = targets.shape[0]
    if tuple(targets.shape[1:]) != (G.img_channels, *G.img_shape):
        raise ProjectionError(f"targets of shape {list(targets.shape[1:])} do not fit the model's "
                              f"[{G.img_channels}, {G.img_shape[0]}, {G.img_shape[1]}]")
    c = class_labels(G, class_idx, b, device)
    stats = w_stats(G, class_idx)
    compared = (lambda img: F.adaptive_avg_pool2d(img, settings.compare_size)) if settings.compare_size else (
        lambda img: img)
    distance = make_distance(settings.loss, compared(targets), D=D, vgg=vgg, c=c, device=device)

    gen = torch.Generator(device="cpu").manual_seed(settings.seed)
    # A private copy: the noise maps become per-target variables, the caller's G is untouched.
    G = copy.deepcopy(G).eval().requires_grad_(False)
    G.synthesis.split_batch = False  # per-target noise maps need the batch together
    noise_bufs = []
    for module in G.synthesis.modules():
        if hasattr(module, "noise_const") and settings.optimize_noise:
            noise = torch.randn([b, 1, *module.noise_const.shape[-2:]], generator=gen).to(device)
            module.noise_const = noise.requires_grad_(True)
            noise_bufs.append(module.noise_const)

    layers = G.num_ws if settings.wplus else 1
    if init_ws is None:
        w_opt = stats.w_avg.to(device).repeat(b, layers, 1).clone()  # [B, L, w_dim]
    else:
        if tuple(init_ws.shape) != (b, G.num_ws, G.w_dim):
            raise ProjectionError(f"init_ws of shape {list(init_ws.shape)} does not fit [{b}, {G.num_ws}, {G.w_dim}]")
        w_opt = init_ws.detach().to(device, torch.float32).clone()
        w_opt = w_opt if settings.wplus else w_opt.mean(1, keepdim=True)
    w_opt.requires_grad_(True)
    optimizer = torch.optim.Adam([w_opt] + noise_bufs, betas=(0.9, 0.999), lr=settings.initial_learning_rate)
    result = ProjectionResult(ws=None, images=None, loss=distance.name)

    for step in range(settings.steps):
        if cancel is not None and cancel():
            raise ProjectionCancelled(f"projection cancelled at step {step} of {settings.steps}")
        t = step / settings.steps
        noise_scale = stats.w_std * settings.initial_noise_factor * max(0.0, 1.0 - t / settings.noise_ramp_length) ** 2
        for group in optimizer.param_groups:
            group["lr"] = settings.learning_rate(t)
        w_noise = torch.randn(w_opt.shape, generator=gen).to(device) * noise_scale
        ws = (w_opt + w_noise).expand(b, G.num_ws, -1) if layers == 1 else w_opt + w_noise
        synth = G.synthesis(ws, noise_mode="const")
        dist = distance(compared(synth))  # [B]
        loss = dist.sum()
        if noise_bufs:
            loss = loss + settings.regularize_noise_weight * _noise_regularization(noise_bufs).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            for buf in noise_bufs:  # keep the maps zero-mean, unit-variance
                buf -= buf.mean(dim=[1, 2, 3], keepdim=True)
                buf *= buf.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        value = float(dist.detach().mean())
        result.distances.append(value)
        if record_every and (step % record_every == 0 or step == settings.steps - 1):
            result.frames.append(synth.detach().cpu())
        if progress is not None:
            progress(step + 1, settings.steps, value)

    with torch.no_grad():
        result.ws = w_opt.detach().expand(b, G.num_ws, -1).clone()
        result.images = G.synthesis(result.ws, noise_mode="const")
    return result


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB of images in [-1, 1], per image."""
    mse = (a.clamp(-1, 1) - b.clamp(-1, 1)).square().mean(dim=[1, 2, 3])
    return 10 * torch.log10(4 / mse.clamp(min=1e-12))
