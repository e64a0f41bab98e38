"""The daemon (rmmv_gan.server): every endpoint through Flask's test client with the real
pipeline on a starter pack made from the golden pickles, then the real waitress server with
concurrent clients, then a SIGKILL in the middle of a job."""

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time

import pytest
import torch
from PIL import Image

from rmmv_gan.daemon import Daemon, ServerConfig
from rmmv_gan.pipeline import make_character


PORT = 8765
BASE = f"http://127.0.0.1:{PORT}"
TOKEN = "test-token-123456"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # The pipeline is tiny here; torch's thread pool fighting other processes costs 20x.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def make_app(game, opened):
    daemons = []

    def make(**kw):
        daemon = Daemon(ServerConfig(**(dict(project=game, port=PORT, token=TOKEN) | kw)), opened)
        daemons.append(daemon)
        return daemon.app()

    yield make
    for daemon in daemons:
        daemon.close()


@pytest.fixture
def client(make_app):
    return make_app().test_client()


def post(client, body, **kw):
    return client.post("/api/characters", json=body, base_url=BASE, headers=AUTH, **kw)


def get(client, path, headers=AUTH, **kw):
    return client.get(path, base_url=BASE, headers=headers, **kw)


def wait(client, job_id, states=("done", "failed", "cancelled"), timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        r = get(client, f"/api/jobs/{job_id}")
        assert r.status_code == 200
        if r.json["state"] in states:
            return r.json
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {r.json['state']} after {timeout}s")


def gated_runner(gate: threading.Event, started: threading.Event):
    """The real pipeline, started only when the test opens the gate."""
    def runner(opened, req, progress, cancel):
        started.set()
        assert gate.wait(30)
        return make_character(opened, req, progress=progress, cancel=cancel)
    return runner


def img_files(game):
    return sorted(str(p.relative_to(game)) for d in ("img/characters", "img/faces") for p in (game / d).iterdir())


# --------------------------------------------------------------------------- health, pack, page

def test_health_needs_no_token(client):
    r = client.get("/api/health", base_url=BASE)
    assert r.status_code == 200
    assert r.json["status"] == "ok" and r.json["pack"] and r.json["device"] == "cpu" and r.json["queue"] == 0
    assert r.json["version"]


def test_pack_lists_archetypes_emotions_and_defaults(client):
    r = get(client, "/api/pack")
    assert r.status_code == 200
    assert {a["name"] for a in r.json["archetypes"]} == {"default", "hero"}
    assert r.json["emotions"] == [{"name": "neutral", "faceIndex": 0}, {"name": "happy", "faceIndex": 1}]
    assert r.json["defaults"]["archetype"] == "default" and r.json["defaults"]["steps"] == 4


def test_page_is_served_without_token(client):
    r = client.get("/", base_url=BASE)
    assert r.status_code == 200 and b"Generate" in r.data and r.mimetype == "text/html"


# --------------------------------------------------------------------------- auth, host, CORS

@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token-xyz"},
                                     {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}],
                         ids=["missing", "wrong", "no-scheme", "basic"])
def test_requests_without_the_token_are_refused(client, headers):
    for path in ("/api/pack", "/api/characters", "/img/faces/x.png"):
        r = client.get(path, base_url=BASE, headers=headers)
        assert r.status_code == 401 and r.json["error"].startswith("token:")
    r = client.post("/api/characters", json={}, base_url=BASE, headers=headers)
    assert r.status_code == 401


def test_token_from_environment(make_app, monkeypatch):
    monkeypatch.setenv("RMMV_GAN_TOKEN", "env-token-abcdef")
    c = make_app(token=None).test_client()
    assert get(c, "/api/pack", headers={"Authorization": "Bearer env-token-abcdef"}).status_code == 200
    assert get(c, "/api/pack").status_code == 401


@pytest.mark.parametrize("host", ["evil.example:8765", "127.0.0.1:9999", "localhost", "attacker.com"])
def test_foreign_host_header_is_refused(client, host):
    for path in ("/api/health", "/api/pack", "/"):
        r = client.get(path, base_url=f"http://{host}", headers=AUTH)
        assert r.status_code == 403 and r.json["error"].startswith("host:")


@pytest.mark.parametrize("host", ["127.0.0.1:8765", "localhost:8765", "[::1]:8765"])
def test_loopback_host_names_are_accepted(client, host):
    assert client.get("/api/pack", base_url=f"http://{host}", headers=AUTH).status_code == 200


def test_cors_only_for_own_and_configured_origins(make_app):
    c = make_app(origins=["http://localhost:8000"]).test_client()
    for origin in (BASE, "http://localhost:8000"):
        pre = client_options(c, origin)
        assert pre.status_code == 204 and pre.headers["Access-Control-Allow-Origin"] == origin
        assert "Authorization" in pre.headers["Access-Control-Allow-Headers"]
    bad = client_options(c, "http://evil.example")
    assert bad.status_code == 403 and "Access-Control-Allow-Origin" not in bad.headers
    r = get(c, "/api/pack", headers=AUTH | {"Origin": "http://evil.example"})
    assert r.status_code == 403 and "Access-Control-Allow-Origin" not in r.headers


def test_health_tells_a_refused_origin_so_and_nothing_more(make_app):
    c = make_app(origins=["http://localhost:8000"]).test_client()
    r = c.get("/api/health", base_url=BASE, headers={"Origin": "http://evil.example"})
    # A browser page may read it (so the plugin can say "add --origin"), and learns only that.
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.json == {"status": "ok", "origin_allowed": False}
    r = c.get("/api/health", base_url=BASE, headers={"Origin": "http://localhost:8000"})
    assert r.json["origin_allowed"] is True and r.json["pack"]
    r = c.get("/api/health", base_url="http://rebind.example:8765", headers={"Origin": "http://evil.example"})
    assert r.status_code == 403  # the Host check still comes first


def client_options(c, origin):
    return c.options("/api/characters", base_url=BASE, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})


# --------------------------------------------------------------------------- a character

def test_character_job_runs_and_writes_into_the_game(client, game):
    r = post(client, {"archetype": "hero", "seed": 7, "name": "Ann", "steps": 2, "psi": 0.5,
                      "emotions": ["happy", "neutral"]})
    assert r.status_code == 202 and r.json["job"] and r.headers["Location"] == f"/api/jobs/{r.json['job']}"
    job = wait(client, r.json["job"])
    assert job["state"] == "done" and job["progress"] == 1.0 and job["error"] is None
    assert job["result"] == {"character": "$Ann", "faces": "Ann", "seed": 7, "files": {
        "character": "img/characters/$Ann.png", "faces": "img/faces/Ann.png",
        "metadata": "rmmv_gan/characters/Ann.json"}}
    assert Image.open(game / "img/characters/$Ann.png").size == (144, 192)
    assert Image.open(game / "img/faces/Ann.png").size == (576, 288)
    meta = json.loads((game / "rmmv_gan/characters/Ann.json").read_text())
    assert (meta["seed"], meta["psi"], meta["archetype"], meta["emotions"]) == (7, 0.5, "hero", ["happy", "neutral"])


def test_defaults_give_a_random_seed_and_a_generated_name(client, game):
    r = post(client, {"steps": 2})
    assert r.status_code == 202
    job = wait(client, r.json["job"])
    seed = job["result"]["seed"]
    assert job["state"] == "done" and 0 <= seed <= 2**32 - 1
    assert job["result"]["faces"] == f"default_{seed}" and (game / f"img/faces/default_{seed}.png").is_file()


def test_gallery_lists_generated_characters_and_serves_their_images(client):
    job = wait(client, post(client, {"seed": 3, "name": "Bo", "steps": 2}).json["job"])
    assert job["state"] == "done"
    r = get(client, "/api/characters")
    assert r.status_code == 200
    (bo,) = [c for c in r.json["characters"] if c["name"] == "Bo"]
    assert bo["character"] == "$Bo" and bo["faces"] == "Bo" and bo["seed"] == 3
    img = get(client, "/img/characters/$Bo.png")
    assert img.status_code == 200 and img.mimetype == "image/png" and img.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert get(client, "/img/faces/Bo.png").status_code == 200
    assert get(client, "/img/faces/Bo").status_code == 200  # the name as the game gives it
    assert get(client, "/img/faces/Nobody.png").status_code == 404


def test_images_are_read_only(client):
    for method in (client.post, client.put, client.delete):
        r = method("/img/faces/Bo.png", base_url=BASE, headers=AUTH, data=b"x")
        assert r.status_code == 405


@pytest.mark.parametrize("path", ["/img/faces/..%2F..%2Fjs%2Frpg_core.js", "/img/faces/..", "/img/faces/.hidden.png",
                                  "/img/faces/CON.png", "/img/characters/$..png", "/img/faces/a%00b.png",
                                  "/img/faces/../../js/rpg_core.js", "/img/characters/%2Fetc%2Fpasswd"])
def test_image_paths_cannot_leave_the_image_folders(client, path):
    r = get(client, path)
    assert r.status_code in (400, 404)
    assert b"// MV" not in r.data and b"root:" not in r.data


# --------------------------------------------------------------------------- bad requests

@pytest.mark.parametrize("body, field", [
    ({"psi": 2.5}, "psi"), ({"psi": -2.01}, "psi"), ({"psi": "0.5"}, "psi"), ({"psi": True}, "psi"),
    ({"psi": [1]}, "psi"),
    ({"seed": -1}, "seed"), ({"seed": 2**32}, "seed"), ({"seed": 1.5}, "seed"), ({"seed": 5.0}, "seed"),
    ({"seed": "5"}, "seed"), ({"seed": False}, "seed"), ({"seed": 10**40}, "seed"),
    ({"steps": 0}, "steps"), ({"steps": 5001}, "steps"), ({"steps": 2.0}, "steps"), ({"steps": "2"}, "steps"),
    ({"archetype": "dragon"}, "archetype"), ({"archetype": 3}, "archetype"), ({"archetype": ["hero"]}, "archetype"),
    ({"emotions": "happy"}, "emotions"), ({"emotions": ["angry"]}, "emotions"), ({"emotions": [1]}, "emotions"),
    ({"emotions": []}, "emotions"), ({"emotions": ["happy"] * 9}, "emotions"),
    ({"name": "../../js/evil"}, "name"), ({"name": "a/b"}, "name"), ({"name": "a\\b"}, "name"),
    ({"name": "CON"}, "name"), ({"name": "$Hero"}, "name"), ({"name": "!Box"}, "name"), ({"name": ""}, "name"),
    ({"name": "x\u0000y"}, "name"), ({"name": "x\u202ey"}, "name"), ({"name": ".hidden"}, "name"),
    ({"name": "x" * 101}, "name"), ({"name": 42}, "name"), ({"name": "a:b"}, "name"), ({"name": "end."}, "name"),
    ({"colour": "red"}, "colour"), ({"__proto__": {}}, "__proto__"),
], ids=lambda v: json.dumps(v)[:40] if isinstance(v, dict) else str(v))
def test_bad_fields_are_refused_naming_the_field(client, game, body, field):
    r = post(client, body)
    assert r.status_code == 400, r.json
    assert r.json["error"].startswith(f"{field}:"), r.json
    assert get(client, "/api/health").json["queue"] == 0 and img_files(game) == []


def test_nan_psi_is_refused(client):
    r = client.post("/api/characters", data='{"psi": NaN}', content_type="application/json", base_url=BASE,
                    headers=AUTH)
    assert r.status_code == 400 and r.json["error"].startswith(("psi:", "body:"))


@pytest.mark.parametrize("data, content_type", [
    ("{", "application/json"), ("[1, 2]", "application/json"), ('"hero"', "application/json"),
    ("null", "application/json"), ("", "application/json"), ('{"seed": 1}', "text/plain"),
    ("seed=1", "application/x-www-form-urlencoded"), (b"\xff\xfe", "application/json"),
    ("[" * 30000, "application/json"),
], ids=["truncated", "list", "string", "null", "empty", "text-plain", "form", "not-utf8", "deep-nesting"])
def test_malformed_bodies_are_refused(client, data, content_type):
    r = client.post("/api/characters", data=data, content_type=content_type, base_url=BASE, headers=AUTH)
    assert r.status_code == 400 and r.json["error"].startswith("body:")


def test_huge_body_is_refused(client):
    r = client.post("/api/characters", data=json.dumps({"name": "x" * 100_000}), content_type="application/json",
                    base_url=BASE, headers=AUTH)
    assert r.status_code == 413 and "error" in r.json


def test_unknown_endpoint_and_method_answer_json(client):
    r = get(client, "/api/nothing")
    assert r.status_code == 404 and "error" in r.json
    r = client.put("/api/characters", base_url=BASE, headers=AUTH, json={})
    assert r.status_code == 405 and "error" in r.json


# --------------------------------------------------------------------------- names, queue, cancel, failure

def test_a_taken_name_is_refused_before_any_work(client, game):
    (game / "img/faces/Cat.png").write_bytes(b"not ours")
    r = post(client, {"name": "Cat", "steps": 2})
    assert r.status_code == 409 and r.json["error"].startswith("name:")
    r = post(client, {"name": "cat", "steps": 2})  # Windows and macOS would see one file
    assert r.status_code == 409
    assert (game / "img/faces/Cat.png").read_bytes() == b"not ours"


def test_two_jobs_for_one_name_are_not_queued(make_app):
    gate, started = threading.Event(), threading.Event()
    c = make_app(runner=gated_runner(gate, started)).test_client()
    try:
        assert post(c, {"seed": 9, "steps": 2}).status_code == 202
        r = post(c, {"seed": 9, "steps": 2})  # same generated name default_9
        assert r.status_code == 409 and r.json["error"].startswith("name:")
    finally:
        gate.set()


def test_a_full_queue_answers_429_with_retry_after(make_app, game):
    gate, started = threading.Event(), threading.Event()
    c = make_app(queue_size=2, runner=gated_runner(gate, started)).test_client()
    first = post(c, {"seed": 1, "steps": 2})
    assert first.status_code == 202 and started.wait(10)  # running: out of the queue
    waiting = [post(c, {"seed": s, "steps": 2}) for s in (2, 3)]
    assert [r.status_code for r in waiting] == [202, 202]
    full = post(c, {"seed": 4, "steps": 2})
    assert full.status_code == 429 and int(full.headers["Retry-After"]) > 0 and "error" in full.json
    assert get(c, "/api/health").json["queue"] == 3
    gate.set()
    for r in [first] + waiting:
        assert wait(c, r.json["job"])["state"] == "done"
    assert post(c, {"seed": 4, "steps": 2}).status_code == 202


def test_cancel_a_queued_job(make_app, game):
    gate, started = threading.Event(), threading.Event()
    c = make_app(runner=gated_runner(gate, started)).test_client()
    running = post(c, {"seed": 1, "steps": 2}).json["job"]
    queued = post(c, {"seed": 2, "steps": 2, "name": "Never"}).json["job"]
    r = c.delete(f"/api/jobs/{queued}", base_url=BASE, headers=AUTH)
    assert r.status_code == 200 and r.json["state"] == "cancelled"
    gate.set()
    assert wait(c, running)["state"] == "done"
    assert wait(c, queued)["state"] == "cancelled"
    assert not (game / "img/faces/Never.png").exists()


def test_a_cancelled_queued_job_frees_its_place(make_app):
    gate, started = threading.Event(), threading.Event()
    c = make_app(queue_size=1, runner=gated_runner(gate, started)).test_client()
    try:
        assert post(c, {"seed": 1, "steps": 2}).status_code == 202 and started.wait(10)
        queued = post(c, {"seed": 2, "steps": 2}).json["job"]
        assert post(c, {"seed": 3, "steps": 2}).status_code == 429
        assert c.delete(f"/api/jobs/{queued}", base_url=BASE, headers=AUTH).status_code == 200
        assert post(c, {"seed": 3, "steps": 2}).status_code == 202
        assert post(c, {"seed": 2, "steps": 2}).status_code == 429  # full again, not a name clash
    finally:
        gate.set()


def test_cancel_a_running_job(make_app, game):
    gate, started = threading.Event(), threading.Event()
    c = make_app(runner=gated_runner(gate, started)).test_client()
    job = post(c, {"seed": 1, "steps": 2, "name": "Gone"}).json["job"]
    assert started.wait(10)
    r = c.delete(f"/api/jobs/{job}", base_url=BASE, headers=AUTH)
    assert r.status_code == 202 and r.json["state"] == "running"
    gate.set()
    final = wait(c, job)
    assert final["state"] == "cancelled" and final["result"] is None
    assert img_files(game) == [] and not (game / "rmmv_gan/characters/Gone.json").exists()
    # the name is free again
    assert wait(c, post(c, {"seed": 1, "steps": 2, "name": "Gone"}).json["job"])["state"] == "done"


def test_a_job_writing_its_files_can_no_longer_be_cancelled(make_app, game, monkeypatch):
    import rmmv_gan.jobs as jobs_module

    writing, gate = threading.Event(), threading.Event()
    real_save = jobs_module.save_character

    def slow_save(*args, **kw):
        writing.set()
        assert gate.wait(30)
        return real_save(*args, **kw)

    monkeypatch.setattr(jobs_module, "save_character", slow_save)
    c = make_app().test_client()
    job = post(c, {"seed": 1, "steps": 2, "name": "Late"}).json["job"]
    assert writing.wait(30)
    r = c.delete(f"/api/jobs/{job}", base_url=BASE, headers=AUTH)
    assert r.status_code == 409 and r.json["error"].startswith("job:")
    gate.set()
    assert wait(c, job)["state"] == "done" and (game / "img/faces/Late.png").is_file()


def test_cancel_unknown_or_finished_job(client):
    assert client.delete("/api/jobs/nope", base_url=BASE, headers=AUTH).status_code == 404
    assert get(client, "/api/jobs/nope").status_code == 404
    job = post(client, {"seed": 1, "steps": 2}).json["job"]
    assert wait(client, job)["state"] == "done"
    r = client.delete(f"/api/jobs/{job}", base_url=BASE, headers=AUTH)
    assert r.status_code == 409 and get(client, f"/api/jobs/{job}").json["state"] == "done"


def test_a_failing_job_is_reported_and_the_daemon_goes_on(make_app, game):
    calls = []

    def runner(opened, req, progress, cancel):
        calls.append(req.name)
        if req.name == "Boom":
            progress("sprite", 0.1)
            raise RuntimeError("the model exploded")
        return make_character(opened, req, progress=progress, cancel=cancel)

    c = make_app(runner=runner).test_client()
    bad = post(c, {"seed": 1, "steps": 2, "name": "Boom"}).json["job"]
    good = post(c, {"seed": 2, "steps": 2, "name": "Fine"}).json["job"]
    failed = wait(c, bad)
    assert failed["state"] == "failed" and "the model exploded" in failed["error"] and failed["result"] is None
    assert wait(c, good)["state"] == "done"
    assert calls == ["Boom", "Fine"] and get(c, "/api/health").json["status"] == "ok"
    assert img_files(game) == ["img/characters/$Fine.png", "img/faces/Fine.png"]


def test_a_file_appearing_while_the_job_runs_fails_the_job_without_overwriting(make_app, game):
    gate, started = threading.Event(), threading.Event()
    c = make_app(runner=gated_runner(gate, started)).test_client()
    job = post(c, {"seed": 1, "steps": 2, "name": "Dup"}).json["job"]
    assert started.wait(10)
    (game / "img/faces/Dup.png").write_bytes(b"someone else's")
    gate.set()
    final = wait(c, job)
    assert final["state"] == "failed" and final["error"].startswith("writing:")
    assert (game / "img/faces/Dup.png").read_bytes() == b"someone else's"
    assert not (game / "img/characters/$Dup.png").exists()


# --------------------------------------------------------------------------- layer probe

def test_probe_job_gives_a_grid_image_and_writes_nothing(client, game):
    assert client.get("/probe", base_url=BASE).status_code == 200
    r = client.post("/api/probe", json={"model": "face", "seeds": [1, 2], "psi": 0.7, "layers": [0, 6]},
                    base_url=BASE, headers=AUTH)
    assert r.status_code == 202
    job = wait(client, r.json["job"])
    assert job["state"] == "done" and job["kind"] == "probe"
    img = get(client, job["result"]["image"])
    assert img.status_code == 200 and img.mimetype == "image/png"
    from io import BytesIO
    with Image.open(BytesIO(img.data)) as im:
        assert im.height > 2 * 96  # two rows of enlarged cells
    assert img_files(game) == [] and not (game / "rmmv_gan/characters").exists()
    assert client.get(job["result"]["image"], base_url=BASE).status_code == 401


@pytest.mark.parametrize("body, field", [
    ({"model": "dragon"}, "model"), ({"seeds": [1]}, "seeds"), ({"seeds": [1, -1]}, "seeds"),
    ({"seeds": [1, True]}, "seeds"), ({"psi": 3}, "psi"), ({"layers": [99]}, "layers"), ({"layers": []}, "layers"),
    ({"layers": "0-3"}, "layers"), ({"extra": 1}, "extra"),
])
def test_probe_bad_fields_are_refused(client, body, field):
    r = client.post("/api/probe", json=body, base_url=BASE, headers=AUTH)
    assert r.status_code == 400 and r.json["error"].startswith(f"{field}:")


# --------------------------------------------------------------------------- the real server

def test_serve_refuses_a_folder_that_is_not_a_game(tmp_path, pack_dir):
    from click.testing import CliRunner

    from rmmv_gan.cli import main

    r = CliRunner().invoke(main, ["serve", "--project", str(tmp_path), "--pack", str(pack_dir)])
    assert r.exit_code == 1 and "not an RPG Maker MV or MZ project" in r.output and "Traceback" not in r.output


def start_serve(game, pack_dir, *args):
    """`rmmv-gan serve` as a process on a free port; returns it once it says it is serving,
    with what it wrote to stderr until then."""
    env = dict(os.environ, RMMV_GAN_TOKEN=TOKEN, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "rmmv_gan.cli", "serve", "--project", str(game), "--pack",
                             str(pack_dir), "--port", "0", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    said = []
    for line in proc.stderr:  # blocks until the daemon speaks; ends if it dies
        said.append(line)
        if line.startswith("rmmv-gan daemon on"):
            break
    assert said and said[-1].startswith("rmmv-gan daemon on"), "".join(said)
    return proc, "".join(said)


def stop(proc):
    proc.terminate()
    proc.wait(10)


def test_serve_warns_when_listening_beyond_loopback(game, pack_dir):
    proc, said = start_serve(game, pack_dir, "--host", "0.0.0.0")
    stop(proc)
    assert "Warning: --host 0.0.0.0 is not loopback" in said
    proc, said = start_serve(game, pack_dir)
    stop(proc)
    assert "Warning" not in said


def test_waitress_serves_concurrent_clients_without_clashes(game, opened):
    import http.client as hc

    def call(port, method, path, body=None, host=None):
        conn = hc.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        if host:
            headers["Host"] = host
        data = json.dumps(body).encode() if body is not None else None
        if data:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        conn.close()
        return resp.status, resp.getheader("Retry-After"), json.loads(payload) if payload else None

    daemon = Daemon(ServerConfig(project=game, port=0, token=TOKEN, queue_size=3), opened)
    server = daemon.bind()
    port = server.effective_port
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        info = json.loads((game / "rmmv_gan/server.json").read_text())
        assert info == {"url": f"http://127.0.0.1:{port}", "token": TOKEN}
        if os.name == "posix":
            assert stat.S_IMODE((game / "rmmv_gan/server.json").stat().st_mode) == 0o600
        assert call(port, "GET", "/api/health", host="rebind.example")[0] == 403

        outcomes, lock = [], threading.Lock()

        def client(seeds):
            for seed in seeds:
                status, retry, body = call(port, "POST", "/api/characters", {"seed": seed, "steps": 2})
                with lock:
                    outcomes.append((seed, status, retry, body))

        clients = [threading.Thread(target=client, args=(range(k, 10, 5),)) for k in range(5)]
        for t in clients:
            t.start()
        for t in clients:
            t.join(60)
        assert len(outcomes) == 10
        print(f"\n10 submissions: {sum(s == 202 for _, s, _, _ in outcomes)} accepted, "
              f"{sum(s == 429 for _, s, _, _ in outcomes)} refused with 429")
        assert {s for _, s, _, _ in outcomes} <= {202, 429}
        assert all(int(r) > 0 for _, s, r, _ in outcomes if s == 429)
        accepted = [(seed, b["job"]) for seed, s, _, b in outcomes if s == 202]
        assert accepted
        results = {}
        end = time.time() + 60
        for seed, job in accepted:
            while True:
                status, _, body = call(port, "GET", f"/api/jobs/{job}")
                assert status == 200
                if body["state"] not in ("queued", "running"):
                    break
                assert time.time() < end, body
                time.sleep(0.05)
            assert body["state"] == "done", body
            results[seed] = body["result"]
        written = [f for r in results.values() for f in r["files"].values()]
        assert len(written) == len(set(written)) == 3 * len(accepted)  # no two jobs wrote one file
        names = img_files(game)
        assert len(names) == 2 * len(accepted) and all(n.endswith(".png") and "/." not in n for n in names)
        for n in names:
            with Image.open(game / n) as im:
                im.load()
    finally:
        server.close()
        daemon.close()
        thread.join(5)


def test_sigkill_mid_job_leaves_only_complete_pngs_and_a_restart_serves(game, pack_dir):
    env = dict(os.environ, RMMV_GAN_TOKEN=TOKEN, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "rmmv_gan.cli", "serve", "--project", str(game), "--pack", str(pack_dir),
           "--port", "0"]
    info_path = game / "rmmv_gan/server.json"

    def start():
        if info_path.exists():
            info_path.unlink()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        end = time.time() + 60
        while not info_path.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.time() < end
            time.sleep(0.1)
        port = int(json.loads(info_path.read_text())["url"].rsplit(":", 1)[1])
        return proc, port

    import http.client as hc

    def call(port, method, path, body=None):
        conn = hc.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        conn.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=headers)
        resp = conn.getresponse()
        out = resp.status, json.loads(resp.read())
        conn.close()
        return out

    proc, port = start()
    try:
        done = []
        for seed in range(1, 4):  # a few quick jobs, then one long one that is killed
            status, body = call(port, "POST", "/api/characters", {"seed": seed, "steps": 2})
            assert status == 202
            done.append(body["job"])
        status, body = call(port, "POST", "/api/characters", {"seed": 99, "steps": 5000, "name": "Killed"})
        assert status == 202
        end = time.time() + 60
        while call(port, "GET", f"/api/jobs/{body['job']}")[1]["state"] != "running":
            assert time.time() < end
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    for n in img_files(game):
        assert n.endswith(".png") and "/." not in n, n
        with Image.open(game / n) as im:
            im.load()
    assert not (game / "img/faces/Killed.png").exists()
    proc, port = start()
    try:
        assert call(port, "GET", "/api/health")[0] == 200
        status, body = call(port, "GET", "/api/characters")
        assert status == 200 and len(body["characters"]) == 3
    finally:
        proc.terminate()
        proc.wait(10)


def _serve_until_idle(game, pack_dir, **popen):
    """Start `serve --idle-exit 0.05` (fractions allowed, so this waits seconds, not a minute),
    keep it busy for twice the idle time, then stop asking: returns (seconds it took to stop
    after the last request, its stderr), after checking it exited with 0 while requests came."""
    import http.client as hc

    env = dict(os.environ, RMMV_GAN_TOKEN=TOKEN, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    info_path = game / "rmmv_gan/server.json"
    idle = 0.05 * 60  # seconds
    proc = subprocess.Popen([sys.executable, "-m", "rmmv_gan.cli", "serve", "--project", str(game), "--pack",
                             str(pack_dir), "--port", "0", "--idle-exit", "0.05"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **popen)
    try:
        end = time.time() + 180  # a loaded machine may take minutes to import torch and open the pack
        while not info_path.exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.time() < end
            time.sleep(0.1)
        port = int(json.loads(info_path.read_text())["url"].rsplit(":", 1)[1])
        busy_until = time.time() + 2 * idle
        while time.time() < busy_until:  # a request every idle/3: never idle long enough
            conn = hc.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/api/health")
            assert conn.getresponse().status == 200
            conn.close()
            time.sleep(idle / 3)
        assert proc.poll() is None, "stopped while requests came"
        stopped_asking = time.time()
        assert proc.wait(idle + 60) == 0
        took = time.time() - stopped_asking
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert idle - 1 <= took <= idle + 40, took  # the upper bound allows for a loaded machine's exit
    return took, proc.stderr.read()


def test_serve_idle_exit_stops_after_the_idle_time_and_removes_server_json(game, pack_dir):
    """Requests keep it alive, then it stops by itself, exit code 0, and server.json is gone."""
    _, stderr = _serve_until_idle(game, pack_dir)
    assert "no request for 0.05 min" in stderr
    assert not (game / "rmmv_gan/server.json").exists()


@pytest.mark.skipif(os.name == "nt", reason="a POSIX parent's ignored SIGINT is what this checks")
def test_serve_idle_exit_stops_also_when_started_with_ctrl_c_ignored(game, pack_dir):
    """A background job of a non-interactive shell (CI, nohup-style launchers) starts Python with
    SIGINT ignored, where interrupt_main alone does nothing: the idle stop must still stop it."""
    _, stderr = _serve_until_idle(game, pack_dir,
                                  preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert "no request for 0.05 min" in stderr
    assert not (game / "rmmv_gan/server.json").exists()
