"""`rmmv-gan project`, `mix` and `probe`: they work, and bad input is one line, nothing written."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from rmmv_gan import load_generator
from rmmv_gan.cli import main
from rmmv_gan.latent import load_w, map_seed, save_w
from rmmv_gan.models import save_networks


@pytest.fixture(scope="module")
def net(starter_snapshot):
    return str(starter_snapshot)


@pytest.fixture(scope="module")
def target(tmp_path_factory, net):
    out = tmp_path_factory.mktemp("target")
    CliRunner().invoke(main, ["generate", "--network", net, "--seeds", "7", "--psi", "0.7", "--outdir", str(out)])
    return out / "seed0007.png"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result, *words):
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error"), result.output
    for w in words:
        assert w in lines[0], lines[0]


def test_project_writes_w_image_and_video(tmp_path, net, target):
    result = run("project", "--network", net, "--target", target, "--steps", 12, "--loss", "pixel",
                 "--out", tmp_path / "w.npz", "--save-image", tmp_path / "p.png", "--save-video", tmp_path / "p.gif")
    assert result.exit_code == 0, result.output
    G = load_generator(net)
    assert load_w(tmp_path / "w.npz", G.num_ws, G.w_dim).shape == (G.num_ws, G.w_dim)
    assert Image.open(tmp_path / "p.png").size == (32, 32)
    gif = Image.open(tmp_path / "p.gif")
    assert gif.size == (64, 32) and gif.n_frames >= 2


def test_mix_renders_what_the_library_computes(tmp_path, net):
    G = load_generator(net)
    save_w(tmp_path / "a.npy", map_seed(G, 1))
    result = run("mix", "--network", net, "--base", tmp_path / "a.npy", "--from", 2, "--layers", "0-3",
                 "--out", tmp_path / "m.png", "--save-w", tmp_path / "m.npy")
    assert result.exit_code == 0, result.output
    w = load_w(tmp_path / "m.npy", G.num_ws, G.w_dim)
    expected = map_seed(G, 1).clone()
    expected[:4] = map_seed(G, 2)[:4]
    assert torch.equal(w, expected)
    with torch.no_grad():
        img = ((G.synthesis(w[None], noise_mode="const")[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255)
               .to(torch.uint8).numpy())
    assert np.array_equal(np.asarray(Image.open(tmp_path / "m.png")), img)


def test_probe_writes_a_row_per_layer(tmp_path, net):
    result = run("probe", "--network", net, "--seeds", "1,2", "--layers", "0-2", "--out", tmp_path / "g.png")
    assert result.exit_code == 0, result.output
    grid = np.asarray(Image.open(tmp_path / "g.png"))
    assert grid.shape[0] >= 3 * 96 and grid.shape[1] >= 4 * 96
    cell = lambda r, c: grid[14 + r * 98 : 14 + r * 98 + 96, 64 + c * 98 : 64 + c * 98 + 96]
    assert np.array_equal(cell(0, 0), cell(2, 0))  # column A is the same in every row
    assert not np.array_equal(cell(0, 2), cell(1, 2))  # swapping another layer changes the image


def test_unreadable_image(tmp_path, net):
    (tmp_path / "bad.png").write_bytes(b"nope")
    one_line_error(run("project", "--network", net, "--target", tmp_path / "bad.png", "--steps", 2,
                       "--out", tmp_path / "w.npy"), "not a readable image")
    assert not (tmp_path / "w.npy").exists()


def test_wrong_shape_w(tmp_path, net):
    np.save(tmp_path / "w.npy", np.zeros((3, 64), dtype=np.float32))
    one_line_error(run("mix", "--network", net, "--base", tmp_path / "w.npy", "--from", 2, "--layers", 1,
                       "--out", tmp_path / "m.png"), "[3, 64]", "[16, 64]")
    assert not (tmp_path / "m.png").exists()


@pytest.mark.parametrize("steps", [0, -3])
def test_steps_below_one(tmp_path, net, target, steps):
    one_line_error(run("project", "--network", net, "--target", target, "--steps", steps,
                       "--out", tmp_path / "w.npy"), "--steps")


def test_layer_index_beyond_num_ws(tmp_path, net):
    one_line_error(run("mix", "--network", net, "--base", 1, "--from", 2, "--layers", "6,16",
                       "--out", tmp_path / "m.png"), "16", "0-15")
    one_line_error(run("probe", "--network", net, "--layers", "20", "--out", tmp_path / "g.png"), "20")


def test_discriminator_loss_without_a_discriminator(tmp_path, net, target):
    g_only = tmp_path / "g.safetensors"
    save_networks(g_only, {"G": load_generator(net)})
    one_line_error(run("project", "--network", g_only, "--target", target, "--loss", "discriminator",
                       "--steps", 2, "--out", tmp_path / "w.npy"), "no discriminator")


def test_missing_vgg_file(tmp_path, net, target):
    one_line_error(run("project", "--network", net, "--target", target, "--loss", "vgg", "--vgg",
                       tmp_path / "vgg16.pt", "--steps", 2, "--out", tmp_path / "w.npy"), "--vgg", "no such file")
    one_line_error(run("project", "--network", net, "--target", target, "--loss", "vgg", "--steps", 2,
                       "--out", tmp_path / "w.npy"), "--vgg")


def test_auto_loss_falls_back_to_pixel_without_a_discriminator(tmp_path, net, target):
    g_only = tmp_path / "g.safetensors"
    save_networks(g_only, {"G": load_generator(net)})
    result = run("project", "--network", g_only, "--target", target, "--steps", 2, "--out", tmp_path / "w.npy")
    assert result.exit_code == 0 and "pixel loss" in result.output
