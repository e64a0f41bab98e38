"""Side-by-side timing of two checkouts of rmmv-gan in one run (`--against REF`).

Absolute times differ from machine to machine and from minute to minute on a shared one, so
a speed-up only counts as a ratio measured in one run. Each side is a worker process running
the calling benchmark script in `--serve` mode with PYTHONPATH set to its tree (so that
`import rmmv_gan` finds that tree's code, ahead of any installed copy); the parent imports no
rmmv-gan code at all. Both workers load the same weights and inputs from one file written by
the first, use the same thread count, and are timed alternately (A B, B A, A B, ...), so that
a change in the machine's load falls on both sides alike. Reported figures are medians.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import traceback
from pathlib import Path

_MARK = "@@sidebyside "  # protocol lines; anything else a worker prints is passed through


class Side:
    """One checkout's worker process; `call(op, **args)` runs a handler there."""

    def __init__(self, label: str, tree: Path, script: Path, threads: int):
        self.label, self.tree = label, Path(tree).resolve()
        if not (self.tree / "rmmv_gan" / "__init__.py").is_file():
            raise SystemExit(f"Error: {self.tree} is not an rmmv-gan checkout (no rmmv_gan/__init__.py)")
        env = dict(os.environ, PYTHONPATH=str(self.tree), OMP_NUM_THREADS=str(threads),
                   MKL_NUM_THREADS=str(threads))
        self.proc = subprocess.Popen([sys.executable, str(script), "--serve"], cwd=self.tree, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def call(self, op: str, **args):
        self.proc.stdin.write(json.dumps({"op": op, "args": args}) + "\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if not line.startswith(_MARK):
                sys.stderr.write(line)
                continue
            reply = json.loads(line[len(_MARK):])
            if "error" in reply:
                raise RuntimeError(f"{self.label} ({self.tree}) failed in {op}:\n{reply['error']}")
            return reply["result"]
        raise RuntimeError(f"{self.label} ({self.tree}): the worker exited during {op}")

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def add_arguments(ap, default_threads: int) -> None:
    """The options every side-by-side benchmark takes: --against, --threads, and the hidden
    worker mode --serve."""
    import argparse

    ap.add_argument("--against", metavar="TREE", help="another rmmv-gan checkout to time side by side with this one")
    ap.add_argument("--threads", type=int, default=default_threads,
                    help="intra-op threads of each side with --against (default: this process's)")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # worker mode of --against


def serve(handlers: dict):
    """The worker's loop: one JSON request per stdin line, one marked JSON reply each."""
    import torch

    def setup(threads):
        torch.set_num_threads(threads)
        import rmmv_gan

        return {"rmmv_gan": str(Path(rmmv_gan.__file__).parent), "torch": torch.__version__,
                "threads": torch.get_num_threads()}

    handlers = {"setup": setup, **handlers}
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = {"result": handlers[request["op"]](**request["args"])}
        except Exception:  # noqa: BLE001 - reported to the parent, which stops
            reply = {"error": traceback.format_exc()}
        sys.stdout.write(_MARK + json.dumps(reply) + "\n")
        sys.stdout.flush()


def start(script: str, against: str, threads: int) -> list[Side]:
    """This checkout ("new") and the reference tree ("ref"), each in its own worker."""
    here = Path(script).resolve().parents[1]
    sides = [Side("new", here, Path(script).resolve(), threads), Side("ref", Path(against), Path(script).resolve(), threads)]
    for side in sides:
        info = side.call("setup", threads=threads)
        print(f"{side.label}: {info['rmmv_gan']} (torch {info['torch']}, {info['threads']} threads)")
    return sides


def interleaved(sides: list[Side], measure, reps: int) -> dict[str, list[float]]:
    """measure(side) -> seconds, alternating which side goes first: A B, B A, A B, ..."""
    times = {side.label: [] for side in sides}
    for rep in range(reps):
        for side in (sides if rep % 2 == 0 else sides[::-1]):
            times[side.label].extend(measure(side))
    return times


def ratio_row(times: dict[str, list[float]]) -> tuple[float, float, float]:
    """(median new, median ref, ref / new): the speed-up of this checkout."""
    new, ref = statistics.median(times["new"]), statistics.median(times["ref"])
    return new, ref, ref / new


def max_relative_difference(path_new: str, path_ref: str) -> float:
    """max |new - ref| / max |ref| of two saved tensors."""
    import torch

    a, b = torch.load(path_new), torch.load(path_ref)
    return float((a - b).abs().max() / b.abs().max())
