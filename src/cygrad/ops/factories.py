"""Making tensors: cygrad.tensor, zeros, ones, full, arange, linspace, eye, the *_like and new_*
forms, clone, casts, and the in-place fills. torch's signatures and dtype rules: integer data
becomes int64, bool data bool, float data the default float dtype; numpy arrays keep theirs.
"""

import math
import numbers

import numpy as np

from .. import dtypes
from ..tensor import Size, Tensor, _local, _own_storage, _wrap, apply, check_device
from . import Op, registry
from .registry import export

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


_C_NAMES = {"float32": "float", "float64": "double", "float16": "c10::Half", "int64": "int64_t",
            "int32": "int", "int16": "short", "int8": "signed char", "uint8": "unsigned char"}


def scalar_as(value, dtype):
    """The Python number `value` as a numpy scalar of numpy `dtype`, with torch's checks: a
    value outside the dtype's range (and NaN or an infinity into an integer dtype) raises
    RuntimeError instead of wrapping; floats go into integers by truncation."""
    dtype = np.dtype(dtype)
    if isinstance(value, Tensor):
        value = value.item()
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)) and \
            not -2 ** 63 <= int(value) < 2 ** 63:
        raise OverflowError("int too big to convert")  # torch reads Python ints as int64
    if dtype.kind == "b" or isinstance(value, (bool, np.bool_)):
        return dtype.type(value)
    if dtype.kind in "iu":
        if isinstance(value, numbers.Integral):
            whole = int(value)
        else:
            if not np.isfinite(value):
                raise _overflow(dtype)
            whole = int(value)  # truncation toward zero, as C's conversion
        info = np.iinfo(dtype)
        if not info.min <= whole <= info.max:
            raise _overflow(dtype)
        return dtype.type(whole)
    number = float(value)  # OverflowError for an int too big for a double, as torch
    largest = _LARGEST.get(dtype)
    if largest is None:
        largest = _LARGEST[dtype] = float(np.finfo(dtype).max)
    if abs(number) > largest and math.isfinite(number):
        raise _overflow(dtype)
    return dtype.type(number)


_LARGEST = {}  # the largest finite value of each float dtype, as a Python float


def _overflow(dtype):
    return RuntimeError(f"value cannot be converted to type {_C_NAMES.get(dtype.name, dtype.name)}"
                        f" without overflow")


def _finish(array, requires_grad):
    t = _wrap(array)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _infer(data):
    """A numpy array of `data` with torch's dtype inference."""
    if isinstance(data, Tensor):
        return np.array(data._data)
    if isinstance(data, np.ndarray):
        dtypes.of_array(data)  # refuses element types cygrad lacks
        return np.array(data)
    if isinstance(data, np.generic):
        array = np.array(data)
        dtypes.of_array(array)
        return array
    if isinstance(data, (list, tuple)) and _holds_tensors(data):
        data = _unwrap(data)
    array = np.array(data)
    kind = array.dtype.kind
    if not isinstance(data, np.ndarray) and (kind == "u" or kind == "O" and array.size and all(
            isinstance(v, numbers.Integral) for v in array.reshape(-1))):  # ints beyond int64
        raise ValueError("Overflow when unpacking long long: integer data must fit in int64")
    if kind == "b":
        return array
    if kind in "iu":
        return array.astype(np.int64, copy=False)
    if kind == "f":
        return array.astype(dtypes.get_default_dtype().numpy, copy=False)
    if array.size == 0 and kind not in "biuf":  # [] and [[]]: the default float dtype
        return array.astype(dtypes.get_default_dtype().numpy)
    raise TypeError(f"could not infer a tensor dtype from {type(data).__name__} data of numpy "
                    f"dtype {array.dtype}")


def _holds_tensors(data):
    return any(isinstance(d, Tensor) or (isinstance(d, (list, tuple)) and _holds_tensors(d))
               for d in data)


def _unwrap(data):
    out = []
    for d in data:
        if isinstance(d, Tensor):
            if d._data.size != 1:
                raise ValueError("only one element tensors can be converted to Python scalars")
            out.append(d._data.reshape(-1)[0])
        elif isinstance(d, (list, tuple)):
            out.append(_unwrap(d))
        else:
            out.append(d)
    return out


@export("tensor")
def tensor(data, *, dtype=None, device=None, requires_grad=False, pin_memory=False):
    """A new leaf tensor holding a copy of data (a number, a nested list, a numpy array or a
    Tensor). Integer data becomes int64, bool data bool, float data the default float dtype
    (float32); numpy arrays keep their dtype."""
    check_device(device)
    array = _infer(data) if dtype is None else _convert(data, dtypes.as_dtype(dtype))
    return _finish(array, requires_grad)


def _convert(data, dtype):
    if isinstance(data, Tensor):
        data = data._data
    elif isinstance(data, (list, tuple)) and _holds_tensors(data):
        data = _unwrap(data)
    array = np.asarray(data)
    if array.dtype.kind not in "biuf" and array.size:
        raise TypeError(f"cannot make a tensor of {dtype} from data of numpy dtype "
                        f"{array.dtype}")
    return np.array(array, dtype=dtype.numpy)


@export("as_tensor", "asarray")
def as_tensor(data, dtype=None, device=None, *, copy=None, requires_grad=False):
    """data as a tensor, sharing memory with a Tensor or numpy array when no conversion is
    needed."""
    check_device(device)
    if isinstance(data, Tensor):
        out = data if dtype is None else data.type(dtype)
        return out.clone() if copy else out
    if isinstance(data, np.ndarray) and not copy:
        d = dtypes.of_array(data) if dtype is None else dtypes.as_dtype(dtype)
        if d.numpy == data.dtype:
            return _finish(_own_storage(data), requires_grad)
        return _finish(data.astype(d.numpy), requires_grad)
    return tensor(data, dtype=dtype, requires_grad=requires_grad)


@export("from_numpy")
def from_numpy(ndarray):
    """A tensor sharing the numpy array's memory (writes show on both sides)."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(ndarray).__name__})")
    dtypes.of_array(ndarray)
    return _wrap(_own_storage(ndarray))


def _size(size, where):
    """A shape from torch's size arguments: ints, or one sequence of ints."""
    if len(size) == 1 and isinstance(size[0], (tuple, list, np.ndarray)) or (
            len(size) == 1 and type(size[0]).__name__ == "Size"):
        size = tuple(size[0])
    shape = []
    for s in size:
        if isinstance(s, Tensor):
            s = s.item() if s._data.size == 1 and s._data.dtype.kind in "iu" else s
        if isinstance(s, bool) or not isinstance(s, numbers.Integral):
            raise TypeError(f"{where}(): size must be a sequence of ints, got {size!r}")
        if s < 0:
            raise RuntimeError(f"{where}(): negative dimension {s} in size {tuple(size)}")
        shape.append(int(s))
    return tuple(shape)


def _size_of(args, size, where):
    """A factory's shape from its positional sizes or its size= keyword (torch takes either)."""
    if size is not None:
        if args:
            raise TypeError(f"{where}() got multiple values for argument 'size'")
        args = (size,)
    elif not args:
        raise TypeError(f'{where}() missing 1 required positional arguments: "size"')
    return _size(args, where)


def _dtype_or_default(dtype):
    return dtypes.get_default_dtype() if dtype is None else dtypes.as_dtype(dtype)


def _filled(name, value):
    def factory(*args, size=None, out=None, dtype=None, layout=None, device=None,
                requires_grad=False, pin_memory=False, memory_format=None):
        check_device(device)
        d = _dtype_or_default(dtype)
        shape = _size_of(args, size, name)
        array = np.full(shape, value, dtype=d.numpy) if value is not None else \
            np.empty(shape, dtype=d.numpy)
        if out is not None:
            out._write(_wrap(array))
            return out
        return _finish(array, requires_grad)

    factory.__doc__ = f"{name}(*size, dtype=None, requires_grad=False): a new tensor of " \
                      f"that shape" + ("" if value is None else f" filled with {value}")
    return export(name)(factory)


zeros = _filled("zeros", 0)
ones = _filled("ones", 1)
empty = _filled("empty", None)


@export("full")
def full(size, fill_value, *, out=None, dtype=None, layout=None, device=None,
         requires_grad=False):
    """A tensor of `size` filled with fill_value; its dtype follows fill_value (bool, int64,
    or the default float) unless given."""
    check_device(device)
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    d = dtypes.as_dtype(dtype) if dtype is not None else dtypes._scalar_dtype(fill_value)
    return _finish(np.full(_size((size,), "full"), scalar_as(fill_value, d.numpy),
                           dtype=d.numpy), requires_grad)


def _like(name, value):
    def factory(input, *, dtype=None, layout=None, device=None, requires_grad=False,
                memory_format=None):
        check_device(device)
        d = input.dtype if dtype is None else dtypes.as_dtype(dtype)
        array = np.empty(input._data.shape, d.numpy) if value is None else \
            np.full(input._data.shape, value, d.numpy)
        return _finish(array, requires_grad)

    factory.__doc__ = f"{name}(input): a new tensor of input's shape and dtype" + (
        "" if value is None else f", filled with {value}")
    return export(name)(factory)


zeros_like = _like("zeros_like", 0)
ones_like = _like("ones_like", 1)
empty_like = _like("empty_like", None)


@export("full_like")
def full_like(input, fill_value, *, dtype=None, layout=None, device=None, requires_grad=False,
              memory_format=None):
    check_device(device)
    d = input.dtype if dtype is None else dtypes.as_dtype(dtype)
    return _finish(np.full(input._data.shape, scalar_as(fill_value, d.numpy), d.numpy),
                   requires_grad)


def _new(name, value):
    def method(self, *size, dtype=None, device=None, requires_grad=False, layout=None,
               pin_memory=False):
        check_device(device)
        d = self.dtype if dtype is None else dtypes.as_dtype(dtype)
        shape = _size(size, name)
        array = np.empty(shape, d.numpy) if value is None else np.full(shape, value, d.numpy)
        return _finish(array, requires_grad)

    return export(name, method=True, function=False)(method)


_new("new_zeros", 0)
_new("new_ones", 1)
_new("new_empty", None)


@export("new_full", method=True, function=False)
def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
    check_device(device)
    d = self.dtype if dtype is None else dtypes.as_dtype(dtype)
    return _finish(np.full(_size((size,), "new_full"), scalar_as(fill_value, d.numpy),
                           d.numpy), requires_grad)


@export("new", method=True, function=False)
def new(self, *args, device=None):
    """The legacy constructor, as torch's: x.new(2, 3) or x.new(size) an uninitialised tensor
    of x's dtype; x.new(sequence) one of those values in x's dtype; x.new(tensor) that tensor's
    memory (its dtype must be x's); x.new() an empty one."""
    check_device(device)
    if len(args) == 1 and isinstance(args[0], Tensor):
        other = args[0]
        if other.dtype != self.dtype:
            raise TypeError(f"expected dtype {self.dtype} (x.new(tensor) shares the tensor's "
                            f"memory), got {other.dtype}")
        return _finish(other._data, False)
    if len(args) == 1 and isinstance(args[0], (list, tuple, np.ndarray)) \
            and not isinstance(args[0], Size):
        return tensor(args[0], dtype=self.dtype)
    return _finish(np.empty(_size(args, "new") if args else (0,), self.dtype.numpy), False)


@export("new_tensor", method=True, function=False)
def new_tensor(self, data, *, dtype=None, device=None, requires_grad=False):
    check_device(device)
    d = self.dtype if dtype is None else dtypes.as_dtype(dtype)
    return tensor(data, dtype=d, requires_grad=requires_grad)


@export("arange")
def arange(start=0, end=None, step=1, *, out=None, dtype=None, layout=None, device=None,
           requires_grad=False):
    """Values start, start + step, ... below end (arange(n): 0 .. n-1). int64 unless an
    argument is a float (then the default float dtype); each value computed in double as
    start + i * step, then rounded to the dtype (torch's arithmetic)."""
    check_device(device)
    if end is None:
        start, end = 0, start
    values = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    start, end, step = values
    if dtype is None:
        floaty = any(isinstance(v, float) or (isinstance(v, np.floating)) for v in values)
        d = dtypes.get_default_dtype() if floaty else dtypes.int64
    else:
        d = dtypes.as_dtype(dtype)
    if not d.is_floating_point:  # torch computes an integer range in integers (truncated)
        start, end, step = (int(v) for v in (start, end, step))
    if step == 0:
        raise RuntimeError("step must be nonzero")
    n = int(np.ceil((end - start) / step))
    if n < 0 or (step > 0 and start > end) or (step < 0 and start < end):
        raise RuntimeError(f"upper bound and larger bound inconsistent with step sign "
                           f"(start={start}, end={end}, step={step})")
    if d.is_floating_point:
        array = (start + np.arange(n, dtype=np.float64) * step).astype(d.numpy)
    else:
        array = (int(start) + np.arange(n, dtype=np.int64) * int(step)).astype(d.numpy)
    return _finish(array, requires_grad)


@export("linspace")
def linspace(start, end, steps, *, out=None, dtype=None, layout=None, device=None,
             requires_grad=False):
    """steps values from start to end, evenly spaced: torch's two-sided formula in the dtype
    (start + step * i for the first half, end - step * (steps - 1 - i) for the second)."""
    check_device(device)
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral):
        raise TypeError(f"linspace(): argument 'steps' must be int, not {type(steps).__name__}")
    if steps < 0:
        raise RuntimeError(f"number of steps must be non-negative, got {steps!r}")
    d = _dtype_or_default(dtype)
    start = start.item() if isinstance(start, Tensor) else start
    end = end.item() if isinstance(end, Tensor) else end
    if steps == 0:
        return _finish(np.empty(0, d.numpy), requires_grad)
    if steps == 1:
        return _finish(np.full(1, start, d.numpy), requires_grad)
    if d.is_floating_point:
        t = d.numpy.type
        a, b = t(start), t(end)
        step = (b - a) / t(steps - 1)
        i = np.arange(steps)
        half = steps // 2
        array = np.empty(steps, d.numpy)
        array[:half] = a + step * i[:half].astype(d.numpy)
        array[half:] = b - step * (steps - 1 - i[half:]).astype(d.numpy)
    else:
        array = np.linspace(start, end, steps).astype(d.numpy)
    return _finish(array, requires_grad)


@export("logspace")
def logspace(start, end, steps, base=10.0, *, dtype=None, device=None, requires_grad=False):
    check_device(device)
    d = _dtype_or_default(dtype)
    exponents = linspace(start, end, steps, dtype=dtypes.float64)._data
    return _finish(np.power(base, exponents).astype(d.numpy), requires_grad)


@export("eye")
def eye(n, m=None, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    check_device(device)
    d = _dtype_or_default(dtype)
    m = n if m is None else m
    for name, v in (("n", n), ("m", m)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"eye(): argument '{name}' must be int, not {type(v).__name__}")
        if v < 0:
            raise RuntimeError(f"{name} must be greater or equal to 0, got {v}")
    return _finish(np.eye(n, m, dtype=d.numpy), requires_grad)


def _triangle_indices(row, col, offset, dtype, device, lower):
    check_device(device)
    d = dtypes.int64 if dtype is None else dtypes.as_dtype(dtype)
    if d.numpy.kind not in "iu":
        raise RuntimeError(f"\"{'tril' if lower else 'triu'}_indices\" not implemented for "
                           f"'{dtypes.SCALAR_NAMES[d.name]}'")
    for name, v in (("row", row), ("col", col), ("offset", offset)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{'tril' if lower else 'triu'}_indices(): argument '{name}' must "
                            f"be int, not {type(v).__name__}")
    if row < 0 or col < 0:
        raise RuntimeError(f"row must be non-negative, got {row}" if row < 0 else
                           f"col must be non-negative, got {col}")
    rows, cols = (np.tril_indices if lower else np.triu_indices)(row, offset, col)
    return _finish(np.stack([rows, cols]).astype(d.numpy).reshape(2, -1), False)


@export("tril_indices")
def tril_indices(row, col, offset=0, *, dtype=None, device=None, layout=None):
    """The (row, column) indices of the lower triangle of a row x col matrix (offset: the
    diagonal it stops at), a 2 x N int64 tensor in row-major order."""
    return _triangle_indices(row, col, offset, dtype, device, True)


@export("triu_indices")
def triu_indices(row, col, offset=0, *, dtype=None, device=None, layout=None):
    """The (row, column) indices of the upper triangle, as tril_indices."""
    return _triangle_indices(row, col, offset, dtype, device, False)


# ---------------------------------------------------------------------- copies and casts

class Cast(Op):
    """y = x converted to another dtype"""
    node = "ToCopyBackward0"  # torch's grad_fn name

    rule = "dx = g converted back to x's dtype"
    linear = True
    saves_nothing = True

    def forward(self, x):
        self.source = x.dtype
        return x.astype(self.dtype.numpy)

    def backward(self, g):
        return (g.astype(self.source),)


@export("_cast", function=True)
def cast(input, dtype):
    """input converted to dtype (recorded: gradients flow back converted)."""
    if not dtype.is_floating_point and input._rg and _local.grad_enabled:
        return _wrap(input._data.astype(dtype.numpy))  # an integer result records nothing
    return apply(Cast, input, dtype=dtype)


class Clone(Op):
    """y = a copy of x"""

    rule = "dx = g"
    linear = True
    saves_nothing = True

    def forward(self, x):
        return np.array(x, order="K" if self.order == "K" else "C")

    def backward(self, g):
        return (g,)


@export("clone", method=True)
def clone(input, *, memory_format=None):
    """A copy of input with its own memory (recorded: the gradient passes through)."""
    return apply(Clone, input, order="K")


@export("contiguous", method=True, function=False)
def contiguous(self, memory_format=None):
    """self if its memory is C-contiguous, else a C-contiguous copy."""
    if self._data.flags.c_contiguous:
        return self
    return apply(Clone, self, order="C")


# ---------------------------------------------------------------------- fills in place

class Fill(Op):
    """y = value everywhere (the in-place fills of a tensor in the graph)"""

    rule = "dx = 0"

    def forward(self, x):
        return np.full(x.shape, self.value, x.dtype)

    def backward(self, g):
        return (np.zeros_like(g),)


@export("zero_", method=True, function=False)
def zero_(self):
    """Fill with zeros in place."""
    return fill_(self, 0)


@export("fill_", method=True, function=False)
def fill_(self, value):
    """Fill with value (a number or a one-element tensor) in place."""
    if isinstance(value, Tensor):
        if value._data.ndim != 0:
            raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor "
                               f"with {value._data.ndim} dimensions.")
        if value._rg and _local.grad_enabled:
            from .shape import expand

            return self._write(expand(value.type(self.dtype), self._data.shape))
        value = value.item()
    value = scalar_as(value, self._data.dtype)
    if self._rg and _local.grad_enabled:  # self stays in the graph; its gradient is zero
        return self._write(apply(Fill, self._inplace_input(), value=value))
    return self._write(_wrap(np.asarray(value, self._data.dtype)))  # broadcast by the write


@export("copy_", method=True, function=False)
def copy_(self, src, non_blocking=False):
    """Copy src's values into self (broadcast to self's shape, converted to self's dtype)."""
    if not isinstance(src, Tensor):
        src = tensor(src)
    if src._data.shape != self._data.shape:
        from .shape import expand

        try:
            np.broadcast_shapes(src._data.shape, self._data.shape)
        except ValueError:
            raise RuntimeError(f"The size of tensor a ({self._data.shape}) must match the size "
                               f"of tensor b ({src._data.shape})") from None
        src = expand(src, self._data.shape)
    if src._data.dtype != self._data.dtype:
        src = src.type(self.dtype) if src._rg and _local.grad_enabled else \
            _wrap(src._data.astype(self._data.dtype))
    if not (_local.grad_enabled and (self._rg or src._rg)):
        return self._write(src)
    if not self._rg:
        return self._write(apply(Clone, src, order="C"))
    return self._write(apply(CopyInto, self._inplace_input(), src))  # self's gradient: zero


class CopyInto(Op):
    """y = src (already of x's shape and dtype): x's values are overwritten"""

    rule = "dx = 0;  dsrc = g"

    def forward(self, x, src):
        return np.array(src, order="C")

    def backward(self, g):
        return (np.zeros_like(g) if self.needs[0] else None), g


registry.FUNCTIONS["is_tensor"] = lambda obj: isinstance(obj, Tensor)
registry.FUNCTIONS["is_floating_point"] = lambda input: input.is_floating_point()
registry.FUNCTIONS["numel"] = lambda input: input.numel()
