"""The `rmmv-gan` command: a thin layer over the Python API.

Every failure the user can cause (a bad file, a bad option) ends with one line on stderr and
exit status 1, never a traceback.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
from pathlib import Path

import click
import numpy as np

from . import __version__


class UserError(click.ClickException):
    """An error reported as one line, `Error: ...`."""


class FiniteFloat(click.FloatRange):
    """A FloatRange that refuses nan and inf too (nan compares false with every bound)."""

    name = "finite float"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class Psi(click.ParamType):
    """Truncation psi, checked by the rule of latent.check_psi (finite, within its range)."""

    name = "psi"

    def convert(self, value, param, ctx):
        from .latent import check_psi

        try:
            return check_psi(float(value))
        except (TypeError, ValueError) as exc:
            self.fail(f"{value!r}: {exc}" if "finite" in str(exc) else f"{value!r} is not a number", param, ctx)


KEEP_DAYS = FiniteFloat(min=0, min_open=True, max=36500)


def _progress(**kwargs):
    """A tqdm bar on stderr. Redrawn at once on a terminal; in a log or a daemon's console,
    at most every 30 s (and when it ends), rather than once per step."""
    from tqdm import tqdm

    terminal = sys.stderr.isatty()
    return tqdm(file=sys.stderr, mininterval=0.1 if terminal else 30, **kwargs)


def _make_folder(path: Path, what: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{what} {path}: cannot create the folder ({exc.strerror or exc})") from None


def _go_on_and_train(trainer, start, resume: bool) -> None:
    """Train an encoder or refiner: from `start` (a trained network's file, loaded) if given,
    then from OUTDIR's checkpoint if `resume` and there is one; a checkpoint that does not
    fit is one error line."""
    try:
        if start is not None:
            trainer.start_from(start)
        if resume:
            trainer.resume()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    trainer.run()


@contextlib.contextmanager
def _run_log(outdir: Path):
    """A training run's folder made and its train.log opened for appending: yields log(line),
    which prints the line and appends it to train.log."""
    _make_folder(outdir, "--outdir")
    try:
        log_file = (outdir / "train.log").open("a", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"--outdir {outdir}: cannot write train.log ({exc.strerror or exc})") from None

    def log(line):
        click.echo(line, err=True)
        log_file.write(line + "\n")
        log_file.flush()

    with log_file:
        yield log


def _image_path(path: Path | None, what: str) -> None:
    """Before any work: an image to write must have an extension Pillow writes, in a folder
    that exists."""
    from PIL import Image

    if path is None:
        return
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise UserError(f"{what} {path}: use an image name Pillow can write, e.g. .png")
    if not path.parent.is_dir():
        raise UserError(f"{path.parent}: no such folder")


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
@click.option("--psi", "--trunc", "psi", type=Psi(), default=1.0, show_default=True, help="Truncation psi (-2 to 2).")
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
    _make_folder(outdir, "--outdir")
    with click.progressbar(length=len(seed_list), label="generating", file=sys.stderr) as bar:
        for seed, img in generate_images(G, seed_list, psi=psi, class_idx=class_idx, noise_mode=noise_mode):
            mode = {1: "L", 3: "RGB", 4: "RGBA"}.get(img.shape[2])
            Image.fromarray(img[:, :, 0] if mode == "L" else img, mode).save(outdir / f"seed{seed:04d}.png")
            bar.update(1)
    click.echo(f"wrote {len(seed_list)} images to {outdir}")


def _save_image(path: Path, img_uint8) -> None:
    from PIL import Image

    if not path.parent.is_dir():
        raise UserError(f"{path.parent}: no such folder")
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[img_uint8.shape[2]]
    Image.fromarray(img_uint8[:, :, 0] if mode == "L" else img_uint8, mode).save(path)


def _parse_color(text: str):
    text = text.strip().lstrip("#")
    try:
        if "," in text:
            rgb = tuple(int(v) for v in text.split(","))
        else:
            rgb = tuple(int(text[i : i + 2], 16) for i in (0, 2, 4))
        if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb) or ("," not in text and len(text) != 6):
            raise ValueError
    except ValueError:
        raise UserError(f"--background {text!r}: give a colour as #rrggbb or r,g,b") from None
    return rgb


@main.command()
@click.option("--network", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Snapshot .pkl or rmmv-gan .safetensors file.")
@click.option("--target", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Image to project (any size; transparency is composited over --background).")
@click.option("--steps", type=int, default=1000, show_default=True, help="Optimisation steps.")
@click.option("--wplus", is_flag=True, help="One w per layer (W+) instead of one w for all (W).")
@click.option("--loss", type=click.Choice(["auto", "vgg", "discriminator", "pixel"]), default="auto",
              show_default=True, help="auto: vgg with --vgg, else the snapshot's discriminator, else pixel.")
@click.option("--vgg", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The official vgg16.pt TorchScript file (never downloaded).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write w: .npy [num_ws, w_dim], or .npz as the official projector writes.")
@click.option("--save-image", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the projected image (PNG).")
@click.option("--save-video", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write target | projection over the steps (.gif or .mp4).")
@click.option("--background", default="#ffffff", show_default=True, help="Colour under transparent pixels.")
@click.option("--class", "class_idx", type=int, default=None, help="Class label (conditional networks).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the optimisation noise.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
def project(network, target, steps, wplus, loss, vgg, out, save_image, save_video, background, class_idx, seed,
            device):
    """Find the w that makes the network draw TARGET (the StyleGAN2 paper's projection)."""
    from .latent import class_labels, save_w, to_uint8
    from .models import ModelFileError, load_discriminator
    from .projector import ProjectionError, ProjectionSettings, load_target, project as run_projection

    if steps < 1:
        raise UserError(f"--steps {steps}: give at least 1")
    if out.suffix.lower() not in (".npy", ".npz"):
        raise UserError(f"--out {out}: the w file must end in .npy or .npz")
    if save_video is not None and save_video.suffix.lower() not in (".gif", ".mp4"):
        raise UserError(f"--save-video {save_video}: use a .gif or .mp4 name")
    _image_path(save_image, "--save-image")
    for p in (out, save_image, save_video):
        if p is not None and not p.parent.is_dir():
            raise UserError(f"{p.parent}: no such folder")
    if loss == "vgg" and vgg is None:
        raise UserError("--loss vgg needs --vgg FILE (the official vgg16.pt; it is never downloaded)")
    if vgg is not None and not vgg.is_file():
        raise UserError(f"--vgg {vgg}: no such file")
    rgb = _parse_color(background)
    dev = _device(device)
    G = _load_generator(network, dev)
    try:
        class_labels(G, class_idx, 1)
    except ValueError as exc:
        raise UserError(f"--class: {exc}") from None
    D = None
    if loss == "discriminator" or (loss == "auto" and vgg is None):
        try:
            D = load_discriminator(network, dev)
        except ModelFileError:
            if loss == "discriminator":
                raise UserError(f"--loss discriminator: {network} holds no discriminator") from None
    try:
        tgt = load_target(target, G.img_shape, background=rgb)
        settings = ProjectionSettings(steps=steps, wplus=wplus, loss=loss, seed=seed)
        record = max(1, steps // 100) if save_video else 0
        with _progress(total=steps, desc="projecting", unit="step") as bar:
            def progress(step, total, distance):
                bar.set_postfix(distance=f"{distance:.4f}", refresh=False)  # drawn at the bar's own pace
                bar.update(1)

            result = run_projection(G, tgt, settings, D=D, vgg=vgg, class_idx=class_idx, progress=progress,
                                    record_every=record)
    except ProjectionError as exc:
        raise UserError(str(exc)) from None
    save_w(out, result.ws[0])
    if save_image is not None:
        _save_image(save_image, to_uint8(result.images)[0])
    if save_video is not None:
        target_u8 = to_uint8(tgt[None])[0]
        frames = [np.concatenate([target_u8, to_uint8(f)[0]], axis=1) for f in result.frames]
        _save_video(save_video, frames)
    click.echo(f"wrote {out} ({result.loss} loss, final distance {result.distances[-1]:.4f})")


def _save_video(path: Path, frames) -> None:
    if path.suffix.lower() == ".gif":
        from PIL import Image

        images = [Image.fromarray(f) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=80, loop=0)
        return
    import cv2

    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 12, (w, h))
    if not writer.isOpened():
        raise UserError(f"--save-video {path}: this OpenCV build cannot write .mp4; use a .gif name")
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()


def _w_option(G, spec, psi, class_idx, what):
    from .latent import resolve_w

    try:
        return resolve_w(spec, G, psi=psi, class_idx=class_idx)
    except ValueError as exc:
        raise UserError(f"{what}: {exc}") from None


@main.command()
@click.option("--network", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--base", required=True, help="The w to start from: a w file (.npy/.npz) or a seed.")
@click.option("--from", "source", required=True, help="The w whose layers are taken: a w file or a seed.")
@click.option("--layers", required=True, help="Layers taken from --from, e.g. 6,7 or 0-3.")
@click.option("--blend", type=float, default=1.0, show_default=True,
              help="1 replaces the layers; between 0 and 1 interpolates towards --from.")
@click.option("--psi", type=Psi(), default=1.0, show_default=True, help="Truncation psi for seeds (-2 to 2).")
@click.option("--class", "class_idx", type=int, default=None, help="Class label (conditional networks).")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Image to write (PNG).")
@click.option("--save-w", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the mixed w (.npy or .npz).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
def mix(network, base, source, layers, blend, psi, class_idx, noise_mode, out, save_w, device):
    """Style mixing: replace (or blend) chosen layers of one w with another's, and render it."""
    import torch

    from .latent import class_labels, mix as mix_ws, parse_layers, save_w as write_w, to_uint8

    if not 0 <= blend <= 1:  # NaN fails too
        raise UserError(f"--blend {blend}: give a number from 0 to 1")
    _image_path(out, "--out")
    G = _load_generator(network, _device(device))
    try:
        class_labels(G, class_idx, 1)
        layer_list = parse_layers(layers, G.num_ws)
    except ValueError as exc:
        raise UserError(f"--layers/--class: {exc}") from None
    w_base = _w_option(G, base, psi, class_idx, "--base")
    w_from = _w_option(G, source, psi, class_idx, "--from")
    w = mix_ws(w_base, w_from, layer_list, blend).to(G.mapping.w_avg.device)
    with torch.no_grad():
        img = G.synthesis(w[None], noise_mode=noise_mode)
    _save_image(out, to_uint8(img)[0])
    if save_w is not None:
        write_w(save_w, w)
    click.echo(f"wrote {out}")


@main.command()
@click.option("--network", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seeds", default="1,2", show_default=True, help="Two seeds (or w files, with --w).")
@click.option("--psi", type=Psi(), default=0.7, show_default=True, help="Truncation psi for seeds (-2 to 2).")
@click.option("--class", "class_idx", type=int, default=None, help="Class label (conditional networks).")
@click.option("--layers", default=None, help="Layers to probe (default: all).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Grid image (PNG).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
def probe(network, seeds, psi, class_idx, layers, out, device):
    """A grid that swaps one layer at a time between two sources, to see what each controls.

    Row i: A, B, A with layer i taken from B, B with layer i taken from A.
    """
    from .latent import class_labels, parse_layers
    from .probe import probe_grid

    parts = [p.strip() for p in seeds.split(",")]
    if len(parts) != 2:
        raise UserError(f"--seeds {seeds!r}: give exactly two sources, e.g. 1,2")
    _image_path(out, "--out")
    G = _load_generator(network, _device(device))
    try:
        class_labels(G, class_idx, 1)
        layer_list = parse_layers(layers, G.num_ws) if layers else list(range(G.num_ws))
    except ValueError as exc:
        raise UserError(f"--layers/--class: {exc}") from None
    w_a = _w_option(G, parts[0], psi, class_idx, "--seeds")
    w_b = _w_option(G, parts[1], psi, class_idx, "--seeds")
    _save_image(out, probe_grid(G, w_a, w_b, layer_list))
    click.echo(f"wrote {out} ({len(layer_list)} layers)")


def _open_pack(pack_dir, device):
    """The pack given with --pack, or the embedded default; a bad one is a one-line error."""
    from .packs import PackError, open_pack

    try:
        return open_pack(pack_dir, _device(device))
    except PackError as exc:
        raise UserError(f"--pack {pack_dir}: {exc}" if pack_dir is not None else str(exc)) from None


def _number(text, what, kind):
    if text is None:
        return None
    try:
        return kind(text)
    except (TypeError, ValueError):
        raise UserError(f"{what} {text!r}: not a {'whole number' if kind is int else 'number'}") from None


@main.command()
@click.option("--project", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="RPG Maker MV/MZ game folder: writes img/characters/$NAME.png and img/faces/NAME.png.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also (or instead) write into OUT/img/... for use outside a game.")
@click.option("--pack", "pack_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Model pack folder (default: the embedded default pack).")
@click.option("--archetype", default=None, help="Archetype from the pack (default: the pack's).")
@click.option("--psi", default=None, help="Truncation psi (default: the archetype's).")
@click.option("--strength", default=None,
              help="How much of the archetype, 0-1: 0 its type alone (outfit, kind of face; each seed keeps "
                   "its own person), 1 its preset character for every seed (default: the archetype's).")
@click.option("--seed", default=None, help="Seed (default: random, recorded in the metadata).")
@click.option("--count", default="1", show_default=True, help="How many characters (names numbered).")
@click.option("--name", default=None, help="Asset name (default: ARCHETYPE_SEED).")
@click.option("--steps", default=None,
              help="Projection steps for the face: refining the pack's encoder (0: its face as it is) or, in "
                   "packs without an encoder, searching from the average face (default: the pack's).")
@click.option("--emotions", default=None, help="Comma-separated emotions in faceIndex order (default: the pack's).")
@click.option("--combined", is_flag=True, help="Also an 8-character sheet and an 8-face sheet (neutral faces).")
@click.option("--preview", is_flag=True, help="Also a walk-cycle GIF beside the metadata.")
@click.option("--overwrite", is_flag=True, help="Replace files that exist (default: refuse).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
def export(project, out_dir, pack_dir, archetype, psi, strength, seed, count, name, steps, emotions, combined,
           preview, overwrite, device):
    """Make characters with a model pack and write them as ready-to-use RPG Maker files."""
    import numpy as np

    from .game import (AssetExistsError, AssetNameError, GameFolder, GameFolderError, OutputFolder,
                       character_name, character_set_files, first_existing, name_key, save_character,
                       save_character_set, taken)
    from .pipeline import CharacterRequest, RequestError, make_characters

    if project is None and out_dir is None:
        raise UserError("give --project GAME (a game folder), --out DIR, or both")
    targets = []
    try:
        if project is not None:
            targets.append(GameFolder(project))
    except GameFolderError as exc:
        raise UserError(str(exc)) from None
    if out_dir is not None:
        targets.append(OutputFolder(out_dir))
    n = _number(count, "--count", int)
    if not 1 <= n <= 100:
        raise UserError(f"--count {n}: give 1 to 100")
    psi_v, seed_v, steps_v = _number(psi, "--psi", float), _number(seed, "--seed", int), _number(steps, "--steps", int)
    strength_v = _number(strength, "--strength", float)
    opened = _open_pack(pack_dir, device)
    emotion_list = [e.strip() for e in emotions.split(",")] if emotions else None
    rng = np.random.default_rng()
    requests = []
    for i in range(n):
        req = CharacterRequest(archetype=archetype, psi=psi_v, seed=None if seed_v is None else seed_v + i,
                               name=name if n == 1 else (f"{name}_{i + 1}" if name else None),
                               steps=steps_v, emotions=emotion_list, strength=strength_v)
        try:
            requests.append(req.resolved(opened.pack, rng))
        except RequestError as exc:
            raise UserError(str(exc)) from None
    if len({name_key(r.name) for r in requests}) < n:
        raise UserError("two characters of this run would get the same name; give --name or other seeds")
    set_name = (name or requests[0].archetype) + "_set"
    if combined:
        try:
            set_name = character_name(set_name)
        except AssetNameError as exc:
            raise UserError(f"--combined: the set's name {set_name!r}: {exc}") from None
    if not overwrite:  # refuse before any work, so a taken name costs nothing and writes nothing
        for target in targets:
            for clash in [taken(target, r.name) for r in requests] + [
                    first_existing(character_set_files(target, set_name).values()) if combined else None]:
                if clash is not None:
                    raise UserError(f"{clash} already exists; use --overwrite or another --name")
    with _progress(total=100, desc="characters", bar_format="{l_bar}{bar}| {postfix}") as bar:
        def progress(stage, fraction):
            bar.set_postfix_str(stage, refresh=False)
            bar.update(int(fraction * 100) - bar.n)

        characters = make_characters(opened, requests, progress=progress)
    try:
        for target in targets:
            for c in characters:
                save_character(target, c, overwrite=overwrite, preview=preview)
            if combined:
                save_character_set(target, set_name, characters, opened.pack.face_size, overwrite=overwrite)
    except (AssetExistsError, AssetNameError, OSError) as exc:
        raise UserError(str(exc)) from None
    for c in characters:
        t = c.metadata["timings"]
        click.echo(f"{c.request.name}: seed {c.request.seed}, psi {c.request.psi}, archetype {c.request.archetype} "
                   f"at strength {c.request.strength} "
                   f"({', '.join(f'{k} {v:.2f}s' for k, v in t.items())})")


# --styles of train and train-encoder: the hair styles their --style-share draws.
_styles_option = click.option(
    "--styles", default="", metavar="STYLE,...",
    help="The hair styles --style-share draws from (short, long, ponytail, spiky, bob, twintails, bald). "
         "Default: all but bald.")


def _hair_styles(styles: str) -> list:
    """--styles as a list of hair style names (empty: all but bald); an unknown name is a UserError."""
    from .procedural.palette import hair_style_indices

    names = [s.strip() for s in styles.split(",") if s.strip()]
    try:
        hair_style_indices(names or None)
    except ValueError as exc:
        raise UserError(f"--styles: {exc}") from None
    return names


@main.command()
@click.option("--data", required=True,
              help="'sprites' or 'portraits' (the procedural renderers), or a folder of RPG Maker character sheets.")
@click.option("--outdir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Run folder: checkpoint.pt, samples_*.png, train.log, network.safetensors.")
@click.option("--steps", type=int, default=10000, show_default=True, help="Total steps (both phases).")
@click.option("--recon-steps", type=int, default=4000, show_default=True,
              help="Reconstruction steps first (procedural data only).")
@click.option("--batch", type=int, default=16, show_default=True)
@click.option("--preset", type=click.Choice(["sprite", "portrait", "tiny"]), default=None,
              help="Network size and canvas (default: by --data).")
@click.option("--resume/--no-resume", default=True, show_default=True, help="Continue from OUTDIR/checkpoint.pt.")
@click.option("--from-network", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Fine-tune: start from this rmmv-gan model (same preset).")
@click.option("--expression-layers", default="", metavar="I,J,...",
              help="Portraits: w layers that alone carry the expression, one learned w per "
                   "expression there (docs/default-pack.md). Default: none.")
@click.option("--expression-mode", type=click.Choice(["replace", "offset"]), default="replace", show_default=True,
              help="Portraits: the expression's w replaces the person's at the expression layers, or "
                   "shifts it (offset: the person reaches every layer; the pack's emotions then mix in "
                   "mode offset). A run keeps the mode it started with.")
@click.option("--recon-lr", type=click.FloatRange(min=0, min_open=True, max=1), default=0.01, show_default=True,
              help="Adam learning rate of the reconstruction phase (lower it to settle a model that has "
                   "stopped improving).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True, max=1), default=0.0025, show_default=True,
              help="Adam learning rate of the GAN phase (lower it to fine-tune a trained model).")
@click.option("--recon-weight", type=FiniteFloat(min=0, max=1000), default=1.0, show_default=True,
              help="Weight of the reconstruction loss kept in the GAN phase on procedural data (raise it to "
                   "keep a fine-tuned model closer to the renderer's drawings).")
@click.option("--type-share", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Procedural data: share of each batch drawn as one of the default pack's character types "
                   "(heroine, villain, knight, mage), so that their hoods, hats and armour are seen often.")
@click.option("--style-share", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Procedural data: share of each batch given a random hair style (not bald) and no headwear, "
                   "so that spiky crowns and ponytails are seen uncovered often.")
@_styles_option
@click.option("--latent-weight", type=FiniteFloat(min=0, max=1000), default=0.0, show_default=True,
              help="Procedural data: weight of a loss that reads z back from w, so the mapping keeps every "
                   "component of the renderer's vector (docs/default-pack.md).")
@click.option("--squared-weight", type=FiniteFloat(min=0, max=1000), default=0.0, show_default=True,
              help="Weight of a squared-error term beside the L1 reconstruction loss: it pulls hardest on "
                   "large shapes not yet drawn (a ponytail, spikes), which L1 weighs like faint colour errors.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds the networks and the drawn data; give another to continue a run on new drawings.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
def train(data, outdir, steps, recon_steps, batch, preset, resume, from_network, expression_layers, expression_mode,
          recon_lr, lr, recon_weight, type_share, style_share, styles, latent_weight, squared_weight, seed, device):
    """Train a StyleGAN2 on procedural characters or on your own character sheets.

    Writes a checkpoint regularly (resume by running the same command again), sample grids,
    and at the end OUTDIR/network.safetensors (G_ema and D, float16).
    """
    from .train import TrainConfig, Trainer, fine_tune_from

    if steps < 1 or batch < 1:
        raise UserError("--steps and --batch must be at least 1")
    if data not in ("sprites", "portraits") and not Path(data).is_dir():
        raise UserError(f"--data {data!r}: use sprites, portraits, or a folder of character sheets")
    try:
        layers = [int(i) for i in expression_layers.split(",") if i.strip()]
    except ValueError:
        raise UserError(f"--expression-layers {expression_layers!r}: give layer numbers like 2,3,4") from None
    hair_styles = _hair_styles(styles)
    _device(device)
    with _run_log(outdir) as log:
        try:
            cfg = TrainConfig(data=data, outdir=str(outdir), steps=steps, recon_steps=recon_steps, batch=batch,
                              preset=preset or "", seed=seed, device=device, expression_layers=layers,
                              expression_mode=expression_mode,
                              recon_lr=recon_lr, lr=lr, recon_weight=recon_weight, type_share=type_share,
                              style_share=style_share, styles=hair_styles,
                              latent_weight=latent_weight, squared_weight=squared_weight)
            trainer = Trainer(cfg, log=log)
            if not (resume and trainer.resume()) and from_network is not None:
                fine_tune_from(trainer, from_network)
        except ValueError as exc:  # also a damaged checkpoint, a bad --from-network, a bad sheet in --data
            raise UserError(str(exc)) from None
        trainer.run()
    path = trainer.export()
    click.echo(f"wrote {path}")


def _pairs_options(what: str, joins: str, steps: int):
    """The options train-encoder and train-refiner share: the pack, the pairs, the run folder."""
    def decorate(f):
        for option in reversed([
            click.option("--pack", "pack_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                         help=f"The pack whose {joins} (default: the embedded pack)."),
            click.option("--data", required=True,
                         help="'procedural' (the renderers' pairs; for packs trained on them, like the default), a "
                              "game folder (img/characters/X.png character i with img/faces/X.png face i), or a "
                              "folder holding characters/ and faces/ the same way."),
            click.option("--outdir", required=True, type=click.Path(file_okay=False, path_type=Path),
                         help=f"Run folder: checkpoint.pt, train.log, and {what}.safetensors at the end."),
            click.option("--steps", type=click.IntRange(1, 10_000_000), default=steps, show_default=True),
            click.option("--batch", type=click.IntRange(1, 1024), default=16, show_default=True),
        ]):
            f = option(f)
        return f
    return decorate


@main.command("train-encoder")
@_pairs_options("encoder", "sprite and face models the encoder joins", 4000)
@click.option("--w-only-steps", type=click.IntRange(0), default=0, show_default=True,
              help="Procedural data: first steps on the w loss alone (fast, no face synthesis).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True, max=1), default=0.001, show_default=True)
@click.option("--w-weight", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Procedural data: weight of the pull toward the face model's own w of the person, beside "
                   "the loss on the drawn face. Lower it when the face model's mapping draws its people "
                   "only roughly (docs/packs.md).")
@click.option("--type-share", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Procedural data: share of the people drawn as one of the default pack's character types "
                   "(heroine, villain, knight, mage), so that hoods, hats and armour are seen often.")
@click.option("--style-share", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Procedural data: share of the people given a hair style from --styles and no headwear, so "
                   "that the styles the face model draws last (spiky crowns, ponytails) are seen often.")
@_styles_option
@click.option("--either-side/--one-side", default=False, show_default=True,
              help="Compare the drawn face with the target and its mirror image, the nearer counting: for art "
                   "whose walk sheets do not show which side of the face a ponytail or a parting is on.")
@click.option("--from-encoder", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Start from this encoder file (e.g. the pack's own, after its face model was trained "
                   "further) instead of a new one. A checkpoint in OUTDIR wins when resuming.")
@click.option("--resume/--no-resume", default=True, show_default=True, help="Continue from OUTDIR/checkpoint.pt.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
def train_encoder(pack_dir, data, outdir, steps, batch, w_only_steps, lr, w_weight, type_share, style_share, styles,
                  either_side,
                  from_encoder, resume, seed, device):
    """Train a sprite-to-face encoder for a pack: walk sheet in, face w out, in one pass.

    Put the resulting OUTDIR/encoder.safetensors into the pack and name it in pack.json
    ("face": {"encoder": "encoder.safetensors"}); see docs/packs.md.
    """
    from .encoder import EncoderFileError, load_encoder
    from .train_encoder import EncoderConfig, EncoderTrainer, FolderPairs, PairsError, ProceduralPairs, check_fits

    hair_styles = _hair_styles(styles)
    opened = _open_pack(pack_dir, device)
    start = None
    if from_encoder is not None:
        try:
            start = load_encoder(from_encoder)
            check_fits(start, opened)
        except (EncoderFileError, ValueError) as exc:
            raise UserError(f"--from-encoder {from_encoder}: {exc}") from None
    try:
        pairs = ProceduralPairs(opened, seed, type_share=type_share, style_share=style_share,
                                styles=hair_styles) if data == "procedural" \
            else FolderPairs(opened, data, seed)
    except PairsError as exc:
        raise UserError(str(exc)) from None
    if data != "procedural":
        click.echo(f"{len(pairs)} pairs from {data}", err=True)
    with _run_log(outdir) as log:
        cfg = EncoderConfig(outdir=str(outdir), steps=steps, batch=batch, lr=lr, w_only_steps=w_only_steps,
                            w_weight=w_weight, either_side=either_side, seed=seed)
        trainer = EncoderTrainer(cfg, opened, pairs, log=log)
        _go_on_and_train(trainer, start, resume)
    click.echo(f"wrote {trainer.export()}")


@main.command("train-refiner")
@_pairs_options("refiner", "face model the refiner follows", 3000)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True, max=1), default=0.002, show_default=True)
@click.option("--pairs", type=click.IntRange(16, 200_000), default=8000, show_default=True,
              help="Procedural data: how many pairs to draw at the start (8000 take about 250 MB).")
@click.option("--gan-weight", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Weight of a patch discriminator's loss beside the L1 (pix2pix): lines drawn where L1 "
                   "alone draws their average. 0: none.")
@click.option("--channels", type=click.IntRange(4, 128), default=24, show_default=True,
              help="A new refiner's width at the face's own size (the time it takes grows with its square).")
@click.option("--low-channels", type=click.IntRange(4, 256), default=48, show_default=True,
              help="A new refiner's width at half size.")
@click.option("--from-refiner", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Start from this refiner file (e.g. the pack's own, after its face model was trained "
                   "further) instead of a new one; its size wins. A checkpoint in OUTDIR wins when resuming.")
@click.option("--resume/--no-resume", default=True, show_default=True, help="Continue from OUTDIR/checkpoint.pt.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
def train_refiner(pack_dir, data, outdir, steps, batch, lr, pairs, gan_weight, channels, low_channels, from_refiner,
                  resume, seed, device):
    """Train a face refiner for a pack: the face model's drawing in, the art's line work out.

    Put the resulting OUTDIR/refiner.safetensors into the pack and name it in pack.json
    ("face": {"refiner": "refiner.safetensors"}); see docs/packs.md.
    """
    from .face_refiner import FaceRefinerFileError, load_face_refiner
    from .train_encoder import PairsError
    from .train_refiner import RefinerConfig, RefinerTrainer, folder_pairs, procedural_pairs

    opened = _open_pack(pack_dir, device)
    start = None
    if from_refiner is not None:
        try:
            start = load_face_refiner(from_refiner)
        except FaceRefinerFileError as exc:
            raise UserError(f"--from-refiner {from_refiner}: {exc}") from None

    def made(done, total):
        if done == total or done % 1024 < 64:
            click.echo(f"pairs: {done}/{total}", err=True)

    try:
        if data == "procedural":
            inputs, targets = procedural_pairs(opened, pairs, seed, progress=made)
        else:
            inputs, targets = folder_pairs(opened, data, progress=made)
    except PairsError as exc:
        raise UserError(str(exc)) from None
    with _run_log(outdir) as log:
        log(f"{len(inputs)} pairs from {data}")
        cfg = RefinerConfig(outdir=str(outdir), steps=steps, batch=batch, lr=lr, pairs=pairs, seed=seed, device=device,
                            gan_weight=gan_weight, channels=channels, low_channels=low_channels)
        trainer = RefinerTrainer(cfg, inputs, targets, log=log)
        _go_on_and_train(trainer, start, resume)
    click.echo(f"wrote {trainer.export()}")


@main.group()
def pack():
    """Model packs: a manifest, a sprite model, a face model and presets (docs/packs.md)."""


@pack.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--sprite", "sprite_model", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The sprite (walk sheet) model: snapshot .pkl or rmmv-gan file.")
@click.option("--face", "face_model", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The face (portrait) model: snapshot .pkl or rmmv-gan file.")
@click.option("--name", default=None, help="The pack's name (default: the folder's).")
def pack_init(directory, sprite_model, face_model, name):
    """Write a starter pack for your own models into DIRECTORY (models converted, pack.json)."""
    from .packs import PackError, init_pack

    try:
        made = init_pack(directory, sprite_model, face_model, name=name)
    except PackError as exc:
        raise UserError(str(exc)) from None
    click.echo(f"wrote {directory / 'pack.json'} (pack {made.name!r}); edit it to set layer groups and presets")


@pack.command("check")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def pack_check(directory):
    """Load a pack and its models and check every field against them."""
    from .packs import PackError, open_pack

    try:
        opened = open_pack(directory)
    except PackError as exc:
        raise UserError(str(exc)) from None
    p = opened.pack
    click.echo(f"pack {p.name!r}: sprite {opened.sprite.num_ws} layers, face {opened.face.num_ws} layers, "
               f"archetypes {', '.join(p.archetypes)}, emotions {', '.join(e.name for e in p.emotions)}: OK")


@main.group()
def preset():
    """Presets: stored w files that archetypes and emotions mix in."""


@preset.command("add")
@click.option("--pack", "pack_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", required=True, help="Preset name (letters, digits, _ and -).")
@click.option("--model", type=click.Choice(["sprite", "face"]), required=True)
@click.option("--seed", type=int, default=None, help="Make it from a seed ...")
@click.option("--image", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="... or by projecting an image ...")
@click.option("--w", "w_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="... or from a w file (.npy/.npz).")
@click.option("--psi", type=Psi(), default=1.0, show_default=True, help="Truncation psi for --seed (-2 to 2).")
@click.option("--steps", type=int, default=None, help="Projection steps (default: the pack's).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
def preset_add(pack_dir, name, model, seed, image, w_file, psi, steps, device):
    """Write PACK/presets/MODEL/NAME.npy; name it in pack.json to use it."""
    from .packs import PackError, add_preset
    from .projector import ProjectionError

    if steps is not None and steps < 1:
        raise UserError(f"--steps {steps}: give at least 1")
    bars = []  # made at the first step: a refused image leaves no empty bar before the error

    def progress(step, total, distance):
        if not bars:
            bars.append(_progress(desc="projecting", unit="step", total=total))
        bars[0].update(1)

    try:
        path = add_preset(pack_dir, model, name, seed=seed, image=image, w_file=w_file, psi=psi, steps=steps,
                          device=_device(device), progress=progress)
    except (PackError, ProjectionError, ValueError) as exc:
        raise UserError(str(exc)) from None
    finally:
        for bar in bars:
            bar.close()
    click.echo(f"wrote {path}")


@main.command()
@click.option("--project", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="RPG Maker MV/MZ game folder the characters are written into.")
@click.option("--pack", "pack_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Model pack folder (default: the embedded default pack).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback exposes the daemon to the network.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--token", default=None,
              help="Bearer token (default: env RMMV_GAN_TOKEN, else a new one; stored in GAME/rmmv_gan/server.json).")
@click.option("--queue-size", type=click.IntRange(1, 1000), default=8, show_default=True,
              help="Jobs that may wait; more are refused with 429.")
@click.option("--origin", "origins", multiple=True,
              help="Extra CORS origin allowed (e.g. http://localhost:8000 serving the game); repeatable.")
@click.option("--watch", "watch_files", is_flag=True,
              help="Also answer request files in GAME/rmmv_gan/requests/ (docs/requests.md), in the same job queue.")
@click.option("--keep-days", type=KEEP_DAYS, default=7.0, show_default=True,
              help="With --watch: days to keep answered requests (done/) and responses.")
@click.option("--idle-exit", "idle_minutes", type=click.FloatRange(min=0, min_open=True, max=10**6), default=None,
              metavar="MINUTES",
              help="Stop after this many minutes without a request (and no job running); fractions allowed. "
                   "The plugin starts the daemon with it in test play.")
def serve(project, pack_dir, host, port, device, token, queue_size, origins, watch_files, keep_days, idle_minutes):
    """Run the local daemon the plugin and the web page talk to (docs/api.md).

    Prints the web page's address with the token in it: opening it signs the page in.
    """
    from .daemon import ServerConfig, is_loopback
    from .watcher import WatcherBusy

    cfg = ServerConfig(project=project, pack_dir=pack_dir, host=host, port=port, device=device, token=token,
                       queue_size=queue_size, origins=list(origins))
    daemon = _daemon(cfg)
    if not is_loopback(host):
        click.echo(f"Warning: --host {host} is not loopback; anyone who can reach this machine and "
                   f"knows the token can generate characters into {project}", err=True)
    try:
        daemon.serve(watch_files=watch_files, keep_days=keep_days, idle_exit=idle_minutes,
                     echo=lambda line: click.echo(line, err=True))
    except OSError as exc:
        raise UserError(f"--host {host} --port {port}: cannot listen ({exc})") from None
    except WatcherBusy as exc:
        raise UserError(str(exc)) from None


def _daemon(cfg):
    """A Daemon for `serve` and `watch`; a bad game folder, pack or token is a one-line error."""
    from .daemon import Daemon
    from .game import GameFolder, GameFolderError

    try:
        GameFolder(cfg.project)  # before the pack: a wrong folder should not cost a model load
    except GameFolderError as exc:
        raise UserError(str(exc)) from None
    opened = _open_pack(cfg.pack_dir, cfg.device)
    try:
        return Daemon(cfg, opened)
    except ValueError as exc:
        raise UserError(str(exc)) from None


@main.command()
@click.argument("game", type=click.Path(file_okay=False, path_type=Path))
@click.option("--pack", "pack_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Model pack folder (default: the embedded default pack).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--keep-days", type=KEEP_DAYS, default=7.0, show_default=True,
              help="Days to keep answered requests (done/) and responses.")
def watch(game, pack_dir, device, keep_days):
    """Answer request files dropped into GAME/rmmv_gan/requests/ (docs/requests.md).

    Each ID.json (the body of POST /api/characters) is run once; the answer is written to
    GAME/rmmv_gan/responses/ID.json. Ctrl+C stops after the running request; press it again
    to cancel that one (it runs again on the next start).
    """
    import logging

    from .daemon import ServerConfig
    from .watcher import WatcherBusy

    # No HTTP: one job at a time is all a watcher asks of the queue; no server.json to write.
    daemon = _daemon(ServerConfig(project=game, pack_dir=pack_dir, device=device, queue_size=1,
                                  write_server_json=False))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        daemon.watch(keep_days=keep_days, echo=lambda line: click.echo(line, err=True))
    except WatcherBusy as exc:
        raise UserError(str(exc)) from None


@main.command("install-plugin")
@click.argument("game", type=click.Path(file_okay=False, path_type=Path))
@click.option("--url", default=None, help="Daemon URL for the plugin (default: GAME/rmmv_gan/server.json's, else kept).")
@click.option("--token", default=None,
              help="Token written into js/plugins.js, for a game served to a browser (default: none, or the one "
                   "the entry holds; test play reads GAME/rmmv_gan/server.json). js/plugins.js ships with the game.")
def install_plugin_cmd(game, url, token):
    """Copy the RPG Maker plugin into GAME/js/plugins/ and switch it on in js/plugins.js (docs/plugin.md)."""
    from .game import GameFolderError
    from .plugin_install import PluginInstallError, install_plugin

    try:
        written = install_plugin(game, url=url, token=token)
    except (GameFolderError, PluginInstallError) as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"{game}: cannot write ({exc})") from None
    click.echo(f"installed {written['plugin']} and switched it on in {written['plugins.js']}")
    click.echo("Next: open the project in RPG Maker, start a Playtest, and choose main menu -> Generate NPC "
               "(the plugin starts rmmv-gan serve itself).")


def console_main() -> None:
    """The `rmmv-gan` command (and `python -m rmmv_gan.cli`): `main`, then, once its work is
    done and no other thread runs, an immediate exit with its status.

    Python's own shutdown after torch has been imported tears down thousands of modules and
    objects one by one: half a second of a 2.5 s `export` on a 2-core machine, spent after every
    file is written. Every command writes its files atomically and closes them before it
    returns, so there is nothing left for the shutdown to do. Where another (non-daemon)
    thread still runs, or an unexpected exception escapes, Python exits as usual."""
    try:
        main()  # standalone: always ends in SystemExit
    except SystemExit as done:
        code = done.code
        if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
            raise
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr)  # as Python prints a SystemExit's message
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code or 0)


if __name__ == "__main__":
    console_main()
