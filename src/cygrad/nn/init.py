"""Weight initialisers, with PyTorch's names, formulas and in-place convention.

Each function overwrites the tensor's array in place (the array object is kept, so anything that
shares it sees the new values) and returns `t`. Nothing is recorded for autodiff: the data is
written directly, which is what torch's `with torch.no_grad()` inside its initialisers achieves.

Random values are drawn in float64 from `cygrad.random.generator()` and then rounded to the
tensor's dtype, so a float32 and a float64 model built from the same seed hold the same numbers up
to rounding, and `cygrad.manual_seed(s)` rebuilds a model bitwise.

Fans follow PyTorch's layout: a Linear weight is (out, in); a conv weight is
(out_channels, in_channels, *kernel), whose receptive field multiplies both fans.
"""

import math
import numbers
import warnings

import numpy as np

from ..random import generator
from ..tensor import Tensor

__all__ = [
    "calculate_gain", "constant_", "zeros_", "ones_", "uniform_", "normal_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_",
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
        elif isinstance(param, numbers.Real) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError(f"negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}; expected one of "
                     f"{', '.join(_LINEAR_LIKE)}, tanh, relu, leaky_relu, selu")


def _calculate_fan_in_and_fan_out(t):
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel).

    fan_in = in * prod(kernel),  fan_out = out * prod(kernel).
    """
    shape = _array(t).shape
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a tensor with at least 2 dimensions, got "
                         f"shape {shape}")
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


def _calculate_correct_fan(t, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode {mode!r} not supported, use 'fan_in' or 'fan_out'")
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
    """Write float64 values into t's array, rounding to its dtype; returns t."""
    _array(t)[...] = values
    return t


# ---------------------------------------------------------------------- plain fills and draws

def constant_(t, val):
    """t := val everywhere."""
    return _fill(t, val)


def zeros_(t):
    """t := 0."""
    return _fill(t, 0.0)


def ones_(t):
    """t := 1."""
    return _fill(t, 1.0)


def uniform_(t, a=0.0, b=1.0):
    """t ~ U(a, b), elementwise independent."""
    if not a <= b:
        raise ValueError(f"uniform_ expects a <= b, got a={a}, b={b}")
    return _fill(t, generator().uniform(a, b, size=_array(t).shape))


def normal_(t, mean=0.0, std=1.0):
    """t ~ N(mean, std**2), elementwise independent."""
    if not std >= 0:
        raise ValueError(f"normal_ expects std >= 0, got std={std}")
    return _fill(t, generator().normal(mean, std, size=_array(t).shape))


# ---------------------------------------------------------------------- variance-scaling

def xavier_uniform_(t, gain=1.0):
    """Glorot & Bengio (2010): t ~ U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std  # U(-a, a) has std a / sqrt(3)
    return uniform_(t, -bound, bound)


def xavier_normal_(t, gain=1.0):
    """Glorot & Bengio (2010): t ~ N(0, std**2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(t, 0.0, std)


def _kaiming_std(t, a, mode, nonlinearity):
    """std = gain / sqrt(fan), or None (with a warning, as torch) for a tensor with no elements."""
    fan = _calculate_correct_fan(t, mode)
    gain = calculate_gain(nonlinearity, a)
    if _array(t).size == 0:
        warnings.warn("initializing a zero-element tensor is a no-op", stacklevel=3)
        return None
    return gain / math.sqrt(fan)


def kaiming_uniform_(t, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    """He et al. (2015): t ~ U(-b, b), b = gain * sqrt(3 / fan).

    fan is fan_in (preserves the forward variance) or fan_out (the backward one); a is the
    negative slope used by leaky_relu's gain. With the defaults (a=0, leaky_relu) gain = sqrt(2).
    """
    std = _kaiming_std(t, a, mode, nonlinearity)
    if std is None:
        return t
    bound = math.sqrt(3.0) * std
    return uniform_(t, -bound, bound)


def kaiming_normal_(t, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    """He et al. (2015): t ~ N(0, std**2), std = gain / sqrt(fan)."""
    std = _kaiming_std(t, a, mode, nonlinearity)
    if std is None:
        return t
    return normal_(t, 0.0, std)


def orthogonal_(t, gain=1):
    """Saxe et al. (2013): t := gain * Q, Q a uniformly random (semi-)orthogonal matrix.

    t is viewed as (rows, cols) = (shape[0], size // shape[0]). A standard normal matrix is
    QR-factorised and Q's columns multiplied by sign(diag(R)), which makes Q Haar-distributed.
    Then Q @ Q.T = I when rows <= cols, and Q.T @ Q = I when rows >= cols.
    """
    data = _array(t)
    if data.ndim < 2:
        raise ValueError(f"orthogonal_ needs a tensor with at least 2 dimensions, got shape "
                         f"{data.shape}")
    if data.size == 0:
        return t
    rows = data.shape[0]
    cols = data.size // rows
    flat = generator().normal(0.0, 1.0, size=(rows, cols))
    if rows < cols:
        flat = flat.T  # QR of the tall matrix, transposed back below
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(t, gain * q.reshape(data.shape))
