"""The folder watcher (rmmv_gan.watcher): request files in a game folder answered with the real
pipeline on the starter pack made from the golden pickles, in process, then the `rmmv-gan watch`
command as a subprocess that is killed with SIGKILL, and its Ctrl+C handling."""

import _thread
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from PIL import Image

from rmmv_gan.game import GameFolder
from rmmv_gan.pipeline import make_character
from rmmv_gan.daemon import Daemon, ServerConfig
from rmmv_gan.jobs import JobQueue
from rmmv_gan.watcher import Watcher, WatcherBusy, sanitized_id

from test_server import TOKEN, img_files, one_thread  # noqa: F401 - one_thread: autouse, one torch thread


@pytest.fixture
def dirs(game):
    base = game / "rmmv_gan"
    return {k: base / k for k in ("requests", "processing", "responses", "done")}


@pytest.fixture
def start_watcher(game, opened):
    """Start a watcher (own job queue) on the test game; everything is closed at the end."""
    made = []

    def start(**kw):
        folder = GameFolder(game)
        jobs = JobQueue(opened, folder, maxsize=1, runner=kw.pop("runner", None))
        watcher = Watcher(folder, jobs, opened.pack, scan_interval=kw.pop("scan_interval", 0.2), **kw)
        made.append((watcher, jobs))
        return watcher.start()

    yield start
    for watcher, jobs in made:
        watcher.close()
        jobs.close()


def drop(dirs, rid, body, raw=None):
    """Write a request as the protocol says: ID.json.tmp, then rename to ID.json."""
    dirs["requests"].mkdir(parents=True, exist_ok=True)
    tmp = dirs["requests"] / f"{rid}.json.tmp"
    tmp.write_bytes(raw if raw is not None else json.dumps(body).encode())
    os.replace(tmp, dirs["requests"] / f"{rid}.json")


def responses(dirs, ids, timeout=60):
    """Wait until every ID is answered (responses/ID.json written, then the request moved to
    done/) and return the responses parsed."""
    end = time.time() + timeout
    paths = {rid: dirs["responses"] / f"{rid}.json" for rid in ids}
    while not all(p.exists() and (dirs["done"] / p.name).exists() for p in paths.values()):
        missing = [rid for rid, p in paths.items() if not (dirs["done"] / p.name).exists()]
        assert time.time() < end, f"no response for {missing}"
        time.sleep(0.02)
    return {rid: json.loads(p.read_text()) for rid, p in paths.items()}


def listing(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def assert_complete_pngs(game):
    for name in img_files(game):
        assert name.endswith(".png") and "/." not in name, name
        with Image.open(game / name) as im:
            im.load()


# --------------------------------------------------------------------------- answering

@pytest.fixture(scope="module")
def quick_runner(opened):
    """A job runner that gives every request the pixels of one real pipeline run (made once),
    under the request's own name and seed: the queue, the writes and the watcher stay real, and
    twenty jobs cost twenty writes instead of twenty projections."""
    import dataclasses

    from rmmv_gan.pipeline import CharacterRequest

    made = make_character(opened, CharacterRequest(seed=1, steps=1))

    def runner(opened_, req, progress, cancel):
        progress("sprite", 0.0)
        return dataclasses.replace(made, request=req, metadata=made.metadata | {"name": req.name, "seed": req.seed})

    return runner


def test_twenty_requests_dropped_at_once_are_each_answered_once(start_watcher, game, dirs, quick_runner):
    start_watcher(runner=quick_runner)
    ids = [f"req-{i:02d}" for i in range(20)]
    for i, rid in enumerate(ids):
        drop(dirs, rid, {"seed": 100 + i, "steps": 1})
    got = responses(dirs, ids)
    for i, rid in enumerate(ids):
        r = got[rid]
        assert r["id"] == rid and r["state"] == "done" and r["error"] is None, r
        assert r["result"] == {"character": f"$default_{100 + i}", "faces": f"default_{100 + i}", "seed": 100 + i,
                               "files": {"character": f"img/characters/$default_{100 + i}.png",
                                         "faces": f"img/faces/default_{100 + i}.png",
                                         "metadata": f"rmmv_gan/characters/default_{100 + i}.json"}}
    # one run each: 20 characters, 20 metadata files, every request moved to done/
    assert len(img_files(game)) == 40 and len(listing(game / "rmmv_gan/characters")) == 20
    assert listing(dirs["done"]) == [f"{rid}.json" for rid in ids]
    assert listing(dirs["requests"]) == [] and listing(dirs["processing"]) == []
    assert_complete_pngs(game)


def test_a_response_matches_the_http_job_result_and_done_keeps_the_request_as_run(start_watcher, game, dirs):
    start_watcher()
    drop(dirs, "ann", {"archetype": "hero", "seed": 7, "name": "Ann", "steps": 1, "psi": 0.5,
                       "emotions": ["happy", "neutral"]})
    drop(dirs, "anon", {"steps": 1})
    got = responses(dirs, ["ann", "anon"])
    assert got["ann"]["result"] == {"character": "$Ann", "faces": "Ann", "seed": 7, "files": {
        "character": "img/characters/$Ann.png", "faces": "img/faces/Ann.png",
        "metadata": "rmmv_gan/characters/Ann.json"}}
    assert Image.open(game / "img/characters/$Ann.png").size == (144, 192)
    assert Image.open(game / "img/faces/Ann.png").size == (576, 288)
    seed = got["anon"]["result"]["seed"]
    assert got["anon"]["result"]["faces"] == f"default_{seed}"
    # the drawn seed and the generated name are kept with the request
    assert json.loads((dirs["done"] / "anon.json").read_text()) == {"steps": 1, "seed": seed, "name": f"default_{seed}"}


def test_a_request_whose_name_is_taken_gets_a_failed_response(start_watcher, game, dirs, quick_runner):
    (game / "img/faces/Cat.png").write_bytes(b"not ours")
    start_watcher(runner=quick_runner)
    drop(dirs, "cat", {"name": "Cat", "steps": 1})
    r = responses(dirs, ["cat"])["cat"]
    assert r["state"] == "failed" and r["error"].startswith("name:") and r["result"] is None
    assert (game / "img/faces/Cat.png").read_bytes() == b"not ours"


@pytest.mark.parametrize("raw, field", [
    (b"{", "body"), (b"[1, 2]", "body"), (b'"hero"', "body"), (b"null", "body"), (b"", "body"),
    (b"\xff\xfe{}", "body"), (b"[" * 30000, "body"), (json.dumps({"name": "x" * 70_000}).encode(), "body"),
    (b'{"psi": NaN}', "psi"), (b'{"psi": 3}', "psi"), (b'{"seed": "5"}', "seed"), (b'{"colour": "red"}', "colour"),
    (b'{"emotions": ["angry"]}', "emotions"), (b'{"seed": 1, "seed": 99999999999}', "seed"),
], ids=["truncated", "list", "string", "null", "empty", "not-utf8", "deep", "huge", "nan", "psi", "seed-text",
        "unknown-field", "emotion", "duplicate-key"])
def test_malformed_requests_get_a_failed_response_naming_the_problem(start_watcher, game, dirs, raw, field):
    start_watcher()
    drop(dirs, "bad", None, raw=raw)
    r = responses(dirs, ["bad"])["bad"]
    assert r["state"] == "failed" and r["result"] is None
    assert r["error"].startswith(f"{field}:"), r
    assert img_files(game) == []


def test_the_watcher_goes_on_after_a_bad_request(start_watcher, game, dirs, quick_runner):
    start_watcher(runner=quick_runner)
    drop(dirs, "bad", None, raw=b"{")
    drop(dirs, "good", {"seed": 5, "steps": 1})
    got = responses(dirs, ["bad", "good"])
    assert (got["bad"]["state"], got["good"]["state"]) == ("failed", "done")
    assert img_files(game) == ["img/characters/$default_5.png", "img/faces/default_5.png"]


@pytest.mark.parametrize("filename", ["bad name.json", "CON.json", "x" * 65 + ".json", "\u00fc.json",
                                      "a\nb.json", "-dash.json", "a\u202eb.json", "nul.JSON"])
def test_hostile_request_file_names_get_a_failed_response_under_a_sanitized_id(start_watcher, game, dirs, filename):
    dirs["requests"].mkdir(parents=True)
    (dirs["requests"] / filename).write_text(json.dumps({"seed": 1, "steps": 1}))
    start_watcher()
    rid = sanitized_id(filename)
    r = responses(dirs, [rid])[rid]
    assert r["state"] == "failed" and r["error"].startswith("id:") and r["id"] == rid
    assert listing(dirs["requests"]) == [] and listing(dirs["done"]) == [f"{rid}.json"]
    assert img_files(game) == []


@pytest.mark.parametrize("name", ["../../js/evil", "a/b", "CON", "$Hero", "x\u0000y", ".hidden"])
def test_hostile_names_in_the_body_get_a_failed_response_and_write_nothing(start_watcher, game, dirs, name):
    start_watcher()
    drop(dirs, "evil", {"name": name, "steps": 1})
    r = responses(dirs, ["evil"])["evil"]
    assert r["state"] == "failed" and r["error"].startswith("name:")
    assert img_files(game) == [] and listing(game / "js") == ["rpg_core.js"]


def test_a_link_is_not_followed(start_watcher, game, dirs):
    dirs["requests"].mkdir(parents=True)
    (dirs["requests"] / "link.json").symlink_to(game / "js/rpg_core.js")
    start_watcher()
    r = responses(dirs, ["link"])["link"]
    assert r["state"] == "failed" and r["error"].startswith("file:")
    assert (game / "js/rpg_core.js").read_text() == "// MV"


def test_other_files_are_left_alone_quietly(start_watcher, game, dirs, caplog, quick_runner):
    dirs["requests"].mkdir(parents=True)
    for name in ("notes.txt", ".hidden.json", "x.json.tmp", "README"):
        (dirs["requests"] / name).write_text('{"seed": 1}')
    (dirs["requests"] / "folder.json").mkdir()
    with caplog.at_level(logging.INFO, logger="rmmv_gan.watcher"):
        start_watcher(runner=quick_runner)
        drop(dirs, "real", {"seed": 3, "steps": 1})
        assert responses(dirs, ["real"])["real"]["state"] == "done"
    assert listing(dirs["requests"]) == [".hidden.json", "README", "folder.json", "notes.txt", "x.json.tmp"]
    assert listing(dirs["responses"]) == ["real.json"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_request_that_vanishes_before_its_claim_is_ignored_quietly(start_watcher, dirs, caplog):
    watcher = start_watcher()
    with caplog.at_level(logging.DEBUG, logger="rmmv_gan.watcher"):
        watcher._claim_and_answer(dirs["requests"] / "gone.json")
    assert listing(dirs["responses"]) == [] and listing(dirs["processing"]) == []
    assert not caplog.records


def test_a_half_written_tmp_is_never_read(start_watcher, game, dirs, quick_runner):
    dirs["requests"].mkdir(parents=True)
    tmp = dirs["requests"] / "half.json.tmp"
    tmp.write_text('{"seed": 4, "st')
    start_watcher(runner=quick_runner)
    drop(dirs, "other", {"seed": 8, "steps": 1})
    assert responses(dirs, ["other"])["other"]["state"] == "done"  # scanned at least once meanwhile
    time.sleep(0.5)  # and a few periodic scans more
    assert tmp.read_text() == '{"seed": 4, "st' and listing(dirs["responses"]) == ["other.json"]
    with tmp.open("a") as f:
        f.write('eps": 1}')
    os.replace(tmp, dirs["requests"] / "half.json")
    assert responses(dirs, ["half"])["half"]["result"]["seed"] == 4


# --------------------------------------------------------------------------- restart, exactly once

def test_a_request_left_in_processing_is_answered_after_restart(start_watcher, game, dirs, quick_runner):
    dirs["processing"].mkdir(parents=True)
    (dirs["processing"] / "left.json").write_text(json.dumps({"seed": 21, "steps": 1}))
    start_watcher(runner=quick_runner)
    r = responses(dirs, ["left"])["left"]
    assert r["state"] == "done" and r["result"]["faces"] == "default_21"
    assert listing(dirs["processing"]) == [] and listing(dirs["done"]) == ["left.json"]


def test_a_request_with_a_response_is_not_run_again(start_watcher, game, dirs, quick_runner):
    for d in ("processing", "requests"):
        dirs[d].mkdir(parents=True)
    dirs["responses"].mkdir(parents=True)
    answer = json.dumps({"id": "old", "state": "done", "result": None, "error": None})
    (dirs["responses"] / "old.json").write_text(answer)
    (dirs["processing"] / "old.json").write_text(json.dumps({"seed": 31, "steps": 1}))  # died before moving it
    start_watcher(runner=quick_runner)
    drop(dirs, "old", {"seed": 32, "steps": 1})  # the same ID again
    drop(dirs, "after", {"seed": 33, "steps": 1})
    responses(dirs, ["after"])
    assert (dirs["responses"] / "old.json").read_text() == answer
    assert json.loads((dirs["done"] / "old.json").read_text())["seed"] == 31  # done/ keeps the first
    assert img_files(game) == ["img/characters/$default_33.png", "img/faces/default_33.png"]
    assert listing(dirs["processing"]) == [] and listing(dirs["requests"]) == []


def test_a_character_written_just_before_a_crash_is_answered_without_a_second_run(start_watcher, game, dirs,
                                                                                  opened):
    from rmmv_gan.game import save_character
    from rmmv_gan.pipeline import CharacterRequest

    # the dead watcher wrote the files but not the response: its claimed request has seed and name
    body = {"seed": 41, "steps": 1, "name": "Crash"}
    save_character(GameFolder(game), make_character(opened, CharacterRequest(**body)))
    before = {n: (game / n).read_bytes() for n in img_files(game)}
    dirs["processing"].mkdir(parents=True)
    (dirs["processing"] / "crash.json").write_text(json.dumps(body))
    start_watcher()
    r = responses(dirs, ["crash"])["crash"]
    assert r["state"] == "done" and r["result"]["character"] == "$Crash" and r["result"]["seed"] == 41
    assert {n: (game / n).read_bytes() for n in img_files(game)} == before


def test_a_second_watcher_on_the_same_game_is_refused(start_watcher, game, opened):
    start_watcher()
    jobs = JobQueue(opened, GameFolder(game))
    try:
        with pytest.raises(WatcherBusy, match="another watcher"):
            Watcher(game, jobs, opened.pack).start()
    finally:
        jobs.close()


def test_answered_requests_and_responses_expire_after_keep_days(start_watcher, dirs, quick_runner):
    for d in ("done", "responses"):
        dirs[d].mkdir(parents=True)
        for rid, age_days in (("old", 8), ("recent", 6)):
            p = dirs[d] / f"{rid}.json"
            p.write_text("{}")
            t = time.time() - age_days * 86400
            os.utime(p, (t, t))
    start_watcher(keep_days=7, runner=quick_runner)
    drop(dirs, "now", {"seed": 1, "steps": 1})
    responses(dirs, ["now"])
    assert listing(dirs["done"]) == ["now.json", "recent.json"]
    assert listing(dirs["responses"]) == ["now.json", "recent.json"]


# --------------------------------------------------------------------------- with the daemon

def test_http_and_file_jobs_share_the_daemons_one_worker_queue(game, opened, dirs):
    gate, order, active, peak = threading.Event(), [], [0], [0]
    lock = threading.Lock()

    def runner(opened_, req, progress, cancel):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            order.append(req.name)
        try:
            assert gate.wait(30)
            return make_character(opened_, req, progress=progress, cancel=cancel)
        finally:
            with lock:
                active[0] -= 1

    daemon = Daemon(ServerConfig(project=game, port=8765, token=TOKEN, runner=runner), opened)
    jobs = daemon.jobs
    client = daemon.app().test_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    watcher = Watcher(daemon.folder, jobs, opened.pack, scan_interval=0.2)
    try:
        http = client.post("/api/characters", json={"seed": 1, "steps": 1, "name": "ByHttp"},
                           base_url="http://127.0.0.1:8765", headers=auth)
        assert http.status_code == 202
        watcher.start()
        drop(dirs, "byfile", {"seed": 2, "steps": 1, "name": "ByFile"})
        end = time.time() + 30
        while client.get("/api/health", base_url="http://127.0.0.1:8765").json["queue"] < 2:
            assert time.time() < end
            time.sleep(0.02)
        assert {j.request.name for j in jobs.jobs.values()} == {"ByHttp", "ByFile"}  # one queue holds both
        gate.set()
        r = responses(dirs, ["byfile"])["byfile"]
        assert r["state"] == "done" and r["result"]["character"] == "$ByFile"
        job = client.get(f"/api/jobs/{http.json['job']}", base_url="http://127.0.0.1:8765", headers=auth).json
        assert job["state"] == "done"
        assert order == ["ByHttp", "ByFile"] and peak[0] == 1  # one after the other, never at once
    finally:
        gate.set()
        watcher.close()
        jobs.close()


def test_serve_with_watch_answers_request_files(game, pack_dir, dirs):
    from test_server import start_serve, stop

    proc, said = start_serve(game, pack_dir, "--watch")
    try:
        assert "answering request files in" in said
        drop(dirs, "viaserve", {"seed": 6, "steps": 1})
        assert responses(dirs, ["viaserve"])["viaserve"]["state"] == "done"
    finally:
        stop(proc)
    assert (game / "img/faces/default_6.png").is_file()


def test_watch_refuses_a_folder_that_is_not_a_game(tmp_path, pack_dir):
    from click.testing import CliRunner

    from rmmv_gan.cli import main

    r = CliRunner().invoke(main, ["watch", str(tmp_path), "--pack", str(pack_dir)])
    assert r.exit_code == 1 and "not an RPG Maker MV or MZ project" in r.output and "Traceback" not in r.output


# --------------------------------------------------------------------------- the command, killed and stopped

def _sigint_default():
    # A test run started in the background by a non-interactive shell inherits SIGINT ignored;
    # the watcher under test must get Ctrl+C as a terminal would give it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def sigint_raises():
    """Ctrl+C raises KeyboardInterrupt in this process for the test, whatever pytest inherited."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.fixture
def run_watch(game, pack_dir, tmp_path):
    """Start `rmmv-gan watch GAME` as a process; returns (process, its stderr file)."""
    procs = []

    def start():
        log = tmp_path / f"watch{len(procs)}.log"
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        with log.open("wb") as f:
            proc = subprocess.Popen([sys.executable, "-m", "rmmv_gan.cli", "watch", str(game), "--pack",
                                     str(pack_dir)], env=env, stdout=subprocess.DEVNULL, stderr=f,
                                    preexec_fn=_sigint_default if os.name == "posix" else None)
        procs.append(proc)
        end = time.time() + 60
        while b"watching" not in log.read_bytes():
            assert proc.poll() is None, log.read_text()
            assert time.time() < end
            time.sleep(0.05)
        return proc, log

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def wait_for(path, timeout=60):
    end = time.time() + timeout
    while not path.exists():
        assert time.time() < end, f"{path} did not appear"
        time.sleep(0.01)


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_sigkill_mid_job_then_restart_answers_every_request_exactly_once(run_watch, game, dirs):
    proc, _ = run_watch()
    quick = ["a1", "a2"]
    for i, rid in enumerate(quick):
        drop(dirs, rid, {"seed": i + 1, "steps": 1})
    drop(dirs, "b-long", {"seed": 99, "steps": 8, "name": "Killed"})
    responses(dirs, quick)
    wait_for(dirs["processing"] / "b-long.json")
    time.sleep(0.3)  # into the pipeline
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert not (dirs["responses"] / "b-long.json").exists()  # killed in the middle of the job
    assert_complete_pngs(game)
    assert not (game / "img/faces/Killed.png").exists()
    drop(dirs, "c1", {"seed": 50, "steps": 1})  # arrives while no watcher runs

    proc, _ = run_watch()
    ids = quick + ["b-long", "c1"]
    got = responses(dirs, ids)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0
    assert [got[rid]["state"] for rid in ids] == ["done"] * 4
    assert got["b-long"]["result"]["character"] == "$Killed"
    assert len(listing(game / "rmmv_gan/characters")) == 4 and len(img_files(game)) == 8  # each ran once
    assert_complete_pngs(game)
    assert listing(dirs["done"]) == sorted(f"{rid}.json" for rid in ids)
    assert listing(dirs["processing"]) == [] and listing(dirs["requests"]) == []


def interrupt_when(path, times=1):
    """Press Ctrl+C (a KeyboardInterrupt in the main thread, as the terminal's SIGINT gives) once
    `path` exists, `times` times half a second apart."""
    def press():
        try:
            wait_for(path)
        finally:  # never leave the watcher running forever: the test's asserts will tell
            for i in range(times):
                time.sleep(0.5 if i else 0.1)
                _thread.interrupt_main()

    t = threading.Thread(target=press, daemon=True)
    t.start()
    return t


def watch(game, opened, said):
    """`rmmv-gan watch` in this process: a Daemon's watcher, without HTTP, until Ctrl+C."""
    Daemon(ServerConfig(project=game, queue_size=1, write_server_json=False), opened).watch(
        scan_interval=0.2, echo=said.append)


def test_ctrl_c_finishes_the_running_request_then_stops(game, opened, dirs, sigint_raises):
    # Long enough (seconds) to be seen in processing/ and to outlast the 0.1 s before the press.
    drop(dirs, "first", {"seed": 1, "steps": 20})
    drop(dirs, "second", {"seed": 2, "steps": 1})
    said = []
    presser = interrupt_when(dirs["processing"] / "first.json")
    watch(game, opened, said)
    presser.join(5)
    assert json.loads((dirs["responses"] / "first.json").read_text())["state"] == "done"
    assert listing(dirs["requests"]) == ["second.json"] and not (dirs["responses"] / "second.json").exists()
    assert said[-1] == "stopping after the running request (Ctrl+C again cancels it)"


def test_a_second_ctrl_c_cancels_the_running_request_cleanly(game, opened, dirs, sigint_raises):
    drop(dirs, "long", {"seed": 1, "steps": 5000, "name": "Long"})
    said = []
    presser = interrupt_when(dirs["processing"] / "long.json", times=2)
    started = time.time()
    watch(game, opened, said)
    presser.join(5)
    assert time.time() - started < 30
    assert said[-1] == "cancelling the running request"
    assert listing(dirs["responses"]) == [] and img_files(game) == []
    assert listing(dirs["processing"]) == ["long.json"]  # runs again on the next start
