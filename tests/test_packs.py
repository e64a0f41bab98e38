"""Pack manifests: a starter pack (of networks the tests make) loads; every broken field is named."""

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from rmmv_gan.cli import main
from rmmv_gan.latent import load_w
from rmmv_gan.packs import PackError, add_preset, init_pack, load_pack, open_pack



@pytest.fixture(scope="module")
def starter(tmp_path_factory, starter_snapshot, starter_model):
    root = tmp_path_factory.mktemp("packs") / "starter"
    init_pack(root, starter_snapshot, starter_model)
    add_preset(root, "sprite", "hero", seed=3, psi=0.7)
    add_preset(root, "face", "smile", seed=5)
    return root


@pytest.fixture
def pack_copy(starter, tmp_path):
    root = tmp_path / "pack"
    shutil.copytree(starter, root)
    return root


def edit(root, change):
    manifest = json.loads((root / "pack.json").read_text())
    change(manifest)
    (root / "pack.json").write_text(json.dumps(manifest))


def test_starter_pack_opens_and_checks(starter):
    opened = open_pack(starter)
    assert opened.sprite.num_ws == 16 and opened.face.num_ws == 16
    assert list(opened.pack.archetypes) == ["default"] and [e.name for e in opened.pack.emotions] == ["neutral"]
    assert len(opened.content_hash) == 64


def test_models_are_converted_so_pickles_are_not_read_again(starter):
    assert (starter / "sprite.safetensors").read_bytes()[8:9] == b"{"
    assert not list(starter.glob("*.pkl"))


def test_init_refuses_to_overwrite_a_pack(starter, starter_snapshot, starter_model):
    with pytest.raises(PackError, match="already exists"):
        init_pack(starter, starter_snapshot, starter_model)


def test_presets_resolve_and_mix_layers_by_group_name(pack_copy):
    edit(pack_copy, lambda m: m["archetypes"].update(
        hero={"psi": 0.6, "sprite": {"preset": "hero", "layers": "fine"}, "face": {"preset": "smile", "layers": [0, 2]}}))
    opened = open_pack(pack_copy)
    hero = opened.pack.archetypes["hero"]
    assert hero.sprite.layers == list(range(10, 16)) and hero.face.layers == [0, 2] and hero.psi == 0.6
    assert opened.presets[("sprite", "hero")].shape == (16, 64)


def test_an_archetype_reads_its_strength_and_mix_mode(pack_copy):
    edit(pack_copy, lambda m: m["archetypes"].update(
        hero={"strength": 0.3, "sprite": {"preset": "hero", "layers": "fine", "mode": "offset"}}))
    hero = load_pack(pack_copy).archetypes["hero"]
    assert (hero.strength, hero.sprite.mode, hero.face.mode) == (0.3, "offset", "replace")
    assert load_pack(pack_copy).archetypes["default"].strength == 0.0  # the article's mix, unchanged


def test_an_archetype_reads_its_latent_traits(pack_copy):
    edit(pack_copy, lambda m: m["archetypes"].update(
        hero={"sprite": {"preset": "hero", "layers": "fine", "traits": {"3": -1.5, "0": 2}, "traits_weight": 0.5}}))
    hero = load_pack(pack_copy).archetypes["hero"]
    assert hero.sprite.traits == {3: -1.5, 0: 2.0} and hero.sprite.traits_weight == 0.5
    assert load_pack(pack_copy).archetypes["default"].sprite.traits == {}


def test_a_trait_beyond_the_sprite_models_latent_is_named(pack_copy):
    z_dim = open_pack(pack_copy).sprite.z_dim
    edit(pack_copy, lambda m: m["archetypes"]["default"].update(
        sprite={"preset": "hero", "layers": [1], "traits": {str(z_dim): 1.0}}))
    with pytest.raises(PackError, match=rf"^archetypes.default.sprite.traits: component {z_dim} is beyond"):
        open_pack(pack_copy)


@pytest.mark.parametrize("change,field", [
    (lambda m: m["sprite"].update(file="missing.safetensors"), "sprite.file"),
    (lambda m: m["archetypes"]["default"].update(face={"preset": "nobody", "layers": [1]}), "archetypes.default.face.preset"),
    (lambda m: m["archetypes"]["default"].update(psi=3), "archetypes.default.psi"),
    (lambda m: m["archetypes"]["default"].update(strength=1.5), "archetypes.default.strength"),
    (lambda m: m["archetypes"]["default"].update(strength="0.5"), "archetypes.default.strength"),
    (lambda m: m["archetypes"]["default"].update(sprite={"preset": "hero", "layers": [1], "mode": "add"}),
     "archetypes.default.sprite.mode"),
    (lambda m: m["archetypes"]["default"].update(sprite={"preset": "hero", "layers": "hair"}), "archetypes.default.sprite.layers"),
    (lambda m: m["face"].update(head_box=[0, 0, 50, 50]), "face.head_box"),
    (lambda m: m.update(emotions=[]), "emotions"),
    (lambda m: m.update(emotions=[{"name": "a"}, {"name": "a"}]), "emotions[1].name"),
    (lambda m: m["projection"].update(steps=0), "projection.steps"),
    (lambda m: m["projection"].update(loss="lpips"), "projection.loss"),
    (lambda m: m["projection"].update(psi=1.5), "projection.psi"),
    (lambda m: m["projection"].update(psi="0.7"), "projection.psi"),
    (lambda m: m.update(default_archetype="villain"), "default_archetype"),
    (lambda m: m["sprite"]["layout"].update(colums=3), "sprite.layout"),
    (lambda m: m.pop("face"), "face"),
    (lambda m: m["sprite"].update(palette="on"), "sprite.palette"),
    (lambda m: m["sprite"].update(palette=16), "sprite.palette"),
    (lambda m: m["sprite"].update(palette=[24, 12]), "sprite.palette"),
    (lambda m: m["sprite"].update(palette=[1, 12]), "sprite.palette"),
    (lambda m: m["sprite"].update(palette=[12, 300]), "sprite.palette"),
    (lambda m: m["sprite"].update(palette=[12.5, 24]), "sprite.palette"),
    (lambda m: m["sprite"].update(palette=[True, 24]), "sprite.palette"),
    # issue 16, item 11: `$` matched before a final newline
    (lambda m: m["archetypes"].update({"villain\n": {"psi": 0.7}}), "archetypes"),
    (lambda m: m["face"]["layer_groups"].update({"colours\n": [1]}), "face.layer_groups"),
    (lambda m: m["archetypes"]["default"].update(face={"preset": "heroine\n", "layers": [1]}),
     "archetypes.default.face.preset"),
    # latent traits: sprite mixes only, component indices, finite bounded values
    (lambda m: m["archetypes"]["default"].update(sprite={"preset": "hero", "layers": [1], "traits": {"x": 1.0}}),
     "archetypes.default.sprite.traits"),
    (lambda m: m["archetypes"]["default"].update(sprite={"preset": "hero", "layers": [1], "traits": {"-1": 1.0}}),
     "archetypes.default.sprite.traits"),
    (lambda m: m["archetypes"]["default"].update(sprite={"preset": "hero", "layers": [1], "traits": {"\u0663": 1.0}}),
     "archetypes.default.sprite.traits"),
    (lambda m: m["archetypes"]["default"].update(sprite={"preset": "hero", "layers": [1], "traits": {"2": 9.0}}),
     "archetypes.default.sprite.traits.2"),
    (lambda m: m["archetypes"]["default"].update(sprite={"preset": "hero", "layers": [1], "traits": {"2": "1"}}),
     "archetypes.default.sprite.traits.2"),
    (lambda m: m["archetypes"]["default"].update(sprite={"preset": "hero", "layers": [1], "traits": [1.0]}),
     "archetypes.default.sprite.traits"),
    (lambda m: m["archetypes"]["default"].update(sprite={"preset": "hero", "layers": [1], "traits_weight": 1.5}),
     "archetypes.default.sprite.traits_weight"),
    (lambda m: m["archetypes"]["default"].update(sprite={"layers": [], "traits": {"2": 1.0}}),
     "archetypes.default.sprite.preset"),
    (lambda m: m["archetypes"]["default"].update(face={"preset": "smile", "layers": [1], "traits": {"2": 1.0}}),
     "archetypes.default.face.traits"),
    # item 12: sizes that gave tracebacks or asked for terabytes
    (lambda m: m["sprite"].update(frame_size=0), "sprite.frame_size"),
    (lambda m: m["sprite"].update(frame_size=-48), "sprite.frame_size"),
    (lambda m: m["sprite"].update(frame_size=10**6), "sprite.frame_size"),
    (lambda m: m["face"].update(face_size=0), "face.face_size"),
    (lambda m: m["face"].update(face_size=-144), "face.face_size"),
    (lambda m: m["face"].update(face_size=10**6), "face.face_size"),
])
def test_broken_fields_are_named(pack_copy, change, field):
    edit(pack_copy, change)
    with pytest.raises(PackError) as err:
        load_pack(pack_copy)
    assert str(err.value).startswith(field), str(err.value)


@pytest.mark.parametrize("value,parsed", [([12, 24], (12, 24)), ([16, 16], (16, 16)), ("off", None)])
def test_sprite_palette_is_a_colour_range_or_off(pack_copy, value, parsed):
    edit(pack_copy, lambda m: m["sprite"].update(palette=value))
    assert load_pack(pack_copy).palette == parsed


def test_sprite_palette_is_off_when_absent(starter):
    assert "palette" not in json.loads((starter / "pack.json").read_text())["sprite"]
    assert load_pack(starter).palette is None


def test_layer_beyond_num_ws_is_named_with_the_range(pack_copy):
    edit(pack_copy, lambda m: m["archetypes"]["default"].update(sprite={"preset": "hero", "layers": [3, 16]}))
    with pytest.raises(PackError, match=r"^archetypes\.default\.sprite\.layers: layer 16 .* 16 layers \(0-15\)"):
        open_pack(pack_copy)


def test_layer_group_beyond_num_ws_is_named(pack_copy):
    edit(pack_copy, lambda m: m["face"]["layer_groups"].update(eyes=[20]))
    with pytest.raises(PackError, match=r"^face\.layer_groups\.eyes: layer 20"):
        open_pack(pack_copy)


def test_preset_of_the_wrong_shape_is_named_with_both_shapes(pack_copy):
    np.save(pack_copy / "presets" / "face" / "smile.npy", np.zeros((8, 64), np.float32))
    edit(pack_copy, lambda m: m["archetypes"]["default"].update(face={"preset": "smile", "layers": [1]}))
    with pytest.raises(PackError, match=r"^archetypes\.default\.face\.preset: .*\[8, 64\].*\[16, 64\]"):
        open_pack(pack_copy)


def test_unknown_emotion_names_are_refused(starter):
    pack = load_pack(starter)
    assert [e.name for e in pack.select_emotions(["neutral"])] == ["neutral"]
    with pytest.raises(PackError, match="unknown emotion 'furious'.*neutral"):
        pack.select_emotions(["neutral", "furious"])


def test_preset_from_a_w_file_and_from_an_image(pack_copy, tmp_path):
    from PIL import Image

    w = load_w(pack_copy / "presets" / "sprite" / "hero.npy", 16, 64)
    np.save(tmp_path / "w.npy", w.numpy())
    path = add_preset(pack_copy, "sprite", "copy", w_file=tmp_path / "w.npy")
    assert np.array_equal(np.load(path), w.numpy())
    Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(tmp_path / "face.png")
    path = add_preset(pack_copy, "face", "grey", image=tmp_path / "face.png", steps=3)
    assert np.load(path).shape == (16, 64)


def test_cli_pack_init_check_and_preset_add(tmp_path, starter_snapshot, starter_model):
    root = tmp_path / "mine"
    run = lambda *a: CliRunner().invoke(main, [str(x) for x in a])
    result = run("pack", "init", root, "--sprite", starter_snapshot, "--face", starter_model)
    assert result.exit_code == 0, result.output
    assert run("pack", "check", root).exit_code == 0
    result = run("preset", "add", "--pack", root, "--name", "villain", "--model", "sprite", "--seed", 9)
    assert result.exit_code == 0 and (root / "presets" / "sprite" / "villain.npy").is_file()
    result = run("preset", "add", "--pack", root, "--name", "../x", "--model", "sprite", "--seed", 9)
    assert result.exit_code == 1 and "--name" in result.output and not (tmp_path / "x.npy").exists()
    result = run("pack", "init", tmp_path / "bad", "--sprite", tmp_path / "nothing.pkl", "--face", starter_model)
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()


def test_failed_init_leaves_nothing_behind(tmp_path, starter_snapshot):
    with pytest.raises(PackError, match="^--face"):
        init_pack(tmp_path / "half", starter_snapshot, tmp_path / "missing.pkl")
    assert not (tmp_path / "half").exists()


def test_a_nan_preset_is_refused_by_pack_check(pack_copy):
    np.save(pack_copy / "presets" / "face" / "smile.npy", np.full((16, 64), np.nan, np.float32))
    edit(pack_copy, lambda m: m["archetypes"]["default"].update(face={"preset": "smile", "layers": [1]}))
    result = CliRunner().invoke(main, ["pack", "check", str(pack_copy)])
    assert result.exit_code == 1 and "archetypes.default.face.preset" in result.output and "NaN" in result.output


def test_preset_add_refuses_psi_nan_through_the_api(pack_copy):
    with pytest.raises(PackError, match="^--psi"):
        add_preset(pack_copy, "sprite", "ghost", seed=1, psi=float("nan"))
    assert not (pack_copy / "presets" / "sprite" / "ghost.npy").exists()


def _link_or_skip(link, target):
    try:
        link.symlink_to(target)
    except (OSError, NotImplementedError) as exc:  # Windows without the right to make links
        pytest.skip(f"cannot make a symbolic link here ({exc})")


def test_a_model_file_linking_outside_the_pack_is_refused(pack_copy, tmp_path):
    outside = tmp_path / "elsewhere.safetensors"
    (pack_copy / "sprite.safetensors").replace(outside)
    _link_or_skip(pack_copy / "sprite.safetensors", outside)
    with pytest.raises(PackError, match="^sprite.file: .*outside the pack"):
        load_pack(pack_copy)


def test_a_preset_linking_outside_the_pack_is_refused(pack_copy, tmp_path):
    outside = tmp_path / "secret.npy"
    (pack_copy / "presets" / "face" / "smile.npy").replace(outside)
    _link_or_skip(pack_copy / "presets" / "face" / "smile.npy", outside)
    edit(pack_copy, lambda m: m["archetypes"]["default"].update(face={"preset": "smile", "layers": [1]}))
    with pytest.raises(PackError, match="^archetypes.default.face.preset: .*outside the pack"):
        load_pack(pack_copy)


def test_a_link_inside_the_pack_is_fine(pack_copy):
    (pack_copy / "sprite.safetensors").replace(pack_copy / "real-sprite.safetensors")
    _link_or_skip(pack_copy / "sprite.safetensors", pack_copy / "real-sprite.safetensors")
    assert load_pack(pack_copy).model_path("sprite").is_file()


def test_opening_the_default_pack_imports_no_compiler():
    """Start-up cost: building a network on the meta device for the architecture check must
    not reach PyTorch's Python decompositions and references, whose first use imports
    torch._dynamo (1.3 s of every `export` on a 2-core machine) or the meta registrations
    with sympy (0.37 s)."""
    import subprocess
    import sys

    code = ("import sys; from rmmv_gan.packs import open_pack; open_pack(None); "
            "print('torch._dynamo' in sys.modules, 'sympy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False False"
