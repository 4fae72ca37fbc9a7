"""Weight initialisers: PyTorch's names, formulas, in-place convention and random draws.

Each function overwrites the tensor's array in place (the array object is kept, so anything that
shares it sees the new values) and returns `t`. Nothing is recorded for autodiff: the data is
written directly, which is what torch's `with torch.no_grad()` inside its initialisers achieves.

Bounds and spreads are computed in Python floats exactly as torch computes them, and the draws
are torch's (`cygrad.random`), from `generator` or the calling thread's generator. So after
`cygrad.manual_seed(s)` and `torch.manual_seed(s)` the same initialiser on the same shape and
dtype writes the same bits; only orthogonal_ differs, by rounding (its QR is numpy's LAPACK).

Fans follow PyTorch's layout: a Linear weight is (out, in); a conv weight is
(out_channels, in_channels, *kernel), whose receptive field multiplies both fans.
"""

import math
import warnings

import numpy as np

from .. import random
from ..tensor import Tensor

__all__ = [
    "calculate_gain", "constant_", "zeros_", "ones_", "eye_", "dirac_", "uniform_", "normal_",
    "trunc_normal_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
    "orthogonal_", "sparse_",
]

_LINEAR_LIKE = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                "conv_transpose3d", "sigmoid")


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity (PyTorch's table).

    linear, conv*, sigmoid: 1;  tanh: 5/3;  relu: sqrt(2);  selu: 3/4;
    leaky_relu: sqrt(2 / (1 + slope**2)), slope = param (default 0.01).
    """
    if nonlinearity in _LINEAR_LIKE:
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "selu":
        return 3.0 / 4
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, float) or isinstance(param, int) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"negative_slope {param!r} not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    raise ValueError(f"Unsupported nonlinearity {nonlinearity!r}; expected one of "
                     f"{', '.join(_LINEAR_LIKE)}, tanh, relu, leaky_relu, selu")


def _calculate_fan_in_and_fan_out(t):
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel).

    fan_in = in * prod(kernel),  fan_out = out * prod(kernel).
    """
    shape = _array(t).shape
    if len(shape) < 2:
        raise ValueError(f"Fan in and fan out can not be computed for tensor with fewer than 2 "
                         f"dimensions (shape {shape})")
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


def _calculate_correct_fan(t, mode):
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of ['fan_in', 'fan_out']")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    return fan_in if mode == "fan_in" else fan_out


def _array(t):
    """The array an initialiser writes into: a Tensor's data (or a bare float array)."""
    # copy-on-write if a live graph saved the tensor's array for its backward
    data = t._writable_data() if isinstance(t, Tensor) else t
    if not isinstance(data, np.ndarray):
        raise TypeError(f"initialisers take a Tensor, got {type(t).__name__}")
    return data


def _fill(t, values):
    """Write values into t's array, rounding to its dtype; returns t."""
    _array(t)[...] = values
    return t


# ---------------------------------------------------------------------- fills

def constant_(t, val):
    """t := val everywhere."""
    return _fill(t, val)


def zeros_(t):
    """t := 0."""
    return _fill(t, 0.0)


def ones_(t):
    """t := 1."""
    return _fill(t, 1.0)


def eye_(t):
    """t := the identity (a 2-D t; ones on the main diagonal of a rectangle)."""
    data = _array(t)
    if data.ndim != 2:
        raise ValueError(f"Only tensors with 2 dimensions are supported, got shape {data.shape}")
    data[...] = np.eye(*data.shape)
    return t


def dirac_(t, groups=1):
    """t := the Dirac delta of a conv weight (out, in, *kernel) with 3 to 5 dimensions: in each
    group, filter d passes input channel d through unchanged (its kernel centre is 1)."""
    data = _array(t)
    if data.ndim not in (3, 4, 5):
        raise ValueError(f"Only tensors with 3, 4, or 5 dimensions are supported, got shape "
                         f"{data.shape}")
    if data.shape[0] % groups != 0:
        raise ValueError(f"dim 0 must be divisible by groups (dim 0 = {data.shape[0]}, "
                         f"groups = {groups})")
    per_group = data.shape[0] // groups
    centre = tuple(s // 2 for s in data.shape[2:])
    data[...] = 0
    for g in range(groups):
        for d in range(min(per_group, data.shape[1])):
            data[(g * per_group + d, d) + centre] = 1
    return t


# ---------------------------------------------------------------------- draws

def uniform_(t, a=0.0, b=1.0, generator=None):
    """t ~ U[a, b), elementwise independent (torch's uniform_ draws)."""
    random.uniform_(_array(t), a, b, generator=generator)
    return t


def normal_(t, mean=0.0, std=1.0, generator=None):
    """t ~ N(mean, std**2), elementwise independent (torch's normal_ draws)."""
    random.normal_(_array(t), mean, std, generator=generator)
    return t


def trunc_normal_(t, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """t ~ N(mean, std**2) truncated to [a, b], by rejection as torch 2.13 samples it.

    If [a, b] holds p > 0.3 of the mass: draw normal_, and while any value lies outside [a, b]
    (the bounds rounded to t's dtype) draw a whole fresh normal array and take its values there.
    Else: candidates x ~ U[a, b) accepted where log(u) <= -((x - mean)/std)**2 / 2 - log_peak,
    u ~ U[0, 1), the rejected ones redrawn (fresh uniform arrays) until none is left.
    """
    data = _array(t)
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
                      "The distribution of values may be incorrect.", stacklevel=2)

    def norm_cdf(x):
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    p = norm_cdf((b - mean) / std) - norm_cdf((a - mean) / std)
    if p > 0.3:
        low, high = data.dtype.type(a), data.dtype.type(b)
        result = random.normal_(np.empty_like(data), mean, std, generator=generator)
        while True:
            outside = (result < low) | (result > high)
            if not outside.any():
                break
            fresh = random.normal_(np.empty_like(data), mean, std, generator=generator)
            result = np.where(outside, fresh, result)
        data[...] = result
        return t
    dtype = data.dtype.type
    log_peak = -0.5 * ((max(a, min(mean, b)) - mean) / std) ** 2

    def log_pdf(x):  # torch's chain sub_(mean).div_(std).pow_(2).mul_(-0.5).sub_(log_peak)
        z = (x - dtype(mean)) / dtype(std)
        return z * z * dtype(-0.5) - dtype(log_peak)

    def rejected(x):
        u = random.uniform_(np.empty_like(data), generator=generator)
        with np.errstate(divide="ignore"):
            return np.log(u) > log_pdf(x)

    random.uniform_(data, a, b, generator=generator)
    pending = rejected(data)
    result = data.copy()
    while pending.any():
        candidates = random.uniform_(np.empty_like(data), a, b, generator=generator)
        result = np.where(pending, candidates, result)
        pending = np.where(pending, rejected(candidates), pending)
    data[...] = result
    return t


# ---------------------------------------------------------------------- variance-scaling

def xavier_uniform_(t, gain=1.0, generator=None):
    """Glorot & Bengio (2010): t ~ U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std  # U(-a, a) has std a / sqrt(3)
    return uniform_(t, -bound, bound, generator)


def xavier_normal_(t, gain=1.0, generator=None):
    """Glorot & Bengio (2010): t ~ N(0, std**2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(t, 0.0, std, generator)


def _kaiming_std(t, a, mode, nonlinearity):
    """std = gain / sqrt(fan), or None (with a warning, as torch) for a tensor with no elements."""
    if 0 in _array(t).shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return None
    fan = _calculate_correct_fan(t, mode)
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(t, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He et al. (2015): t ~ U(-b, b), b = gain * sqrt(3 / fan).

    fan is fan_in (preserves the forward variance) or fan_out (the backward one); a is the
    negative slope used by leaky_relu's gain. With the defaults (a=0, leaky_relu) gain = sqrt(2).
    """
    std = _kaiming_std(t, a, mode, nonlinearity)
    if std is None:
        return t
    bound = math.sqrt(3.0) * std
    return uniform_(t, -bound, bound, generator)


def kaiming_normal_(t, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He et al. (2015): t ~ N(0, std**2), std = gain / sqrt(fan)."""
    std = _kaiming_std(t, a, mode, nonlinearity)
    if std is None:
        return t
    return normal_(t, 0, std, generator)


def orthogonal_(t, gain=1, generator=None):
    """Saxe et al. (2013): t := gain * Q, Q a uniformly random (semi-)orthogonal matrix.

    t is viewed as (rows, cols) = (shape[0], size // shape[0]). A standard normal matrix (torch's
    draws) is QR-factorised and Q's columns multiplied by sign(diag(R)), which makes Q
    Haar-distributed. Then Q @ Q.T = I when rows <= cols, and Q.T @ Q = I when rows >= cols.
    The QR is numpy's (LAPACK in float64), so Q matches torch's to float32 rounding, not bitwise.
    """
    data = _array(t)
    if data.ndim < 2:
        raise ValueError(f"Only tensors with 2 or more dimensions are supported, got shape "
                         f"{data.shape}")
    if data.size == 0:
        return t
    rows = data.shape[0]
    cols = data.size // rows
    flat = random.normal_(np.empty((rows, cols), data.dtype), 0, 1, generator=generator)
    if rows < cols:
        flat = flat.T  # QR of the tall matrix, transposed back below
    q, r = np.linalg.qr(flat)
    q = (q * np.sign(np.diag(r))).astype(data.dtype)
    if rows < cols:
        q = q.T
    data[...] = q.reshape(data.shape) * data.dtype.type(gain)
    return t


def sparse_(t, sparsity, std=0.01, generator=None):
    """t ~ N(0, std**2) with ceil(sparsity * rows) zeros in each column of a 2-D t (Martens 2010).
    As torch, the zero rows come from randperm on the thread's default stream, not `generator`."""
    data = _array(t)
    if data.ndim != 2:
        raise ValueError(f"Only tensors with 2 dimensions are supported, got shape {data.shape}")
    rows, cols = data.shape
    zeros = math.ceil(sparsity * rows)
    random.normal_(data, 0, std, generator=generator)
    for col in range(cols):
        data[random.randperm(rows)[:zeros], col] = 0
    return t
