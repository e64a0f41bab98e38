"""Bad input at the daemon, the watcher and export (issue 16): a body too large, names too long
in bytes, a write failing part way, a second daemon on a watched game, a game deleted while a
job runs, decomposed Unicode names, idle connections, links out of the image folders."""

import json
import os
import shutil
import socket
import threading
import time
import unicodedata

import pytest
from click.testing import CliRunner

from rmmv_gan import daemon as daemon_module
from rmmv_gan.cli import main
from rmmv_gan.daemon import Daemon, ServerConfig, write_server_json
from rmmv_gan.fileio import TargetExistsError
from rmmv_gan.game import GameFolder
from rmmv_gan.jobs import JobQueue
from rmmv_gan.watcher import Watcher, WatcherBusy

from test_server import AUTH, BASE, TOKEN, gated_runner, get, img_files, one_thread, post, wait  # noqa: F401
from test_watcher import dirs, drop, listing, quick_runner, responses, start_watcher  # noqa: F401

LONG_NAMES = {"han-84": "名" * 84, "emoji-64": "\U0001F600" * 64}  # <= 100 characters, > 255 bytes as $NAME.png


@pytest.fixture
def make_daemon(game, opened):
    made = []

    def make(**kw):
        d = Daemon(ServerConfig(**(dict(project=game, port=8765, token=TOKEN) | kw)), opened)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


@pytest.fixture
def served(make_daemon):
    """A daemon served by waitress on a free port, in a thread: (daemon, port)."""
    d = make_daemon(port=0, write_server_json=False)
    server = d.bind()
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield d, d.port
    server.close()


def raw_http(port, data: bytes, timeout=5.0) -> bytes:
    """Send bytes, read the answer until the server closes or `timeout` passes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        got = b""
        try:
            while chunk := s.recv(65536):
                got += chunk
        except socket.timeout:
            pass
    return got


# --------------------------------------------------------------------------- 1: body size

def test_a_body_declared_too_large_is_refused_at_once_without_a_token(served):
    _, port = served
    started = time.monotonic()
    # 200 MB declared, none sent: the answer must come from the headers alone
    answer = raw_http(port, f"POST /api/characters HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                            f"Content-Type: text/plain\r\nContent-Length: 200000000\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 4
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body["error"].startswith("body:")


def test_the_apps_413_names_the_body(make_daemon):
    c = make_daemon().app().test_client()
    r = c.post("/api/characters", data=b"x" * 70_000, content_type="text/plain", base_url=BASE)
    assert r.status_code == 413 and r.json["error"].startswith("body:")


# --------------------------------------------------------------------------- 2: names by bytes

@pytest.mark.parametrize("name", LONG_NAMES.values(), ids=LONG_NAMES.keys())
def test_the_daemon_refuses_a_name_too_long_in_bytes_naming_the_field(make_daemon, game, name):
    c = make_daemon().app().test_client()
    r = post(c, {"name": name, "seed": 1, "steps": 1})
    assert r.status_code == 400 and r.json["error"].startswith("name:") and "bytes" in r.json["error"]
    assert img_files(game) == []


@pytest.mark.parametrize("name", LONG_NAMES.values(), ids=LONG_NAMES.keys())
def test_export_refuses_a_name_too_long_in_bytes_with_one_error_line(game, pack_dir, name):
    r = CliRunner().invoke(main, ["export", "--project", str(game), "--pack", str(pack_dir), "--name", name,
                                  "--seed", "1", "--steps", "1"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.output.count("Error:") == 1 and "name:" in r.output and "bytes" in r.output
    assert img_files(game) == []


@pytest.mark.parametrize("name", LONG_NAMES.values(), ids=LONG_NAMES.keys())
def test_the_watcher_answers_a_name_too_long_in_bytes(start_watcher, game, dirs, name):
    start_watcher()
    drop(dirs, "long", {"name": name, "seed": 1, "steps": 1})
    answer = responses(dirs, ["long"])["long"]
    assert answer["state"] == "failed" and answer["error"].startswith("name:")
    assert listing(dirs["processing"]) == [] and img_files(game) == []


def test_the_watcher_answers_a_request_whatever_goes_wrong(start_watcher, game, dirs):
    watcher = start_watcher()

    def broken(req):
        raise RuntimeError("something nobody foresaw")

    watcher.jobs.character = broken
    drop(dirs, "odd", {"name": "Odd", "seed": 1, "steps": 1})
    answer = responses(dirs, ["odd"])["odd"]
    assert answer["state"] == "failed" and "something nobody foresaw" in answer["error"]
    assert listing(dirs["processing"]) == []


# --------------------------------------------------------------------------- 4: rollback

def test_a_write_failing_part_way_leaves_no_file_and_the_name_free(make_daemon, game, quick_runner):
    import dataclasses

    import numpy as np

    def bad_face_sheet(opened, req, progress, cancel):  # the walk sheet writes, the face sheet cannot
        made = quick_runner(opened, req, progress, cancel)
        return dataclasses.replace(made, face_sheet=np.zeros((288, 576, 2), np.uint8)) if req.name == "Half" else made

    c = make_daemon(runner=bad_face_sheet).app().test_client()
    failed = wait(c, post(c, {"name": "Half", "seed": 1, "steps": 1}).json["job"])
    assert failed["state"] == "failed" and failed["error"].startswith("writing:")
    assert img_files(game) == [] and listing(game / "rmmv_gan" / "characters") == []


def test_a_write_failing_in_a_folder_leaves_no_file_and_a_retry_succeeds(make_daemon, game, quick_runner):
    faces = game / "img" / "faces"
    shutil.rmtree(faces)
    faces.write_bytes(b"not a folder")  # (tests run as root: a read-only folder would not stop them)
    c = make_daemon(runner=quick_runner).app().test_client()
    failed = wait(c, post(c, {"name": "Half", "seed": 1, "steps": 1}).json["job"])
    assert failed["state"] == "failed" and failed["error"].startswith("writing:")
    assert listing(game / "img" / "characters") == [] and listing(game / "rmmv_gan" / "characters") == []
    faces.unlink()
    faces.mkdir()
    retry = post(c, {"name": "Half", "seed": 1, "steps": 1})
    assert retry.status_code == 202 and wait(c, retry.json["job"])["state"] == "done"
    assert img_files(game) == ["img/characters/$Half.png", "img/faces/Half.png"]


def test_files_written_as_one_are_removed_when_a_later_one_cannot_be_placed(tmp_path):
    from rmmv_gan.fileio import atomic_write_all

    first, second = tmp_path / "a.png", tmp_path / "b.png"

    def write_second(f):  # another writer takes b.png while ours is being written
        second.write_bytes(b"theirs")
        f.write(b"ours")

    with pytest.raises(TargetExistsError):
        atomic_write_all([(first, lambda f: f.write(b"ours")), (second, write_second)])
    assert sorted(os.listdir(tmp_path)) == ["b.png"] and second.read_bytes() == b"theirs"


KILLED_BETWEEN_RENAMES = """
import os, sys, types
import numpy as np
from rmmv_gan.game import GameFolder, save_character
from rmmv_gan.pipeline import CharacterRequest

real_link, links = os.link, []
def link(src, dst):  # the process dies as it puts the second file in place
    links.append(dst)
    if len(links) == 2:
        os._exit(9)
    real_link(src, dst)
os.link = link
character = types.SimpleNamespace(request=CharacterRequest(name="Torn", seed=1), metadata={},
                                  walk_sheet=np.zeros((192, 144, 4), np.uint8),
                                  face_sheet=np.zeros((288, 576, 4), np.uint8))
save_character(GameFolder(sys.argv[1]), character)
"""


def test_a_writer_killed_between_two_files_leaves_nothing_once_the_daemon_starts(game):
    import subprocess
    import sys

    from rmmv_gan.game import taken
    from rmmv_gan.jobs import remove_stale_temporaries

    run = subprocess.run([sys.executable, "-c", KILLED_BETWEEN_RENAMES, str(game)], env=dict(os.environ))
    assert run.returncode == 9
    folder = GameFolder(game)
    assert taken(folder, "Torn") is not None  # the crash left the walk sheet
    remove_stale_temporaries(folder)  # what Daemon.bind and Daemon.watch do first
    assert taken(folder, "Torn") is None
    visible = [n for d in ("img/characters", "img/faces", "rmmv_gan/characters") for n in listing(game / d)
               if not n.startswith(".")]
    assert visible == []


# --------------------------------------------------------------------------- 7: server.json

def test_serve_watch_refused_by_another_watcher_leaves_server_json_alone(make_daemon, game, opened):
    first = make_daemon()
    write_server_json(first.folder, first.url, first.token)
    server_json = game / "rmmv_gan" / "server.json"
    before = server_json.read_bytes()
    folder = GameFolder(game)
    jobs = JobQueue(opened, folder, maxsize=1)
    holder = Watcher(folder, jobs, opened.pack).start()
    try:
        second = make_daemon(port=0, token="another-token-123")
        with pytest.raises(WatcherBusy):
            second.serve(watch_files=True, echo=lambda line: None)
    finally:
        holder.close()
        jobs.close()
    assert server_json.read_bytes() == before


# --------------------------------------------------------------------------- 8: game deleted

def test_a_game_deleted_while_its_job_runs_fails_the_job_and_is_not_recreated(make_daemon, game):
    gate, started = threading.Event(), threading.Event()
    c = make_daemon(runner=gated_runner(gate, started)).app().test_client()
    job = post(c, {"name": "Gone", "seed": 1, "steps": 1}).json["job"]
    assert started.wait(30)
    shutil.rmtree(game)
    gate.set()
    result = wait(c, job)
    assert result["state"] == "failed" and "gone" in result["error"]
    assert not game.exists()


# --------------------------------------------------------------------------- 9: NFC

def test_a_decomposed_name_is_saved_composed(make_daemon, game, quick_runner):
    c = make_daemon(runner=quick_runner).app().test_client()
    r = post(c, {"name": "Cafe\u0301", "seed": 1, "steps": 1})
    assert r.status_code == 202 and r.json["name"] == "Caf\u00e9"
    assert wait(c, r.json["job"])["result"]["faces"] == "Caf\u00e9"
    assert os.listdir(game / "img" / "faces") == ["Caf\u00e9.png"]
    assert all(unicodedata.is_normalized("NFC", n) for n in os.listdir(game / "img" / "characters"))


# --------------------------------------------------------------------------- 10: idle connections

def test_idle_half_open_connections_do_not_block_health_for_long(served):
    _, port = served
    idle = []
    try:
        for _ in range(daemon_module.CONNECTION_LIMIT):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1")  # never finished
            idle.append(s)
        limit = daemon_module.CHANNEL_TIMEOUT + daemon_module.CLEANUP_INTERVAL + 5
        started = time.monotonic()
        answer = raw_http(port, f"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
                          .encode(), timeout=limit)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        assert time.monotonic() - started < limit
    finally:
        for s in idle:
            s.close()


# --------------------------------------------------------------------------- 16: links

@pytest.mark.parametrize("kind", ["faces", "characters"])
def test_a_link_out_of_the_image_folder_is_not_served(make_daemon, game, tmp_path, kind):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG not for the web")
    name = "$Leak.png" if kind == "characters" else "Leak.png"
    os.symlink(secret, game / "img" / kind / name)
    c = make_daemon().app().test_client()
    r = get(c, f"/img/{kind}/{name}")
    assert r.status_code == 404 and b"not for the web" not in r.data
