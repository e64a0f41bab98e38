"""The daemon's web page in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, installed by .ci/run) driven by Selenium against the real waitress server.

It enters the token, generates a character, waits for the progress bar to reach 100 % and
checks that the new walk sheet, face sheet and gallery entry are on the page as loaded images
of the files the daemon wrote."""

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import pytest
import torch
from PIL import Image

from rmmv_gan.daemon import Daemon, ServerConfig

TOKEN = "browser-token-123456"
TIMEOUT = 120  # seconds: the job is tiny, but the machine may be shared with a training run


def _need(thing: str, found) -> None:
    """Skip when the browser stack is missing locally; fail under CI, where .ci/run installs it."""
    if not found:
        msg = f"{thing} not found (Debian: apt-get install chromium chromium-driver; pip install selenium)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


def _program(env: str, *names):
    """An executable from env ENV (a path) or the first of NAMES on PATH; None if neither."""
    path = os.environ.get(env) or next((p for p in map(shutil.which, names) if p), None)
    return path if path and os.access(path, os.X_OK) else None


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = None
    _need("selenium", webdriver)
    chromium = _program("CHROMIUM", "chromium", "chromium-browser")
    _need("chromium", chromium)
    driver_path = _program("CHROMEDRIVER", "chromedriver")
    _need("chromedriver", driver_path)
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    # --no-sandbox: CI runs as root, where Chromium refuses its sandbox;
    # --disable-dev-shm-usage: containers often have a tiny /dev/shm.
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900"):
        opts.add_argument(arg)
    # An explicit driver path keeps Selenium Manager from downloading a driver at test time.
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    driver.set_page_load_timeout(TIMEOUT)
    yield driver
    driver.quit()


@pytest.fixture
def daemon(game, opened):
    """The real server on a free loopback port, as `rmmv-gan serve` runs it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the test pack is tiny; a thread pool fighting Chromium only slows it
    running = Daemon(ServerConfig(project=game, port=0, token=TOKEN), opened)
    server = running.bind()
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield running.url
    finally:
        server.close()
        running.close()
        thread.join(5)
        torch.set_num_threads(threads)


def wait_for(driver, script, what, timeout=TIMEOUT):
    """Poll a JS expression until it is truthy; fail with what the page showed."""
    end = time.time() + timeout
    while True:
        value = driver.execute_script(script)
        if value:
            return value
        if time.time() > end:
            status = driver.execute_script("return document.getElementById('status').textContent")
            pytest.fail(f"timed out waiting for {what}; page status: {status!r}")
        time.sleep(0.1)


LOADED = "const i = {}; return i && i.complete && i.naturalWidth > 0 ? [i.naturalWidth, i.naturalHeight, i.src] : null"


def test_page_generates_a_character_and_shows_its_images(browser, daemon, game, opened):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(daemon + "/")
    # Without the token the page cannot read the pack, and says so.
    wait_for(browser, "return document.getElementById('status').textContent.includes('enter the token')",
             "the page to ask for the token")
    assert browser.execute_script("return document.getElementById('archetype').options.length") == 0

    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "save-token").click()
    wait_for(browser, "return document.getElementById('status').textContent === 'ready'", "the pack to load")
    archetypes = browser.execute_script(
        "return [...document.getElementById('archetype').options].map(o => o.value)")
    assert archetypes == list(opened.pack.archetypes)
    emotions = browser.execute_script(
        "return [...document.querySelectorAll('#emotions input:checked')].map(c => c.value)")
    assert emotions == [e.name for e in opened.pack.emotions]

    Select(browser.find_element(By.ID, "archetype")).select_by_value("hero")

    browser.find_element(By.ID, "seed").send_keys("7")
    browser.find_element(By.ID, "name").send_keys("Browsy")
    browser.find_element(By.ID, "steps").send_keys("2")
    browser.find_element(By.ID, "generate").click()

    wait_for(browser, "return document.getElementById('progress').style.width === '100%'",
             "the progress bar to finish")
    wait_for(browser, "return document.getElementById('status').textContent.startsWith('done:')", "the job to end")
    assert browser.find_element(By.ID, "status").text == "done: $Browsy (seed 7)"
    assert browser.find_element(By.ID, "generate").is_enabled()

    # The daemon wrote the files ...
    with Image.open(game / "img/faces/Browsy.png") as im:
        face_size = im.size
    with Image.open(game / "img/characters/$Browsy.png") as im:
        walk_size = im.size
    assert face_size == (576, 288) and walk_size == (144, 192)
    meta = json.loads((game / "rmmv_gan/characters/Browsy.json").read_text())
    assert (meta["archetype"], meta["seed"], meta["steps"]) == ("hero", 7, 2)

    # ... and the page shows them: the face sheet as a loaded image of the file's size,
    w, h, src = wait_for(browser, LOADED.format("document.getElementById('faces')"), "the face sheet")
    assert (w, h) == face_size and src.startswith("blob:")
    # the new character first in the gallery, loaded, of the walk sheet's size,
    w, h, src = wait_for(browser, LOADED.format("document.querySelector('#gallery img[alt=\"Browsy\"]')"),
                         "the gallery entry")
    assert (w, h) == walk_size and src.startswith("blob:")
    caption = browser.execute_script("return document.querySelector('#gallery figure figcaption').textContent")
    assert caption == "Browsy"
    # and the walk sheet animated on the canvas (some pixel drawn, from the loaded sheet).
    wait_for(browser, """
        const c = document.getElementById('walk');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let k = 3; k < d.length; k += 4) if (d[k] > 0) return true;
        return false;""", "the walk sheet on the canvas")


def test_pages_take_their_bounds_from_the_daemons_limits(browser, daemon, monkeypatch):
    from selenium.webdriver.common.by import By

    from rmmv_gan.pipeline import LIMITS, Limit

    monkeypatch.setitem(LIMITS, "psi", Limit("number", -1, 1.5))
    monkeypatch.setitem(LIMITS, "seed", Limit("integer", 0, 999))
    monkeypatch.setitem(LIMITS, "steps", Limit("integer", 1, 77))
    monkeypatch.setitem(LIMITS, "name", Limit("text", 1, 12))
    browser.get(daemon + "/")
    browser.find_element(By.ID, "token").clear()
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "save-token").click()
    wait_for(browser, "return document.getElementById('status').textContent === 'ready'", "the pack to load")
    bounds = browser.execute_script(
        "return ['psi', 'seed', 'steps'].map(id => [document.getElementById(id).min, document.getElementById(id).max])"
        ".concat([document.getElementById('name').maxLength])")
    assert bounds == [["-1", "1.5"], ["0", "999"], ["1", "77"], 12]
    browser.get(daemon + "/probe")  # the token saved on the generator page
    wait_for(browser, "return document.getElementById('status').textContent === 'ready'", "the limits to load")
    bounds = browser.execute_script(
        "return ['seed-a', 'seed-b', 'psi'].map(id => [document.getElementById(id).min, document.getElementById(id).max])")
    assert bounds == [["0", "999"], ["0", "999"], ["-1", "1.5"]]


def test_the_address_serve_prints_opens_the_page_signed_in(browser, game, pack_dir):
    """`serve` prints http://127.0.0.1:PORT/#token=...; opening it needs no typing, and the token
    leaves the address bar (it stays in the page's storage, as a typed one does)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("RMMV_GAN_TOKEN", None)  # a new token, known only from what serve prints
    proc = subprocess.Popen([sys.executable, "-m", "rmmv_gan.cli", "serve", "--project", str(game), "--pack",
                             str(pack_dir), "--port", "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        url = None
        for line in proc.stdout:
            found = re.search(r"(http://127\.0\.0\.1:\d+/#token=\S+)", line)
            if found:
                url = found.group(1)
                break
        assert url, "serve printed no signed-in address"
        token = json.loads((game / "rmmv_gan/server.json").read_text())["token"]
        assert url.endswith("/#token=" + token)

        browser.get(url)
        wait_for(browser, "return document.getElementById('status').textContent === 'ready'", "the pack to load")
        assert browser.execute_script("return document.getElementById('archetype').options.length") > 0
        assert browser.current_url == url.split("#")[0]
        assert "token" not in browser.execute_script("return location.href")
        assert browser.execute_script("return localStorage.getItem('rmmv-gan-token')") == token

        browser.find_element("id", "steps").send_keys("1")
        browser.find_element("id", "generate").click()
        wait_for(browser, "return document.getElementById('status').textContent.startsWith('done:')", "the job to end")
    finally:
        proc.terminate()
        proc.wait(30)
