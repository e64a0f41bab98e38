"""The layer probe: which layer of a model controls what."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw

from .latent import map_seed, mix, to_uint8

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


@dataclass
class ProbeRequest:
    """A probe of one model of a pack: seeds A and B, one row per layer."""

    model: str
    seeds: list
    psi: float
    layers: list

    @classmethod
    def from_json(cls, body, opened) -> "ProbeRequest":
        """A probe request from parsed JSON, checked against the pack's models and the request
        LIMITS (psi, seed); RequestError names the field."""
        from .pipeline import LIMITS, RequestError

        if not isinstance(body, dict):
            raise RequestError("body: must be a JSON object")
        for key in body:
            if key not in ("model", "seeds", "psi", "layers"):
                raise RequestError(f"{key}: unknown field (known: model, seeds, psi, layers)")
        model = body.get("model", "face")
        if model not in ("sprite", "face"):
            raise RequestError(f"model: must be 'sprite' or 'face', not {model!r}")
        num_ws = getattr(opened, model).num_ws
        seeds = body.get("seeds", [1, 2])
        if not isinstance(seeds, list) or len(seeds) != 2:
            raise RequestError("seeds: must be a list of two seeds")
        for seed in seeds:
            LIMITS["seed"].check("seeds", seed)
        psi = body.get("psi", 0.7)
        LIMITS["psi"].check("psi", psi)
        layers = body.get("layers", list(range(num_ws)))
        if (not isinstance(layers, list) or not 1 <= len(layers) <= num_ws
                or not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < num_ws for i in layers)):
            raise RequestError(f"layers: must be a list of 1 to {num_ws} layer numbers in [0, {num_ws - 1}]")
        return cls(model, seeds, float(psi), layers)


def run_probe(opened, req: ProbeRequest) -> bytes:
    """The probe grid of an OpenPack's model as PNG bytes (nothing is written to disk)."""
    G = getattr(opened, req.model)
    w_a, w_b = (map_seed(G, s, psi=req.psi) for s in req.seeds)
    buf = io.BytesIO()
    Image.fromarray(probe_grid(G, w_a, w_b, req.layers)).save(buf, format="PNG")
    return buf.getvalue()
