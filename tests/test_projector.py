"""Projection recovers w of images the model drew, with every loss; it is deterministic,
cached, cancellable, and leaves the caller's model untouched."""

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from rmmv_gan import load_discriminator, load_generator
from rmmv_gan import projector
from rmmv_gan.latent import map_seed
from rmmv_gan.projector import (ProjectionCancelled, ProjectionError, ProjectionSettings, load_target, project,
                                psnr, w_stats)

from conftest import golden_dir


class TinyVGG(torch.nn.Module):
    """A stand-in with the calling convention of NVIDIA's vgg16.pt (random convolutions,
    LPIPS-style normalised features): the real file is never downloaded, so tests use this."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w1 = torch.nn.Parameter(torch.randn(16, 3, 3, 3, generator=g) / 5)
        self.w2 = torch.nn.Parameter(torch.randn(32, 16, 3, 3, generator=g) / 12)

    def forward(self, img: torch.Tensor, resize_images: bool = True, return_lpips: bool = False) -> torch.Tensor:
        x = img / 127.5 - 1
        feats = []
        for w in [self.w1, self.w2]:
            x = torch.relu(torch.nn.functional.conv2d(x, w, padding=1))
            f = x / (x.square().sum(dim=1, keepdim=True).sqrt() + 1e-8)
            feats.append(f.flatten(1) / (f.shape[2] * f.shape[3]) ** 0.5)
            x = torch.nn.functional.avg_pool2d(x, 2)
        return torch.cat(feats, dim=1)


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vgg") / "vgg16.pt"
    with warnings.catch_warnings():  # TorchScript is deprecated, but it is vgg16.pt's format
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(TinyVGG()).save(str(path))
    return path


@pytest.fixture(scope="module")
def sg2():
    path = golden_dir() / "sg2_c3_32.pkl"
    G, D = load_generator(path), load_discriminator(path)
    ws = torch.stack([map_seed(G, s, psi=0.7, class_idx=0) for s in range(10, 15)])  # 5 known w
    with torch.no_grad():
        targets = G.synthesis(ws, noise_mode="const")
        start = G.synthesis(w_stats(G, 0).w_avg.expand(5, G.num_ws, -1), noise_mode="const")
    return G, D, targets, psnr(start, targets)


@pytest.mark.parametrize("loss", ["pixel", "discriminator", "vgg"])
def test_each_loss_gains_8_db_over_the_mean_w(sg2, vgg_file, loss):
    G, D, targets, start = sg2
    result = project(G, targets, ProjectionSettings(steps=300, loss=loss), D=D, vgg=vgg_file, class_idx=0)
    gain = psnr(result.images, targets) - start
    assert result.loss == loss
    assert (gain >= 8).all(), f"PSNR gains {gain.tolist()}"


def test_pixel_loss_in_wplus_reaches_28_db(sg2):
    G, _, targets, _ = sg2
    result = project(G, targets, ProjectionSettings(steps=1000, loss="pixel", wplus=True), class_idx=0)
    end = psnr(result.images, targets)
    assert (end >= 28).all(), f"PSNR {end.tolist()}"


def test_stylegan3_projection_gains_8_db():
    G = load_generator(golden_dir() / "sg3t_32.pkl")
    ws = torch.stack([map_seed(G, s, psi=0.7) for s in range(10, 12)])  # 2 targets: StyleGAN3 steps cost more
    with torch.no_grad():
        targets = G.synthesis(ws, noise_mode="const")
        start = psnr(G.synthesis(w_stats(G).w_avg.expand(2, G.num_ws, -1)), targets)
    result = project(G, targets, ProjectionSettings(steps=200, loss="pixel"))
    assert (psnr(result.images, targets) - start >= 8).all()


def test_projection_is_deterministic_given_a_seed(sg2):
    G, _, targets, _ = sg2
    a = project(G, targets[:2], ProjectionSettings(steps=15, loss="pixel", seed=3), class_idx=0)
    b = project(G, targets[:2], ProjectionSettings(steps=15, loss="pixel", seed=3), class_idx=0)
    c = project(G, targets[:2], ProjectionSettings(steps=15, loss="pixel", seed=4), class_idx=0)
    assert torch.equal(a.ws, b.ws) and not torch.equal(a.ws, c.ws)


def test_w_statistics_are_computed_once_per_model(sg2):
    G, _, targets, _ = sg2
    project(G, targets[:1], ProjectionSettings(steps=2, loss="pixel"), class_idx=0)
    before = projector.w_stats_computations
    project(G, targets[:1], ProjectionSettings(steps=2, loss="pixel"), class_idx=0)
    project(G, targets[1:2], ProjectionSettings(steps=2, loss="pixel", wplus=True), class_idx=0)
    assert projector.w_stats_computations == before


def test_the_callers_model_is_untouched(sg2):
    G, _, targets, _ = sg2
    before = {k: v.clone() for k, v in G.state_dict().items()}
    project(G, targets[:1], ProjectionSettings(steps=5, loss="pixel"), class_idx=0)
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())


def test_progress_reports_every_step_and_cancel_stops(sg2):
    G, _, targets, _ = sg2
    seen = []
    project(G, targets[:1], ProjectionSettings(steps=7, loss="pixel"), class_idx=0,
            progress=lambda step, total, d: seen.append((step, total)))
    assert seen == [(i, 7) for i in range(1, 8)]
    with pytest.raises(ProjectionCancelled):
        project(G, targets[:1], ProjectionSettings(steps=50, loss="pixel"), class_idx=0,
                cancel=lambda: len(seen) > 9, progress=lambda *a: seen.append(a))


def test_wplus_returns_one_w_per_layer_and_w_one_for_all(sg2):
    G, _, targets, _ = sg2
    w = project(G, targets[:1], ProjectionSettings(steps=3, loss="pixel"), class_idx=0).ws
    wp = project(G, targets[:1], ProjectionSettings(steps=3, loss="pixel", wplus=True), class_idx=0).ws
    assert w.shape == wp.shape == (1, G.num_ws, G.w_dim)
    assert torch.equal(w[0, 0], w[0, -1]) and not torch.equal(wp[0, 0], wp[0, -1])


def test_discriminator_loss_needs_a_discriminator(sg2):
    G, _, targets, _ = sg2
    with pytest.raises(ProjectionError, match="discriminator"):
        project(G, targets[:1], ProjectionSettings(steps=1, loss="discriminator"), class_idx=0)


def test_steps_below_one_are_refused(sg2):
    G, _, targets, _ = sg2
    with pytest.raises(ProjectionError, match="steps"):
        project(G, targets[:1], ProjectionSettings(steps=0), class_idx=0)


def test_target_transparency_is_composited_over_the_background():
    rgba = np.zeros((20, 20, 4), dtype=np.uint8)
    rgba[5:15, 5:15] = (255, 0, 0, 255)
    t = load_target(Image.fromarray(rgba, "RGBA"), (20, 20), background=(0, 0, 255))
    assert torch.allclose(t[:, 0, 0], torch.tensor([-1.0, -1.0, 1.0]))
    assert torch.allclose(t[:, 10, 10], torch.tensor([1.0, -1.0, -1.0]))


def test_target_of_another_size_and_mode_is_fitted():
    grey = Image.fromarray(np.full((30, 60), 128, dtype=np.uint8), "L")  # wide: centre-cropped
    t = load_target(grey, (16, 12))
    assert t.shape == (3, 16, 12)
    assert torch.allclose(t, torch.full_like(t, 128 / 127.5 - 1), atol=1e-2)


def test_unreadable_target_is_a_clear_error(tmp_path):
    (tmp_path / "x.png").write_text("not an image")
    with pytest.raises(ProjectionError, match="not a readable image"):
        load_target(tmp_path / "x.png", (32, 32))


def test_noise_maps_can_be_left_as_the_model_has_them(sg2):
    G, _, targets, _ = sg2
    a = project(G, targets[:1], ProjectionSettings(steps=5, loss="pixel", optimize_noise=False, seed=1), class_idx=0)
    b = project(G, targets[:1], ProjectionSettings(steps=5, loss="pixel", optimize_noise=False, seed=1), class_idx=0)
    with torch.no_grad():
        rendered = G.synthesis(a.ws, noise_mode="const")  # the caller's G, with its own noise
    assert torch.equal(a.ws, b.ws)
    assert torch.allclose(a.images, rendered, atol=1e-5)
