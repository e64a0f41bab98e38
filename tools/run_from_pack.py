"""Start a training run from a pack's model (when the original run's checkpoint is gone).

The pack holds G_ema and D (float16), not the trainer's state. This script builds a trainer
for the matching procedural renderer and loads the pack's networks into it (G and G_ema both
from the pack's G_ema). The face model was also trained with learned expression ws at its
expression layers, which the pack lacks: they are fitted with the networks frozen (on renderer
pairs, the trainer's own loss). It writes `checkpoint.pt`, so that the same
`rmmv-gan train --data ... --outdir RUN` command resumes from it (optimiser state fresh).

    python tools/run_from_pack.py --pack rmmv_gan/packs/default --outdir runs/face3 --step 22250
    python tools/run_from_pack.py --model sprite --pack rmmv_gan/packs/default --outdir runs/sprite2 --step 31250
"""

import argparse
import time

import torch

from rmmv_gan import procedural
from rmmv_gan.latent import load_w
from rmmv_gan.models import load_discriminator, load_generator
from rmmv_gan.packs import load_pack
from rmmv_gan.train import TrainConfig, Trainer


def _emotion_mode(pack) -> str:
    """The expression mode a pack's face model was trained with: its emotions' mix mode."""
    modes = {e.face.mode for e in pack.emotions}
    return "offset" if modes == {"offset"} else "replace"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["face", "sprite"], default="face")
    ap.add_argument("--pack", required=True)
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--step", type=int, required=True, help="the step count the pack's model was exported at")
    ap.add_argument("--expression-layers", default="2,3,4", help="face only; empty for none")
    ap.add_argument("--expression-mode", choices=["replace", "offset"], default=None,
                    help="face only (TrainConfig.expression_mode); default: as the pack's emotions mix")
    ap.add_argument("--fit-steps", type=int, default=300, help="steps fitting the expression ws alone")
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    pack = load_pack(args.pack)
    path = pack.model_path(args.model)
    layers = [int(i) for i in args.expression_layers.split(",") if i.strip()] if args.model == "face" else []
    cfg = TrainConfig(data="portraits" if args.model == "face" else "sprites", outdir=args.outdir, steps=args.step,
                      recon_steps=args.step, batch=args.batch, expression_layers=layers,
                      expression_mode=args.expression_mode or _emotion_mode(pack))
    trainer = Trainer(cfg)
    G = load_generator(path)
    D = load_discriminator(path)
    state = {k: v.float() for k, v in G.state_dict().items()}
    trainer.G.load_state_dict(state)
    trainer.G_ema.load_state_dict(state)
    trainer.D.load_state_dict({k: v.float() for k, v in D.state_dict().items()})
    trainer.step = args.step
    if not layers:
        trainer.save_checkpoint()
        print(f"wrote {trainer.checkpoint_path}")
        return
    with torch.no_grad():
        trainer.expression_ws.copy_(trainer.G.mapping.w_avg + trainer._expression_offsets)
        # Start from the pack's emotion presets where it has them: the learned w of each
        # expression at its expression layers (build_default_pack.learned_emotion_presets).
        for i, expression in enumerate(procedural.EXPRESSIONS):
            preset = pack.preset_path("face", expression)
            if preset.exists():
                trainer.expression_ws[i] = load_w(preset, G.num_ws, G.w_dim)[layers[0]]
    # Fit the expression ws alone: the networks are frozen.
    trainer.G.requires_grad_(False)
    opt = torch.optim.Adam([trainer.expression_ws], lr=0.01, betas=(0.9, 0.99))
    t0 = time.perf_counter()
    for i in range(args.fit_steps):
        loss = trainer._reconstruction_loss()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i % 25 == 0 or i == args.fit_steps - 1:
            print(f"fit {i} loss {loss.item():.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    trainer.G.requires_grad_(True)
    trainer.save_checkpoint()
    print(f"wrote {trainer.checkpoint_path}")


if __name__ == "__main__":
    main()
