"""StyleGAN3 generator ("Alias-Free Generative Adversarial Networks", Karras et al. 2021),
configurations T (translation equivariant) and R (rotation equivariant: `conv_kernel=1`,
`use_radial_filters=True`), with the constructor arguments of NVIDIA's code.

The layer schedule (cut-offs, stop-bands, sampling rates, sizes, channels) and the filter
design follow the paper's appendix. The filtered leaky ReLU runs through
`ops.FilteredLReLUPlan`, the same arithmetic without the zero-stuffed image.
"""

from __future__ import annotations

import numpy as np
import torch

from . import layers
from .layers import FullyConnectedLayer
from .ops import FilteredLReLUPlan, conv3x3_winograd, filtered_lrelu_ref, modulate


def design_lowpass_filter(numtaps, cutoff, width, fs, radial=False):
    """Kaiser-windowed low-pass filter; `None` stands for the identity (one tap)."""
    if numtaps == 1:
        return None
    import scipy.signal
    import scipy.special

    if not radial:
        return torch.as_tensor(scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs),
                               dtype=torch.float32)
    # Radially symmetric: jinc times a separable Kaiser window.
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    with np.errstate(invalid="ignore", divide="ignore"):
        f = scipy.special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
    f[r == 0] = cutoff  # the limit of j1(2 pi c r) / (pi r) at r = 0
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    w = np.kaiser(numtaps, beta)
    f *= np.outer(w, w)
    f /= np.sum(f)
    return torch.as_tensor(f, dtype=torch.float32)


def modulated_conv2d(x, w, s, demodulate=True, padding=0, input_gain=None, winograd=False):
    """StyleGAN3's modulated convolution (no noise, optional input gain).

    winograd: 3 x 3 kernels of one sample on the CPU go through conv3x3_winograd, a quarter
    of the direct convolution's multiplies, forward and backward (CUDA libraries choose such
    algorithms themselves).
    """
    n, in_channels = x.shape[:2]
    out_channels, _, kh, kw = w.shape
    # Per-sample weights and one grouped convolution, as the original does.
    wm, dcoefs = modulate(w, s, demodulate=demodulate, prenormalize=demodulate)
    if demodulate:
        wm = wm * dcoefs.reshape(n, -1, 1, 1, 1)
    if input_gain is not None:
        wm = wm * input_gain  # a scalar: 1 / sqrt(magnitude_ema)
    if winograd and n == 1 and (kh, kw) == (3, 3) and x.device.type == "cpu" and x.dtype == torch.float32:
        return conv3x3_winograd(x, wm[0].to(x.dtype), padding=padding)
    x = x.reshape(1, -1, *x.shape[2:])
    x = torch.nn.functional.conv2d(x, wm.reshape(-1, in_channels, kh, kw).to(x.dtype), padding=padding, groups=n)
    return x.reshape(n, -1, *x.shape[2:])


class SynthesisInput(torch.nn.Module):
    """Fourier features at random frequencies, rotated and translated by an affine of w."""

    def __init__(self, w_dim, channels, size, sampling_rate, bandwidth):
        super().__init__()
        self.w_dim = w_dim
        self.channels = channels
        self.size = np.broadcast_to(np.asarray(size), [2])  # [width, height]
        self.sampling_rate = sampling_rate
        self.bandwidth = bandwidth
        # Drawn on the CPU also when the network is built on the meta device (see ops.setup_filter).
        freqs = torch.randn([channels, 2], device="cpu")
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs /= radii * radii.square().exp().pow(0.25)
        freqs *= bandwidth
        phases = torch.rand([channels], device="cpu") - 0.5
        self.weight = torch.nn.Parameter(torch.randn([channels, channels]))
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0, bias_init=[1, 0, 0, 0])
        self.register_buffer("transform", torch.eye(3, 3, device="cpu"))  # user-specified inverse transform of the image
        self.register_buffer("freqs", freqs)  # [C, 2]
        self.register_buffer("phases", phases)  # [C]

    def forward(self, w):
        n = w.shape[0]
        transforms = self.transform.unsqueeze(0)  # [1, 3, 3]
        freqs = self.freqs.unsqueeze(0)  # [1, C, 2]
        phases = self.phases.unsqueeze(0)  # [1, C]
        t = self.affine(w)  # (r_c, r_s, t_x, t_y)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        m_r = torch.eye(3, device=w.device).unsqueeze(0).repeat([n, 1, 1])  # inverse rotation
        m_r[:, 0, 0] = t[:, 0]
        m_r[:, 0, 1] = -t[:, 1]
        m_r[:, 1, 0] = t[:, 1]
        m_r[:, 1, 1] = t[:, 0]
        m_t = torch.eye(3, device=w.device).unsqueeze(0).repeat([n, 1, 1])  # inverse translation
        m_t[:, 0, 2] = -t[:, 2]
        m_t[:, 1, 2] = -t[:, 3]
        transforms = m_r @ m_t @ transforms
        phases = phases + (freqs @ transforms[:, :2, 2:]).squeeze(2)
        freqs = freqs @ transforms[:, :2, :2]
        # Fade out frequencies that the user transform pushed beyond the band.
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        theta = torch.eye(2, 3, device=w.device)
        theta[0, 0] = 0.5 * self.size[0] / self.sampling_rate
        theta[1, 1] = 0.5 * self.size[1] / self.sampling_rate
        grids = torch.nn.functional.affine_grid(theta.unsqueeze(0), [1, 1, int(self.size[1]), int(self.size[0])],
                                                align_corners=False)  # [1, H, W, 2]
        x = (grids.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)  # [N, H, W, C]
        x = x + phases.unsqueeze(1).unsqueeze(2)
        x = torch.sin(x * (np.pi * 2))
        x = x * amplitudes.unsqueeze(1).unsqueeze(2)
        x = x @ (self.weight / np.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)  # [N, C, H, W]


class SynthesisLayer(torch.nn.Module):
    def __init__(self, w_dim, is_torgb, is_critically_sampled, use_fp16, in_channels, out_channels, in_size,
                 out_size, in_sampling_rate, out_sampling_rate, in_cutoff, out_cutoff, in_half_width,
                 out_half_width, conv_kernel=3, filter_size=6, lrelu_upsampling=2, use_radial_filters=False,
                 conv_clamp=256, magnitude_ema_beta=0.999, **_ignored):
        super().__init__()
        self.w_dim = w_dim
        self.is_torgb = is_torgb
        self.is_critically_sampled = is_critically_sampled
        self.use_fp16 = use_fp16
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.in_size = np.broadcast_to(np.asarray(in_size), [2])
        self.out_size = np.broadcast_to(np.asarray(out_size), [2])
        self.in_sampling_rate = in_sampling_rate
        self.out_sampling_rate = out_sampling_rate
        self.tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.in_cutoff = in_cutoff
        self.out_cutoff = out_cutoff
        self.in_half_width = in_half_width
        self.out_half_width = out_half_width
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, self.conv_kernel, self.conv_kernel]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))

        self.up_factor = int(np.rint(self.tmp_sampling_rate / in_sampling_rate))
        assert in_sampling_rate * self.up_factor == self.tmp_sampling_rate
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        self.register_buffer("up_filter", design_lowpass_filter(
            numtaps=self.up_taps, cutoff=in_cutoff, width=in_half_width * 2, fs=self.tmp_sampling_rate))
        self.down_factor = int(np.rint(self.tmp_sampling_rate / out_sampling_rate))
        assert out_sampling_rate * self.down_factor == self.tmp_sampling_rate
        self.down_taps = filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        self.down_radial = use_radial_filters and not is_critically_sampled
        self.register_buffer("down_filter", design_lowpass_filter(
            numtaps=self.down_taps, cutoff=out_cutoff, width=out_half_width * 2, fs=self.tmp_sampling_rate,
            radial=self.down_radial))

        # Padding that centres the samples (the paper's symmetric interpretation, App. C.3).
        pad_total = (self.out_size - 1) * self.down_factor + 1
        pad_total -= (self.in_size + self.conv_kernel - 1) * self.up_factor
        pad_total += self.up_taps + self.down_taps - 2
        pad_lo = (pad_total + self.up_factor) // 2
        pad_hi = pad_total - pad_lo
        self.padding = [int(pad_lo[0]), int(pad_hi[0]), int(pad_lo[1]), int(pad_hi[1])]
        self.gain = 1 if is_torgb else np.sqrt(2)
        self.slope = 1 if is_torgb else 0.2
        self._plan = None
        self.impl = "fast"  # or "ref": the official op sequence, for tests

    def _get_plan(self, device):
        # Built from the filter buffers actually loaded, after load_state_dict.
        if self._plan is None or self._plan[0] != device:
            in_size = self.in_size + self.conv_kernel - 1  # the convolution pads by kernel-1
            plan = FilteredLReLUPlan(self.up_filter, self.down_filter, self.up_factor, self.down_factor,
                                     self.padding, in_size, self.gain, self.slope, self.conv_clamp).to(device)
            self._plan = (device, plan)
        return self._plan[1]

    def _apply(self, fn, *args, **kwargs):
        self._plan = None  # buffers moved or cast: rebuild lazily
        return super()._apply(fn, *args, **kwargs)

    def forward(self, x, w, noise_mode="random", force_fp32=False, update_emas=False, **_ignored):
        if update_emas:
            magnitude_cur = x.detach().to(torch.float32).square().mean()
            self.magnitude_ema.copy_(magnitude_cur.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles * (1 / np.sqrt(self.in_channels * self.conv_kernel**2))
        use_half = self.use_fp16 and not force_fp32 and x.device.type == "cuda"
        dtype = torch.float16 if use_half else torch.float32
        x = modulated_conv2d(x.to(dtype), self.weight, styles, demodulate=not self.is_torgb,
                             padding=self.conv_kernel - 1, input_gain=input_gain, winograd=self.impl == "fast")
        if self.impl == "ref":
            return filtered_lrelu_ref(x, self.up_filter, self.down_filter, self.bias.to(x.dtype), self.up_factor,
                                      self.down_factor, self.padding, self.gain, self.slope, self.conv_clamp)
        return self._get_plan(x.device)(x, self.bias)


class SynthesisNetwork(torch.nn.Module):
    split_batch = True  # on the CPU, run a batch image by image (see forward)

    def __init__(self, w_dim, img_resolution, img_channels, channel_base=32768, channel_max=512, num_layers=14,
                 num_critical=2, first_cutoff=2, first_stopband=2**2.1, last_stopband_rel=2**0.3, margin_size=10,
                 output_scale=0.25, num_fp16_res=4, **layer_kwargs):
        super().__init__()
        self.w_dim = w_dim
        self.num_ws = num_layers + 2
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_layers = num_layers
        self.num_critical = num_critical
        self.margin_size = margin_size
        self.output_scale = output_scale
        self.num_fp16_res = num_fp16_res

        # Geometric progression of cut-offs and minimum stop-bands, layer by layer.
        last_cutoff = img_resolution / 2
        last_stopband = last_cutoff * last_stopband_rel
        exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
        cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
        stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
        sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
        half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
        sizes = sampling_rates + margin_size * 2
        sizes[-2:] = img_resolution
        channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
        channels[-1] = img_channels

        self.input = SynthesisInput(w_dim=w_dim, channels=int(channels[0]), size=int(sizes[0]),
                                    sampling_rate=sampling_rates[0], bandwidth=cutoffs[0])
        self.layer_names = []
        for idx in range(num_layers + 1):
            prev = max(idx - 1, 0)
            layer = SynthesisLayer(
                w_dim=w_dim, is_torgb=(idx == num_layers), is_critically_sampled=(idx >= num_layers - num_critical),
                use_fp16=(sampling_rates[idx] * (2**num_fp16_res) > img_resolution),
                in_channels=int(channels[prev]), out_channels=int(channels[idx]),
                in_size=int(sizes[prev]), out_size=int(sizes[idx]),
                in_sampling_rate=int(sampling_rates[prev]), out_sampling_rate=int(sampling_rates[idx]),
                in_cutoff=cutoffs[prev], out_cutoff=cutoffs[idx],
                in_half_width=half_widths[prev], out_half_width=half_widths[idx], **layer_kwargs)
            name = f"L{idx}_{layer.out_size[0]}_{layer.out_channels}"
            setattr(self, name, layer)
            self.layer_names.append(name)

    def forward(self, ws, **layer_kwargs):
        if self.split_batch and ws.device.type == "cpu" and ws.shape[0] > 1:
            # Measured on the CPU (256 px): a batch costs more per image than one image at a
            # time, whose activations stay closer to the caches.
            return torch.cat([self.forward(ws[i : i + 1], **layer_kwargs) for i in range(ws.shape[0])])
        ws = ws.to(torch.float32).unbind(dim=1)
        x = self.input(ws[0])
        for name, w in zip(self.layer_names, ws[1:]):
            x = getattr(self, name)(x, w, **layer_kwargs)
        if self.output_scale != 1:
            x = x * self.output_scale
        return x.to(torch.float32).contiguous()


class Generator(layers.Generator):
    synthesis_class = SynthesisNetwork
    default_mapping_layers = 2
