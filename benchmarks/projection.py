"""Seconds per projection step on the CPU (forward and backward, pixel loss), random weights
at official size, and how long the one-off w statistics take.

    python benchmarks/projection.py [--network FILE] [--config sg2] [--steps 10]
    python benchmarks/projection.py --against ../wt-ref --config sg3t --steps 1 --reps 2
        (this checkout and another one side by side, interleaved: the same weights, target and
        settings (a 200-step W projection); median s / step of each and their ratio, and the
        largest relative difference of the first step's gradient; see benchmarks/sidebyside.py)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import sidebyside
from synthesis import CONFIGS, network_from, random_network
from rmmv_gan import load_generator, projector
from rmmv_gan.projector import ProjectionCancelled, ProjectionSettings, project, w_stats

def single(args):
    torch.manual_seed(0)
    G = load_generator(args.network) if args.network else random_network(args.config)
    name = args.network or f"{args.config} 256 px (official size, random weights)"
    t = time.perf_counter()
    w_stats(G)
    print(f"{name}: w statistics (10000 samples, once per model) {time.perf_counter() - t:.2f} s")
    with torch.no_grad():
        target = G.synthesis(G.mapping(torch.randn(1, G.z_dim), None), noise_mode="const")[0]
    print("| mode | s / step |")
    print("| --- | --- |")
    for wplus in (False, True):
        project(G, target, ProjectionSettings(steps=1, loss="pixel", wplus=wplus))  # warm-up
        before = projector.w_stats_computations
        t = time.perf_counter()
        project(G, target, ProjectionSettings(steps=args.steps, loss="pixel", wplus=wplus))
        per_step = (time.perf_counter() - t) / args.steps
        assert projector.w_stats_computations == before, "w statistics were recomputed"
        print(f"| {'W+' if wplus else 'W'} | {per_step:.3f} |", flush=True)


# --against: the worker side (runs in each checkout's own process)

_loaded = {}


def _make(config, path):
    """Random weights and a target image the network draws, written for both sides to load."""
    G = random_network(config)
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        target = G.synthesis(G.mapping(z, None, truncation_psi=0.7), noise_mode="const")[0]
    torch.save({"state": G.state_dict(), "target": target}, path)


def _load(config, path):
    saved = torch.load(path)
    G = network_from(config, saved["state"])
    w_stats(G)  # once per model, not part of a step
    _loaded["G"], _loaded["target"] = G, saved["target"]


def _steps(count, schedule):
    """Seconds of each of the first `count` steps of a `schedule`-step W projection, from the
    start of a step (when project() asks whether to cancel) to its end (when it reports
    progress): the model copy and loss set-up before the first step are not counted."""
    starts, ends = [], []

    def cancel():
        starts.append(time.perf_counter())
        return len(starts) > count

    try:
        project(_loaded["G"], _loaded["target"], ProjectionSettings(steps=schedule, loss="pixel"),
                progress=lambda *_: ends.append(time.perf_counter()), cancel=cancel)
    except ProjectionCancelled:
        pass
    return [b - a for a, b in zip(starts, ends)]


def _save_gradient(path):
    """The gradient of the pixel distance with respect to w (at w_avg, broadcast to all layers)."""
    G, target = _loaded["G"], _loaded["target"]
    w = w_stats(G).w_avg.clone().requires_grad_(True)
    image = G.synthesis(w.expand(1, G.num_ws, -1), noise_mode="const")
    projector.PixelDistance(target[None])(image).sum().backward()
    torch.save(w.grad, path)


def against(args):
    sides = sidebyside.start(__file__, args.against, args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        inputs = str(Path(tmp) / "inputs.pt")
        sides[0].call("make", config=args.config, path=inputs)
        for side in sides:
            side.call("load", config=args.config, path=inputs)
        grads = {side.label: str(Path(tmp) / f"grad-{side.label}.pt") for side in sides}
        for side in sides:
            side.call("save_gradient", path=grads[side.label])
        diff = sidebyside.max_relative_difference(grads["new"], grads["ref"])
        times = sidebyside.interleaved(sides, lambda side: side.call("steps", count=args.steps, schedule=200),
                                       args.reps)
    for side in sides:
        side.close()
    new, ref, ratio = sidebyside.ratio_row(times)
    print(f"{args.config} 256 px, 200-step W projection, pixel loss; median of {args.reps} x {args.steps} "
          f"interleaved steps per side; ratio = ref / new")
    print("| config | new s / step | ref s / step | ratio | max rel. difference of dL/dw |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| {args.config} | {new:.3f} | {ref:.3f} | {ratio:.2f}x | {diff:.1e} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--network", default=None, help="a model file instead of a random official-size one")
    ap.add_argument("--config", default="sg2", choices=sorted(CONFIGS), help="the random network's configuration")
    ap.add_argument("--steps", type=int, default=10, help="timed steps (per repetition and side with --against)")
    ap.add_argument("--reps", type=int, default=2, help="interleaved repetitions per side with --against")
    sidebyside.add_arguments(ap, torch.get_num_threads())
    args = ap.parse_args()
    if args.serve:
        return sidebyside.serve({"make": _make, "load": _load, "steps": _steps, "save_gradient": _save_gradient})
    if args.against:
        return against(args)
    return single(args)


if __name__ == "__main__":
    main()
