"""Procedural training data for the embedded default pack: RPG Maker walk sheets and portraits.

No public model weights can be fetched, so the project draws its own data set: deterministic,
fast renderers whose every input is a standard-normal latent vector. Continuous traits
(colours, proportions) are smooth functions of the vector, categorical ones (hair style,
outfit, headwear...) are quantile bins of single components; see ``docs/procedural.md``.

- :func:`sprite_from_vector` / :func:`sprite_sheet`: a 48 x 64 walk sheet (16-px frames,
  3 patterns x 4 directions in MV order) on white.
- :func:`portrait_from_vector` / :func:`portrait`: a 72 x 72 bust on white, with one of
  :data:`EXPRESSIONS` and a head ``turn`` in [-1, 1].
- :func:`sample_batch`: vectors and images for a trainer.
"""

from __future__ import annotations

import numpy as np

from .palette import SHARED, decode_look
from .portraits import EXPRESSIONS, PORTRAIT_DIM, PORTRAIT_SIZE, portrait, portrait_from_vector
from .sprites import FRAME, SHEET_H, SHEET_W, SPRITE_DIM, sprite_from_vector, sprite_sheet

__all__ = ["SPRITE_DIM", "PORTRAIT_DIM", "EXPRESSIONS", "FRAME", "SHEET_W", "SHEET_H",
           "PORTRAIT_SIZE", "SHARED", "sprite_from_vector", "sprite_sheet",
           "portrait_from_vector", "portrait", "sample_batch", "decode_look"]


def sample_batch(kind: str, n: int, rng=None, *, return_params: bool = False):
    """``n`` random latent vectors and their renderings, for a trainer.

    ``kind`` is ``'sprite'`` (images ``[n, 64, 48, 3]``) or ``'portrait'`` (``[n, 72, 72, 3]``,
    each with an expression and a turn drawn from ``rng``). ``rng`` is a numpy ``Generator``
    or ``RandomState`` (or a seed, or None). Returns ``(vectors float32 [n, DIM], images uint8)``;
    images are rendered from the float32 vectors, so re-rendering a stored vector reproduces
    its image exactly. With ``return_params=True`` a third array ``[n, 2]`` float32 holds each
    portrait's expression index and turn (zeros for sprites): a portrait is a function of
    (vector, expression, turn), which a supervised trainer needs to know.
    """
    if not isinstance(rng, (np.random.Generator, np.random.RandomState)):
        rng = np.random.default_rng(rng)
    n = int(n)
    if kind == "sprite":
        vectors = rng.standard_normal((n, SPRITE_DIM)).astype(np.float32)
        images = np.empty((n, SHEET_H, SHEET_W, 3), np.uint8)
        params = np.zeros((n, 2), np.float32)
        for i in range(n):
            images[i] = sprite_from_vector(vectors[i])
    elif kind == "portrait":
        vectors = rng.standard_normal((n, PORTRAIT_DIM)).astype(np.float32)
        images = np.empty((n, PORTRAIT_SIZE, PORTRAIT_SIZE, 3), np.uint8)
        params = np.empty((n, 2), np.float32)
        params[:, 0] = np.floor(rng.random(n) * len(EXPRESSIONS)).clip(0, len(EXPRESSIONS) - 1)
        params[:, 1] = rng.random(n) * 2.0 - 1.0
        for i in range(n):
            images[i] = portrait_from_vector(vectors[i], EXPRESSIONS[int(params[i, 0])],
                                             float(params[i, 1]))
    else:
        raise ValueError(f"kind must be 'sprite' or 'portrait', got {kind!r}")
    return (vectors, images, params) if return_params else (vectors, images)
