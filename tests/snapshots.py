"""Network files the tests make themselves, so that only the comparisons with NVIDIA's outputs
need ../shared/golden: rmmv-gan's own networks, saved in its format or written as NVIDIA
network-snapshot pickles (persistent records of constructor arguments and tensors, the layout
shared/golden/README.md describes), and hand-made records for hostile files."""

from __future__ import annotations

import collections
import contextlib
import pickle
import sys
import types
from pathlib import Path

import torch

# The architecture of ../shared/golden/sg3t_32.pkl (a StyleGAN3-T at 32 px, 16 layers): the
# tests that once used that file keep their layer numbers and w shapes.
STARTER_G = dict(z_dim=64, w_dim=64, c_dim=0, img_resolution=32, img_channels=3, channel_base=2048, channel_max=64,
                 conv_clamp=256, num_fp16_res=4, mapping_kwargs={"num_layers": 2}, magnitude_ema_beta=0.999)
STARTER_D = dict(c_dim=0, img_resolution=32, img_channels=3, channel_base=2048, channel_max=64, conv_clamp=256,
                 num_fp16_res=4, block_kwargs={}, mapping_kwargs={}, epilogue_kwargs={"mbstd_group_size": 4})
# A StyleGAN2 small enough to build in milliseconds (8 x 8 pixels, 4 layers).
TINY_G = dict(z_dim=8, w_dim=8, c_dim=0, img_resolution=8, img_channels=3, channel_base=64, channel_max=8,
              num_fp16_res=0, conv_clamp=None, mapping_kwargs={"num_layers": 1})

# What shared/golden's pickles hold instead of NVIDIA's source; tests may overwrite it in place.
MODULE_SRC = "# module source omitted: this file carries weights and constructor arguments only\n"


def starter_networks(seed=0) -> dict:
    """A StyleGAN3-T generator and its discriminator, freshly initialised from `seed`."""
    from rmmv_gan.models import new_network

    torch.manual_seed(seed)
    return {"G": new_network("G", "stylegan3", **STARTER_G), "D": new_network("D", "stylegan2", **STARTER_D)}


def save_starter_model(path, seed=0) -> Path:
    """The starter networks as an rmmv-gan .safetensors file."""
    from rmmv_gan.models import save_networks

    save_networks(path, starter_networks(seed))
    return Path(path)


# ---------------------------------------------------------------------------------- pickles


def _reconstruct_persistent_obj(meta):  # stands for NVIDIA's; only its name is pickled
    return meta


_reconstruct_persistent_obj.__module__ = "torch_utils.persistence"


@contextlib.contextmanager
def _persistence_module():
    """`torch_utils.persistence` importable while pickling, so the records name NVIDIA's global."""
    mod = types.ModuleType("torch_utils.persistence")
    mod._reconstruct_persistent_obj = _reconstruct_persistent_obj
    saved = {k: sys.modules.get(k) for k in ("torch_utils", "torch_utils.persistence")}
    sys.modules.update({"torch_utils": types.ModuleType("torch_utils"), "torch_utils.persistence": mod})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


class Call:
    """Pickles as a call of `fn(*args)`."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def record(class_name: str, state: dict, module_src=MODULE_SRC) -> Call:
    """A persistent object as torch_utils.persistence pickles it."""
    return Call(_reconstruct_persistent_obj, dict(type="class", version=6, module_src=module_src,
                                                  class_name=class_name, state=state))


def module_state(module: torch.nn.Module, module_src=MODULE_SRC, kwargs=None) -> dict:
    state = {"training": False, "_parameters": collections.OrderedDict(module._parameters),
             "_buffers": collections.OrderedDict(module._buffers),
             "_non_persistent_buffers_set": set(module._non_persistent_buffers_set),
             "_modules": collections.OrderedDict((name, record(type(child).__name__, module_state(child, module_src),
                                                               module_src))
                                                 for name, child in module._modules.items())}
    if kwargs is not None:
        state.update(_init_args=(), _init_kwargs=kwargs)
    return state


def dumps(obj) -> bytes:
    """pickle.dumps with NVIDIA's persistence module importable (protocol 4, as NVIDIA's)."""
    with _persistence_module():
        return pickle.dumps(obj, protocol=4)


def snapshot_bytes(networks: dict, module_src=MODULE_SRC) -> bytes:
    """{'G': module, 'D': module} of rmmv-gan as an NVIDIA network-snapshot pickle."""
    out = {}
    for kind, net in networks.items():
        rec = record(type(net).__name__, module_state(net, module_src, kwargs=net.rmmv_spec["kwargs"]), module_src)
        out.update({"G": rec, "G_ema": rec} if kind == "G" else {kind: rec})
    out.update(augment_pipe=None, training_set_kwargs=None)
    return dumps(out)


def write_snapshot(path, networks: dict | None = None, module_src=MODULE_SRC) -> Path:
    path = Path(path)
    path.write_bytes(snapshot_bytes(networks or starter_networks(), module_src))
    return path
