"""torch's legacy typed tensor classes: FloatTensor, DoubleTensor, LongTensor, IntTensor,
ShortTensor, CharTensor, ByteTensor, BoolTensor. As in torch:

    torch.FloatTensor(2, 3)          an uninitialised (2, 3) float32 tensor (a shape)
    torch.FloatTensor([1, 2])        a float32 tensor holding the data
    x.type(torch.DoubleTensor)       x converted to float64
    isinstance(x, torch.LongTensor)  True when x is an int64 tensor

They are classes whose instances are ordinary cygrad Tensors of their dtype.
"""

import numbers

import numpy as np

from . import dtypes
from .tensor import Size, Tensor, _wrap, check_device

__all__ = ["FloatTensor", "DoubleTensor", "LongTensor", "IntTensor", "ShortTensor",
           "CharTensor", "ByteTensor", "BoolTensor"]


class _LegacyType(type):
    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and obj.dtype == cls.dtype

    def __repr__(cls):
        return f"<class '{dtypes.display_name}.{cls.__name__}'>"


def _new(cls, *args, device=None):
    check_device(device)
    dtype = cls.dtype.numpy
    if not args:
        return _wrap(np.empty(0, dtype))
    sizes = args[0] if len(args) == 1 and isinstance(args[0], (Size, tuple)) and all(
        isinstance(s, numbers.Integral) for s in args[0]) else args
    if all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in sizes):
        return _wrap(np.empty(tuple(int(s) for s in sizes), dtype))  # a shape: uninitialised
    if len(args) != 1:
        raise TypeError(f"{cls.__name__}(): expected sizes (ints) or one sequence of data, "
                        f"got {args!r}")
    data = args[0]
    array = data._data if isinstance(data, Tensor) else data
    return _wrap(np.array(array, dtype=dtype))


def _legacy(name, dtype):
    return _LegacyType(name, (), {"__new__": _new, "dtype": dtype, "is_cuda": False,
                                  "__doc__": f"torch.{name}: tensors of dtype {dtype}."})


FloatTensor = _legacy("FloatTensor", dtypes.float32)
DoubleTensor = _legacy("DoubleTensor", dtypes.float64)
LongTensor = _legacy("LongTensor", dtypes.int64)
IntTensor = _legacy("IntTensor", dtypes.int32)
ShortTensor = _legacy("ShortTensor", dtypes.int16)
CharTensor = _legacy("CharTensor", dtypes.int8)
ByteTensor = _legacy("ByteTensor", dtypes.uint8)
BoolTensor = _legacy("BoolTensor", dtypes.bool_)
