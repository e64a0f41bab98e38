"""Daemon latency with a pack already loaded: health, and a character job's own time against
the same request made the way `rmmv-gan export` makes it.

    python benchmarks/daemon_latency.py                    # default pack, 3 runs per arm
    python benchmarks/daemon_latency.py --runs 5 --steps 50 --cli

One process opens the pack once and serves it with the real waitress server on a free
loopback port (as `rmmv-gan serve`). Then:

- health: GET /api/health, a new connection per request (as a game's plugin polling it),
  idle and again while a job runs;
- A, daemon: POST /api/characters and poll the job; its own time is the job's
  `timings.total` (pipeline and writing, without queue wait); the time the client saw from
  POST to `done` is printed too;
- B, export: `make_characters` and `save_character`, as the export command calls them, on the
  same loaded pack in this process's main thread.

The arms alternate A B A B with the same seeds, so that load from other processes on the
machine (and the first run's warm-up) falls on both alike. `--cli` adds one real
`rmmv-gan export` run (a new process: its wall time includes Python start-up and loading the
pack; its stage times are parsed from its output).
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rmmv_gan.game import GameFolder, save_character  # noqa: E402
from rmmv_gan.packs import open_pack  # noqa: E402
from rmmv_gan.pipeline import CharacterRequest, make_characters  # noqa: E402
from rmmv_gan.server import ServerConfig, create_app, make_server  # noqa: E402

TOKEN = "benchmark-token-0123456789"
DEFAULT_PACK = ROOT / "rmmv_gan" / "packs" / "default"


def call(port: int, method: str, path: str, body=None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    payload = json.loads(resp.read() or b"null")
    conn.close()
    return resp.status, payload


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure_health(port: int, n: int) -> list[float]:
    call(port, "GET", "/api/health")  # the first request pays for lazy imports in Flask
    out = []
    for _ in range(n):
        t = time.perf_counter()
        status, body = call(port, "GET", "/api/health")
        out.append(time.perf_counter() - t)
        assert status == 200 and body["status"] == "ok", body
    return out


def daemon_job(port: int, body: dict, poll: float = 0.02) -> tuple[float, float, dict]:
    """(job's own total, POST-to-done seen by the client, stage timings)."""
    t = time.perf_counter()
    status, sub = call(port, "POST", "/api/characters", body)
    assert status == 202, sub
    while True:
        status, job = call(port, "GET", f"/api/jobs/{sub['job']}")
        assert status == 200, job
        if job["state"] not in ("queued", "running"):
            break
        time.sleep(poll)
    seen = time.perf_counter() - t
    assert job["state"] == "done", job
    return job["timings"]["total"], seen, job["timings"]


def export_job(opened, folder, body: dict) -> tuple[float, dict]:
    """The export command's calls for one character: (wall time, stage timings)."""
    req = CharacterRequest(**body).resolved(opened.pack)
    t = time.perf_counter()
    character = make_characters(opened, [req], progress=lambda stage, fraction: None)[0]
    save_character(folder, character, overwrite=False)
    return time.perf_counter() - t, character.metadata["timings"]


def cli_export(pack: Path, out: Path, body: dict) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "rmmv_gan.cli", "export", "--pack", str(pack), "--out", str(out),
           "--seed", str(body["seed"]), "--name", body["name"]]
    if body.get("steps") is not None:
        cmd += ["--steps", str(body["steps"])]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    wall = time.perf_counter() - t
    stages = {k: float(v) for k, v in re.findall(r"(\w+) ([\d.]+)s", proc.stdout.split("(", 1)[1])}
    return wall, stages


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pack", type=Path, default=DEFAULT_PACK)
    ap.add_argument("--runs", type=int, default=3, help="character jobs per arm")
    ap.add_argument("--steps", type=int, default=None, help="projection steps (default: the pack's)")
    ap.add_argument("--health", type=int, default=50, help="health requests")
    ap.add_argument("--seed", type=int, default=1000, help="first seed; run i uses seed + i in both arms")
    ap.add_argument("--cli", action="store_true", help="also one real `rmmv-gan export` process")
    args = ap.parse_args()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; pack {args.pack}")
    t = time.perf_counter()
    opened = open_pack(args.pack)
    print(f"pack opened in {time.perf_counter() - t:.2f} s (once, shared by both arms)")
    with tempfile.TemporaryDirectory() as tmp:
        game = Path(tmp) / "game"
        for sub in ("js", "img/characters", "img/faces"):
            (game / sub).mkdir(parents=True)
        (game / "js" / "rpg_core.js").write_text("// MV")
        export_root = Path(tmp) / "export"
        export_root.mkdir()
        for sub in ("js", "img/characters", "img/faces"):
            (export_root / sub).mkdir(parents=True)
        (export_root / "js" / "rpg_core.js").write_text("// MV")
        app = create_app(ServerConfig(project=game, port=0, token=TOKEN, write_server_json=False), opened)
        server = make_server(app)
        port = server.effective_port
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            health = measure_health(port, args.health)
            print(f"\nhealth, {args.health} requests: median {statistics.median(health) * 1000:.2f} ms, "
                  f"p95 {percentile(health, 0.95) * 1000:.2f} ms, max {max(health) * 1000:.2f} ms")

            # One short character per arm first: torch's first calls (kernel choice, allocator)
            # are slow and would otherwise count against whichever arm runs first.
            warm = {"seed": args.seed, "steps": 2}
            daemon_job(port, warm | {"name": "warm_daemon"})
            export_job(opened, GameFolder(export_root), warm | {"name": "warm_export"})

            steps = args.steps or opened.pack.projection_steps
            print(f"\ncharacter jobs, {steps} projection steps, arms interleaved A B A B:")
            print(f"{'run':>3} {'seed':>6} | {'A daemon job s':>14} {'A seen s':>9} {'A projection':>12} | "
                  f"{'B export s':>10} {'B projection':>12} | {'A/B':>6}")
            ratios, rows = [], []
            for i in range(args.runs):
                seed = args.seed + i
                body = {"seed": seed, "steps": args.steps}
                job_s, seen_s, job_t = daemon_job(port, body | {"name": f"daemon_{seed}"})
                exp_s, exp_t = export_job(opened, GameFolder(export_root), body | {"name": f"export_{seed}"})
                ratios.append(job_s / exp_s)
                rows.append((job_s, exp_s))
                print(f"{i + 1:>3} {seed:>6} | {job_s:>14.2f} {seen_s:>9.2f} {job_t['projection']:>12.2f} | "
                      f"{exp_s:>10.2f} {exp_t['projection']:>12.2f} | {ratios[-1]:>6.3f}")
            total_a, total_b = sum(r[0] for r in rows), sum(r[1] for r in rows)
            print(f"sum: daemon {total_a:.2f} s, export {total_b:.2f} s, ratio {total_a / total_b:.3f}; "
                  f"median of per-run ratios {statistics.median(ratios):.3f}")

            # Health while a job runs: what a game's plugin sees when it polls during generation
            # (the worker thread and the request threads share the GIL).
            status, sub = call(port, "POST", "/api/characters", {"seed": args.seed, "name": "busy", "steps": steps})
            assert status == 202, sub
            busy = []
            while call(port, "GET", f"/api/jobs/{sub['job']}")[1]["state"] in ("queued", "running"):
                busy += measure_health(port, 1)
                time.sleep(0.05)  # a poller's pace: a tight loop would itself slow the job it waits on
            print(f"\nhealth during a job, {len(busy)} requests: median {statistics.median(busy) * 1000:.2f} ms, "
                  f"p95 {percentile(busy, 0.95) * 1000:.2f} ms, max {max(busy) * 1000:.2f} ms")

            if args.cli:
                body = {"seed": args.seed, "steps": args.steps, "name": f"cli_{args.seed}"}
                wall, stages = cli_export(args.pack, Path(tmp) / "cli", body)
                print(f"\nrmmv-gan export (one process): wall {wall:.2f} s including start-up and loading; "
                      f"stages {sum(stages.values()):.2f} s ({', '.join(f'{k} {v:.2f}' for k, v in stages.items())})")
        finally:
            server.close()
            app.extensions["rmmv_gan"]["jobs"].close()
            thread.join(5)


if __name__ == "__main__":
    main()
