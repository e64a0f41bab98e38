"""Model files are untrusted about sizes too: a file of a few hundred bytes that claims a
huge network, a huge storage or a huge view is refused with one error, before anything of
the claimed size is allocated."""

import collections
import io
import json
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from rmmv_gan.cli import main
from rmmv_gan.models import ModelFileError, load_generator

from snapshots import TINY_G, Call, dumps, record

SMALL_FILE = 10_000  # bytes
MAX_GROWTH = 200 << 20  # what loading a file under SMALL_FILE may cost


def generator_pickle(kwargs=None, buffers=None, modules=None):
    """A G_ema record that looks like a StyleGAN2 generator (a synthesis network with b4)."""
    synthesis = record("SynthesisNetwork", {"_modules": {"b4": record("SynthesisBlock", {})}})
    state = {"_init_args": (), "_init_kwargs": dict(TINY_G, **(kwargs or {})), "_parameters": {},
             "_buffers": buffers or {}, "_modules": {"synthesis": synthesis} if modules is None else modules}
    return dumps({"G_ema": record("Generator", state)})


def view(storage_dtype, elements, offset, size, stride):
    """A tensor record: `size`/`stride`/`offset` over a storage of `elements` elements."""
    storage = torch.storage.TypedStorage(wrap_storage=torch.zeros(elements, dtype=storage_dtype).untyped_storage(),
                                         dtype=storage_dtype, _internal=True)
    return Call(torch._utils._rebuild_tensor_v2, storage, offset, size, stride, False, collections.OrderedDict())


def safetensors_bytes(networks, tensors=None) -> bytes:
    from safetensors.torch import save

    config = {"format": "rmmv-gan", "version": 1, "networks": networks}
    return save(tensors or {}, metadata={"rmmv-gan": json.dumps(config)})


def g_description(**kwargs):
    return {"G": {"arch": "stylegan2", "kwargs": dict(TINY_G, **kwargs)}}


def storage_claim_pickle(claimed_elements: int) -> bytes:
    """A storage payload (what torch.storage._load_from_bytes decodes) whose record claims
    `claimed_elements` float16s, followed by the bytes of one."""

    placeholder = object()

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.HalfStorage, "0", "cpu", claimed_elements, None) if obj is placeholder else None

    buf = io.BytesIO()
    for value in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True,
                                                 "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(value, buf, protocol=2)
    Pickler(buf, protocol=2).dump(placeholder)
    pickle.dump(["0"], buf, protocol=2)
    buf.write(struct.pack("<q", 1) + b"\x00\x3c")
    return dumps({"G_ema": Call(torch.storage._load_from_bytes, buf.getvalue())})


BIG_W = {"w_dim": 8192, "mapping_kwargs": {"num_layers": 4}}  # a mapping network of 0.8 GB

# name -> (file name, bytes, a phrase the error must contain)
HOSTILE = {
    # issue 16, item 3: claims that cost gigabytes before a failure
    "safetensors-claiming-w_dim-8192": ("bomb.safetensors", lambda: safetensors_bytes(g_description(**BIG_W)),
                                        "do not match the architecture"),
    "pickle-claiming-w_dim-8192": ("bomb.pkl", lambda: generator_pickle(BIG_W), "do not match the architecture"),
    "ndarray-called-with-a-huge-shape": ("arr.pkl", lambda: generator_pickle({"z_dim": Call(np.ndarray, (40_000_000,), "b")}),
                                         "numpy.ndarray"),
    "stride-0-fp16-view-of-2**28": ("view.pkl", lambda: generator_pickle(
        buffers={"x": view(torch.float16, 1, 0, (2**28,), (0,))}), "beyond its storage"),
    "bytes-opcode-claiming-8-GiB": ("claim.pkl", lambda: b"\x80\x04\x8e" + struct.pack("<Q", 2**33) + b"abc",
                                    "not a readable network pickle"),
    "storage-claiming-2**28-elements": ("storage.pkl", lambda: storage_claim_pickle(2**28), "claims"),
    # item 13: malformed files that gave tracebacks
    "tensor-beyond-storage": ("beyond.pkl", lambda: generator_pickle(
        buffers={"x": view(torch.float32, 4, 0, (100,), (1,))}), "beyond its storage"),
    "negative-stride": ("negstride.pkl", lambda: generator_pickle(
        buffers={"x": view(torch.float32, 4, 3, (4,), (-1,))}), "invalid layout"),
    "negative-offset": ("negoffset.pkl", lambda: generator_pickle(
        buffers={"x": view(torch.float32, 4, -1, (2,), (1,))}), "invalid layout"),
    "stride-0-of-1-TiB": ("tib.pkl", lambda: generator_pickle(
        buffers={"x": view(torch.float32, 1, 0, (2**40,), (0,))}), "beyond its storage"),
    "negative-kwarg": ("neg.safetensors", lambda: safetensors_bytes(g_description(w_dim=-8)), "w_dim = -8"),
    "huge-kwarg": ("huge.safetensors", lambda: safetensors_bytes(g_description(channel_max=10**12)), "channel_max"),
    "huge-pickled-kwarg": ("huge.pkl", lambda: generator_pickle({"img_resolution": 2**40}), "img_resolution"),
    "networks-as-a-list": ("list.safetensors", lambda: safetensors_bytes([{"arch": "stylegan2", "kwargs": TINY_G}]),
                           "'networks'"),
    "missing-arch": ("noarch.safetensors", lambda: safetensors_bytes({"G": {"kwargs": TINY_G}}), "'arch'"),
    "modules-as-a-list": ("modlist.pkl", lambda: generator_pickle(modules=[1, 2]), "not a dict"),
    # item 16: a picture given as the network
    "png-image": ("face.png", lambda: b"\x89PNG\r\n\x1a\n" + bytes(100), "not a model file (a PNG image)"),
}


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    files = {}
    for name, (file_name, make, _) in HOSTILE.items():
        (root / name).mkdir()
        files[name] = root / name / file_name
        files[name].write_bytes(make())
    return files


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_file_is_refused_with_a_model_file_error(hostile_files, name):
    with pytest.raises(ModelFileError) as info:
        load_generator(hostile_files[name])
    assert HOSTILE[name][2] in str(info.value)


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_file_gives_one_error_line_at_the_cli(hostile_files, name, tmp_path):
    result = CliRunner().invoke(main, ["generate", "--network", str(hostile_files[name]), "--seeds", "0",
                                       "--outdir", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


MEASURE = r"""
import json, resource, sys, tracemalloc
from rmmv_gan.models import ModelFileError, load_generator

load_generator(sys.argv[1])  # warm up: the first network built loads code and kernels
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
tracemalloc.start()
out = {}
for path in sys.argv[2:]:
    tracemalloc.reset_peak()
    try:
        load_generator(path)
        outcome = "loaded"
    except ModelFileError:
        outcome = "refused"
    except Exception as exc:  # measured all the same: the old code crashed on some
        outcome = type(exc).__name__
    out[path] = {"traced": tracemalloc.get_traced_memory()[1], "outcome": outcome,
                 "rss_growth": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base}
print(json.dumps(out))
"""


def test_loading_a_small_file_never_allocates_more_than_200_mb(hostile_files, tmp_path):
    """Peak resident memory (torch's allocations) and traced allocations (Python's and
    numpy's, which count reserved memory even when untouched) in a fresh process."""
    pytest.importorskip("resource")  # POSIX: the measurement, not the product
    from rmmv_gan.models import new_network, save_networks

    valid = tmp_path / "tiny.safetensors"
    save_networks(valid, {"G": new_network("G", "stylegan2", **TINY_G)})
    paths = [str(p) for p in hostile_files.values()]
    assert all(Path(p).stat().st_size < SMALL_FILE for p in paths)
    run = subprocess.run([sys.executable, "-c", MEASURE, str(valid), *paths], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    worst = {Path(p).parent.name: (got["traced"] >> 20, got["rss_growth"] >> 20) for p, got in report.items()}
    assert all(got["traced"] < MAX_GROWTH and got["rss_growth"] < MAX_GROWTH for got in report.values()), \
        f"MiB traced, MiB resident growth (cumulative peak): {worst}"
    assert {Path(p).parent.name: got["outcome"] for p, got in report.items()} == dict.fromkeys(HOSTILE, "refused")
