"""Before/after picture of the palette step (`sprite.palette`), for docs/default-pack.md.

    python tools/palette_grid.py --pack rmmv_gan/packs/default --out docs/images

writes `palette_before_after.png`: 16 characters (seeds 0-15, psi 0.7, the pack's archetypes
in turn, as `pack_samples.py`), each as the pipeline's walk sheet with the palette step off
(left) and on (right), two characters a row, and on the right of each row two sheets of the
procedural renderer (the training data's pixel art; seeds 0-15, not the same characters).
Sheets at twice the game's size (one model pixel = 6 x 6), transparency grey.

The walk sheets come from `make_characters` with one projection step and one emotion: the
face half plays no part in a walk sheet.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image

from pack_samples import on_grey
from rmmv_gan import procedural
from rmmv_gan.packs import open_pack
from rmmv_gan.pipeline import CharacterRequest, make_characters
from rmmv_gan.sheets import MV_FRAME, SheetLayout, contact_sheet, native_to_character_sheet

DARK = (40, 40, 40, 255)
ZOOM = 2


def walk_sheets(opened, count, psi):
    archetypes = list(opened.pack.archetypes)
    emotion = opened.pack.emotions[0].name
    requests = [CharacterRequest(archetype=archetypes[s % len(archetypes)], seed=s, psi=psi, steps=1,
                                 emotions=[emotion]) for s in range(count)]
    return [c.walk_sheet for c in make_characters(opened, requests)]


def renderer_sheet(seed):
    rgb = procedural.sprite_sheet(seed)
    alpha = np.where((rgb != 255).any(axis=2), 255, 0).astype(np.uint8)
    return native_to_character_sheet(np.dstack([rgb, alpha]), SheetLayout(procedural.FRAME, procedural.FRAME), MV_FRAME)


def zoom(img):
    return np.repeat(np.repeat(on_grey(img), ZOOM, axis=0), ZOOM, axis=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pack", type=Path, required=True, help="pack folder whose sprite.palette is on")
    ap.add_argument("--out", type=Path, required=True, help="folder for palette_before_after.png")
    ap.add_argument("--psi", type=float, default=0.7, help="truncation psi (default 0.7)")
    args = ap.parse_args()
    count = 16
    opened = open_pack(args.pack)
    if opened.pack.palette is None:
        raise SystemExit(f"Error: {args.pack} has sprite.palette off; nothing to compare")
    after = walk_sheets(opened, count, args.psi)
    opened.pack = dataclasses.replace(opened.pack, palette=None)
    before = walk_sheets(opened, count, args.psi)
    rows = []
    for r in range(count // 2):
        groups = [contact_sheet([zoom(before[i]), zoom(after[i])], columns=2, pad=2, background=DARK)
                  for i in (2 * r, 2 * r + 1)]
        groups.append(contact_sheet([zoom(renderer_sheet(2 * r)), zoom(renderer_sheet(2 * r + 1))],
                                    columns=2, pad=2, background=DARK))
        rows.append(contact_sheet(groups, columns=3, pad=10, background=DARK))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "palette_before_after.png"
    Image.fromarray(contact_sheet(rows, columns=1, pad=0, background=DARK)).save(path, optimize=True)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
