"""One rule for "this name is taken" (rmmv_gan.game.taken), whichever transport asks: a name
is taken when a file of it exists under another case or another Unicode normal form, as
Windows and macOS see file names. `export`, the daemon and the watcher each refuse the same
case-variant and NFD-variant names, and write nothing."""

import json
import os

import pytest
from click.testing import CliRunner

from rmmv_gan.cli import main
from rmmv_gan.daemon import Daemon, ServerConfig
from rmmv_gan.game import GameFolder, name_key, taken
from rmmv_gan.jobs import JobQueue
from rmmv_gan.watcher import Watcher

from test_server import AUTH, BASE, TOKEN, one_thread  # noqa: F401 - one_thread: autouse, one torch thread
from test_watcher import drop, responses

# (the face sheet already in the game, the name then asked for)
VARIANTS = {
    "case": ("hero", "HERO"),
    "nfd": ("Cafe\u0301", "Caf\u00e9"),  # e + combining acute (as macOS hands names over) vs. é
}


@pytest.fixture(params=list(VARIANTS))
def variant(request, game):
    """The game holds img/faces/EXISTING.png; returns (existing, asked, files before)."""
    existing, asked = VARIANTS[request.param]
    (game / "img/faces").mkdir(parents=True, exist_ok=True)
    (game / "img/faces" / f"{existing}.png").write_bytes(b"someone's face sheet")
    return existing, asked, sorted(os.listdir(game / "img/faces"))


def test_the_variants_differ_on_this_file_system_but_share_a_key():
    for existing, asked in VARIANTS.values():
        assert existing != asked and name_key(existing) == name_key(asked)


def test_taken_names_the_existing_file(game, variant):
    existing, asked, _ = variant
    assert taken(GameFolder(game), asked).name == f"{existing}.png"
    assert taken(GameFolder(game), "Somebody") is None


def test_export_refuses_the_variant(game, pack_dir, variant):
    existing, asked, before = variant
    r = CliRunner().invoke(main, ["export", "--project", str(game), "--pack", str(pack_dir), "--name", asked,
                                  "--seed", "1", "--steps", "1"])
    assert r.exit_code == 1 and "already exists" in r.output and "Traceback" not in r.output
    assert sorted(os.listdir(game / "img/faces")) == before
    assert not (game / "img/characters").exists() or os.listdir(game / "img/characters") == []


def test_the_daemon_refuses_the_variant(game, opened, variant):
    existing, asked, before = variant
    daemon = Daemon(ServerConfig(project=game, port=8765, token=TOKEN), opened)
    try:
        r = daemon.app().test_client().post("/api/characters", json={"name": asked, "seed": 1, "steps": 1},
                                            base_url=BASE, headers=AUTH)
    finally:
        daemon.close()
    assert r.status_code == 409 and r.json["error"].startswith("name:") and "is taken" in r.json["error"]
    assert sorted(os.listdir(game / "img/faces")) == before


def test_the_watcher_refuses_the_variant(game, opened, variant):
    existing, asked, before = variant
    folder = GameFolder(game)
    jobs = JobQueue(opened, folder, maxsize=1)
    dirs = {k: folder.data_dir / k for k in ("requests", "processing", "responses", "done")}
    try:
        with Watcher(folder, jobs, opened.pack, scan_interval=0.2):
            drop(dirs, "variant", {"name": asked, "seed": 1, "steps": 1})
            r = responses(dirs, ["variant"])["variant"]
    finally:
        jobs.close()
    assert r["state"] == "failed" and r["error"].startswith("name:") and "is taken" in r["error"]
    assert sorted(os.listdir(game / "img/faces")) == before
    assert json.loads((dirs["done"] / "variant.json").read_text())["name"] == asked
