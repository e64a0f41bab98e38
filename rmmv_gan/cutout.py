"""The cutout: a generated sheet's background to transparency, frame by frame.

The source article thresholded near-white, filtered and filled the external contours as the
mask; this does the same per frame, with the background colour estimated from the frame
borders, an edge re-decided by colour (blur and JPEG ringing put where they were drawn),
specks dropped, enclosed holes filled, and optionally an outline and a reduced palette.

Frames are given as boxes (x, y, w, h); `rmmv_gan.sheets.clean_sheet` turns a sheet layout
into boxes and is what other code calls. Pure: uint8 arrays in, RGBA arrays out.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

DEFAULT_OUTLINE = (16, 16, 24)

__all__ = ["estimate_background", "cut_out", "reduce_palette", "check_image", "to_rgba", "DEFAULT_OUTLINE"]


def check_image(img: np.ndarray, what: str = "image") -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ValueError(f"{what} must be a uint8 H x W x 3 (RGB) or H x W x 4 (RGBA) array, "
                         f"got {img.dtype} {img.shape}")
    return img


def to_rgba(img: np.ndarray) -> np.ndarray:
    if img.shape[2] == 4:
        return img
    return np.concatenate([img, np.full(img.shape[:2] + (1,), 255, np.uint8)], axis=2)


def _border(frame: np.ndarray) -> np.ndarray:
    return np.concatenate([frame[0], frame[-1], frame[1:-1, 0], frame[1:-1, -1]])


def estimate_background(img: np.ndarray, boxes) -> tuple[int, int, int] | None:
    """The background colour: per-channel median of the border pixels of every frame box
    (opaque ones only, for RGBA); None where those borders are all transparent already.

    One colour for the whole sheet because a generator paints one background per sheet, and
    pooling all frame borders outvotes a figure that touches the border of its own frame.
    """
    img = check_image(img)
    px = np.concatenate([_border(img[y:y + h, x:x + w]) for x, y, w, h in boxes])
    if img.shape[2] == 4:
        px = px[px[:, 3] >= 128]
        if len(px) == 0:
            return None
    return tuple(int(v) for v in np.median(px[:, :3], axis=0))


# JPEG keeps luma at full resolution but chroma at half (4:2:0) and smeared, so where a
# figure's edge is decided by colour, brightness is trusted twice as much as hue.
_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5],
                 [0.5, -0.418688, -0.081312]], np.float32) * np.array([[1.0], [0.5], [0.5]], np.float32)


def _closer_to_figure(ycc: np.ndarray, core: np.ndarray, bg: np.ndarray, radius: int) -> np.ndarray:
    """Per pixel: is its colour nearer to some `core` pixel within `radius` than to the
    background? This puts a soft edge (blur, JPEG ringing) at its midpoint, where it was
    drawn, whatever the contrast of the colours on either side."""
    h, w = core.shape
    to_bg = ((ycc - bg) ** 2).sum(axis=2)
    pad_f = np.pad(ycc, ((radius, radius), (radius, radius), (0, 0)), mode="edge")
    pad_c = np.pad(core, radius)
    best = np.full((h, w), np.inf, np.float32)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            d = ((ycc - pad_f[dy:dy + h, dx:dx + w]) ** 2).sum(axis=2)
            best = np.where(pad_c[dy:dy + h, dx:dx + w], np.minimum(best, d), best)
    return best < to_bg


def _keep_figure(fg: np.ndarray, min_speck: int, attach: int) -> np.ndarray:
    """The largest connected part of `fg` and, repeatedly, every part of at least
    `min_speck` pixels within `attach` px of what is kept."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros(fg.shape, np.uint8)
    areas = stats[:, cv2.CC_STAT_AREA]
    keep = np.zeros(n, bool)
    keep[1 + int(np.argmax(areas[1:]))] = True
    big = areas >= min_speck
    big[0] = False
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * attach + 1, 2 * attach + 1))
    while True:
        near = cv2.dilate(keep[labels].astype(np.uint8), kernel) > 0
        new = np.zeros(n, bool)
        new[np.unique(labels[near])] = True
        new &= big & ~keep
        if not new.any():
            return keep[labels].astype(np.uint8)
        keep |= new


def _figure_mask(rgb: np.ndarray, opaque: np.ndarray, bg: np.ndarray | None, tolerance: float,
                 min_speck: int, attach: int, fill_holes: bool, refine: bool) -> np.ndarray:
    """The figure in one frame; bg None means the frame is cut out already (alpha says)."""
    f = rgb.astype(np.float32)
    fg = opaque if bg is None else opaque & (np.sqrt(((f - bg) ** 2).sum(axis=2)) > tolerance)
    mask = _keep_figure(fg, min_speck, attach)
    if refine and bg is not None and mask.any():
        # The threshold puts a blurred or ringing edge wherever the tolerance happens to cut
        # it; re-decide the 1-px band on both sides of the edge against the figure's own
        # colours one pixel further in. Thin parts (no interior near) keep the threshold's say.
        k3 = np.ones((3, 3), np.uint8)
        core = cv2.erode(mask, k3, borderType=cv2.BORDER_REPLICATE) > 0
        band = (cv2.dilate(mask, k3) > 0) & ~core
        band &= cv2.dilate(core.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        closer = _closer_to_figure(f @ _YCC.T, core, bg @ _YCC.T, 2)
        mask = np.where(band, closer, mask > 0).astype(np.uint8)
        # Re-deciding the edge can cut ringing crumbs loose from the figure: drop them.
        _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        crumb = stats[:, cv2.CC_STAT_AREA] < min_speck
        crumb[0] = False
        mask[crumb[labels]] = 0
    if fill_holes:
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(mask, contours, -1, 1, thickness=cv2.FILLED)
    return mask > 0


def _outline(mask: np.ndarray) -> np.ndarray:
    """The 1-px ring just outside `mask` (8-connected), inside the frame."""
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    return grown & ~mask


def cut_out(img: np.ndarray, boxes, *, background=None, tolerance: float = 50.0,
            min_speck: int = 4, attach: int = 2, fill_holes: bool = True,
            refine_edges: bool = True, outline=False,
            palette: int | None = None) -> np.ndarray:
    """Background to transparency, frame by frame, so nothing bleeds between frames.

    boxes: the frames, (x, y, w, h) each; pixels outside them (margins, gaps) become
    transparent.
    background: (r, g, b), or None to estimate it from the frame borders.
    tolerance: RGB distance from the background above which a pixel is figure.
    refine_edges: then re-decide each edge pixel by whether its colour is nearer the
    figure's colour just inside or the background's, which puts blurred and JPEG-ringing
    edges where they were drawn. Turn it off for crisp pixel art whose 1-px light rim around
    a dark figure is meant (it looks like a blur between the two).
    In each frame the largest connected figure is kept with every part of at least
    `min_speck` pixels within `attach` px of it; smaller or farther specks go. Enclosed holes
    are filled (`fill_holes`), as the source article did with external contours: interior
    areas close to the background colour (a white shirt on white) stay opaque, and so does a
    gap enclosed by an arm.
    outline: False, True (a dark colour) or (r, g, b): a 1-px ring around each figure,
    inside its frame.
    palette: reduce the opaque figure pixels of the whole sheet to this many colours (one
    palette for all frames; the outline colour comes on top).
    Returns RGBA, alpha 0 or 255, transparent pixels black.
    """
    img = check_image(img)
    bg = estimate_background(img, boxes) if background is None else background[:3]
    bg = None if bg is None else np.array(bg, np.float32)
    rgb = img[..., :3]
    # Transparent pixels are background whatever their colour; where the borders are all
    # transparent the sheet is cut out already and only specks and holes are seen to.
    opaque = img[..., 3] >= 128 if img.shape[2] == 4 else np.ones(img.shape[:2], bool)
    mask = np.zeros(img.shape[:2], bool)
    ring = np.zeros(img.shape[:2], bool)
    for x, y, w, h in boxes:
        m = _figure_mask(rgb[y:y + h, x:x + w], opaque[y:y + h, x:x + w], bg, tolerance,
                         min_speck, attach, fill_holes, refine_edges)
        m &= opaque[y:y + h, x:x + w]  # a transparent pixel has no colour to show
        mask[y:y + h, x:x + w] = m
        if outline is not False and outline is not None:
            ring[y:y + h, x:x + w] = _outline(m)
    out = np.zeros(img.shape[:2] + (4,), np.uint8)
    out[mask, :3] = img[..., :3][mask]
    out[mask, 3] = 255
    if palette:
        out = reduce_palette(out, palette)
    if ring.any():
        out[ring, :3] = DEFAULT_OUTLINE if outline is True else tuple(outline)[:3]
        out[ring, 3] = 255
    return out


def reduce_palette(img: np.ndarray, colors: int) -> np.ndarray:
    """The opaque pixels of an RGBA image reduced to at most `colors` colours (median cut
    refined by k-means, no dithering: deterministic and hard-edged)."""
    img = to_rgba(check_image(img))
    if not 1 <= colors <= 256:
        raise ValueError(f"palette size must be 1 to 256, got {colors}")
    opaque = img[..., 3] >= 128
    px = img[opaque][:, :3]
    out = img.copy()
    if len(px) == 0 or len(np.unique(px, axis=0)) <= colors:
        return out
    strip = Image.fromarray(np.ascontiguousarray(px[None]), "RGB")
    q = strip.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, kmeans=4,
                       dither=Image.Dither.NONE)
    out[opaque, :3] = np.asarray(q.convert("RGB"))[0]
    return out
