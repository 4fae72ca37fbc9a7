"""The few places where cygrad.optim, nn.utils and utils.data reach under a Tensor, in one
file: its numpy array, a Tensor made around an array, and copy-on-write."""

import numpy as np

from ..tensor import Tensor, _wrap, _writable

__all__ = ["array", "wrap", "writable_array"]


def array(x):
    """The numpy array of a Tensor (a gradient, a state value), or x itself as an array."""
    if type(x) is np.ndarray:
        return x
    if isinstance(x, Tensor):
        return x._data
    return np.asarray(x)


def wrap(a):
    """A leaf Tensor around numpy array a, not copied, keeping its dtype."""
    return _wrap(a)


def writable_array(t):
    """t's array, ready for an in-place write: copied first (and the copy given to t, and to
    the tensors sharing it through .data) if a live graph saved it for backward
    (copy-on-write), by the Tensor's own rule."""
    return _writable(t)
