"""Truncation, style mixing and w files, against the official outputs and formats."""

import numpy as np
import pytest
import torch

from rmmv_gan import load_generator
from rmmv_gan.latent import archetype_mix, load_w, map_seed, mix, parse_layers, resolve_w, save_w, truncate

from conftest import golden_dir


@pytest.fixture(scope="module", params=["sg2_c3_32", "sg3t_32"])
def golden(request):
    ref = dict(np.load(golden_dir() / f"{request.param}.npz"))
    return load_generator(golden_dir() / f"{request.param}.pkl"), ref


def close(a, ref):
    err = np.abs(a.detach().numpy() - ref).max()
    assert err <= 1e-3 * np.abs(ref).max(), err


def test_truncation_with_cutoff_matches_the_official_mapping(golden):
    G, ref = golden
    ws = truncate(torch.from_numpy(ref["ws_psi1"]), G.mapping.w_avg, psi=0.5, cutoff=4)
    close(ws, ref["ws_psi05_cutoff4"])


def test_truncation_of_all_layers_matches_the_official_mapping(golden):
    G, ref = golden
    close(truncate(torch.from_numpy(ref["ws_psi1"]), G.mapping.w_avg, psi=0.7), ref["ws_psi07"])


def test_style_mixing_matches_the_official_image(golden):
    G, ref = golden
    ws = torch.from_numpy(ref["ws_psi07"])
    mixed = mix(ws[0], ws[1], ref["mix_layers"].tolist())
    with torch.no_grad():
        close(G.synthesis(mixed[None], noise_mode="const"), ref["img_mix"])


def test_seed_maps_as_generate_does(golden):
    G, ref = golden
    cls = 0 if G.c_dim else None
    w = map_seed(G, 0, psi=0.7, class_idx=cls)
    close(w, ref["ws_psi07"][0])


def test_blend_interpolates_only_the_listed_layers():
    a, b = torch.zeros(8, 4), torch.ones(8, 4)
    out = mix(a, b, [2, 5], blend=0.25)
    assert torch.equal(out[2], torch.full((4,), 0.25)) and torch.equal(out[5], torch.full((4,), 0.25))
    assert out[[0, 1, 3, 4, 6, 7]].abs().sum() == 0


def test_per_layer_blend_weights():
    out = mix(torch.zeros(8, 4), torch.ones(8, 4), [1, 3], blend={1: 0.5, 3: 1.0})
    assert out[1, 0] == 0.5 and out[3, 0] == 1.0 and out[0, 0] == 0


def test_an_offset_archetype_shifts_its_layers_by_the_presets_difference_from_the_reference():
    base, preset, ref = torch.randn(6, 4), torch.randn(6, 4), torch.randn(4)
    out = archetype_mix(base, preset, [1, 2], offset_from=ref)
    assert torch.allclose(out[[1, 2]], base[[1, 2]] + preset[[1, 2]] - ref)
    assert torch.equal(out[[0, 3, 4, 5]], base[[0, 3, 4, 5]])
    assert torch.equal(archetype_mix(base, ref.expand(6, 4), [1, 2], offset_from=ref), base)  # an average type changes nothing


def test_archetype_strength_runs_from_the_type_alone_to_the_preset_character():
    base, preset = torch.randn(2, 6, 4), torch.randn(6, 4)
    typed = mix(base, preset[None].expand(2, 6, 4), [1, 2])
    assert torch.equal(archetype_mix(base, preset, [1, 2], strength=0), typed)
    assert torch.allclose(archetype_mix(base, preset, [1, 2], strength=1), preset.expand(2, 6, 4))
    assert torch.allclose(archetype_mix(base, preset, [1, 2], strength=0.25), typed.lerp(preset.expand(2, 6, 4), 0.25))


def test_official_projector_file_loads(tmp_path):
    """projected_w.npz: key 'w', shape [1, num_ws, w_dim], as the official projector saves it."""
    w = np.random.RandomState(0).randn(1, 16, 64).astype(np.float32)
    np.savez(tmp_path / "projected_w.npz", w=w)
    assert np.array_equal(load_w(tmp_path / "projected_w.npz", 16, 64).numpy(), w[0])


@pytest.mark.parametrize("shape", [(16, 64), (1, 16, 64), (64,), (1, 64)])
def test_npy_shapes_that_fit_load(tmp_path, shape):
    np.save(tmp_path / "w.npy", np.ones(shape, dtype=np.float32))
    assert load_w(tmp_path / "w.npy", 16, 64).shape == (16, 64)


def test_wrong_shape_is_refused_with_both_shapes(tmp_path):
    np.save(tmp_path / "w.npy", np.ones((14, 64), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\[14, 64\].*\[16, 64\]"):
        load_w(tmp_path / "w.npy", 16, 64)


def test_pickled_npy_is_refused(tmp_path):
    np.save(tmp_path / "w.npy", np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="not a readable"):
        load_w(tmp_path / "w.npy", 16, 64)


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_saved_w_round_trips(tmp_path, suffix):
    w = torch.randn(16, 64)
    save_w(tmp_path / f"w{suffix}", w)
    assert torch.equal(load_w(tmp_path / f"w{suffix}", 16, 64), w)
    if suffix == ".npz":
        assert np.load(tmp_path / "w.npz")["w"].shape == (1, 16, 64)


def test_layer_lists_are_checked_against_the_model():
    assert parse_layers("0-2,7", 8) == [0, 1, 2, 7]
    with pytest.raises(ValueError, match="out of range.*0-7"):
        parse_layers("8", 8)
    with pytest.raises(ValueError, match="bad layer list"):
        parse_layers("six", 8)


def test_a_w_source_is_a_file_or_a_seed(tmp_path, starter_model):
    G = load_generator(starter_model)
    cls = None
    save_w(tmp_path / "w.npy", torch.zeros(G.num_ws, G.w_dim))
    assert resolve_w(tmp_path / "w.npy", G).abs().sum() == 0
    assert torch.equal(resolve_w("3", G, psi=0.5, class_idx=cls), map_seed(G, 3, psi=0.5, class_idx=cls))


def test_archetype_mix_moves_the_listed_layers_toward_the_typed_character():
    base, preset, ref = torch.randn(6, 4), torch.randn(6, 4), torch.randn(6, 4)
    typed = torch.randn(6, 4)
    offset = archetype_mix(base, preset, [1, 2], offset_from=ref)
    full = archetype_mix(base, preset, [1, 2], offset_from=ref, typed=typed)
    assert torch.equal(full[[1, 2]], typed[[1, 2]])
    assert torch.equal(full[[0, 3, 4, 5]], base[[0, 3, 4, 5]])  # unlisted layers stay the seed's
    assert torch.equal(archetype_mix(base, preset, [1, 2], offset_from=ref, typed=typed, typed_weight=0), offset)
    half = archetype_mix(base, preset, [1, 2], offset_from=ref, typed=typed, typed_weight=0.5)
    assert torch.allclose(half[[1, 2]], offset[[1, 2]].lerp(typed[[1, 2]], 0.5))
    assert torch.allclose(archetype_mix(base, preset, [1, 2], 1.0, ref, typed), preset)  # strength 1: the preset
