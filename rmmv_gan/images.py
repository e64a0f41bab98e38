"""Reading the pictures a user hands in (a projection target, training sheets): the one place
that decides what an input picture may be.

A PNG header can claim any size, and decoding allocates what it claims: a 20000 x 20000
picture, or a small file whose header says so (a "decompression bomb"), would take gigabytes
before anything could fail. The size is checked from the header, before decoding.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

# An input picture is a sheet or a portrait: far below this (an 8-character MV sheet is
# 576 x 384). 4096 x 4096 decodes to 64 MiB as RGBA.
MAX_PIXELS = 4096 * 4096


class ImageFileError(ValueError):
    """A picture that cannot be read: missing, empty, not an image, or too large."""


def read_image(path) -> Image.Image:
    """The picture in `path`, decoded, or an ImageFileError whose message starts with the path."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            width, height = im.size
            if width * height > MAX_PIXELS:
                raise ImageFileError(f"{path}: {width} x {height} pixels is larger than an input picture may be "
                                     f"({MAX_PIXELS // 1_000_000} megapixels)")
            im.load()
            return im.copy()
    except ImageFileError:
        raise
    except FileNotFoundError:
        raise ImageFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageFileError(f"{path}: is a folder, not an image") from None
    except Image.DecompressionBombError:
        raise ImageFileError(f"{path}: its header claims more pixels than an input picture may have "
                             f"({MAX_PIXELS // 1_000_000} megapixels)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        why = "an empty file" if path.is_file() and path.stat().st_size == 0 else str(exc) or type(exc).__name__
        raise ImageFileError(f"{path}: not a readable image ({why})") from None
