"""cygrad.nn.functional: the layers' operations as functions (PyTorch's names and arguments)."""

import numpy as np

from .. import random as _random
from ..ops import layers as L
from ..ops import losses
from ..tensor import Tensor, _check_same_dtype, apply

_REDUCTIONS = ("mean", "sum", "none")


def _tensor_input(x, name, ndim=None):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} expects a cygrad Tensor, got {type(x).__name__}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} expects a {ndim}-D input, got shape {x.shape}")


def linear(x, weight, bias=None):
    """y = x @ weight.T + bias; x (..., in), weight (out, in), bias (out,)."""
    _tensor_input(x, "linear")
    _check_same_dtype(x, weight)
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {x.shape} does not fit weight of shape "
                         f"{weight.shape} (expected last dimension {weight.shape[-1]})")
    if bias is None:
        return apply(L.Linear, x, weight)
    _check_same_dtype(x, bias)
    if bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias of shape {bias.shape} for weight {weight.shape}")
    return apply(L.Linear, x, weight, bias)


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """Cross-correlation of x (N, C, H, W) with weight (O, C, kh, kw) -> (N, O, OH, OW)."""
    _tensor_input(x, "conv2d")
    _check_same_dtype(x, weight)
    if x.ndim != 4:
        raise ValueError(f"conv2d expects input (N, C, H, W), got shape {x.shape}")
    if weight.ndim != 4 or weight.shape[1] != x.shape[1]:
        raise ValueError(f"conv2d: input with {x.shape[1]} channels (shape {x.shape}) does not "
                         f"fit weight of shape {weight.shape}")
    if int(stride) != stride or stride < 1:
        raise ValueError(f"conv2d: stride must be a positive integer, got {stride}")
    if int(padding) != padding or padding < 0:
        raise ValueError(f"conv2d: padding must be a non-negative integer, got {padding}")
    kh, kw = weight.shape[2:]
    if x.shape[2] + 2 * padding < kh or x.shape[3] + 2 * padding < kw:
        raise ValueError(f"conv2d: kernel {kh}x{kw} is larger than the padded input "
                         f"{x.shape[2] + 2 * padding}x{x.shape[3] + 2 * padding}")
    inputs = (x, weight) if bias is None else (x, weight, bias)
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"conv2d: bias of shape {bias.shape} for weight {weight.shape}")
    return apply(L.Conv2d, *inputs, stride=int(stride), padding=int(padding))


def _pool(op, x, kernel_size, stride, name):
    _tensor_input(x, name, ndim=4)
    stride = kernel_size if stride is None else stride
    if kernel_size < 1 or stride < 1:
        raise ValueError(f"{name}: kernel_size and stride must be >= 1, got {kernel_size}, "
                         f"{stride}")
    if x.shape[2] < kernel_size or x.shape[3] < kernel_size:
        raise ValueError(f"{name}: kernel {kernel_size} is larger than the input {x.shape}")
    return apply(op, x, kernel_size=kernel_size, stride=stride)


def max_pool2d(x, kernel_size, stride=None):
    return _pool(L.MaxPool2d, x, kernel_size, stride, "max_pool2d")


def avg_pool2d(x, kernel_size, stride=None):
    return _pool(L.AvgPool2d, x, kernel_size, stride, "avg_pool2d")


def dropout(x, p=0.5, training=True):
    """Zero each element with probability p and scale the rest by 1/(1-p) (training only)."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    return apply(L.Dropout, x, p=p, generator=_random.generator())


def relu(x):
    return x.relu()


def leaky_relu(x, negative_slope=0.01):
    return x.leaky_relu(negative_slope)


def tanh(x):
    return x.tanh()


def sigmoid(x):
    return x.sigmoid()


def softmax(x, dim=-1):
    return x.softmax(dim)


def log_softmax(x, dim=-1):
    return x.log_softmax(dim)


def _check_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def mse_loss(input, target, reduction="mean"):
    """mean((input - target)**2) (or the sum, or per element)."""
    _check_reduction(reduction)
    target = target if isinstance(target, Tensor) else Tensor(np.asarray(target, input.dtype))
    if target.shape != input.shape:
        raise ValueError(f"mse_loss: input of shape {input.shape} and target of shape "
                         f"{target.shape} differ")
    squared = (input - target) ** 2
    return squared.mean() if reduction == "mean" else squared.sum() if reduction == "sum" \
        else squared


def cross_entropy(input, target, reduction="mean"):
    """-log_softmax(input)[target]; input (N, C) logits, target (N,) integer class indices."""
    _check_reduction(reduction)
    _tensor_input(input, "cross_entropy", ndim=2)
    target = np.asarray(target.data if isinstance(target, Tensor) else target)
    if target.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: targets must be integer class indices, got dtype "
                        f"{target.dtype}")
    if target.shape != (input.shape[0],):
        raise ValueError(f"cross_entropy: input of shape {input.shape} needs targets of shape "
                         f"({input.shape[0]},), got {target.shape}")
    bad = (target < 0) | (target >= input.shape[1])
    if bad.any():
        raise ValueError(f"cross_entropy: class index {target[bad][0]} out of range for "
                         f"{input.shape[1]} classes")
    return apply(losses.CrossEntropy, input, targets=np.ascontiguousarray(target, np.intp),
                 reduction=reduction)


def binary_cross_entropy_with_logits(input, target, reduction="mean"):
    """BCE(sigmoid(input), target) in the stable form; target of input's shape, in [0, 1]."""
    _check_reduction(reduction)
    target = np.asarray(target.data if isinstance(target, Tensor) else target, input.dtype)
    if target.shape != input.shape:
        raise ValueError(f"binary_cross_entropy_with_logits: input of shape {input.shape} and "
                         f"target of shape {target.shape} differ")
    return apply(losses.BCEWithLogits, input, targets=target, reduction=reduction)
