"""Latent codes: seeds to z (the official convention), class labels, and images out of G."""

from __future__ import annotations

import re

import numpy as np
import torch

MAX_SEED = 2**32 - 1


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
