"""The README's set-up makes its own test command work, and .ci/run does what the README says."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_setup() -> list[str]:
    block = re.search(r"```\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


def test_the_readme_setup_installs_what_its_test_command_needs():
    setup = readme_setup()
    assert "python -m pytest -q" in setup
    install = next(line for line in setup if "pip install" in line and "torch" in line)
    extras = re.search(r'pip install "?\.\[([\w,]+)\]"?', install)
    assert extras, f"the set-up installs no extra with the test tools: {install!r}"
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    needed = [req for extra in extras.group(1).split(",") for req in declared[extra]]
    assert any(req.startswith("pytest") for req in needed)


def test_ci_installs_and_tests_as_the_readme_says():
    ci = (ROOT / ".ci" / "run").read_text()
    setup = readme_setup()
    torch_pin = re.search(r"torch==[\d.]+", setup[0]).group(0)
    extra = re.search(r'"\.\[[\w,]+\]"', setup[0]).group(0)
    assert f"pip install --quiet {torch_pin}" in ci and f"pip install --quiet {extra}" in ci
    assert "python -m pytest -q" in ci
