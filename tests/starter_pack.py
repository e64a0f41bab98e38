"""The small pack the daemon tests (conftest.py's pack_dir) and the plugin's node tests
(js_plugin/testlib/daemon.js) run on: made from a freshly initialised StyleGAN3-T that
rmmv-gan builds and saves itself (noise images, real plumbing; tests/snapshots.py), with an
archetype 'hero' with presets, emotions neutral and happy, and 4 projection steps. Nothing
here needs ../shared/golden."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # snapshots.py, also when run from node

from snapshots import save_starter_model  # noqa: E402


def make_starter_pack(root, model=None) -> Path:
    """The pack in `root`; its models are converted from `model` (a file), by default the
    starter networks saved beside `root`."""
    from rmmv_gan.packs import add_preset, init_pack

    root = Path(root)
    if model is None:
        root.parent.mkdir(parents=True, exist_ok=True)
        model = save_starter_model(root.with_name(root.name + "-model.safetensors"))
    init_pack(root, model, model)
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
