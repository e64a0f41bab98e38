"""Seconds per image of the synthesis network for official-size configurations.

Random weights (speed does not depend on them), fp32 on the CPU, and CUDA when present.
Also prints the same run's single-precision matrix-multiply rate, so that figures from
different machines can be put side by side.

    python benchmarks/synthesis.py                 # all configs, batch 1 and 8
    python benchmarks/synthesis.py --configs sg3t --batches 1 --ref
        (--ref also times the official op sequence, e.g. zero-stuffing upfirdn2d)
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from rmmv_gan.models import new_network

CONFIGS = {
    "sg2": ("stylegan2", dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3,
                              channel_base=32768, channel_max=512, mapping_kwargs=dict(num_layers=8))),
    "sg3t": ("stylegan3", dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3,
                               channel_base=32768, channel_max=512)),
    "sg3r": ("stylegan3", dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3,
                               channel_base=65536, channel_max=1024, conv_kernel=1, use_radial_filters=True)),
}


def matmul_gflops(device, n=2048, reps=5) -> float:
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    _sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def seconds_per_image(G, batch, device, reps, impl="fast") -> float:
    for m in G.modules():
        if hasattr(m, "impl"):
            m.impl = impl
    ws = G.mapping(torch.randn(batch, G.z_dim, device=device), None)
    with torch.no_grad():
        G.synthesis(ws, noise_mode="const")  # warm-up: filter plans, allocator, kernels
        _sync(device)
        t = time.perf_counter()
        for _ in range(reps):
            G.synthesis(ws, noise_mode="const")
        _sync(device)
    return (time.perf_counter() - t) / (reps * batch)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="sg2,sg3t,sg3r")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--ref", action="store_true", help="also time the official (reference) op sequence")
    args = ap.parse_args()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    for device in devices:
        print(f"{device.type}: fp32 matmul {matmul_gflops(device):.0f} GFLOP/s")
    print("| config | device | batch | impl | s / image |")
    print("| --- | --- | --- | --- | --- |")
    for name in args.configs.split(","):
        arch, kwargs = CONFIGS[name]
        torch.manual_seed(0)
        G = new_network("G", arch, **kwargs).eval().requires_grad_(False)
        for device in devices:
            G = G.to(device)
            for batch in (int(b) for b in args.batches.split(",")):
                impls = ["fast", "ref"] if (args.ref and arch == "stylegan3") else ["fast"]
                for impl in impls:
                    s = seconds_per_image(G, batch, device, args.reps, impl)
                    print(f"| {name} | {device.type} | {batch} | {impl} | {s:.3f} |", flush=True)


if __name__ == "__main__":
    main()
