"""Seconds per projection step on the CPU, pixel loss, for the StyleGAN2 256 px official-size
configuration (random weights), and how long the one-off w statistics take.

    python benchmarks/projection.py [--network FILE] [--steps 10]
"""

from __future__ import annotations

import argparse
import time

import torch

from rmmv_gan import load_generator, projector
from rmmv_gan.models import new_network
from rmmv_gan.projector import ProjectionSettings, project, w_stats

SG2_256 = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3, channel_base=32768,
               channel_max=512, mapping_kwargs=dict(num_layers=8))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--network", default=None, help="a model file instead of the random StyleGAN2 256 px one")
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    torch.manual_seed(0)
    G = load_generator(args.network) if args.network else new_network("G", "stylegan2", **SG2_256).eval()
    name = args.network or "StyleGAN2 256 px (official size, random weights)"
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


if __name__ == "__main__":
    main()
