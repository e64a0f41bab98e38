"""The small pack the daemon tests (conftest.py's pack_dir) and the plugin's node tests
(js_plugin/testlib/daemon.js) run on: made from a golden pickle (noise images, real plumbing),
with an archetype 'hero' with presets, emotions neutral and happy, and 4 projection steps."""

import json
from pathlib import Path


def make_starter_pack(root, model) -> Path:
    from rmmv_gan.packs import add_preset, init_pack

    root = Path(root)
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

