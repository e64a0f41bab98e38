"""Wall time of `rmmv-gan export` (model loading included), this checkout against another,
side by side in one run: the runs alternate, so both see the same machine.

    python benchmarks/export_speed.py --against /path/to/other/checkout [--reps 3] [--count 1]

Each run is a fresh `python -m rmmv_gan.cli export --out TMP --seed 1 [--count N]` with
PYTHONPATH set to the checkout under test; prints the median wall seconds of each and the ratio.
Both checkouts' modules are compiled to bytecode first, as `pip install` leaves a package:
otherwise a Python that does not write bytecode (PYTHONDONTWRITEBYTECODE) compiles them on
every run, about 0.3 s of each export.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def one(tree: Path, count: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        env = dict(os.environ, PYTHONPATH=str(tree))
        cmd = [sys.executable, "-m", "rmmv_gan.cli", "export", "--out", out, "--seed", "1", "--count", str(count)]
        t = time.perf_counter()
        r = subprocess.run(cmd, env=env, cwd=out, capture_output=True, text=True)
        took = time.perf_counter() - t
        if r.returncode != 0:
            raise SystemExit(f"{tree}: export failed: {r.stderr.strip().splitlines()[-1:]}")
        return took


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", type=Path, required=True, help="another rmmv-gan checkout (its root folder)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--count", type=int, default=1, help="characters per export (--count)")
    args = ap.parse_args()
    for tree in (HERE, args.against.resolve()):
        compileall.compile_dir(tree / "rmmv_gan", quiet=1)
    times = {"this": [], "other": []}
    for _ in range(args.reps):
        times["other"].append(one(args.against.resolve(), args.count))
        times["this"].append(one(HERE, args.count))
    a, b = statistics.median(times["this"]), statistics.median(times["other"])
    print(f"export --count {args.count}, median of {args.reps}: this checkout {a:.2f} s, "
          f"{args.against} {b:.2f} s, ratio {b / a:.1f}x")
    print("runs (s): this " + ", ".join(f"{t:.2f}" for t in times["this"])
          + "; other " + ", ".join(f"{t:.2f}" for t in times["other"]))


if __name__ == "__main__":
    main()
