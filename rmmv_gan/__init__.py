"""rmmv-gan: StyleGAN models to ready-to-use RPG Maker MV/MZ characters."""

__version__ = "0.1.0"

import os as _os

# OpenMP threads that have no work spin for a while before sleeping. On a machine where
# something else runs too (the game in test play, the editor, a training run) the spinning
# threads of torch's pool fight that load: 20 projection steps measured 72 s with the default
# policy and 24 s with PASSIVE on a busy 2-core machine. Set before torch loads its OpenMP
# runtime; a value the user set is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .models import ModelFileError, UnsafeModelError, load_discriminator, load_generator  # noqa: E402

__all__ = ["load_generator", "load_discriminator", "ModelFileError", "UnsafeModelError", "__version__"]
