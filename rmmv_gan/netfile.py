"""rmmv-gan's files for its small networks (the sprite-to-face encoder, the face refiner).

A file is safetensors: the tensors of the network's state, and in the metadata one JSON
description under the format's name: {"format": name, "version": n, <constructor numbers>}.
Packs are untrusted, so reading never executes anything from the file, and it checks in this
order: the description's format and version, every constructor number against its bounds
(so no huge network is built), then every tensor's name, shape and dtype against the network
the description builds (before a tensor is read), and finally that no value is NaN or infinite.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch
from torch import nn


def save_network(path, network: nn.Module, format_name: str, version: int, config: dict, half: bool = True,
                 keep_float32: tuple[str, ...] = ()) -> None:
    """Write the network's state (float16 by default, except the tensors named in keep_float32)
    with its description; a failed write leaves the old file whole."""
    from safetensors.torch import save

    from .fileio import atomic_write_bytes

    tensors = {}
    for name, t in network.state_dict().items():
        t = t.detach().cpu().contiguous()
        tensors[name] = t.to(torch.float16) if half and t.is_floating_point() and name not in keep_float32 else t
    meta = {format_name: json.dumps({"format": format_name, "version": version, **config})}
    atomic_write_bytes(Path(path), save(tensors, metadata=meta), overwrite=True)


def _checked_config(meta: dict, path, format_name: str, version: int, limits: dict, error: type) -> dict:
    try:
        config = json.loads(meta.get(format_name, "null"))
    except (TypeError, json.JSONDecodeError):
        config = None
    what = format_name.removeprefix("rmmv-gan-")
    if not isinstance(config, dict) or config.get("format") != format_name:
        raise error(f"{path}: not an rmmv-gan {what} file (no {format_name} description)")
    if config.get("version") != version:
        raise error(f"{path}: {what} format version {config.get('version')!r} is not {version}")
    out = {}
    for key, (lo, hi) in limits.items():
        v = config.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise error(f"{path}: {what} {key} must be a whole number in [{lo}, {hi}], not {v!r}")
        out[key] = v
    return out


def load_network(path, format_name: str, version: int, limits: dict, build: Callable[[dict], nn.Module],
                 error: type) -> nn.Module:
    """Read a network file (see the module doc): `limits` maps each constructor number to its
    (low, high) bounds, `build(config)` makes the network from the checked numbers. Any problem
    raises `error` with the file's name. The network comes back frozen, in eval mode, on the CPU."""
    from safetensors import safe_open

    path = Path(path)
    what = format_name.removeprefix("rmmv-gan-")
    if not path.is_file():
        raise error(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            config = _checked_config(f.metadata() or {}, path, format_name, version, limits, error)
            net = build(config)
            expected = net.state_dict()
            keys = set(f.keys())
            if keys != set(expected):
                missing, extra = sorted(set(expected) - keys), sorted(keys - set(expected))
                raise error(f"{path}: tensors do not match the {what} described "
                            f"(missing {missing[:3]}, unexpected {extra[:3]})")
            state = {}
            for name, want in expected.items():
                sl = f.get_slice(name)
                if tuple(sl.get_shape()) != tuple(want.shape) or sl.get_dtype() not in ("F16", "F32", "BF16"):
                    raise error(f"{path}: tensor {name} is {sl.get_dtype()} {sl.get_shape()}, "
                                f"the {what} needs {list(want.shape)}")
                t = f.get_tensor(name).to(torch.float32)
                if not torch.isfinite(t).all():
                    raise error(f"{path}: tensor {name} holds NaN or infinity")
                state[name] = t
    except error:
        raise
    except Exception as exc:  # noqa: BLE001 - safetensors raises several kinds on corrupt input
        raise error(f"{path}: unreadable {what} file ({exc})") from None
    net.load_state_dict(state)
    return net.eval().requires_grad_(False)
