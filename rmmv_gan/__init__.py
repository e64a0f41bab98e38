"""rmmv-gan: StyleGAN models to ready-to-use RPG Maker MV/MZ characters."""

__version__ = "0.1.0"

import os as _os

# OpenMP threads that run out of work spin before they sleep; libgomp's default spin is long.
# On a machine where something else runs too (the game in test play, the editor) the spinning
# threads of torch's pool fight that load. Measured on 2 cores, 20 StyleGAN3 projection steps:
# idle 5.3 s with OMP_WAIT_POLICY=ACTIVE and with this, busy (two other busy processes) 27.8 s with
# OMP_WAIT_POLICY=ACTIVE, 11.4 s with this, 9.4 s with PASSIVE (which costs 50% when idle).
# Set before torch loads its OpenMP runtime; a value the user set is kept. (libgomp: the
# Linux builds of torch.)
_os.environ.setdefault("GOMP_SPINCOUNT", "20000")

# The models module imports torch, 1.5-2 s on a 2-core machine: loaded on first use, so that
# `rmmv-gan --help` and the command line's refusals of bad input answer at once.
_FROM_MODELS = ("load_generator", "load_discriminator", "ModelFileError", "UnsafeModelError")


def __getattr__(name):
    if name in _FROM_MODELS:
        from . import models

        return getattr(models, name)
    raise AttributeError(f"module 'rmmv_gan' has no attribute {name!r}")


__all__ = ["load_generator", "load_discriminator", "ModelFileError", "UnsafeModelError", "__version__"]
