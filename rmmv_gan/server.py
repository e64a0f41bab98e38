"""The local daemon: an HTTP transport over the character pipeline (docs/api.md).

It keeps a pack's generators loaded, so a character costs only the pipeline. Requests are
checked here (strict JSON, field-named errors from `CharacterRequest.resolved`), queued, and
run one at a time by a worker thread; results are written with `rmmv_gan.game.save_character`
(atomic, never overwriting). No pipeline logic lives in this file.

Security: loopback by default; a bearer token on everything but `/api/health` and the page
itself (which holds no data); a Host check against DNS rebinding; CORS only for the daemon's
own origins and those configured; writes only under GAME/img/characters, GAME/img/faces and
GAME/rmmv_gan/.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from flask import Blueprint, Flask, current_app, jsonify, request, send_from_directory
from werkzeug.exceptions import HTTPException

from . import __version__
from .game import (AssetExistsError, AssetNameError, GameFolder, _exists_nocase, atomic_write_bytes,
                   character_files, safe_asset_name, save_character)
from .pipeline import Cancelled, CharacterRequest, RequestError, make_character

log = logging.getLogger("rmmv_gan.server")

TEMPLATES = Path(__file__).resolve().parent / "templates"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
FIELDS = {"archetype": (str,), "psi": (int, float), "seed": (int,), "name": (str,), "steps": (int,),
          "emotions": (list,)}
MAX_BODY = 64 * 1024
KEEP_PROBE_IMAGES = 10  # probe grids kept in memory
KEEP_FINISHED = 500  # finished job records kept for GET /api/jobs/ID


@dataclass
class ServerConfig:
    project: str | os.PathLike
    pack_dir: str | os.PathLike | None = None
    host: str = "127.0.0.1"
    port: int = 8765
    device: str = "cpu"
    token: str | None = None  # None: env RMMV_GAN_TOKEN, else generated
    queue_size: int = 8  # jobs waiting (the running one not counted)
    origins: list = field(default_factory=list)  # extra CORS origins (e.g. a local web server of the game)
    runner: Callable | None = None  # (opened, request, progress, cancel) -> Character; default make_character
    write_server_json: bool = True


def resolve_token(explicit: str | None) -> str:
    token = explicit or os.environ.get("RMMV_GAN_TOKEN") or secrets.token_urlsafe(32)
    if not token.isprintable() or any(c.isspace() for c in token) or len(token) < 8:
        raise ValueError("token: use at least 8 printable characters without spaces")
    return token


def url_host(host: str) -> str:
    """The host part of the daemon's URL: loopback for a wildcard bind, IPv6 in brackets."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def allowed_hosts(host: str, port: int) -> set:
    names = {"127.0.0.1", "localhost", "[::1]"}
    if host not in ("", "0.0.0.0", "::"):
        names.add(url_host(host))
    return {f"{n}:{port}".lower() for n in names}


def write_server_json(folder: GameFolder, url: str, token: str) -> Path:
    """GAME/rmmv_gan/server.json {url, token}, atomically, private to the user where the OS can."""
    path = folder.data_dir / "server.json"
    # Private from the first byte (the temporary file is 0600 and is renamed into place):
    # a reader never sees it empty or half written.
    atomic_write_bytes(path, (json.dumps({"url": url, "token": token}, indent=2) + "\n").encode(), overwrite=True,
                       mode=0o600)
    return path


def remove_stale_temporaries(folder: GameFolder, min_age: float = 60.0) -> list:
    """Remove temporary files (`.XXXX.tmp`, see game.atomic_write) left by a killed writer."""
    removed = []
    now = time.time()
    for d in (folder.characters_dir, folder.faces_dir, folder.data_dir / "characters"):
        if not d.is_dir():
            continue
        for p in d.glob(".*.tmp"):
            try:
                if p.is_file() and now - p.stat().st_mtime >= min_age:
                    p.unlink()
                    removed.append(p)
            except OSError:
                pass
    return removed


# --------------------------------------------------------------------------- jobs

class QueueFull(Exception):
    pass


class NameTaken(Exception):
    pass


class Job:
    def __init__(self, request, kind: str = "character"):
        self.id = uuid.uuid4().hex
        self.kind = kind  # "character" (a CharacterRequest) or "probe" (a ProbeRequest)
        self.request = request
        self.image = None  # a probe's PNG, kept in memory
        self.state = "queued"
        self.stage = None
        self.progress = 0.0
        self.result = None
        self.error = None
        self.cancel_requested = False
        self.created = time.time()
        self.timings = None  # seconds per stage once done: the pipeline's, writing, total (queue wait excluded)

    def as_dict(self) -> dict:
        r = self.request
        req = vars(r).copy() if self.kind == "probe" else {
            "archetype": r.archetype, "psi": r.psi, "seed": r.seed, "name": r.name, "steps": r.steps,
            "emotions": r.emotions}
        return {"id": self.id, "kind": self.kind, "state": self.state, "stage": self.stage,
                "progress": round(self.progress, 4), "result": self.result, "error": self.error, "request": req,
                "timings": self.timings}


@dataclass
class ProbeRequest:
    """The layer probe (rmmv_gan.probe): seeds A and B of one model, one row per layer."""

    model: str
    seeds: list
    psi: float
    layers: list


def parse_probe_body(body, opened) -> ProbeRequest:
    if not isinstance(body, dict):
        raise RequestError("body: must be a JSON object")
    for key in body:
        if key not in ("model", "seeds", "psi", "layers"):
            raise RequestError(f"{key}: unknown field (known: model, seeds, psi, layers)")
    model = body.get("model", "face")
    if model not in ("sprite", "face"):
        raise RequestError(f"model: must be 'sprite' or 'face', not {model!r}")
    num_ws = getattr(opened, model).num_ws
    seeds = body.get("seeds", [1, 2])
    if (not isinstance(seeds, list) or len(seeds) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 2**32 - 1 for x in seeds)):
        raise RequestError("seeds: must be two whole numbers in [0, 4294967295]")
    psi = body.get("psi", 0.7)
    if isinstance(psi, bool) or not isinstance(psi, (int, float)) or not -2 <= psi <= 2:  # NaN fails too
        raise RequestError(f"psi: must be a number in [-2, 2], not {psi!r}")
    layers = body.get("layers", list(range(num_ws)))
    if (not isinstance(layers, list) or not 1 <= len(layers) <= num_ws
            or not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < num_ws for i in layers)):
        raise RequestError(f"layers: must be a list of 1 to {num_ws} layer numbers in [0, {num_ws - 1}]")
    return ProbeRequest(model, seeds, float(psi), layers)


def run_probe(opened, req: ProbeRequest) -> bytes:
    """The probe grid as PNG bytes (nothing is written to disk)."""
    import io

    from PIL import Image

    from .latent import map_seed
    from .probe import probe_grid

    G = getattr(opened, req.model)
    w_a, w_b = (map_seed(G, s, psi=req.psi) for s in req.seeds)
    buf = io.BytesIO()
    Image.fromarray(probe_grid(G, w_a, w_b, req.layers)).save(buf, format="PNG")
    return buf.getvalue()


class JobQueue:
    """One worker thread runs jobs one at a time from a bounded queue; job records are read and
    changed under one lock. A job that fails is recorded as failed; the worker goes on."""

    ACTIVE = ("queued", "running")

    def __init__(self, opened, folder: GameFolder, maxsize: int = 8, runner: Callable | None = None):
        self.opened, self.folder = opened, folder
        self.runner = runner or (lambda opened, req, progress, cancel:
                                 make_character(opened, req, progress=progress, cancel=cancel))
        self.maxsize = maxsize
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.waiting: deque[Job] = deque()  # queued jobs, oldest first; a cancelled one leaves at once
        self.closing = False
        self.durations: deque[float] = deque(maxlen=20)  # seconds, recent successful jobs
        self.jobs: dict[str, Job] = {}
        self.thread = threading.Thread(target=self._work, name="rmmv-gan-worker", daemon=True)
        self.thread.start()

    # -- queries
    def get(self, job_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(job_id)

    def snapshot(self, job_id: str) -> dict | None:
        with self.lock:
            job = self.jobs.get(job_id)
            return job.as_dict() if job else None

    def length(self) -> int:
        with self.lock:
            return sum(j.state in self.ACTIVE for j in self.jobs.values())

    # -- changes
    def submit(self, req, kind: str = "character") -> Job:
        """Queue a resolved request; NameTaken if its files exist or an active job has its name,
        QueueFull if the queue is full."""
        with self.lock:
            if kind == "character":
                key = req.name.lower()
                if any(j.kind == "character" and j.request.name.lower() == key
                       for j in self.jobs.values() if j.state in self.ACTIVE):
                    raise NameTaken(f"name: a queued or running job already makes {req.name!r}")
                for path in character_files(self.folder, req.name).values():
                    if path.parent.is_dir() and _exists_nocase(path.parent, path.name):
                        raise NameTaken(f"name: {req.name!r} is taken ({path.parent.name}/{path.name} exists)")
            if len(self.waiting) >= self.maxsize:
                raise QueueFull(f"the queue is full ({self.maxsize} jobs waiting); try again later")
            job = Job(req, kind)
            self.waiting.append(job)
            self.jobs[job.id] = job
            self.wake.notify()
            self._prune()
        return job

    def cancel(self, job_id: str) -> dict | None:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                return None
            if job.state == "queued":
                job.state, job.error = "cancelled", "cancelled before it started"
                self.waiting.remove(job)
            elif job.state == "running" and job.stage != "writing":  # writing: too late to stop
                job.cancel_requested = True
            return job.as_dict() | {"cancelling": job.cancel_requested}

    def _prune(self):
        finished = [j for j in self.jobs.values() if j.state not in self.ACTIVE]
        for j in sorted(finished, key=lambda j: j.created)[: max(0, len(finished) - KEEP_FINISHED)]:
            del self.jobs[j.id]

    def close(self, timeout: float = 10.0):
        """Stop the worker: queued jobs are cancelled, the running one is asked to stop."""
        with self.lock:
            for j in self.waiting:
                j.state, j.error = "cancelled", "the daemon stopped"
            self.waiting.clear()
            for j in self.jobs.values():  # the running one stops at its next step, unless writing
                if j.state == "running" and j.stage != "writing":
                    j.cancel_requested = True
            self.closing = True
            self.wake.notify_all()
        self.thread.join(timeout)

    # -- the worker
    def _work(self):
        while True:
            with self.lock:
                while not self.waiting and not self.closing:
                    self.wake.wait()
                if self.closing:
                    return
                job = self.waiting.popleft()
                job.state, job.stage = "running", "starting"
            try:
                self._run(job)
            except BaseException as exc:  # noqa: BLE001 - a job never takes the daemon down
                log.exception("job %s failed", job.id)
                with self.lock:
                    job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"

    def _run(self, job: Job):
        started = time.perf_counter()
        def progress(stage, fraction):
            with self.lock:
                job.stage, job.progress = stage, max(job.progress, float(fraction))

        def cancel():
            return job.cancel_requested

        if job.kind == "probe":
            progress("probe", 0.0)
            image = run_probe(self.opened, job.request)
            with self.lock:
                if job.cancel_requested:
                    job.state, job.error = "cancelled", "cancelled"
                    return
                kept = sorted((j for j in self.jobs.values() if j.image is not None), key=lambda j: j.created)
                for other in kept[: max(0, len(kept) - KEEP_PROBE_IMAGES + 1)]:  # memory: the latest few only
                    other.image, other.result = None, {"image": None}
                job.image = image
                job.result = {"image": f"/api/jobs/{job.id}/image"}
                job.state, job.stage, job.progress = "done", "done", 1.0
            return

        try:
            character = self.runner(self.opened, job.request, progress, cancel)
            with self.lock:
                if job.cancel_requested:
                    raise Cancelled("cancelled before writing")
                job.stage = "writing"
        except Cancelled as exc:
            with self.lock:
                job.state, job.error = "cancelled", str(exc)
            return
        except RequestError as exc:
            with self.lock:
                job.state, job.error = "failed", str(exc)
            return
        writing = time.perf_counter()
        try:
            paths = save_character(self.folder, character, overwrite=False)
        except (AssetExistsError, AssetNameError, OSError) as exc:
            with self.lock:
                job.state, job.error = "failed", f"writing: {exc}"
            return
        files = {k: str(p.relative_to(self.folder.base)).replace(os.sep, "/") for k, p in paths.items()}
        with self.lock:
            job.result = {"character": paths["character"].stem, "faces": paths["faces"].stem, "files": files,
                          "seed": character.request.seed}
            job.state, job.stage, job.progress = "done", "done", 1.0
            done = time.perf_counter()
            job.timings = character.metadata["timings"] | {"writing": round(done - writing, 4),
                                                            "total": round(done - started, 4)}
            self.durations.append(done - started)

    def retry_after(self) -> int:
        """Seconds until a place in the queue is likely free: the mean of recent jobs."""
        with self.lock:
            mean = sum(self.durations) / len(self.durations) if self.durations else 5.0
        return max(1, min(600, round(mean)))


# --------------------------------------------------------------------------- helpers

def error(status: int, message: str, **headers):
    resp = jsonify(error=message)
    resp.status_code = status
    for k, v in headers.items():
        resp.headers[k.replace("_", "-")] = v
    return resp


def _state():
    return current_app.extensions["rmmv_gan"]


def parse_character_body(body, pack) -> CharacterRequest:
    """A POST /api/characters body -> a resolved request, or RequestError naming the field."""
    if not isinstance(body, dict):
        raise RequestError("body: must be a JSON object")
    for key in body:
        if key not in FIELDS:
            raise RequestError(f"{key}: unknown field (known: {', '.join(FIELDS)})")
    values = {}
    for key, kinds in FIELDS.items():
        v = body.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, kinds):
            want = {"archetype": "text", "name": "text", "psi": "a number", "seed": "a whole number",
                    "steps": "a whole number", "emotions": "a list of emotion names"}[key]
            raise RequestError(f"{key}: must be {want}, not {type(v).__name__}")
        values[key] = v
    return CharacterRequest(**values).resolved(pack)


# --------------------------------------------------------------------------- blueprints

api = Blueprint("api", __name__, url_prefix="/api")
pages = Blueprint("pages", __name__)
images = Blueprint("images", __name__, url_prefix="/img")


@api.get("/health")
def health():
    st = _state()
    return jsonify(status="ok", version=__version__, pack=st["opened"].pack.name, device=st["device"],
                   queue=st["jobs"].length())


@api.get("/pack")
def pack_info():
    p = _state()["opened"].pack
    default = p.archetypes[p.default_archetype]
    return jsonify(
        name=p.name, description=p.description,
        archetypes=[{"name": a.name, "psi": a.psi} for a in p.archetypes.values()],
        emotions=[{"name": e.name, "faceIndex": i} for i, e in enumerate(p.emotions)],
        layers={"sprite": _state()["opened"].sprite.num_ws, "face": _state()["opened"].face.num_ws},
        defaults={"archetype": p.default_archetype, "psi": default.psi, "steps": p.projection_steps,
                  "emotions": [e.name for e in p.emotions]},
        limits={"psi": [-2, 2], "seed": [0, 2**32 - 1], "steps": [1, 5000], "emotions": [1, 8]})


@api.post("/characters")
def submit():
    st = _state()
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # deeply nested JSON is not a ValueError to the parser
        body = None
    if body is None:
        return error(400, "body: must be a JSON object sent as application/json")
    try:
        req = parse_character_body(body, st["opened"].pack)
    except RequestError as exc:
        return error(400, str(exc))
    try:
        job = st["jobs"].submit(req)
    except NameTaken as exc:
        return error(409, str(exc))
    except QueueFull as exc:
        return error(429, str(exc), Retry_After=str(st["jobs"].retry_after()))
    resp = jsonify(job=job.id, name=req.name, seed=req.seed)
    resp.status_code = 202
    resp.headers["Location"] = f"/api/jobs/{job.id}"
    return resp


@api.post("/probe")
def submit_probe():
    st = _state()
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        body = None
    if body is None:
        return error(400, "body: must be a JSON object sent as application/json")
    try:
        req = parse_probe_body(body, st["opened"])
    except RequestError as exc:
        return error(400, str(exc))
    try:
        job = st["jobs"].submit(req, kind="probe")
    except QueueFull as exc:
        return error(429, str(exc), Retry_After=str(st["jobs"].retry_after()))
    resp = jsonify(job=job.id)
    resp.status_code = 202
    resp.headers["Location"] = f"/api/jobs/{job.id}"
    return resp


@api.get("/jobs/<job_id>/image")
def job_image(job_id):
    job = _state()["jobs"].get(job_id)
    if job is None or job.image is None:
        return error(404, f"job: no probe image for {job_id!r}")
    return current_app.response_class(job.image, mimetype="image/png")


@api.get("/characters")
def list_characters():
    folder: GameFolder = _state()["folder"]
    d = folder.data_dir / "characters"
    out = []
    if d.is_dir():
        found = []
        for p in d.glob("*.json"):
            try:
                found.append((p.stat().st_mtime, p))
            except OSError:  # removed meanwhile
                pass
        for _, p in sorted(found, reverse=True):
            try:
                meta = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
                continue
            out.append({k: meta.get(k) for k in ("name", "seed", "psi", "archetype", "emotions", "steps", "pack", "files")}
                       | {"character": "$" + meta["name"], "faces": meta["name"]})
    return jsonify(characters=out)


@api.get("/jobs/<job_id>")
def job_status(job_id):
    snap = _state()["jobs"].snapshot(job_id)
    return jsonify(snap) if snap else error(404, f"job: no job {job_id!r}")


@api.delete("/jobs/<job_id>")
def job_cancel(job_id):
    snap = _state()["jobs"].cancel(job_id)
    if snap is None:
        return error(404, f"job: no job {job_id!r}")
    if snap["state"] in ("done", "failed"):
        return error(409, f"job: already {snap['state']}")
    if snap.pop("cancelling") is False and snap["state"] == "running":
        return error(409, "job: already writing its files")
    return jsonify(snap), 202 if snap["state"] == "running" else 200


@pages.get("/")
def index():
    return _page("index.html")


@pages.get("/probe")
def probe_page():
    return _page("probe.html")


def _page(filename):
    resp = send_from_directory(TEMPLATES, filename, max_age=0)
    resp.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' blob: data:; "
                                               "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'")
    return resp


def _image(folder: Path, filename: str):
    stem = filename[:-4] if filename.lower().endswith(".png") else filename
    prefix = stem[: len(stem) - len(stem.lstrip("$!"))]
    try:
        safe_asset_name(stem[len(prefix):])
    except AssetNameError as exc:
        return error(400, f"name: {exc}")
    resp = send_from_directory(folder, prefix + stem[len(prefix):] + ".png", max_age=0)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


@images.get("/characters/<filename>")
def character_image(filename):
    return _image(_state()["folder"].characters_dir, filename)


@images.get("/faces/<filename>")
def face_image(filename):
    return _image(_state()["folder"].faces_dir, filename)


# --------------------------------------------------------------------------- the app

def create_app(config: ServerConfig | dict, opened_pack=None) -> Flask:
    """The daemon's Flask app. `opened_pack`: an OpenPack already loaded (else the config's
    pack is opened). The worker thread starts here; `app.extensions['rmmv_gan']['jobs'].close()`
    stops it."""
    cfg = config if isinstance(config, ServerConfig) else ServerConfig(**config)
    folder = GameFolder(cfg.project)
    if opened_pack is None:
        import torch

        from .packs import open_pack
        if cfg.pack_dir is None:
            raise ValueError("pack_dir: no pack given")
        opened_pack = open_pack(cfg.pack_dir, torch.device(cfg.device))
    token = resolve_token(cfg.token)
    app = Flask(__name__, static_folder=None, template_folder=str(TEMPLATES))
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.json.sort_keys = False
    state = {"config": cfg, "folder": folder, "opened": opened_pack, "device": str(cfg.device), "token": token,
             "jobs": JobQueue(opened_pack, folder, cfg.queue_size, cfg.runner)}
    app.extensions["rmmv_gan"] = state
    set_port(app, cfg.port)
    for bp in (api, pages, images):
        app.register_blueprint(bp)

    @app.before_request
    def guard():
        st = _state()
        if (request.host or "").lower() not in st["hosts"]:
            return error(403, "host: this daemon answers only to its own loopback address")
        origin = request.headers.get("Origin")
        if origin is not None and origin not in st["origins"]:
            return error(403, "origin: not allowed")
        if request.method == "OPTIONS":  # CORS preflight: no token (browsers send none)
            return app.response_class(status=204)
        if request.endpoint in ("api.health", "pages.index", "pages.probe_page"):
            return None
        auth = request.headers.get("Authorization", "")
        scheme, _, given = auth.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), st["token"].encode()):
            return error(401, "token: missing or wrong (Authorization: Bearer TOKEN)",
                         WWW_Authenticate='Bearer realm="rmmv-gan"')
        return None

    @app.after_request
    def cors(resp):
        origin = request.headers.get("Origin")
        if origin is not None and origin in _state()["origins"]:
            resp.headers["Access-Control-Allow-Origin"] = origin
            resp.headers["Vary"] = "Origin"
            resp.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            resp.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
            resp.headers["Access-Control-Max-Age"] = "600"
        resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    @app.errorhandler(HTTPException)
    def http_error(exc):
        return error(exc.code or 500, f"{exc.name}: {exc.description}")

    @app.errorhandler(Exception)
    def internal_error(exc):
        log.exception("request failed")
        return error(500, f"internal error: {type(exc).__name__}")

    return app


def set_port(app: Flask, port: int):
    """Tell the app the port it is served on (Host check, CORS origins, URL)."""
    st = app.extensions["rmmv_gan"]
    cfg = st["config"]
    st["port"] = port
    st["url"] = f"http://{url_host(cfg.host)}:{port}"
    st["hosts"] = allowed_hosts(cfg.host, port)
    st["origins"] = {f"http://{h}" for h in st["hosts"]} | set(cfg.origins)


def make_server(app: Flask, threads: int = 4):
    """A waitress server for the app, bound and ready (`.run()`, `.close()`); writes
    GAME/rmmv_gan/server.json with the real URL (also for port 0)."""
    from waitress import create_server

    st = app.extensions["rmmv_gan"]
    cfg = st["config"]
    server = create_server(app, host=cfg.host, port=cfg.port, threads=threads, ident="rmmv-gan")
    set_port(app, server.effective_port)
    remove_stale_temporaries(st["folder"])
    if cfg.write_server_json:
        write_server_json(st["folder"], st["url"], st["token"])
    return server


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")

