"""The `rmmv-gan` command: a thin layer over the Python API.

Every failure the user can cause (a bad file, a bad option) ends with one line on stderr and
exit status 1, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import __version__


class UserError(click.ClickException):
    """An error reported as one line, `Error: ...`."""


def _device(name: str):
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available (use --device cpu)")
    return torch.device(name)


def _load_generator(path, device):
    from .models import ModelFileError, load_generator

    try:
        return load_generator(path, device=device)
    except ModelFileError as exc:
        raise UserError(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rmmv-gan")
def main():
    """StyleGAN models to ready-to-use RPG Maker MV/MZ characters."""


@main.command()
@click.argument("src", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("dst", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--half", is_flag=True, help="Store weights as float16 (half the size).")
def convert(src, dst, half):
    """Convert an NVIDIA snapshot SRC (.pkl) to rmmv-gan's safetensors format DST.

    The snapshot is read without running any code from it; DST holds the generator (G_ema)
    and the discriminator when the snapshot has one.
    """
    from .models import ModelFileError, convert as convert_file

    try:
        written = convert_file(src, dst, half=half)
    except ModelFileError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"{dst}: cannot write ({exc})") from None
    click.echo(f"wrote {dst}: " + ", ".join(f"{k} ({v})" for k, v in written.items()))


@main.command()
@click.option("--network", "network", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Snapshot .pkl or rmmv-gan .safetensors file.")
@click.option("--seeds", required=True, help="Seeds, e.g. 0-7 or 1,4,9-12.")
@click.option("--psi", "--trunc", "psi", type=float, default=1.0, show_default=True, help="Truncation psi.")
@click.option("--class", "class_idx", type=int, default=None, help="Class label (conditional networks).")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True)
@click.option("--outdir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for seedNNNN.png files (created if missing).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
def generate(network, seeds, psi, class_idx, noise_mode, outdir, device):
    """Generate one PNG per seed, as NVIDIA's gen_images.py names and computes them."""
    from PIL import Image

    from .latent import class_labels, generate_images, parse_seeds

    try:
        seed_list = parse_seeds(seeds)
    except ValueError as exc:
        raise UserError(f"--seeds: {exc}") from None
    G = _load_generator(network, _device(device))
    try:
        class_labels(G, class_idx, 1)
    except ValueError as exc:
        raise UserError(f"--class: {exc}") from None
    outdir.mkdir(parents=True, exist_ok=True)
    with click.progressbar(length=len(seed_list), label="generating", file=sys.stderr) as bar:
        for seed, img in generate_images(G, seed_list, psi=psi, class_idx=class_idx, noise_mode=noise_mode):
            mode = {1: "L", 3: "RGB", 4: "RGBA"}.get(img.shape[2])
            Image.fromarray(img[:, :, 0] if mode == "L" else img, mode).save(outdir / f"seed{seed:04d}.png")
            bar.update(1)
    click.echo(f"wrote {len(seed_list)} images to {outdir}")


if __name__ == "__main__":
    main()
