"""Rebuild the procedural contact sheets: ``python -m rmmv_gan.procedural --out docs/images``.

- ``procedural_sprites.png``: the walk sheets of seeds 0-15 at 3x (RPG Maker's 48-px frames);
- ``procedural_portraits.png``: portraits of seeds 0-15 in the 8 expressions, then turned to
  the viewer's left and right (neutral), at 2x (RPG Maker's 144-px face cells).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from . import EXPRESSIONS, portrait, sprite_sheet

_GAP = (200, 200, 204)


def sprite_contact(seeds, scale: int = 3, cols: int = 8, gap: int = 6) -> np.ndarray:
    sheets = [np.repeat(np.repeat(sprite_sheet(s), scale, 0), scale, 1) for s in seeds]
    h, w = sheets[0].shape[:2]
    rows = -(-len(sheets) // cols)
    out = np.full((gap + rows * (h + gap), gap + cols * (w + gap), 3), _GAP, np.uint8)
    for i, img in enumerate(sheets):
        r, c = divmod(i, cols)
        out[gap + r * (h + gap):gap + r * (h + gap) + h, gap + c * (w + gap):gap + c * (w + gap) + w] = img
    return out


def portrait_contact(seeds, scale: int = 2, gap: int = 2, split: int = 10) -> np.ndarray:
    """One row per seed: the expressions in EXPRESSIONS order, a wider gap, turn -1 and +1."""
    cells = [[portrait(s, e) for e in EXPRESSIONS] +
             [portrait(s, "neutral", -1.0), portrait(s, "neutral", 1.0)] for s in seeds]
    size = cells[0][0].shape[0]
    ncol = len(cells[0])
    xs = [gap + c * (size + gap) + (split if c >= len(EXPRESSIONS) else 0) for c in range(ncol)]
    out = np.full((gap + len(cells) * (size + gap), xs[-1] + size + gap, 3), _GAP, np.uint8)
    for r, row in enumerate(cells):
        for x, img in zip(xs, row):
            y = gap + r * (size + gap)
            out[y:y + size, x:x + size] = img
    return np.repeat(np.repeat(out, scale, 0), scale, 1)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m rmmv_gan.procedural", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="docs/images", help="folder for the two PNG files")
    ap.add_argument("--count", type=int, default=16, help="characters per sheet (seeds 0..count-1)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = range(args.count)
    for name, img in (("procedural_sprites.png", sprite_contact(seeds)),
                      ("procedural_portraits.png", portrait_contact(seeds))):
        path = out / name
        Image.fromarray(img).save(path, optimize=True)
        print(f"{path} ({img.shape[1]} x {img.shape[0]}, {path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
