"""Sixteen exported characters' face sheets, as a player sees them: on transparency (shown on
a checkerboard) and over the blue of RPG Maker MV's default message window, each beside its
walk sheet's standing frame.

    python tools/face_samples.py --pack rmmv_gan/packs/default --out docs/images [--seed 0]

Writes pack_faces_transparent.png and pack_faces_window.png: one row per character (seeds
SEED..SEED+15, the archetypes in turn), the standing frame at 3x, then the eight emotions.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from rmmv_gan.packs import open_pack
from rmmv_gan.pipeline import CharacterRequest, make_characters
from rmmv_gan.sheets import composite, slice_character_sheet, slice_face_sheet


def checker(h, w, cell=8):
    yy, xx = np.mgrid[:h, :w]
    light = ((yy // cell + xx // cell) % 2).astype(bool)
    img = np.full((h, w, 3), 200, np.uint8)
    img[light] = 235
    return img


def window(h, w):
    """MV's default windowskin is a dark blue gradient; the message window shows it at 192/255."""
    top, bottom = np.array([32, 48, 96], np.float32), np.array([12, 20, 52], np.float32)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    return np.broadcast_to(top * (1 - t) + bottom * t, (h, w, 3)).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pack", default=None)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--psi", type=float, default=None)
    args = ap.parse_args()
    t0 = time.perf_counter()
    opened = open_pack(args.pack)
    names = list(opened.pack.archetypes)
    reqs = [CharacterRequest(archetype=names[i % len(names)], seed=args.seed + i, psi=args.psi) for i in range(16)]
    chars = make_characters(opened, reqs)
    rows = []
    for c in chars:
        frame = slice_character_sheet(c.walk_sheet)[0, 1]  # facing down, standing
        frame = np.repeat(np.repeat(frame, 3, 0), 3, 1)  # 144 x 144
        rows.append(np.concatenate([frame] + slice_face_sheet(c.face_sheet), axis=1))
    strip = np.concatenate(rows, axis=0)  # RGBA
    h, w = strip.shape[:2]
    args.out.mkdir(parents=True, exist_ok=True)
    half = lambda img: np.asarray(Image.fromarray(img).resize((w // 2, h // 2), Image.BOX))  # noqa: E731
    Image.fromarray(half(composite(strip, checker(h, w)))).save(args.out / "pack_faces_transparent.png")
    Image.fromarray(half(composite(strip, window(h, w)))).save(args.out / "pack_faces_window.png")
    print(f"wrote {args.out}/pack_faces_transparent.png and pack_faces_window.png "
          f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
