"""Collation (torch.utils.data.default_collate / default_convert): a list of samples becomes
one batch, recursively through tuples, lists and dicts.

    tensors        -> stacked along a new first dimension
    numpy arrays   -> tensors, then stacked;   numpy scalars -> a 1-d tensor
    float          -> a float64 tensor;        int -> an int64 tensor
    str, bytes     -> the list, unchanged
    dict           -> a dict of collated values;  namedtuple -> the same namedtuple type
    tuple, list    -> a list (a list type is kept) of collated positions

`collate(batch, collate_fn_map=...)` takes a registry {type: fn(batch, *, collate_fn_map)};
`default_collate_fn_map` is the default one, which users may extend, as torch's.

Numpy arrays of a dtype no cygrad Tensor holds (float16, uint16 and wider unsigned) stay numpy
arrays, stacked.
"""

import collections
import copy
import re

import numpy as np

from ...tensor import Tensor
from .._tensors import wrap

__all__ = ["collate", "default_collate", "default_convert", "default_collate_fn_map"]

_STRINGS = re.compile(r"[SaUO]")  # numpy dtypes of strings and objects
default_collate_err_msg_format = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
    "found {}")


def _holds(dtype):
    """Whether a cygrad Tensor can hold numpy dtype: float32/64, int8-64, uint8, bool."""
    if dtype in (np.float32, np.float64):
        return True
    return dtype.kind in "ib" or (dtype.kind == "u" and dtype.itemsize == 1)


def as_tensor(a):
    """numpy array a as a Tensor sharing its memory (torch.as_tensor), when a Tensor can hold
    its dtype; else a itself."""
    a = np.asarray(a)
    return wrap(a) if _holds(a.dtype) else a


def _stack(items):
    import cygrad

    stack = getattr(cygrad, "stack", None)
    if stack is not None and all(isinstance(t, Tensor) for t in items):
        return stack(items, 0)
    return as_tensor(np.stack([np.asarray(t._data if isinstance(t, Tensor) else t)
                               for t in items]))


def collate_tensor_fn(batch, *, collate_fn_map=None):
    return _stack(list(batch))


def collate_numpy_array_fn(batch, *, collate_fn_map=None):
    if _STRINGS.search(batch[0].dtype.str) is not None:
        raise TypeError(default_collate_err_msg_format.format(batch[0].dtype))
    if not _holds(batch[0].dtype):  # a dtype no Tensor holds: numpy, stacked
        return np.stack(batch)
    return collate([as_tensor(b) for b in batch], collate_fn_map=collate_fn_map)


def collate_numpy_scalar_fn(batch, *, collate_fn_map=None):
    return as_tensor(np.array(batch))


def collate_float_fn(batch, *, collate_fn_map=None):
    return wrap(np.array(batch, dtype=np.float64))


def collate_int_fn(batch, *, collate_fn_map=None):
    return as_tensor(np.array(batch))  # int64 (bool for bools), as torch.tensor(batch)


def collate_str_fn(batch, *, collate_fn_map=None):
    return batch


default_collate_fn_map = {
    Tensor: collate_tensor_fn,
    np.ndarray: collate_numpy_array_fn,
    (np.bool_, np.number, np.object_): collate_numpy_scalar_fn,
    float: collate_float_fn,
    int: collate_int_fn,
    str: collate_str_fn,
    bytes: collate_str_fn,
}


def collate(batch, *, collate_fn_map=None):
    """Collate a list of samples by the type of its first element: the registry's function
    for that type (or a base type), else recursively through mappings and sequences."""
    elem = batch[0]
    elem_type = type(elem)
    if collate_fn_map is not None:
        if elem_type in collate_fn_map:
            return collate_fn_map[elem_type](batch, collate_fn_map=collate_fn_map)
        for kind, fn in collate_fn_map.items():
            if isinstance(elem, kind):
                return fn(batch, collate_fn_map=collate_fn_map)
    if isinstance(elem, collections.abc.Mapping):
        values = {key: collate([d[key] for d in batch], collate_fn_map=collate_fn_map)
                  for key in elem}
        try:
            if isinstance(elem, collections.abc.MutableMapping):
                clone = copy.copy(elem)
                clone.update(values)
                return clone
            return elem_type(values)
        except TypeError:  # a mapping type that cannot be made that way
            return values
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return elem_type(*(collate(samples, collate_fn_map=collate_fn_map)
                           for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if not all(len(e) == size for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        columns = [collate(samples, collate_fn_map=collate_fn_map) for samples in zip(*batch)]
        if isinstance(elem, tuple):
            return columns
        try:
            if isinstance(elem, collections.abc.MutableSequence):
                clone = copy.copy(elem)
                for i, column in enumerate(columns):
                    clone[i] = column
                return clone
            return elem_type(columns)
        except TypeError:
            return columns
    raise TypeError(default_collate_err_msg_format.format(elem_type))


def default_collate(batch):
    """A batch (list of samples) as tensors with a new first dimension (module docstring)."""
    return collate(batch, collate_fn_map=default_collate_fn_map)


def default_convert(data):
    """One sample's numpy arrays as tensors, recursively (the collate_fn when batch_size is
    None); anything else unchanged."""
    if isinstance(data, Tensor):
        return data
    if type(data).__module__ == "numpy" and type(data).__name__ not in ("str_", "bytes_"):
        if isinstance(data, np.ndarray) and _STRINGS.search(data.dtype.str) is not None:
            return data
        return as_tensor(data)
    if isinstance(data, collections.abc.Mapping):
        values = {key: default_convert(data[key]) for key in data}
        try:
            if isinstance(data, collections.abc.MutableMapping):
                clone = copy.copy(data)
                clone.update(values)
                return clone
            return type(data)(values)
        except TypeError:
            return values
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        converted = [default_convert(d) for d in data]
        try:
            if isinstance(data, collections.abc.MutableSequence):
                clone = copy.copy(data)
                for i, d in enumerate(converted):
                    clone[i] = d
                return clone
            return type(data)(converted)
        except TypeError:
            return converted
    return data
