"""The fast paths compute the same function as the official op sequence, for configurations
other than those of the reference snapshots (sizes, channel counts, R/T, labels)."""

import numpy as np
import pytest
import torch

from rmmv_gan.models import new_network
from rmmv_gan.nets.ops import FilteredLReLUPlan, conv3x3_winograd, filtered_lrelu_ref
from rmmv_gan.nets.stylegan3 import design_lowpass_filter


def max_rel_error(a, b):
    return float((a - b).abs().max() / b.abs().max())


def randomize_buffers(G):
    """Official snapshots have moved w_avg and magnitude_ema; do the same to random nets."""
    g = torch.Generator().manual_seed(1)
    for name, buf in G.named_buffers():
        if name.endswith("w_avg"):
            buf.copy_(torch.randn(buf.shape, generator=g) * 0.5)
        if name.endswith("magnitude_ema"):
            buf.fill_(float(torch.rand([], generator=g)) * 3 + 0.2)
        if name.endswith("noise_strength"):
            buf.fill_(0.1)
    for name, p in G.named_parameters():
        if name.endswith("noise_strength"):
            p.data.fill_(0.1)


def run_both_impls(G, ws):
    out = {}
    for impl in ("ref", "fast"):
        for m in G.modules():
            if hasattr(m, "impl"):
                m.impl = impl
        with torch.no_grad():
            out[impl] = G.synthesis(ws, noise_mode="const")
    return out["fast"], out["ref"]


@pytest.mark.parametrize("config", [
    dict(img_resolution=16, channel_base=1024, channel_max=64),
    dict(img_resolution=64, channel_base=2048, channel_max=64),
    dict(img_resolution=64, channel_base=2048, channel_max=64, conv_kernel=1, use_radial_filters=True),
    dict(img_resolution=32, channel_base=2048, channel_max=32, num_layers=10, num_critical=3, margin_size=6),
    dict(img_resolution=32, channel_base=1024, channel_max=32, c_dim=5, img_channels=4),
], ids=["T16", "T64", "R64", "T32-10layers", "T32-cond-rgba"])
def test_stylegan3_fast_path_matches_reference_ops(config):
    torch.manual_seed(0)
    kwargs = dict(z_dim=32, c_dim=0, w_dim=32, img_channels=3) | config
    G = new_network("G", "stylegan3", **kwargs).eval()
    randomize_buffers(G)
    z = torch.randn(3, 32)
    c = torch.eye(kwargs["c_dim"])[[0, 1, 2]] if kwargs["c_dim"] else None
    ws = G.mapping(z, c, truncation_psi=0.8)
    fast, ref = run_both_impls(G, ws)
    assert fast.shape == (3, kwargs["img_channels"], config["img_resolution"], config["img_resolution"])
    assert max_rel_error(fast, ref) < 1e-4


@pytest.mark.parametrize("n, c, o, h, w, padding, tile_elements", [
    (1, 8, 5, 17, 13, 2, 1 << 22),  # StyleGAN3's full padding, sizes not a multiple of the tile
    (2, 3, 4, 6, 9, 1, 1 << 22),
    (1, 16, 16, 23, 23, 0, 2000),  # tile rows in several slices
    (1, 4, 4, 3, 3, 0, 1 << 22),  # a single output pixel
])
def test_winograd_convolution_matches_the_direct_one(n, c, o, h, w, padding, tile_elements):
    torch.manual_seed(0)
    x, weight = torch.randn(n, c, h, w), torch.randn(o, c, 3, 3)
    direct = torch.nn.functional.conv2d(x, weight, padding=padding)
    fast = conv3x3_winograd(x, weight, padding=padding, tile_elements=tile_elements)
    assert fast.shape == direct.shape
    assert max_rel_error(fast, direct) < 1e-5


@pytest.mark.parametrize("up,down,taps,radial", [(2, 2, 12, False), (4, 2, 24, False), (2, 2, 12, True),
                                                 (2, 1, 12, False), (1, 1, 1, False)])
def test_filtered_lrelu_plan_matches_reference(up, down, taps, radial):
    torch.manual_seed(0)
    fu = design_lowpass_filter(taps, cutoff=8, width=6, fs=32 * up) if taps > 1 else None
    fd = design_lowpass_filter(taps if down > 1 else 1, cutoff=8, width=6, fs=32 * up, radial=radial)
    padding = [taps - 1, taps - 2, taps - 3, taps] if taps > 1 else [0, 0, 0, 0]
    x = torch.randn(2, 3, 19, 21) * 4
    b = torch.randn(3)
    ref = filtered_lrelu_ref(x, fu, fd, b, up, down, padding, gain=np.sqrt(2), slope=0.2, clamp=3.0)
    fast = FilteredLReLUPlan(fu, fd, up, down, padding, [21, 19], np.sqrt(2), 0.2, 3.0)(x, b)
    assert fast.shape == ref.shape
    assert max_rel_error(fast, ref) < 1e-5


@pytest.mark.parametrize("n, c, o, h, w, padding, tile_elements", [
    (1, 8, 5, 17, 13, 2, 1 << 22),
    (2, 3, 4, 6, 9, 1, 1 << 22),
    (1, 16, 16, 23, 23, 0, 2000),  # tile rows in several slices: overlapping rows accumulate
])
def test_winograd_convolution_gradients_match_the_direct_ones(n, c, o, h, w, padding, tile_elements):
    torch.manual_seed(0)
    x = torch.randn(n, c, h, w, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(o, c, 3, 3, dtype=torch.float64, requires_grad=True)
    grad_out = torch.randn(n, o, h + 2 * padding - 2, w + 2 * padding - 2, dtype=torch.float64)
    direct = torch.autograd.grad(torch.nn.functional.conv2d(x, weight, padding=padding), (x, weight), grad_out)
    fast = torch.autograd.grad(conv3x3_winograd(x, weight, padding=padding, tile_elements=tile_elements),
                               (x, weight), grad_out)
    for f, d in zip(fast, direct):
        assert max_rel_error(f, d) < 1e-12


@pytest.mark.parametrize("up,down,taps,radial", [(2, 2, 12, False), (4, 2, 24, False), (2, 2, 12, True),
                                                 (4, 2, 24, True), (2, 1, 12, False)])
@pytest.mark.parametrize("chunk_elements,channel_multiple", [(1 << 22, 16), (20000, 1), (20000, 2)],
                         ids=["whole", "channel-slices", "even-channel-slices"])
def test_filtered_lrelu_plan_gradients_match_reference(up, down, taps, radial, chunk_elements, channel_multiple):
    """The hand-written backward pass equals autograd through the official op sequence, for
    every path of the plan, whole and in slices of several channels."""
    torch.manual_seed(0)
    fu = design_lowpass_filter(taps, cutoff=8, width=6, fs=32 * up)
    fd = design_lowpass_filter(taps if down > 1 else 1, cutoff=8, width=6, fs=32 * up, radial=radial)
    padding = [taps - 1, taps - 2, taps - 3, taps]
    x = (torch.randn(2, 8, 19, 21, dtype=torch.float64) * 4).requires_grad_(True)
    b = torch.randn(8, dtype=torch.float64, requires_grad=True)
    ref = filtered_lrelu_ref(x, fu, fd, b, up, down, padding, gain=np.sqrt(2), slope=0.2, clamp=3.0)
    plan = FilteredLReLUPlan(fu, fd, up, down, padding, [21, 19], np.sqrt(2), 0.2, 3.0)
    plan.chunk_elements, plan.channel_multiple = chunk_elements, channel_multiple
    grad_out = torch.randn(ref.shape, dtype=torch.float64)
    expected = torch.autograd.grad(ref, (x, b), grad_out)
    actual = torch.autograd.grad(plan(x, b), (x, b), grad_out)
    for a, e in zip(actual, expected):
        assert max_rel_error(a, e) < 1e-6  # the plan's filter tables are float32


# Paddings StyleGAN3 does not use: more than the filter before the input (the up stage's
# transposed convolution then needs zeros before the signal), much more after than before, and
# negative amounts (the official op crops).
ODD_PADDINGS = [(2, 2, [15, 0, 13, 2]), (4, 2, [0, 30, 1, 27]), (2, 2, [-3, 5, -1, 4]), (4, 2, [-6, -2, 29, -5])]


def odd_padding_case(up, down, padding):
    taps = 6 * up
    fu = design_lowpass_filter(taps, cutoff=8, width=6, fs=32 * up)
    fd = design_lowpass_filter(6 * down, cutoff=8, width=6, fs=32 * up)
    x = (torch.randn(1, 5, 19, 21, dtype=torch.float64) * 4).requires_grad_(True)
    b = torch.randn(5, dtype=torch.float64, requires_grad=True)
    ref = filtered_lrelu_ref(x, fu, fd, b, up, down, padding, gain=np.sqrt(2), slope=0.2, clamp=3.0)
    plan = FilteredLReLUPlan(fu, fd, up, down, padding, [21, 19], np.sqrt(2), 0.2, 3.0)
    return x, b, ref, plan


@pytest.mark.parametrize("up,down,padding", ODD_PADDINGS)
def test_filtered_lrelu_plan_matches_reference_for_any_padding(up, down, padding):
    torch.manual_seed(0)
    x, b, ref, plan = odd_padding_case(up, down, padding)
    with torch.no_grad():
        fast = plan(x, b)
    assert fast.shape == ref.shape
    assert max_rel_error(fast, ref.detach()) < 1e-6


@pytest.mark.parametrize("up,down,padding", ODD_PADDINGS)
def test_filtered_lrelu_plan_gradients_match_reference_for_any_padding(up, down, padding):
    torch.manual_seed(0)
    x, b, ref, plan = odd_padding_case(up, down, padding)
    grad_out = torch.randn(ref.shape, dtype=torch.float64)
    expected = torch.autograd.grad(ref, (x, b), grad_out)
    actual = torch.autograd.grad(plan(x, b), (x, b), grad_out)
    for a, e in zip(actual, expected):
        assert max_rel_error(a, e) < 1e-6


@pytest.mark.parametrize("config", [
    dict(img_resolution=16, channel_base=1024, channel_max=64),
    dict(img_resolution=32, channel_base=1024, channel_max=32, conv_kernel=1, use_radial_filters=True),
], ids=["T16", "R32"])
def test_stylegan3_gradients_match_reference_ops(config):
    """What projection differentiates: d(image)/d(w) of the fast path equals the official op
    sequence's under autograd."""
    torch.manual_seed(0)
    G = new_network("G", "stylegan3", z_dim=32, c_dim=0, w_dim=32, img_channels=3, **config).eval()
    G.requires_grad_(False)
    randomize_buffers(G)
    ws = G.mapping(torch.randn(1, 32), None).detach()
    grad_out = torch.randn(1, 3, config["img_resolution"], config["img_resolution"])
    grads = {}
    for impl in ("ref", "fast"):
        for m in G.modules():
            if hasattr(m, "impl"):
                m.impl = impl
        w = ws.clone().requires_grad_(True)
        grads[impl] = torch.autograd.grad(G.synthesis(w, noise_mode="const"), w, grad_out)[0]
    # (Rounding moves the leaky ReLUs' kinks: the reference's own gradient moves by 1.5e-4 when
    # w is scaled by 1 + 1e-6. The operations are checked tightly above.)
    assert max_rel_error(grads["fast"], grads["ref"]) < 1e-3


@pytest.mark.parametrize("config", [
    dict(img_resolution=64, channel_base=2048, channel_max=64, architecture="skip"),
    dict(img_resolution=32, channel_base=1024, channel_max=64, architecture="resnet", c_dim=4),
    dict(img_resolution=32, channel_base=1024, channel_max=64, architecture="orig", mapping_kwargs=dict(num_layers=3)),
], ids=["skip64", "resnet32-cond", "orig32"])
def test_stylegan2_fused_and_unfused_modulation_agree(config):
    """The fused modulation (grouped convolution) equals the scaled-activation form."""
    torch.manual_seed(0)
    kwargs = dict(z_dim=32, c_dim=0, w_dim=32, img_channels=3) | config
    G = new_network("G", "stylegan2", **kwargs).eval()
    randomize_buffers(G)
    c = torch.eye(kwargs["c_dim"])[[0, 1, 3]] if kwargs["c_dim"] else None
    ws = G.mapping(torch.randn(3, 32), c, truncation_psi=0.7)
    with torch.no_grad():
        batch = G.synthesis(ws, noise_mode="const", fused_modconv=False)
        single = torch.cat([G.synthesis(ws[i : i + 1], noise_mode="const", fused_modconv=True) for i in range(3)])
    assert batch.shape == (3, 3, config["img_resolution"], config["img_resolution"])
    assert max_rel_error(single, batch) < 1e-4


def test_stylegan2_non_square_canvas():
    """Models trained here may start from a 3 x 4 constant: a walk sheet's aspect ratio."""
    G = new_network("G", "stylegan2", z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
                    channel_base=256, channel_max=32, init_res=[4, 3]).eval()
    D = new_network("D", "stylegan2", c_dim=0, img_resolution=16, img_channels=3, channel_base=256,
                    channel_max=32, init_res=[4, 3]).eval()
    with torch.no_grad():
        img = G(torch.randn(2, 16), None)
        logits = D(img, None)
    assert img.shape == (2, 3, 16, 12)
    assert G.img_shape == (16, 12)
    assert logits.shape == (2, 1) and torch.isfinite(logits).all()


def test_noise_modes_differ_as_expected():
    torch.manual_seed(0)
    G = new_network("G", "stylegan2", z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
                    channel_base=256, channel_max=32).eval()
    randomize_buffers(G)
    ws = G.mapping(torch.randn(1, 16), None)
    with torch.no_grad():
        const1, const2 = (G.synthesis(ws, noise_mode="const") for _ in range(2))
        rand1, rand2 = (G.synthesis(ws, noise_mode="random") for _ in range(2))
        none = G.synthesis(ws, noise_mode="none")
    assert torch.equal(const1, const2)
    assert not torch.equal(rand1, rand2)
    assert not torch.equal(none, const1)


def test_stylegan3_gradients_flow_through_the_fast_path():
    """Projection differentiates the synthesis: the CPU fast path must stay differentiable."""
    torch.manual_seed(0)
    G = new_network("G", "stylegan3", z_dim=32, c_dim=0, w_dim=32, img_resolution=16, img_channels=3,
                    channel_base=1024, channel_max=64).eval()
    ws = G.mapping(torch.randn(1, 32), None).detach().requires_grad_(True)
    G.synthesis(ws, noise_mode="const").square().mean().backward()
    assert ws.grad is not None and torch.isfinite(ws.grad).all() and ws.grad.abs().sum() > 0
