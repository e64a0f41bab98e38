"""Seconds per image of the synthesis network for official-size configurations.

Random weights (speed does not depend on them), fp32 on the CPU, and CUDA when present.
Also prints the same run's single-precision matrix-multiply rate, so that figures from
different machines can be put side by side.

    python benchmarks/synthesis.py                 # all configs, batch 1 and 8
    python benchmarks/synthesis.py --configs sg3t --batches 1 --ref
        (--ref also times the official op sequence, e.g. zero-stuffing upfirdn2d)
    python benchmarks/synthesis.py --against ../wt-ref --batches 1 --reps 5
        (this checkout and another one side by side, interleaved, on the same weights and w:
        median s / image of each, their ratio, and the largest relative difference of the
        images; see benchmarks/sidebyside.py)
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch

import sidebyside
from rmmv_gan.models import new_network

COMMON = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3)
CONFIGS = {  # official-size configurations at 256 px (benchmarks/projection.py uses them too)
    "sg2": ("stylegan2", dict(COMMON, channel_base=32768, channel_max=512, mapping_kwargs=dict(num_layers=8))),
    "sg3t": ("stylegan3", dict(COMMON, channel_base=32768, channel_max=512)),
    "sg3r": ("stylegan3", dict(COMMON, channel_base=65536, channel_max=1024, conv_kernel=1, use_radial_filters=True)),
}


def random_network(config):
    """The generator of `config` with seed-0 random weights (speed does not depend on them)."""
    arch, kwargs = CONFIGS[config]
    torch.manual_seed(0)
    return new_network("G", arch, **kwargs).eval()


def network_from(config, state):
    """The generator of `config` holding `state` (the weights the first worker wrote), frozen."""
    arch, kwargs = CONFIGS[config]
    G = new_network("G", arch, **kwargs).eval().requires_grad_(False)
    G.load_state_dict(state)
    return G


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


# --against: the worker side (runs in each checkout's own process)

_loaded = {}  # config -> (G, ws) in this worker


def _make(config, batch, path):
    """Random weights and w of one configuration, written for both sides to load."""
    G = random_network(config)
    ws = G.mapping(torch.randn(batch, G.z_dim, generator=torch.Generator().manual_seed(1)), None).detach()
    torch.save({"state": G.state_dict(), "ws": ws}, path)


def _load(config, path):
    saved = torch.load(path)
    G = network_from(config, saved["state"])
    _loaded[config] = (G, saved["ws"])
    with torch.no_grad():
        G.synthesis(saved["ws"], noise_mode="const")  # warm-up: filter plans, allocator


def _time(config):
    G, ws = _loaded[config]
    with torch.no_grad():
        t = time.perf_counter()
        G.synthesis(ws, noise_mode="const")
        return [(time.perf_counter() - t) / ws.shape[0]]


def _save_output(config, path):
    G, ws = _loaded[config]
    with torch.no_grad():
        torch.save(G.synthesis(ws, noise_mode="const"), path)


def against(args):
    sides = sidebyside.start(__file__, args.against, args.threads)
    print(f"median of {args.reps} interleaved runs per side; ratio = ref / new")
    print("| config | batch | new s / image | ref s / image | ratio | max rel. difference |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs.split(","):
            for batch in (int(b) for b in args.batches.split(",")):
                inputs = str(Path(tmp) / f"{name}-{batch}.pt")
                sides[0].call("make", config=name, batch=batch, path=inputs)
                for side in sides:
                    side.call("load", config=name, path=inputs)
                times = sidebyside.interleaved(sides, lambda side: side.call("time", config=name), args.reps)
                outputs = {side.label: str(Path(tmp) / f"{name}-{batch}-{side.label}.out") for side in sides}
                for side in sides:
                    side.call("save_output", config=name, path=outputs[side.label])
                diff = sidebyside.max_relative_difference(outputs["new"], outputs["ref"])
                new, ref, ratio = sidebyside.ratio_row(times)
                print(f"| {name} | {batch} | {new:.3f} | {ref:.3f} | {ratio:.2f}x | {diff:.1e} |", flush=True)
    for side in sides:
        side.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="sg2,sg3t,sg3r", help="comma-separated names among " + ", ".join(CONFIGS))
    ap.add_argument("--batches", default="1,8", help="comma-separated batch sizes")
    ap.add_argument("--reps", type=int, default=2, help="timed runs per configuration (per side with --against)")
    ap.add_argument("--ref", action="store_true", help="also time the official (reference) op sequence")
    sidebyside.add_arguments(ap, torch.get_num_threads())
    args = ap.parse_args()
    if args.serve:
        return sidebyside.serve({"make": _make, "load": _load, "time": _time, "save_output": _save_output})
    if args.against:
        return against(args)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    for device in devices:
        print(f"{device.type}: fp32 matmul {matmul_gflops(device):.0f} GFLOP/s")
    print("| config | device | batch | impl | s / image |")
    print("| --- | --- | --- | --- | --- |")
    for name in args.configs.split(","):
        G = random_network(name).requires_grad_(False)
        for device in devices:
            G = G.to(device)
            for batch in (int(b) for b in args.batches.split(",")):
                impls = ["fast", "ref"] if (args.ref and CONFIGS[name][0] == "stylegan3") else ["fast"]
                for impl in impls:
                    s = seconds_per_image(G, batch, device, args.reps, impl)
                    print(f"| {name} | {device.type} | {batch} | {impl} | {s:.3f} |", flush=True)


if __name__ == "__main__":
    main()
