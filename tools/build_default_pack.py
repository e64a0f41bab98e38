"""Build the embedded default pack from two training runs: every file of
rmmv_gan/packs/default comes from this script (see docs/default-pack.md).

    python tools/build_default_pack.py --sprite-run runs/sprite --face-run runs/portrait \
        --out rmmv_gan/packs/default --steps 200 --probes docs/images

1. The models: G_ema and D of each run's checkpoint, stored as float16.
2. Archetype presets, the way the source article made its presets: the procedural artist
   draws a character from a chosen latent vector (a sprite sheet and the portrait of the same
   character, since components 0-20 mean the same in both renderers), and each drawing is
   projected into its model.
3. Emotion presets: the face run's learned expression ws (TrainConfig.expression_layers: the
   ws the face model was trained to take the expression from), at the expression layers of
   the average w. A run without them: the same (median) person drawn with each expression and
   projected.
4. The sprite-to-face encoder (`--encoder`, from `rmmv-gan train-encoder`), copied in.
5. The manifest, with the layer groups; and probe grids of both models for the docs.

`--keep-sprite` keeps the pack's sprite model and sprite presets (when only the face side is
retrained, or the sprite run's checkpoint is gone).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from statistics import NormalDist

import numpy as np
import torch
from PIL import Image

from rmmv_gan import procedural
from rmmv_gan.latent import map_seed, save_w
from rmmv_gan.models import load_generator
from rmmv_gan.probe import probe_grid
from rmmv_gan.projector import ProjectionSettings, project
from rmmv_gan.train import TrainConfig, Trainer

PPF = NormalDist().inv_cdf

# Latent components (docs/procedural.md) at the quantile that selects a trait.
ARCHETYPES = {
    "heroine": {4: 0.32, 6: 0.89, 2: 0.85, 7: 0.05, 8: 0.8, 17: 0.2, 18: 0.1, 0: 0.3},  # long hair, dress
    "villain": {6: 0.45, 17: 0.82, 9: 0.05, 18: 0.7, 7: 0.75, 2: 0.05, 0: 0.2},  # dark hooded robe, cape
    "knight": {6: 0.67, 4: 0.1, 18: 0.9, 15: 0.2, 17: 0.2, 2: 0.4, 0: 0.6},  # armour, short hair, pauldrons
    "mage": {6: 0.45, 17: 0.7, 7: 0.62, 8: 0.7, 4: 0.5, 1: 0.9, 0: 0.5},  # robe, hat, blue cloth
}

PACK_LAYERS = {
    # Chosen from the probe grids (docs/images/probe_*.png); see docs/default-pack.md.
    # Mixing layers 7-9 carries a palette over cleanly; a middle band (4-6) hardly shows and
    # 6-8 gives mottled cloth, since style mixing only ever trained suffixes of the layers.
    "sprite": {"shape": [0, 1, 2, 3], "detail": [4, 5, 6], "colours": [7, 8, 9]},
    # Expression: the layers the face model was trained to take the expression from alone.
    "face": {"shape": [0], "look": [1], "expression": [2, 3, 4], "colours": [5, 6, 7]},
}


def vector(traits: dict, dim: int) -> np.ndarray:
    v = np.zeros(dim, np.float32)
    for i, q in traits.items():
        v[i] = PPF(q)
    return v


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


def to_target(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1).float() / 127.5 - 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sprite-run", type=Path, default=None)
    ap.add_argument("--keep-sprite", action="store_true", help="keep OUT's sprite model and sprite presets")
    ap.add_argument("--encoder", type=Path, default=None, help="encoder.safetensors from rmmv-gan train-encoder")
    ap.add_argument("--face-run", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--probes", type=Path, default=None, help="folder for probe_sprite.png and probe_face.png")
    args = ap.parse_args()
    t0 = time.perf_counter()
    out = args.out
    (out / "presets" / "sprite").mkdir(parents=True, exist_ok=True)
    (out / "presets" / "face").mkdir(parents=True, exist_ok=True)
    if not args.keep_sprite:
        if args.sprite_run is None:
            ap.error("give --sprite-run, or --keep-sprite")
        export_run(args.sprite_run, out / "sprite.safetensors")
    face_trainer = export_run(args.face_run, out / "face.safetensors")
    G_s, G_f = load_generator(out / "sprite.safetensors"), load_generator(out / "face.safetensors")
    settings = ProjectionSettings(steps=args.steps, loss="pixel", optimize_noise=False)

    for name, traits in ARCHETYPES.items():
        v = vector(traits, procedural.SPRITE_DIM)
        sprite_target = to_target(procedural.sprite_from_vector(v))
        face_target = to_target(procedural.portrait_from_vector(v[: procedural.PORTRAIT_DIM]))
        if not args.keep_sprite:
            save_w(out / "presets" / "sprite" / f"{name}.npy", project(G_s, sprite_target, settings).ws[0])
        save_w(out / "presets" / "face" / f"{name}.npy", project(G_f, face_target, settings).ws[0])
        print(f"archetype {name}: presets projected ({time.perf_counter() - t0:.0f} s)")

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
                 **({"encoder": "encoder.safetensors"} if args.encoder is not None else {})},
        "archetypes": {
            name: {"psi": 0.6, "sprite": {"preset": name, "layers": "colours"},
                   "face": {"preset": name, "layers": "look"}}
            for name in ARCHETYPES
        },
        # Neutral is a mix too: the projected head may wear any expression.
        "emotions": [{"name": e, "preset": e, "layers": "expression"} for e in procedural.EXPRESSIONS],
        # With the encoder its face is used as it is (steps 0); a request may ask for refinement.
        "projection": {"steps": 0 if args.encoder is not None else 200, "loss": "pixel", "wplus": False,
                       "noise": False, "psi": 0.6},
        "default_archetype": "heroine",
    }
    (out / "pack.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

    if args.probes is not None:
        for model, G in (("sprite", G_s), ("face", G_f)):
            grid = probe_grid(G, map_seed(G, 1, psi=0.7), map_seed(G, 2, psi=0.7), list(range(G.num_ws)))
            Image.fromarray(grid).save(args.probes / f"probe_{model}.png")
    print(f"built {out} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
