"""Which hair styles and headwear the faces keep: identity error by forced style.

For each hair style and each piece of headwear below, N held-out renderer vectors (the same N
for every row) get that style or headwear (its latent component set to a value that selects
it; hair styles bare-headed). As in `face_identity.py`, each face is compared with the
renderer's neutral portrait of its vector (mean |RGB difference| at 18 x 18, 0-255):
- *true v*: the face model given the vector itself (neutral), refined where the pack has a
  refiner: what the face model can draw of that style;
- *pipeline*: the renderer's walk sheet through the pipeline's face step
  (`face_w_from_sprite`, the pack's defaults), refined: what an exported face keeps of it.
`face_identity.py` gives the average over random vectors; this splits it by the shapes a
player notices first (a ponytail drawn as straight hair, a hood lost).

    python benchmarks/face_styles.py [--pack DIR] [--count 16] [--grid styles.png]

The grid puts, for the first four vectors of each row, the renderer's portrait, the true-v
face and the pipeline's face side by side.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from face_identity import HELD_OUT_SEED, draw, identity_error
from rmmv_gan import procedural
from rmmv_gan.face_refiner import refine_faces
from rmmv_gan.packs import open_pack
from rmmv_gan.pipeline import face_w_from_sprite
from rmmv_gan.procedural.palette import HAIR_COMPONENT, HEADWEAR_COMPONENT, decode_look
from rmmv_gan.train_encoder import neutral_face_z

ROWS = ([("hair_style", s) for s in ("ponytail", "spiky", "twintails", "long", "short", "bob")]
        + [("headwear", h) for h in ("band", "hat", "hood")])
_SCAN = np.linspace(-3.0, 3.0, 601)


def forced(v: np.ndarray, trait: str, value: str) -> np.ndarray:
    """v with the component of `trait` ('hair_style' or 'headwear') set to select `value`
    (the first such value on a scan of [-3, 3]); a hair style is drawn bare-headed."""
    v = v.copy()
    component = HAIR_COMPONENT if trait == "hair_style" else HEADWEAR_COMPONENT
    for x in _SCAN:
        v[component] = x
        if getattr(decode_look(v), trait) == value:
            break
    else:
        raise ValueError(f"no value of component {component} gives {trait} {value!r}")
    return forced(v, "headwear", "none") if trait == "hair_style" else v


def faces(opened, v: np.ndarray):
    """(true-v faces, pipeline faces), refined where the pack has a refiner."""
    def finish(imgs):
        return imgs if opened.refiner is None else refine_faces(opened.refiner, imgs)

    with torch.no_grad():
        true = finish(draw(opened, opened.face.mapping(torch.from_numpy(neutral_face_z(v)), None)))
    sheets = [procedural.sprite_from_vector(x) for x in v]
    ws = torch.stack([face_w_from_sprite(opened, s, seed=i) for i, s in enumerate(sheets)])
    return true, finish(draw(opened, ws))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pack", default=None, help="pack folder (default: the embedded pack)")
    ap.add_argument("--count", type=int, default=16, help="vectors per style")
    ap.add_argument("--grid", default=None, help="write portrait | true v | pipeline cells to this PNG")
    args = ap.parse_args()
    opened = open_pack(args.pack)
    base = np.random.RandomState(HELD_OUT_SEED + 7).randn(args.count, procedural.SPRITE_DIM).astype(np.float32)
    refined = "" if opened.refiner is None else ", refined"
    print(f"{args.count} held-out vectors per style (seed {HELD_OUT_SEED + 7}), pack {opened.pack.name}")
    print(f"| style | face model, true v{refined} | pipeline{refined} |")
    print("| --- | --- | --- |")
    shown = min(4, args.count)  # vectors of each row in the grid
    cells = []
    for trait, value in ROWS:
        v = np.stack([forced(x, trait, value) for x in base])
        portraits = np.stack([procedural.portrait_from_vector(x, "neutral", 0.0) for x in v])
        true, pipeline = faces(opened, v)
        print(f"| {value} | {identity_error(true, portraits):.1f} | {identity_error(pipeline, portraits):.1f} |",
              flush=True)
        for k in range(shown):
            cells += [portraits[k], true[k], pipeline[k]]
    if args.grid:
        from PIL import Image

        from rmmv_gan.sheets import contact_sheet

        big = [np.repeat(np.repeat(c, 2, 0), 2, 1) for c in cells]
        Image.fromarray(contact_sheet(big, columns=3 * shown, pad=2,
                                      background=(40, 40, 40, 255))).save(args.grid)
        print(f"wrote {args.grid}: one row a style, portrait | true v | pipeline for {shown} vectors")


if __name__ == "__main__":
    main()
