"""Procedural anime-style portraits: 72 x 72 bust (head, shoulders, collar) on white.

Every part is a boolean mask (numpy ellipses and half-planes for the smooth parts, PIL
polygons for hair strands and clothes) painted back to front with a flat fill and a 1-px line
along its own edge: hard-edged cel shading with line art, no anti-aliasing, so the white
background stays pure and the pictures downscale/upscale cleanly.

Identity (face shape, hair, colours, outfit) depends on ``v`` only; the expression changes
eyebrows, eyelids, irises, mouth and extras (blush, tears, sweat); ``turn`` slides the
features, the chin and the hair sideways and narrows the far eye, a flat 3/4 view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .palette import cdf, choose, decode_look, shade

__all__ = ["PORTRAIT_DIM", "PORTRAIT_SIZE", "EXPRESSIONS", "portrait_from_vector", "portrait"]

PORTRAIT_DIM = 32
PORTRAIT_SIZE = 72
EXPRESSIONS = ("neutral", "happy", "sad", "angry", "surprised", "worried", "shy", "determined")

_S = PORTRAIT_SIZE
# Pixel-centre coordinates: masks test the centre of each pixel.
_YY, _XX = np.mgrid[0:_S, 0:_S].astype(np.float32) + 0.5
_DARK = (44, 32, 46)
_WHITE = (248, 247, 250)   # eye whites and teeth: never the background's pure white
_TEAR = (150, 200, 246)


# --------------------------------------------------------------------------- mask helpers
def _ell(cx, cy, rx, ry) -> np.ndarray:
    return ((_XX - cx) / rx) ** 2 + ((_YY - cy) / ry) ** 2 <= 1.0


def _poly(points) -> np.ndarray:
    im = Image.new("L", (_S, _S), 0)
    ImageDraw.Draw(im).polygon([(float(x), float(y)) for x, y in points], fill=255)
    return np.asarray(im) > 0


def _line(points, width=1) -> np.ndarray:
    im = Image.new("L", (_S, _S), 0)
    ImageDraw.Draw(im).line([(float(x), float(y)) for x, y in points], fill=255, width=width)
    return np.asarray(im) > 0


def _shift(m: np.ndarray, dy: int = 0, dx: int = 0) -> np.ndarray:
    """``m`` moved by (dy, dx), the vacated border empty."""
    out = np.zeros_like(m)
    h, w = m.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        m[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def _edge(m: np.ndarray) -> np.ndarray:
    """Pixels of ``m`` with a 4-neighbour outside it (the image border counts as inside, so
    clothes running off the bottom get no line there)."""
    e = m.copy()
    e[1:] &= m[:-1]
    e[:-1] &= m[1:]
    e[:, 1:] &= m[:, :-1]
    e[:, :-1] &= m[:, 1:]
    return m & ~e


class _Canvas:
    def __init__(self):
        self.rgb = np.full((_S, _S, 3), 255, np.uint8)

    def fill(self, mask, colour):
        self.rgb[mask] = colour

    def paint(self, mask, colour, line=None):
        """Flat fill with a 1-px line of ``line`` along the mask's own edge."""
        self.rgb[mask] = colour
        if line is not None:
            self.rgb[_edge(mask)] = line


def _line_of(rgb):
    return shade(rgb, -0.72)


# --------------------------------------------------------------------------- identity
@dataclass(frozen=True)
class _Face:
    look: object
    shape: str          # round | oval | sharp
    width: float        # face half-width in px
    eye_shape: str      # round | sharp | droopy
    eye_size: float
    eye_gap: float
    fringe: str         # straight | swept | parted | spiky
    volume: float       # extra hair volume in px
    collar: int
    extra: str          # none | ribbon | clip | earring
    brow: float         # eyebrow thickness factor
    sweep: int          # side of the swept fringe / ponytail: -1 or 1


def _identity(v) -> _Face:
    look = decode_look(v)
    u = [cdf(x) for x in v]
    fringe = ("straight", "swept", "parted", "spiky")[choose(v[27], (0.35, 0.3, 0.25, 0.1))]
    if look.hair_style == "spiky":
        fringe = "spiky"
    return _Face(
        look=look,
        shape=("round", "oval", "sharp")[choose(v[22], (0.35, 0.4, 0.25))],
        width=16.5 + 2.0 * u[25],
        eye_shape=("round", "sharp", "droopy")[choose(v[23], (0.45, 0.3, 0.25))],
        eye_size=0.9 + 0.22 * u[24],
        eye_gap=8.6 + 1.4 * u[26],
        fringe=fringe,
        volume=1.0 + 3.0 * u[29],
        collar=choose(v[28], (0.5, 0.5)),
        extra=("none", "ribbon", "clip", "earring")[choose(v[30], (0.55, 0.17, 0.14, 0.14))],
        brow=u[31],
        sweep=1 if v[21] >= 0 else -1,
    )


# Expression parameters: eye openness, lid tilt (+ = inner corner lower: anger), iris scale,
# gaze shift, brow lift (px) and tilt (+ = inner end lower), mouth kind, extras.
_EXPR = {
    "neutral":    dict(open=1.0, tilt=0.0, iris=1.0, gaze=0.0, lift=0.0, btilt=0.0, mouth="line"),
    "happy":      dict(open=0.0, tilt=0.0, iris=1.0, gaze=0.0, lift=1.0, btilt=-0.1, mouth="smile",
                       blush=0.5),
    "sad":        dict(open=0.82, tilt=-0.38, iris=1.0, gaze=0.0, lift=0.5, btilt=-0.6,
                       mouth="frown", tears=True),
    "angry":      dict(open=0.72, tilt=0.55, iris=0.9, gaze=0.0, lift=-1.5, btilt=0.85,
                       mouth="shout"),
    "surprised":  dict(open=1.15, tilt=0.0, iris=0.72, gaze=0.0, lift=3.0, btilt=-0.15,
                       mouth="o"),
    "worried":    dict(open=0.9, tilt=-0.28, iris=0.9, gaze=0.0, lift=1.5, btilt=-0.75,
                       mouth="wavy", sweat=True),
    "shy":        dict(open=0.78, tilt=-0.12, iris=1.0, gaze=1.0, lift=0.5, btilt=-0.35,
                       mouth="small", blush=1.0),
    "determined": dict(open=0.85, tilt=0.3, iris=1.0, gaze=0.0, lift=-1.0, btilt=0.45,
                       mouth="smirk"),
}


# --------------------------------------------------------------------------- parts
def _hair_colours(look):
    h = look.hair
    return h, shade(h, -0.35), shade(h, 0.5), _line_of(h)


def _back_hair(c: _Canvas, f: _Face, cx, t):
    """Hair behind the head and body (long styles reach the shoulders)."""
    hair, dark, _, line = _hair_colours(f.look)
    style = f.look.hair_style
    if style == "bald":
        return
    bx = cx - 2.0 * t
    rx, top = f.width + 3 + f.volume, 5.5 - f.volume * 0.4
    cap = _ell(bx, 31, rx, 31 - top)
    if style == "long":
        body = _poly([(bx - rx, 30), (bx - rx - 3, 60), (bx - rx - 1, 72), (bx + rx + 1, 72),
                      (bx + rx + 3, 60), (bx + rx, 30)])
        c.paint(cap | body, dark, line)
    elif style == "bob":
        body = _poly([(bx - rx, 30), (bx - rx - 1, 54), (bx + rx + 1, 54), (bx + rx, 30)])
        c.paint(cap | body, dark, line)
    elif style == "twintails":
        for s in (-1, 1):
            x0 = bx + s * (f.width + 2)
            tail = _poly([(x0, 14), (x0 + s * 9, 22), (x0 + s * 12, 40), (x0 + s * 9, 62),
                          (x0 + s * 4, 70), (x0 + s * 5, 52), (x0 + s * 1, 34)])
            c.paint(tail, hair, line)
            c.fill(tail & _ell(x0 + s * 8, 42, 2.2, 12) & ~_edge(tail), shade(hair, 0.35))
        c.paint(cap, dark, line)
        for s in (-1, 1):
            c.paint(_ell(bx + s * (f.width + 2.5), 15, 2.6, 3.2), f.look.accent,
                    _line_of(f.look.accent))
    elif style == "ponytail":
        s = f.sweep
        x0 = bx + s * 8
        tail = _poly([(x0, 8), (x0 + s * 14, 4), (x0 + s * 21, 16), (x0 + s * 22, 36),
                      (x0 + s * 17, 54), (x0 + s * 17, 34), (x0 + s * 11, 16)])
        c.paint(tail, hair, line)
        c.fill(tail & _ell(x0 + s * 19, 24, 1.8, 8) & ~_edge(tail), shade(hair, 0.35))
        c.paint(cap, dark, line)
        c.paint(_ell(x0 + s * 6, 8, 3.0, 3.0), f.look.accent, _line_of(f.look.accent))
    elif style == "spiky":
        pts = []
        n = 11
        for i in range(n + 1):
            a = np.pi * (1.05 + 0.9 * i / n)
            r = (rx + 4) if i % 2 == 0 else rx - 2
            pts.append((bx + r * np.cos(a), 31 + (31 - top + 3) * np.sin(a) * (r / (rx + 4))))
        pts += [(bx + rx, 44), (bx - rx, 44)]
        c.paint(_poly(pts) | cap & (_YY < 44), dark, line)
    else:  # short
        c.paint(cap & (_YY < 44), dark, line)


def _body(c: _Canvas, f: _Face, cx, t):
    look = f.look
    main, second, accent, metal = look.main, look.second, look.accent, look.metal
    skin = look.skin
    bx = 36 + 0.8 * t
    shoulders = [(0, 72), (1, 66), (10, 61), (bx - 10, 58), (bx + 10, 58), (72 - 10, 61),
                 (71, 66), (72, 72)]
    body = _poly(shoulders)
    neck = _poly([(cx - 5.5, 44), (cx + 5.5, 44), (cx + 6.5, 62), (cx - 6.5, 62)])
    if look.bodywear == "cape":
        # A standing cloak collar rises behind the neck.
        c.paint(_poly([(bx - 17, 62), (bx - 16, 47), (bx - 8, 52), (bx + 8, 52), (bx + 16, 47),
                       (bx + 17, 62)]), shade(accent, -0.45), _line_of(accent))
    c.paint(neck, skin, _line_of(skin))
    c.fill(neck & (_YY < 52) & ~_edge(neck), shade(skin, -0.25))
    outfit = look.outfit
    if outfit == "armour":
        c.paint(body, second, _line_of(second))
        plate = _poly([(bx - 13, 72), (bx - 14, 64), (bx - 8, 60), (bx + 8, 60), (bx + 14, 64),
                       (bx + 13, 72)])
        c.paint(plate, metal, _line_of(metal))
        c.fill(plate & _ell(bx - 5, 67, 3, 6) & ~_edge(plate), shade(metal, 0.55))
        c.fill(plate & (_XX > bx + 8) & ~_edge(plate), shade(metal, -0.35))
        gorget = _ell(bx, 59, 10, 4.2) & ~_ell(bx, 57.5, 6.5, 2.8) & (_YY > 56)
        c.paint(gorget, shade(metal, 0.2), _line_of(metal))
    else:
        c.paint(body, main, _line_of(main))
        c.fill(body & (_YY > 66) & ~_edge(body) & ((_XX < 12) | (_XX > 60)), shade(main, -0.3))
        if outfit == "tunic":
            vneck = _poly([(bx - 6, 58), (bx + 6, 58), (bx, 68 - f.collar * 2)])
            c.paint(vneck, second, _line_of(second))
            c.paint(_poly([(bx - 4, 58), (bx + 4, 58), (bx, 65 - f.collar * 2)]), skin,
                    _line_of(skin))
            for s in (-1, 1):
                c.paint(_poly([(bx + s * 6, 58), (bx + s * 11, 59), (bx + s * 5, 66)]),
                        shade(main, 0.3), _line_of(main))
        elif outfit == "robe":
            c.paint(_poly([(bx - 6, 58), (bx + 6, 58), (bx + 1, 66)]), skin, _line_of(skin))
            c.paint(_poly([(bx + 7, 58), (bx + 3, 58), (bx - 4, 72), (bx + 1, 72)]), second,
                    _line_of(second))
            c.paint(_poly([(bx - 7, 58), (bx - 3, 58), (bx + 5, 66), (bx + 2, 70)]), second,
                    _line_of(second))
        else:  # dress
            c.paint(_ell(bx, 58.5, 10 - f.collar * 2, 6 + f.collar), skin, _line_of(skin))
            c.fill(_ell(bx, 58.5, 10 - f.collar * 2, 6 + f.collar) & (_YY > 57)
                   & ((_XX - bx) ** 2 < 16) & (_YY < 59), shade(skin, -0.25))
            for s in (-1, 1):
                c.paint(_ell(bx + s * 26, 66, 9, 6.5), shade(main, 0.25), _line_of(main))
            bow = _poly([(bx, 66), (bx - 5, 63), (bx - 5, 69)]) | \
                _poly([(bx, 66), (bx + 5, 63), (bx + 5, 69)])
            c.paint(bow, accent, _line_of(accent))
            c.paint(_ell(bx, 66, 1.6, 1.6), shade(accent, -0.2), _line_of(accent))
    if look.bodywear == "cape":
        for s in (-1, 1):
            cloak = _poly([(36 + s * 36, 72), (36 + s * 35, 64), (bx + s * 20, 59), (bx + s * 10, 58),
                           (bx + s * 13, 72)])
            c.paint(cloak, accent, _line_of(accent))
        c.paint(_ell(bx, 63, 2.5, 2.5), shade(metal, 0.3), _line_of(metal))
    if look.bodywear == "pads" or outfit == "armour":
        for s in (-1, 1):
            pad = _ell(bx + s * 27, 67, 11, 7.5) & (_YY < 70.5)
            c.paint(pad, metal, _line_of(metal))
            c.fill(pad & _ell(bx + s * 25, 64.5, 6, 1.6), shade(metal, 0.6))
    if look.bodywear == "belt" and outfit != "armour":
        # Not visible in a bust: the belt's leather shows as a pendant cord instead.
        c.paint(_line([(bx - 7, 59), (bx, 66), (bx + 7, 59)]), (90, 60, 44))
        c.paint(_ell(bx, 67, 2, 2.4), accent, _line_of(accent))


def _face_mask(f: _Face, cx, t):
    chin_x = cx + 5.0 * t
    w = f.width
    cranium = _ell(cx, 31, w, 21)
    if f.shape == "round":
        jaw = [(cx - w, 31), (cx - w + 0.5, 41), (cx - w * 0.7, 49), (chin_x - 5, 54.5),
               (chin_x + 5, 54.5), (cx + w * 0.7, 49), (cx + w - 0.5, 41), (cx + w, 31)]
    elif f.shape == "oval":
        jaw = [(cx - w, 31), (cx - w + 1, 42), (cx - w * 0.62, 51), (chin_x - 3, 56),
               (chin_x + 3, 56), (cx + w * 0.62, 51), (cx + w - 1, 42), (cx + w, 31)]
    else:
        jaw = [(cx - w, 31), (cx - w + 1.5, 42), (cx - w * 0.55, 50), (chin_x, 57),
               (cx + w * 0.55, 50), (cx + w - 1.5, 42), (cx + w, 31)]
    return cranium | _poly(jaw)


def _front_hair(c: _Canvas, f: _Face, cx, t, face):
    hair, dark, light, line = _hair_colours(f.look)
    style = f.look.hair_style
    hx = cx + 3.0 * t
    w = f.width
    if style == "bald":
        c.fill(face & _ell(hx - 5, 16, 5, 2.2), shade(f.look.skin, 0.45))
        return None
    # Cap over the top of the head, then the fringe strands hanging from it.
    cap = _ell(hx, 31, w + 2.2 + f.volume * 0.5, 26 - 0.0) & (_YY < 24)
    fr = f.fringe
    tips = []
    if fr == "straight":
        xs = np.linspace(-w - 1, w + 1, 9)
        for i, x in enumerate(xs):
            tips.append((hx + x, 28.5 if i % 2 == 0 else 22))
    elif fr == "swept":
        s = f.sweep
        xs = np.linspace(-w - 1, w + 1, 7)[::s]
        for i, x in enumerate(xs):
            depth = 22 + 8 * (i / (len(xs) - 1))
            tips.append((hx + x, depth if i % 2 == 0 else depth - 5))
        tips.sort()
    elif fr == "parted":
        xs = np.linspace(-w - 1, w + 1, 9)
        for i, x in enumerate(xs):
            if i == 4:
                tips.append((hx + x, 17))
            else:
                tips.append((hx + x, 29.5 - abs(i - 4) * 0.5 if i % 2 == 0 else 23))
    else:  # spiky
        xs = np.linspace(-w - 2, w + 2, 9)
        for i, x in enumerate(xs):
            tips.append((hx + x + (1.5 if i % 2 == 0 else 0), 30 if i % 2 == 0 else 21))
    pts = [(hx - w - 2, 20)] + tips + [(hx + w + 2, 20)]
    fringe = _poly(pts) & _ell(hx, 31, w + 3, 28)
    front = cap | fringe
    # Side locks in front of the ears, length by style.
    lock_end = {"short": 42, "spiky": 40, "ponytail": 46, "twintails": 48, "bob": 53,
                "long": 68}[style]
    for s in (-1, 1):
        x0 = hx + s * (w + 0.5) - 2.0 * t
        if lock_end > 60:
            lock = _poly([(x0 - s * 5, 20), (x0 + s * 3, 24), (x0 + s * 4, 44), (x0 + s * 3, 62),
                          (x0 + s * 1, lock_end), (x0 - s * 3, 56), (x0 - s * 3, 40),
                          (x0 - s * 4, 30)])
        else:
            lock = _poly([(x0 - s * 5, 20), (x0 + s * 3, 24), (x0 + s * 3, 40),
                          (x0 + s * 1, lock_end), (x0 - s * 3, lock_end - 8),
                          (x0 - s * 4, 30)])
        front |= lock
    # The fringe casts a shadow on the forehead (anime cel shading).
    c.fill(face & _shift(front, 2, 0) & ~front, shade(f.look.skin, -0.2))
    c.paint(front, hair, line)
    # Highlight band ("angel ring"), broken into strands.
    ring = _ell(hx, 26, w + 1, 14) & ~_ell(hx, 27.5, w + 0.5, 12.2) & (_YY < 20)
    strands = ((_XX.astype(int) + (_YY.astype(int) // 2)) % 6) < 4
    c.fill(ring & strands & front & ~_edge(front), light)
    # Darker strand partings inside the fringe.
    for x, y in tips[1:-1:2]:
        c.fill(_line([(x, y - 1), (x + 0.3 * (hx - x) / max(w, 1), y - 7)]) & front & ~_edge(front),
               dark)
    return front


def _eye(c: _Canvas, f: _Face, ex, ey, side, e, width_scale):
    """One eye. ``side`` -1 for the viewer's-left eye (its inner corner is to the right)."""
    look = f.look
    w = 5.4 * f.eye_size * width_scale
    h = 6.3 * f.eye_size
    lash = _DARK
    if e["open"] <= 0.0:
        # Closed happy eye: an upward arc.
        arc = _ell(ex, ey + 2, w, 4.2) & ~_ell(ex, ey + 3.6, w - 1.2, 3.6) & (_YY < ey + 2.4)
        c.fill(arc, lash)
        return
    base_tilt = {"round": 0.0, "sharp": 0.22, "droopy": -0.2}[f.eye_shape]
    tilt = e["tilt"] + base_tilt
    openness = e["open"] * (0.9 if f.eye_shape == "sharp" else 1.0)
    # Eye socket: an ellipse cut by the upper lid, a slanted line.
    inner = -side   # +1: the inner corner lies to the right
    top = ey - h * openness + h * 0.2
    lid_y = top + tilt * (_XX - ex) * inner * 0.55
    region = _ell(ex, ey + 0.5, w, h) & (_YY >= lid_y) & (_YY <= ey + h * 0.62)
    c.fill(region, _WHITE)
    # Iris and pupil, clipped by the socket (the lid covers their top when narrowed). The
    # iris fills most of the socket's height: big anime eyes with white only at the sides.
    gaze = e["gaze"] * 1.8 * (1 if f.sweep > 0 else -1)
    ix, iy = ex + gaze + inner * 0.3, ey + 0.8
    irx, iry = w * 0.66 * e["iris"], h * 0.86 * e["iris"]
    iris = _ell(ix, iy, irx, iry) & region
    col = look.eyes
    c.fill(iris, col)
    c.fill(iris & (_YY < iy - iry * 0.25), shade(col, -0.5))
    c.fill(iris & (_YY > iy + iry * 0.35), shade(col, 0.45))
    c.fill(_ell(ix, iy - 0.3, max(1.3, irx * 0.38), max(1.9, iry * 0.42)) & region, shade(col, -0.8))
    # Highlights: a glint upper left, a dot lower right.
    c.fill(_ell(ix - irx * 0.42, iy - iry * 0.32, 1.05 * f.eye_size, 1.35 * f.eye_size) & region,
           _WHITE)
    c.fill(_ell(ix + irx * 0.45, iy + iry * 0.4, 0.7, 0.7) & region, _WHITE)
    if e.get("tears"):
        c.fill(_ell(ix + irx * 0.1, iy + iry * 0.5, 0.8, 0.6) & region, _WHITE)
    # Upper lid: the top two rows of the socket, with a lash wing at the outer corner.
    lid = region & ~_shift(region, 2, 0)
    outer_x = ex - inner * w
    wing = _poly([(outer_x + inner * 2, _lid_y(top, tilt, inner, outer_x + inner * 2, ex)),
                  (outer_x - inner * 1.6, _lid_y(top, tilt, inner, outer_x, ex) + 1.0),
                  (outer_x + inner * 1.5, _lid_y(top, tilt, inner, outer_x, ex) + 3.5)])
    c.fill(lid | wing, lash)
    # Lower lash: a short line under the outer half.
    below = _shift(region, 1, 0) & ~region
    if e.get("tears"):
        # Brimming eyes: a wet lower lid and a tear running down the cheek.
        c.fill(below & ((_XX - ex) * inner < w * 0.7), _TEAR)
        y0 = ey + h * 0.62 + 1
        drop = _poly([(ix - 0.8, y0), (ix + 1.2, y0), (ix + 1.2, y0 + 4), (ix + 0.2, y0 + 6.5),
                      (ix - 0.8, y0 + 4)])
        c.paint(drop, _TEAR, shade(_TEAR, -0.45))
    else:
        c.fill(below & ((_XX - ex) * inner < w * 0.1), shade(look.skin, -0.55))


def _lid_y(top, tilt, inner, x, ex):
    """Height of the (slanted) upper-lid line at column ``x``."""
    return top + tilt * (x - ex) * inner * 0.55


def _brow(c: _Canvas, f: _Face, bx, by, side, e, colour):
    inner = -side
    length = 8.5
    tilt = e["btilt"]
    y_in = by - e["lift"] + tilt * 2.6
    y_out = by - e["lift"] - tilt * 1.2 + (0.6 if f.eye_shape == "droopy" else 0)
    x_in = bx + inner * 3.2
    x_out = bx - inner * (length - 3.2)
    thick = 0.9 + 0.7 * f.brow
    mid = ((x_in + x_out) / 2, (y_in + y_out) / 2 - 1.1)
    brow = _poly([(x_in, y_in - thick / 2), mid, (x_out, y_out - 0.2), (x_out, y_out + 0.8),
                  (mid[0], mid[1] + thick), (x_in, y_in + thick / 2 + 0.5)])
    c.fill(brow, colour)


def _mouth(c: _Canvas, f: _Face, mx, my, kind):
    skin = f.look.skin
    line = shade(skin, -0.62)
    inside = (150, 48, 62)
    if kind == "line":
        c.fill(_line([(mx - 2.5, my), (mx + 2.5, my)]), line)
    elif kind == "smile":
        m = _poly([(mx - 4.5, my - 1), (mx + 4.5, my - 1), (mx + 2.5, my + 3), (mx, my + 4),
                   (mx - 2.5, my + 3)])
        c.paint(m, inside, line)
        c.fill(m & _ell(mx, my + 3.5, 2.5, 1.5) & ~_edge(m), (232, 118, 124))
    elif kind == "frown":
        c.fill(_line([(mx - 3, my + 1.5), (mx - 1, my), (mx + 1, my), (mx + 3, my + 1.5)]), line)
    elif kind == "shout":
        m = _poly([(mx - 4, my - 1.5), (mx + 4, my - 1.5), (mx + 3, my + 3.5), (mx - 3, my + 3.5)])
        c.paint(m, inside, line)
        c.fill(m & (_YY < my) & ~_edge(m), _WHITE)
    elif kind == "o":
        m = _ell(mx, my + 1, 2.3, 3.0)
        c.paint(m, inside, line)
    elif kind == "wavy":
        c.fill(_line([(mx - 3.5, my + 1), (mx - 1.5, my), (mx + 0.5, my + 1), (mx + 2.5, my),
                      (mx + 3.5, my + 0.5)]), line)
    elif kind == "small":
        c.fill(_line([(mx - 1.5, my), (mx, my + 0.8), (mx + 1.5, my)]), line)
    elif kind == "smirk":
        c.fill(_line([(mx - 3, my + 0.5), (mx + 1.5, my + 0.5), (mx + 3.5, my - 1)]), line)


def _headwear(c: _Canvas, f: _Face, cx, t, back: bool):
    look = f.look
    kind = look.headwear
    acc, line = look.accent, _line_of(look.accent)
    hx = cx + 2.5 * t
    w = f.width
    if kind == "hood":
        if back:
            hood = _ell(cx - t, 31, w + 9, 30) | _poly([(cx - w - 9, 34), (cx - w - 12, 64),
                                                        (cx + w + 12, 64), (cx + w + 9, 34)])
            c.paint(hood, shade(acc, -0.35), line)
        else:
            rim = _ell(hx, 31, w + 8, 27) & ~_ell(hx + 0.5 * t, 34, w + 3.5, 25) & (_YY < 44)
            c.paint(rim, acc, line)
    elif kind == "hat" and not back:
        crown = _ell(hx, 13, 13.5, 12) & (_YY < 15)
        c.paint(crown, acc, line)
        c.fill(crown & (_YY >= 10) & (_YY < 13.5) & ~_edge(crown), look.second)
        brim = _ell(hx, 14.5, w + 11, 4.5)
        c.paint(brim, shade(acc, -0.2), line)
        c.fill(brim & (_YY < 13) & ~_edge(brim), shade(acc, 0.25))
    elif kind == "band" and not back:
        band = _ell(hx, 33, w + 3.5, 19) & ~_ell(hx, 34, w + 3.5, 16.2) & (_YY < 26)
        c.paint(band, acc, line)
        if look.outfit == "armour":
            c.paint(_poly([(hx - 4, 13.5), (hx + 4, 13.5), (hx + 4, 18), (hx - 4, 18)]) & band,
                    shade(look.metal, 0.3), _line_of(look.metal))
        # Tied in a big bow on top, as on the walk sheet (sprites.HEADWEAR["band"]): the loops
        # cover the top of the hair in the accessory colour (and rise above a bald head), so
        # the face and its sprite share the mark (a thin band across the hair alone was not
        # drawn by the face model).
        top = 14.0  # the band's top edge
        for s in (-1, 1):
            loop = _poly([(hx + 1.5 * s, top - 1.5), (hx + 10 * s, top - 7.5), (hx + 12.5 * s, top - 2),
                          (hx + 10.5 * s, top + 3.5), (hx + 1.5 * s, top + 2)])
            c.paint(loop, acc, line)
        c.paint(_ell(hx, top, 3.0, 2.8), shade(acc, -0.25), line)


def portrait_from_vector(v, expression: str = "neutral", turn: float = 0.0) -> np.ndarray:
    """A 72 x 72 x 3 uint8 RGB bust on white from a latent ``v`` ~ N(0, I).

    ``expression`` is one of :data:`EXPRESSIONS`; ``turn`` in [-1, 1] turns the head toward
    the viewer's left (-1) or right (+1).
    """
    v = np.asarray(v, dtype=np.float64).ravel()
    if v.size != PORTRAIT_DIM:
        raise ValueError(f"portrait vector must have {PORTRAIT_DIM} components, got {v.size}")
    if expression not in _EXPR:
        raise ValueError(f"unknown expression {expression!r}; expected one of {EXPRESSIONS}")
    t = float(np.clip(turn, -1.0, 1.0))
    f = _identity(v)
    e = _EXPR[expression]
    look = f.look
    c = _Canvas()
    cx = 36 + 2.0 * t

    _headwear(c, f, cx, t, back=True)
    _back_hair(c, f, cx, t)
    _body(c, f, cx, t)
    # Ears sit behind the face edge; the near one shows more in a turn.
    for s in (-1, 1):
        ear = _ell(cx + s * (f.width - 0.5) - 1.5 * t, 38, 3.2 - 0.8 * s * t, 5)
        c.paint(ear, look.skin, _line_of(look.skin))
    face = _face_mask(f, cx, t)
    c.paint(face, look.skin, shade(look.skin, -0.6))
    if f.extra == "earring":
        for s in (-1, 1):
            c.paint(_ell(cx + s * (f.width - 0.5) - 1.5 * t, 45, 1.4, 1.8), shade(look.metal, 0.3),
                    _line_of(look.metal))

    fx = 36 + 6.5 * t            # centre line of the features
    ey = 39.0
    eye_pos = []
    for s in (-1, 1):
        far = max(0.0, s * t)     # this eye is on the side the head turns toward
        near = max(0.0, -s * t)
        ex = fx + s * f.eye_gap * (1 - 0.22 * far + 0.04 * near)
        eye_pos.append((ex, s, 1 - 0.35 * far + 0.06 * near))
    # Blush under the eyes.
    blush = e.get("blush", 0.0)
    if blush:
        col = tuple(int(a * (1 - 0.25 * blush) + b * 0.25 * blush)
                    for a, b in zip(look.skin, (235, 60, 80)))
        for ex, s, _ in eye_pos:
            m = _ell(ex + s * 1.5, ey + 7.5, 4.2, 1.7) & face
            c.fill(m, col)
            if blush >= 1.0:
                for k in (-2, 0, 2):
                    c.fill(_line([(ex + s * 1.5 + k + 0.8, ey + 6.2), (ex + s * 1.5 + k - 0.2, ey + 8.6)])
                           & face, shade(col, -0.3))
    # Nose: a small shade on the side away from the light, pushed by the turn.
    nx = fx + 1.8 * t
    c.fill(_line([(nx + 0.6, 45), (nx, 46.3)]), shade(look.skin, -0.38))
    _mouth(c, f, fx + 1.5 * t, 50.5, e["mouth"])

    front = _front_hair(c, f, cx, t, face)
    for ex, s, ws in eye_pos:
        _eye(c, f, ex, ey, s, e, ws)
    brow_col = shade(look.hair, -0.5) if look.hair_style != "bald" else shade(look.skin, -0.5)
    for ex, s, ws in eye_pos:
        _brow(c, f, ex, ey - 9.3, s, e, brow_col)
    if e.get("sweat"):
        x0 = cx + f.width - 3 + 1.5 * t
        drop = _ell(x0, 26, 2.0, 2.8) | _poly([(x0 - 1.8, 25), (x0, 20), (x0 + 1.8, 25)])
        c.paint(drop, _TEAR, shade(_TEAR, -0.45))
        c.fill(_ell(x0 - 0.6, 26.5, 0.6, 0.9), _WHITE)
    if f.extra == "ribbon" and look.headwear == "none" and front is not None:
        x0 = cx - f.sweep * (f.width - 1) + 2.0 * t
        bow = _poly([(x0, 14), (x0 - 5, 9), (x0 - 5, 18)]) | _poly([(x0, 14), (x0 + 5, 9), (x0 + 5, 18)])
        c.paint(bow, look.accent, _line_of(look.accent))
        c.paint(_ell(x0, 14, 1.5, 1.5), shade(look.accent, -0.2), _line_of(look.accent))
    elif f.extra == "clip" and look.headwear == "none" and front is not None:
        x0 = cx + f.sweep * (f.width - 4) + 2.0 * t
        c.paint(_poly([(x0 - 4, 20), (x0 + 3, 17), (x0 + 4, 19), (x0 - 3, 22)]),
                shade(look.metal, 0.2), _line_of(look.metal))
    _headwear(c, f, cx, t, back=False)
    return c.rgb


def portrait(seed: int, expression: str = "neutral", turn: float = 0.0) -> np.ndarray:
    """:func:`portrait_from_vector` of ``RandomState(seed).randn(PORTRAIT_DIM)``."""
    return portrait_from_vector(np.random.RandomState(seed).randn(PORTRAIT_DIM), expression, turn)
