"""torch.nn.functional's vision layers, made of cygrad's ops: pixel_shuffle and pixel_unshuffle
(reshape, permute), interpolate in modes 'nearest', 'nearest-exact' (index_select along each
spatial dim), 'linear', 'bilinear', 'trilinear' (two index_selects and a weighted sum per dim,
last dim first, as torch's kernel nests them; torch's
source indices and weights computed as its CPU kernels do, in float32 for float32 inputs),
'area' (adaptive average pooling, as torch), and
unfold / fold (ops/fold.py, the convolution's im2col/col2im kernels). Their gradients are those
ops' gradients; every output element is computed the same way wherever it sits, so an image
gives the same bits alone or in a batch.
"""

import math
import numbers
import warnings

import numpy as np

from .. import dtypes
from ..ops import fold as _fold
from ..ops.shape import where as _where
from ..tensor import Tensor, _wrap, apply

__all__ = ["pixel_shuffle", "pixel_unshuffle", "interpolate", "upsample", "upsample_nearest",
           "upsample_bilinear", "unfold", "fold", "affine_grid", "grid_sample"]


def _tensor(t, name, where, position=1):
    if not isinstance(t, Tensor):
        raise TypeError(f"{where}(): argument '{name}' (position {position}) must be Tensor, "
                        f"not {type(t).__name__}")


def _int(value, name, where):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{where}(): argument '{name}' must be int, not {type(value).__name__}")
    return int(value)


# ---------------------------------------------------------------------- pixel shuffle

def pixel_shuffle(input, upscale_factor):
    """(*, C*r*r, H, W) -> (*, C, H*r, W*r): out[..., c, h*r + i, w*r + j] =
    in[..., c*r*r + i*r + j, h, w]."""
    _tensor(input, "input", "pixel_shuffle")
    r = _int(upscale_factor, "upscale_factor", "pixel_shuffle")
    if input.dim() < 3:
        raise RuntimeError(f"pixel_shuffle expects input to have at least 3 dimensions, but got "
                           f"input with {input.dim()} dimension(s)")
    if r <= 0:
        raise RuntimeError(f"pixel_shuffle expects a positive upscale_factor, but got {r}")
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise RuntimeError(f"pixel_shuffle expects its input's 'channel' dimension to be "
                           f"divisible by the square of upscale_factor, but input.size(-3)={c} "
                           f"is not divisible by {r * r}")
    k = len(lead)
    x = input.reshape(*lead, c // (r * r), r, r, h, w)
    x = x.permute(*range(k), k, k + 3, k + 1, k + 4, k + 2)
    return x.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input, downscale_factor):
    """(*, C, H*r, W*r) -> (*, C*r*r, H, W), the inverse of pixel_shuffle."""
    _tensor(input, "input", "pixel_unshuffle")
    r = _int(downscale_factor, "downscale_factor", "pixel_unshuffle")
    if input.dim() < 3:
        raise RuntimeError(f"pixel_unshuffle expects input to have at least 3 dimensions, but "
                           f"got input with {input.dim()} dimension(s)")
    if r <= 0:
        raise RuntimeError(f"pixel_unshuffle expects a positive downscale_factor, but got {r}")
    *lead, c, h, w = input.shape
    for what, size in (("height", h), ("width", w)):
        if size % r:
            raise RuntimeError(f"pixel_unshuffle expects {what} to be divisible by "
                               f"downscale_factor, but input.size({-2 if what == 'height' else -1})"
                               f"={size} is not divisible by {r}")
    k = len(lead)
    x = input.reshape(*lead, c, h // r, r, w // r, r)
    x = x.permute(*range(k), k, k + 2, k + 4, k + 1, k + 3)
    return x.reshape(*lead, c * r * r, h // r, w // r)


# ---------------------------------------------------------------------- interpolate

_NEAREST = ("nearest", "nearest-exact")
_F32 = np.float32


def _scale_value(scale, in_size, out_size, ft):
    """torch's compute_scales_value<ft>: 1 / scale when a positive scale was given, else
    in_size / out_size, in ft arithmetic."""
    if scale is not None and scale > 0:
        return ft(1.0 / scale)
    return ft(in_size) / ft(out_size)


def _nearest_index(mode, in_size, out_size, scale):
    """The source index of each output position, as torch's CPU kernel computes it
    (nearest_neighbor_[exact_]compute_source_index, the scale in float32 for every dtype)."""
    i = np.arange(out_size, dtype=np.int64)
    s = _scale_value(scale, in_size, out_size, _F32)
    if mode == "nearest":
        src = np.floor(i.astype(_F32) * s)
    else:
        src = np.floor(((i + 0.5) * np.float64(s)).astype(_F32))
    return np.minimum(src.astype(np.int64), in_size - 1)


def _linear_weights(in_size, out_size, align_corners, scale, ft):
    """torch's compute_source_index_and_lambda for each output position, in ft arithmetic:
    (index0, index1, lambda0, lambda1)."""
    i = np.arange(out_size, dtype=np.int64)
    if out_size == in_size:
        return i, i, np.ones(out_size, ft), np.zeros(out_size, ft)
    if align_corners:
        ratio = ft(in_size - 1) / ft(out_size - 1) if out_size > 1 else ft(0)
        real = ratio * i.astype(ft)
    else:
        ratio = _scale_value(scale, in_size, out_size, ft)
        real = np.float64(ratio) * (i + 0.5) - 0.5  # (double literals: double arithmetic)
        real = np.where(real < 0, 0.0, real).astype(ft)
    i0 = np.minimum(np.floor(real).astype(np.int64), in_size - 1)
    lambda1 = np.minimum(np.maximum(real - i0.astype(ft), ft(0)), ft(1)).astype(ft)
    i1 = i0 + (i0 < in_size - 1)
    return i0, i1, (ft(1) - lambda1).astype(ft), lambda1


def _cubic_near(x, a):
    """UpSample.h's cubic_convolution1 (|x| <= 1), in x's dtype."""
    one = x.dtype.type(1)
    return ((a + 2 * one) * x - (a + 3 * one)) * x * x + one


def _cubic_far(x, a):
    """UpSample.h's cubic_convolution2 (1 < |x| < 2), in x's dtype."""
    one = x.dtype.type(1)
    return ((a * x - 5 * one * a) * x + 8 * one * a) * x - 4 * one * a


def _cubic_weights(in_size, out_size, align_corners, scale, ft):
    """torch's cubic indices and weights (UpSample.h: area_pixel_compute_source_index with
    cubic=True, guard_index_and_lambda, get_cubic_upsample_coefficients with A = -0.75), in ft
    arithmetic: four (index, weight) pairs per output position, the indices clamped to the
    input (its border repeats)."""
    i = np.arange(out_size, dtype=np.int64)
    if align_corners:
        ratio = ft(in_size - 1) / ft(out_size - 1) if out_size > 1 else ft(0)
        real = (ratio * i.astype(ft)).astype(ft)
    else:  # (unclamped below 0: cubic)
        ratio = _scale_value(scale, in_size, out_size, ft)
        real = (ratio * (i.astype(ft) + ft(0.5)) - ft(0.5)).astype(ft)
    i0 = np.minimum(np.floor(real).astype(np.int64), in_size - 1)
    t = np.minimum(np.maximum(real - i0.astype(ft), ft(0)), ft(1)).astype(ft)
    a = ft(-0.75)
    u = (ft(1) - t).astype(ft)
    weights = [_cubic_far((t + ft(1)).astype(ft), a), _cubic_near(t, a), _cubic_near(u, a),
               _cubic_far((u + ft(1)).astype(ft), a)]
    return [(np.clip(i0 - 1 + j, 0, in_size - 1), w.astype(ft)) for j, w in enumerate(weights)]


def _aa_weights(in_size, out_size, align_corners, scale, ft, mode):
    """torch's antialiased taps (UpSampleKernel.cpp, _compute_indices_min_size_weights_aa):
    a filter as wide as the scale when downsampling (the triangle for bilinear, Keys' cubic
    with a = -0.5 for bicubic), its weights normalised per output position; as (index,
    weight) pairs, a weight 0 past each position's own taps."""
    if align_corners:
        s = ft(in_size - 1) / ft(out_size - 1) if out_size > 1 else ft(0)
    else:
        s = _scale_value(scale, in_size, out_size, ft)
    half = 1.0 if mode == "bilinear" else 2.0  # interp_size / 2
    support = ft(half * s) if s >= 1.0 else ft(half)
    invscale = ft(1.0 / s) if s >= 1.0 else ft(1)
    taps = int(math.ceil(support)) * 2 + 1
    i = np.arange(out_size)
    center = (np.float64(s) * (i + 0.5)).astype(ft)
    xmin = np.maximum((center - support + 0.5).astype(np.int64), 0)
    xsize = np.clip(np.minimum((center + support + 0.5).astype(np.int64), in_size) - xmin, 0,
                    taps)
    j = np.arange(taps)[:, None]
    x = np.abs(((j + xmin - center).astype(ft) + 0.5) * invscale).astype(ft)
    if mode == "bilinear":
        w = np.where(x < 1, ft(1) - x, ft(0))
    else:  # Keys' cubic with a = -0.5 (torch's antialias filter)
        a = ft(-0.5)
        w = np.where(x < 1, _cubic_near(x, a), np.where(x < 2, _cubic_far(x, a), ft(0)))
    w = np.where(j < xsize, w, ft(0)).astype(ft)
    total = np.zeros(out_size, ft)
    for row in w:  # (torch sums its weights in order)
        total = (total + row).astype(ft)
    w = np.where(total != 0, w / np.where(total != 0, total, ft(1)), w).astype(ft)
    return [(np.minimum(xmin + k, in_size - 1), w[k]) for k in range(taps)]


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) or (
        isinstance(v, Tensor) and v.dim() == 0 and not v.is_floating_point())


def _float_scale(s):
    if isinstance(s, Tensor) or isinstance(s, bool) or not isinstance(s, numbers.Real):
        raise TypeError(f"interpolate(): scale_factor must be a float or a sequence of floats, "
                        f"not {type(s).__name__}")
    return float(s)


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resample the spatial dims (all but the first two) of input to `size` or by
    `scale_factor`. Modes 'nearest' and 'nearest-exact' (3-D, 4-D, 5-D input), 'linear' (3-D),
    'bilinear' (4-D) and 'trilinear' (5-D), with torch's source indices and weights, and 'area'
    (3-D, 4-D, 5-D: adaptive average pooling, as torch) and 'bicubic' (4-D: torch's cubic
    convolution, A = -0.75, the border repeated); antialias=True (bilinear, bicubic: torch's
    filters widened by the downsampling scale)."""
    _tensor(input, "input", "interpolate")
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError("align_corners option can only be set with the interpolating "
                             "modes: linear | bilinear | bicubic | trilinear")
    elif align_corners is None:
        align_corners = False
    dim = input.dim() - 2
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        scale_factors = None
        if isinstance(size, (list, tuple)):
            if len(size) != dim:
                raise ValueError(f"Input and output must have the same number of spatial "
                                 f"dimensions, but got input with spatial dimensions of "
                                 f"{list(input.shape[2:])} and output size of {size}. Please "
                                 f"provide input tensor in (N, C, d1, d2, ...,dK) format and "
                                 f"output size in (o1, o2, ...,oK) format.")
            if not all(_is_int(s) for s in size):
                raise TypeError(f"expected size to be one of int or Tuple[int] or Tuple[int, "
                                f"int] or Tuple[int, int, int], but got size with types "
                                f"{[type(s) for s in size]}")
            output_size = [int(s) for s in size]
        else:
            output_size = [int(size)] * dim
    elif scale_factor is not None:
        output_size = None
        if isinstance(scale_factor, (list, tuple)):
            if len(scale_factor) != dim:
                raise ValueError(f"Input and scale_factor must have the same number of spatial "
                                 f"dimensions, but got input with spatial dimensions of "
                                 f"{list(input.shape[2:])} and scale_factor of shape "
                                 f"{scale_factor}. Please provide input tensor in (N, C, d1, "
                                 f"d2, ...,dK) format and scale_factor in (s1, s2, ...,sK) "
                                 f"format.")
            scale_factors = [_float_scale(s) for s in scale_factor]
        else:
            scale_factors = [_float_scale(scale_factor)] * dim
    else:
        raise ValueError("either size or scale_factor should be defined")
    if recompute_scale_factor and size is not None:
        raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
    if mode == "area" and output_size is None:
        recompute_scale_factor = True
    if recompute_scale_factor:
        output_size = [math.floor(float(input.shape[i + 2]) * scale_factors[i])
                       for i in range(dim)]
        scale_factors = None
    if antialias and not (mode in ("bilinear", "bicubic") and input.dim() == 4):
        raise ValueError("Anti-alias option is restricted to bilinear and bicubic modes and "
                         "requires a 4-D tensor as input")
    supported = {"nearest": (3, 4, 5), "nearest-exact": (3, 4, 5), "linear": (3,),
                 "bilinear": (4,), "bicubic": (4,), "trilinear": (5,), "area": (3, 4, 5)}
    if mode in ("linear", "bilinear", "trilinear") and input.dim() in (3, 4, 5) and \
            input.dim() not in {"linear": (3,), "bilinear": (4,), "trilinear": (5,)}[mode]:
        need = {"linear": 3, "bilinear": 4, "trilinear": 5}[mode]
        raise NotImplementedError(f"Got {input.dim()}D input, but {mode} mode needs {need}D "
                                  f"input")
    if mode not in supported:
        raise NotImplementedError(f"Input Error: Only 3D, 4D and 5D input Tensors supported "
                                  f"(got {input.dim()}D) for the modes: nearest | linear | "
                                  f"bilinear | bicubic | trilinear | area | nearest-exact (got "
                                  f"{mode}); cygrad implements interpolate(mode=...) for "
                                  f"nearest, nearest-exact, linear, bilinear, bicubic, "
                                  f"trilinear and area")
    if input.dim() not in supported[mode]:
        raise NotImplementedError(f"Input Error: Only 3D, 4D and 5D input Tensors supported "
                                  f"(got {input.dim()}D) for the modes: nearest | linear | "
                                  f"bilinear | bicubic | trilinear | area | nearest-exact (got "
                                  f"{mode})")
    in_sizes = list(input.shape[2:])
    if output_size is None:
        output_size = [int(in_sizes[i] * scale_factors[i]) for i in range(dim)]
    for a, b in zip(in_sizes, output_size):
        if a <= 0 or b <= 0:
            axes = "DHW"[3 - dim:]
            raise RuntimeError(
                "Input and output sizes should be greater than 0, but got input ("
                + ", ".join(f"{axes[j]}: {in_sizes[j]}" for j in range(dim)) + ") and output ("
                + ", ".join(f"{axes[j]}: {output_size[j]}" for j in range(dim)) + ")")
    if 0 in input.shape[1:]:
        raise RuntimeError(f"Non-empty {input.dim()}D data tensor expected but got a tensor with "
                           f"sizes {list(input.shape)}")
    name = dtypes.SCALAR_NAMES[input.dtype.name]
    scales = scale_factors or [None] * dim
    if mode == "area":  # torch: adaptive average pooling to the output size
        from . import _functional_conv as conv

        pool = (conv.adaptive_avg_pool1d, conv.adaptive_avg_pool2d,
                conv.adaptive_avg_pool3d)[dim - 1]
        return pool(input, output_size[0] if dim == 1 else tuple(output_size))
    if mode in _NEAREST:
        if not (input.is_floating_point() or input.dtype.name == "uint8"):
            raise NotImplementedError(f"\"compute_indices_weights_nearest\" not implemented "
                                      f"for '{name}'")
        x = input
        for d in range(dim - 1, -1, -1):
            idx = _nearest_index(mode, in_sizes[d], output_size[d], scales[d])
            x = x.index_select(d + 2, _wrap(idx))
        return x
    if not input.is_floating_point():
        raise NotImplementedError(f"\"upsample_{mode}{dim}d_out_frame\" not implemented for "
                                  f"'{name}'")
    ft = input._data.dtype.type
    x = input
    for d in range(dim - 1, -1, -1):  # the last dim first: torch's innermost sum
        if antialias:
            taps = _aa_weights(in_sizes[d], output_size[d], align_corners, scales[d], ft, mode)
        elif mode == "bicubic":
            taps = _cubic_weights(in_sizes[d], output_size[d], align_corners, scales[d], ft)
        else:
            i0, i1, l0, l1 = _linear_weights(in_sizes[d], output_size[d], align_corners,
                                             scales[d], ft)
            taps = [(i0, l0), (i1, l1)]
        shape = (-1,) + (1,) * (dim - 1 - d)
        y = None
        for idx, w in taps:  # sum_j x[idx_j] * w_j, in j order
            term = x.index_select(d + 2, _wrap(idx)) * _wrap(w.reshape(shape))
            y = term if y is None else y + term
        x = y
    return x


def _deprecated(name):
    warnings.warn(f"`nn.functional.{name}` is deprecated. Use `nn.functional.interpolate` "
                  "instead.", stacklevel=3)


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Deprecated in torch: interpolate(input, size, scale_factor, mode, align_corners)."""
    _deprecated("upsample")
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    """Deprecated in torch: interpolate(input, size, scale_factor, mode='nearest')."""
    _deprecated("upsample_nearest")
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    """Deprecated in torch: interpolate(..., mode='bilinear', align_corners=True)."""
    _deprecated("upsample_bilinear")
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


# ---------------------------------------------------------------------- unfold / fold

def _pair(value, name, where):
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2:
        raise RuntimeError(f"{where}: {name} must be an int or a pair of ints, got {value!r}")
    return tuple(_int(v, name, where) for v in pair)


def _block_geometry(where, kernel_size, dilation, padding, stride):
    k = _pair(kernel_size, "kernel_size", where)
    d = _pair(dilation, "dilation", where)
    p = _pair(padding, "padding", where)
    s = _pair(stride, "stride", where)
    if min(k) <= 0:
        raise RuntimeError(f"kernel size should be greater than zero, but got kernel_height: "
                           f"{k[0]} kernel_width: {k[1]}")
    if min(s) <= 0:
        raise RuntimeError(f"stride should be greater than zero, but got stride_height: {s[0]} "
                           f"stride_width: {s[1]}")
    if min(d) <= 0:
        raise RuntimeError(f"dilation should be greater than zero, but got dilation_height: "
                           f"{d[0]} dilation_width: {d[1]}")
    if min(p) < 0:
        raise RuntimeError(f"padding should be non-negative, but got pad_height: {p[0]} "
                           f"pad_width: {p[1]}")
    return k, d, p, s


def _blocks(size, k, d, p, s):
    return tuple((size[i] + 2 * p[i] - (d[i] * (k[i] - 1) + 1)) // s[i] + 1 for i in range(2))


def _float(input, where):
    if not input.is_floating_point():
        raise NotImplementedError(f"\"{where}\" not implemented for "
                                  f"'{dtypes.SCALAR_NAMES[input.dtype.name]}'")


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """The sliding blocks of input (N, C, H, W) or (C, H, W) as columns: (N, C*kh*kw, L), L the
    number of blocks, entry (c, i, j) of block (oy, ox) the pixel
    (oy*sh + i*dh - ph, ox*sw + j*dw - pw) of channel c (0 in the padding)."""
    _tensor(input, "input", "unfold")
    k, d, p, s = _block_geometry("unfold", kernel_size, dilation, padding, stride)
    if input.dim() < 3:
        raise IndexError(f"Dimension out of range (expected to be in range of "
                         f"[{-input.dim()}, {input.dim() - 1}], but got {input.dim()})")
    if input.dim() > 4 or 0 in input.shape[1:]:
        raise RuntimeError(f"Expected 3D or 4D (batch mode) tensor with possibly 0 batch size "
                           f"and other non-zero dimensions for input, but got: "
                           f"{list(input.shape)}")
    if input.dtype.name == "bool":  # 0/1 blocks: exact in float64
        return unfold(input.double(), kernel_size, dilation, padding, stride) != 0
    _float(input, "im2col")
    x = input if input.dim() == 4 else input.unsqueeze(0)
    out = _blocks(x.shape[2:], k, d, p, s)
    if min(out) < 1:
        raise RuntimeError(f"Given input with spatial size {tuple(x.shape[2:])}, kernel_size="
                           f"{k}, dilation={d}, padding={p}, calculated shape of the array of "
                           f"sliding blocks as {out}, but its components must be at least one.")
    y = apply(_fold.Unfold, x, kernel=k, stride=s, padding=p, dilation=d, out_size=out)
    return y if input.dim() == 4 else y.squeeze(0)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """The adjoint of unfold: block columns (N, C*kh*kw, L) or (C*kh*kw, L) summed back into an
    image (N, C, H, W) or (C, H, W) of output_size (H, W)."""
    _tensor(input, "input", "fold")
    size = _pair(output_size, "output_size", "fold")
    k, d, p, s = _block_geometry("fold", kernel_size, dilation, padding, stride)
    if min(size) <= 0:
        raise RuntimeError(f"Expected output spatial size to be positive, but got: "
                           f"output_height={size[0]}, output_width={size[1]}")
    if input.dim() not in (2, 3) or 0 in input.shape[-2:]:
        raise RuntimeError(f"Expected 2D or 3D (batch mode) tensor for input with possibly 0 "
                           f"batch size and non-zero dimensions for input, but got: "
                           f"{list(input.shape)}")
    if input.dtype.name == "bool":  # torch's bool sum: any of the entries
        return fold(input.double(), output_size, kernel_size, dilation, padding, stride) != 0
    _float(input, "col2im")
    x = input if input.dim() == 3 else input.unsqueeze(0)
    n, ck, length = x.shape
    if ck % (k[0] * k[1]):
        raise RuntimeError(f"Expected size of input's dimension 1 to be divisible by the product "
                           f"of kernel_size, but got input.size(1)={ck} and kernel_size={k}.")
    out = _blocks(size, k, d, p, s)
    if min(out) < 1 or out[0] * out[1] != length:
        raise RuntimeError(f"Given output_size={size}, kernel_size={k}, dilation={d}, padding="
                           f"{p}, stride={s}, expected size of input's dimension 2 to match the "
                           f"calculated number of sliding blocks {out[0]} * {out[1]} = "
                           f"{out[0] * out[1]}, but got input.size(2)={length}.")
    y = apply(_fold.Fold, x, kernel=k, stride=s, padding=p, dilation=d, out_size=out,
              y_shape=(n, ck // (k[0] * k[1])) + size)
    return y if input.dim() == 3 else y.squeeze(0)



# ---------------------------------------------------------------------- spatial transformers

def _align(align_corners, where):
    if align_corners is None:
        warnings.warn("Default grid_sample and affine_grid behavior has changed to "
                      "align_corners=False since 1.3.0. Please specify align_corners=True if "
                      "the old behavior is desired. See the documentation of grid_sample for "
                      "details.", stacklevel=3)
        return False
    return bool(align_corners)


def _base_coords(steps, align_corners, dtype):
    """torch's linspace_from_neg_one, bit for bit: linspace(-1, 1, steps) as torch computes it
    (step = 2 / (steps - 1) in the dtype; point i = -1 + step * i rounded once for the first
    half, 1 - step * (steps - 1 - i) for the rest), then, for pixel centres (not
    align_corners), times (steps - 1) and divided by steps, each rounded; 0 for one step."""
    from fractions import Fraction

    if steps <= 1:
        return np.zeros(max(steps, 0), dtype)
    kind = np.dtype(dtype).type
    step = kind(kind(2.0) / kind(steps - 1))
    exact = Fraction(float(step))
    half = steps // 2
    points = np.array([float(-1 + exact * i) if i < half else
                       float(1 - exact * (steps - 1 - i)) for i in range(steps)])
    points = points.astype(dtype)  # one rounding: the float64 value is exact for float32
    if not align_corners:
        points = (points * kind(steps - 1)) / kind(steps)
    return points


def affine_grid(theta, size, align_corners=None):
    """The sampling grid of 2-D affine transforms theta (N, 2, 3) for an output of size
    (N, C, H, W): (N, H, W, 2), each point theta @ (x, y, 1) for the output pixel's
    normalised coordinates (x along W, y along H, in [-1, 1]). 5-D sizes (3-D transforms)
    are not built yet."""
    _tensor(theta, "theta", "affine_grid")
    align_corners = _align(align_corners, "affine_grid")
    size = tuple(int(s) for s in size)
    if len(size) == 5:
        raise NotImplementedError("affine_grid for volumes (a 5-D size, 3-D transforms) is not "
                                  "implemented in cygrad yet")
    if len(size) != 4:
        raise NotImplementedError(f"affine_grid only supports 4D and 5D sizes, for 2D and 3D "
                                  f"affine transforms, respectively. Got size {list(size)}.")
    if not theta.is_floating_point():
        raise ValueError(f"Expected theta to have floating point type, but got "
                         f"{theta.dtype}")
    n, _, h, w = size
    if theta.dim() != 3 or tuple(theta.shape[1:]) != (2, 3):
        raise ValueError(f"Expected a batch of 2D affine matrices of shape Nx2x3 for size "
                         f"{list(size)}. Got {list(theta.shape)}.")
    if min(size) <= 0:
        raise ValueError(f"Expected non-zero, positive output size. Got {list(size)}")
    if align_corners and min(size[2:]) == 1:
        warnings.warn("Since version 1.3.0, affine_grid behavior has changed for unit-size "
                      "grids when align_corners=True. This is not an intended use case of "
                      "affine_grid. See the documentation of affine_grid for details.",
                      stacklevel=2)
    dtype = theta._data.dtype
    xs, ys = _base_coords(w, align_corners, dtype), _base_coords(h, align_corners, dtype)
    base = np.empty((h, w, 3), dtype)
    base[..., 0] = xs[None, :]
    base[..., 1] = ys[:, None]
    base[..., 2] = 1
    base = _wrap(np.ascontiguousarray(np.broadcast_to(base.reshape(1, h * w, 3),
                                                      (n, h * w, 3))))
    return (base @ theta.transpose(1, 2)).reshape(n, h, w, 2)


def _unnormalize(coord, size, align_corners):
    if align_corners:
        return (coord + 1) / 2 * (size - 1)
    return ((coord + 1) * size - 1) / 2


def _reflect(coord, twice_low, twice_high):
    """torch's reflect_coordinates: coord folded into [low, high] by reflections."""
    if twice_low == twice_high:
        return coord * 0
    low, span = twice_low / 2, (twice_high - twice_low) / 2
    coord = (coord - low).abs()
    extra = coord.fmod(span)
    flips = (coord.detach() / span).floor()
    return _where(flips.fmod(2) == 0, extra + low, span - extra + low)


def _source_index(coord, size, padding_mode, align_corners):
    coord = _unnormalize(coord, size, align_corners)
    if padding_mode == "border":
        coord = coord.clamp(0, size - 1)
    elif padding_mode == "reflection":
        if align_corners:
            coord = _reflect(coord, 0, 2 * (size - 1))
        else:
            coord = _reflect(coord, -1, 2 * size - 1)
        coord = coord.clamp(0, size - 1)
    return coord


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """input (N, C, H, W) sampled at grid (N, H_out, W_out, 2) (x, y normalised to [-1, 1]):
    (N, C, H_out, W_out). mode "bilinear" (the four neighbours, weighted; gradients for input
    and grid) or "nearest" (half to even; no gradient for grid, as torch's); padding_mode
    "zeros", "border" or "reflection", as torch's. Each output is the same sequence of
    operations (the corners in torch's order: nw, ne, sw, se). 5-D input and mode "bicubic"
    are not built yet."""
    _tensor(input, "input", "grid_sample")
    _tensor(grid, "grid", "grid_sample", 2)
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"nn.functional.grid_sample(): expected mode to be 'bilinear', "
                         f"'nearest' or 'bicubic', but got: '{mode}'")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"nn.functional.grid_sample(): expected padding_mode to be 'zeros', "
                         f"'border', or 'reflection', but got: '{padding_mode}'")
    align_corners = _align(align_corners, "grid_sample")
    if input.dim() == 5 or mode == "bicubic":
        what = "5-D input" if input.dim() == 5 else "mode=bicubic"
        raise NotImplementedError(f"grid_sample with {what} is not implemented in cygrad yet")
    if input.dim() != 4 or grid.dim() != 4 or grid.shape[-1] != 2 or \
            grid.shape[0] != input.shape[0]:
        raise RuntimeError(f"grid_sample(): expected 4D input (N, C, H, W) and grid "
                           f"(N, H_out, W_out, 2) with the same N, but got input of shape "
                           f"{list(input.shape)} and grid of shape {list(grid.shape)}")
    if input.dtype != grid.dtype:
        raise RuntimeError(f"grid_sample(): expected input and grid to have same dtype, but "
                           f"input has {input.dtype} and grid has {grid.dtype}")
    n, c, h, w = input.shape
    ho, wo = grid.shape[1], grid.shape[2]
    ix = _source_index(grid[..., 0], w, padding_mode, align_corners)
    iy = _source_index(grid[..., 1], h, padding_mode, align_corners)
    flat = input.reshape(n, c, h * w)

    def corner(x, y):
        """input at integer (x, y) (arrays (N, H_out, W_out)), 0 outside the image."""
        inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
        index = np.where(inside, y * w + x, 0).astype(np.int64).reshape(n, 1, ho * wo)
        values = flat.gather(2, _wrap(np.ascontiguousarray(np.broadcast_to(
            index, (n, c, ho * wo)))))
        mask = _wrap(inside.reshape(n, 1, ho * wo))
        return values.masked_fill(~mask, 0).reshape(n, c, ho, wo)

    if mode == "nearest":
        x = np.round(ix._data).astype(np.int64)  # nearbyint: half to even
        y = np.round(iy._data).astype(np.int64)
        return corner(x, y)
    x0 = ix.detach().floor()
    y0 = iy.detach().floor()
    x1, y1 = x0 + 1, y0 + 1
    nw = (x1 - ix) * (y1 - iy)
    ne = (ix - x0) * (y1 - iy)
    sw = (x1 - ix) * (iy - y0)
    se = (ix - x0) * (iy - y0)
    xa, ya = x0._data.astype(np.int64), y0._data.astype(np.int64)
    out = corner(xa, ya) * nw.unsqueeze(1)
    out = out + corner(xa + 1, ya) * ne.unsqueeze(1)
    out = out + corner(xa, ya + 1) * sw.unsqueeze(1)
    return out + corner(xa + 1, ya + 1) * se.unsqueeze(1)
