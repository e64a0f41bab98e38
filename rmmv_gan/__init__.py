"""rmmv-gan: StyleGAN models to ready-to-use RPG Maker MV/MZ characters."""

__version__ = "0.1.0"

from .models import ModelFileError, UnsafeModelError, load_discriminator, load_generator  # noqa: E402

__all__ = ["load_generator", "load_discriminator", "ModelFileError", "UnsafeModelError", "__version__"]
