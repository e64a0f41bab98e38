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

from .models import ModelFileError, UnsafeModelError, load_discriminator, load_generator  # noqa: E402

__all__ = ["load_generator", "load_discriminator", "ModelFileError", "UnsafeModelError", "__version__"]
