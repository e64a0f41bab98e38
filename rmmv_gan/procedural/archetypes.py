"""The character types of the default pack, as traits of the renderers' latent vector.

An archetype is the type, not one character: the outfit, headwear, body wear and build, and
in the portrait the kind of face (chin, eye shape and size, brows, hair ornament). Hair, skin,
eye and cloth colours and the hair style are not in it: they belong to each seed.
The knight's steel is the one colour in it: the plate's metal is what makes the armour read
as a knight's at 16 px (bronze and gold plate look like a brown or yellow tunic).
Each trait is a latent component (docs/procedural.md) and the quantile of the normal
distribution that selects it.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

__all__ = ["ARCHETYPES", "trait_values", "typed_share", "with_traits"]

ARCHETYPES = {
    "heroine": {6: 0.89, 17: 0.94, 18: 0.1, 20: 0.2,             # dress, headband, slight
                22: 0.15, 23: 0.2, 24: 0.92, 31: 0.12, 30: 0.63},  # round face, big round eyes, fine brows, ribbon
    "villain": {6: 0.15, 17: 0.82, 18: 0.7,                       # tunic under a hood and cape
                22: 0.92, 23: 0.6, 24: 0.1, 31: 0.88},            # sharp chin, small sharp eyes, heavy brows
    "knight": {6: 0.67, 15: 0.06, 17: 0.2, 18: 0.9, 20: 0.9,     # steel armour, bare head, shoulder pads, broad
               22: 0.55, 23: 0.2, 24: 0.45, 31: 0.97, 25: 0.92},  # oval face, thick brows, wide face
    "mage": {6: 0.45, 17: 0.7, 18: 0.45,                          # robe, hat, belt
             22: 0.5, 23: 0.9, 24: 0.7, 31: 0.3, 30: 0.8},        # droopy eyes, hair clip
}

_PPF = NormalDist().inv_cdf


def trait_values(traits: dict) -> dict:
    """{component: value}: the latent values the traits' quantiles stand for (what with_traits
    writes, and what a pack's archetype `traits` hold)."""
    return {i: _PPF(q) for i, q in traits.items()}


def with_traits(vectors, traits: dict) -> np.ndarray:
    """Latent vectors ([dim] or [N, dim]) with the listed components set to the traits'
    quantiles (components beyond the vectors' length are ignored): the same characters,
    drawn as the type."""
    vs = np.array(vectors, np.float32)
    for i, value in trait_values(traits).items():
        if i < vs.shape[-1]:
            vs[..., i] = value
    return vs


def typed_share(vectors: np.ndarray, share: float, rng: np.random.RandomState) -> np.ndarray:
    """Training data that shows the types often: vectors [N, dim] (changed in place and
    returned) of which each, with probability `share`, gets one type's traits (drawn
    uniformly). Only the first `dim` components a type names are set, so a portrait latent's
    expression and turn beyond the character's vector stay as drawn. Draws from `rng` only
    when share > 0."""
    if share > 0:
        types = list(ARCHETYPES.values())
        for i in np.flatnonzero(rng.rand(len(vectors)) < share):
            vectors[i] = with_traits(vectors[i], types[rng.randint(len(types))])
    return vectors


class TrainingShares:
    """The shares of drawn training vectors that show a model what random vectors seldom do:
    `style_share` given an uncovered hair style from `styles` (palette.styled_share), then
    `type_share` given a type's traits (typed_share). Each share draws from its own stream
    (seeded from `seed`), so that a share of 0 leaves the vectors a run always drew. Used by
    the face model's and the encoder's procedural data alike."""

    def __init__(self, seed: int, type_share: float = 0.0, style_share: float = 0.0, styles=None):
        from .palette import hair_style_indices

        self.type_share, self.style_share = type_share, style_share
        self.styles = list(styles) if styles else None  # None: all but bald
        hair_style_indices(self.styles)  # a bad name fails here, not mid-run
        self.type_rng = np.random.RandomState(seed + 7919)
        self.style_rng = np.random.RandomState(seed + 104729)

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """vectors [N, dim] (the character's components only), changed in place and returned."""
        from .palette import styled_share

        styled_share(vectors, self.style_share, self.style_rng, self.styles)
        return typed_share(vectors, self.type_share, self.type_rng)
