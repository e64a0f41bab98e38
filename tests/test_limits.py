"""One request contract (rmmv_gan.pipeline.LIMITS): each limit is written once, in Python; the
daemon serves the table at /api/pack, and the web pages and the plugin take their bounds from
there. Changing a limit changes what the daemon refuses, what the page offers and what the
plugin lets a player choose."""

import json
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from rmmv_gan import pipeline
from rmmv_gan.daemon import Daemon, ServerConfig
from rmmv_gan.pipeline import LIMITS, CharacterRequest, Limit, RequestError, limits_for

from test_server import AUTH, BASE, TOKEN, one_thread  # noqa: F401 - one_thread: autouse, one torch thread

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def narrow_limits(monkeypatch):
    """psi in [-1, 1.5], seeds in [0, 999], names of at most 12 characters."""
    monkeypatch.setitem(LIMITS, "psi", Limit("number", -1, 1.5))
    monkeypatch.setitem(LIMITS, "seed", Limit("integer", 0, 999))
    monkeypatch.setitem(LIMITS, "name", Limit("text", 1, 12))


@pytest.fixture
def daemon(game, opened):
    made = Daemon(ServerConfig(project=game, port=8765, token=TOKEN), opened)
    yield made
    made.close()


def test_every_request_field_has_a_limit():
    assert set(LIMITS) == {f.name for f in pipeline.fields(CharacterRequest)}


def test_pack_serves_the_limits_table_as_it_holds_for_the_pack(daemon):
    limits = daemon.app().test_client().get("/api/pack", base_url=BASE, headers=AUTH).json["limits"]
    assert limits == {k: v.bounds for k, v in limits_for(daemon.opened.pack).items() if v.bounds != [None, None]}
    assert limits["psi"] == [-2, 2] and limits["seed"] == [0, 2**32 - 1]
    assert LIMITS["steps"].bounds == [0, 5000] and limits["steps"] == [1, 5000]  # no face encoder: 1 step at least


def test_a_changed_limit_is_served_and_enforced(daemon, narrow_limits):
    client = daemon.app().test_client()
    assert client.get("/api/pack", base_url=BASE, headers=AUTH).json["limits"]["psi"] == [-1, 1.5]
    r = client.post("/api/characters", json={"psi": 1.8}, base_url=BASE, headers=AUTH)
    assert r.status_code == 400 and r.json["error"] == "psi: must be a number in [-1, 1.5], not 1.8"
    r = client.post("/api/probe", json={"seeds": [1, 1000]}, base_url=BASE, headers=AUTH)
    assert r.status_code == 400 and r.json["error"].startswith("seeds: must be a whole number in [0, 999]")


def test_a_changed_limit_applies_to_cli_requests(opened, narrow_limits):
    with pytest.raises(RequestError, match=r"name: .*12"):
        CharacterRequest(name="A_much_too_long_name").resolved(opened.pack)


def test_a_new_field_is_one_line_in_the_table(opened, monkeypatch):
    """A field the contract does not know yet is refused by name; its LIMITS line is the check."""
    with pytest.raises(RequestError, match="^mood: unknown field"):
        CharacterRequest.from_json({"mood": 0.5})
    monkeypatch.setitem(LIMITS, "mood", Limit("number", 0, 1))
    with pytest.raises(RequestError, match=r"^mood: must be a number in \[0, 1\], not 2"):
        LIMITS["mood"].check("mood", 2)


def test_the_plugin_follows_a_changed_limit(game, opened, narrow_limits):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node not found")
    daemon = Daemon(ServerConfig(project=game, port=0, token=TOKEN), opened)
    server = daemon.bind()  # writes GAME/rmmv_gan/server.json, which the plugin reads in test play
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    # The Generate NPC scene: psi and seed pushed far past the bounds with the arrow keys.
    script = """
const {makeEngine, runFrames} = require('./js_plugin/testlib/engine');
(async () => {
    const e = makeEngine('MV', {gameDir: process.argv[1]});
    e.SceneManager.push(e.RmmvGan.Scene_RmmvGan);
    await runFrames(e, () => e.SceneManager._scene && /ready/.test(e.SceneManager._scene._statusWindow.text()));
    const scene = e.SceneManager._scene, options = scene._optionsWindow, s = scene._settings;
    options.selectSymbol('psi');
    for (let i = 0; i < 40; i++) options.cursorRight();
    const high = s.psi;
    for (let i = 0; i < 80; i++) options.cursorLeft();
    const low = s.psi;
    options.selectSymbol('seed');
    options.processOk();
    for (let i = 0; i < 1200; i++) options.cursorRight();
    console.log(JSON.stringify({psi: [low, high], seed: s.seed}));
})().catch((err) => { console.error(err); process.exit(1); });
"""
    try:
        out = subprocess.run([node, "-e", script, str(game)], cwd=REPO, capture_output=True, text=True, timeout=120)
    finally:
        server.close()
        daemon.close()
        thread.join(5)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"psi": [-1, 1.5], "seed": 999}
