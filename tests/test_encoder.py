"""The sprite-to-face encoder: its file format, its training on matched art, and the
pipeline's face step with and without it. Tiny networks built here, no reference files."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from rmmv_gan.cli import main
from rmmv_gan.encoder import EncoderFileError, SpriteFaceEncoder, load_encoder, save_encoder, sheet_tensor
from rmmv_gan.packs import open_pack
from rmmv_gan.pipeline import CharacterRequest, RequestError, face_w_from_sprite, make_character
from tiny_pack import make_tiny_pack, matched_game, native_sheet


@pytest.fixture(scope="module")
def tiny_pack(tmp_path_factory):
    """A pack of two tiny models: sprites 12 x 16 (4-px frames), faces 12 x 12."""
    return make_tiny_pack(tmp_path_factory.mktemp("tiny"))


def with_encoder(pack_dir, tmp_path, encoder):
    """A copy of the pack with this encoder named in its manifest."""
    import shutil

    dst = tmp_path / "with_encoder"
    shutil.copytree(pack_dir, dst)
    save_encoder(dst / "encoder.safetensors", encoder)
    manifest = json.loads((dst / "pack.json").read_text())
    manifest["face"]["encoder"] = "encoder.safetensors"
    manifest["projection"]["steps"] = 0
    (dst / "pack.json").write_text(json.dumps(manifest))
    return dst


def random_encoder(opened, seed=0):
    torch.manual_seed(seed)
    enc = SpriteFaceEncoder(opened.sprite.img_shape, opened.face.num_ws, opened.face.w_dim, channels=4, hidden=16)
    torch.nn.init.normal_(enc.out.weight, std=0.5)  # an answer that depends on the sheet
    return enc.eval()


# -- the network and its file --------------------------------------------------------------------

def test_an_untrained_encoder_answers_the_average_face():
    enc = SpriteFaceEncoder((16, 12), num_ws=5, w_dim=16, channels=4, hidden=16)
    enc.w_avg.fill_(0.25)
    ws = enc(torch.rand(2, 3, 16, 12) * 2 - 1)
    assert ws.shape == (2, 5, 16)
    assert torch.equal(ws, torch.full_like(ws, 0.25))


def test_the_encoder_reads_only_sheets_of_its_size():
    enc = SpriteFaceEncoder((16, 12), num_ws=5, w_dim=16, channels=4, hidden=16)
    with pytest.raises(ValueError, match="12 x 16"):
        enc(torch.zeros(1, 3, 32, 24))


def test_sheet_tensor_scales_sheets_to_the_encoders_size():
    sheet = np.zeros((32, 24, 3), np.uint8)
    sheet[:16] = 255
    x = sheet_tensor(sheet, (16, 12))
    assert x.shape == (1, 3, 16, 12)
    assert torch.equal(x[0, :, :8], torch.ones(3, 8, 12)) and torch.equal(x[0, :, 8:], -torch.ones(3, 8, 12))


def test_an_encoder_file_gives_back_the_same_answers(tmp_path):
    enc = SpriteFaceEncoder((16, 12), num_ws=5, w_dim=16, channels=4, hidden=16)
    torch.nn.init.normal_(enc.out.weight)
    x = torch.rand(3, 3, 16, 12) * 2 - 1
    save_encoder(tmp_path / "e.safetensors", enc, half=False)
    assert torch.equal(load_encoder(tmp_path / "e.safetensors")(x), enc(x))


def test_an_encoder_file_whose_tensors_do_not_fit_its_description_is_refused(tmp_path):
    from safetensors.torch import save_file

    enc = SpriteFaceEncoder((16, 12), num_ws=5, w_dim=16, channels=4, hidden=16)
    save_encoder(tmp_path / "e.safetensors", enc)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "e.safetensors"), "pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    tensors["out.weight"] = torch.zeros(3, 3, dtype=torch.float16)
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(EncoderFileError, match="out.weight"):
        load_encoder(tmp_path / "bad.safetensors")


def test_an_encoder_description_beyond_the_limits_is_refused_before_anything_is_built(tmp_path):
    from safetensors.torch import save_file

    desc = {"format": "rmmv-gan-encoder", "version": 1, "in_h": 16, "in_w": 12, "num_ws": 5, "w_dim": 16,
            "channels": 4, "hidden": 10**9}
    save_file({"x": torch.zeros(1)}, str(tmp_path / "huge.safetensors"), metadata={"rmmv-gan-encoder": json.dumps(desc)})
    with pytest.raises(EncoderFileError, match="hidden"):
        load_encoder(tmp_path / "huge.safetensors")


def test_a_file_that_is_not_an_encoder_is_refused(tmp_path):
    (tmp_path / "x.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(EncoderFileError, match="unreadable"):
        load_encoder(tmp_path / "x.safetensors")


# -- the pipeline's face step ----------------------------------------------------------------------

def test_with_an_encoder_and_no_steps_the_face_is_the_encoders_answer(tiny_pack, tmp_path):
    opened = open_pack(tiny_pack)
    enc = random_encoder(opened)
    opened_e = open_pack(with_encoder(tiny_pack, tmp_path, enc))
    sheet = native_sheet(opened_e, 3)
    w = face_w_from_sprite(opened_e, sheet, steps=0)
    assert torch.allclose(w, enc(sheet_tensor(sheet, enc.in_shape))[0], atol=1e-2)  # float16 file
    other = face_w_from_sprite(opened_e, native_sheet(opened_e, 4), steps=0)
    assert not torch.allclose(w, other)


def test_refinement_starts_from_the_encoders_answer(tiny_pack, tmp_path):
    opened_e = open_pack(with_encoder(tiny_pack, tmp_path, random_encoder(open_pack(tiny_pack))))
    sheet = native_sheet(opened_e, 3)
    start = face_w_from_sprite(opened_e, sheet, steps=0)
    refined = face_w_from_sprite(opened_e, sheet, steps=3)
    assert not torch.equal(start, refined)
    average = opened_e.face.mapping.w_avg
    assert (refined - start).norm() < (refined - average).norm()


def test_a_pack_without_an_encoder_needs_projection_steps(tiny_pack):
    opened = open_pack(tiny_pack)
    with pytest.raises(RequestError, match="steps"):
        CharacterRequest(seed=1, steps=0).resolved(opened.pack)
    assert face_w_from_sprite(opened, native_sheet(opened, 3), steps=2).shape == (opened.face.num_ws, opened.face.w_dim)


def test_characters_from_an_encoder_pack_record_no_projection_steps(tiny_pack, tmp_path):
    opened_e = open_pack(with_encoder(tiny_pack, tmp_path, random_encoder(open_pack(tiny_pack))))
    c = make_character(opened_e, CharacterRequest(seed=5))
    assert c.metadata["steps"] == 0 and set(c.metadata["timings"]) >= {"face"}
    assert c.face_sheet.shape == (288, 576, 4)


# -- faces on transparency -------------------------------------------------------------------------

def test_face_sheets_are_busts_on_transparency():
    from rmmv_gan import procedural
    from rmmv_gan.face_cutout import cut_out_bust

    face = procedural.portrait(3)
    bust = cut_out_bust(face, (255, 255, 255))
    assert set(np.unique(bust[..., 3])) == {0, 255}
    assert bust[0, 0, 3] == 0 and bust[0, -1, 3] == 0  # the background around the head
    assert bust[36, 36, 3] == 255 and bust[-1, 36, 3] == 255  # the face, the shoulders at the bottom
    # The eyes' whites are enclosed by the face: they stay.
    whites = (face[..., :3].min(axis=2) >= 240) & (bust[..., 3] == 255)
    assert whites.any()


def test_a_gap_of_background_enclosed_beside_the_neck_becomes_transparent():
    from rmmv_gan import procedural
    from rmmv_gan.face_cutout import cut_out_bust

    face = procedural.portrait(3).copy()
    # What the face model draws on some busts: a patch of the white background shut in between
    # the hair and the shoulder (8 x 10 px of 72 x 72), ringed by the hair's colour.
    face[48:60, 10:20] = face[50, 36]
    face[49:59, 11:19] = 255
    bust = cut_out_bust(face, (255, 255, 255))
    assert (bust[49:59, 11:19, 3] == 0).all()
    assert (bust[48, 10:20, 3] == 255).all()  # its ring stays
    whites = (face[..., :3].min(axis=2) >= 240) & (bust[..., 3] == 255)
    assert whites.any()  # the eyes' whites still stay


def test_a_very_light_face_joined_to_its_background_fade_stays():
    from collections import Counter

    from rmmv_gan import procedural
    from rmmv_gan.face_cutout import cut_out_bust

    face = procedural.portrait(3).copy()
    # Skin as pale as the face model draws some (within twice the cut-out's tolerance of white),
    # joined to the background without an outline, as a smooth model's chin fades into it.
    skin_colour = Counter(map(tuple, face[30:50, 25:47].reshape(-1, 3))).most_common(1)[0][0]
    skin = np.all(face == skin_colour, axis=-1)
    face[skin] = (250, 238, 226)
    rows = np.flatnonzero(skin.any(axis=1))
    y = rows[len(rows) * 3 // 4]
    x = np.flatnonzero(skin[y])[0]
    face[y:y + 2, :x + 1] = (250, 238, 226)  # a pale strip from the skin to the border
    bust = cut_out_bust(face, (255, 255, 255))
    assert (bust[skin, 3] == 255).mean() >= 0.95


def test_no_pale_halo_is_left_on_the_busts_edge():
    from rmmv_gan import procedural
    from rmmv_gan.face_cutout import cut_out_bust

    face = procedural.portrait(5).astype(np.float32)
    # A smooth model's edge: blur the drawing so that its rim fades into the white.
    import cv2

    soft = cv2.GaussianBlur(face, (3, 3), 0.8).round().astype(np.uint8)
    bust = cut_out_bust(soft, (255, 255, 255))
    opaque = bust[..., 3] == 255
    edge = opaque & ~(cv2.erode(opaque.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    pale = edge & (bust[..., :3].astype(int).sum(axis=2) > 3 * 235)
    assert pale.sum() <= 0.02 * edge.sum()


def test_a_pack_may_keep_the_face_models_background(tiny_pack, tmp_path):
    import shutil

    dst = tmp_path / "kept"
    shutil.copytree(tiny_pack, dst)
    manifest = json.loads((dst / "pack.json").read_text())
    manifest["face"]["transparent"] = False
    (dst / "pack.json").write_text(json.dumps(manifest))
    kept = make_character(open_pack(dst), CharacterRequest(seed=2, steps=1))
    assert (kept.face_sheet[:144, :144, 3] == 255).all()


# -- train-encoder on matched MV art ---------------------------------------------------------------

def test_train_encoder_learns_from_a_games_matched_sheets_and_the_pack_uses_it(tiny_pack, tmp_path):
    opened = open_pack(tiny_pack)
    game = matched_game(tmp_path / "game", opened)
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train-encoder", "--pack", str(tiny_pack), "--data", str(game), "--outdir", str(out),
                                  "--steps", "4", "--batch", "2"])
    assert r.exit_code == 0, r.output
    assert "3 pairs" in r.output
    enc = load_encoder(out / "encoder.safetensors")
    assert enc.in_shape == opened.sprite.img_shape and (enc.num_ws, enc.w_dim) == (opened.face.num_ws, opened.face.w_dim)
    assert (out / "checkpoint.pt").is_file() and "step 4/4" in (out / "train.log").read_text()
    opened_e = open_pack(with_encoder(tiny_pack, tmp_path, enc))
    assert make_character(opened_e, CharacterRequest(seed=1)).face_sheet.shape == (288, 576, 4)


def test_train_encoder_goes_on_from_a_given_encoder(tiny_pack, tmp_path):
    opened = open_pack(tiny_pack)
    game = matched_game(tmp_path / "game", opened)
    start = random_encoder(opened, seed=3)
    save_encoder(tmp_path / "start.safetensors", start)
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train-encoder", "--pack", str(tiny_pack), "--data", str(game), "--outdir", str(out),
                                  "--steps", "1", "--batch", "2", "--lr", "1e-9", "--from-encoder",
                                  str(tmp_path / "start.safetensors")])
    assert r.exit_code == 0, r.output
    went_on = load_encoder(out / "encoder.safetensors")
    assert (went_on.channels, went_on.hidden) == (4, 16)  # the given encoder's size, not the default
    sheet = torch.from_numpy(native_sheet(opened, 5)).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():  # one step at a negligible rate: still the given encoder's answers (float16 file)
        torch.testing.assert_close(went_on(sheet), start(sheet), atol=2e-2, rtol=0)


def test_train_encoder_refuses_an_encoder_of_other_models_and_writes_nothing(tiny_pack, tmp_path):
    opened = open_pack(tiny_pack)
    other = SpriteFaceEncoder((32, 24), opened.face.num_ws, opened.face.w_dim, channels=4, hidden=16)
    save_encoder(tmp_path / "other.safetensors", other)
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train-encoder", "--pack", str(tiny_pack), "--data", "procedural", "--outdir",
                                  str(out), "--steps", "1", "--from-encoder", str(tmp_path / "other.safetensors")])
    assert r.exit_code == 1
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: --from-encoder") and "24 x 32 sheets" in lines[0], r.output
    assert not out.exists()


@pytest.mark.parametrize("spoil, message", [
    (lambda game: (game / "img" / "faces" / "c1.png").unlink(), "no matching face sheet"),
    (lambda game: Image.new("RGBA", (576, 288)).save(game / "img" / "faces" / "c1.png"), "face cell"),
    (lambda game: Image.new("RGBA", (100, 100), (1, 2, 3, 255)).save(game / "img" / "characters" / "$c2.png"),
     "not a character sheet"),
    (lambda game: Image.new("RGBA", (300, 288), (1, 2, 3, 255)).save(game / "img" / "faces" / "c0.png"),
     "not a face sheet"),
    (lambda game: (game / "img" / "characters" / "$c0.png").write_bytes(b"\x89PNG broken"), "not a readable PNG"),
])
def test_a_bad_pairs_folder_is_one_error_line_and_writes_nothing(tiny_pack, tmp_path, spoil, message):
    game = matched_game(tmp_path / "game", open_pack(tiny_pack))
    spoil(game)
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train-encoder", "--pack", str(tiny_pack), "--data", str(game), "--outdir", str(out),
                                  "--steps", "2", "--batch", "2"])
    assert r.exit_code == 1
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], r.output
    assert not out.exists()


def test_the_encoder_gain_moves_faces_away_from_the_average(tiny_pack, tmp_path):
    enc = random_encoder(open_pack(tiny_pack))
    dst = with_encoder(tiny_pack, tmp_path, enc)
    sheet = native_sheet(open_pack(dst), 3)
    plain = face_w_from_sprite(open_pack(dst), sheet, steps=0)
    manifest = json.loads((dst / "pack.json").read_text())
    manifest["face"]["encoder_gain"] = 1.5
    (dst / "pack.json").write_text(json.dumps(manifest))
    opened = open_pack(dst)
    avg = opened.face.mapping.w_avg
    assert torch.allclose(face_w_from_sprite(opened, sheet, steps=0) - avg, 1.5 * (plain - avg), atol=1e-5)


@pytest.mark.parametrize("gain", [0.1, 3, float("nan"), "1.2"])
def test_an_encoder_gain_out_of_range_is_refused(tiny_pack, tmp_path, gain):
    from rmmv_gan.packs import PackError, load_pack

    dst = with_encoder(tiny_pack, tmp_path, random_encoder(open_pack(tiny_pack)))
    manifest = json.loads((dst / "pack.json").read_text())
    manifest["face"]["encoder_gain"] = gain
    (dst / "pack.json").write_text(json.dumps(manifest))
    with pytest.raises(PackError, match="face.encoder_gain"):
        load_pack(dst)


def test_the_encoder_learns_faces_as_the_pipeline_draws_them(tiny_pack, tmp_path):
    """The image loss sees the encoder's w with the pack's neutral emotion mixed in, as the
    pipeline draws the neutral face: the layers that emotion replaces learn nothing from it."""
    import shutil

    from rmmv_gan.packs import add_preset
    from rmmv_gan.train_encoder import EncoderConfig, EncoderTrainer, FolderPairs

    pack = tmp_path / "pack"
    shutil.copytree(tiny_pack, pack)
    add_preset(pack, "face", "calm", seed=5)
    manifest = json.loads((pack / "pack.json").read_text())
    manifest["emotions"] = [{"name": "neutral", "preset": "calm", "layers": [1, 2]}]
    (pack / "pack.json").write_text(json.dumps(manifest))
    opened = open_pack(pack)
    pairs = FolderPairs(opened, matched_game(tmp_path / "game", opened) / "img")
    trainer = EncoderTrainer(EncoderConfig(outdir=str(tmp_path / "run"), spread_weight=0.0), opened, pairs, log=lambda _: None)
    torch.nn.init.normal_(trainer.encoder.out.weight, std=0.1)  # gradients reach every layer's rows
    before = trainer.encoder.out.weight.detach().clone().view(opened.face.num_ws, opened.face.w_dim, -1)
    trainer.train_step()
    after = trainer.encoder.out.weight.detach().view(opened.face.num_ws, opened.face.w_dim, -1)
    changed = [(after[i] != before[i]).any().item() for i in range(opened.face.num_ws)]
    assert not changed[1] and not changed[2]
    assert all(changed[i] for i in range(opened.face.num_ws) if i not in (1, 2))


# -- procedural pairs (the default pack's encoder) -----------------------------------------------

@pytest.fixture(scope="module")
def default_opened():
    from rmmv_gan.packs import DEFAULT_PACK

    return open_pack(DEFAULT_PACK)


def test_type_share_draws_the_encoders_people_as_the_packs_types(default_opened):
    from rmmv_gan.procedural.archetypes import ARCHETYPES, with_traits
    from rmmv_gan.train_encoder import ProceduralPairs

    v = ProceduralPairs(default_opened, seed=0, type_share=1.0).vectors(64)
    kinds = [[name for name, traits in ARCHETYPES.items() if np.array_equal(with_traits(x, traits), x)] for x in v]
    assert all(len(k) == 1 for k in kinds)  # every person is exactly one type
    assert {k[0] for k in kinds} == set(ARCHETYPES)  # and every type is drawn


def test_without_a_type_share_the_encoder_sees_the_pairs_it_always_saw(default_opened):
    from rmmv_gan.train_encoder import ProceduralPairs

    v = ProceduralPairs(default_opened, seed=5).vectors(4)
    assert np.array_equal(v, np.random.RandomState(5).randn(4, v.shape[1]).astype(np.float32))


def test_style_share_shows_the_encoder_the_named_hair_styles_uncovered(default_opened):
    from rmmv_gan.procedural import decode_look
    from rmmv_gan.train_encoder import ProceduralPairs

    v = ProceduralPairs(default_opened, seed=2, style_share=1.0, styles=["spiky", "ponytail"]).vectors(48)
    looks = {(decode_look(x).hair_style, decode_look(x).headwear) for x in v}
    assert looks == {("spiky", "none"), ("ponytail", "none")}


def test_cli_refuses_an_unknown_hair_style_before_reading_the_pack(tmp_path):
    out = tmp_path / "enc"
    r = CliRunner().invoke(main, ["train-encoder", "--pack", str(tmp_path / "no_pack"), "--data", "procedural",
                                  "--outdir", str(out), "--style-share", "0.3", "--styles", "mohawk"])
    assert r.exit_code != 0 and "--styles" in r.output and "mohawk" in r.output
    assert not out.exists()


def test_either_side_counts_a_mirrored_face_as_a_match():
    from rmmv_gan.train_encoder import image_loss

    face = torch.rand(2, 3, 36, 36, generator=torch.Generator().manual_seed(1)) * 2 - 1
    mirrored = face.flip(-1)
    assert image_loss(mirrored, face).item() > 0.1
    assert image_loss(mirrored, face, either_side=True).item() == 0.0
    assert image_loss(face, face, either_side=True).item() == 0.0


def test_train_encoder_takes_either_side(tiny_pack, tmp_path):
    opened = open_pack(tiny_pack)
    game = matched_game(tmp_path / "game", opened)
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train-encoder", "--pack", str(tiny_pack), "--data", str(game), "--outdir", str(out),
                                  "--steps", "2", "--batch", "2", "--either-side"])
    assert r.exit_code == 0, r.output
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert json.loads(state["config"])["either_side"] is True
