"""Loading and saving networks without running code from the file.

NVIDIA's snapshots (`network-snapshot-*.pkl`) are pickles of "persistent" objects: each carries
the Python source of its module (`module_src`), its constructor arguments and its tensors.
The official loader executes that source. rmmv-gan does not: a restricted unpickler admits
only the handful of globals that such files reference, rebuilds every persistent object as an
inert record, and rmmv-gan's own modules are constructed from the recorded constructor
arguments and filled with the recorded tensors. Storage bytes are decoded by
`torch.load(weights_only=True)`, never by the unrestricted `torch.load` the original calls.

rmmv-gan's own format is a safetensors file: the tensors of G (and D, if present) with the
architecture and constructor arguments as JSON in the header's metadata. Nothing in it runs.

A model file is also untrusted about sizes: a few hundred bytes can claim a network of
gigabytes. Nothing is allocated on a claim. Byte counts in the pickle are checked against
the bytes that follow them, storages against their payload, tensor views against their
storage, constructor arguments against fixed limits, and the architecture they describe is
first built without memory (on PyTorch's "meta" device) and compared, tensor by tensor, with
the tensors the file holds. Only then is the real network built: loading costs about the
tensors the file holds, plus the network those tensors fill.
"""

from __future__ import annotations

import collections
import io
import json
import pickle
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .fileio import atomic_write_bytes
from .nets import stylegan2, stylegan3

FORMAT_NAME = "rmmv-gan"
FORMAT_VERSION = 1

# Limits on what a model file may claim. The largest official configurations (StyleGAN3-R at
# 1024 px: channel_base 65536, 14 synthesis layers, 8 mapping layers) stay well inside them.
MAX_ARG_INT = 1 << 17
MAX_ARG_FLOAT = 1e6
MAX_RESOLUTION = 4096
MAX_LAYERS = 64
MAX_ARG_ITEMS = 64  # entries of one dict or list among the constructor arguments
MAX_DEPTH = 32  # nesting of submodules, and of constructor arguments
MAX_TENSOR_DIMS = 8
# Buffers that an architecture computes itself (filters) rather than reads from the file.
MAX_DERIVED_BYTES = 64 << 20


class ModelFileError(ValueError):
    """A model file that cannot be read as a network (corrupt, truncated, unknown layout)."""


class UnsafeModelError(ModelFileError):
    """A model file that asks for something a network snapshot never needs."""


# ----------------------------------------------------------------------------------------------
# The restricted unpickler


@dataclass
class PersistentRecord:
    """What `torch_utils.persistence` pickled for one object, as plain data."""

    class_name: str
    state: dict
    version: int = 0


class _EasyDict(dict):
    """Stand-in for `dnnlib.util.EasyDict`: a dict, nothing more."""


class _BoundedFile:
    """A binary file whose read(n) never asks for more than what is left in it.

    Pickle opcodes carry byte counts (BINBYTES8, FRAME, ...), and a reader that allocates
    the count before reading would reserve whatever a file claims. The pure-Python unpickler
    reads through this, so a claim beyond the file's end is a short read ("truncated")."""

    def __init__(self, f, size: int):
        self._f, self._left = f, size

    def read(self, n=-1):
        n = self._left if n is None or n < 0 else min(n, self._left)
        data = self._f.read(n)
        self._left -= len(data)
        return data

    def readline(self):
        line = self._f.readline(self._left)
        self._left -= len(line)
        return line

    def readinto(self, buf):
        view = memoryview(buf)[: self._left]
        n = self._f.readinto(view)
        self._left -= n
        return n


def _reconstruct_persistent_obj(meta):
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise UnsafeModelError("persistent object of an unsupported kind (only 'class' objects are read)")
    state = meta.get("state")
    if not isinstance(state, dict):
        raise ModelFileError(f"persistent object {meta.get('class_name')!r} has no state")
    # meta['module_src'] is deliberately ignored: it is source code, and it is never executed.
    return PersistentRecord(class_name=str(meta.get("class_name")), state=state, version=int(meta.get("version", 0)))


class _StorageClaims(pickle._Unpickler):
    """Reads the record of a legacy torch.save payload (what `_load_from_bytes` decodes) to
    learn the storage sizes it claims, without allocating them: torch allocates a claimed
    storage before it reads its bytes."""

    def find_class(self, module, name):
        if module == "torch" and name.endswith("Storage") and isinstance(getattr(torch, name, None), type):
            return getattr(torch, name)
        raise UnsafeModelError(f"refused: a tensor storage in the file asks for the global '{module}.{name}'")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] in ("storage", b"storage")):
            raise ModelFileError("unreadable tensor storage (an unknown kind of record)")
        _, storage_type, key, _location, numel = pid[:5]
        size = 1 if storage_type is torch.UntypedStorage else torch._utils._element_size(storage_type._dtype)
        if not isinstance(numel, int) or numel < 0:
            raise ModelFileError("unreadable tensor storage (a negative size)")
        self.claims[str(key)] = numel * size
        return None


def _check_storage_claims(data: bytes) -> None:
    f = io.BytesIO(data)
    try:
        for _ in range(3):  # magic number, protocol version, system info: plain values
            _StorageClaims(_BoundedFile(f, len(data) - f.tell())).load()
        reader = _StorageClaims(_BoundedFile(f, len(data) - f.tell()))
        reader.claims = {}
        reader.load()
    except ModelFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure here means a corrupt payload
        raise ModelFileError(f"unreadable tensor storage ({type(exc).__name__}: {exc})") from None
    claimed = sum(reader.claims.values())
    if claimed > len(data):
        raise ModelFileError(f"a tensor storage claims {claimed} bytes but holds {len(data)}")


def _load_storage_bytes(data):
    if not isinstance(data, (bytes, bytearray)):
        raise ModelFileError("storage payload is not bytes")
    _check_storage_claims(bytes(data))
    try:
        return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        # torch's message names the refused global ("... unsupported GLOBAL posix.system ...").
        m = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f"asks for the global '{m.group(1)}'" if m else "is not plain weights"
        raise UnsafeModelError(f"refused: a tensor storage in the file {what}") from None
    except Exception as exc:  # noqa: BLE001 - any failure here means a corrupt file
        raise ModelFileError(f"unreadable tensor storage: {exc}") from None


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    if not isinstance(storage, (torch.UntypedStorage, torch.TypedStorage)):
        raise ModelFileError("tensor without a storage")
    if backward_hooks:
        raise UnsafeModelError("tensor with backward hooks")
    if not (isinstance(size, (tuple, list)) and isinstance(stride, (tuple, list)) and len(size) == len(stride)
            and len(size) <= MAX_TENSOR_DIMS and all(map(_is_count, size)) and all(map(_is_count, stride))
            and _is_count(storage_offset)):
        raise ModelFileError(f"a tensor with an invalid layout (size {size!r}, stride {stride!r}, "
                             f"offset {storage_offset!r})")
    held = storage._size() if isinstance(storage, torch.TypedStorage) else storage.nbytes()
    numel = int(np.prod(size, dtype=object))
    # A view may not hold more elements than its storage: a stride-0 view of a few bytes
    # could otherwise claim a tebibyte, which any later copy or cast would allocate.
    if numel > held or (numel and storage_offset + sum((n - 1) * s for n, s in zip(size, stride)) >= held):
        raise ModelFileError(f"a tensor of size {list(size)} (stride {list(stride)}, offset {storage_offset}) "
                             f"lies beyond its storage of {held} elements")
    return torch._utils._rebuild_tensor_v2(storage, storage_offset, tuple(size), tuple(stride), False,
                                           collections.OrderedDict())


def _rebuild_parameter(data, requires_grad, backward_hooks):
    if not isinstance(data, torch.Tensor):
        raise ModelFileError("parameter without tensor data")
    if backward_hooks:
        raise UnsafeModelError("parameter with backward hooks")
    return torch.nn.Parameter(data, requires_grad=bool(requires_grad))


def _safe_dtype(*args):
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise UnsafeModelError("numpy data of object type (it could hold arbitrary objects)")
    return dtype


class _NdarrayName:
    """What the global numpy.ndarray resolves to: only an argument of `_reconstruct`, as numpy
    pickles it; called directly it would allocate whatever shape the file names."""

    def __new__(cls, *args, **kwargs):
        raise UnsafeModelError("refused: the file calls numpy.ndarray directly")


def _safe_reconstruct(subtype, shape, dtype_code):
    if subtype is not _NdarrayName:
        raise UnsafeModelError("numpy array of a subclass")
    # numpy pickles an empty array here and fills it from the bytes that follow (BUILD).
    if not (isinstance(shape, tuple) and all(map(_is_count, shape)) and int(np.prod(shape, dtype=object)) == 0):
        raise ModelFileError(f"a numpy array record of shape {shape!r} (numpy writes an empty one)")
    return np.ndarray.__new__(np.ndarray, shape, dtype_code)


def _safe_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise UnsafeModelError("numpy scalar of object type")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


_ALLOWED = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
    ("numpy", "ndarray"): _NdarrayName,
    ("numpy", "dtype"): _safe_dtype,
    ("builtins", "set"): set,
}
for _np_module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_np_module, "_reconstruct")] = _safe_reconstruct
    _ALLOWED[(_np_module, "scalar")] = _safe_scalar


class SafeUnpickler(pickle._Unpickler):
    """Unpickler that resolves only the globals listed in `_ALLOWED`, to safe stand-ins.

    The pure-Python unpickler, reading through `_BoundedFile`: the C one allocates the byte
    count an opcode claims before it reads (a 20-byte file can reserve gigabytes)."""

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafeModelError(
                f"refused: the file asks for the global '{module}.{name}', which a network snapshot does not need"
            ) from None

    def persistent_load(self, pid):
        raise UnsafeModelError("refused: the file uses persistent ids, which network snapshots do not")


def read_snapshot(path) -> object:
    """Unpickle an NVIDIA snapshot into plain data and `PersistentRecord`s."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            return SafeUnpickler(_BoundedFile(f, path.stat().st_size)).load()
    except ModelFileError:
        raise
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a folder, not a model file") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, RecursionError, UnicodeDecodeError, OverflowError, RuntimeError, struct.error) as exc:
        raise ModelFileError(f"{path}: not a readable network pickle ({type(exc).__name__}: {exc})") from None


# ----------------------------------------------------------------------------------------------
# From records to modules


def _plain(value, depth=0):
    """Constructor arguments as plain JSON-able data (EasyDicts become dicts)."""
    if depth > MAX_DEPTH:
        raise ModelFileError("constructor arguments nested too deeply")
    if isinstance(value, (dict, list, tuple, np.ndarray)) and len(value) > MAX_ARG_ITEMS:
        raise ModelFileError(f"a constructor argument with {len(value)} entries (at most {MAX_ARG_ITEMS})")
    if isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, np.generic):
        return _plain(value.item(), depth + 1)
    if isinstance(value, np.ndarray):
        # len() is the first axis only; a zero-size dtype can give any shape without bytes.
        if value.size > MAX_ARG_ITEMS or value.ndim > 1:
            raise ModelFileError(f"a constructor argument that is an array of shape {list(value.shape)}")
        return [_plain(v, depth + 1) for v in value.tolist()]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ModelFileError(f"unexpected constructor argument of type {type(value).__name__}")


# Arguments that size what a constructor computes itself with numpy (StyleGAN3's filters:
# filter_size x the upsampling factor taps, squared for radial filters), before any tensor of
# the file could be compared. Official values: 6, 2, 3 and 1.
_SMALL_ARGS = {"filter_size": 16, "lrelu_upsampling": 4, "conv_kernel": 16, "kernel_size": 16}


def _int_limit(key: str) -> int:
    if key in _SMALL_ARGS:
        return _SMALL_ARGS[key]
    if "res" in key:  # img_resolution, init_res, num_fp16_res
        return MAX_RESOLUTION
    if key.endswith("layers") or key.endswith("num_ws"):
        return MAX_LAYERS
    return MAX_ARG_INT


def check_kwargs(kwargs, where="", depth=0) -> None:
    """Refuse constructor arguments beyond what any real network uses: negative or huge
    numbers, NaN, long strings, deep nesting. A ModelFileError names the argument."""
    if depth > MAX_DEPTH:
        raise ModelFileError(f"constructor argument {where}: nested too deeply")
    if isinstance(kwargs, dict):
        if len(kwargs) > MAX_ARG_ITEMS:
            raise ModelFileError(f"constructor argument {where or 'list'}: {len(kwargs)} entries")
        for k, v in kwargs.items():
            check_kwargs(v, f"{where}.{k}" if where else str(k), depth + 1)
        return
    if isinstance(kwargs, list):
        if len(kwargs) > MAX_ARG_ITEMS:
            raise ModelFileError(f"constructor argument {where}: {len(kwargs)} entries")
        for v in kwargs:
            check_kwargs(v, where, depth + 1)
        return
    if isinstance(kwargs, bool) or kwargs is None:
        return
    if isinstance(kwargs, int):
        limit = _int_limit(where.rsplit(".", 1)[-1])
        if not 0 <= kwargs <= limit:
            raise ModelFileError(f"constructor argument {where} = {kwargs} is outside [0, {limit}]")
        return
    if isinstance(kwargs, float):
        if not abs(kwargs) <= MAX_ARG_FLOAT:  # also refuses NaN
            raise ModelFileError(f"constructor argument {where} = {kwargs} is not a reasonable number")
        return
    if isinstance(kwargs, str):
        if len(kwargs) > 100:
            raise ModelFileError(f"constructor argument {where}: a string of {len(kwargs)} characters")
        return
    raise ModelFileError(f"constructor argument {where}: unexpected type {type(kwargs).__name__}")


_G_POSITIONAL = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")
_D_POSITIONAL = ("c_dim", "img_resolution", "img_channels")


def _init_kwargs(record: PersistentRecord, positional) -> dict:
    args = record.state.get("_init_args", ())
    raw = record.state.get("_init_kwargs", {})
    if not isinstance(args, (tuple, list)) or not isinstance(raw, dict):
        raise ModelFileError(f"{record.class_name}: constructor arguments are not a list and a dict")
    kwargs = _plain(raw)
    if len(args) > len(positional):
        raise ModelFileError(f"{record.class_name}: too many positional constructor arguments")
    kwargs.update({name: _plain(v) for name, v in zip(positional, args)})
    # StyleGAN2-ADA nested the synthesis arguments; the later code flattened them.
    nested = kwargs.pop("synthesis_kwargs", None) or {}
    if not isinstance(nested, dict):
        raise ModelFileError(f"{record.class_name}: synthesis_kwargs is not a dict")
    kwargs.update(nested)
    return kwargs


def _children(record: PersistentRecord) -> dict:
    modules = record.state.get("_modules") or {}
    if not isinstance(modules, dict):
        raise ModelFileError(f"{record.class_name}: its submodules are not a dict")
    return {str(k): v for k, v in modules.items() if v is not None}


def _state_dict(record: PersistentRecord, prefix="", depth=0) -> dict:
    """The tensors of a record tree as stored: views of the file's storages, not copied or
    cast (that happens once, into a network whose architecture they were checked against)."""
    if depth > MAX_DEPTH:
        raise ModelFileError(f"submodules nested more than {MAX_DEPTH} deep")
    out = {}
    non_persistent = record.state.get("_non_persistent_buffers_set") or set()
    if not isinstance(non_persistent, (set, frozenset, list, tuple)):
        raise ModelFileError(f"{prefix or 'network'}: its non-persistent buffers are not a set")
    for key in ("_parameters", "_buffers"):
        tensors = record.state.get(key) or {}
        if not isinstance(tensors, dict):
            raise ModelFileError(f"{prefix or 'network'}: its {key.strip('_')} are not a dict")
        for name, tensor in tensors.items():
            if tensor is None or name in non_persistent:
                continue
            if not isinstance(tensor, torch.Tensor):
                raise ModelFileError(f"{prefix}{name} is not a tensor")
            out[prefix + str(name)] = tensor.detach()
    for name, child in _children(record).items():
        if not isinstance(child, PersistentRecord):
            raise ModelFileError(f"submodule {prefix}{name} is not a network record")
        out.update(_state_dict(child, prefix + name + ".", depth + 1))
    return out


def _generator_arch(record: PersistentRecord) -> str:
    synthesis = _children(record).get("synthesis")
    if not isinstance(synthesis, PersistentRecord):
        raise ModelFileError("the generator has no synthesis network")
    names = set(_children(synthesis))
    if "input" in names:
        return "stylegan3"
    if "b4" in names:
        return "stylegan2"
    raise ModelFileError("unknown generator architecture (neither StyleGAN2 nor StyleGAN3 layers)")


KINDS = {"G": ("stylegan2", "stylegan3"), "D": ("stylegan2",)}


def build_network(kind: str, arch: str, kwargs: dict) -> torch.nn.Module:
    """Construct an empty network of rmmv-gan's own classes from constructor arguments."""
    if arch not in KINDS.get(kind, ()):
        raise ModelFileError(f"unsupported network: {kind} of architecture {arch!r}")
    if not isinstance(kwargs, dict):
        raise ModelFileError(f"the {arch} {kind}'s constructor arguments are not a dict")
    check_kwargs(kwargs)
    cls = {("G", "stylegan2"): stylegan2.Generator, ("G", "stylegan3"): stylegan3.Generator,
           ("D", "stylegan2"): stylegan2.Discriminator}[(kind, arch)]
    try:
        return cls(**kwargs)
    except ModelFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - arguments within the limits can still not fit together
        raise ModelFileError(f"cannot build a {arch} {kind} from the stored arguments "
                             f"({type(exc).__name__}: {exc})") from None


def _nbytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


class _ShapesOnly(torch.overrides.TorchFunctionMode):
    """Random initialisers that would land on the meta device give an empty meta tensor of the
    same shape and dtype instead. A meta `randn` runs PyTorch's Python reference, whose first
    use imports its meta registrations and sympy (0.37 s of every start-up, measured); `empty`
    is a plain kernel. The shell's values are never read, only its shapes and dtypes."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.randn, torch.rand) and kwargs.get("device") in (None, "meta", torch.device("meta")) \
                and not kwargs.get("generator") and not kwargs.get("out"):
            size = args[0] if len(args) == 1 and isinstance(args[0], (list, tuple, torch.Size)) else args
            return torch.empty(size, dtype=kwargs.get("dtype"), device="meta")
        return func(*args, **kwargs)


def check_architecture(kind: str, arch: str, kwargs: dict, state: dict, what: str) -> None:
    """Build the described network without memory (on the meta device) and check that the
    file's tensors are exactly its tensors, by name and shape, before anything is allocated."""
    with torch.device("meta"), _ShapesOnly():
        shell = build_network(kind, arch, kwargs)
    own = shell.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ModelFileError(f"{what}: tensors do not match the architecture "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(own[name].shape):
            raise ModelFileError(f"{what}: {name} has shape {tuple(tensor.shape)}, expected {tuple(own[name].shape)}")
        if tensor.is_floating_point() != own[name].is_floating_point() or tensor.is_complex():
            raise ModelFileError(f"{what}: {name} holds {tensor.dtype}, expected {own[name].dtype}")
    derived = _nbytes(shell.parameters()) + _nbytes(shell.buffers()) - _nbytes(own.values())
    if derived > MAX_DERIVED_BYTES:
        raise ModelFileError(f"{what}: the architecture computes {derived >> 20} MiB of buffers of its own "
                             f"(at most {MAX_DERIVED_BYTES >> 20} MiB)")


def _fill(net: torch.nn.Module, state: dict, what: str) -> torch.nn.Module:
    try:
        net.load_state_dict(state, strict=True)  # copies, casting to the network's float32
    except RuntimeError as exc:
        raise ModelFileError(f"{what}: the tensors do not load ({exc})") from None
    return net.eval().requires_grad_(False)


@dataclass
class NetworkSpec:
    kind: str  # "G" or "D"
    arch: str  # "stylegan2" or "stylegan3"
    kwargs: dict
    state: dict

    def build(self) -> torch.nn.Module:
        what = f"{self.arch} {self.kind}"
        check_architecture(self.kind, self.arch, self.kwargs, self.state, what)
        net = _fill(build_network(self.kind, self.arch, self.kwargs), self.state, what)
        net.rmmv_spec = {"arch": self.arch, "kwargs": self.kwargs}
        return net


def _specs_from_pickle(path) -> dict:
    data = read_snapshot(path)
    if isinstance(data, PersistentRecord):
        data = {"G_ema": data} if data.class_name != "Discriminator" else {"D": data}
    if not isinstance(data, dict):
        raise ModelFileError(f"{path}: not a network snapshot (top level is {type(data).__name__})")
    specs = {}
    g = data.get("G_ema") if data.get("G_ema") is not None else data.get("G")
    if isinstance(g, PersistentRecord):
        specs["G"] = NetworkSpec("G", _generator_arch(g), _init_kwargs(g, _G_POSITIONAL), _state_dict(g))
    d = data.get("D")
    if isinstance(d, PersistentRecord):
        specs["D"] = NetworkSpec("D", "stylegan2", _init_kwargs(d, _D_POSITIONAL), _state_dict(d))
    if not specs:
        raise ModelFileError(f"{path}: holds no generator or discriminator")
    return specs


# ----------------------------------------------------------------------------------------------
# rmmv-gan's own format


def _is_safetensors(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(9)
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return head[8:9] == b"{" and 0 < n < min(100_000_000, path.stat().st_size)


# What a file given as a model often is instead: said by name rather than as a pickle error.
_OTHER_FORMATS = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
                  b"PK\x03\x04": "a zip archive (a PyTorch checkpoint?)", b"{": "a JSON or text file"}


def _not_a_pickle(path: Path) -> str | None:
    """Why a file that is not rmmv-gan's format cannot be a network pickle, or None."""
    with path.open("rb") as f:
        head = f.read(8)
    if not head:
        return "an empty file"
    if head[:1] == b"\x80":  # PROTO: every snapshot since Python 3 starts so
        return None
    kind = next((name for magic, name in _OTHER_FORMATS.items() if head.startswith(magic)), None)
    return kind or "neither a network pickle nor an rmmv-gan .safetensors file"


def _specs_from_safetensors(path: Path) -> dict:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            config = json.loads(meta.get(FORMAT_NAME, "null"))
            if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
                raise ModelFileError(f"{path}: a safetensors file without rmmv-gan's network description")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except ModelFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - safetensors raises several kinds on corrupt input
        raise ModelFileError(f"{path}: unreadable safetensors file ({exc})") from None
    networks = config.get("networks")
    if not isinstance(networks, dict) or not networks:
        raise ModelFileError(f"{path}: the network description has no 'networks' object")
    specs = {}
    for kind, net in networks.items():
        if kind not in KINDS or not isinstance(net, dict) or not isinstance(net.get("arch"), str) \
                or not isinstance(net.get("kwargs"), dict):
            raise ModelFileError(f"{path}: networks.{kind} is not a G or D with an 'arch' and 'kwargs'")
        prefix = kind + "."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        specs[kind] = NetworkSpec(kind, net["arch"], net["kwargs"], state)
    return specs


def read_network_specs(path) -> dict:
    """{'G': NetworkSpec, 'D': NetworkSpec (if present)} from a pickle or an rmmv-gan file."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    if _is_safetensors(path):
        return _specs_from_safetensors(path)
    why = _not_a_pickle(path)
    if why:
        raise ModelFileError(f"{path}: not a model file ({why})")
    return _specs_from_pickle(path)


def save_networks(path, networks: dict, half: bool = False, extra: dict | None = None) -> None:
    """Write {'G': module, 'D': module} to rmmv-gan's safetensors format.

    `half=True` stores floating-point tensors as float16 (half the size; they are cast back to
    float32 on load).
    """
    from safetensors.torch import save

    config = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "networks": {}}
    if extra:
        config["extra"] = extra
    tensors = {}
    for kind, net in networks.items():
        spec = getattr(net, "rmmv_spec", None)
        if spec is None:
            raise ValueError(f"network {kind} was not built by rmmv-gan (no constructor record)")
        config["networks"][kind] = {"arch": spec["arch"], "kwargs": spec["kwargs"]}
        for name, tensor in net.state_dict().items():
            t = tensor.detach().cpu().contiguous()
            if half and t.is_floating_point():
                t = t.to(torch.float16)
            tensors[f"{kind}.{name}"] = t
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path.parent}: no such folder")
    data = save(tensors, metadata={FORMAT_NAME: json.dumps(config)})
    atomic_write_bytes(path, data, overwrite=True)  # a failed write leaves the old file, never a torn one


def new_network(kind: str, arch: str, **kwargs) -> torch.nn.Module:
    """A freshly initialised network that remembers its constructor arguments (for saving)."""
    net = build_network(kind, arch, kwargs)
    net.rmmv_spec = {"arch": arch, "kwargs": _plain(kwargs)}
    return net


# ----------------------------------------------------------------------------------------------
# Public entry points


def _load(path, kind, device):
    specs = read_network_specs(path)
    if kind not in specs:
        what = "generator" if kind == "G" else "discriminator"
        raise ModelFileError(f"{path}: holds no {what}")
    try:
        net = specs[kind].build()
    except (MemoryError, RecursionError) as exc:  # a last line: checked files should not get here
        raise ModelFileError(f"{path}: cannot build the network ({type(exc).__name__})") from None
    return net.to(device)


def load_generator(path, device="cpu") -> torch.nn.Module:
    """The generator of a snapshot (G_ema, else G) or of an rmmv-gan file, ready for inference."""
    return _load(path, "G", torch.device(device))


def load_discriminator(path, device="cpu") -> torch.nn.Module:
    """The discriminator of a snapshot or an rmmv-gan file."""
    return _load(path, "D", torch.device(device))


def convert(src, dst, half: bool = False) -> dict:
    """Convert a snapshot to rmmv-gan's format. Returns {'G': arch, 'D': arch} of what was written."""
    specs = read_network_specs(src)
    nets = {kind: spec.build() for kind, spec in specs.items()}
    save_networks(dst, nets, half=half)
    return {kind: spec.arch for kind, spec in specs.items()}
