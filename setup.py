"""Build hook (metadata lives in pyproject.toml): files with one source outside the package
that the wheel carries a copy of. The RPG Maker plugin, js_plugin/RmmvGan.js, becomes
rmmv_gan/plugin/RmmvGan.js for `rmmv-gan install-plugin` (rmmv_gan/plugin_install.py reads it,
or the checkout's source); the daemon's pages, templates/*.html, become rmmv_gan/templates/
(rmmv_gan/server.py serves them, or the checkout's)."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# source file -> where the wheel has it, under rmmv_gan/
CARRIED = {ROOT / "js_plugin" / "RmmvGan.js": "plugin"} | {page: "templates" for page in (ROOT / "templates").glob("*.html")}


class BuildWithPlugin(build_py):
    def run(self):
        super().run()
        for source, folder in CARRIED.items():
            target = Path(self.build_lib) / "rmmv_gan" / folder / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


setup(cmdclass={"build_py": BuildWithPlugin})
