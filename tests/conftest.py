import os
from pathlib import Path

import pytest

# RMMV_GAN_GOLDEN overrides where the reference outputs are looked for ("" or a missing
# folder: nowhere), to check that only the comparisons with them need them.
GOLDEN = Path(os.environ.get("RMMV_GAN_GOLDEN") or Path(__file__).resolve().parents[1].parent / "shared" / "golden")


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
    """A small pack made from networks rmmv-gan builds itself (tests/starter_pack.py, shared
    with the plugin's node tests)."""
    from starter_pack import make_starter_pack

    return make_starter_pack(tmp_path_factory.mktemp("p") / "pack")


@pytest.fixture(scope="session")
def starter_model(pack_dir):
    """The pack's network (G and D) as an rmmv-gan .safetensors file."""
    return pack_dir.with_name(pack_dir.name + "-model.safetensors")


@pytest.fixture(scope="session")
def starter_snapshot(tmp_path_factory):
    """The same kind of network written as an NVIDIA network-snapshot pickle."""
    from snapshots import write_snapshot

    return write_snapshot(tmp_path_factory.mktemp("snap") / "network-snapshot-000000.pkl")


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
