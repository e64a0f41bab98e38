"""The local daemon's HTTP side: a Flask app over a `rmmv_gan.daemon.Daemon` (docs/api.md).

Requests are checked at the edge (strict JSON, `CharacterRequest.from_json`, then resolved
once against the pack), queued in the daemon's job queue (rmmv_gan.jobs), and written by
the job with `rmmv_gan.game.save_character`. No pipeline logic lives in this file.

Security: loopback by default; a bearer token on everything but `/api/health` and the pages
(which hold no data); a Host check against DNS rebinding; CORS only for the daemon's own
origins and those configured (other origins may read only `{"origin_allowed": false}` from
`/api/health`); writes only under GAME/img/characters, GAME/img/faces and
GAME/rmmv_gan/.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from flask import Blueprint, Flask, current_app, jsonify, request, send_from_directory
from werkzeug.exceptions import HTTPException

from . import __version__
from .game import AssetNameError, character_name, gallery
from .jobs import NameTaken, QueueFull
from .pipeline import MAX_BODY, CharacterRequest, RequestError, limits_for
from .probe import ProbeRequest

log = logging.getLogger("rmmv_gan.server")

def _templates() -> Path:
    """The pages' folder: the copy inside an installed package (setup.py puts it there), else
    the checkout's top-level templates/, their one source."""
    packaged = Path(__file__).resolve().parent / "templates"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[1] / "templates"


TEMPLATES = _templates()


@dataclass
class ServerConfig:
    project: str | os.PathLike
    pack_dir: str | os.PathLike | None = None  # None: the embedded default pack
    host: str = "127.0.0.1"
    port: int = 8765
    device: str = "cpu"
    token: str | None = None  # None: env RMMV_GAN_TOKEN, else generated
    queue_size: int = 8  # jobs waiting (the running one not counted)
    origins: list = field(default_factory=list)  # extra CORS origins (e.g. a local web server of the game)
    runner: Callable | None = None  # (opened, request, progress, cancel) -> Character; default make_character
    write_server_json: bool = True


# --------------------------------------------------------------------------- helpers

def error(status: int, message: str, **headers):
    resp = jsonify(error=message)
    resp.status_code = status
    for k, v in headers.items():
        resp.headers[k.replace("_", "-")] = v
    return resp


def _daemon():
    return current_app.extensions["rmmv_gan"]


def _json_body():
    """The request's JSON body, or None if it is not JSON."""
    try:
        return request.get_json(silent=True)
    except RecursionError:  # deeply nested JSON is not a ValueError to the parser
        return None


def _too_large() -> str:
    return f"body: larger than {MAX_BODY // 1024} KiB"


def refusal(code: int, reason: str, detail: str) -> tuple[str, bytes]:
    """(status line, JSON body) for a request the WSGI server itself refuses before the app
    sees it (rmmv_gan.daemon): the same `{"error": "FIELD: ..."}` as the app's answers."""
    message = _too_large() if code == 413 else f"request: {reason} ({detail})"
    return f"{code} {reason}", (json.dumps({"error": message}) + "\n").encode()


def _accepted(job, **fields):
    resp = jsonify(job=job.id, **fields)
    resp.status_code = 202
    resp.headers["Location"] = f"/api/jobs/{job.id}"
    return resp


# --------------------------------------------------------------------------- blueprints

api = Blueprint("api", __name__, url_prefix="/api")
pages = Blueprint("pages", __name__)
images = Blueprint("images", __name__, url_prefix="/img")


@api.get("/health")
def health():
    d = _daemon()
    return jsonify(status="ok", origin_allowed=True, version=__version__, pack=d.opened.pack.name,
                   device=str(d.config.device), queue=d.jobs.length())


def foreign_origin_health():
    """/api/health for a page whose origin is not allowed: readable by it (so the plugin in a
    browser can say "add --origin" instead of "not running"), and nothing else."""
    resp = jsonify(status="ok", origin_allowed=False)
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp


@api.get("/pack")
def pack_info():
    opened = _daemon().opened
    p = opened.pack
    default = p.archetypes[p.default_archetype]
    return jsonify(
        name=p.name, description=p.description,
        archetypes=[{"name": a.name, "psi": a.psi, "strength": a.strength} for a in p.archetypes.values()],
        emotions=[{"name": e.name, "faceIndex": i} for i, e in enumerate(p.emotions)],
        layers={"sprite": opened.sprite.num_ws, "face": opened.face.num_ws},
        defaults={"archetype": p.default_archetype, "psi": default.psi, "strength": default.strength,
                  "steps": p.projection_steps,
                  "emotions": [e.name for e in p.emotions]},
        # [low, high] of every bounded request field: the pages and the plugin take them from here
        limits={k: limit.bounds for k, limit in limits_for(p).items() if limit.bounds != [None, None]})


@api.post("/characters")
def submit():
    d = _daemon()
    body = _json_body()
    if body is None:
        return error(400, "body: must be a JSON object sent as application/json")
    try:
        req = CharacterRequest.from_json(body).resolved(d.opened.pack)
    except RequestError as exc:
        return error(400, str(exc))
    try:
        job = d.jobs.character(req)
    except NameTaken as exc:
        return error(409, str(exc))
    except QueueFull as exc:
        return error(429, str(exc), Retry_After=str(d.jobs.retry_after()))
    return _accepted(job, name=req.name, seed=req.seed)


@api.post("/probe")
def submit_probe():
    d = _daemon()
    body = _json_body()
    if body is None:
        return error(400, "body: must be a JSON object sent as application/json")
    try:
        req = ProbeRequest.from_json(body, d.opened)
    except RequestError as exc:
        return error(400, str(exc))
    try:
        job = d.jobs.probe(req)
    except QueueFull as exc:
        return error(429, str(exc), Retry_After=str(d.jobs.retry_after()))
    return _accepted(job)


@api.get("/jobs/<job_id>/image")
def job_image(job_id):
    job = _daemon().jobs.get(job_id)
    if job is None or job.image is None:
        return error(404, f"job: no probe image for {job_id!r}")
    return current_app.response_class(job.image, mimetype="image/png")


@api.get("/characters")
def list_characters():
    return jsonify(characters=gallery(_daemon().folder))


@api.get("/jobs/<job_id>")
def job_status(job_id):
    snap = _daemon().jobs.snapshot(job_id)
    return jsonify(snap) if snap else error(404, f"job: no job {job_id!r}")


@api.delete("/jobs/<job_id>")
def job_cancel(job_id):
    snap = _daemon().jobs.cancel(job_id)
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
        name = character_name(stem[len(prefix):])
    except AssetNameError as exc:
        return error(400, f"name: {exc}")
    path = folder / (prefix + name + ".png")
    try:  # a link that leads out of the image folder is not served
        inside = path.resolve(strict=True).is_relative_to(folder.resolve(strict=True))
    except (OSError, RuntimeError):  # missing, or a link loop
        inside = False
    if not inside or not path.is_file():
        return error(404, f"name: no image {prefix + name + '.png'!r}")
    resp = send_from_directory(folder, path.name, max_age=0)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


@images.get("/characters/<filename>")
def character_image(filename):
    return _image(_daemon().folder.characters_dir, filename)


@images.get("/faces/<filename>")
def face_image(filename):
    return _image(_daemon().folder.faces_dir, filename)


# --------------------------------------------------------------------------- the app

def build_app(daemon) -> Flask:
    """The Flask app of a Daemon (rmmv_gan.daemon): its folder, pack, jobs, token, hosts and
    origins are read from the daemon on each request."""
    app = Flask(__name__, static_folder=None, template_folder=str(TEMPLATES))
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.json.sort_keys = False
    app.extensions["rmmv_gan"] = daemon
    for bp in (api, pages, images):
        app.register_blueprint(bp)

    @app.before_request
    def guard():
        d = _daemon()
        # Before anything else, token or not: a body too large is refused by its declared size
        # (waitress, rmmv_gan.daemon, refuses it before reading it, too).
        if (request.content_length or 0) > MAX_BODY:
            return error(413, _too_large())
        if (request.host or "").lower() not in d.hosts:
            return error(403, "host: this daemon answers only to its own loopback address")
        d.last_request = time.monotonic()  # serve --idle-exit counts from here
        origin = request.headers.get("Origin")
        if origin is not None and origin not in d.origins:
            if request.endpoint == "api.health" and request.method == "GET":
                return foreign_origin_health()
            return error(403, "origin: not allowed")
        if request.method == "OPTIONS":  # CORS preflight: no token (browsers send none)
            return app.response_class(status=204)
        if request.endpoint in ("api.health", "pages.index", "pages.probe_page"):
            return None
        auth = request.headers.get("Authorization", "")
        scheme, _, given = auth.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), d.token.encode()):
            return error(401, "token: missing or wrong (Authorization: Bearer TOKEN)",
                         WWW_Authenticate='Bearer realm="rmmv-gan"')
        return None

    @app.after_request
    def cors(resp):
        origin = request.headers.get("Origin")
        if origin is not None and origin in _daemon().origins:
            resp.headers["Access-Control-Allow-Origin"] = origin
            resp.headers["Vary"] = "Origin"
            resp.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            resp.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
            resp.headers["Access-Control-Max-Age"] = "600"
        resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    @app.errorhandler(413)
    def too_large(exc):  # a chunked body that turned out too large
        return error(413, _too_large())

    @app.errorhandler(HTTPException)
    def http_error(exc):
        return error(exc.code or 500, f"{exc.name}: {exc.description}")

    @app.errorhandler(Exception)
    def internal_error(exc):
        log.exception("request failed")
        return error(500, f"internal error: {type(exc).__name__}")

    return app


def create_app(config: ServerConfig | dict, opened_pack=None) -> Flask:
    """Shorthand for `Daemon(config, opened_pack).app()` (the worker thread starts here;
    `app.extensions['rmmv_gan']` is the Daemon, `.close()` stops it)."""
    from .daemon import Daemon

    return Daemon(config, opened_pack).app()


def make_server(app: Flask, threads: int = 4):
    """Shorthand for the app's `Daemon.bind()`: a waitress server, bound and ready."""
    return app.extensions["rmmv_gan"].bind(threads)
