"""The sprite-to-face encoder: a walk sheet -> the face model's w (W+), in one forward pass.

Projection (rmmv_gan.projector) searches the face model's latent space for a face that looks
like the sprite's head: 200 optimisation steps, seconds on a CPU, and a 12-pixel head crop
says little about a 72-pixel portrait. The encoder learns that search instead, as pSp/e4e
encoders replace optimisation for real photographs, and it sees the whole walk sheet: the
back row shows the hair's length, the side rows a ponytail, the front the skin and outfit.

    enc = load_encoder("encoder.safetensors")            # untrusted file: shapes checked
    ws = enc(sheets)                                      # [N, 3, H, W] in [-1, 1] -> [N, num_ws, w_dim]

The network (about 1.5 M parameters at the default size):
    sheet [N, 3, H, W], resized to `in_shape` by the caller (sheet_tensor)
    conv 3x3, `channels`            + leaky ReLU                         [N, c, H, W]
    conv 3x3 stride 2, 2c           + leaky ReLU                         [N, 2c, H/2, W/2]
    conv 3x3 stride 2, 4c           + leaky ReLU                         [N, 4c, H/4, W/4]
    conv 3x3 stride 2, 4c           + leaky ReLU                         [N, 4c, H/8, W/8]
    conv 1x1, c (a narrow neck before the dense layers)                  [N, c, H/8, W/8]
    dense `hidden` + leaky ReLU, dense num_ws * w_dim                    [N, num_ws * w_dim]
    w = w_avg + that, per layer                                          [N, num_ws, w_dim]
The last dense layer starts at zero, so an untrained encoder answers the average face.
A pack's encoder file is rmmv-gan's safetensors format with its own description
("rmmv-gan-encoder" in the metadata); `load_encoder` builds the network from a description
whose every number is range-checked, and refuses tensors of any other shape.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .netfile import load_network, save_network

FORMAT_NAME = "rmmv-gan-encoder"
FORMAT_VERSION = 1
# Bounds on a description read from a file: the largest network they allow is ~40 M parameters.
_LIMITS = {"in_h": (8, 512), "in_w": (8, 512), "num_ws": (1, 64), "w_dim": (8, 1024), "channels": (4, 128),
           "hidden": (16, 2048)}


class EncoderFileError(ValueError):
    """An encoder file that cannot be read or does not describe a valid encoder."""


class SpriteFaceEncoder(nn.Module):
    def __init__(self, in_shape=(64, 48), num_ws=8, w_dim=128, channels=32, hidden=512):
        """
        in_shape: (H, W) of the walk sheet it reads (the sprite model's native sheet).
        num_ws, w_dim: the face model's number of w layers and w size; the output is W+.
        channels: width of the first convolution (the others are 2x and 4x that).
        hidden: width of the dense layer between the convolutions and the w.
        """
        super().__init__()
        self.in_shape = (int(in_shape[0]), int(in_shape[1]))
        self.num_ws, self.w_dim, self.channels, self.hidden = int(num_ws), int(w_dim), int(channels), int(hidden)
        c = self.channels
        self.convs = nn.ModuleList([
            nn.Conv2d(3, c, 3, padding=1),
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1),
            nn.Conv2d(2 * c, 4 * c, 3, stride=2, padding=1),
            nn.Conv2d(4 * c, 4 * c, 3, stride=2, padding=1),
        ])
        self.neck = nn.Conv2d(4 * c, c, 1)
        gh, gw = self.grid
        self.fc = nn.Linear(c * gh * gw, self.hidden)
        self.out = nn.Linear(self.hidden, self.num_ws * self.w_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.register_buffer("w_avg", torch.zeros(self.w_dim))

    @property
    def grid(self) -> tuple[int, int]:
        """(h, w) of the feature map after three stride-2 convolutions."""
        h, w = self.in_shape
        for _ in range(3):
            h, w = (h + 1) // 2, (w + 1) // 2
        return h, w

    def config(self) -> dict:
        return {"in_h": self.in_shape[0], "in_w": self.in_shape[1], "num_ws": self.num_ws, "w_dim": self.w_dim,
                "channels": self.channels, "hidden": self.hidden}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, 3, H, W] in [-1, 1] at in_shape -> w [N, num_ws, w_dim]."""
        if tuple(x.shape[-2:]) != self.in_shape:
            raise ValueError(f"the encoder reads {self.in_shape[1]} x {self.in_shape[0]} sheets, got "
                             f"{x.shape[-1]} x {x.shape[-2]}")
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
        x = self.neck(x).flatten(1)
        x = F.leaky_relu(self.fc(x), 0.2)
        return self.w_avg + self.out(x).view(-1, self.num_ws, self.w_dim)


def sheet_tensor(sheets, in_shape, device="cpu") -> torch.Tensor:
    """uint8 RGB walk sheets ([H, W, 3] or [N, H, W, 3], any size) -> [N, 3, h, w] in [-1, 1]
    at the encoder's in_shape (area resampling when the size differs)."""
    arr = np.asarray(sheets)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"walk sheets must be uint8 RGB [N, H, W, 3], got {arr.dtype} {arr.shape}")
    x = torch.from_numpy(np.ascontiguousarray(arr)).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1
    if tuple(x.shape[-2:]) != tuple(in_shape):
        x = F.interpolate(x, size=tuple(in_shape), mode="area" if x.shape[-2] >= in_shape[0] else "nearest")
    return x


# ----------------------------------------------------------------------------------------------
# Files


def save_encoder(path, encoder: SpriteFaceEncoder, half: bool = True) -> None:
    """Write the encoder (float16 by default; w_avg stays float32) with its description; a failed
    write leaves the old file whole."""
    save_network(path, encoder, FORMAT_NAME, FORMAT_VERSION, encoder.config(), half, keep_float32=("w_avg",))


def load_encoder(path, device="cpu") -> SpriteFaceEncoder:
    """Read an encoder file. The description is range-checked and every tensor's shape and
    dtype must be the one the described network has, before any tensor is read (rmmv_gan.netfile)."""
    def build(c):
        return SpriteFaceEncoder((c["in_h"], c["in_w"]), c["num_ws"], c["w_dim"], c["channels"], c["hidden"])

    return load_network(path, FORMAT_NAME, FORMAT_VERSION, _LIMITS, build, EncoderFileError).to(device)
