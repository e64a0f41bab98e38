"""How much of a sprite's person its face keeps: the identity table of issue 14.

For N held-out renderer vectors v (a seed the trainers never draw from), the procedural
renderer draws v's walk sheet and v's portrait (neutral, no turn). Each method below makes a
face; its *identity error* is the mean absolute RGB difference (0-255) between that face and
the renderer's portrait, both area-downsampled to 18 x 18, averaged over the N vectors.

- renderer: the portrait itself (0 by definition);
- face model, true v: the face model's neutral face of v (z = v with the neutral expression
  and no turn, the pack's neutral emotion mixed in), what the face model can draw at best;
- pipeline: the renderer's walk sheet through the pipeline's face step
  (`rmmv_gan.pipeline.face_w_from_sprite` with the pack's default steps, then the neutral
  emotion mix), the face the exporter would write;
- average face: w_avg with the neutral emotion.
Where the pack has a face refiner (rmmv_gan.face_refiner), the face model's and the pipeline's
rows are given twice: as the face model draws them, and refined, as the exporter writes them.
The last column, *edge strength*, is the mean absolute difference of neighbouring pixels at the
face's own size (0-255): the renderer's single-pixel outlines and strands raise it, a soft
drawing of the same face has less (the renderer's own row gives the art's figure).
`--steps N` adds the pipeline with N projection steps (without an encoder: the source
article's projection of the head crop).

    python benchmarks/face_identity.py [--pack DIR] [--count 64] [--steps 200] [--grid out.png]

Faces are compared before the cut-out to transparency (the model's image on its white), as
the portraits are drawn on white.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from rmmv_gan import procedural
from rmmv_gan.face_refiner import refine_faces
from rmmv_gan.latent import to_uint8
from rmmv_gan.packs import open_pack
from rmmv_gan.pipeline import face_w_from_sprite
from rmmv_gan.sheets import resize
from rmmv_gan.train_encoder import as_drawn, neutral_face_z

HELD_OUT_SEED = 20261201  # training draws from seeds 0-99


def identity_error(faces, portraits) -> float:
    small = lambda img: resize(img, 18, 18).astype(np.float32)  # noqa: E731 - area for a shrink
    return float(np.mean([np.abs(small(a) - small(b)).mean() for a, b in zip(faces, portraits)]))


def draw(opened, ws) -> np.ndarray:
    with torch.no_grad():
        return to_uint8(opened.face.synthesis(as_drawn(opened, ws), noise_mode="const"))[..., :3]


def edge_strength(faces) -> float:
    a = np.asarray(faces, np.float32)
    return float((np.abs(np.diff(a, axis=1)).mean() + np.abs(np.diff(a, axis=2)).mean()) / 2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pack", default=None, help="pack folder (default: the embedded pack)")
    ap.add_argument("--count", type=int, default=64)
    ap.add_argument("--steps", type=int, default=None, help="also the pipeline with this many projection steps")
    ap.add_argument("--grid", default=None, help="write portrait | pipeline face rows (16) to this PNG")
    args = ap.parse_args()
    opened = open_pack(args.pack)
    G = opened.face
    v = np.random.RandomState(HELD_OUT_SEED).randn(args.count, procedural.SPRITE_DIM).astype(np.float32)
    portraits = np.stack([procedural.portrait_from_vector(x, "neutral", 0.0) for x in v])
    sheets = np.stack([procedural.sprite_from_vector(x) for x in v])
    rows = [("renderer's portrait of v", 0.0, None, edge_strength(portraits))]

    def add(label, faces, per=None):
        rows.append((label, identity_error(faces, portraits), per, edge_strength(faces)))
        if opened.refiner is not None:
            faces = refine_faces(opened.refiner, faces)
            rows.append((label + ", refined", identity_error(faces, portraits), per, edge_strength(faces)))
        return faces

    with torch.no_grad():
        true_ws = G.mapping(torch.from_numpy(neutral_face_z(v)), None)
    add("face model given the true v, neutral", draw(opened, true_ws))
    runs = [("pipeline (pack defaults: " + ("encoder" if opened.encoder is not None else "projection")
             + f", {opened.pack.projection_steps} steps)", None)]
    if args.steps is not None:
        runs.append((f"pipeline with {args.steps} projection steps", args.steps))
    pipeline_faces = None
    for label, steps in runs:
        t = time.perf_counter()
        ws = torch.stack([face_w_from_sprite(opened, s, seed=i, steps=steps) for i, s in enumerate(sheets)])
        per = (time.perf_counter() - t) / len(sheets)
        faces = add(label, draw(opened, ws), per)
        pipeline_faces = faces if pipeline_faces is None else pipeline_faces
    avg = G.mapping.w_avg[None, None].repeat(args.count, G.num_ws, 1)
    rows.append(("average face (w_avg)", identity_error(draw(opened, avg), portraits), None, None))
    print(f"{args.count} held-out renderer vectors (seed {HELD_OUT_SEED}), pack {opened.pack.name}")
    print("| method | identity error | face step, s / character | edge strength |")
    print("| --- | --- | --- | --- |")
    for label, err, per, edges in rows:
        print(f"| {label} | {err:.1f} | {'' if per is None else f'{per:.3f}'} | {'' if edges is None else f'{edges:.1f}'} |")
    if args.grid:
        from PIL import Image

        from rmmv_gan.sheets import contact_sheet

        n = min(16, args.count)
        big = lambda img: np.repeat(np.repeat(img, 2, 0), 2, 1)  # noqa: E731
        def framed(sheet):  # the 48 x 64 sheet on a 72 x 72 canvas, beside the 72-px faces
            canvas = np.full((72, 72, 3), 255, np.uint8)
            canvas[4:68, 12:60] = sheet
            return canvas

        sheet_cells = [big(framed(s)) for s in sheets[:n]]
        cells = []
        for i in range(n):
            cells += [sheet_cells[i], big(portraits[i]), big(pipeline_faces[i])]
        Image.fromarray(contact_sheet(cells, columns=6, pad=2, background=(40, 40, 40, 255))).save(args.grid)
        print(f"wrote {args.grid}: walk sheet | renderer portrait | pipeline face, {n} vectors")


if __name__ == "__main__":
    main()
