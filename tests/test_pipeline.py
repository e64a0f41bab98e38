"""The character pipeline and `rmmv-gan export`, on a starter pack made from the golden
pickles (their images are noise; the plumbing is real)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from rmmv_gan.cli import main
from rmmv_gan.latent import mix
from rmmv_gan.packs import open_pack
from rmmv_gan.pipeline import STAGES, CharacterRequest, Cancelled, RequestError, make_character, make_characters
from rmmv_gan.sheets import SheetLayout, clean_sheet, native_to_character_sheet



def test_character_has_mv_sized_sheets_and_metadata(opened):
    c = make_character(opened, CharacterRequest(archetype="hero", seed=5, name="Ann"))
    assert c.walk_sheet.shape == (192, 144, 4) and c.face_sheet.shape == (288, 576, 4)
    assert set(np.unique(c.walk_sheet[..., 3])) <= {0, 255}
    m = c.metadata
    assert (m["seed"], m["psi"], m["archetype"], m["name"], m["emotions"]) == (5, 0.6, "hero", "Ann", ["neutral", "happy"])
    assert len(m["pack_hash"]) == 64 and set(m["timings"]) == set(STAGES)


def test_archetype_and_emotion_layers_are_mixed_in(opened):
    c = make_character(opened, CharacterRequest(archetype="hero", seed=5))
    hero_s, hero_f = opened.presets[("sprite", "hero")], opened.presets[("face", "hero")]
    assert np.allclose(c.sprite_w[[8, 9]], hero_s[[8, 9]]) and not np.allclose(c.sprite_w[7], hero_s[7])
    assert np.allclose(c.face_w[[0, 2]], hero_f[[0, 2]])
    assert np.allclose(c.emotion_ws[0], c.face_w)  # neutral is the identity
    assert np.allclose(c.emotion_ws[1], mix(c.face_w, opened.presets[("face", "smile")], [6]))


def test_full_strength_gives_the_preset_character_and_is_recorded(opened):
    c = make_character(opened, CharacterRequest(archetype="hero", seed=5, strength=1))
    assert np.allclose(c.sprite_w, opened.presets[("sprite", "hero")])
    assert np.allclose(c.face_w, opened.presets[("face", "hero")])
    assert c.metadata["strength"] == 1.0
    assert make_character(opened, CharacterRequest(archetype="hero", seed=5)).metadata["strength"] == 0.0


def test_an_archetype_with_traits_draws_the_seeds_own_z_with_the_traits_set(pack_dir, tmp_path):
    import shutil

    import torch

    from rmmv_gan.latent import to_uint8, z_from_seeds

    root = tmp_path / "pack"
    shutil.copytree(pack_dir, root)
    manifest = json.loads((root / "pack.json").read_text())
    every = list(range(open_pack(root).sprite.num_ws))
    manifest["archetypes"]["typed"] = {"psi": 0.8, "sprite": {"preset": "hero", "layers": every, "mode": "offset",
                                                              "traits": {"0": 2.5, "3": -1.0}}}
    (root / "pack.json").write_text(json.dumps(manifest))
    opened = open_pack(root)
    c = make_character(opened, CharacterRequest(archetype="typed", seed=5))
    z = z_from_seeds([5], opened.sprite.z_dim)
    z[0, 0], z[0, 3] = 2.5, -1.0
    with torch.no_grad():
        drawn = to_uint8(opened.sprite(z, None, truncation_psi=0.8, noise_mode="const"))[0, ..., :3]
    assert np.array_equal(c.sprite_native, drawn)
    plain = make_character(opened, CharacterRequest(archetype="hero", seed=5, psi=0.8))
    assert not np.array_equal(plain.sprite_native, drawn)


def test_projection_psi_pulls_the_projected_face_toward_the_average(pack_dir, tmp_path):
    import dataclasses

    plain = make_character(open_pack(pack_dir), CharacterRequest(archetype="hero", seed=5))
    opened = open_pack(pack_dir)
    opened.pack = dataclasses.replace(opened.pack, projection_psi=0.0)
    pulled = make_character(opened, CharacterRequest(archetype="hero", seed=5))
    w_avg = opened.face.mapping.w_avg
    others = [i for i in range(opened.face.num_ws) if i not in (0, 2)]  # not the archetype's layers
    assert np.allclose(pulled.face_w[others], w_avg) and not np.allclose(plain.face_w[others], w_avg)
    assert np.allclose(pulled.face_w[[0, 2]], plain.face_w[[0, 2]])  # the archetype's layers still mixed in


def test_the_face_cells_follow_the_emotions(opened):
    c = make_character(opened, CharacterRequest(seed=5))
    cells = [c.face_sheet[r * 144 : (r + 1) * 144, k * 144 : (k + 1) * 144] for r in range(2) for k in range(4)]
    assert not np.array_equal(cells[0], cells[1])  # neutral vs happy
    assert cells[2][..., 3].max() == 0  # faceIndex 2-7 are empty: the pack has two emotions


def test_same_request_same_pixels_other_seed_other_character(opened):
    a = make_character(opened, CharacterRequest(seed=21))
    b = make_character(opened, CharacterRequest(seed=21))
    c = make_character(opened, CharacterRequest(seed=22))
    assert np.array_equal(a.walk_sheet, b.walk_sheet) and np.array_equal(a.face_sheet, b.face_sheet)
    assert not np.array_equal(a.walk_sheet, c.walk_sheet)


def test_batch_equals_one_at_a_time(opened):
    reqs = [CharacterRequest(seed=s) for s in (31, 32)]
    batch = make_characters(opened, reqs)
    for r, c in zip(reqs, batch):
        assert np.array_equal(c.face_sheet, make_character(opened, r).face_sheet)


def test_progress_reaches_every_stage_and_cancel_stops(opened):
    seen = []
    make_character(opened, CharacterRequest(seed=1), progress=lambda s, f: seen.append(s))
    assert set(seen) == set(STAGES) - {"palette"}  # the starter pack's sprite.palette is off
    with pytest.raises(Cancelled):
        make_character(opened, CharacterRequest(seed=1), cancel=lambda: True)


def test_palette_off_leaves_the_walk_sheet_as_the_cleanup_made_it(opened):
    pack = opened.pack
    assert pack.palette is None
    c = make_character(opened, CharacterRequest(seed=5, steps=1))
    cleaned = clean_sheet(c.sprite_native, pack.layout, background=pack.sprite_background)
    assert np.array_equal(c.walk_sheet, native_to_character_sheet(cleaned, pack.layout, pack.frame_size))


def test_palette_on_redraws_the_walk_sheet_in_its_own_timed_stage(pack_dir):
    import dataclasses

    opened = open_pack(pack_dir)
    # 8-px frames scale to 48 by a whole factor, so the scaled sheet keeps the palette.
    opened.pack = dataclasses.replace(opened.pack, palette=(4, 8), layout=SheetLayout(8, 8))
    seen = []
    c = make_character(opened, CharacterRequest(seed=5, steps=1), progress=lambda s, f: seen.append(s))
    assert "palette" in seen and c.metadata["timings"]["palette"] > 0
    opaque = c.walk_sheet[..., 3] > 0
    assert opaque.any() and len(np.unique(c.walk_sheet[opaque][:, :3], axis=0)) <= 8


@pytest.mark.parametrize("request_,field", [
    (CharacterRequest(archetype="knight"), "archetype"), (CharacterRequest(psi=2.5), "psi"),
    (CharacterRequest(psi=True), "psi"), (CharacterRequest(psi="0.5"), "psi"), (CharacterRequest(seed=-1), "seed"),
    (CharacterRequest(seed=2**32), "seed"), (CharacterRequest(steps=0), "steps"), (CharacterRequest(steps=5001), "steps"),
    (CharacterRequest(name="../x"), "name"), (CharacterRequest(name="CON"), "name"),
    (CharacterRequest(emotions=["furious"]), "emotions"), (CharacterRequest(strength=1.5), "strength"),
    (CharacterRequest(strength=True), "strength"), (CharacterRequest(strength=float("nan")), "strength"),
])
def test_bad_requests_name_the_field(opened, request_, field):
    with pytest.raises(RequestError, match=f"^{field}"):
        make_character(opened, request_)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_export_writes_the_game_files(pack_dir, game):
    result = run("export", "--project", game, "--pack", pack_dir, "--seed", 7, "--name", "Bob", "--preview")
    assert result.exit_code == 0, result.output
    sheet = np.asarray(Image.open(game / "img" / "characters" / "$Bob.png"))
    faces = np.asarray(Image.open(game / "img" / "faces" / "Bob.png"))
    assert sheet.shape == (192, 144, 4) and faces.shape == (288, 576, 4)
    meta = json.loads((game / "rmmv_gan" / "characters" / "Bob.json").read_text())
    assert meta["seed"] == 7 and meta["files"]["character"] == "img/characters/$Bob.png"
    assert Image.open(game / "rmmv_gan" / "characters" / "Bob.gif").n_frames > 1


def test_export_is_reproducible_and_records_a_random_seed(pack_dir, tmp_path):
    run("export", "--out", tmp_path / "a", "--pack", pack_dir, "--seed", 3, "--name", "X")
    run("export", "--out", tmp_path / "b", "--pack", pack_dir, "--seed", 3, "--name", "X")
    a, b = (np.asarray(Image.open(tmp_path / d / "img" / "characters" / "$X.png")) for d in "ab")
    assert np.array_equal(a, b)
    result = run("export", "--out", tmp_path / "c", "--pack", pack_dir, "--name", "R")
    seed = json.loads((tmp_path / "c" / "rmmv_gan" / "characters" / "R.json").read_text())["seed"]
    assert isinstance(seed, int) and f"seed {seed}" in result.output


def test_export_strength_reaches_the_character_and_its_metadata(pack_dir, tmp_path):
    run("export", "--out", tmp_path, "--pack", pack_dir, "--archetype", "hero", "--seed", 3, "--strength", 1,
        "--name", "Full")
    assert json.loads((tmp_path / "rmmv_gan" / "characters" / "Full.json").read_text())["strength"] == 1.0
    run("export", "--out", tmp_path, "--pack", pack_dir, "--archetype", "hero", "--seed", 4, "--strength", 1,
        "--name", "Other")
    a, b = (np.asarray(Image.open(tmp_path / "img" / "characters" / f"${n}.png")) for n in ("Full", "Other"))
    assert np.array_equal(a, b)  # full strength: the preset's character whatever the seed


def test_export_count_and_combined_sheets(pack_dir, tmp_path):
    result = run("export", "--out", tmp_path, "--pack", pack_dir, "--seed", 40, "--count", 3, "--name", "Guard",
                 "--combined")
    assert result.exit_code == 0, result.output
    chars = tmp_path / "img" / "characters"
    assert sorted(p.name for p in chars.iterdir()) == ["$Guard_1.png", "$Guard_2.png", "$Guard_3.png", "Guard_set.png"]
    eight = np.asarray(Image.open(chars / "Guard_set.png"))
    single = np.asarray(Image.open(chars / "$Guard_2.png"))
    assert eight.shape == (384, 576, 4) and np.array_equal(eight[:192, 144:288], single)
    assert np.asarray(Image.open(tmp_path / "img" / "faces" / "Guard_set.png")).shape == (288, 576, 4)


def test_a_combined_set_whose_face_sheet_cannot_be_written_leaves_no_walk_sheet(pack_dir, tmp_path):
    faces = tmp_path / "img" / "faces"
    (faces / "Guard_set.png").mkdir(parents=True)  # the face sheet's place is taken by a folder
    (faces / "Guard_set.png" / "keep.txt").write_text("x")
    result = run("export", "--out", tmp_path, "--pack", pack_dir, "--seed", 40, "--count", 2, "--name", "Guard",
                 "--combined", "--overwrite")
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines()[-1].startswith("Error")
    assert not (tmp_path / "img" / "characters" / "Guard_set.png").exists()


@pytest.mark.parametrize("args,words", [
    (["--archetype", "knight"], ["archetype"]), (["--psi", "3"], ["psi"]), (["--psi", "abc"], ["--psi"]),
    (["--seed", "-4"], ["seed"]), (["--name", "../evil"], ["name"]), (["--name", "a/b"], ["name"]),
    (["--emotions", "neutral,furious"], ["furious"]), (["--steps", "0"], ["steps"]),
    (["--strength", "1.5"], ["strength"]), (["--strength", "lots"], ["--strength"]),
])
def test_bad_export_requests_are_one_line_and_write_nothing(pack_dir, game, args, words):
    before = sorted(p.relative_to(game) for p in game.rglob("*"))
    result = run("export", "--project", game, "--pack", pack_dir, *args)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error") and all(w in lines[0] for w in words), result.output
    assert sorted(p.relative_to(game) for p in game.rglob("*")) == before


def test_export_refuses_a_folder_that_is_not_a_game(pack_dir, tmp_path):
    result = run("export", "--project", tmp_path, "--pack", pack_dir)
    assert result.exit_code == 1 and "js/rpg_core.js" in result.output
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_to_overwrite_unless_asked(pack_dir, game):
    assert run("export", "--project", game, "--pack", pack_dir, "--seed", 1, "--name", "Cid").exit_code == 0
    first = (game / "img" / "faces" / "Cid.png").read_bytes()
    result = run("export", "--project", game, "--pack", pack_dir, "--seed", 2, "--name", "Cid")
    assert result.exit_code == 1 and "already exists" in result.output
    assert (game / "img" / "faces" / "Cid.png").read_bytes() == first
    assert run("export", "--project", game, "--pack", pack_dir, "--seed", 2, "--name", "Cid", "--overwrite").exit_code == 0
    assert (game / "img" / "faces" / "Cid.png").read_bytes() != first
