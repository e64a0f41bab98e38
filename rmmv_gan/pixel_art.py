"""Walk sheets as pixel art: one palette per character, no speckle, a closed dark outline,
hard alpha edges.

A sprite model's raw sheet is a photograph of pixel art: every pixel a slightly different
colour (a thousand and more per sheet), stray pixels of another colour in flat areas, light
pixels half way between the outline and the background stuck to the outside of the figure.
`pixel_art_sheet` redraws it the way a pixel artist draws a walk sheet:

1. edges: where the model drew a dark outline, pixels outside it go (light pixels with the
   line between them and the figure's inside, and mixes of the outline and the background),
   and so does anything detached from the figure;
2. palette: one palette for the whole character, chosen in Oklab (a perceptual colour space,
   so equal steps look equal), with as many colours as the sheet has perceptually distinct
   ones, within the pack's range; every frame is mapped to it;
3. speckle: a pixel whose colour none of its eight neighbours shares takes their majority
   colour, unless it is a drawn detail: it stands out from its neighbours by more than the
   model's noise and another frame has it at the same place (an eye, a buckle, a hand drawn
   the same in every pattern). A step frame's colour that its standing frame lacks becomes
   the nearest standing colour when the two are close;
4. outline: where the model drew a dark outline, every pixel on the figure's edge becomes
   one outline colour, so the line is continuous.

Everything works on the model's native frames (16 x 16 for the default pack) before they are
scaled to 48 px, so one native pixel stays one block of 3 x 3 in the game.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from .sheets import MV_DIRECTIONS, SheetLayout, native_to_frames

__all__ = ["oklab", "choose_palette", "pixel_art_frames", "pixel_art_sheet", "sheet_figures",
           "PALETTE_RANGE", "RARE_SHARE"]

PALETTE_RANGE = (12, 24)  # the default pack's colours per character
RARE_SHARE = 0.005  # a colour covering less of a sheet's figure than this is rare

# Oklab distance of one just-noticeable difference: palette colours closer are merged always.
JND = 0.02
# Two palette colours closer than MERGE_NOISE times the model's noise (see `choose_palette`),
# and at most MERGE_DISTANCE, are one colour of the drawing seen through that noise.
MERGE_NOISE = 2.0
MERGE_DISTANCE = 0.045
# An edge pixel is outline-dark when it is at most this much lighter (Oklab L) than the
# outline colour.
DARK_MARGIN = 0.12
# The model drew an outline when this share of the figure's edge pixels is dark, and the
# darkest of them are at most OUTLINE_LIGHTNESS light (Oklab L; the default model's outline
# is about 0.2-0.35, a mid-tone cloth 0.5-0.6).
OUTLINE_SHARE = 0.5
OUTLINE_LIGHTNESS = 0.45
# Only pixels at least this much lighter (Oklab L) than the outline can be rim: a dark-ish
# pixel at the edge (between two legs, a shoe) belongs to the line.
RIM_LIGHTER = 0.25
# A pixel is half background when its colour lies this close (Oklab) to the line from the
# outline colour to the background colour, and at least FRINGE_MIX of the way to the latter.
FRINGE_DISTANCE = 0.035
FRINGE_MIX = 0.25
# A lonely pixel at least DETAIL_NOISE times the model's noise (Oklab; at most
# DETAIL_CONTRAST) from its neighbours' colour is a drawn detail (an eye, a button, a
# highlight) when another frame has it at the same place; a nearer one is the model's
# mottling of one colour, whatever the other frames say.
DETAIL_NOISE = 5.0
DETAIL_CONTRAST = 0.12
# A step frame's colour that its standing frame lacks becomes the standing frame's nearest
# colour when they are this close (Oklab): the walk does not change the character's colours.
DRIFT_DISTANCE = 0.1
# Of the 12 votes of the eight neighbours (4-neighbours count double), a pixel with one
# neighbour of its own colour is still speckle when another colour has this many.
SURROUNDED = 8

_M1 = np.array([[0.4122214708, 0.5363325363, 0.0514459929],
                [0.2119034982, 0.6806995451, 0.1073969566],
                [0.0883024619, 0.2817188376, 0.6299787005]])
_M2 = np.array([[0.2104542553, 0.7936177850, -0.0040720468],
                [1.9779984951, -2.4285922050, 0.4505937099],
                [0.0259040371, 0.7827717662, -0.8086757660]])
_N4 = ((-1, 0), (1, 0), (0, -1), (0, 1))
_N8 = _N4 + ((-1, -1), (-1, 1), (1, -1), (1, 1))


def oklab(rgb) -> np.ndarray:
    """sRGB (0-255, any shape [..., 3]) to Oklab (L in 0-1)."""
    c = np.asarray(rgb, np.float64) / 255.0
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return np.cbrt(c @ _M1.T) @ _M2.T


# --------------------------------------------------------------------------- neighbourhoods

def _shift(a: np.ndarray, dy: int, dx: int, fill) -> np.ndarray:
    """a[..., y + dy, x + dx] at [..., y, x]; `fill` where that lies off the frame."""
    out = np.full_like(a, fill)
    h, w = a.shape[-2:]
    ys, yd = (slice(dy, h), slice(0, h - dy)) if dy >= 0 else (slice(0, h + dy), slice(-dy, h))
    xs, xd = (slice(dx, w), slice(0, w - dx)) if dx >= 0 else (slice(0, w + dx), slice(-dx, w))
    out[..., yd, xd] = a[..., ys, xs]
    return out


def _exterior(alpha: np.ndarray) -> np.ndarray:
    """Per frame [..., h, w]: transparent pixels 4-connected to the frame's border (holes
    enclosed by the figure are not exterior)."""
    h, w = alpha.shape[-2:]
    frames = alpha.reshape(-1, h, w)
    # All frames side by side with a transparent column between and around them, so one
    # flood fill from the corner reaches every frame's border.
    canvas = np.zeros((h + 2, len(frames) * (w + 1) + 1), np.uint8)
    for i, a in enumerate(frames):
        canvas[1:-1, 1 + i * (w + 1):1 + i * (w + 1) + w] = a
    free = (canvas == 0).astype(np.uint8)
    cv2.floodFill(free, None, (0, 0), 2, flags=4)
    out = np.stack([free[1:-1, 1 + i * (w + 1):1 + i * (w + 1) + w] == 2 for i in range(len(frames))])
    return out.reshape(alpha.shape)


def _edge(alpha: np.ndarray) -> np.ndarray:
    """Opaque pixels 4-adjacent to the exterior or on the frame's border."""
    outside = _exterior(alpha)
    touch = np.zeros_like(alpha)
    for dy, dx in _N4:
        touch |= _shift(outside, dy, dx, True)
    return alpha & touch


def _keep_attached(alpha: np.ndarray) -> np.ndarray:
    """Per frame, the largest 8-connected part of the figure and any part at least a third
    as large (a second figure); crumbs and slivers beside the figure go."""
    out = np.zeros_like(alpha)
    flat_a = alpha.reshape(-1, *alpha.shape[-2:])
    flat_o = out.reshape(-1, *alpha.shape[-2:])
    for a, o in zip(flat_a, flat_o):
        n, labels, stats, _ = cv2.connectedComponentsWithStats(a.astype(np.uint8), connectivity=8)
        if n <= 1:
            continue
        areas = stats[1:, cv2.CC_STAT_AREA]
        keep = np.concatenate([[False], areas * 3 >= areas.max()])
        o[:] = keep[labels]
    return out


# --------------------------------------------------------------------------- 1. edges

def _outline_colour(lab: np.ndarray, alpha: np.ndarray) -> np.ndarray | None:
    """The Oklab colour of the model's outline (the dark half of the figure's edge pixels),
    or None where the edge is not mostly dark (no outline drawn)."""
    edge = lab[_edge(alpha)]
    if len(edge) < 8:
        return None
    light = edge[:, 0]
    dark = edge[light <= np.percentile(light, 30)]
    colour = np.median(dark, axis=0)
    if colour[0] > OUTLINE_LIGHTNESS or (light <= colour[0] + DARK_MARGIN).mean() < OUTLINE_SHARE:
        return None
    return colour


def _half_background(lab: np.ndarray, outline: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Colours that are a mix of the outline and the background (the light rim a model draws
    where it blurs its outline into the background)."""
    seg = background - outline
    t = np.clip(((lab - outline) @ seg) / (seg @ seg), 0.0, 1.0)
    dist = np.linalg.norm(lab - (outline + t[..., None] * seg), axis=-1)
    return (dist < FRINGE_DISTANCE) & (t >= FRINGE_MIX)


def _strip_fringe(lab: np.ndarray, alpha: np.ndarray, outline: np.ndarray,
                  background: np.ndarray | None) -> np.ndarray:
    """Edge pixels outside the dark outline go: those whose 4-neighbour is dark with the
    figure's inside beyond it, and (with a background colour) the half-background ones."""
    dark = alpha & (lab[..., 0] <= outline[0] + DARK_MARGIN)
    light = lab[..., 0] >= outline[0] + RIM_LIGHTER
    half = np.zeros_like(alpha) if background is None else _half_background(lab, outline, background)
    for _ in range(2):  # a rim is at most two pixels thick
        edge = _edge(alpha)
        inner = alpha & ~edge
        outside = half & edge & light
        for dy, dx in _N4:
            # edge pixel -> dark neighbour -> inside pixel beyond it: the pixel is outside
            # the line. A gap in the line has dark neighbours along the line, not across it.
            across = _shift(dark, dy, dx, False) & _shift(inner, 2 * dy, 2 * dx, False)
            outside |= edge & light & across
        alpha = alpha & ~outside
    return alpha


# --------------------------------------------------------------------------- 2. palette

def _median_cut(points: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """k starting centres: split the box of largest weighted spread at its weighted median."""

    def spread(b):
        if len(b) < 2:
            return -1.0
        p, w = points[b], weights[b]
        return float((w[:, None] * (p - (w @ p) / w.sum()) ** 2).sum())

    boxes = [np.arange(len(points))]
    spreads = [spread(boxes[0])]
    while len(boxes) < k:
        i = int(np.argmax(spreads))
        if spreads[i] <= 0:
            break
        b = boxes.pop(i)
        spreads.pop(i)
        axis = int(np.argmax(np.ptp(points[b], axis=0)))
        order = b[np.argsort(points[b, axis], kind="stable")]
        cum = np.cumsum(weights[order])
        cut = min(max(int(np.searchsorted(cum, cum[-1] / 2)), 1), len(order) - 1)
        for half in (order[:cut], order[cut:]):
            boxes.append(half)
            spreads.append(spread(half))
    return np.array([(weights[b] @ points[b]) / weights[b].sum() for b in boxes])


def _assign(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """The nearest centre of each point."""
    d = (centres ** 2).sum(1)[None] - 2.0 * points @ centres.T
    return np.argmin(d, axis=1)


def _sums(label: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    """Per label 0..k-1, the sum of `values` [n, channels]."""
    return np.stack([np.bincount(label, values[:, c], k) for c in range(values.shape[1])], axis=1)


def _kmeans(points, weights, centres, iterations):
    for _ in range(iterations):
        label = _assign(points, centres)
        sums = _sums(label, points * weights[:, None], len(centres))
        mass = np.bincount(label, weights, len(centres))
        used = mass > 0
        centres = sums[used] / mass[used, None]
    return centres


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, cum[-1] / 2)])


def choose_palette(colours: np.ndarray, weights: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, float]:
    """Oklab centres of a palette for these distinct Oklab colours (weights: their pixel
    counts), and the model's noise: `hi` clusters (median cut refined by k-means), then the
    two closest merged while they are one colour seen through the noise and more than `lo`
    remain.

    The noise is the median distance of a pixel from its cluster's centre at `hi` clusters:
    0 for flat pixel art (whose colours then stay apart down to one just-noticeable
    difference), about 0.025 for the default sprite model."""
    weights = np.asarray(weights, np.float64)
    if len(colours) <= lo:
        return colours.copy(), 0.0
    centres = _kmeans(colours, weights, _median_cut(colours, weights, hi), 6)
    label = _assign(colours, centres)
    noise = _weighted_median(np.linalg.norm(colours - centres[label], axis=1), weights)
    merge = float(np.clip(MERGE_NOISE * noise, JND, MERGE_DISTANCE))
    mass = np.bincount(label, weights, len(centres))
    while len(centres) > lo:
        d = np.sqrt(((centres[:, None] - centres[None]) ** 2).sum(-1))
        np.fill_diagonal(d, np.inf)
        i, j = np.unravel_index(np.argmin(d), d.shape)
        if d[i, j] >= merge:
            break
        merged = (centres[i] * mass[i] + centres[j] * mass[j]) / (mass[i] + mass[j])
        keep = [n for n in range(len(centres)) if n not in (i, j)]
        centres = np.vstack([centres[keep], merged])
        mass = np.append(mass[keep], mass[i] + mass[j])
    return _kmeans(colours, weights, centres, 3), noise


# --------------------------------------------------------------------------- 3. speckle

def _siblings(index: np.ndarray) -> list[np.ndarray]:
    """For frames [4 directions][3 patterns][h][w]: the same place in the other patterns of
    the same direction, and the mirrored place in the frame that mirrors this one (right is
    left mirrored; facing down or up, pattern 2 is pattern 0 mirrored and the standing frame
    is symmetric)."""
    out = [np.roll(index, shift, axis=1) for shift in (1, 2)]
    left, right = MV_DIRECTIONS.index("left"), MV_DIRECTIONS.index("right")
    mirrored = index[:, ::-1, :, ::-1].copy()  # pattern 2 - p, mirrored
    mirrored[left], mirrored[right] = index[right, :, :, ::-1], index[left, :, :, ::-1]
    out.append(mirrored)
    return out


def _despeckle(index: np.ndarray, alpha: np.ndarray, lab_centres: np.ndarray, noise: float) -> np.ndarray:
    """Lonely pixels (no 8-neighbour of their colour, or one while another colour holds
    SURROUNDED votes) take their neighbours' majority colour (4-neighbours count double; a
    tie goes to the colour nearest the pixel's own), unless they are a detail: a sibling
    frame has the colour at the same place and it stands out from the majority colour by
    more than the noise allows."""
    k = len(lab_centres)
    idx = np.where(alpha, index, -1)
    onehot = np.zeros((k,) + idx.shape[:-2] + (idx.shape[-2] + 2, idx.shape[-1] + 2), np.float32)
    inner = onehot[..., 1:-1, 1:-1]
    for c in range(k):
        inner[c] = idx == c
    h, w = idx.shape[-2:]
    votes = np.zeros((k,) + idx.shape, np.float32)
    for dy, dx in _N8:
        votes += (2.0 if dy == 0 or dx == 0 else 1.0) * onehot[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
    same = np.zeros(idx.shape, np.int32)
    for dy, dx in _N8:
        same += (_shift(idx, dy, dx, -1) == idx) & alpha
    supported = np.zeros(idx.shape, bool)
    for s in _siblings(idx):
        supported |= s == idx
    surrounded = alpha & ((same == 0) | ((same == 1) & (votes.max(0) >= SURROUNDED))) & (votes.sum(0) > 0)
    if not surrounded.any():
        return index
    # The winner: most votes; a tie goes to the colour nearest the pixel's own.
    dist = np.sqrt(((lab_centres[:, None] - lab_centres[None]) ** 2).sum(-1))
    own = idx[surrounded]
    best = np.argmax(votes[:, surrounded] - dist[:, own] * 1e-3, axis=0)
    contrast = min(DETAIL_NOISE * noise, DETAIL_CONTRAST)
    detail = supported[surrounded] & (dist[own, best] >= contrast)
    lonely = np.zeros_like(surrounded)
    lonely[surrounded] = ~detail
    best = best[~detail]
    out = index.copy()
    out[lonely] = best
    return out


def _follow_standing(index: np.ndarray, alpha: np.ndarray, lab_centres: np.ndarray) -> np.ndarray:
    """Step-frame pixels in a colour the standing frame of their direction lacks take the
    standing frame's nearest colour, when it is near (a new colour far from all of them, a
    shoe sole shown by the step, stays)."""
    out = index.copy()
    dist = np.sqrt(((lab_centres[:, None] - lab_centres[None]) ** 2).sum(-1))
    for d in range(index.shape[0]):
        standing = np.unique(index[d, 1][alpha[d, 1]])
        if len(standing) == 0:
            continue
        for p in (0, 2):
            a = alpha[d, p]
            own = index[d, p][a]
            nearest = standing[np.argmin(dist[np.ix_(own, standing)], axis=1)]
            move = (~np.isin(own, standing)) & (dist[own, nearest] < DRIFT_DISTANCE)
            own[move] = nearest[move]
            out[d, p][a] = own
    return out


# --------------------------------------------------------------------------- the step

def _parse_range(colours) -> tuple[int, int]:
    lo, hi = (int(colours), int(colours)) if np.isscalar(colours) else (int(c) for c in colours)
    if not 2 <= lo <= hi <= 256:
        raise ValueError(f"palette range must be 2 <= low <= high <= 256, got {colours!r}")
    return lo, hi


def pixel_art_frames(frames: np.ndarray, colours: Sequence[int] = PALETTE_RANGE,
                     background: Sequence[int] | None = (255, 255, 255)) -> np.ndarray:
    """The palette step on RGBA frames [4 directions][3 patterns][h][w][4] in MV order (as
    `sheets.native_to_frames` gives them). `colours`: (low, high) colours in the palette.
    `background`: the model's background colour, to recognise half-background edge pixels
    (None: only the pixels outside the outline are judged by position). Returns new frames,
    alpha 0 or 255, transparent pixels black."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 5 or frames.shape[:2] != (4, 3) or frames.shape[4] != 4:
        raise ValueError(f"frames must be uint8 [4][3][h][w][4], got {frames.dtype} {frames.shape}")
    lo, hi = _parse_range(colours)
    alpha = frames[..., 3] >= 128
    rgb = frames[..., :3]
    packed = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    lab = oklab(rgb)
    out = np.zeros_like(frames)
    if not alpha.any():
        return out
    # 1. Edges, on the model's own colours (so the rim's colours take no palette entries).
    outline = _outline_colour(lab, alpha)
    if outline is not None:
        bg = None if background is None else oklab(np.asarray(background[:3], np.float64))
        alpha = _strip_fringe(lab, alpha, outline, bg)
    alpha = _keep_attached(alpha)
    if not alpha.any():
        return out
    # 2. One palette for all frames, chosen over the sheet's distinct colours.
    distinct, inverse, counts = np.unique(packed[alpha], return_inverse=True, return_counts=True)
    distinct_rgb = np.stack([distinct >> 16, (distinct >> 8) & 255, distinct & 255], 1)
    distinct_lab = oklab(distinct_rgb)
    centres, noise = choose_palette(distinct_lab, counts, lo, hi)
    members = _assign(distinct_lab, centres)
    index = np.zeros(alpha.shape, np.int64)
    index[alpha] = members[inverse.reshape(-1)]
    # Palette colours as the members' mean sRGB: flat renderer colours stay exactly theirs.
    k = len(centres)
    sums = _sums(members, distinct_rgb * counts[:, None].astype(np.float64), k)
    mass = np.bincount(members, counts, minlength=k)
    palette = np.rint(sums / np.maximum(mass, 1)[:, None]).astype(np.uint8)
    # 3. Speckle.
    index = _despeckle(index, alpha, centres, noise)
    index = _follow_standing(index, alpha, centres)
    # 4. A continuous outline: every edge pixel in the outline's colour.
    if outline is not None:
        line = int(_assign(outline[None], centres)[0])
        index[_edge(alpha)] = line
    out[alpha, :3] = palette[index[alpha]]
    out[alpha, 3] = 255
    return out


def pixel_art_sheet(img: np.ndarray, layout: SheetLayout, colours: Sequence[int] = PALETTE_RANGE,
                    background: Sequence[int] | None = (255, 255, 255)) -> np.ndarray:
    """The palette step on a cleaned native sheet (RGBA, as `sheets.clean_sheet` returns it):
    the same image with its frames redrawn as pixel art (see the module's docstring);
    pixels outside the layout's frames stay as they were."""
    frames = pixel_art_frames(native_to_frames(img, layout), colours, background)
    out = np.asarray(img).copy()
    for d, direction in enumerate(MV_DIRECTIONS):
        for p in range(3):
            x, y, w, h = layout.box(*layout.native_index(direction, p))
            out[y:y + h, x:x + w] = frames[d, p]
    return out


# --------------------------------------------------------------------------- figures

def sheet_figures(sheet: np.ndarray) -> dict:
    """How much a `$` walk sheet (RGBA, 3 x 4 frames) looks like pixel art, on its opaque
    pixels; all three figures are the same at any whole scale:

    - `colours`: distinct colours;
    - `rare`: % of pixels whose exact colour covers less than RARE_SHARE of them (speckle);
    - `drift`: % of the step frames' pixels (patterns 0 and 2) in a colour that the standing
      frame (pattern 1) of their row lacks (colours that shift from frame to frame).
    """
    sheet = np.asarray(sheet)
    if sheet.dtype != np.uint8 or sheet.ndim != 3 or sheet.shape[2] != 4:
        raise ValueError(f"sheet must be uint8 H x W x 4 (RGBA), got {sheet.dtype} {sheet.shape}")
    opaque = sheet[..., 3] >= 128
    rgb = sheet[..., :3].astype(np.int64)
    packed = np.where(opaque, (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2], -1)
    values, counts = np.unique(packed[opaque], return_counts=True)
    total = int(opaque.sum())
    rare = np.isin(packed[opaque], values[counts < RARE_SHARE * total]).sum()
    fh, fw = sheet.shape[0] // 4, sheet.shape[1] // 3
    moved = stepped = 0
    for row in range(4):
        cells = [packed[row * fh:(row + 1) * fh, p * fw:(p + 1) * fw] for p in range(3)]
        standing = np.unique(cells[1][cells[1] >= 0])
        for p in (0, 2):
            px = cells[p][cells[p] >= 0]
            moved += int((~np.isin(px, standing)).sum())
            stepped += len(px)
    return {"colours": len(values), "rare": 100.0 * rare / max(total, 1),
            "drift": 100.0 * moved / max(stepped, 1)}
