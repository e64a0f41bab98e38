"""rmmv-gan: StyleGAN models to ready-to-use RPG Maker MV/MZ characters."""

__version__ = "0.1.0"
