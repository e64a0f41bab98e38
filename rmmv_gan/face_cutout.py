"""A face model's bust cut out of its background, as RPG Maker's own face sets are drawn.

RPG Maker's faces are busts on transparency: in a message window the window's colours show
around the hair. A face model draws on a flat background (white for the default pack): the
background is what lies near that colour and is connected to the image's border, or encloses
at least HOLE_SHARE of the image (a gap between the hair and the shoulders, which the face
model closes in on some busts; the eyes' whites, a few pixels each, stay), and the bust is the
largest part of the rest. A smooth
model's edge fades into the background over a pixel or two, and those pale pixels kept at
full opacity would ring the bust with a light halo: they take the colour of the figure just
inside them. Eight faces a character, so this is kept to a few array operations.
"""

from __future__ import annotations

import cv2
import numpy as np

# An enclosed patch of background colour this large (share of the image's pixels) is a hole in
# the bust, not a detail: measured on 16 default-pack busts (72 x 72), the eyes' whites and
# highlights are 1-5 pixels (0.1 %), the gaps beside the neck 70-85 (1.4-1.6 %).
HOLE_SHARE = 0.008
# A pale patch joined to the background is its fade up to this share of the image: measured
# on 80 default-pack busts (72 x 72), fades and tints are at most 91 pixels (1.8 %), the pale
# skin of a light face joined to them 259-483 (5-9 %).
FADE_SHARE = 0.025
_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8)


def cut_out_bust(face: np.ndarray, background, tolerance: float = 40.0) -> np.ndarray:
    """uint8 RGB face [H, W, 3] on `background` (r, g, b) -> RGBA, alpha 0 or 255, with no
    background-tinted pixels left on the edge."""
    rgb8 = np.ascontiguousarray(face[..., :3])
    bg = np.asarray(background, np.float32)[:3]
    far = np.abs(rgb8.astype(np.float32) - bg).sum(axis=2)  # how far each pixel is from the background
    near_bg = (far <= tolerance).astype(np.uint8)
    _, labels, areas, _ = cv2.connectedComponentsWithStats(near_bg, connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    holes = np.flatnonzero(areas[:, cv2.CC_STAT_AREA] >= HOLE_SHARE * near_bg.size)
    ids = np.union1d(border, holes)
    background_px = np.isin(labels, ids[ids > 0]) & (near_bg > 0)  # label 0: the pixels far from it
    # A smooth model fades into its background over a few pixels, and where the background is
    # shut in beside the neck it paints it a pale tint: pale pixels (within twice the
    # tolerance) joined to the background go with it, where they are a fade and not a pale
    # part of the figure: very light skin lies within twice the tolerance too, and where the
    # model draws no outline it joins the background through the fade (FADE_SHARE).
    pale = ((far <= 2 * tolerance) & ~background_px).astype(np.uint8)
    _, pale_parts, pale_stats, _ = cv2.connectedComponentsWithStats(pale, connectivity=4)
    beside = cv2.dilate(background_px.astype(np.uint8), _CROSS, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    joined = np.unique(pale_parts[beside & (pale > 0)])
    joined = joined[(joined > 0) & (pale_stats[joined, cv2.CC_STAT_AREA] <= FADE_SHARE * pale.size)]
    background_px |= np.isin(pale_parts, joined)
    n, parts, stats, _ = cv2.connectedComponentsWithStats((~background_px).astype(np.uint8), connectivity=8)
    out = np.zeros(face.shape[:2] + (4,), np.uint8)
    if n <= 1:
        return out
    mask = parts == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    out[mask, :3] = rgb8[mask]
    out[mask, 3] = 255
    k3 = np.ones((3, 3), np.uint8)
    inner = cv2.erode(mask.astype(np.uint8), k3, borderType=cv2.BORDER_CONSTANT, borderValue=1) > 0
    edge = mask & ~inner
    rgb = out[..., :3].astype(np.float32)
    # Each edge pixel next to an inner pixel: how far toward the background it has faded.
    # Where it is paler than that neighbour (nearer the background), it is a blend: give it
    # the neighbour's colour. Dark outline pixels are farther from a light background than
    # the fill inside them, so they stay.
    h, w = mask.shape
    pad = lambda a, v: np.pad(a, ((1, 1), (1, 1)) + ((0, 0),) * (a.ndim - 2), constant_values=v)  # noqa: E731
    rgb_p, inner_p = pad(rgb, 0), pad(inner, False)
    best_d = np.full((h, w), np.inf, np.float32)
    best = rgb.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            nb = rgb_p[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
            d = np.where(inner_p[1 + dy:1 + dy + h, 1 + dx:1 + dx + w], np.abs(nb - rgb).sum(axis=2), np.inf)
            closer = d < best_d
            best_d = np.where(closer, d, best_d)
            best = np.where(closer[..., None], nb, best)
    faded = edge & np.isfinite(best_d) & (far < np.abs(best - bg).sum(axis=2))
    out[faded, :3] = best[faded].astype(np.uint8)
    return out
