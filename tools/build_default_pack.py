"""Build the embedded default pack from two training runs: every file of
rmmv_gan/packs/default comes from this script (see docs/default-pack.md).

    python tools/build_default_pack.py --sprite-run runs/sprite --face-run runs/portrait \
        --out rmmv_gan/packs/default --steps 200 --probes docs/images
    python tools/build_default_pack.py --out rmmv_gan/packs/default --archetypes-only

1. The models: G_ema and D of each run's checkpoint, stored as float16.
2. Archetype presets: the type, not one character. Both models take the procedural artist's
   vector as z (the face model with an expression and a turn component), so many drawings of
   the type (its traits fixed, all else random) are mapped and averaged in W. The pack mixes
   them as offsets from the average w, so the seed keeps its hair, skin and colours.
   `--archetypes-only` remakes just these from the models in --out (after retraining).
3. Emotion presets: the face run's learned expression ws (TrainConfig.expression_layers: the
   ws the face model was trained to take the expression from), at the expression layers of
   the average w. A run without them: the same (median) person drawn with each expression and
   projected.
4. The sprite-to-face encoder (`--encoder`, from `rmmv-gan train-encoder`), copied in.
5. The manifest, with the layer groups; and probe grids of both models for the docs.

`--sprite-run` without `--face-run` puts a new sprite model into OUT and remakes the archetypes
from it, keeping the face side (with `--encoder`, the encoder retrained for the new sprites):

    python tools/build_default_pack.py --sprite-run runs/sprite5 --out rmmv_gan/packs/default

`--keep-sprite` keeps the pack's sprite model (when only the face side is retrained, or the
sprite run's checkpoint is gone); its archetype presets are remade from it, the same files.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from rmmv_gan import procedural
from rmmv_gan.procedural.archetypes import ARCHETYPES, trait_values, with_traits
from rmmv_gan.latent import map_seed, save_w
from rmmv_gan.models import load_generator
from rmmv_gan.probe import probe_grid
from rmmv_gan.projector import ProjectionSettings, project
from rmmv_gan.train import TrainConfig, Trainer, portrait_latent

# Archetype presets (the types: procedural.archetypes.ARCHETYPES): how many drawings of a type
# are averaged, and how far the preset lies from the average w along the type's direction
# (above 1 makes the type read at 16 px; 2.5 blurred some heroines).
TYPE_DRAWINGS = 512
TYPE_GAIN = 2.0
# Types whose sprite preset lies nearer: the sprite model of the seventh period (40,000 steps)
# draws a villain at 2.0 with the hood's shade over the face, which greys a pale seed's skin
# (tests/test_archetype_identity.py, seed 65: 67 RGB levels from its own skin at 1.75, 55 at 1.5).
# The ninth period's model (51,000 steps) draws mages at 2.0 so alike that their faces differ
# by 24.7 (issue 20 asks 25; benchmarks/variety.py). With the face refiner, which draws every
# face nearer the art's typical lines: 24.6 at 1.5 (the face preset at 1.5 or 1.0 instead:
# 25.0, 25.4), 27.0 at 1.0, the mean of the type's drawings itself.
# The thirteenth period's model (step 59,000) draws some villains at 1.5 with a broken frame
# (7 of 64 sheets had a frame at under 3/4 of the sheet's median figure area; 1 of 64 before),
# none at 1.0 or 0.5; at 0.5, with half the typed vector (TRAITS_WEIGHT), every villain is
# hooded, in its own hood colour (error to the renderer's type 18.2 against 23.5, sprite
# variety 28.8).
SPRITE_TYPE_GAIN = {"villain": 0.5, "mage": 1.0}
# Types whose face preset lies nearer. The eleventh period's face model draws hoods, and its
# villain preset at 2.0 is a dark hood that every villain's face takes (face variety 18.9; issue
# 20 asks 25), at 1.0 25.5, at 0.5 35.1: the encoder already reads the hood, in its own colour,
# from the sprite.
# The thirteenth period's encoder (no pull toward the mapping's w) reads a hood as hair in
# three of the eight villains of docs/images/variety_faces.png at 0.5; at 1.0 the hood comes
# through on nearly all, and their faces still differ by 28.7-37.0 on four sets of 16 seeds.
# The seventeenth period's face model (step 68,500, spiky crowns learnt) with its encoder, which
# reads the type from the sprite by itself: at 2.0 the preset puts a second type onto the
# encoder's, and the face model hedges: pale veils below long hair, spikes and ponytails lost
# (knights), mottled hats (mages; faces within the type 21.4). The error of the neutral face to
# the renderer's portrait of the seed's typed vector (benchmarks/type_fidelity.py, 32 seeds, 18 x
# 18), at 2.0 / 1.0 / 0.5: heroine 19.8 / 15.9 / 15.2, knight 21.1 / 14.3 / 13.3; villain at
# 1.0 / 0.75 / 0.6 / 0.5: 19.8 / 21.2 / 22.7 / 23.5: the hoods fade as the gain falls, but from
# 0.75 on a pale half-hood veils long-haired villains (docs/default-pack.md, the eighteenth period).
# The mage's hat comes from the sprite alone: with a preset, hatless mage sprites got hats. A
# gain of 0 means no face mix at all (no preset file, no "face" entry in the manifest).
FACE_TYPE_GAIN = {"heroine": 0.5, "villain": 0.6, "knight": 0.5, "mage": 0.0}
# The archetype mix (see latent.archetype_mix): the type's layers are shifted by the preset's
# difference from the model's average w, then the whole w moves toward the preset by strength.
TYPE_LAYERS = {"sprite": "type", "face": "type"}
DEFAULT_STRENGTH = 0.0
# How far each type's sprite goes from the offset mix toward the model's own drawing of the
# seed as the type (its z with the type's components set: pack "traits"). The eleventh
# period's sprite model (step 51,500, trained on the types) draws that faithfully: at psi 1,
# 16 seeds per type (docs/default-pack.md), error to the renderer's drawing of the type 12.0
# against 19.7 for the offset alone (heroine), knight 7.6 against 21.8, mage 17.9 against 21.7
# at 0.5. Mages at 0.7 come out alike (sprite variety 22.1; issue 20 asks 24), and villains
# with traits too (on the run's step 50,000, before its GAN steps: 20.5 at 1, 18.6 at 0.5,
# against 27.1 for the offset alone, which already draws the hood), so the villain kept the
# offset alone until the thirteenth period (see SPRITE_TYPE_GAIN). The thirteenth period's
# model (step 59,000, the heroine's bow learnt) draws the mage's hat from 0.75 of the way
# (error 15.5, sprite variety 26.3; at 0.5 19.5 and no hats, at 0.8 14.3 but variety 24.3,
# at 1.0 13.6 and 23.6). Its knights at 1.0 differed by
# 23.5-26.9 on six sets of 16 seeds (the renderer's own steel knights of seeds 5,032 on by
# 21.9), at 0.7 by 25.0-28.2 (error 8.4 against 7.3: still grey plate and shoulder pads).
TRAITS_WEIGHT = {"heroine": 1.0, "villain": 0.5, "knight": 0.7, "mage": 0.75}
# Truncation of the seeds: the article's 0.6 halves the hair, skin and cloth colours' spread;
# the sprite model draws the types faithfully at 1 (its training distribution), and each
# type's sprites and faces differ more there (benchmarks/variety.py, seeds 0-63: sprites
# 26.2-28.9 at 1 against 25.4-27.6 at 0.9, faces 27.4-34.0 against 26.4-32.6).
ARCHETYPE_PSI = 1.0
# The encoder's W+ moved this much farther from the face model's average w: at 1.0 heroines',
# villains' and mages' faces differ by 22-25 (benchmarks/variety.py), at 1.2 by 26-31, for an
# identity error of 14.4 instead of 12.6 (docs/default-pack.md, the fifth period).
ENCODER_GAIN = 1.2

PACK_LAYERS = {
    # Chosen from the probe grids (docs/images/probe_*.png); see docs/default-pack.md.
    # Mixing layers 7-9 carries a palette over cleanly; a middle band (4-6) hardly shows and
    # 6-8 gives mottled cloth, since style mixing only ever trained suffixes of the layers.
    "sprite": {"shape": [0, 1, 2, 3], "detail": [4, 5, 6], "colours": [7, 8, 9],
               # Archetypes shift all layers by the type's offset: the type shapes the outfit in
               # 0-5 and, in this model, colours it in 6-9 (dresses come out magenta); the
               # offset of a type leaves hair and skin at the seed's (docs/default-pack.md).
               "type": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]},
    # Expression: the layers the face model was trained to take the expression from alone.
    "face": {"shape": [0], "look": [1], "expression": [2, 3, 4], "colours": [5, 6, 7], "type": [0, 1]},
}


@torch.no_grad()
def type_preset(G, traits: dict, face=False, n=TYPE_DRAWINGS, gain=TYPE_GAIN, seed=0) -> torch.Tensor:
    """The w of a type: n drawings that share the traits (everything else random), mapped into
    G (whose z is the renderer's vector; the face model's neutral and looking ahead) and
    averaged in W, then moved `gain` times as far from the average w. Averaging keeps what the
    drawings share (the type) and leaves the rest (hair, skin, colours) at the average, so an
    offset mix of it changes the type and not the person."""
    vs = with_traits(np.random.RandomState(seed).randn(n, procedural.SPRITE_DIM), traits)
    z = portrait_latent(vs[:, : procedural.PORTRAIT_DIM]) if face else vs
    w = G.mapping(torch.from_numpy(z).float(), None).mean(0)
    return G.mapping.w_avg.lerp(w, gain)


def make_archetype_presets(G_s, G_f, out: Path) -> None:
    """presets/{sprite,face}/<archetype>.npy for every archetype, from the current models."""
    for name, traits in ARCHETYPES.items():
        save_w(out / "presets" / "sprite" / f"{name}.npy",
               type_preset(G_s, traits, gain=SPRITE_TYPE_GAIN.get(name, TYPE_GAIN)))
        face_preset = out / "presets" / "face" / f"{name}.npy"
        if has_face_mix(name):
            save_w(face_preset, type_preset(G_f, traits, face=True, gain=FACE_TYPE_GAIN.get(name, TYPE_GAIN)))
        else:
            face_preset.unlink(missing_ok=True)  # an earlier build's, which no manifest names now
        print(f"archetype {name}: presets from {TYPE_DRAWINGS} drawings")


def has_face_mix(name: str) -> bool:
    return FACE_TYPE_GAIN.get(name, TYPE_GAIN) != 0


def archetype_manifest() -> dict:
    out = {}
    for name, traits in ARCHETYPES.items():
        sprite = {"preset": name, "layers": TYPE_LAYERS["sprite"], "mode": "offset"}
        if name in TRAITS_WEIGHT:
            sprite["traits"] = {str(i): round(v, 6) for i, v in trait_values(traits).items()}
            sprite["traits_weight"] = TRAITS_WEIGHT[name]
        out[name] = {"psi": ARCHETYPE_PSI, "strength": DEFAULT_STRENGTH, "sprite": sprite}
        if has_face_mix(name):
            out[name]["face"] = {"preset": name, "layers": TYPE_LAYERS["face"], "mode": "offset"}
    return out


def remake_archetypes(pack: Path) -> None:
    """Only the archetype presets and the manifest's archetypes and layer groups, from the
    models already in `pack` (e.g. after retraining the face model)."""
    manifest = json.loads((pack / "pack.json").read_text(encoding="utf-8"))
    G_s = load_generator(pack / manifest["sprite"]["file"])
    G_f = load_generator(pack / manifest["face"]["file"])
    make_archetype_presets(G_s, G_f, pack)
    for model in ("sprite", "face"):
        manifest[model]["layer_groups"] = PACK_LAYERS[model]
    manifest["archetypes"] = archetype_manifest()
    (pack / "pack.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def export_run(run: Path, dst: Path) -> Trainer:
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    cfg = TrainConfig(**json.loads(state["config"]))
    cfg.outdir = str(run)
    trainer = Trainer(cfg, log=lambda s: None)
    trainer.resume()
    trainer.export(dst, half=True)
    print(f"{dst}: step {trainer.step}")
    return trainer


def learned_emotion_presets(trainer: Trainer, G) -> dict:
    """{expression: W+ preset}: the average w, with the run's learned w of that expression at
    the expression layers (what the face model drew each expression from in training)."""
    layers = trainer.cfg.expression_layers
    if not layers:
        return {}
    presets = {}
    for i, expression in enumerate(procedural.EXPRESSIONS):
        w = G.mapping.w_avg[None].repeat(G.num_ws, 1).clone()
        w[layers] = trainer.expression_ws[i].detach().float()
        presets[expression] = w
    return presets


def add_refiner(out: Path, refiner: Path) -> None:
    """Copy a face refiner into the pack at `out` and name it in its manifest."""
    shutil.copyfile(refiner, out / "refiner.safetensors")
    manifest = json.loads((out / "pack.json").read_text(encoding="utf-8"))
    manifest["face"]["refiner"] = "refiner.safetensors"
    (out / "pack.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def to_target(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1).float() / 127.5 - 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sprite-run", type=Path, default=None, help="training run of the sprite model (its checkpoint.pt)")
    ap.add_argument("--keep-sprite", action="store_true", help="keep OUT's sprite model and sprite presets")
    ap.add_argument("--encoder", type=Path, default=None, help="encoder.safetensors from rmmv-gan train-encoder")
    ap.add_argument("--refiner", type=Path, default=None,
                    help="refiner.safetensors from rmmv-gan train-refiner; without --face-run it is put into "
                         "OUT's pack as it is (copied, and named in OUT's pack.json)")
    ap.add_argument("--face-run", type=Path, help="training run of the face model")
    ap.add_argument("--out", type=Path, required=True, help="the pack folder to write")
    ap.add_argument("--steps", type=int, default=200, help="projection steps of emotion presets the run has not learned")
    ap.add_argument("--probes", type=Path, default=None, help="folder for probe_sprite.png and probe_face.png")
    ap.add_argument("--archetypes-only", action="store_true",
                    help="remake only the archetype presets (and the manifest's archetypes and layer "
                         "groups) from the models already in --out; no runs needed")
    args = ap.parse_args()
    t0 = time.perf_counter()
    out = args.out
    if args.archetypes_only:
        remake_archetypes(out)
        print(f"archetypes of {out} remade in {time.perf_counter() - t0:.0f} s")
        return
    if args.face_run is None and args.refiner is not None:
        add_refiner(out, args.refiner)
        print(f"{out}: refiner {args.refiner} added")
        return
    if args.face_run is None and args.sprite_run is not None:
        # Only the sprite model is new: the face side stays, the archetypes follow the new model.
        export_run(args.sprite_run, out / "sprite.safetensors")
        if args.encoder is not None:  # the encoder reads the sprite: retrained with it
            shutil.copyfile(args.encoder, out / "encoder.safetensors")
        remake_archetypes(out)
        if args.probes is not None:
            write_probes(args.probes, {"sprite": load_generator(out / "sprite.safetensors")})
        print(f"{out}: sprite model of {args.sprite_run} and its archetypes in {time.perf_counter() - t0:.0f} s")
        return
    if args.face_run is None:
        ap.error("--face-run is needed (or --archetypes-only, --sprite-run alone, or --refiner alone)")
    (out / "presets" / "sprite").mkdir(parents=True, exist_ok=True)
    (out / "presets" / "face").mkdir(parents=True, exist_ok=True)
    if not args.keep_sprite:
        if args.sprite_run is None:
            ap.error("give --sprite-run, or --keep-sprite")
        export_run(args.sprite_run, out / "sprite.safetensors")
    face_trainer = export_run(args.face_run, out / "face.safetensors")
    G_s, G_f = load_generator(out / "sprite.safetensors"), load_generator(out / "face.safetensors")

    make_archetype_presets(G_s, G_f, out)

    # In W+: the face model's expression layers take their own w (TrainConfig.expression_layers),
    # which a single w for all layers cannot give.
    base = np.zeros(procedural.PORTRAIT_DIM, np.float32)
    per_layer = ProjectionSettings(steps=args.steps, loss="pixel", wplus=True, optimize_noise=False)
    learned = learned_emotion_presets(face_trainer, G_f)
    for expression in procedural.EXPRESSIONS:
        if expression in learned:
            save_w(out / "presets" / "face" / f"{expression}.npy", learned[expression])
            continue
        target = to_target(procedural.portrait_from_vector(base, expression))
        save_w(out / "presets" / "face" / f"{expression}.npy", project(G_f, target, per_layer).ws[0])
        print(f"emotion {expression}: preset projected ({time.perf_counter() - t0:.0f} s)")
    if args.encoder is not None:
        shutil.copyfile(args.encoder, out / "encoder.safetensors")
    if args.refiner is not None:
        shutil.copyfile(args.refiner, out / "refiner.safetensors")

    manifest = {
        "format": "rmmv-gan-pack", "version": 1, "name": "default",
        "description": "rmmv-gan's embedded pack: models trained on procedural RPG Maker characters.",
        "sprite": {"file": "sprite.safetensors", "frame_size": 48, "background": [255, 255, 255],
                   "palette": [12, 24],  # pixel art: the renderer draws 10-20 colours a sheet
                   "layout": {"frame_w": procedural.FRAME, "frame_h": procedural.FRAME},
                   "layer_groups": PACK_LAYERS["sprite"]},
        "face": {"file": "face.safetensors", "face_size": 144, "background": [255, 255, 255],
                 # Hair top to shoulders of the 16-px frame: the part a portrait shows.
                 "head_box": [2, 0, 12, 12], "layer_groups": PACK_LAYERS["face"], "transparent": True,
                 **({"encoder": "encoder.safetensors", "encoder_gain": ENCODER_GAIN} if args.encoder is not None
                    else {}),
                 **({"refiner": "refiner.safetensors"} if args.refiner is not None else {})},
        "archetypes": archetype_manifest(),
        # Neutral is a mix too: the projected head may wear any expression.
        # A face model trained with expression offsets draws an emotion as an offset of the
        # person's own w (train.TrainConfig.expression_mode), one trained with replacement as the
        # emotion's w itself.
        "emotions": [{"name": e, "preset": e, "layers": "expression"}
                     | ({"mode": "offset"} if face_trainer.cfg.expression_mode == "offset" else {})
                     for e in procedural.EXPRESSIONS],
        # With the encoder its face is used as it is (steps 0); a request may ask for refinement.
        "projection": {"steps": 0 if args.encoder is not None else 200, "loss": "pixel", "wplus": False,
                       "noise": False, "psi": 0.6},
        "default_archetype": "heroine",
    }
    (out / "pack.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

    if args.probes is not None:
        write_probes(args.probes, {"sprite": G_s, "face": G_f})
    print(f"built {out} in {time.perf_counter() - t0:.0f} s")


def write_probes(folder: Path, models: dict) -> None:
    """probe_MODEL.png for each {name: G}: seeds 1 and 2 at psi 0.7, each row one layer swapped."""
    for model, G in models.items():
        grid = probe_grid(G, map_seed(G, 1, psi=0.7), map_seed(G, 2, psi=0.7), list(range(G.num_ws)))
        Image.fromarray(grid).save(folder / f"probe_{model}.png")


if __name__ == "__main__":
    main()
