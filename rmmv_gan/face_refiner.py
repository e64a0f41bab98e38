"""The face refiner: the face model's drawing -> the same face with the art's line work.

A face model trained by reconstruction draws each person's shapes and colours but softens
what the art draws with single pixels: the dark outline around hair, face and shoulders, the
strands in the hair, the edge of a collar. Those are local and follow from the shapes, so a
small image-to-image network learns them from pairs (the face model's drawing of a person,
the artist's face of that person; rmmv_gan.train_refiner) where a GAN phase on a CPU did not.
It runs after the face model on every emotion (pipeline step 7), before the cut-out.

    ref = load_face_refiner("refiner.safetensors")       # untrusted file: shapes checked
    faces = refine_faces(ref, faces)                      # uint8 [N, H, W, 3] -> the same

The network (about 0.2 M parameters at the default size) is a residual U-Net of one level:
    face x [N, 3, H, W] in [-1, 1]
    conv 3x3, `channels`; residual block (two 3x3 convs)                 [N, c, H, W]   h
    conv 4x4 stride 2, `low_channels`; `low_blocks` residual blocks       [N, c2, H/2, W/2]
    nearest 2x up, conv 3x3 to c; concatenated with h, conv 3x3 to c;
    residual block                                                        [N, c, H, W]
    conv 3x3 to 3, added to x                                             [N, 3, H, W]
The half-size level sees 5 px and more around each pixel (a strand, an eye), the full-size
level places the single-pixel lines. The last convolution starts at zero, so an untrained
refiner returns the face unchanged. H and W must be even.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .netfile import load_network, save_network

FORMAT_NAME = "rmmv-gan-face-refiner"
FORMAT_VERSION = 1
# Bounds on a description read from a file: the largest network they allow is ~20 M parameters.
_LIMITS = {"channels": (4, 128), "low_channels": (4, 256), "low_blocks": (0, 16)}


class FaceRefinerFileError(ValueError):
    """A refiner file that cannot be read or does not describe a valid refiner."""


class _Residual(nn.Module):
    """x + conv(lrelu(conv(lrelu(x)))), 3x3 convolutions keeping the channel count."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(F.leaky_relu(self.conv1(F.leaky_relu(x, 0.2)), 0.2))


class FaceRefiner(nn.Module):
    def __init__(self, channels: int = 24, low_channels: int = 48, low_blocks: int = 3):
        """
        channels: width at the face's own size (where the single-pixel lines are placed).
        low_channels: width at half size.
        low_blocks: residual blocks at half size (each widens the view by 4 px there).
        """
        super().__init__()
        self.channels, self.low_channels, self.low_blocks = int(channels), int(low_channels), int(low_blocks)
        c, c2 = self.channels, self.low_channels
        self.inp = nn.Conv2d(3, c, 3, padding=1)
        self.high_in = _Residual(c)
        self.down = nn.Conv2d(c, c2, 4, stride=2, padding=1)
        self.low = nn.Sequential(*[_Residual(c2) for _ in range(self.low_blocks)])
        self.up = nn.Conv2d(c2, c, 3, padding=1)
        self.merge = nn.Conv2d(2 * c, c, 3, padding=1)
        self.high_out = _Residual(c)
        self.out = nn.Conv2d(c, 3, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def config(self) -> dict:
        return {"channels": self.channels, "low_channels": self.low_channels, "low_blocks": self.low_blocks}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, 3, H, W] in [-1, 1], H and W even -> the refined faces, same shape (not clipped)."""
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            raise ValueError(f"the refiner needs faces of even size, got {x.shape[-1]} x {x.shape[-2]}")
        h = self.high_in(self.inp(x))                                   # [N, c, H, W]
        low = self.low(self.down(F.leaky_relu(h, 0.2)))                  # [N, c2, H/2, W/2]
        up = self.up(F.interpolate(low, scale_factor=2, mode="nearest"))  # [N, c, H, W]
        h = self.high_out(self.merge(F.leaky_relu(torch.cat([h, up], 1), 0.2)))
        return x + self.out(F.leaky_relu(h, 0.2))


def faces_tensor(faces: np.ndarray, device="cpu") -> torch.Tensor:
    """uint8 RGB faces [N, H, W, 3] -> [N, 3, H, W] in [-1, 1]."""
    arr = np.asarray(faces)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"faces must be uint8 RGB [N, H, W, 3], got {arr.dtype} {arr.shape}")
    return torch.from_numpy(np.ascontiguousarray(arr)).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1


def refine_faces(refiner: FaceRefiner, faces: np.ndarray) -> np.ndarray:
    """uint8 RGB faces [N, H, W, 3] through the refiner: uint8 RGB, same shape."""
    device = next(refiner.parameters()).device
    with torch.no_grad():
        out = refiner(faces_tensor(faces, device))
    return ((out.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def save_face_refiner(path, refiner: FaceRefiner, half: bool = True) -> None:
    """Write the refiner (float16 by default) with its description; a failed write leaves the
    old file whole."""
    save_network(path, refiner, FORMAT_NAME, FORMAT_VERSION, refiner.config(), half)


def load_face_refiner(path, device="cpu") -> FaceRefiner:
    """Read a refiner file; checked as rmmv_gan.netfile describes, before anything is built."""
    def build(c):
        return FaceRefiner(c["channels"], c["low_channels"], c["low_blocks"])

    return load_network(path, FORMAT_NAME, FORMAT_VERSION, _LIMITS, build, FaceRefinerFileError).to(device)
