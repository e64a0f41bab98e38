"""Colour and latent-decoding helpers shared by the sprite and portrait renderers.

Both renderers read a standard-normal vector. Continuous attributes pass one component through
the normal CDF (so they are smooth in ``v`` and uniform on [0, 1] under the prior) and then
through a colour ramp; categorical attributes threshold the CDF of one component at fixed
quantiles, so each category has a known share of the data.

The first :data:`SHARED` components mean the same thing to both renderers (skin, hair colour and
style, eye colour, outfit type and colours, headwear), so ``sprite_from_vector(v)`` and
``portrait_from_vector(v)`` depict the same character: a check for the head-crop projection.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

__all__ = ["Look", "decode_look", "cdf", "choose", "ramp", "shade", "hsv", "SHARED",
           "HAIR_STYLES", "styled_share", "OUTFITS", "HEADWEAR", "BODYWEAR", "MAX_LIGHT"]

#: Lightest value any channel of a drawn colour may take: pure white is the background, so a
#: figure never contains it and background removal is a plain equality test.
MAX_LIGHT = 250

#: Components 0 .. SHARED-1 are decoded identically by both renderers.
SHARED = 21

HAIR_STYLES = ("short", "long", "ponytail", "spiky", "bob", "twintails", "bald")
# Bald is rare on purpose: it is a legitimate look but a poor training target for hair.
_HAIR_WEIGHTS = (0.22, 0.2, 0.15, 0.15, 0.13, 0.11, 0.04)
OUTFITS = ("tunic", "robe", "armour", "dress")
_OUTFIT_WEIGHTS = (0.34, 0.22, 0.22, 0.22)
HEADWEAR = ("none", "hat", "hood", "band")
_HEADWEAR_WEIGHTS = (0.64, 0.13, 0.11, 0.12)
BODYWEAR = ("none", "belt", "cape", "pads")
_BODYWEAR_WEIGHTS = (0.3, 0.3, 0.22, 0.18)


def cdf(x: float) -> float:
    """Standard normal CDF: maps one N(0, 1) component smoothly onto (0, 1)."""
    return 0.5 * (1.0 + math.erf(float(x) / math.sqrt(2.0)))


def choose(x: float, weights) -> int:
    """Index of the quantile bin of ``cdf(x)``: category ``i`` has probability ``weights[i]``."""
    u = cdf(x) * sum(weights)
    acc = 0.0
    for i, w in enumerate(weights):
        acc += w
        if u < acc:
            return i
    return len(weights) - 1


def _in_bin(index: int, weights, rng: np.random.RandomState) -> float:
    """A component value drawn uniformly (in quantile) inside category `index`'s bin of `choose`,
    away from its edges, where a model that learnt the thresholds only roughly would hedge."""
    total = sum(weights)
    lo = sum(weights[:index]) / total
    width = weights[index] / total
    q = lo + width * (0.1 + 0.8 * rng.rand())
    return NormalDist().inv_cdf(q)


#: The latent components of the hair style and the headwear (docs/procedural.md).
HAIR_COMPONENT, HEADWEAR_COMPONENT = 4, 17


def hair_style_indices(styles=None) -> list[int]:
    """The indices in HAIR_STYLES of the named styles (default: all but bald); a ValueError
    names the valid ones when a name is unknown or none is given."""
    names = [s for s in HAIR_STYLES if s != "bald"] if styles is None else list(styles)
    unknown = [s for s in names if s not in HAIR_STYLES]
    if not names or unknown:
        raise ValueError(f"hair styles must be among {', '.join(HAIR_STYLES)}; got {', '.join(map(str, names)) or 'none'}")
    return [HAIR_STYLES.index(s) for s in names]


def styled_share(vectors: np.ndarray, share: float, rng: np.random.RandomState,
                 styles=None) -> np.ndarray:
    """Training data that shows every hair style uncovered: vectors [N, dim] (changed in place
    and returned) of which each, with probability `share`, gets a hair style drawn uniformly
    from `styles` (default: all but bald), and no headwear. Under the prior a spiky crown or a
    ponytail is seen bare-headed in a tenth of the characters, and far less once character
    types (hats, hoods, the heroine's bow) fill a batch; the default face model drew spikes as
    a plain short cut. Draws from `rng` only when share > 0."""
    if share > 0:
        hair = hair_style_indices(styles)
        for i in np.flatnonzero(rng.rand(len(vectors)) < share):
            vectors[i, HAIR_COMPONENT] = _in_bin(hair[rng.randint(len(hair))], _HAIR_WEIGHTS, rng)
            vectors[i, HEADWEAR_COMPONENT] = _in_bin(HEADWEAR.index("none"), _HEADWEAR_WEIGHTS, rng)
    return vectors


def _luma(c) -> float:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def _clip(c) -> tuple[int, int, int]:
    return tuple(int(round(min(MAX_LIGHT, max(0.0, float(ch))))) for ch in c)


def ramp(stops, t: float) -> tuple[int, int, int]:
    """Piecewise-linear interpolation through colour ``stops`` at ``t`` in [0, 1]."""
    t = min(1.0, max(0.0, float(t))) * (len(stops) - 1)
    i = min(int(t), len(stops) - 2)
    f = t - i
    a, b = np.asarray(stops[i], float), np.asarray(stops[i + 1], float)
    return _clip(a + (b - a) * f)


def hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    """HSV (all in [0, 1], hue wraps) to an RGB triple capped at :data:`MAX_LIGHT`."""
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(1.0, max(0.0, s)), min(1.0, max(0.0, v)))
    return _clip((r * 255, g * 255, b * 255))


def shade(rgb, amount: float) -> tuple[int, int, int]:
    """A lighter (amount > 0) or darker (amount < 0) tone of ``rgb``, pixel-art style.

    Shadows drift toward blue-purple and grow more saturated, lights toward warm yellow:
    hue-shifted ramps read better at small sizes than plain scaling.
    """
    r, g, b = (c / 255.0 for c in rgb)
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    if amount < 0:
        a = -amount
        target = 0.70  # blue-violet
        dh = ((target - h + 0.5) % 1.0 - 0.5) * 0.12 * a if s > 0.08 else 0.0
        return hsv(h + dh, s + (1 - s) * 0.25 * a + 0.04 * a, v * (1 - 0.55 * a))
    a = amount
    target = 0.14  # warm yellow
    dh = ((target - h + 0.5) % 1.0 - 0.5) * 0.10 * a if s > 0.08 else 0.0
    return hsv(h + dh, s * (1 - 0.35 * a), v + (1 - v) * 0.6 * a + 0.06 * a)


# Skin from pale to deep brown; every stop stays below MAX_LIGHT.
_SKIN = ((250, 226, 208), (246, 208, 178), (232, 186, 148), (206, 150, 108),
         (168, 110, 74), (124, 80, 54), (92, 58, 42))
# Natural hair from black through browns and reds to blonde and silver.
_HAIR_NATURAL = ((38, 34, 44), (70, 46, 38), (112, 70, 44), (150, 72, 40), (196, 104, 52),
                 (222, 178, 96), (236, 218, 160), (206, 208, 216))
# Iris colours: brown, amber, green, teal, blue, violet, red.
_EYES = ((110, 64, 40), (186, 120, 40), (70, 140, 70), (40, 140, 150), (60, 100, 200),
         (130, 80, 190), (190, 50, 60), (110, 64, 40))
_METAL = ((176, 184, 200), (150, 150, 160), (190, 130, 80), (218, 176, 70))


@dataclass(frozen=True)
class Look:
    """The character traits both renderers share (decoded from components 0 .. SHARED-1)."""

    skin: tuple
    hair: tuple
    hair_style: str
    eyes: tuple
    outfit: str
    main: tuple
    second: tuple
    accent: tuple
    metal: tuple
    shoes: tuple
    headwear: str
    bodywear: str
    build: float        # in [0, 1]: narrow .. broad (smooth)
    warmth: float       # in [0, 1]


def decode_look(v) -> Look:
    """Traits from the first :data:`SHARED` components of ``v`` (see the module doc)."""
    v = np.asarray(v, dtype=np.float64).ravel()
    if v.size < SHARED:
        raise ValueError(f"latent vector needs at least {SHARED} components, got {v.size}")
    u = [cdf(x) for x in v[:SHARED]]
    warmth = u[19]
    # Weighted toward the lighter tones common in anime art, dark tones still well present.
    skin = ramp(_SKIN, u[0] ** 1.35)
    # A little warmth (red) or coolness (olive) on top of the tone ramp.
    skin = _clip((skin[0] + 10 * (warmth - 0.5), skin[1] - 4 * (warmth - 0.5),
                  skin[2] - 8 * (warmth - 0.5)))
    if choose(v[1], (0.7, 0.3)) == 0:
        hair = ramp(_HAIR_NATURAL, u[2])
        # Lightness nudge keeps natural colours varied within one ramp position.
        hair = shade(hair, (u[3] - 0.5) * 0.5)
    else:
        # Fantasy colours: any hue, fairly saturated, mid to light.
        hair = hsv(u[2], 0.35 + 0.4 * u[3], 0.55 + 0.35 * (1 - u[3]))
    # Hair too close to the skin makes the face unreadable at 16 px: darken it in proportion to
    # the closeness (a smooth push, so the colour stays a continuous function of v).
    # The push darkens hair that is darker than the skin and lightens hair that is lighter; the
    # tanh makes the direction change continuously (hair within ~10 levels of the skin's
    # luminance stays nearly put: a rare case the sprite's outline still separates).
    dist = float(np.linalg.norm(np.subtract(hair, skin, dtype=float)))
    closeness = max(0.0, 1.0 - dist / 150.0)
    direction = math.tanh((_luma(skin) + 10.0 - _luma(hair)) / 12.0)
    hair = shade(hair, -0.8 * closeness * direction)
    hair_style = HAIR_STYLES[choose(v[HAIR_COMPONENT], _HAIR_WEIGHTS)]
    eyes = ramp(_EYES, u[5])
    outfit = OUTFITS[choose(v[6], _OUTFIT_WEIGHTS)]
    main = hsv(u[7], 0.2 + 0.6 * u[8], 0.45 + 0.45 * u[9])
    second = hsv(u[10], 0.12 + 0.45 * u[8], 0.3 + 0.55 * u[11])
    accent = hsv(u[12], 0.35 + 0.5 * u[13], 0.45 + 0.45 * u[14])
    metal = ramp(_METAL, u[15])
    shoes = ramp(((60, 40, 34), (110, 74, 50), (70, 66, 80)), u[16])
    headwear = HEADWEAR[choose(v[HEADWEAR_COMPONENT], _HEADWEAR_WEIGHTS)]
    bodywear = BODYWEAR[choose(v[18], _BODYWEAR_WEIGHTS)]
    build = cdf(v[20])
    return Look(skin, hair, hair_style, eyes, outfit, main, second, accent, metal, shoes,
                headwear, bodywear, build, float(warmth))
