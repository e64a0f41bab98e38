"""The engine reproduces the official implementation's outputs for official snapshots."""

import numpy as np
import pytest
import torch

from rmmv_gan import load_discriminator, load_generator
from rmmv_gan.models import read_network_specs

from conftest import golden_dir

SNAPSHOTS = ["sg2_c3_32", "sg3t_32", "sg3r_32"]


def close(actual, reference):
    """The equivalence criterion of the reference data: max |diff| <= 1e-3 * max |ref|."""
    actual = actual.detach().cpu().numpy() if isinstance(actual, torch.Tensor) else actual
    err = np.abs(actual - reference).max()
    tol = 1e-3 * np.abs(reference).max()
    assert actual.shape == reference.shape
    assert err <= tol, f"max error {err:.3g} > tolerance {tol:.3g}"


@pytest.fixture(scope="module", params=SNAPSHOTS)
def snapshot(request):
    path = golden_dir() / f"{request.param}.pkl"
    ref = dict(np.load(golden_dir() / f"{request.param}.npz"))
    z = torch.from_numpy(ref["z"])
    c = torch.from_numpy(ref["c"]) if "c" in ref else None
    return load_generator(path), load_discriminator(path), ref, z, c


def test_mapping_at_psi_1(snapshot):
    G, _, ref, z, c = snapshot
    close(G.mapping(z, c, truncation_psi=1), ref["ws_psi1"])


def test_mapping_with_truncation(snapshot):
    G, _, ref, z, c = snapshot
    close(G.mapping(z, c, truncation_psi=0.7), ref["ws_psi07"])


def test_mapping_with_truncation_cutoff(snapshot):
    G, _, ref, z, c = snapshot
    close(G.mapping(z, c, truncation_psi=0.5, truncation_cutoff=4), ref["ws_psi05_cutoff4"])


def test_synthesis_const_noise_batch(snapshot):
    G, _, ref, _, _ = snapshot
    with torch.no_grad():
        img = G.synthesis(torch.from_numpy(ref["ws_psi07"]), noise_mode="const")
    close(img, ref["img_psi07"])
    close(img, ref["img_psi07_default_precision"])


def test_synthesis_one_image_at_a_time(snapshot):
    """Batch 1 takes the fused modulation path; it must agree as well."""
    G, _, ref, _, _ = snapshot
    ws = torch.from_numpy(ref["ws_psi07"])
    with torch.no_grad():
        img = torch.cat([G.synthesis(ws[i : i + 1], noise_mode="const") for i in range(len(ws))])
    close(img, ref["img_psi07"])


def test_synthesis_without_noise(snapshot):
    G, _, ref, _, _ = snapshot
    if "img_psi07_no_noise" not in ref:
        pytest.skip("reference has no noise-free image for this architecture")
    with torch.no_grad():
        close(G.synthesis(torch.from_numpy(ref["ws_psi07"]), noise_mode="none"), ref["img_psi07_no_noise"])


def test_style_mixed_synthesis(snapshot):
    G, _, ref, _, _ = snapshot
    ws07 = torch.from_numpy(ref["ws_psi07"])
    ws = ws07[:1].clone()
    layers = ref["mix_layers"]
    ws[:, layers] = ws07[1:2, layers]
    with torch.no_grad():
        close(G.synthesis(ws, noise_mode="const"), ref["img_mix"])


def test_discriminator_logits(snapshot):
    _, D, ref, _, c = snapshot
    with torch.no_grad():
        close(D(torch.from_numpy(ref["img_psi07"]), c), ref["d_logits"])


def test_interface_matches_the_official_generator(snapshot):
    G, _, ref, z, c = snapshot
    assert (G.z_dim, G.img_channels) == (z.shape[1], 3)
    assert G.num_ws == int(ref["num_ws"])
    assert G.mapping.w_avg.shape == (G.w_dim,)
    with torch.no_grad():
        img = G(z[:1], None if c is None else c[:1], truncation_psi=0.7, noise_mode="const")
    close(img, ref["img_psi07"][:1])


@pytest.mark.parametrize("name", SNAPSHOTS)
def test_loader_takes_g_ema_not_g(name):
    """The snapshots hold a G deliberately different from G_ema."""
    from rmmv_gan.models import read_snapshot

    data = read_snapshot(golden_dir() / f"{name}.pkl")
    spec = read_network_specs(golden_dir() / f"{name}.pkl")["G"]
    g_ema_w = data["G_ema"].state["_modules"]["mapping"].state["_modules"]["fc0"].state["_parameters"]["weight"]
    g_w = data["G"].state["_modules"]["mapping"].state["_modules"]["fc0"].state["_parameters"]["weight"]
    assert not torch.equal(g_ema_w, g_w)
    assert torch.equal(spec.state["mapping.fc0.weight"], g_ema_w)
