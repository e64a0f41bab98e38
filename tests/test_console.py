"""The `rmmv-gan` console command itself (`cli.console_main`), run as a user runs it: in its own
process, which ends without Python's slow shutdown once its work is written."""

import os
import subprocess
import sys

from PIL import Image


def run_command(*args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "rmmv_gan.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_export_exits_0_with_its_report_printed_and_both_sheets_written(tmp_path, pack_dir):
    out = tmp_path / "out"
    done = run_command("export", "--pack", str(pack_dir), "--out", str(out), "--seed", "3", "--name", "Ann",
                       cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Ann: seed 3" in done.stdout  # printed before the quick exit, not lost with it
    for sheet in ("img/characters/$Ann.png", "img/faces/Ann.png"):
        with Image.open(out / sheet) as im:
            im.load()  # whole, not cut short
    assert [p.name for p in out.rglob(".*")] == []  # no temporary left behind


def test_a_user_error_exits_1_with_its_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    done = run_command("export", "--pack", str(tmp_path / "no_such_pack"), "--out", str(out), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().startswith("Error:") and len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_a_usage_error_keeps_clicks_status_2(tmp_path):
    done = run_command("export", "--no-such-option", cwd=tmp_path)
    assert done.returncode == 2
    assert "No such option" in done.stderr


def test_help_exits_0_with_the_commands_listed(tmp_path):
    done = run_command("--help", cwd=tmp_path)
    assert done.returncode == 0
    assert "export" in done.stdout and "serve" in done.stdout


def test_the_command_line_loads_torch_only_for_work_that_needs_it(tmp_path):
    """`rmmv-gan --help` and the parsing of arguments answer without importing torch (1.5-2 s)."""
    code = "import sys, rmmv_gan, rmmv_gan.cli; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_the_package_still_offers_its_loaders(tmp_path):
    code = "import rmmv_gan; print(rmmv_gan.load_generator.__module__, rmmv_gan.ModelFileError.__name__)"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["rmmv_gan.models", "ModelFileError"]
