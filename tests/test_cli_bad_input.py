"""Bad options and bad files at the command line (issue 16, items 14 and 15): each is one
`Error:` line (or click's usage error for a value of the wrong kind), before any work, with
nothing written; never a traceback, never NaN pictures."""

import struct
import zlib

import pytest
from click.testing import CliRunner
from PIL import Image

from rmmv_gan.cli import main
from rmmv_gan.models import new_network, save_networks

from snapshots import TINY_G


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """A StyleGAN2 of 8 x 8 pixels with its discriminator: fast enough for every command."""
    path = tmp_path_factory.mktemp("net") / "tiny.safetensors"
    save_networks(path, {"G": new_network("G", "stylegan2", **TINY_G)})
    return path


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result, *phrases):
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for phrase in phrases:
        assert phrase in lines[0]


def usage_error(result, *phrases):
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    for phrase in phrases:
        assert phrase in result.output


def png_claiming(width, height) -> bytes:
    """A PNG of a few dozen bytes whose header claims width x height (a decompression bomb)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def huge_pngs(tmp_path_factory):
    """A real 20000 x 20000 PNG (1-bit, so it is small to make) and a bomb header."""
    root = tmp_path_factory.mktemp("huge")
    Image.new("1", (20000, 20000)).save(root / "big.png")
    (root / "bomb.png").write_bytes(png_claiming(200_000, 200_000))
    return {"20000x20000": root / "big.png", "bomb-header": root / "bomb.png"}


# ------------------------------------------------------------------------------- psi and NaN


@pytest.mark.parametrize("psi", ["nan", "inf", "-inf", "1e308"])
def test_generate_refuses_a_psi_that_is_not_a_finite_number_in_range(tmp_path, net, psi):
    usage_error(run("generate", "--network", net, "--seeds", 0, "--psi", psi, "--outdir", tmp_path / "out"), "--psi")
    assert not (tmp_path / "out").exists()


def test_mix_refuses_psi_nan(tmp_path, net):
    usage_error(run("mix", "--network", net, "--base", 1, "--from", 2, "--layers", 0, "--psi", "nan",
                    "--out", tmp_path / "m.png"), "--psi", "finite")
    assert not (tmp_path / "m.png").exists()


def test_preset_add_refuses_psi_nan(starter_model, tmp_path):
    from starter_pack import make_starter_pack

    pack = make_starter_pack(tmp_path / "pack", starter_model)
    usage_error(run("preset", "add", "--pack", pack, "--name", "ghost", "--model", "sprite", "--seed", 1,
                    "--psi", "nan"), "--psi")
    assert not (pack / "presets" / "sprite" / "ghost.npy").exists()


@pytest.mark.parametrize("command", ["watch", "serve"])
def test_keep_days_nan_is_refused(game, command):
    args = [game] if command == "watch" else ["--project", game, "--watch"]
    usage_error(run(command, *args, "--keep-days", "nan"), "--keep-days", "finite")


# ------------------------------------------------------------------------------- options


def test_a_layer_range_far_beyond_the_model_is_refused_at_once(tmp_path, net):
    one_line_error(run("mix", "--network", net, "--base", 1, "--from", 2, "--layers", "0-1000000000000",
                       "--out", tmp_path / "m.png"), "1000000000000", "out of range")


def test_generate_outdir_under_a_file(tmp_path, net):
    (tmp_path / "file").write_text("x")
    one_line_error(run("generate", "--network", net, "--seeds", 0, "--outdir", tmp_path / "file" / "out"), "--outdir")


def test_train_outdir_under_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    one_line_error(run("train", "--data", "sprites", "--preset", "tiny", "--steps", 1,
                       "--outdir", tmp_path / "file" / "run"), "--outdir")


@pytest.mark.parametrize("command", ["mix", "probe", "project"])
def test_an_image_name_pillow_cannot_write_is_refused_before_any_work(tmp_path, command):
    """Checked first: even before the network (here missing) is read."""
    missing = tmp_path / "missing.safetensors"
    args = {"mix": ["mix", "--network", missing, "--base", 1, "--from", 2, "--layers", 0, "--out", tmp_path / "x.xyz"],
            "probe": ["probe", "--network", missing, "--out", tmp_path / "x.xyz"],
            "project": ["project", "--network", missing, "--target", tmp_path / "t.png", "--out", tmp_path / "w.npy",
                        "--save-image", tmp_path / "x.xyz"]}[command]
    one_line_error(run(*args), "x.xyz", "Pillow")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------- pictures


@pytest.mark.parametrize("kind", ["20000x20000", "bomb-header"])
def test_project_refuses_a_huge_target(tmp_path, net, huge_pngs, kind):
    one_line_error(run("project", "--network", net, "--target", huge_pngs[kind], "--steps", 1,
                       "--out", tmp_path / "w.npy"), huge_pngs[kind].name, "megapixels")
    assert not (tmp_path / "w.npy").exists()


@pytest.mark.parametrize("kind", ["20000x20000", "bomb-header"])
def test_preset_add_refuses_a_huge_image(starter_model, tmp_path, huge_pngs, kind):
    from starter_pack import make_starter_pack

    pack = make_starter_pack(tmp_path / "pack", starter_model)
    one_line_error(run("preset", "add", "--pack", pack, "--name", "big", "--model", "face", "--image",
                       huge_pngs[kind]), "megapixels")
    assert not (pack / "presets" / "face" / "big.npy").exists()


@pytest.mark.parametrize("kind", ["20000x20000", "bomb-header", "zero-byte", "not-an-image"])
def test_train_names_the_sheet_it_cannot_read(tmp_path, huge_pngs, kind):
    data = tmp_path / "sheets"
    data.mkdir()
    bad = data / "$bad.png"
    if kind in huge_pngs:
        bad.write_bytes(huge_pngs[kind].read_bytes())
    else:
        bad.write_bytes(b"" if kind == "zero-byte" else b"hello, not a picture")
    one_line_error(run("train", "--data", data, "--preset", "tiny", "--steps", 1, "--outdir", tmp_path / "run"),
                   "$bad.png")
    assert not (tmp_path / "run" / "network.safetensors").exists()


# ------------------------------------------------------------------------------- training files


def test_a_corrupt_checkpoint_is_one_line(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoint.pt").write_bytes(b"PK\x03\x04 this is not a checkpoint")
    one_line_error(run("train", "--data", "sprites", "--steps", 1, "--outdir", run_dir),
                   "checkpoint.pt", "--no-resume")
    assert (run_dir / "checkpoint.pt").read_bytes().startswith(b"PK\x03\x04 this")


def test_a_from_network_of_another_size_is_one_line(tmp_path, net):
    one_line_error(run("train", "--data", "sprites", "--steps", 1, "--outdir", tmp_path / "run",
                       "--from-network", net), "--from-network", "--preset")
    assert not (tmp_path / "run" / "network.safetensors").exists()


# ------------------------------------------------------------------------------- progress


def test_progress_is_not_redrawn_step_by_step_into_a_log(tmp_path, net):
    """Under CliRunner stderr is not a terminal, as in a log file or a daemon's console."""
    Image.new("RGB", (8, 8), (200, 100, 50)).save(tmp_path / "t.png")
    result = run("project", "--network", net, "--target", tmp_path / "t.png", "--steps", 100, "--loss", "pixel",
                 "--out", tmp_path / "w.npy")
    assert result.exit_code == 0, result.output
    assert result.output.count("projecting") <= 3, result.output.count("projecting")
