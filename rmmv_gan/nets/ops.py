"""Low-level operations of the StyleGAN2/3 generators, in plain PyTorch.

Each function reproduces the arithmetic of the official operation of the same name
(bias_act, upfirdn2d, conv2d_resample, filtered_lrelu): the same padding conventions, the same
filter flipping, the same gain factors. Only the way the work is laid out differs, so that it
runs fast on a CPU without custom kernels:

- `filtered_lrelu` (`FilteredLReLUPlan`) upsamples with strided transposed convolutions
  instead of inserting zeros and filtering the zero-stuffed image, and downsamples with a
  strided convolution instead of filtering every sample and discarding most of them. Tensors
  stay in channels-last layout, where oneDNN's depthwise convolutions are fast.
- `upfirdn2d` filters with strided depthwise convolutions where it downsamples.
- the fast StyleGAN3 operations (`FilteredLReLUPlan`, `conv3x3_winograd`) have hand-written
  backward passes, for projection; their references (`filtered_lrelu_ref`, `F.conv2d`) stay
  beside them and the tests compare both, values and gradients.

Filters follow NVIDIA's conventions: a 1-D filter of K taps means a separable K x K filter,
a 2-D filter is used as is, `None` is the identity; `flip_filter=False` means convolution.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)

# Default slope and gain of each activation, as in the official bias_act.
ACTIVATIONS = {
    "linear": (0.0, 1.0),
    "relu": (0.0, SQRT2),
    "lrelu": (0.2, SQRT2),
}


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def bias_act(x, b=None, act="linear", alpha=None, gain=None, clamp=None, dim=1):
    """x + b, then the activation, then the gain, then clamping to [-clamp, clamp]."""
    def_alpha, def_gain = ACTIVATIONS[act]
    alpha = def_alpha if alpha is None else float(alpha)
    gain = def_gain if gain is None else float(gain)
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + b.reshape(shape)
    if act == "lrelu":
        x = F.leaky_relu(x, alpha)
    elif act == "relu":
        x = F.relu(x)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


# ----------------------------------------------------------------------------------------------
# Filters


def setup_filter(f, normalize=True, flip_filter=False, gain=1, separable=None) -> torch.Tensor:
    """A resampling filter as the official `setup_filter` prepares it.

    Short 1-D filters (under 8 taps) become their 2-D outer product; longer ones stay
    separable. The filter is normalised to sum 1 before the gain is applied.
    """
    # On the CPU even while a network is built on the meta device (models.check_architecture):
    # there the arithmetic below would go through PyTorch's Python decompositions, whose first
    # use imports torch._dynamo, 1.3 s of every start-up. A filter is a few dozen numbers.
    f = torch.as_tensor(np.asarray(f if f is not None else 1, dtype=np.float32), device="cpu")
    if f.ndim == 0:
        f = f[None]
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    return f * (gain ** (f.ndim / 2))


def _parse_padding(padding):
    if isinstance(padding, (int, np.integer)):
        padding = [padding, padding]
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        px, py = padding
        padding = [px, px, py, py]
    return padding  # [x0, x1, y0, y1]


def _pad(x, px0, px1, py0, py1):
    """Zero-pad, or crop where a value is negative."""
    if px0 or px1 or py0 or py1:
        x = F.pad(x, [px0, px1, py0, py1])
    return x


def _zero_padded(x, px0, px1, py0, py1, b=None):
    """x + b (b per channel, optional), zero-padded (all amounts >= 0), as a new channels-last
    tensor: one pass that writes the margins and one over x (F.pad fills the whole tensor
    first; and a bias added before it, and a channels-last copy, would be more passes)."""
    n, c, h, w = x.shape
    out = torch.empty(n, c, h + py0 + py1, w + px0 + px1, dtype=x.dtype, device=x.device,
                      memory_format=torch.channels_last)
    for margin in (out[:, :, :py0], out[:, :, py0 + h :], out[:, :, py0 : py0 + h, :px0],
                   out[:, :, py0 : py0 + h, px0 + w :]):
        if margin.numel():
            margin.zero_()
    inner = out[:, :, py0 : py0 + h, px0 : px0 + w]
    if b is None:
        inner.copy_(x)
    else:
        torch.add(x, b.reshape(1, -1, 1, 1), out=inner)
    return out


def _depthwise(x, f2d, stride=1):
    """Valid correlation of every channel with the same 2-D filter."""
    c = x.shape[1]
    w = f2d.to(x.dtype)[None, None].expand(c, 1, *f2d.shape)
    return F.conv2d(x, w, stride=stride, groups=c)


def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1):
    """Upsample (zero insertion), pad, FIR filter, downsample: the official `upfirdn2d`."""
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    px0, px1, py0, py1 = _parse_padding(padding)
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x = _pad(x, px0, px1, py0, py1)
    f = f * (gain ** (f.ndim / 2))
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f.to(x.device)
    if f.ndim == 1:
        x = _depthwise(x, f[None, :], stride=(1, down))
        x = _depthwise(x, f[:, None], stride=(down, 1))
    else:
        x = _depthwise(x, f, stride=down)
    return x


def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1):
    px0, px1, py0, py1 = _parse_padding(padding)
    fw = f.shape[-1]
    fh = f.shape[0]
    p = [px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2, py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2]
    return upfirdn2d(x, f, up=up, padding=p, flip_filter=flip_filter, gain=gain * up * up)


def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1):
    px0, px1, py0, py1 = _parse_padding(padding)
    fw = f.shape[-1]
    fh = f.shape[0]
    p = [px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2, py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2]
    return upfirdn2d(x, f, down=down, padding=p, flip_filter=flip_filter, gain=gain)


# ----------------------------------------------------------------------------------------------
# Convolution with resampling (StyleGAN2)


def conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True, flip_filter=False):
    """2-D convolution with optional up/downsampling by the filter `f` (official semantics).

    `flip_weight=True` is correlation (what F.conv2d does), False is true convolution. Padding
    is given with respect to the upsampled image, as in the official op.
    """
    out_channels, in_per_group, kh, kw = w.shape
    fw, fh = (1, 1) if f is None else (f.shape[-1], f.shape[0])
    px0, px1, py0, py1 = _parse_padding(padding)
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2

    def conv(x, w, stride=1, pad=0, transpose=False, flip=True):
        if not flip and (kw > 1 or kh > 1):
            w = w.flip([2, 3])
        op = F.conv_transpose2d if transpose else F.conv2d
        return op(x, w, stride=stride, padding=pad, groups=groups)

    if kw == 1 and kh == 1 and down > 1 and up == 1:
        # 1x1 kernel: filter and decimate first, then the cheap convolution.
        x = upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return conv(x, w, flip=flip_weight)
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = conv(x, w, flip=flip_weight)
        return upfirdn2d(x, f, up=up, padding=[px0, px1, py0, py1], gain=up**2, flip_filter=flip_filter)
    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return conv(x, w, stride=down, flip=flip_weight)
    if up > 1:
        # Transposed strided convolution, then the low-pass filter.
        if groups == 1:
            w = w.transpose(0, 1)
        else:
            w = w.reshape(groups, out_channels // groups, in_per_group, kh, kw).transpose(1, 2)
            w = w.reshape(groups * in_per_group, out_channels // groups, kh, kw)
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        x = conv(x, w, stride=up, pad=[pyt, pxt], transpose=True, flip=not flip_weight)
        x = upfirdn2d(x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up**2, flip_filter=flip_filter)
        if down > 1:
            x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
        return x
    if up == 1 and down == 1 and px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return conv(x, w, pad=[py0, px0], flip=flip_weight)
    x = upfirdn2d(x, f if up > 1 else None, up=up, padding=[px0, px1, py0, py1], gain=up**2, flip_filter=flip_filter)
    x = conv(x, w, flip=flip_weight)
    if down > 1:
        x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
    return x


# ----------------------------------------------------------------------------------------------
# 3 x 3 convolution by Winograd's minimal filtering


# F(4x4, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): a
# 4 x 4 output tile of a 3 x 3 correlation is A^T [(G g G^T) * (B^T d B)] A for the 6 x 6 input
# tile d: 36 multiplies per channel pair instead of 144. The 36 products over all tiles and
# channel pairs are 36 matrix multiplies, which run at the machine's matmul rate.
_WINO_BT = ((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0),
            (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1))
_WINO_G = ((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
           (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0, 0, 1))
_WINO_AT = ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1))
_WINO_M, _WINO_A = 4, 6  # output and input tile sizes


# Both 2-D transforms of a tile at once, as one matrix: row (i, j), column (k, l) holds
# B^T[i][k] B^T[j][l] (A^T and G likewise). One product of this small matrix with all tiles runs at
# the matrix multiply's rate; it was measured 1.5x (input) and 3x (output) faster than sums of
# the few non-zero terms over strided views.
_WINO_BK = torch.kron(torch.tensor(_WINO_BT, dtype=torch.float64), torch.tensor(_WINO_BT, dtype=torch.float64))
_WINO_AK = torch.kron(torch.tensor(_WINO_AT, dtype=torch.float64), torch.tensor(_WINO_AT, dtype=torch.float64))
_WINO_GK = torch.kron(torch.tensor(_WINO_G, dtype=torch.float64), torch.tensor(_WINO_G, dtype=torch.float64))


def _tile_rows(x, t0, t1):
    """The padded input rows that tile rows t0..t1 read (tiles overlap by 2 rows)."""
    return x[:, _WINO_M * t0 : _WINO_M * t1 + 2]


def _tiles(rows, count, tw):
    """[6, 6, N, count, tw, C] view of the overlapping 6 x 6 input tiles of `rows`
    ([N, 4 count + 2, 4 tw + 2, C], channels innermost)."""
    m, a = _WINO_M, _WINO_A
    sn, sh, sw, sc = rows.stride()
    return rows.as_strided((a, a, rows.shape[0], count, tw, rows.shape[3]), (sh, sw, sn, m * sh, m * sw, sc),
                           rows.storage_offset())


def winograd_kernel(weight):
    """G g G^T of every 3 x 3 kernel, [36, C, O] (differentiable: ordinary tensor ops).

    One product of the 36 x 9 matrix G (x) G with the kernels' taps, which are weight's
    innermost axis: weight as [O * C, 9] transposed is a plain transposed matrix, and the
    result [36, O, C] is returned as a transposed view (measured 1.5x faster than moving the
    taps to the front first, a transposing copy; the matrix products read either layout at
    the same speed)."""
    o, c = weight.shape[:2]
    gk = _WINO_GK.to(dtype=weight.dtype, device=weight.device)
    return torch.mm(gk, weight.reshape(o * c, 9).t()).reshape(_WINO_A**2, o, c).transpose(1, 2)


def _input_transform(rows, count, tw):
    """B^T d B of each 6 x 6 tile of `rows`: [36, tiles, C]."""
    bk = _WINO_BK.to(rows.dtype)
    return torch.mm(bk, _tiles(rows, count, tw).reshape(_WINO_A**2, -1)).reshape(_WINO_A**2, -1, rows.shape[3])


def _input_transform_adjoint(dv, drows, count, tw):
    """Adds the input gradient of `_input_transform` for the transformed-tile gradient dv
    ([36, tiles, C]) into drows (overlapping tiles accumulate)."""
    m, a = _WINO_M, _WINO_A
    dd = torch.mm(_WINO_BK.to(dv.dtype).t(), dv.reshape(a * a, -1)).reshape(a, a, *_tiles(drows, count, tw).shape[2:])
    view = _tiles(drows, count, tw)
    # Tiles overlap in their last 2 rows and columns: four blocks, each free of overlaps.
    for rows in (slice(0, m), slice(m, a)):
        for cols in (slice(0, m), slice(m, a)):
            view[rows, cols].add_(dd[rows, cols])


def _output_transform(prod, y):
    """A^T M A of each tile's 36 products (prod [36, tiles, O]) into the 4 x 4 output tiles
    y ([N, rows, 4, tw, 4, O])."""
    m = _WINO_M
    n, rows, _, tw, _, o = y.shape
    out = torch.mm(_WINO_AK.to(prod.dtype), prod.reshape(_WINO_A**2, -1)).reshape(m, m, n, rows, tw, o)
    y.copy_(out.permute(2, 3, 0, 4, 1, 5))


def _output_transform_adjoint(dy):
    """The gradient of `_output_transform`'s products for the output-tile gradient dy."""
    m, a = _WINO_M, _WINO_A
    o = dy.shape[5]
    g = dy.permute(2, 4, 0, 1, 3, 5).reshape(m * m, -1)  # [(p, q), tiles * O]
    return torch.mm(_WINO_AK.to(dy.dtype).t(), g).reshape(a * a, -1, o)


def _row_chunks(th, n, c, tw, tile_elements):
    rows = max(1, tile_elements // (_WINO_A * _WINO_A * n * c * tw))
    return [(t0, min(th, t0 + rows)) for t0 in range(0, th, rows)]


class _Winograd3x3(torch.autograd.Function):
    """F(4x4, 3x3) convolution of x ([N, C, H, W]) with transformed kernels u ([36, C, O]),
    and its hand-written backward: the transposed transforms and two matrix products per
    tile position (autograd cannot follow the forward, which writes into preallocated tiles).
    The transformed input tiles are kept for the kernel gradient."""

    @staticmethod
    def forward(ctx, x, u, padding, tile_elements):
        m, a = _WINO_M, _WINO_A
        n, c, h, w = x.shape
        o = u.shape[2]
        ho, wo = h + 2 * padding - 2, w + 2 * padding - 2
        th, tw = -(-ho // m), -(-wo // m)
        # The padding, and zeros up to whole tiles.
        xp = _zero_padded(x, padding, m * tw + 2 - w - padding, padding, m * th + 2 - h - padding).permute(0, 2, 3, 1)
        y = x.new_empty(n, th, m, tw, m, o)
        keep = ctx.needs_input_grad[1]
        vs = []
        chunks = _row_chunks(th, n, c, tw, tile_elements)
        for t0, t1 in chunks:
            v = _input_transform(_tile_rows(xp, t0, t1), t1 - t0, tw)
            _output_transform(torch.bmm(v, u), y[:, t0:t1])  # 36 products [tiles, C] x [C, O]
            if keep:
                vs.append(v)
        if ctx.needs_input_grad[0] or keep:
            ctx.save_for_backward(u)
            ctx.vs, ctx.chunks, ctx.geometry = vs, chunks, (n, c, h, w, padding, th, tw)
        return y.reshape(n, m * th, m * tw, o)[:, :ho, :wo].permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, dy):
        m = _WINO_M
        (u,) = ctx.saved_tensors
        n, c, h, w, padding, th, tw = ctx.geometry
        o = u.shape[2]
        dyp = dy.new_zeros(n, m * th, m * tw, o)
        dyp[:, : dy.shape[2], : dy.shape[3]] = dy.permute(0, 2, 3, 1)
        dyp = dyp.reshape(n, th, m, tw, m, o)
        want_x, want_u = ctx.needs_input_grad[:2]
        dxp = dy.new_zeros(n, m * th + 2, m * tw + 2, c) if want_x else None
        du = u.new_zeros(u.shape) if want_u else None  # contiguous (u may be a transposed view): one batched product
        for k, (t0, t1) in enumerate(ctx.chunks):
            dprod = _output_transform_adjoint(dyp[:, t0:t1])  # [36, tiles, O]
            if want_u:
                du.baddbmm_(ctx.vs[k].transpose(1, 2), dprod)
            if want_x:
                dv = torch.bmm(dprod, u.transpose(1, 2))  # [36, tiles, C]
                _input_transform_adjoint(dv, _tile_rows(dxp, t0, t1), t1 - t0, tw)
        ctx.vs = None
        dx = dxp[:, padding : padding + h, padding : padding + w].permute(0, 3, 1, 2) if want_x else None
        return dx, du, None, None


def conv3x3_winograd(x, weight, padding=0, tile_elements=1 << 21):
    """F.conv2d(x, weight, padding=padding) for 3 x 3 kernels, stride 1, one group; differentiable
    in x and weight.

    Works in channels-last order (tiles x channels matrices multiply fastest that way) and
    returns a channels-last tensor. Rounding differs from the direct convolution's (error about
    1e-5 of the output's range). Tile rows go in slices of about `tile_elements`
    transformed values, so that the working set stays in cache (2^21 measured 10-20% faster
    than 2^22 on StyleGAN3-T's layers at 256 px, one thread; 2^20 about the same).
    """
    return _Winograd3x3.apply(x, winograd_kernel(weight.to(x.dtype)), padding, tile_elements)


# ----------------------------------------------------------------------------------------------
# Filtered leaky ReLU (StyleGAN3)


def _transposed_geometry(taps: int, up: int, pad0: int, length: int, needed: int):
    """How a transposed convolution of stride `up` computes samples 0..needed-1 of the official
    upsampling (zero insertion, `pad0` zeros before, convolution with a `taps`-tap filter) of
    a signal of `length` samples.

    Returns (before, after, crop, count): prepend `before` and append `after` zeros to the
    signal; the transposed convolution with padding `crop` gives `count` >= needed samples,
    the first `needed` of which are the official ones. (The official sample m is
    sum_k f[k] s[m + taps - 1 - pad0 - k], s the zero-stuffed signal; the transposed
    convolution's full output j is sum_k f[k] s[j - k], and `crop` drops its first samples.)
    """
    crop = taps - 1 - pad0
    before = max(0, -(crop // up))  # a negative crop is made up by zeros before the signal
    crop += up * before
    count = (length + before - 1) * up - 2 * crop + taps
    after = max(0, -(-(needed - count) // up))
    return before, after, crop, count + up * after


class FilteredLReLUPlan:
    """One layer's filtered leaky ReLU without the official op's zero-stuffed image.

    The official op upsamples to a temporary grid (`up` times the input rate) by inserting
    zeros and filtering, applies the leaky ReLU there, and filters back down with stride
    `down`. Here the up filter (1-D, gain `up` per axis) runs as a depthwise transposed
    convolution of stride `up` along each axis, which skips the zeros and writes the temporary
    grid interleaved, in one channels-last piece; the activation runs in place on it; the down
    filter runs on it with stride `down`: two 1-D passes for a separable filter, one 2-D pass
    for a radial one.

    Channels are processed in slices, and a batch sample by sample, so that the working set
    stays small. Same arithmetic as the reference, a fraction of the work.
    `backward` is the transpose of the same steps (see _FilteredLReLUFunction).
    """

    # Slices of a multiple of 16 channels (64 bytes: whole cache lines in the channels-last
    # slices and copies) and about 6M temporary samples: measured on StyleGAN3-T's layers at
    # 256 px, one thread, 1.17 s against 1.48 s for the slices of 4M samples, any channel count
    # (11 or 13 at 276 px), and 1.5-2 s for larger or 32-channel slices.
    channel_multiple = 16
    chunk_elements = 3 << 21

    def __init__(self, fu, fd, up, down, padding, in_size, gain, slope, clamp, flip_filter=False):
        if flip_filter:
            raise NotImplementedError("flip_filter is not used by the generators")
        if up % down != 0:
            raise NotImplementedError("the up factor must be a multiple of the down factor")
        px0, px1, py0, py1 = _parse_padding(padding)
        in_w, in_h = int(in_size[0]), int(in_size[1])
        u, d, r = up, down, up // down
        self.up, self.down, self.r = u, d, r
        self.slope, self.gain = float(slope), float(gain)
        # clamp(gain * lrelu(v), c) == gain * clamp(lrelu(v), c / gain): the gain goes into the
        # (linear) down filter.
        self.act_clamp = None if clamp is None else float(clamp) / self.gain
        self.trivial = fu is None and fd is None and up == 1 and down == 1
        self.padding = (px0, px1, py0, py1)
        fu_np = np.ones(1) if fu is None else fu.detach().cpu().double().numpy()
        fd_np = np.ones([1, 1]) if fd is None else fd.detach().cpu().double().numpy()
        if fu_np.ndim != 1:
            raise NotImplementedError("2-D upsampling filters are not used by StyleGAN3")
        self.separable = fd_np.ndim == 1
        fd2 = np.outer(fd_np, fd_np) if self.separable else fd_np
        ku, kd = len(fu_np), fd2.shape[0]
        tmp_w = in_w * u + px0 + px1 - (ku - 1)
        tmp_h = in_h * u + py0 + py1 - (ku - 1)
        self.out_w = (tmp_w - kd + d) // d
        self.out_h = (tmp_h - kd + d) // d

        # Down stage: the official strided filter on the activated temporary grid; for a
        # separable filter as two 1-D passes (the gain on the horizontal one).
        g1 = fd_np[::-1] if self.separable else None
        self.down_full = torch.from_numpy((fd2[::-1, ::-1] * gain).astype(np.float32).copy())
        self.down_1d = None if g1 is None else (torch.from_numpy((g1 * gain).astype(np.float32)[None, :].copy()),
                                                torch.from_numpy(g1.astype(np.float32)[:, None].copy()))

        # Up stage: a transposed convolution of stride `up` along each axis (the 1-D up filter,
        # gain up per axis) computes the upsampled signal straight into the interleaved grid;
        # the down stage reads its first tmp_h x tmp_w samples.
        gx = _transposed_geometry(ku, u, px0, in_w, tmp_w)
        gy = _transposed_geometry(ku, u, py0, in_h, tmp_h)
        self.up_pad = [gx[0], gx[1], gy[0], gy[1]]  # low-rate zeros around the input
        self.up_crop = (gy[2], gx[2])
        self.grid_size = (gy[3], gx[3])
        self.up_1d = (torch.from_numpy((fu_np * u).astype(np.float32)[None, :].copy()),
                      torch.from_numpy((fu_np * u).astype(np.float32)[:, None].copy()))
        self._weights = {}

    def to(self, device):
        self._weights = {}
        self.down_full = self.down_full.to(device)
        self.up_1d = tuple(t.to(device) for t in self.up_1d)
        if self.down_1d is not None:
            self.down_1d = tuple(t.to(device) for t in self.down_1d)
        return self

    def __call__(self, x, b=None):
        if b is not None:
            b = b.to(x.dtype)
        if not self.trivial and torch.is_grad_enabled() and (x.requires_grad or (b is not None and b.requires_grad)):
            return _FilteredLReLUFunction.apply(x, b, self)
        return self.forward(x, b)

    def forward(self, x, b=None, kept=None):
        """The output; with `kept` (a list), also what the backward pass needs: per chunk,
        the activated temporary signal."""
        if self.trivial:
            # 1x1 filters (the toRGB layer): padding, activation, gain only.
            if b is not None:
                x = x + b.reshape(1, -1, 1, 1)
            x = _pad(x, *self.padding)[:, :, : self.out_h, : self.out_w]
            if self.slope != 1:
                x = F.leaky_relu(x, self.slope)
            if self.act_clamp is not None:
                x = x.clamp(-self.act_clamp, self.act_clamp)
            return x * self.gain if self.gain != 1 else x

        def chunk(xs, channels, out):
            # The bias, the zeros around the input and the slice's own contiguous copy: one pass.
            xp = _zero_padded(xs, *self.up_pad, b=None if b is None else b[channels])
            acts = None if kept is None else []
            if kept is not None:
                kept.append(acts)
            self._grid(xp, out, acts)

        px0, px1, py0, py1 = self.up_pad
        padded = (x.shape[2] + py0 + py1, x.shape[3] + px0 + px1)
        return self._map_chunks(chunk, x, padded, (self.out_h, self.out_w), into_views=True)

    def backward(self, dz, kept, x_shape):
        """The gradient of `forward` with respect to x (without the bias), given the output's
        gradient and the activations `forward` kept: the transposed filters with the
        activation's derivative in between."""
        acts = iter(kept)
        px0, px1, py0, py1 = self.up_pad
        padded = (x_shape[2] + py0 + py1, x_shape[3] + px0 + px1)  # `forward`'s input and slices

        def chunk(dzs, channels, out):
            self._grid_backward(dzs.contiguous(memory_format=torch.channels_last), out, next(acts))

        return _pad(self._map_chunks(chunk, dz, padded, padded), -px0, -px1, -py0, -py1)

    def _map_chunks(self, run, x, padded_size, out_size, into_views=False):
        """run(slice, channels, out) on slices of x (`channels` says which), one sample and a
        slice of channels at a time, so that the temporary signal (`up`**2 times the padded
        input's samples) stays small; each writes its result into `out`, a channels-last
        tensor of `out_size`.

        into_views: `out` is the slice's view of the whole output, for a `run` that writes it
        with one copy (no concatenation afterwards, a pass over the output less); otherwise a
        contiguous tensor (measured: sums written by additions straight into a channel slice,
        a strided view, are 5x slower than into a contiguous tensor, and than the copy
        afterwards)."""
        n, c = x.shape[:2]

        def new_out(batch, channels):
            return torch.empty(batch, channels, *out_size, dtype=x.dtype, device=x.device,
                               memory_format=torch.channels_last)

        per_channel = padded_size[0] * padded_size[1] * self.up**2  # temporary samples per channel
        if n * c * per_channel <= self.chunk_elements:
            out = new_out(n, c)
            run(x, slice(None), out)
            return out
        step = max(1, self.chunk_elements // per_channel)
        if step > self.channel_multiple:
            step -= step % self.channel_multiple
        whole = new_out(n, c) if into_views else None

        # Sample by sample, then slices of channels (measured: slicing a whole batch into
        # few-channel pieces is slower).
        def piece(j, i):
            out = whole[j : j + 1, i : i + step] if into_views else new_out(1, min(step, c - i))
            run(x[j : j + 1, i : i + step], slice(i, i + step), out)
            return out

        pieces = [[piece(j, i) for i in range(0, c, step)] for j in range(n)]
        return whole if into_views else torch.cat([torch.cat(p, dim=1) for p in pieces], dim=0)

    def _weight(self, c, k, dtype):
        """The per-channel depthwise weight of the 2-D kernel k (one of the plan's tables),
        expanded once per channel count and cached."""
        key = (k.data_ptr(), tuple(k.shape), c, dtype)
        w = self._weights.get(key)
        if w is None:
            w = self._weights[key] = k.to(dtype)[None, None].expand(c, 1, *k.shape).contiguous()
        return w

    def _dw(self, x, k, stride=1):
        """Depthwise valid correlation with the 2-D kernel k."""
        return F.conv2d(x, self._weight(x.shape[1], k, x.dtype), stride=stride, groups=x.shape[1])

    def _activate(self, a):
        """The activation, in place (called where no gradient is being recorded)."""
        if self.slope != 1:
            a = F.leaky_relu_(a, self.slope)
        if self.act_clamp is not None:
            a = a.clamp_(-self.act_clamp, self.act_clamp)
        return a

    def _activation_backward(self, g, a):
        """g times the activation's derivative, read from its output a (the leaky ReLU keeps
        the sign; the clamp passes no gradient where it cut)."""
        if self.slope != 1:
            g = torch.ops.aten.leaky_relu_backward(g, a, self.slope, True)
        if self.act_clamp is not None:
            g = torch.ops.aten.hardtanh_backward(g, a, -self.act_clamp, self.act_clamp)
        return g

    def _grid(self, x, out, kept=None):
        """Up stage (transposed convolutions: the upsampled signal comes out interleaved, in
        one piece), activation in place, down stage as strided filters of the grid (measured
        on StyleGAN3-T's layers: 2-4x faster than polyphase components, whose per-component
        filters each cost a pass over memory and an addition, and which had to be written
        interleaved into the grid)."""
        u, c = self.up, x.shape[1]
        (cy, cx), (fx, fy) = self.up_crop, self.up_1d
        grid = F.conv_transpose2d(x, self._weight(c, fx, x.dtype), stride=(1, u), padding=(0, cx), groups=c)
        grid = self._activate(F.conv_transpose2d(grid, self._weight(c, fy, x.dtype), stride=(u, 1),
                                                 padding=(cy, 0), groups=c))
        if kept is not None:
            kept.append(grid)
        out.copy_(self._down(grid)[:, :, : out.shape[2], : out.shape[3]])

    def _down(self, grid):
        d = self.down
        if self.down_1d is None:
            return self._dw(grid, self.down_full, stride=d)
        fx, fy = self.down_1d
        return self._dw(self._dw(grid, fy, stride=(d, 1)), fx, stride=(1, d))

    def _down_t(self, dz, size):
        """The transpose of `_down` for the output gradient dz, zero-padded to the grid's size
        (the samples no output read)."""
        d, c = self.down, dz.shape[1]

        def t(g, k, stride):
            return F.conv_transpose2d(g, self._weight(c, k, g.dtype), stride=stride, groups=c)

        if self.down_1d is None:
            ga = t(dz, self.down_full, d)
        else:
            fx, fy = self.down_1d
            ga = t(t(dz, fx, (1, d)), fy, (d, 1))
        return _pad(ga, 0, size[1] - ga.shape[3], 0, size[0] - ga.shape[2])

    def _grid_backward(self, dz, out, kept):
        u, c = self.up, dz.shape[1]
        (cy, cx), (fx, fy) = self.up_crop, self.up_1d
        (grid,) = kept
        ga = self._activation_backward(self._down_t(dz, grid.shape[2:]), grid)
        ga = F.conv2d(ga, self._weight(c, fy, ga.dtype), stride=(u, 1), padding=(cy, 0), groups=c)
        out.copy_(F.conv2d(ga, self._weight(c, fx, ga.dtype), stride=(1, u), padding=(0, cx), groups=c))


class _FilteredLReLUFunction(torch.autograd.Function):
    """A FilteredLReLUPlan with a hand-written backward pass (autograd would record every
    slice, padding, activation and concatenation of the fast path, and keep them all)."""

    @staticmethod
    def forward(ctx, x, b, plan):
        kept = []
        out = plan.forward(x, b, kept)
        ctx.plan, ctx.kept, ctx.x_shape, ctx.has_b = plan, kept, x.shape, b is not None
        return out

    @staticmethod
    def backward(ctx, dz):
        dx = ctx.plan.backward(dz, ctx.kept, ctx.x_shape)
        ctx.kept = None
        db = dx.sum(dim=[0, 2, 3]) if ctx.has_b and ctx.needs_input_grad[1] else None
        return dx, db, None


def filtered_lrelu_ref(x, fu=None, fd=None, b=None, up=1, down=1, padding=0, gain=SQRT2, slope=0.2,
                       clamp=None, flip_filter=False):
    """The official reference sequence, step by step (slow; used to check the fast path)."""
    px0, px1, py0, py1 = _parse_padding(padding)
    x = bias_act(x, b)
    x = upfirdn2d(x, fu, up=up, padding=[px0, px1, py0, py1], gain=up**2, flip_filter=flip_filter)
    x = bias_act(x, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
    x = upfirdn2d(x, fd, down=down, flip_filter=flip_filter)
    return x


# ----------------------------------------------------------------------------------------------
# Modulated convolution


def modulate(weight, styles, demodulate=True, input_gain=None, prenormalize=False):
    """Per-sample weights [N, O, I, kh, kw] and the demodulation coefficients [N, O]."""
    if prenormalize:
        # StyleGAN3 normalises weight and styles first; demodulation cancels the scale
        # exactly in real arithmetic, and this keeps the rounding the same as the original.
        weight = weight * weight.square().mean([1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()
    w = weight.unsqueeze(0) * styles.reshape(styles.shape[0], 1, -1, 1, 1)
    dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt() if demodulate else None
    return w, dcoefs
