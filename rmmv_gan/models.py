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
"""

from __future__ import annotations

import collections
import io
import json
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .fileio import atomic_write_bytes
from .nets import stylegan2, stylegan3

FORMAT_NAME = "rmmv-gan"
FORMAT_VERSION = 1


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


def _reconstruct_persistent_obj(meta):
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise UnsafeModelError("persistent object of an unsupported kind (only 'class' objects are read)")
    state = meta.get("state")
    if not isinstance(state, dict):
        raise ModelFileError(f"persistent object {meta.get('class_name')!r} has no state")
    # meta['module_src'] is deliberately ignored: it is source code, and it is never executed.
    return PersistentRecord(class_name=str(meta.get("class_name")), state=state, version=int(meta.get("version", 0)))


def _load_storage_bytes(data):
    if not isinstance(data, (bytes, bytearray)):
        raise ModelFileError("storage payload is not bytes")
    try:
        return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        # torch's message names the refused global ("... unsupported GLOBAL posix.system ...").
        m = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f"asks for the global '{m.group(1)}'" if m else "is not plain weights"
        raise UnsafeModelError(f"refused: a tensor storage in the file {what}") from None
    except Exception as exc:  # noqa: BLE001 - any failure here means a corrupt file
        raise ModelFileError(f"unreadable tensor storage: {exc}") from None


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    if not isinstance(storage, (torch.UntypedStorage, torch.TypedStorage)):
        raise ModelFileError("tensor without a storage")
    if backward_hooks:
        raise UnsafeModelError("tensor with backward hooks")
    return torch._utils._rebuild_tensor_v2(storage, int(storage_offset), tuple(int(s) for s in size),
                                           tuple(int(s) for s in stride), False, collections.OrderedDict())


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


def _safe_reconstruct(subtype, shape, dtype_code):
    if subtype is not np.ndarray:
        raise UnsafeModelError("numpy array of a subclass")
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
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _safe_dtype,
    ("builtins", "set"): set,
}
for _np_module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_np_module, "_reconstruct")] = _safe_reconstruct
    _ALLOWED[(_np_module, "scalar")] = _safe_scalar


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals listed in `_ALLOWED`, to safe stand-ins."""

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
            return SafeUnpickler(f).load()
    except ModelFileError:
        raise
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a folder, not a model file") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, RecursionError, UnicodeDecodeError, OverflowError) as exc:
        raise ModelFileError(f"{path}: not a readable network pickle ({type(exc).__name__}: {exc})") from None


# ----------------------------------------------------------------------------------------------
# From records to modules


def _plain(value):
    """Constructor arguments as plain JSON-able data (EasyDicts become dicts)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ModelFileError(f"unexpected constructor argument of type {type(value).__name__}")


_G_POSITIONAL = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")
_D_POSITIONAL = ("c_dim", "img_resolution", "img_channels")


def _init_kwargs(record: PersistentRecord, positional) -> dict:
    args = record.state.get("_init_args", ())
    kwargs = _plain(dict(record.state.get("_init_kwargs", {})))
    if len(args) > len(positional):
        raise ModelFileError(f"{record.class_name}: too many positional constructor arguments")
    kwargs.update({name: _plain(v) for name, v in zip(positional, args)})
    # StyleGAN2-ADA nested the synthesis arguments; the later code flattened them.
    kwargs.update(kwargs.pop("synthesis_kwargs", None) or {})
    return kwargs


def _children(record: PersistentRecord) -> dict:
    modules = record.state.get("_modules") or {}
    return {k: v for k, v in modules.items() if v is not None}


def _state_dict(record: PersistentRecord, prefix="") -> dict:
    out = {}
    non_persistent = record.state.get("_non_persistent_buffers_set") or set()
    for key in ("_parameters", "_buffers"):
        for name, tensor in (record.state.get(key) or {}).items():
            if tensor is None or name in non_persistent:
                continue
            if not isinstance(tensor, torch.Tensor):
                raise ModelFileError(f"{prefix}{name} is not a tensor")
            out[prefix + name] = tensor.detach().to(torch.float32) if tensor.is_floating_point() else tensor.detach()
    for name, child in _children(record).items():
        if not isinstance(child, PersistentRecord):
            raise ModelFileError(f"submodule {prefix}{name} is not a network record")
        out.update(_state_dict(child, prefix + name + "."))
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


def build_network(kind: str, arch: str, kwargs: dict) -> torch.nn.Module:
    """Construct an empty network of rmmv-gan's own classes from constructor arguments."""
    try:
        if kind == "G" and arch == "stylegan2":
            return stylegan2.Generator(**kwargs)
        if kind == "G" and arch == "stylegan3":
            return stylegan3.Generator(**kwargs)
        if kind == "D" and arch == "stylegan2":
            return stylegan2.Discriminator(**kwargs)
    except (TypeError, ValueError, AssertionError, KeyError, ZeroDivisionError, OverflowError) as exc:
        raise ModelFileError(f"cannot build a {arch} {kind} from the stored arguments: {exc}") from None
    raise ModelFileError(f"unsupported network: {kind} of architecture {arch!r}")


def _fill(net: torch.nn.Module, state: dict, what: str) -> torch.nn.Module:
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ModelFileError(f"{what}: tensors do not match the architecture "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(own[name].shape):
            raise ModelFileError(f"{what}: {name} has shape {tuple(tensor.shape)}, expected {tuple(own[name].shape)}")
    net.load_state_dict(state, strict=True)
    return net.eval().requires_grad_(False)


@dataclass
class NetworkSpec:
    kind: str  # "G" or "D"
    arch: str  # "stylegan2" or "stylegan3"
    kwargs: dict
    state: dict

    def build(self) -> torch.nn.Module:
        net = _fill(build_network(self.kind, self.arch, self.kwargs), self.state, f"{self.arch} {self.kind}")
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
    return head[8:9] == b"{" and 0 < n < 100_000_000


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
    specs = {}
    for kind, net in (config.get("networks") or {}).items():
        prefix = kind + "."
        state = {k[len(prefix):]: v.to(torch.float32) if v.is_floating_point() else v
                 for k, v in tensors.items() if k.startswith(prefix)}
        specs[kind] = NetworkSpec(kind, net["arch"], net["kwargs"], state)
    return specs


def read_network_specs(path) -> dict:
    """{'G': NetworkSpec, 'D': NetworkSpec (if present)} from a pickle or an rmmv-gan file."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    if _is_safetensors(path):
        return _specs_from_safetensors(path)
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
    net = specs[kind].build()
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
