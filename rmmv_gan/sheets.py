"""RPG Maker MV/MZ sheets: layouts, MV-order conversion, cleanup to transparency (the
algorithm in rmmv_gan.cutout), head crop, previews.

Everything here is pure: numpy uint8 arrays (H x W x 3 RGB or H x W x 4 RGBA) in, arrays (or
encoded bytes) out. Writing into a game folder is `rmmv_gan.game`'s job.

MV facts used here (see docs/assets.md): a `$` sheet is 3 patterns x 4 directions, rows
down, left, right, up; an 8-character sheet is 4 x 2 such blocks; a face sheet is 4 x 2 faces
of 144 x 144, faceIndex left to right then the second row.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, fields
from typing import Iterable, Sequence

import cv2
import numpy as np
from PIL import Image

from . import cutout as _cutout
from .cutout import check_image as _check_image, reduce_palette, to_rgba as _rgba

MV_DIRECTIONS = ("down", "left", "right", "up")
MV_PATTERNS = 3
MV_FRAME = 48  # px: the standard MV/MZ character frame (procedural.FRAME is the renderer's own, smaller)
FACE = 144
WALK_CYCLE = (0, 1, 2, 1)

__all__ = [
    "MV_DIRECTIONS", "MV_FRAME", "FACE", "WALK_CYCLE", "SheetLayout", "resize",
    "native_to_frames", "character_sheet", "native_to_character_sheet",
    "eight_character_sheet", "face_sheet", "slice_character_sheet", "slice_eight_sheet",
    "slice_face_sheet", "estimate_background", "clean_frame", "clean_sheet",
    "reduce_palette", "idle_frame", "head_crop", "walk_frames", "walk_gif", "walk_apng",
    "contact_sheet",
]


# --------------------------------------------------------------------------- layout

@dataclass(frozen=True)
class SheetLayout:
    """Where the frames of one character sit in a model's native image.

    `direction_order[r]` names the direction drawn in native row r; `pattern_order[c]` is the
    MV pattern (0, 1, 2; 1 = standing) drawn in native column c, so a 4-column model that
    draws the cycle 0, 1, 2, 1 has `pattern_order=(0, 1, 2, 1)`. Frame (r, c) starts at
    `(offset_x + c * (frame_w + gap_x), offset_y + r * (frame_h + gap_y))`.
    """

    frame_w: int
    frame_h: int
    columns: int = 3
    rows: int = 4
    direction_order: tuple[str, ...] = MV_DIRECTIONS
    pattern_order: tuple[int, ...] = (0, 1, 2)
    offset_x: int = 0
    offset_y: int = 0
    gap_x: int = 0
    gap_y: int = 0

    def __post_init__(self):
        # Tuples even when built from JSON lists, so layouts stay hashable and comparable.
        object.__setattr__(self, "direction_order", tuple(str(d) for d in self.direction_order))
        object.__setattr__(self, "pattern_order", tuple(int(p) for p in self.pattern_order))
        for name in ("frame_w", "frame_h", "columns", "rows", "offset_x", "offset_y", "gap_x", "gap_y"):
            value = getattr(self, name)
            if int(value) != value:
                raise ValueError(f"SheetLayout.{name} must be a whole number, got {value}")
            object.__setattr__(self, name, int(value))
        for name in ("frame_w", "frame_h", "columns", "rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"SheetLayout.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("offset_x", "offset_y", "gap_x", "gap_y"):
            if getattr(self, name) < 0:
                raise ValueError(f"SheetLayout.{name} must not be negative, got {getattr(self, name)}")
        d = self.direction_order
        if len(d) != self.rows or len(set(d)) != len(d):
            raise ValueError(f"direction_order needs {self.rows} distinct names (one per row), got {d}")
        missing = [m for m in MV_DIRECTIONS if m not in d]
        if missing:
            raise ValueError(f"direction_order {d} lacks {missing}; MV needs {MV_DIRECTIONS}")
        p = self.pattern_order
        if len(p) != self.columns:
            raise ValueError(f"pattern_order needs {self.columns} entries (one per column), got {p}")
        if set(p) != {0, 1, 2}:
            raise ValueError(f"pattern_order {p} must use exactly the MV patterns 0, 1 and 2")

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) the native image needs at least."""
        return (self.offset_x + self.columns * self.frame_w + (self.columns - 1) * self.gap_x,
                self.offset_y + self.rows * self.frame_h + (self.rows - 1) * self.gap_y)

    def box(self, row: int, column: int) -> tuple[int, int, int, int]:
        """(x, y, w, h) of native frame (row, column)."""
        return (self.offset_x + column * (self.frame_w + self.gap_x),
                self.offset_y + row * (self.frame_h + self.gap_y), self.frame_w, self.frame_h)

    def boxes(self) -> list[tuple[int, int, int, int]]:
        return [self.box(r, c) for r in range(self.rows) for c in range(self.columns)]

    def native_index(self, direction: str, pattern: int) -> tuple[int, int]:
        """(row, column) of the native frame for an MV direction and pattern."""
        return self.direction_order.index(direction), self.pattern_order.index(pattern)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["direction_order"] = list(self.direction_order)
        d["pattern_order"] = list(self.pattern_order)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "SheetLayout":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:  # a typo in a pack manifest should not silently fall back to a default
            raise ValueError(f"unknown sheet layout keys {unknown}; known: {sorted(known)}")
        return cls(**data)


def _size(size: int | Sequence[int] | None, native: tuple[int, int]) -> tuple[int, int]:
    if size is None:
        return native
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    w, h = size
    return int(w), int(h)


# --------------------------------------------------------------------------- scaling

def resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale to width x height: pixel repetition (nearest) when both factors are whole
    numbers, otherwise OpenCV's area interpolation.

    Area works on premultiplied colour so transparent pixels do not tint the edges, and alpha
    is thresholded back to 0 / 255 because RPG Maker sprites are hard-edged.
    """
    img = _check_image(img)
    h0, w0 = img.shape[:2]
    if (w0, h0) == (width, height):
        return img.copy()
    if width % w0 == 0 and height % h0 == 0:
        return np.repeat(np.repeat(img, height // h0, axis=0), width // w0, axis=1)
    if img.shape[2] == 3:
        return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
    f = img.astype(np.float32)
    a = f[..., 3:] / 255.0
    pre = cv2.resize(np.concatenate([f[..., :3] * a, a], axis=2), (width, height),
                     interpolation=cv2.INTER_AREA)
    alpha = pre[..., 3:]
    rgb = np.where(alpha > 1e-6, pre[..., :3] / np.maximum(alpha, 1e-6), 0.0)
    out = np.empty((height, width, 4), np.uint8)
    opaque = alpha[..., 0] >= 0.5
    out[..., :3] = np.where(opaque[..., None], np.clip(np.rint(rgb), 0, 255), 0).astype(np.uint8)
    out[..., 3] = np.where(opaque, 255, 0)
    return out


def composite(rgba: np.ndarray, background) -> np.ndarray:
    """RGBA over an opaque background (an RGB colour, or an H x W x 3 picture), as uint8 RGB:
    how a transparent sheet or face is seen, and how one is compared with art drawn on a
    ground. Rounds to the nearest level."""
    a = rgba[..., 3:].astype(np.float32) / 255.0
    return np.rint(rgba[..., :3] * a + np.asarray(background, np.float32) * (1 - a)).astype(np.uint8)


# --------------------------------------------------------------------------- sheets

def native_to_frames(img: np.ndarray, layout: SheetLayout) -> np.ndarray:
    """Cut a model's native sheet into frames in MV order: array [4 directions (down, left,
    right, up)][3 patterns][frame_h][frame_w][channels]."""
    img = _check_image(img, "native sheet")
    need_w, need_h = layout.size
    if img.shape[1] < need_w or img.shape[0] < need_h:
        raise ValueError(f"native sheet is {img.shape[1]} x {img.shape[0]}, the layout needs at "
                         f"least {need_w} x {need_h}")
    out = np.empty((4, MV_PATTERNS, layout.frame_h, layout.frame_w, img.shape[2]), np.uint8)
    for d, direction in enumerate(MV_DIRECTIONS):
        for p in range(MV_PATTERNS):
            x, y, w, h = layout.box(*layout.native_index(direction, p))
            out[d, p] = img[y:y + h, x:x + w]
    return out


def character_sheet(frames, frame_size: int | Sequence[int] | None = MV_FRAME) -> np.ndarray:
    """A `$` sheet (RGBA; 144 x 192 at 48-px frames) from frames[direction][pattern] in MV
    order. `frame_size` is an int (square), (w, h), or None for the frames' own size."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 5 or frames.shape[:2] != (4, 3) \
            or frames.shape[4] not in (3, 4):
        raise ValueError(f"frames must be uint8 [4 directions][3 patterns][h][w][3 or 4], "
                         f"got {frames.dtype} {frames.shape}")
    fw, fh = _size(frame_size, (frames.shape[3], frames.shape[2]))
    sheet = np.zeros((4 * fh, 3 * fw, 4), np.uint8)
    for d in range(4):
        for p in range(3):
            sheet[d * fh:(d + 1) * fh, p * fw:(p + 1) * fw] = _rgba(resize(frames[d, p], fw, fh))
    return sheet


def native_to_character_sheet(img: np.ndarray, layout: SheetLayout,
                              frame_size: int | Sequence[int] | None = MV_FRAME) -> np.ndarray:
    """A model's native sheet straight to an MV `$` sheet."""
    return character_sheet(native_to_frames(img, layout), frame_size)


def _grid(blocks, cols: int, rows: int, size: tuple[int, int] | None, what: str) -> np.ndarray:
    blocks = list(blocks)
    if len(blocks) > cols * rows:
        raise ValueError(f"at most {cols * rows} {what}s fit in one sheet, got {len(blocks)}")
    present = [_check_image(b, what) for b in blocks if b is not None]
    if size is None:
        if not present:
            raise ValueError(f"no {what}s given and no size to make an empty sheet")
        size = (present[0].shape[1], present[0].shape[0])
    bw, bh = size
    sheet = np.zeros((rows * bh, cols * bw, 4), np.uint8)  # empty slots stay transparent
    for i, b in enumerate(blocks):
        if b is None:
            continue
        b = _check_image(b, what)
        if (b.shape[1], b.shape[0]) != (bw, bh):
            raise ValueError(f"{what} {i} is {b.shape[1]} x {b.shape[0]}, expected {bw} x {bh}")
        x, y = (i % cols) * bw, (i // cols) * bh
        sheet[y:y + bh, x:x + bw] = _rgba(b)
    return sheet


def eight_character_sheet(characters: Sequence[np.ndarray | None]) -> np.ndarray:
    """An 8-character sheet (576 x 384 at 48-px frames) from up to 8 `$` sheets of one size:
    character i at block column i % 4, block row i // 4; None or missing slots transparent."""
    return _grid(characters, 4, 2, None, "character sheet")


def face_sheet(faces: Sequence[np.ndarray | None], face_size: int = FACE) -> np.ndarray:
    """A 576 x 288 face sheet from up to 8 faces (faceIndex order); faces of another size are
    scaled to `face_size` (nearest for whole factors, area otherwise). None slots are empty."""
    scaled = [None if f is None else resize(f, face_size, face_size) for f in faces]
    return _grid(scaled, 4, 2, (face_size, face_size), "face")


def _split(sheet: np.ndarray, cols: int, rows: int, what: str) -> list[np.ndarray]:
    sheet = _check_image(sheet, what)
    h, w = sheet.shape[:2]
    if w % cols or h % rows:
        raise ValueError(f"a {what} must divide into {cols} x {rows} cells; "
                         f"{w} x {h} does not")
    bw, bh = w // cols, h // rows
    return [sheet[r * bh:(r + 1) * bh, c * bw:(c + 1) * bw].copy()
            for r in range(rows) for c in range(cols)]


def slice_character_sheet(sheet: np.ndarray) -> np.ndarray:
    """A `$` sheet back into frames[direction][pattern] (MV order), at the sheet's frame size."""
    cells = _split(sheet, 3, 4, "character sheet")
    return np.stack(cells).reshape((4, 3) + cells[0].shape)


def slice_eight_sheet(sheet: np.ndarray) -> list[np.ndarray]:
    """An 8-character sheet into its 8 `$`-style character sheets, index i = MV's index."""
    return _split(sheet, 4, 2, "8-character sheet")


def slice_face_sheet(sheet: np.ndarray) -> list[np.ndarray]:
    """A face sheet into its 8 faces, in faceIndex order."""
    return _split(sheet, 4, 2, "face sheet")


# --------------------------------------------------------------------------- cleanup
# The algorithm is rmmv_gan.cutout's; here a layout or frame size becomes its frame boxes.

def _frame_boxes(img: np.ndarray, grid) -> list[tuple[int, int, int, int]]:
    h, w = img.shape[:2]
    if grid is None:
        return [(0, 0, w, h)]
    if isinstance(grid, SheetLayout):
        need_w, need_h = grid.size
        if w < need_w or h < need_h:
            raise ValueError(f"image is {w} x {h}, the layout needs at least {need_w} x {need_h}")
        return grid.boxes()
    fw, fh = _size(grid, (w, h))
    if w % fw or h % fh:
        raise ValueError(f"a {w} x {h} image does not divide into {fw} x {fh} frames")
    return [(x, y, fw, fh) for y in range(0, h, fh) for x in range(0, w, fw)]


def estimate_background(img: np.ndarray, grid=None) -> tuple[int, int, int] | None:
    """The background colour of a sheet (see `rmmv_gan.cutout.estimate_background`); grid as
    for `clean_sheet`."""
    img = _check_image(img)
    return _cutout.estimate_background(img, _frame_boxes(img, grid))


def clean_frame(frame: np.ndarray, **options) -> np.ndarray:
    """One frame to RGBA with alpha exactly 0 or 255; options as for `clean_sheet`."""
    return clean_sheet(frame, None, **options)


def clean_sheet(img: np.ndarray, grid=None, **options) -> np.ndarray:
    """Background to transparency, frame by frame, so nothing bleeds between frames.

    grid: a SheetLayout, a frame size (int or (w, h)) dividing the image, or None (one
    frame); pixels outside the frames (margins, gaps) become transparent. options: those of
    `rmmv_gan.cutout.cut_out` (background, tolerance, min_speck, attach, fill_holes,
    refine_edges, outline, palette). Returns RGBA, alpha 0 or 255, transparent pixels black.
    """
    img = _check_image(img)
    return _cutout.cut_out(img, _frame_boxes(img, grid), **options)


# --------------------------------------------------------------------------- head crop

_INTERPOLATION = {"nearest": cv2.INTER_NEAREST_EXACT, "area": cv2.INTER_AREA,
                  "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC,
                  "lanczos": cv2.INTER_LANCZOS4}


def idle_frame(img: np.ndarray, layout: SheetLayout) -> np.ndarray:
    """The standing (pattern 1), facing-down frame of a native sheet: where the head is cut."""
    x, y, w, h = layout.box(*layout.native_index("down", 1))
    return _check_image(img, "sheet")[y:y + h, x:x + w].copy()


def head_crop(frame: np.ndarray, box: Sequence[int], size: int,
              background: Sequence[int] = (255, 255, 255),
              interpolation: str = "auto") -> np.ndarray:
    """The head for the face model: RGB, size x size.

    box: (x, y, w, h) in the frame's pixels; it is grown about its centre to a square (parts
    off the frame count as background), composited over `background` (the colour the face
    model's training images had) and scaled. interpolation "auto" repeats pixels for a whole
    factor and uses area otherwise, like the sheets; "nearest", "area", "linear", "cubic" or
    "lanczos" choose an OpenCV filter (a smooth one can suit a painted face model better).
    """
    frame = _rgba(_check_image(frame, "frame"))
    x, y, w, h = (int(v) for v in box)
    if w < 1 or h < 1:
        raise ValueError(f"head box {tuple(box)} is empty")
    side = max(w, h)
    x0, y0 = x - (side - w) // 2, y - (side - h) // 2
    square = np.zeros((side, side, 4), np.uint8)  # off-frame parts are transparent
    fh, fw = frame.shape[:2]
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + side, fw), min(y0 + side, fh)
    if sx1 <= sx0 or sy1 <= sy0:
        raise ValueError(f"head box {tuple(box)} lies outside the {fw} x {fh} frame")
    square[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = frame[sy0:sy1, sx0:sx1]
    a = square[..., 3:].astype(np.float32) / 255.0
    bg = np.array(background[:3], np.float32)
    rgb = np.rint(square[..., :3] * a + bg * (1.0 - a)).astype(np.uint8)
    if interpolation == "auto":
        return resize(rgb, size, size)
    if interpolation not in _INTERPOLATION:
        raise ValueError(f"interpolation must be 'auto' or one of {sorted(_INTERPOLATION)}, "
                         f"got {interpolation!r}")
    return cv2.resize(rgb, (size, size), interpolation=_INTERPOLATION[interpolation])


# --------------------------------------------------------------------------- previews

def walk_frames(sheet: np.ndarray, scale: int = 2) -> list[np.ndarray]:
    """The walk cycle of a `$` sheet as RGBA pictures: patterns 0, 1, 2, 1, each showing the
    four directions side by side (down, left, right, up), pixels repeated `scale` times."""
    frames = slice_character_sheet(_rgba(_check_image(sheet, "character sheet")))
    out = []
    for p in WALK_CYCLE:
        strip = np.concatenate([frames[d, p] for d in range(4)], axis=1)
        out.append(np.repeat(np.repeat(strip, scale, axis=0), scale, axis=1))
    return out


def _indexed(frames: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Frames as palette indices with index 0 transparent, one palette for all of them."""
    stack = np.stack(frames)
    opaque = stack[..., 3] >= 128
    if len(np.unique(stack[opaque][:, :3], axis=0)) > 255:
        reduced = reduce_palette(np.concatenate(frames, axis=0), 255)
        stack = reduced.reshape(stack.shape)
    rgb = stack[..., :3].astype(np.uint32)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    colours, inverse = np.unique(packed[opaque], return_inverse=True)
    idx = np.zeros(stack.shape[:3], np.uint8)
    idx[opaque] = inverse.reshape(-1) + 1
    palette = np.zeros((256, 3), np.uint8)
    palette[1:len(colours) + 1] = np.stack([colours >> 16, colours >> 8, colours], 1) & 0xFF
    return list(idx), palette


def walk_gif(sheet: np.ndarray, scale: int = 2, frame_ms: int = 150) -> bytes:
    """An endless animated GIF of the walk cycle (see `walk_frames`); palette index 0 is
    transparent and each frame clears the last (disposal 2), so the sprite's transparency
    survives. More than 255 colours are reduced by median cut."""
    idx, palette = _indexed(walk_frames(sheet, scale))
    images = []
    for i in idx:
        im = Image.fromarray(i, "P")
        im.putpalette(palette.reshape(-1).tolist())
        images.append(im)
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                   duration=frame_ms, loop=0, transparency=0, disposal=2, optimize=False)
    return buf.getvalue()


def walk_apng(sheet: np.ndarray, scale: int = 2, frame_ms: int = 150) -> bytes:
    """The same walk cycle as an animated PNG: full RGBA, no palette limit."""
    images = [Image.fromarray(f, "RGBA") for f in walk_frames(sheet, scale)]
    buf = io.BytesIO()
    images[0].save(buf, format="PNG", save_all=True, append_images=images[1:],
                   duration=frame_ms, loop=0, disposal=1, blend=0)
    return buf.getvalue()


def contact_sheet(images: Iterable[np.ndarray], columns: int = 8, pad: int = 4,
                  background: Sequence[int] = (0, 0, 0, 0)) -> np.ndarray:
    """Many pictures on one RGBA sheet: a grid of `columns`, cells as large as the largest
    picture, each centred in its cell, `pad` px between cells and around the edge."""
    images = [_rgba(_check_image(im, "picture")) for im in images]
    if not images:
        raise ValueError("contact_sheet needs at least one picture")
    if columns < 1 or pad < 0:
        raise ValueError(f"columns must be >= 1 and pad >= 0, got {columns}, {pad}")
    cw = max(im.shape[1] for im in images)
    ch = max(im.shape[0] for im in images)
    cols = min(columns, len(images))
    rows = -(-len(images) // cols)
    bg = tuple(background) + (255,) * (4 - len(background))
    out = np.empty((pad + rows * (ch + pad), pad + cols * (cw + pad), 4), np.uint8)
    out[:] = bg
    for i, im in enumerate(images):
        h, w = im.shape[:2]
        x = pad + (i % cols) * (cw + pad) + (cw - w) // 2
        y = pad + (i // cols) * (ch + pad) + (ch - h) // 2
        out[y:y + h, x:x + w] = im
    return out
