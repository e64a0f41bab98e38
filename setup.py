"""Build hook (metadata lives in pyproject.toml): the RPG Maker plugin has one source,
js_plugin/RmmvGan.js, and the wheel carries a copy as rmmv_gan/plugin/RmmvGan.js for
`rmmv-gan install-plugin` (rmmv_gan/plugin_install.py reads it, or the checkout's source)."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PLUGIN = Path(__file__).resolve().parent / "js_plugin" / "RmmvGan.js"


class BuildWithPlugin(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "rmmv_gan" / "plugin" / PLUGIN.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PLUGIN, target)


setup(cmdclass={"build_py": BuildWithPlugin})
