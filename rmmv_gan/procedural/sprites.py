"""Procedural RPG Maker walk sheets: 16 x 16 frames, 3 patterns x 4 directions, MV order.

The figure is assembled from hand-drawn pixel templates (ASCII art below): each body part has
one template per view and pose, written with *role letters* (skin, hair, main cloth, metal...)
rather than colours. A character is a choice of templates plus a colour for every role, so
the drawing stays hand-made pixel art while every colour is a smooth function of the latent
vector. A 4-neighbour dilation of the silhouette then gives the 1-px dark outline that RPG
Maker sprites have (and that makes the white background trivial to remove).

Frame layout (rows of a 16-px frame): 0 empty, 1 outline over the head, 2-7 head, 8 chin line,
9-11 torso, 12-13 hips, legs and feet, 14 outline under the feet, 15 empty. Columns 2-13 hold
the figure, so it never touches a frame edge and sits centred on the 7.5 axis.

Symmetry is used, not just allowed: the down and up views are drawn left-right symmetric
except for the swinging limbs, so pattern 2 is the mirror of pattern 0 exactly, and the right
row is the mirror of the left row (the usual RPG Maker practice).
"""

from __future__ import annotations

import numpy as np

from .palette import cdf, decode_look, shade

__all__ = ["SPRITE_DIM", "FRAME", "SHEET_W", "SHEET_H", "sprite_from_vector", "sprite_sheet"]

SPRITE_DIM = 32
FRAME = 16
SHEET_W, SHEET_H = 3 * FRAME, 4 * FRAME

_OUTLINE = (38, 28, 40)


# --------------------------------------------------------------------------- templates
def _t(y0: int, *rows: str) -> np.ndarray:
    """A 16 x 16 template from ASCII rows starting at frame row ``y0`` ('.' is transparent)."""
    a = np.zeros((FRAME, FRAME), np.uint8)
    for i, row in enumerate(rows):
        if len(row) != FRAME:
            raise ValueError(f"template row {row!r} is not {FRAME} wide")
        a[y0 + i] = np.frombuffer(row.replace(".", "\0").encode(), np.uint8)
    return a


# Head: the same skin silhouette in every view; hair and headwear are drawn over it.
HEAD = _t(2,
          ".....ssssss.....",
          "....ssssssss....",
          "...ssssssssss...",
          "...ssssssssss...",
          "...ssssssssss...",
          "....SssssssS....")

FACE = {
    "down": _t(5,
               ".....e....e.....",
               ".....i....i....."),
    "left": _t(5,
               "....e...........",
               "....i..........."),
}

# Hair: per style and view, a 'head' layer drawn over the head and an optional 'back' layer
# drawn before the body (long hair seen from the front hangs behind the arms).
HAIR: dict[str, dict[str, np.ndarray]] = {
    "short": {
        "down": _t(2,
                   ".....hhhhhh.....",
                   "....hhhLLhhh....",
                   "...hhHhhhhHhh...",
                   "...hh......hh..."),
        "left": _t(2,
                   ".....hhhhhh.....",
                   "....hhhhhLLh....",
                   "...hhhhhhhhhh...",
                   "...h....Hhhhh...",
                   "........SHhhh...",
                   ".........HHH...."),
        "up": _t(2,
                 ".....hhhhhh.....",
                 "....hhhLLhhh....",
                 "...hhhhhhhhhh...",
                 "...hhhhhhhhhh...",
                 "...HhhhhhhhhH...",
                 "....HHHHHHHH...."),
    },
    "long": {
        "down": _t(2,
                   ".....hhhhhh.....",
                   "....hhhLLhhh....",
                   "...hhhhhhhhhh...",
                   "...hh......hh...",
                   "...h........h...",
                   "...hh......hh..."),
        "down_back": _t(8,
                        "...hh......hh...",
                        "...h........h...",
                        "...h........h...",
                        "...H........H..."),
        "left": _t(2,
                   ".....hhhhhh.....",
                   "....hhhhhLLh....",
                   "...hhhhhhhhhh...",
                   "...h....Hhhhh...",
                   "........SHhhh...",
                   ".........hhhh...",
                   ".........hhhh...",
                   ".........hhhh...",
                   "..........HHH..."),
        "up": _t(2,
                 ".....hhhhhh.....",
                 "....hhhLLhhh....",
                 "...hhhhhhhhhh...",
                 "...hhhhhhhhhh...",
                 "...hhhhhhhhhh...",
                 "...hhhhhhhhhh...",
                 "....HhhhhhhH....",
                 ".....HHHHHH....."),
    },
    "ponytail": {
        "down": _t(2,
                   ".....hhhhhh.....",
                   "....hhhLLhhh....",
                   "...hhHhhhhHhh...",
                   "...hh......hh..."),
        "left": _t(2,
                   ".....hhhhhh.....",
                   "....hhhhhLLh....",
                   "...hhhhhhhhhha..",
                   "...h....Hhhhhh..",
                   "........SHhhhh..",
                   ".........HHH.h..",
                   ".............H.."),
        "up": _t(2,
                 ".....hhhhhh.....",
                 "....hhhLLhhh....",
                 "...hhhhhhhhhh...",
                 "...hhhhaahhhh...",
                 "...HhhhhhhhhH...",
                 "....HHHhhHHH....",
                 ".......hh.......",
                 ".......hh.......",
                 ".......HH......."),
    },
    "spiky": {
        "down": _t(2,
                   "...h.hhhhhh.h...",
                   "..hhhhhLLhhhhh..",
                   "..hhhhhhhhhhhh..",
                   "...hhh.hh.hhh...",
                   "...h........h..."),
        "left": _t(2,
                   "....h.hhhh.h....",
                   "...hhhhhhLLhh...",
                   "..hhhhhhhhhhhh..",
                   "...hh...Hhhhhh..",
                   "........SHhhhh..",
                   ".........HHHH..."),
        "up": _t(2,
                 "...h.hhhhhh.h...",
                 "..hhhhhLLhhhhh..",
                 "..hhhhhhhhhhhh..",
                 "...hhhhhhhhhh...",
                 "..hHhhhhhhhhHh..",
                 "....HHHHHHHH...."),
    },
    "bob": {
        "down": _t(2,
                   ".....hhhhhh.....",
                   "....hhhLLhhh....",
                   "...hhhhhhhhhh...",
                   "...hh......hh...",
                   "...hh......hh...",
                   "...hHh....hHh..."),
        "left": _t(2,
                   ".....hhhhhh.....",
                   "....hhhhhLLh....",
                   "...hhhhhhhhhh...",
                   "...hh...Hhhhh...",
                   ".......hhhhhh...",
                   ".......hHHhhh..."),
        "up": _t(2,
                 ".....hhhhhh.....",
                 "....hhhLLhhh....",
                 "...hhhhhhhhhh...",
                 "...hhhhhhhhhh...",
                 "...hhhhhhhhhh...",
                 "...hHHHHHHHHh..."),
    },
    "twintails": {
        "down": _t(2,
                   ".....hhhhhh.....",
                   "....hhhLLhhh....",
                   "..ahhhhhhhhhha..",
                   "..hhH......Hhh..",
                   "..h..........h..",
                   "..h..........h..",
                   "..h..........h..",
                   "..H..........H.."),
        "left": _t(2,
                   ".....hhhhhh.....",
                   "....hhhhhLLh....",
                   "...hhhhhhhhhha..",
                   "...h....Hhhhhh..",
                   "........SHhhhh..",
                   ".........HHH.h..",
                   ".............h..",
                   ".............H.."),
        "up": _t(2,
                 ".....hhhhhh.....",
                 "....hhhLLhhh....",
                 "..ahhhhhhhhhha..",
                 "..hhhhhhhhhhhh..",
                 "..hHhhhhhhhhHh..",
                 "..h.HHHHHHHH.h..",
                 "..h..........h..",
                 "..H..........H.."),
    },
    "bald": {
        "down": _t(2,
                   ".....ssLLss.....",
                   "....ssssssss....",
                   "...SssssssssS..."),
        "left": _t(2,
                   ".....sssLLs.....",
                   "....ssssssss....",
                   "...ssssssssss...",
                   "...sssssssssS...",
                   "...sssssSsssS...",
                   "....sssssssS...."),
        "up": _t(2,
                 ".....ssLLss.....",
                 "....ssssssss....",
                 "...ssssssssss...",
                 "...ssssssssss...",
                 "...SssssssssS...",
                 "....SSSSSSSS...."),
    },
}

HEADWEAR = {
    "hat": {
        "down": _t(2,
                   ".....aaaaaa.....",
                   "....AAAAAAAA....",
                   "..aaaaaaaaaaaa.."),
        "left": _t(2,
                   ".....aaaaaa.....",
                   "....AAAAAAAA....",
                   "..aaaaaaaaaaa..."),
        "up": _t(2,
                 ".....aaaaaa.....",
                 "....AAAAAAAA....",
                 "..aaaaaaaaaaaa.."),
    },
    "hood": {
        "down": _t(2,
                   ".....aaaaaa.....",
                   "....aaaaaaaa....",
                   "...aAAAAAAAAa...",
                   "...a........a...",
                   "...a........a...",
                   "...aa......aa...",
                   "...aaaaaaaaaa..."),
        "left": _t(2,
                   ".....aaaaaa.....",
                   "....aaaaaaaa....",
                   "...AAAAAaaaaa...",
                   "...A....aaaaa...",
                   "........Aaaaa...",
                   "........Aaaaa...",
                   "......aaaaaa...."),
        "up": _t(2,
                 ".....aaaaaa.....",
                 "....aaaaaaaa....",
                 "...aaaaaaaaaa...",
                 "...aaaaaaaaaa...",
                 "...aaaaaaaaaa...",
                 "...AaaaaaaaaA...",
                 "...aaaaaaaaaa...",
                 "....AaaaaaaA....",
                 ".....AAAAAA....."),
    },
    # A headband tied in a big bow on top: the bow's loops widen the head's outline, so the band
    # reads at 16 px (a one-row band alone was lost in the hair, also by the sprite model).
    "band": {
        "down": _t(2,
                   "...aaa....aaa...",
                   "....aaaAAaaa....",
                   "...aaaaaaaaaa..."),
        "left": _t(2,
                   "........aaa.....",
                   ".........aAaa...",
                   "...aaaaaaaaaa..."),
        "up": _t(2,
                 "...aaa....aaa...",
                 "....aaaAAaaa....",
                 "...aaaaaaaaaa...",
                 ".......AA.......",
                 "......A..A......"),
    },
}

# Torso per outfit and view; the up view is the back of the same garment.
TORSO = {
    "tunic": {
        "down": _t(9,
                   ".....mmssmm.....",
                   ".....mmmmmm.....",
                   ".....MMMMMM....."),
        "left": _t(9,
                   "......mmmm......",
                   "......mmnm......",
                   "......MMMM......"),
        "up": _t(9,
                 ".....mmmmmm.....",
                 ".....mmmmmm.....",
                 ".....MMMMMM....."),
    },
    "robe": {
        "down": _t(9,
                   ".....mccccm.....",
                   ".....mmccmm.....",
                   ".....mmccmm....."),
        "left": _t(9,
                   ".....ccmmm......",
                   "......cmmm......",
                   "......cmmm......"),
        "up": _t(9,
                 ".....mmmmmm.....",
                 ".....mmmmmm.....",
                 ".....mmmmmm....."),
    },
    "armour": {
        "down": _t(9,
                   ".....jKkkKj.....",
                   ".....jKKKKj.....",
                   ".....jjxxjj....."),
        "left": _t(9,
                   "......kKKj......",
                   "......KKKj......",
                   "......xxxx......"),
        "up": _t(9,
                 ".....jKKKKj.....",
                 ".....jKKKKj.....",
                 ".....jjxxjj....."),
    },
    "dress": {
        "down": _t(9,
                   ".....mmssmm.....",
                   ".....mmnnmm.....",
                   "....mmmmmmmm...."),
        "left": _t(9,
                   "......mmmm......",
                   "......mmnm......",
                   ".....mmmmmm....."),
        "up": _t(9,
                 ".....mmmmmm.....",
                 ".....mmmmmm.....",
                 "....mmmmmmmm...."),
    },
}

# Lower body per garment kind, view ('front' serves down and up) and pose. Front poses are
# 'stand' (pattern 1) and 'walk' (pattern 0; pattern 2 is its mirror); side poses are 'stand',
# 'walk_a' (near leg forward) and 'walk_b' (far leg forward).
LOWER = {
    "trousers": {
        ("front", "stand"): _t(12,
                               ".....cccccc.....",
                               ".....bb..bb....."),
        ("front", "walk"): _t(12,
                              ".....ccccBB.....",
                              "....bbb........."),
        ("side", "stand"): _t(12,
                              "......cccc......",
                              ".....bbbb......."),
        ("side", "walk_a"): _t(12,
                               ".....ccCCCC.....",
                               "....bb....BB...."),
        ("side", "walk_b"): _t(12,
                               ".....CCcccc.....",
                               "....BB....bb...."),
    },
    "robe": {
        ("front", "stand"): _t(12,
                               "....mmmccmmm....",
                               "....MMMMMMMM...."),
        ("front", "walk"): _t(12,
                              "....mmmccmmm....",
                              "...bMMMMMMM....."),
        ("side", "stand"): _t(12,
                              ".....ccmmmm.....",
                              ".....MMMMMMM...."),
        ("side", "walk_a"): _t(12,
                               ".....ccmmmm.....",
                               "...bMMMMMMMM...."),
        ("side", "walk_b"): _t(12,
                               ".....ccmmmm.....",
                               "....MMMMMMMMB..."),
    },
    "skirt": {
        ("front", "stand"): _t(12,
                               "...MMMMMMMMMM...",
                               ".....bb..bb....."),
        ("front", "walk"): _t(12,
                              "...MMMMMMMMMM...",
                              "....bbb........."),
        ("side", "stand"): _t(12,
                              ".....MMMMMMM....",
                              "......bbbb......"),
        ("side", "walk_a"): _t(12,
                               ".....MMMMMMM....",
                               "....bb....BB...."),
        ("side", "walk_b"): _t(12,
                               ".....MMMMMMM....",
                               "....BB....bb...."),
    },
}
_LOWER_OF = {"tunic": "trousers", "armour": "trousers", "robe": "robe", "dress": "skirt"}

# Arms. Front 'walk': the viewer's-left hand swings forward (down), the other back (up).
ARMS = {
    ("front", "stand"): _t(9,
                           "....v......v....",
                           "....v......v....",
                           "....V......V....",
                           "....s......s...."),
    ("front", "walk"): _t(9,
                          "....v......v....",
                          "....v......v....",
                          "....V......s....",
                          "....s..........."),
    # Side views: the near arm over the body; the far arm shows only when it swings forward.
    ("side", "stand"): _t(9,
                          ".......vv.......",
                          ".......vV.......",
                          ".......vV.......",
                          ".......s........"),
    ("side", "walk_a"): _t(9,
                           ".......vv.......",
                           "........vV......",
                           ".........vV.....",
                           "..........s....."),
    ("side", "walk_b"): _t(9,
                           ".......vv.......",
                           "......vV........",
                           ".....vV.........",
                           ".....s.........."),
}
FAR_ARM = {
    "walk_a": _t(10,
                 ".....V..........",
                 "....S..........."),
}

BODYWEAR = {
    "belt": {
        "down": _t(11, ".....xxyyxx....."),
        "left": _t(11, "......yxxx......"),
        "up": _t(11, ".....xxxxxx....."),
    },
    "pads": {
        "down": _t(9, "...kK......Kk..."),
        "left": _t(9, "......kKK......."),
        "up": _t(9, "...kK......Kk..."),
    },
}
CAPE_BACK = {
    "down": _t(9,
               "...aa......aa...",
               "...a........a...",
               "...A........A...",
               "...A........A...",
               "...AAAAAAAAAA..."),
    "left": _t(9,
               "..........a.....",
               "..........aa....",
               "..........aA....",
               "..........aAA...",
               "..........AAA..."),
    "left_walk": _t(9,
                    "..........a.....",
                    "..........aa....",
                    "..........aAA...",
                    "..........aAAA..",
                    "...........AAA.."),
}
CAPE_FRONT = {
    "down": _t(9, "....a..yy..a...."),
    "left": _t(9, "......yaa......."),
    # From behind the cape hangs to the ankles; the feet below it still show the walk.
    "up": _t(9,
             "....aaaaaaaa....",
             "....aaaaaaaa....",
             "...aAaaaaaaAa...",
             "...AAAAAAAAAA..."),
}
BROAD = {
    "down": _t(9, "...v........v..."),
    "up": _t(9, "...v........v..."),
}


# --------------------------------------------------------------------------- colours
def _palette(look, v) -> np.ndarray:
    """Role letter -> RGB lookup table (index 0, the empty canvas, is the white background)."""
    lut = np.full((256, 3), 255, np.uint8)

    def put(ch, rgb):
        lut[ord(ch)] = rgb

    put("o", _OUTLINE)
    put("e", (34, 26, 44))
    put("i", shade(look.eyes, -0.1))
    put("s", look.skin)
    put("S", shade(look.skin, -0.28))
    put("h", look.hair)
    put("H", shade(look.hair, -0.38))
    put("L", shade(look.hair, 0.45))
    if look.hair_style == "bald":
        put("L", shade(look.skin, 0.5))
    main = look.main
    put("m", main)
    put("M", shade(main, -0.32))
    put("n", shade(main, 0.35))
    put("c", look.second)
    put("C", shade(look.second, -0.3))
    put("k", shade(look.metal, 0.45))
    put("K", look.metal)
    put("j", shade(look.metal, -0.45))
    put("a", look.accent)
    put("A", shade(look.accent, -0.35))
    put("b", look.shoes)
    put("B", shade(look.shoes, -0.35))
    put("x", (96, 62, 40) if cdf(v[21]) < 0.6 else (58, 46, 48))
    put("y", shade(look.metal, 0.3))
    if look.outfit == "armour":
        # Under the plate: a padded sleeve in the second colour.
        put("v", look.second)
        put("V", shade(look.second, -0.3))
    else:
        put("v", shade(main, -0.1))
        put("V", shade(main, -0.38))
    lut[0] = (255, 255, 255)
    return lut


# --------------------------------------------------------------------------- assembly
def _layers(look, view: str, pose: str) -> list[np.ndarray]:
    """The templates of one frame, back to front. ``view`` is 'down', 'left' or 'up'."""
    side = view == "left"
    key = "side" if side else "front"
    style = look.hair_style
    hair = HAIR[style]
    lower = LOWER[_LOWER_OF[look.outfit]][(key, pose)]
    out = []
    cape = look.bodywear == "cape"
    if side:
        if pose == "walk_a":
            out.append(FAR_ARM["walk_a"])
        if cape:
            out.append(CAPE_BACK["left_walk" if pose != "stand" else "left"])
        out += [lower, TORSO[look.outfit]["left"]]
        if look.bodywear == "belt" and look.outfit != "armour":
            out.append(BODYWEAR["belt"]["left"])
        out.append(ARMS[("side", pose)])
        if look.bodywear == "pads":
            out.append(BODYWEAR["pads"]["left"])
        if cape:
            out.append(CAPE_FRONT["left"])
    else:
        if view == "down":
            if cape:
                out.append(CAPE_BACK["down"])
            if "down_back" in hair:
                out.append(hair["down_back"])
        out.append(lower)
        out.append(TORSO[look.outfit][view])
        if look.build > 0.8 or look.outfit == "armour":
            out.append(BROAD[view])
        out.append(ARMS[("front", pose)])
        if look.bodywear == "belt" and look.outfit != "armour":
            belt = BODYWEAR["belt"][view]
            out.append(np.roll(belt, -1, axis=0) if look.outfit == "dress" else belt)
        if look.bodywear == "pads" or look.outfit == "armour":
            out.append(BODYWEAR["pads"][view])
        if cape:
            out.append(CAPE_FRONT[view])
    out.append(HEAD)
    if view in FACE:
        out.append(FACE[view])
    out.append(hair[view])
    if look.headwear != "none":
        out.append(HEADWEAR[look.headwear][view])
    return out


def _frame(look, lut, view: str, pose: str) -> np.ndarray:
    canvas = np.zeros((FRAME, FRAME), np.uint8)
    for layer in _layers(look, view, pose):
        np.copyto(canvas, layer, where=layer != 0)
    # The outline: every empty pixel 4-adjacent to the figure.
    m = canvas != 0
    d = m.copy()
    d[1:] |= m[:-1]
    d[:-1] |= m[1:]
    d[:, 1:] |= m[:, :-1]
    d[:, :-1] |= m[:, 1:]
    canvas[d & ~m] = ord("o")
    return lut[canvas]


def sprite_from_vector(v) -> np.ndarray:
    """A walk sheet (64 x 48 x 3 uint8 RGB, white background) from a latent ``v`` ~ N(0, I).

    Columns are patterns 0, 1, 2 (1 stands); rows are directions down, left, right, up.
    """
    v = np.asarray(v, dtype=np.float64).ravel()
    if v.size != SPRITE_DIM:
        raise ValueError(f"sprite vector must have {SPRITE_DIM} components, got {v.size}")
    look = decode_look(v)
    lut = _palette(look, v)
    sheet = np.empty((SHEET_H, SHEET_W, 3), np.uint8)

    def put(row, col, img):
        sheet[row * FRAME:(row + 1) * FRAME, col * FRAME:(col + 1) * FRAME] = img

    for row, view in ((0, "down"), (3, "up")):
        walk = _frame(look, lut, view, "walk")
        put(row, 0, walk)
        put(row, 1, _frame(look, lut, view, "stand"))
        put(row, 2, walk[:, ::-1])
    for col, pose in enumerate(("walk_a", "stand", "walk_b")):
        img = _frame(look, lut, "left", pose)
        put(1, col, img)
        put(2, col, img[:, ::-1])
    return sheet


def sprite_sheet(seed: int) -> np.ndarray:
    """:func:`sprite_from_vector` of ``RandomState(seed).randn(SPRITE_DIM)``."""
    return sprite_from_vector(np.random.RandomState(seed).randn(SPRITE_DIM))

