"""Model files are untrusted: anything beyond weights and constructor arguments is refused,
and nothing in the file runs."""

import io
import os
import pickle
import sys
import types

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from rmmv_gan import load_generator
from rmmv_gan.cli import main
from rmmv_gan.models import ModelFileError, UnsafeModelError



class Call:
    """Pickles as a call of `fn(*args)`: what a hostile file would contain."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "ran.txt"
    yield path
    assert not path.exists(), "code from the model file was executed"


@pytest.fixture
def persistence_module(monkeypatch):
    """A stand-in `torch_utils.persistence`, so that test pickles name the real global."""
    mod = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):
        return meta

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    mod._reconstruct_persistent_obj = _reconstruct_persistent_obj
    monkeypatch.setitem(sys.modules, "torch_utils", types.ModuleType("torch_utils"))
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", mod)
    return mod


def persistent(mod, class_name, state, module_src="# nothing"):
    meta = dict(type="class", version=6, module_src=module_src, class_name=class_name, state=state)
    return Call(mod._reconstruct_persistent_obj, meta)


def write(tmp_path, obj, name="evil.pkl"):
    path = tmp_path / name
    path.write_bytes(pickle.dumps(obj, protocol=4))
    return path


def touch_command(marker):
    return f"{sys.executable} -c \"open(r'{marker}', 'w').write('x')\""


def test_os_system_is_refused_by_name(tmp_path, marker):
    path = write(tmp_path, {"G_ema": Call(os.system, touch_command(marker))})
    with pytest.raises(UnsafeModelError, match=r"'(posix|nt)\.system'"):
        load_generator(path)


def test_eval_is_refused_by_name(tmp_path, marker):
    path = write(tmp_path, {"G_ema": Call(eval, f"open(r'{marker}', 'w')")})
    with pytest.raises(UnsafeModelError, match=r"'builtins\.eval'"):
        load_generator(path)


def test_nested_pickle_loads_is_refused_by_name(tmp_path, marker):
    inner = pickle.dumps(Call(os.system, touch_command(marker)))
    path = write(tmp_path, {"G_ema": Call(pickle.loads, inner)})
    with pytest.raises(UnsafeModelError, match=r"'_pickle\.loads'|'pickle\.loads'"):
        load_generator(path)


def test_payload_inside_storage_bytes_is_refused_by_name(tmp_path, marker):
    payload = pickle.dumps(Call(os.system, touch_command(marker)), protocol=2)
    path = write(tmp_path, {"G_ema": Call(torch.storage._load_from_bytes, payload)})
    with pytest.raises(UnsafeModelError, match=r"(posix|nt)\.system"):
        load_generator(path)


def test_payload_inside_constructor_arguments_is_refused_by_name(tmp_path, marker, persistence_module):
    state = {"_init_args": (), "_init_kwargs": {"z_dim": Call(os.system, touch_command(marker))},
             "_parameters": {}, "_buffers": {}, "_modules": {}}
    path = write(tmp_path, {"G_ema": persistent(persistence_module, "Generator", state)})
    with pytest.raises(UnsafeModelError, match=r"'(posix|nt)\.system'"):
        load_generator(path)


def test_module_source_is_never_executed(tmp_path, marker, persistence_module):
    """A snapshot whose module_src would write a file: the weights load, the source never runs."""
    from rmmv_gan.models import read_snapshot

    source = f"open(r'{marker}', 'w').write('x')\n"
    state = {"_init_args": (), "_init_kwargs": {}, "_parameters": {}, "_buffers": {}, "_modules": {}}
    path = write(tmp_path, {"G_ema": persistent(persistence_module, "Generator", state, module_src=source)})
    data = read_snapshot(path)
    assert data["G_ema"].class_name == "Generator"
    with pytest.raises(ModelFileError):  # it holds no network, but nothing ran either
        load_generator(path)


def test_object_arrays_are_refused(tmp_path):
    path = write(tmp_path, {"G_ema": np.array([object()], dtype=object)})
    with pytest.raises(UnsafeModelError, match="object"):
        load_generator(path)


def test_real_snapshot_with_hostile_module_source_still_loads(tmp_path, marker, monkeypatch, starter_snapshot):
    """Rewriting module_src of a snapshot (same length-prefixed string) changes nothing."""
    monkeypatch.chdir(tmp_path)  # the planted source writes ran.txt relative to here
    data = starter_snapshot.read_bytes()
    old = b"# module source omitted: this file carries weights and constructor arguments only\n"
    new = f"open('{marker.name}','w')#".encode().ljust(len(old) - 1, b" ") + b"\n"
    assert old in data and len(new) == len(old)
    path = tmp_path / "src.pkl"
    path.write_bytes(data.replace(old, new))
    G = load_generator(path)
    assert G.img_resolution == 32


@pytest.mark.parametrize("content", [b"", b"hello, this is not a pickle", b"\x80\x04\x95", b"PK\x03\x04garbage"],
                         ids=["empty", "text", "truncated-header", "zip-like"])
def test_unreadable_files_give_one_line_at_the_cli(tmp_path, content):
    path = tmp_path / "bad.pkl"
    path.write_bytes(content)
    result = CliRunner().invoke(main, ["generate", "--network", str(path), "--seeds", "0", "--outdir",
                                       str(tmp_path / "out")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_truncated_snapshot_gives_one_line_at_the_cli(tmp_path, starter_snapshot):
    data = starter_snapshot.read_bytes()
    path = tmp_path / "cut.pkl"
    path.write_bytes(data[: len(data) // 2])
    result = CliRunner().invoke(main, ["convert", str(path), str(tmp_path / "out.safetensors")])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1 and "Error: " in result.output
    assert not (tmp_path / "out.safetensors").exists()


def test_hostile_file_gives_one_line_naming_the_global_at_the_cli(tmp_path, marker):
    path = write(tmp_path, {"G_ema": Call(os.system, touch_command(marker))})
    result = CliRunner().invoke(main, ["convert", str(path), str(tmp_path / "out.safetensors")])
    assert result.exit_code == 1
    assert "system" in result.output and len(result.output.strip().splitlines()) == 1
