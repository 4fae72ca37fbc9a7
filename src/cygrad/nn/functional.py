"""cygrad.nn.functional: the layers' operations as functions (PyTorch's names and arguments).

Arguments are checked here, before any kernel runs, and errors name the shapes, dtypes and
values involved.
"""

import numbers

import numpy as np

from .. import random as _random
from ..ops import elementwise, losses, registry  # noqa: F401  (they register the table)
from ..ops import layers as L
from ..ops import reduction as _reduction  # noqa: F401
from ..tensor import Tensor, _wrap, apply
from ._functional_conv import (  # noqa: F401  (convolution and pooling, re-exported)
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    avg_pool1d,
    avg_pool2d,
    conv1d,
    conv2d,
    max_pool1d,
    max_pool2d,
)

# The activations and the softmax family come from the op table: F.relu, F.gelu, F.softmax...
globals().update(registry.FUNCTIONAL)
from ._functional_transformer import (  # noqa: E402, I001  (the transformer layers)
    batch_norm, embedding, layer_norm, multi_head_attention_forward, scaled_dot_product_attention)

__all__ = [
    "linear", "conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d",
    "dropout", "mse_loss", "cross_entropy", "binary_cross_entropy_with_logits",
    *registry.FUNCTIONAL,
    "embedding", "layer_norm", "batch_norm", "scaled_dot_product_attention",
    "multi_head_attention_forward",
]

_REDUCTIONS = ("mean", "sum", "none")


# ---------------------------------------------------------------------- argument checks

def _size(value, name, minimum=1):
    """An integer >= minimum."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _pair(value, name, minimum=1):
    """An int or a pair of ints (height, width), each >= minimum -> a tuple of two ints."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return tuple(_size(v, name, minimum) for v in pair)


def _check_probability(p):
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p < 1:
        raise ValueError(f"dropout probability must be a number in [0, 1), got {p!r}")
    return float(p)


def _tensor_input(x, name, ndim=None):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} expects a cygrad Tensor, got {type(x).__name__}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} expects a {ndim}-D input, got shape {tuple(x.shape)}")


def _check_weights(name, x, weight, bias, weight_ndim):
    """weight (and bias) are Tensors of x's dtype; bias has shape (weight.shape[0],)."""
    dtype = x._data.dtype
    if (isinstance(weight, Tensor) and weight._data.dtype == dtype
            and weight._data.ndim == weight_ndim
            and (bias is None or (isinstance(bias, Tensor) and bias._data.dtype == dtype
                                  and bias._data.shape == weight._data.shape[:1]))):
        return  # the common case, checked in one expression (this runs on every layer call)
    for what, t in (("weight", weight), ("bias", bias)):
        if t is None:
            continue
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: {what} must be a cygrad Tensor, got {type(t).__name__}")
        if t.dtype != x.dtype:
            raise TypeError(f"{name}: input has dtype {x.dtype} but {what} has dtype {t.dtype}; "
                            "convert one of them (e.g. build the layer with dtype=...)")
    if weight.ndim != weight_ndim:
        raise ValueError(f"{name}: weight must be {weight_ndim}-D, got shape {tuple(weight.shape)}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"{name}: bias of shape {tuple(bias.shape)} does not fit weight of shape "
                         f"{tuple(weight.shape)} (expected ({weight.shape[0]},))")


# ---------------------------------------------------------------------- layers

def _check_linear(x, weight, bias):
    if isinstance(x, Tensor) and isinstance(weight, Tensor):
        xd, wd = x._data, weight._data
        if (wd.dtype is xd.dtype and wd.ndim == 2 and xd.ndim >= 1
                and xd.shape[-1] == wd.shape[1]
                and (bias is None or (isinstance(bias, Tensor) and bias._data.dtype is xd.dtype
                                      and bias._data.shape == wd.shape[:1]))):
            return  # the common case in one expression: this runs on every layer call
    if not isinstance(x, Tensor):
        _tensor_input(x, "linear")
    _check_weights("linear", x, weight, bias, 2)
    if x._data.ndim < 1 or x._data.shape[-1] != weight._data.shape[1]:
        raise ValueError(f"linear: input of shape {tuple(x.shape)} does not fit weight of shape "
                         f"{tuple(weight.shape)} (expected last dimension {weight.shape[1]})")


def linear(x, weight, bias=None):
    """y = x @ weight.T + bias; x (..., in), weight (out, in), bias (out,) -> (..., out)."""
    _check_linear(x, weight, bias)
    if bias is None:
        return apply(L.Linear, x, weight)
    return apply(L.Linear, x, weight, bias)


def _linear_activation(x, weight, bias, entry, params):
    """entry's activation of linear(x, weight, bias), as nn.Sequential runs a Linear followed
    by its activation module: one graph node (ops.layers.LinearActivation) whose kernels add
    the bias and activate in one pass, and give the activation's and the bias's gradients in
    one pass back. Falls back to the two ops where there is nothing to fuse."""
    _check_linear(x, weight, bias)
    if bias is None or x._data.ndim != 2:
        y = linear(x, weight, bias)
        return apply(entry.op, y, **params) if params else apply(entry.op, y)
    return apply(L.linear_activation_op(entry), x, weight, bias, **params)


def dropout(x, p=0.5, training=True):
    """Zero each element with probability p and scale the rest by 1/(1-p) (training only);
    the mask comes from cygrad.random.generator()."""
    p = _check_probability(p)
    _tensor_input(x, "dropout")
    if not training or p == 0:
        return x
    return apply(L.Dropout, x, p=p, generator=_random.generator())


# ---------------------------------------------------------------------- losses

def _check_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def mse_loss(input, target, reduction="mean"):
    """(input - target)**2, averaged (mean), summed (sum) or per element (none).
    target: a Tensor of input's dtype, or an array-like (converted to input's dtype)."""
    if reduction not in _REDUCTIONS:
        _check_reduction(reduction)
    if not isinstance(input, Tensor):
        _tensor_input(input, "mse_loss")
    if not isinstance(target, Tensor):
        target = _wrap(np.asarray(target, dtype=input._data.dtype))
    elif target._data.dtype != input._data.dtype:
        raise TypeError(f"mse_loss: input has dtype {input.dtype} but target has dtype "
                        f"{target.dtype}")
    if target._data.shape != input._data.shape:
        raise ValueError(f"mse_loss: input of shape {tuple(input.shape)} and target of shape "
                         f"{tuple(target.shape)} differ")
    return apply(losses.MSE, input, target, reduction=reduction)


def cross_entropy(input, target, reduction="mean"):
    """-log_softmax(input)[i, target[i]] per row; input (N, C) logits, target (N,) integer class
    indices (a numpy array or a list), fused in one kernel."""
    _check_reduction(reduction)
    _tensor_input(input, "cross_entropy")
    if input.ndim != 2:
        raise ValueError(f"cross_entropy expects logits of shape (N, C), got {tuple(input.shape)}")
    target = np.asarray(target._data if isinstance(target, Tensor) else target)
    if target.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: targets must be integer class indices, got dtype "
                        f"{target.dtype}")
    if target.shape != (input.shape[0],):
        raise ValueError(f"cross_entropy: input of shape {tuple(input.shape)} needs targets of "
                         f"shape ({input.shape[0]},), got {tuple(target.shape)}")
    bad = (target < 0) | (target >= input.shape[1])
    if bad.any():
        raise ValueError(f"cross_entropy: class index {target[bad][0]} (at position "
                         f"{int(np.argmax(bad))}) out of range for {input.shape[1]} classes")
    return apply(losses.CrossEntropy, input, targets=np.ascontiguousarray(target, np.intp),
                 reduction=reduction)


def binary_cross_entropy_with_logits(input, target, reduction="mean"):
    """BCE(sigmoid(input), target) in the stable form; target of input's shape, in [0, 1]."""
    _check_reduction(reduction)
    _tensor_input(input, "binary_cross_entropy_with_logits")
    target = np.asarray(target._data if isinstance(target, Tensor) else target,
                        input._data.dtype)
    if target.shape != input.shape:
        raise ValueError(f"binary_cross_entropy_with_logits: input of shape "
                         f"{tuple(input.shape)} and target of shape {tuple(target.shape)} differ")
    return apply(losses.BCEWithLogits, input, targets=target, reduction=reduction)
