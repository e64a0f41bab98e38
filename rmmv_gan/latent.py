"""Latent codes: seeds to z (the official convention), class labels, and images out of G."""

from __future__ import annotations

import math
import re

import numpy as np
import torch

MAX_SEED = 2**32 - 1
PSI_RANGE = (-2.0, 2.0)  # truncation psi that rmmv-gan accepts anywhere


def check_psi(psi) -> float:
    """psi as a float within PSI_RANGE. NaN compares false with every bound, so it is named."""
    lo, hi = PSI_RANGE
    if isinstance(psi, bool) or not isinstance(psi, (int, float)) or not math.isfinite(psi) or not lo <= psi <= hi:
        raise ValueError(f"must be a finite number in [{lo:g}, {hi:g}], not {psi!r}")
    return float(psi)


def parse_seeds(text: str) -> list[int]:
    """'0-7' or '1,2,5-6' -> [ints], in the order given. Seeds lie in [0, 2**32 - 1]."""
    seeds = []
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if not m:
            raise ValueError(f"bad seed list {text!r}: use numbers and ranges, e.g. 0-7 or 1,4,9-12")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ValueError(f"bad seed range {part!r}: the end is below the start")
        if hi > MAX_SEED:
            raise ValueError(f"seed {hi} is out of range [0, {MAX_SEED}]")
        if hi - lo >= 100_000:
            raise ValueError(f"seed range {part!r} is too long (at most 100000 seeds)")
        seeds.extend(range(lo, hi + 1))
    return seeds


def z_from_seed(seed: int, z_dim: int) -> np.ndarray:
    """z for a seed exactly as NVIDIA's gen_images.py draws it: RandomState(seed).randn(z_dim)."""
    return np.random.RandomState(seed).randn(z_dim)


def z_from_seeds(seeds, z_dim: int, device="cpu") -> torch.Tensor:
    return torch.from_numpy(np.stack([z_from_seed(s, z_dim) for s in seeds])).to(device)


def class_labels(G, class_idx, n: int, device="cpu"):
    """One-hot labels for a conditional G; None for an unconditional one."""
    if G.c_dim == 0:
        if class_idx is not None:
            raise ValueError("this network is unconditional: it takes no class")
        return None
    if class_idx is None:
        raise ValueError(f"this network is conditional: give a class in [0, {G.c_dim - 1}]")
    if not 0 <= int(class_idx) < G.c_dim:
        raise ValueError(f"class {class_idx} is out of range [0, {G.c_dim - 1}]")
    c = torch.zeros([n, G.c_dim], device=device)
    c[:, int(class_idx)] = 1
    return c


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] in about [-1, 1] -> [N, H, W, C] uint8, as gen_images.py converts."""
    return (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()


@torch.no_grad()
def generate_images(G, seeds, psi=1.0, class_idx=None, noise_mode="const", batch_size=8):
    """Yield (seed, uint8 image [H, W, C]) for each seed."""
    device = next(G.parameters()).device
    for i in range(0, len(seeds), batch_size):
        chunk = seeds[i : i + batch_size]
        z = z_from_seeds(chunk, G.z_dim, device)
        c = class_labels(G, class_idx, len(chunk), device)
        img = G(z, c, truncation_psi=psi, noise_mode=noise_mode)
        yield from zip(chunk, to_uint8(img))


# ----------------------------------------------------------------------------------------------
# Layers, truncation, style mixing


def parse_layers(text, num_ws: int) -> list[int]:
    """'6,7' or '0-3,8' (or a list of ints) -> sorted layer indices, each checked against num_ws."""
    if isinstance(text, (list, tuple)):
        items = [int(v) for v in text]
    else:
        items = []
        for part in str(text).split(","):
            m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
            if not m:
                raise ValueError(f"bad layer list {text!r}: use numbers and ranges, e.g. 6,7 or 0-3")
            lo = int(m.group(1))
            hi = int(m.group(2)) if m.group(2) is not None else lo
            if hi >= num_ws:  # before the range is made: 0-1000000000000 would fill memory
                raise ValueError(f"layer {hi} is out of range: this model has {num_ws} layers (0-{num_ws - 1})")
            items.extend(range(lo, hi + 1))
    for i in items:
        if not 0 <= i < num_ws:
            raise ValueError(f"layer {i} is out of range: this model has {num_ws} layers (0-{num_ws - 1})")
    if not items:
        raise ValueError("no layers given")
    return sorted(set(items))


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
    """w_avg + psi * (w - w_avg), on all layers or the first `cutoff` ([N, num_ws, w_dim])."""
    out = ws.clone()
    n = ws.shape[1] if cutoff is None else cutoff
    out[:, :n] = w_avg.lerp(ws[:, :n], psi)
    return out


def mix(base: torch.Tensor, source: torch.Tensor, layers, blend=1.0) -> torch.Tensor:
    """Style mixing: the layers of `base` listed in `layers` move towards `source`.

    base, source: [N, num_ws, w_dim] or [num_ws, w_dim]. blend=1 replaces the layers (the
    article's mixing); a number in (0, 1) interpolates; a dict {layer: weight} or a sequence
    (one weight per listed layer) sets a weight per layer.
    """
    if base.shape != source.shape:
        raise ValueError(f"cannot mix w of shape {tuple(base.shape)} with w of shape {tuple(source.shape)}")
    layers = list(layers)
    if isinstance(blend, dict):
        weights = [float(blend.get(i, 1.0)) for i in layers]
    elif isinstance(blend, (list, tuple)):
        if len(blend) != len(layers):
            raise ValueError(f"{len(blend)} blend weights for {len(layers)} layers")
        weights = [float(b) for b in blend]
    else:
        weights = [float(blend)] * len(layers)
    out = base.clone()
    for i, t in zip(layers, weights):
        out[..., i, :] = base[..., i, :].lerp(source[..., i, :], t)
    return out


def archetype_mix(base: torch.Tensor, preset: torch.Tensor, layers, strength=0.0,
                  offset_from: torch.Tensor | None = None, typed: torch.Tensor | None = None,
                  typed_weight: float = 1.0) -> torch.Tensor:
    """An archetype's mix: the type into `base`, then `strength` of the whole preset character.

    First the listed layers take the type: with `offset_from` None they are replaced by the
    preset's (the article's mix); otherwise they are shifted by preset - offset_from (an
    offset from a reference w, usually the model's average: whatever the preset shares with
    the average, such as an average hair colour, leaves base's own untouched). `typed`, where
    given, is the same character drawn as the type by the model itself (the w of its z with the
    type's components set; see pipeline.sprite_ws): the listed layers then move that far
    further, by `typed_weight` in [0, 1]. Then every layer moves toward the preset by
    `strength` in [0, 1]: 0 gives the type alone, 1 the preset character itself.
    """
    layers = list(layers)
    preset = preset.expand_as(base)  # one preset for a batch of bases
    if offset_from is None:
        out = mix(base, preset, layers)
    else:
        out = base.clone()
        out[..., layers, :] = base[..., layers, :] + (preset - offset_from)[..., layers, :]
    if typed is not None:
        out[..., layers, :] = out[..., layers, :].lerp(typed.expand_as(base)[..., layers, :], float(typed_weight))
    return out.lerp(preset, float(strength)) if strength else out


def map_seed(G, seed: int, psi=1.0, class_idx=None, truncation_cutoff=None) -> torch.Tensor:
    """The w ([num_ws, w_dim]) of a seed, as generate would compute it."""
    device = G.mapping.w_avg.device
    z = z_from_seeds([seed], G.z_dim, device)
    with torch.no_grad():
        return G.mapping(z, class_labels(G, class_idx, 1, device), truncation_psi=psi,
                         truncation_cutoff=truncation_cutoff)[0]


# ----------------------------------------------------------------------------------------------
# w files


def load_w(path, num_ws: int, w_dim: int) -> torch.Tensor:
    """Read a w file into [num_ws, w_dim] (float32).

    Accepted: .npy of shape [num_ws, w_dim] or [1, num_ws, w_dim]; a single w, [w_dim] or
    [1, w_dim], broadcast to every layer; the official projector's projected_w.npz (key 'w',
    [1, num_ws, w_dim]). Files are read without pickle.
    """
    from pathlib import Path

    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.lib.npyio.NpzFile):
            with data:
                if "w" not in data.files:
                    raise ValueError(f"{path}: an .npz w file needs the key 'w' "
                                     f"(it has {', '.join(data.files) or 'none'})")
                arr = data["w"]
        else:
            arr = data
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except (OSError, EOFError, ValueError) as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path}: not a readable .npy/.npz w file ({exc})") from None
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{path}: w must hold floating-point numbers, not {arr.dtype}")
    shape = arr.shape
    if shape in ((w_dim,), (1, w_dim)):
        arr = np.broadcast_to(arr.reshape(1, w_dim), (num_ws, w_dim))
    elif shape in ((num_ws, w_dim), (1, num_ws, w_dim)):
        arr = arr.reshape(num_ws, w_dim)
    else:
        raise ValueError(f"{path}: w of shape {list(shape)} does not fit this model, which takes "
                         f"[{num_ws}, {w_dim}] (or [1, {num_ws}, {w_dim}], [{w_dim}], [1, {w_dim}])")
    if not np.isfinite(arr).all():
        raise ValueError(f"{path}: w holds NaN or infinite values")
    return torch.from_numpy(np.array(arr, dtype=np.float32))


def save_w(path, w: torch.Tensor) -> None:
    """Write [num_ws, w_dim] as .npy, or as the official projector's .npz (key 'w', [1, num_ws, w_dim])."""
    from pathlib import Path

    from .fileio import atomic_write

    path = Path(path)
    arr = w.detach().cpu().float().numpy().reshape(-1, w.shape[-1])
    if path.suffix.lower() == ".npz":
        atomic_write(path, lambda f: np.savez(f, w=arr[None]), overwrite=True)
    else:
        atomic_write(path, lambda f: np.save(f, arr), overwrite=True)


def resolve_w(spec, G, psi=1.0, class_idx=None) -> torch.Tensor:
    """A w source given on the command line: a path to a w file, or a seed number."""
    from pathlib import Path

    text = str(spec)
    if re.fullmatch(r"\d+", text) and not Path(text).exists():
        seed = int(text)
        if seed > MAX_SEED:
            raise ValueError(f"seed {seed} is out of range [0, {MAX_SEED}]")
        return map_seed(G, seed, psi=psi, class_idx=class_idx)
    return load_w(text, G.num_ws, G.w_dim)
