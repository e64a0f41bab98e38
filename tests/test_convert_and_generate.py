"""`rmmv-gan convert` and `rmmv-gan generate` against the official snapshots and outputs."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from rmmv_gan import load_discriminator, load_generator
from rmmv_gan.cli import main
from rmmv_gan.models import new_network, save_networks

from conftest import golden_dir
from snapshots import TINY_G

SNAPSHOTS = ["sg2_c3_32", "sg3t_32", "sg3r_32"]


@pytest.mark.parametrize("name", SNAPSHOTS)
def test_converted_model_gives_bit_identical_outputs(tmp_path, name):
    src = golden_dir() / f"{name}.pkl"
    dst = tmp_path / f"{name}.safetensors"
    result = CliRunner().invoke(main, ["convert", str(src), str(dst)])
    assert result.exit_code == 0, result.output
    ref = np.load(golden_dir() / f"{name}.npz")
    z = torch.from_numpy(ref["z"])
    c = torch.from_numpy(ref["c"]) if "c" in ref else None
    with torch.no_grad():
        G_pkl, G_st = load_generator(src), load_generator(dst)
        a = G_pkl(z, c, truncation_psi=0.7, noise_mode="const")
        b = G_st(z, c, truncation_psi=0.7, noise_mode="const")
        assert torch.equal(a, b)
        img = torch.from_numpy(ref["img_psi07"])
        assert torch.equal(load_discriminator(src)(img, c), load_discriminator(dst)(img, c))


def test_converted_file_holds_no_pickle(tmp_path, starter_snapshot):
    dst = tmp_path / "g.safetensors"
    CliRunner().invoke(main, ["convert", str(starter_snapshot), str(dst)])
    header_len = int.from_bytes(dst.read_bytes()[:8], "little")
    assert dst.read_bytes()[8:9] == b"{" and header_len < dst.stat().st_size


@pytest.mark.parametrize("name", SNAPSHOTS)
def test_generate_writes_what_gen_images_would(tmp_path, name):
    """gen_images.py: z = RandomState(seed).randn(z_dim), psi, const noise, x*127.5+128 clamped."""
    ref = np.load(golden_dir() / f"{name}.npz")
    expected = (np.transpose(ref["img_psi07"], (0, 2, 3, 1)) * 127.5 + 128).clip(0, 255).astype(np.uint8)
    runner = CliRunner()
    for seed in ref["seeds"]:
        args = ["generate", "--network", str(golden_dir() / f"{name}.pkl"), "--seeds", str(seed), "--psi", "0.7",
                "--noise-mode", "const", "--outdir", str(tmp_path)]
        if "c" in ref:  # the reference used label seed % c_dim
            args += ["--class", str(int(np.argmax(ref["c"][seed])))]
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
        png = np.asarray(Image.open(tmp_path / f"seed{seed:04d}.png"))
        # Values land within one level: the conversion truncates, and 1e-6 can cross a step.
        assert png.shape == expected[seed].shape
        assert np.abs(png.astype(int) - expected[seed].astype(int)).max() <= 1


def test_generate_refuses_a_missing_class_for_a_conditional_network(tmp_path):
    conditional = tmp_path / "c3.safetensors"
    save_networks(conditional, {"G": new_network("G", "stylegan2", **dict(TINY_G, c_dim=3))})
    result = CliRunner().invoke(main, ["generate", "--network", str(conditional), "--seeds",
                                       "0-1", "--outdir", str(tmp_path / "out")])
    assert result.exit_code == 1 and "--class" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("seeds", ["a-b", "5-2", "-1", "4294967296"])
def test_generate_refuses_bad_seed_lists(tmp_path, seeds, starter_snapshot):
    result = CliRunner().invoke(main, ["generate", "--network", str(starter_snapshot), "--seeds",
                                       seeds, "--outdir", str(tmp_path / "out")])
    assert result.exit_code != 0 and "seed" in result.output.lower()
    assert not (tmp_path / "out").exists()


def test_convert_into_a_missing_folder_fails_cleanly(tmp_path, starter_snapshot):
    dst = tmp_path / "no" / "such" / "dir" / "g.safetensors"
    result = CliRunner().invoke(main, ["convert", str(starter_snapshot), str(dst)])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert not dst.parent.exists()
