"""The layer probe: which layer of a model controls what."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from .latent import mix, to_uint8

LABEL_WIDTH = 64


@torch.no_grad()
def probe_grid(G, w_a: torch.Tensor, w_b: torch.Tensor, layers, pad: int = 2, min_cell: int = 96) -> np.ndarray:
    """uint8 RGB grid: one row per layer i with A, B, A<-B[i], B<-A[i], labelled on the left.
    Images smaller than `min_cell` are enlarged by a whole factor (pixels repeated)."""
    device = G.mapping.w_avg.device
    rows = []
    for i in layers:
        ws = torch.stack([w_a, w_b, mix(w_a, w_b, [i]), mix(w_b, w_a, [i])]).to(device)
        images = to_uint8(G.synthesis(ws, noise_mode="const"))[..., :3]
        k = -(-min_cell // min(images.shape[1:3]))
        rows.append(images.repeat(k, axis=1).repeat(k, axis=2) if k > 1 else images)
    h, w = rows[0].shape[1:3]
    grid = Image.new("RGB", (LABEL_WIDTH + 4 * (w + pad), len(rows) * (h + pad) + 14), (32, 32, 32))
    draw = ImageDraw.Draw(grid)
    for col, title in enumerate(("A", "B", "A <- B[i]", "B <- A[i]")):
        draw.text((LABEL_WIDTH + col * (w + pad) + 2, 1), title, fill=(230, 230, 230))
    for r, (i, images) in enumerate(zip(layers, rows)):
        y = 14 + r * (h + pad)
        draw.text((4, y + h // 2 - 5), f"layer {i}", fill=(230, 230, 230))
        for col, img in enumerate(images):
            grid.paste(Image.fromarray(np.ascontiguousarray(img)), (LABEL_WIDTH + col * (w + pad), y))
    return np.asarray(grid)
