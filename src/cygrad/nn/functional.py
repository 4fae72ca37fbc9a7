"""cygrad.nn.functional: the layers' operations as functions (PyTorch's names and arguments).

Arguments are checked here, before any kernel runs, and errors name the shapes, dtypes and
values involved.
"""

import numbers

from ..ops import elementwise, losses, registry  # noqa: F401  (they register the table)
from ..ops import layers as L
from ..ops import reduction as _reduction  # noqa: F401
from ..tensor import Tensor, apply
from ._functional_conv import (  # noqa: F401  (convolution and pooling, re-exported)
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_avg_pool3d,
    adaptive_max_pool1d,
    adaptive_max_pool1d_with_indices,
    adaptive_max_pool2d,
    adaptive_max_pool2d_with_indices,
    adaptive_max_pool3d,
    avg_pool1d,
    avg_pool2d,
    avg_pool3d,
    conv1d,
    conv2d,
    conv3d,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
    max_pool1d,
    max_pool1d_with_indices,
    max_pool2d,
    max_pool2d_with_indices,
    max_pool3d,
)
from ._functional_ctc import ctc_loss  # noqa: F401
from ._functional_dropout import *  # noqa: F403  (dropout, dropout2d, alpha_dropout...)
from ._functional_dropout import __all__ as _dropout_all
from ._functional_extra import *  # noqa: F403  (celu, glu, prelu, group_norm, rms_norm...)
from ._functional_extra import __all__ as _extra_all
from ._functional_loss import *  # noqa: F403  (losses, one_hot, pad, normalize...)
from ._functional_loss import __all__ as _loss_all
from ._functional_margin import *  # noqa: F403  (margin, embedding and likelihood losses)
from ._functional_margin import __all__ as _margin_all
from ._functional_more import *  # noqa: F403  (local_response_norm, lp_pool, pdist, rrelu...)
from ._functional_more import __all__ as _more_all
from ._functional_vision import *  # noqa: F403  (pixel_shuffle, interpolate, fold...)
from ._functional_vision import __all__ as _vision_all

# The activations and the softmax family come from the op table: F.relu, F.gelu, F.softmax...
globals().update(registry.FUNCTIONAL)
from ._functional_transformer import (  # noqa: E402, I001  (the transformer layers)
    batch_norm, embedding, layer_norm, multi_head_attention_forward, scaled_dot_product_attention)

__all__ = [
    "linear", "bilinear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
    "conv_transpose3d",
    "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d",
    "adaptive_max_pool2d", "max_pool1d_with_indices", "max_pool2d_with_indices",
    "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices",
    "adaptive_max_pool3d",
    *registry.FUNCTIONAL, *_dropout_all, *_loss_all, *_margin_all, *_more_all, *_extra_all,
    "ctc_loss",
    *_vision_all,
    "embedding", "layer_norm", "batch_norm", "scaled_dot_product_attention",
    "multi_head_attention_forward",
]


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
        if t.dtype != x.dtype:  # (torch: RuntimeError, "mat1 and mat2 must have the same dtype")
            raise RuntimeError(f"{name}: input has dtype {x.dtype} but {what} has dtype "
                               f"{t.dtype}; convert one of them (e.g. build the layer with "
                               "dtype=...)")
    if weight.ndim != weight_ndim:
        raise RuntimeError(f"{name}: weight must be {weight_ndim}-D, got shape "
                           f"{tuple(weight.shape)}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise RuntimeError(f"{name}: bias of shape {tuple(bias.shape)} does not fit weight of "
                           f"shape {tuple(weight.shape)} (expected ({weight.shape[0]},))")


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
        raise RuntimeError(f"linear: input of shape {tuple(x.shape)} does not fit weight of "
                           f"shape {tuple(weight.shape)} (expected last dimension "
                           f"{weight.shape[1]})")


def linear(x, weight, bias=None):
    """y = x @ weight.T + bias; x (..., in), weight (out, in), bias (out,) -> (..., out)."""
    _check_linear(x, weight, bias)
    if bias is None:
        return apply(L.Linear, x, weight)
    return apply(L.Linear, x, weight, bias)


def bilinear(input1, input2, weight, bias=None):
    """y[..., o] = sum_ij input1[..., i] weight[o, i, j] input2[..., j] + bias[o]; input1
    (..., in1), input2 (..., in2) with the same leading dims, weight (out, in1, in2). Per
    output: input1 @ weight[o] (one exact chain over i for each j), times input2, summed over
    j by the exact tree: identical weight[o] give identical outputs."""
    for name, t in (("input1", input1), ("input2", input2), ("weight", weight)):
        if not isinstance(t, Tensor):
            raise TypeError(f"bilinear(): argument '{name}' must be Tensor, not "
                            f"{type(t).__name__}")
    if input1.shape[:-1] != input2.shape[:-1]:
        raise RuntimeError(f"bilinear(): input batch dimensions do not match: got "
                           f"{list(input1.shape[:-1])} and {list(input2.shape[:-1])}")
    if weight.ndim != 3:
        raise RuntimeError(f"bilinear(): weight must be 3-D (out, in1, in2), got "
                           f"{list(weight.shape)}")
    out, in1, in2 = weight.shape
    if input1.shape[-1] != in1:
        raise RuntimeError(f"bilinear(): input1 size does not match weight size: got "
                           f"{input1.shape[-1]} but expected {in1}")
    if input2.shape[-1] != in2:
        raise RuntimeError(f"bilinear(): input2 size does not match weight size: got "
                           f"{input2.shape[-1]} but expected {in2}")
    if bias is not None and tuple(bias.shape) != (out,):
        raise RuntimeError(f"bilinear(): bias size does not match weight size: got "
                           f"{list(bias.shape)} but expected [{out}]")
    lead = tuple(input1.shape[:-1])
    x1, x2 = input1.reshape(-1, in1), input2.reshape(-1, in2)
    w = weight.permute(1, 0, 2).reshape(in1, out * in2)
    y = ((x1 @ w).reshape(-1, out, in2) * x2.unsqueeze(1)).sum(-1)
    if bias is not None:
        y = y + bias
    return y.reshape(lead + (out,))


def _linear_activation(x, weight, bias, op, params):
    """The activation of linear(x, weight, bias), as nn.Sequential runs a Linear followed by
    its activation module: one graph node (op, an ops.layers.LinearActivation class) whose
    kernels add the bias and activate in one pass, and give the activation's and the bias's
    gradients in one pass back. Falls back to the two ops where there is nothing to fuse."""
    _check_linear(x, weight, bias)
    if bias is None or x._data.ndim != 2:
        y = linear(x, weight, bias)
        return apply(op.entry.op, y, **params) if params else apply(op.entry.op, y)
    return apply(op, x, weight, bias, **params)

