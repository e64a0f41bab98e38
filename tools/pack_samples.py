"""Sample grids of a pack, for docs/default-pack.md: what a user gets, and what psi does.

    python tools/pack_samples.py --pack rmmv_gan/packs/default --out docs/images

writes
- `pack_walk_sheets.png`: 16 characters (seeds 0-15, psi 0.7, the pack's archetypes in turn:
  seed s gets archetype s mod 4) made by the whole pipeline, as the `$` walk sheets that land
  in img/characters (transparent background shown grey);
- `pack_face_sheets.png`: the same 16 characters' face sheets (eight emotions each);
- `pack_psi.png`: the sprite model's raw sheets for seeds 0-7 at psi 0.4 (top) and 1.0 (bottom).

    python tools/pack_samples.py --pack rmmv_gan/packs/default --out docs/images --variety

writes instead the archetype grids at the pack's defaults (psi, strength), one column per
archetype, eight characters each (archetype k: seeds 16k to 16k + 7, as benchmarks/variety.py):
- `variety_walk_sheets.png`: their walk sheets;
- `variety_faces.png`: their neutral faces (faceIndex 0), at the face sheet's size.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from rmmv_gan.latent import generate_images
from rmmv_gan.packs import open_pack
from rmmv_gan.pipeline import CharacterRequest, make_characters
from rmmv_gan.sheets import composite, contact_sheet, resize

GREY = (96, 96, 96, 255)


def on_grey(img: np.ndarray) -> np.ndarray:
    """Flatten an RGBA picture onto grey so transparency is visible in the docs."""
    return np.concatenate([composite(img, GREY[:3]), np.full_like(img[..., :1], 255)], -1)


def variety_grids(opened, out: Path, rows: int = 8, steps=None) -> None:
    archetypes = list(opened.pack.archetypes)
    requests = [CharacterRequest(archetype=a, seed=16 * k + i, steps=steps, emotions=[opened.pack.emotions[0].name])
                for i in range(rows) for k, a in enumerate(archetypes)]
    chars = make_characters(opened, requests)
    columns, dark = len(archetypes), (40, 40, 40, 255)
    walk = contact_sheet([on_grey(c.walk_sheet) for c in chars], columns=columns, pad=4, background=dark)
    Image.fromarray(walk).save(out / "variety_walk_sheets.png")
    size = opened.pack.face_size
    faces = [on_grey(c.face_sheet[:size, :size]) for c in chars]
    Image.fromarray(contact_sheet(faces, columns=columns, pad=4, background=dark)).save(out / "variety_faces.png")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pack", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--count", type=int, default=16)
    ap.add_argument("--psi", type=float, default=0.7)
    ap.add_argument("--variety", action="store_true", help="write the archetype grids (variety_*.png) instead")
    ap.add_argument("--steps", type=int, default=None, help="projection steps for --variety (default: the pack's)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    opened = open_pack(args.pack)
    if args.variety:
        variety_grids(opened, args.out, steps=args.steps)
        print(f"wrote the variety grids to {args.out} in {time.perf_counter() - t0:.0f} s")
        return
    archetypes = list(opened.pack.archetypes)
    requests = [CharacterRequest(archetype=archetypes[s % len(archetypes)], seed=s, psi=args.psi, name=f"sample{s}")
                for s in range(args.count)]
    chars = make_characters(opened, requests)
    print(f"{len(chars)} characters in {time.perf_counter() - t0:.0f} s")
    walk = contact_sheet([on_grey(c.walk_sheet) for c in chars], columns=8, pad=4, background=(40, 40, 40, 255))
    Image.fromarray(walk).save(args.out / "pack_walk_sheets.png")
    faces = [on_grey(c.face_sheet) for c in chars]
    face_grid = contact_sheet(faces, columns=4, pad=4, background=(40, 40, 40, 255))
    # Full-size face sheets are 576 px wide; half size keeps the page readable.
    h, w = face_grid.shape[:2]
    Image.fromarray(face_grid).resize((w // 2, h // 2), Image.LANCZOS).save(args.out / "pack_face_sheets.png")
    rows = []
    for psi in (0.4, 1.0):
        for _, img in generate_images(opened.sprite, list(range(8)), psi=psi):
            rows.append(resize(img, img.shape[1] * 3, img.shape[0] * 3))  # 3x, as in the game
    Image.fromarray(contact_sheet(rows, columns=8, pad=4, background=(40, 40, 40, 255))).save(args.out / "pack_psi.png")
    print(f"wrote {args.out} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
