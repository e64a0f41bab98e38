"""The trainer: a few steps on a tiny configuration run, stay finite, move the EMA, resume."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from rmmv_gan import load_generator
from rmmv_gan.cli import main
from rmmv_gan.train import TrainConfig, Trainer


@pytest.fixture
def sheet_folder(tmp_path):
    """Four `$` sheets and one 8-character sheet of coloured blocks on transparency."""
    rng = np.random.RandomState(0)
    folder = tmp_path / "sheets"
    folder.mkdir()

    def sheet():
        a = np.zeros((192, 144, 4), np.uint8)
        for r in range(4):
            for c in range(3):
                a[r * 48 + 8 : r * 48 + 44, c * 48 + 14 : c * 48 + 34] = (*rng.randint(0, 250, 3), 255)
        return a

    for i in range(4):
        Image.fromarray(sheet(), "RGBA").save(folder / f"${i}.png")
    eight = np.zeros((384, 576, 4), np.uint8)
    eight[:192, :144] = sheet()
    Image.fromarray(eight, "RGBA").save(folder / "Actors.png")
    return folder


def tiny(folder, out, **kw):
    return TrainConfig(data=str(folder), outdir=str(out), preset="tiny", batch=4, log_every=1000, sample_every=1000,
                       checkpoint_every=1000, **kw)


def test_folder_sheets_are_sliced_to_the_canvas(sheet_folder, tmp_path):
    tr = Trainer(tiny(sheet_folder, tmp_path / "run", steps=1), log=lambda s: None)
    assert len(tr.data.images) == 5  # 4 single sheets + the one filled slot of the 8-sheet
    assert tuple(tr.data.images.shape[1:]) == (3, 16, 12)


def test_a_few_steps_are_finite_and_move_the_ema(sheet_folder, tmp_path):
    tr = Trainer(tiny(sheet_folder, tmp_path / "run", steps=6, r1_interval=2), log=lambda s: None)
    before = {k: v.clone() for k, v in tr.G_ema.state_dict().items()}
    history = tr.run()
    assert len(history) == 6 and all(np.isfinite(v) for h in history for v in h.values())
    assert any("r1" in h for h in history)
    moved = [k for k, v in tr.G_ema.state_dict().items() if not torch.equal(before[k], v)]
    assert any(k.endswith("weight") for k in moved)


def test_training_resumes_from_its_checkpoint(sheet_folder, tmp_path):
    Trainer(tiny(sheet_folder, tmp_path / "run", steps=3), log=lambda s: None).run()
    tr = Trainer(tiny(sheet_folder, tmp_path / "run", steps=5), log=lambda s: None)
    assert tr.resume() and tr.step == 3
    tr.run()
    assert tr.step == 5


def test_cli_trains_and_exports_a_loadable_model(sheet_folder, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--data", str(sheet_folder), "--outdir", str(out), "--steps", "3",
                                       "--batch", "4", "--preset", "tiny"])
    assert result.exit_code == 0, result.output
    G = load_generator(out / "network.safetensors")
    assert G.img_shape == (16, 12)
    assert list(out.glob("samples_*.png")) and (out / "train.log").read_text().count("step 3/3") == 1


def test_cli_gan_phase_takes_the_given_learning_rate_and_reconstruction_weight(sheet_folder, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--data", str(sheet_folder), "--outdir", str(out), "--steps", "2",
                                       "--batch", "4", "--preset", "tiny", "--lr", "0.0007", "--recon-weight", "4"])
    assert result.exit_code == 0, result.output
    state = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert [g["lr"] for g in state["opt_G"]["param_groups"]] == [0.0007] * 3  # what the optimiser stepped with
    assert '"recon_weight": 4.0' in state["config"]


def test_cli_refuses_a_reconstruction_weight_that_is_not_finite(tmp_path):
    result = CliRunner().invoke(main, ["train", "--data", "sprites", "--outdir", str(tmp_path / "x"),
                                       "--recon-weight", "nan"])
    assert result.exit_code == 2 and "--recon-weight" in result.output
    assert not (tmp_path / "x").exists()


def test_cli_refuses_unknown_data(tmp_path):
    result = CliRunner().invoke(main, ["train", "--data", "nowhere", "--outdir", str(tmp_path / "x")])
    assert result.exit_code == 1 and "--data" in result.output


def test_portrait_controls_cover_every_expression_and_both_turns():
    from rmmv_gan.train import portrait_controls

    rng = np.random.RandomState(0)
    controls = [portrait_controls(rng.randn(2)) for _ in range(2000)]
    counts = np.bincount([e for e, _ in controls], minlength=8)
    assert counts.min() > 150  # eight equally likely bins
    turns = np.array([t for _, t in controls])
    assert turns.min() < -0.9 and turns.max() > 0.9


def test_procedural_batches_pair_z_with_its_drawing(tmp_path):
    from rmmv_gan.train import ProceduralData

    data = ProceduralData("portraits", seed=0)
    z, x = data.batch(3, "cpu")
    assert z.shape == (3, data.dim) and x.shape == (3, 3, 72, 72)
    again = torch.from_numpy(data.render(z[1].numpy())).permute(2, 0, 1).float() / 127.5 - 1
    assert torch.equal(x[1], again)


def test_type_share_draws_characters_as_the_packs_types():
    from rmmv_gan.procedural.archetypes import ARCHETYPES, with_traits
    from rmmv_gan.train import ProceduralData

    z = ProceduralData("sprites", seed=0, type_share=1.0).vectors(64)
    kinds = [[name for name, traits in ARCHETYPES.items() if np.array_equal(with_traits(v, traits), v)] for v in z]
    assert all(len(k) == 1 for k in kinds)  # every vector is exactly one type
    assert {k[0] for k in kinds} == set(ARCHETYPES)  # and every type is drawn


def test_type_share_sets_only_the_characters_components_of_a_portrait():
    from rmmv_gan.procedural import PORTRAIT_DIM
    from rmmv_gan.train import ProceduralData

    plain, typed = ProceduralData("portraits", seed=3), ProceduralData("portraits", seed=3, type_share=1.0)
    a, b = plain.vectors(16), typed.vectors(16)
    assert np.array_equal(a[:, PORTRAIT_DIM:], b[:, PORTRAIT_DIM:])  # expression and turn as drawn
    assert not np.array_equal(a[:, :PORTRAIT_DIM], b[:, :PORTRAIT_DIM])


def test_style_share_draws_every_hair_style_uncovered():
    from rmmv_gan.procedural import decode_look
    from rmmv_gan.procedural.palette import HAIR_STYLES
    from rmmv_gan.train import ProceduralData

    looks = [decode_look(v) for v in ProceduralData("portraits", seed=2, style_share=1.0).vectors(96)]
    assert {look.headwear for look in looks} == {"none"}
    assert {look.hair_style for look in looks} == set(HAIR_STYLES) - {"bald"}


def test_style_share_leaves_a_portraits_expression_and_turn_as_drawn():
    from rmmv_gan.procedural import PORTRAIT_DIM
    from rmmv_gan.train import ProceduralData

    plain, styled = ProceduralData("portraits", seed=4), ProceduralData("portraits", seed=4, style_share=1.0)
    a, b = plain.vectors(16), styled.vectors(16)
    assert np.array_equal(a[:, PORTRAIT_DIM:], b[:, PORTRAIT_DIM:])
    assert not np.array_equal(a[:, :PORTRAIT_DIM], b[:, :PORTRAIT_DIM])


def test_style_share_draws_only_the_named_hair_styles():
    from rmmv_gan.procedural import decode_look
    from rmmv_gan.train import ProceduralData

    looks = [decode_look(v) for v in ProceduralData("portraits", seed=6, style_share=1.0, styles=["spiky"]).vectors(48)]
    assert {(look.hair_style, look.headwear) for look in looks} == {("spiky", "none")}


def test_procedural_data_refuses_an_unknown_hair_style():
    from rmmv_gan.train import ProceduralData

    with pytest.raises(ValueError, match="mohawk"):
        ProceduralData("portraits", seed=0, style_share=0.5, styles=["spiky", "mohawk"])


def test_cli_refuses_an_unknown_hair_style_and_writes_nothing(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--data", "portraits", "--outdir", str(out), "--steps", "1",
                                       "--style-share", "0.5", "--styles", "spiky,mohawk"])
    assert result.exit_code != 0
    assert "--styles" in result.output and "mohawk" in result.output
    assert not out.exists()


def test_no_type_share_draws_the_batches_a_run_always_drew():
    from rmmv_gan.train import ProceduralData

    z, _ = ProceduralData("sprites", seed=5).batch(4, "cpu")
    assert np.array_equal(z.numpy(), np.random.RandomState(5).randn(4, z.shape[1]).astype(np.float32))


def test_procedural_data_needs_the_matching_canvas(tmp_path):
    with pytest.raises(ValueError, match="renderer draws 48 x 64"):
        Trainer(TrainConfig(data="sprites", outdir=str(tmp_path), preset="tiny"), log=lambda s: None)


def test_expression_pairs_are_one_face_with_two_expressions():
    from rmmv_gan.procedural import EXPRESSIONS, PORTRAIT_DIM, portrait_from_vector
    from rmmv_gan.train import ProceduralData, portrait_controls

    data = ProceduralData("portraits", seed=1)
    z, ea, eb, a, b = data.expression_pairs(2, "cpu")
    for i in range(2):
        v = z[i].numpy()
        assert ea[i] == portrait_controls(v[PORTRAIT_DIM:])[0]
        turn = portrait_controls(v[PORTRAIT_DIM:])[1]
        for img, e in ((a[i], ea[i]), (b[i], eb[i])):
            drawn = portrait_from_vector(v[:PORTRAIT_DIM], EXPRESSIONS[int(e)], turn)
            assert torch.equal(img, torch.from_numpy(drawn).permute(2, 0, 1).float() / 127.5 - 1)


def portraits(out, **kw):
    return TrainConfig(data="portraits", outdir=str(out), batch=2, log_every=1000, sample_every=1000,
                       checkpoint_every=1000, **kw)


def test_expression_layers_train_with_finite_losses(tmp_path):
    tr = Trainer(portraits(tmp_path / "run", steps=3, recon_steps=2, expression_layers=[2, 3, 4]), log=lambda s: None)
    before = {k: v.clone() for k, v in tr.G_ema.state_dict().items()}
    learned = tr.expression_ws.detach().clone()
    history = tr.run()  # two reconstruction steps, one adversarial
    assert tr.expression_ws.shape == (8, tr.G.w_dim) and not torch.equal(learned, tr.expression_ws)
    assert [("g" in h) for h in history] == [False, False, True]
    assert all(np.isfinite(v) for h in history for v in h.values())
    assert any(not torch.equal(before[k], v) for k, v in tr.G_ema.state_dict().items())


def test_learned_expressions_survive_a_resume(tmp_path):
    cfg = portraits(tmp_path / "run", steps=2, recon_steps=2, expression_layers=[2, 3, 4])
    tr = Trainer(cfg, log=lambda s: None)
    tr.run()
    again = Trainer(cfg, log=lambda s: None)
    assert again.resume() and torch.equal(again.expression_ws, tr.expression_ws)


def test_offset_expressions_keep_each_person_at_the_expression_layers(tmp_path):
    tr = Trainer(portraits(tmp_path / "run", expression_layers=[2, 3, 4], expression_mode="offset"), log=lambda s: None)
    with torch.no_grad():
        ws = tr.G.mapping(torch.randn(2, tr.G.z_dim, generator=torch.Generator().manual_seed(0)), None)
        drawn = tr.with_expressions(ws, torch.tensor([5, 5]))
        shift = tr.expression_ws[5] - tr.G.mapping.w_avg
    assert not torch.allclose(drawn[0, 2], drawn[1, 2])  # two people, one expression
    assert torch.allclose(drawn[:, [2, 3, 4]] - ws[:, [2, 3, 4]], shift.expand(2, 3, -1), atol=1e-6)
    assert torch.equal(drawn[:, [0, 1, 5, 6, 7]], ws[:, [0, 1, 5, 6, 7]])


def test_replaced_expressions_draw_every_person_alike_at_the_expression_layers(tmp_path):
    tr = Trainer(portraits(tmp_path / "run", expression_layers=[2, 3, 4]), log=lambda s: None)
    with torch.no_grad():
        ws = tr.G.mapping(torch.randn(2, tr.G.z_dim, generator=torch.Generator().manual_seed(0)), None)
        drawn = tr.with_expressions(ws, torch.tensor([5, 5]))
    assert torch.equal(drawn[0, [2, 3, 4]], drawn[1, [2, 3, 4]])


def test_a_pack_offset_emotion_mix_draws_what_the_offset_trainer_drew(tmp_path):
    from rmmv_gan.latent import archetype_mix

    tr = Trainer(portraits(tmp_path / "run", expression_layers=[2, 3, 4], expression_mode="offset"), log=lambda s: None)
    with torch.no_grad():
        tr.G.mapping.w_avg.add_(0.3)  # a trained model's average is not zero
        ws = tr.G.mapping(torch.randn(3, tr.G.z_dim, generator=torch.Generator().manual_seed(1)), None)
        # The emotion preset a pack stores: the average w, the learned w at the expression layers.
        preset = tr.G.mapping.w_avg[None].repeat(tr.G.num_ws, 1)
        preset[[2, 3, 4]] = tr.expression_ws[6]
        mixed = archetype_mix(ws, preset, [2, 3, 4], offset_from=tr.G.mapping.w_avg)
        assert torch.allclose(mixed, tr.with_expressions(ws, torch.tensor([6, 6, 6])), atol=1e-6)


def test_a_run_keeps_the_expression_mode_it_started_with(tmp_path):
    Trainer(portraits(tmp_path / "run", steps=1, recon_steps=1, expression_layers=[2, 3, 4]), log=lambda s: None).run()
    other = Trainer(portraits(tmp_path / "run", steps=1, recon_steps=1, expression_layers=[2, 3, 4],
                              expression_mode="offset"), log=lambda s: None)
    with pytest.raises(ValueError, match="expression-mode replace"):
        other.resume()


def test_an_unknown_expression_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="expression mode"):
        Trainer(portraits(tmp_path / "run", expression_layers=[2, 3, 4], expression_mode="add"), log=lambda s: None)


def readout_error(tr, z):
    with torch.no_grad():
        return torch.nn.functional.mse_loss(tr.latent_readout(tr.G.mapping(z, None)[:, 0]), z).item()


def test_the_latent_loss_teaches_w_to_keep_the_vector(tmp_path):
    cfg = portraits(tmp_path / "run", steps=30, recon_steps=30, latent_weight=1.0)
    tr = Trainer(cfg, log=lambda s: None)
    z = torch.randn(64, tr.G.z_dim, generator=torch.Generator().manual_seed(3))
    before = readout_error(tr, z)
    tr.run()
    assert readout_error(tr, z) < 0.7 * before


def test_the_latent_readout_survives_a_resume(tmp_path):
    cfg = portraits(tmp_path / "run", steps=2, recon_steps=2, latent_weight=0.5)
    tr = Trainer(cfg, log=lambda s: None)
    tr.run()
    again = Trainer(cfg, log=lambda s: None)
    assert again.resume() and torch.equal(again.latent_readout.weight, tr.latent_readout.weight)
    moments = lambda t: t.opt_latent.state_dict()["state"][0]["exp_avg"]  # noqa: E731
    assert torch.equal(moments(again), moments(tr))


@pytest.mark.parametrize("data, layers, message", [
    ("portraits", [8], r"lie in 0\.\.7"),
    ("sprites", [2], "portrait renderer"),
])
def test_expression_layers_are_checked(tmp_path, data, layers, message):
    with pytest.raises(ValueError, match=message):
        Trainer(TrainConfig(data=data, outdir=str(tmp_path), expression_layers=layers), log=lambda s: None)


def test_cli_refuses_expression_layers_that_are_not_numbers(tmp_path):
    result = CliRunner().invoke(main, ["train", "--data", "portraits", "--outdir", str(tmp_path / "x"),
                                       "--expression-layers", "two"])
    assert result.exit_code == 1 and "--expression-layers" in result.output


def test_the_squared_weight_adds_that_much_squared_error():
    from rmmv_gan.train import reconstruction_loss

    g = torch.Generator().manual_seed(0)
    fake, real = torch.rand(2, 3, 8, 8, generator=g) * 2 - 1, torch.rand(2, 3, 8, 8, generator=g) * 2 - 1
    added = reconstruction_loss(fake, real, squared_weight=2.0) - reconstruction_loss(fake, real)
    torch.testing.assert_close(added, 2.0 * ((fake - real) ** 2).mean())


def test_the_cli_trains_with_a_squared_weight_and_records_it(tmp_path):
    import json

    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", "--data", "portraits", "--preset", "portrait", "--outdir", str(out),
                                  "--steps", "1", "--recon-steps", "1", "--batch", "2", "--squared-weight", "2"])
    assert r.exit_code == 0, r.output
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert json.loads(state["config"])["squared_weight"] == 2.0


def test_a_negative_squared_weight_is_refused(tmp_path):
    r = CliRunner().invoke(main, ["train", "--data", "portraits", "--outdir", str(tmp_path / "x"),
                                  "--squared-weight", "-1"])
    assert r.exit_code == 2 and "not in the range" in r.output and not (tmp_path / "x").exists()
