"""Gradient clipping (torch.nn.utils.clip_grad_norm_, clip_grad_value_, ...).

    total = clip_grad_norm_(model.parameters(), max_norm=1.0)   # before optimizer.step()

torch's formula: each gradient's p-norm, then the p-norm of those norms (as if all gradients
were one vector); clip_coef = max_norm / (total + 1e-6), clamped to at most 1, in the total's
dtype; every gradient is multiplied by it in place. One coefficient for every element, so
identical units stay identical.

The norms are computed in float64 (numpy's pairwise summation, in a fixed order for a given
size) and rounded once to the gradients' dtype: for float32 gradients this is more accurate
than torch's float32 accumulation, so the total may differ from torch's in the last places.
`foreach` is accepted and changes nothing.
"""

import math
import types
import warnings

import numpy as np

from ...tensor import Tensor
from ...utils._tensors import array as _array
from ...utils._tensors import wrap

__all__ = ["clip_grad_norm", "clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_",
           "get_total_norm"]


def _tensors(parameters):
    return [parameters] if isinstance(parameters, Tensor) else list(parameters)


def _grads(parameters):
    return [p.grad for p in parameters if p.grad is not None]


def _norm(array, p):
    """The p-norm of all elements of array, accumulated in float64."""
    a = np.abs(array.astype(np.float64, copy=False)).ravel()
    if p == math.inf or p == -math.inf:
        if a.size == 0:
            raise RuntimeError(f"linalg.vector_norm cannot compute the {p} norm on an empty "
                               "tensor because the operation does not have an identity")
        return a.max() if p > 0 else a.min()
    if p == 0:
        return float(np.count_nonzero(a))
    if p == 1:
        return a.sum()
    if p == 2:
        return math.sqrt(np.sum(a * a))
    return np.sum(a ** p) ** (1.0 / p)


def _dtype(arrays):
    return np.result_type(*arrays) if arrays else np.dtype(np.float32)


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """The p-norm of the tensors' norms (as if they were one vector): a 0-d Tensor."""
    arrays = [_array(t) for t in _tensors(tensors)]
    norm_type = float(norm_type)
    if not arrays:
        return wrap(np.array(0.0, np.float32))
    norms = [np.array(_norm(a, norm_type), a.dtype) for a in arrays]
    dtype = _dtype(norms)
    total = np.array(_norm(np.array(norms, dtype), norm_type), dtype)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from "
                           "`parameters` is non-finite, so it cannot be clipped. To disable "
                           "this error and scale the gradients by the non-finite norm anyway, "
                           "set `error_if_nonfinite=False`")
    return wrap(total)


def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None):
    """grad *= min(max_norm / (total_norm + 1e-6), 1) for every parameter's gradient, in
    place (the coefficient formed in total_norm's dtype)."""
    grads = _grads(_tensors(parameters))
    if not grads:
        return
    total = _array(total_norm)
    dt = total.dtype.type
    coef = np.minimum(dt(float(max_norm)) / (total + dt(1e-6)), dt(1.0))
    for g in grads:
        array = _array(g)
        if not array.flags.writeable:  # a live graph holds it: the gradient gets a copy
            array = array.copy()
            if isinstance(g, Tensor):
                g._data = array
        np.multiply(array, array.dtype.type(coef), out=array)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False,
                    foreach=None):
    """Scale the gradients in place so that their total p-norm is at most max_norm;
    returns the total norm before clipping (a 0-d Tensor). norm_type may be inf."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    else:
        generator = isinstance(parameters, types.GeneratorType)
        parameters = list(parameters)
        if generator and not parameters:
            warnings.warn("`parameters` is an empty generator, no gradient clipping will "
                          "occur.", stacklevel=2)
    total = get_total_norm(_grads(parameters), norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(parameters, max_norm, total, foreach)
    return total


def clip_grad_norm(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False,
                   foreach=None):
    """Deprecated name of clip_grad_norm_."""
    warnings.warn("`torch.nn.utils.clip_grad_norm` is now deprecated in favor of "
                  "`torch.nn.utils.clip_grad_norm_`.", FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element into [-clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    for g in _grads(_tensors(parameters)):
        array = _array(g)
        if not array.flags.writeable:
            array = array.copy()
            if isinstance(g, Tensor):
                g._data = array
        dt = array.dtype.type
        np.clip(array, dt(-clip_value), dt(clip_value), out=array)
