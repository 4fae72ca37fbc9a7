"""The few places where cygrad.optim, nn.utils and utils.data reach under a Tensor, in one
file: the Tensor API is changing (`.grad` becomes a Tensor, `Tensor(array)` casts to the
default dtype), and these accessors work with both its forms."""

import numpy as np

from .. import tensor as _tensor
from ..tensor import Tensor

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
    make = getattr(_tensor, "_wrap", None)
    return make(a) if make is not None else Tensor(a)


def writable_array(t):
    """t's array, ready for an in-place write: copied first (and the copy given to t) if a
    live graph saved it for backward (copy-on-write), by the Tensor's own rule."""
    writable = getattr(t, "_writable_data", None)
    if writable is not None:
        return writable()
    return _tensor._writable(t)
