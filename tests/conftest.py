import json
import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parents[1].parent / "shared" / "golden"


def golden_dir() -> Path:
    """The folder of official reference outputs; skip (or fail under CI) when absent."""
    if not GOLDEN.is_dir():
        msg = f"reference outputs not found at {GOLDEN} (../shared/golden beside the checkout)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return GOLDEN


@pytest.fixture(scope="session")
def pack_dir(tmp_path_factory):
    """A small pack made from the golden pickles (noise images, real plumbing): an archetype
    'hero' with presets, emotions neutral and happy, 4 projection steps."""
    from rmmv_gan.packs import add_preset, init_pack

    root = tmp_path_factory.mktemp("p") / "pack"
    init_pack(root, golden_dir() / "sg3t_32.pkl", golden_dir() / "sg3t_32.pkl")
    add_preset(root, "sprite", "hero", seed=11)
    add_preset(root, "face", "hero", seed=12)
    add_preset(root, "face", "smile", seed=13)
    manifest = json.loads((root / "pack.json").read_text())
    manifest["archetypes"]["hero"] = {"psi": 0.6, "sprite": {"preset": "hero", "layers": [8, 9]},
                                      "face": {"preset": "hero", "layers": [0, 2]}}
    manifest["emotions"] = [{"name": "neutral"}, {"name": "happy", "preset": "smile", "layers": [6]}]
    manifest["projection"]["steps"] = 4
    (root / "pack.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture(scope="session")
def opened(pack_dir):
    from rmmv_gan.packs import open_pack

    return open_pack(pack_dir)


@pytest.fixture
def game(tmp_path):
    """An empty MV project folder."""
    root = tmp_path / "game"
    (root / "js").mkdir(parents=True)
    (root / "js" / "rpg_core.js").write_text("// MV")
    (root / "img" / "characters").mkdir(parents=True)
    (root / "img" / "faces").mkdir(parents=True)
    return root
