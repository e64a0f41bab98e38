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
