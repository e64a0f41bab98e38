"""Layers shared by the StyleGAN2 and StyleGAN3 networks: dense layers and the mapping network.

Parameter and buffer names match NVIDIA's modules, so that a state dict read from an official
snapshot loads without renaming.
"""

from __future__ import annotations

import numpy as np
import torch

from .ops import bias_act, conv2d_resample, normalize_2nd_moment, setup_filter, ACTIVATIONS


class FullyConnectedLayer(torch.nn.Module):
    """Dense layer with equalized learning rate: weights are scaled at run time, not at init."""

    def __init__(self, in_features, out_features, bias=True, activation="linear", lr_multiplier=1.0,
                 bias_init=0.0, weight_init=1.0):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier
        # In place: on the meta device (models.check_architecture) an out-of-place product goes
        # through PyTorch's Python decompositions, whose first use imports torch._dynamo (1.3 s).
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]).mul_(weight_init / lr_multiplier))
        if bias:
            init = np.broadcast_to(np.asarray(bias_init, dtype=np.float32), [out_features])
            self.bias = torch.nn.Parameter(torch.from_numpy(init / lr_multiplier))
        else:
            self.bias = None

    def forward(self, x):
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)


class Conv2dLayer(torch.nn.Module):
    """Convolution with equalized learning rate and optional resampling (discriminator)."""

    def __init__(self, in_channels, out_channels, kernel_size, bias=True, activation="linear", up=1, down=1,
                 resample_filter=(1, 3, 3, 1), conv_clamp=None):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / np.sqrt(in_channels * kernel_size**2)
        self.act_gain = ACTIVATIONS[activation][1]
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x, gain=1):
        w = (self.weight * self.weight_gain).to(x.dtype)
        b = self.bias.to(x.dtype) if self.bias is not None else None
        x = conv2d_resample(x, w, f=self.resample_filter, up=self.up, down=self.down, padding=self.padding,
                            flip_weight=(self.up == 1))
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class MappingNetwork(torch.nn.Module):
    """z (and label c) -> w, broadcast to num_ws layers, with truncation around w_avg.

    One class serves both architectures: StyleGAN3's mapping network is StyleGAN2's with two
    layers by default and no separate embedding/layer widths.
    """

    def __init__(self, z_dim, c_dim, w_dim, num_ws, num_layers=8, embed_features=None, layer_features=None,
                 activation="lrelu", lr_multiplier=0.01, w_avg_beta=0.998, **_ignored):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        embed_features = (w_dim if embed_features is None else embed_features) if c_dim > 0 else 0
        layer_features = w_dim if layer_features is None else layer_features
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(features[idx], features[idx + 1], activation=activation,
                                        lr_multiplier=lr_multiplier)
            setattr(self, f"fc{idx}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z, c=None, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        x = None
        if self.z_dim > 0:
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ValueError(f"this network is conditional: it needs a label c of shape [N, {self.c_dim}]")
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if update_emas and self.w_avg_beta is not None:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])  # [N, num_ws, w_dim]
        if truncation_psi != 1:
            if self.num_ws is None or truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x


class Generator(torch.nn.Module):
    """Mapping network + a synthesis network, with NVIDIA's generator interface.

    Subclasses name their synthesis network and the mapping depth their architecture uses
    when the snapshot does not say.
    """

    synthesis_class = None
    default_mapping_layers = 8

    def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs=None, **synthesis_kwargs):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = self.synthesis_class(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                              **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.img_shape = getattr(self.synthesis, "img_shape", (img_resolution, img_resolution))  # (H, W)
        mapping_kwargs = dict(mapping_kwargs or {})
        mapping_kwargs.setdefault("num_layers", self.default_mapping_layers)
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs)

    def forward(self, z, c=None, truncation_psi=1, truncation_cutoff=None, update_emas=False, **synthesis_kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)
