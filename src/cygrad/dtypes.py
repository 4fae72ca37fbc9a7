"""Tensor dtypes, with torch's names and promotion rules.

    cygrad.float32 (cygrad.float)   cygrad.float64 (cygrad.double)
    cygrad.int64 (cygrad.long)      cygrad.int32 (cygrad.int)
    cygrad.int16 (cygrad.short)     cygrad.int8    cygrad.uint8    cygrad.bool

Each dtype wraps the numpy dtype that holds its elements. Only float32 and float64 tensors carry
gradients (the exact kernels are written for those two); integer and bool tensors hold indices,
labels, masks and counts, and compute through numpy (integer arithmetic is exact anyway).

Promotion follows torch (`torch.result_type`): bool < integers < floats; a float meeting an
integer gives that float (numpy would widen int64 + float32 to float64; torch keeps float32);
operands rank as tensors with dimensions > zero-dimensional tensors > Python numbers, and a
lower rank changes the result only when it brings a higher category (float32 tensor * 2.5 stays
float32, int64 tensor * 2.5 becomes the default float dtype).
"""

import numbers

import numpy as np

from . import _state

# The module name reprs print (cygrad.float32, cygrad.Size([2]), x.type() == 'cygrad.FloatTensor'):
# as_torch.install() sets it to "torch", so a torch program run unedited prints and compares
# torch's names.
display_name = "cygrad"

__all__ = ["dtype", "float32", "float64", "int64", "int32", "int16", "int8", "uint8", "bool_",
           "promote_types", "result_type", "as_dtype", "get_default_dtype",
           "set_default_dtype", "can_cast", "finfo", "iinfo"]


class dtype:
    """A tensor element type, as torch.dtype: compare with ==, print as cygrad.float32."""

    __slots__ = ("name", "numpy", "is_floating_point", "is_signed", "itemsize", "_category")

    def __init__(self, name, numpy_type, category):
        self.name = name
        self.numpy = np.dtype(numpy_type)
        self.is_floating_point = category == 2
        self.is_signed = self.numpy.kind in "if"
        self.itemsize = self.numpy.itemsize
        self._category = category  # 0 bool, 1 integer, 2 float: the ladder promotion climbs

    is_complex = False

    def __repr__(self):
        return f"{display_name}.{self.name}"

    def __eq__(self, other):
        """Equal to itself, and (a convenience for numpy code) to the numpy dtype it wraps."""
        if isinstance(other, dtype):
            return self is other
        if other is None or isinstance(other, (int, float)):
            return False
        try:
            return self.numpy == np.dtype(other)
        except TypeError:
            return NotImplemented

    def __hash__(self):
        return hash(self.numpy)

    def __reduce__(self):  # pickles (and copies) as the one object of its name
        return (as_dtype, (self.name,))

    def to_real(self):
        return self

    # numpy code may meet our dtypes: np.dtype(cygrad.float32) works through this
    @property
    def dtype(self):
        return self.numpy


float32 = dtype("float32", np.float32, 2)
float64 = dtype("float64", np.float64, 2)
int64 = dtype("int64", np.int64, 1)
int32 = dtype("int32", np.int32, 1)
int16 = dtype("int16", np.int16, 1)
int8 = dtype("int8", np.int8, 1)
uint8 = dtype("uint8", np.uint8, 1)
bool_ = dtype("bool", np.bool_, 0)

_state._Local.default_dtype = float32

# torch's names of the element types, as its messages print them
SCALAR_NAMES = {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int",
                "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}

ALL = (float32, float64, int64, int32, int16, int8, uint8, bool_)
FLOATS = (float32, float64)
_BY_NUMPY = {d.numpy: d for d in ALL}
_BY_NAME = {d.name: d for d in ALL}
_BY_NAME.update(float=float32, double=float64, long=int64, int=int32, short=int16)
_UNSUPPORTED = ("float16", "half", "bfloat16", "complex64", "complex128", "cfloat", "cdouble",
                "uint16", "uint32", "uint64", "float8")


class unsupported_dtype:
    """A torch dtype cygrad cannot hold (float16, bfloat16, complex...): a program may name it
    (nanoGPT builds {'float32': torch.float32, 'bfloat16': torch.bfloat16, ...} and picks
    float32), compare with it and print it; making or converting a tensor to it raises
    TypeError naming it (as_dtype)."""

    __slots__ = ("name", "is_floating_point", "is_complex", "itemsize")

    def __init__(self, name, itemsize, complex_=False):
        self.name = name
        self.is_floating_point = not complex_
        self.is_complex = complex_
        self.itemsize = itemsize

    is_signed = True

    def __repr__(self):
        return f"{display_name}.{self.name}"

    def __reduce__(self):  # pickled by name: unpickled as the same object
        return _unsupported, (self.name,)


def _unsupported(name):
    return UNSUPPORTED[name]


float16 = unsupported_dtype("float16", 2)
bfloat16 = unsupported_dtype("bfloat16", 2)
complex64 = unsupported_dtype("complex64", 8, True)
complex128 = unsupported_dtype("complex128", 16, True)
# torch's names of them, as cygrad's attributes (cygrad.half is cygrad.float16, as in torch)
UNSUPPORTED = {"float16": float16, "half": float16, "bfloat16": bfloat16, "complex64": complex64,
               "cfloat": complex64, "complex128": complex128, "cdouble": complex128}


def of_array(array):
    """The cygrad dtype of a numpy array (TypeError for element types cygrad lacks)."""
    d = _BY_NUMPY.get(array.dtype)
    if d is None:
        raise TypeError(f"cygrad has no dtype for numpy arrays of {array.dtype}; it supports "
                        f"{', '.join(x.name for x in ALL)}")
    return d


def as_dtype(value):
    """A cygrad dtype from a cygrad dtype, a name ("float32", "long"), a numpy dtype or type,
    or a Python type (float -> the default float dtype, int -> int64, bool -> bool)."""
    if isinstance(value, dtype):
        return value
    if isinstance(value, unsupported_dtype):
        raise TypeError(f"cygrad does not support dtype {value.name}; it supports "
                        f"{', '.join(x.name for x in ALL)}")
    if value is float:
        return get_default_dtype()
    if value is int:
        return int64
    if value is bool:
        return bool_
    if isinstance(value, str):
        name = value.removeprefix("torch.").removeprefix("cygrad.")
        found = _BY_NAME.get(name)
        if found is not None:
            return found
        if name in _UNSUPPORTED:
            raise TypeError(f"cygrad does not support dtype {name}; it supports "
                            f"{', '.join(x.name for x in ALL)}")
    try:
        found = _BY_NUMPY.get(np.dtype(value))
    except TypeError:
        found = None
    if found is None:
        raise TypeError(f"{value!r} is not a dtype cygrad supports "
                        f"({', '.join(x.name for x in ALL)})")
    return found


def promote_types(type1, type2):
    """torch.promote_types: the smallest dtype both type1 and type2 convert to without losing
    their category (bool < integer < float)."""
    a, b = as_dtype(type1), as_dtype(type2)
    if a is b:
        return a
    if a.is_floating_point or b.is_floating_point:
        if a.is_floating_point and b.is_floating_point:
            return float64
        return a if a.is_floating_point else b
    return _BY_NUMPY[np.promote_types(a.numpy, b.numpy)]  # numpy and torch agree on integers


def _scalar_dtype(value):
    if isinstance(value, (bool, np.bool_)):
        return bool_
    if isinstance(value, numbers.Integral):
        return int64
    if isinstance(value, numbers.Real):
        return get_default_dtype()
    raise TypeError(f"cygrad cannot compute with a {type(value).__name__} ({value!r})")


def result_type(*operands):
    """torch.result_type over tensors and Python numbers (see the module docstring)."""
    ranks = [None, None, None]  # dimensioned tensors, zero-dim tensors, Python numbers
    for x in operands:
        if hasattr(x, "_data"):
            d, rank = _BY_NUMPY[x._data.dtype], 0 if x._data.ndim else 1
        else:
            d, rank = _scalar_dtype(x), 2
        ranks[rank] = d if ranks[rank] is None else promote_types(ranks[rank], d)
    return _combine(ranks[0], _combine(ranks[1], ranks[2]))


def _combine(higher, lower):
    """The dtype of a higher-ranked group of operands, raised by a lower-ranked group only
    where that brings a higher category."""
    if higher is None:
        return lower
    if lower is None or lower._category <= higher._category:
        return higher
    return promote_types(higher, lower) if higher._category == 0 or lower._category == 2 \
        else higher


def can_cast(from_, to):
    """torch.can_cast: whether a cast keeps the category (no float -> int, no int -> bool)."""
    from_, to = as_dtype(from_), as_dtype(to)
    return from_._category <= to._category


def get_default_dtype():
    """The dtype Python floats and float lists become (float32 unless changed)."""
    return _state.local.default_dtype


def set_default_dtype(d):
    """Set the default float dtype: float32 or float64. Called from the main thread it sets the
    process default; from another thread, that thread's own (see cygrad._state)."""
    d = as_dtype(d)
    if not d.is_floating_point:
        raise TypeError(f"only floating-point types are supported as the default type, got {d}")
    _state.set_default("default_dtype", d)


class finfo:
    """torch.finfo: machine limits of a float dtype (bits, eps, max, min, tiny, resolution)."""

    def __init__(self, type=None):
        if isinstance(type, unsupported_dtype):  # limits of dtypes cygrad only names, as
            self._of_unsupported(type)  # torch's (models take a mask value from them)
            return
        d = get_default_dtype() if type is None else as_dtype(type)
        if not d.is_floating_point:
            raise TypeError(f"finfo takes a floating-point dtype, got {d}")
        self._of(np.finfo(d.numpy), d.name)

    def _of(self, info, name):
        self.dtype, self.bits = name, info.bits
        self.eps, self.max, self.min = float(info.eps), float(info.max), float(info.min)
        self.tiny = self.smallest_normal = float(info.tiny)
        self.resolution = 10.0 ** -int(info.precision)  # (torch's: a Python float, 1e-06)

    def _of_unsupported(self, d):
        if d is bfloat16:  # 8 exponent bits, 7 stored fraction bits (numpy has no bfloat16)
            self.dtype, self.bits, self.eps, self.resolution = "bfloat16", 16, 2.0 ** -7, 0.01
            self.max = (2.0 - 2.0 ** -7) * 2.0 ** 127
            self.min, self.tiny = -self.max, 2.0 ** -126
            self.smallest_normal = self.tiny
            return
        half = {"float16": (np.float16, "float16"), "complex64": (np.float32, "float32"),
                "complex128": (np.float64, "float64")}[d.name]  # complex: its parts' limits
        self._of(np.finfo(half[0]), half[1])

    def __repr__(self):
        return (f"finfo(resolution={self.resolution}, min={self.min:g}, max={self.max:g}, "
                f"eps={self.eps:g}, smallest_normal={self.tiny:g}, tiny={self.tiny:g}, "
                f"dtype={self.dtype})")


class iinfo:
    """torch.iinfo: limits of an integer dtype (bits, min, max)."""

    def __init__(self, type):
        d = as_dtype(type)
        if d.is_floating_point:
            raise TypeError(f"iinfo takes an integer dtype, got {d}")
        info = np.iinfo(d.numpy) if d is not bool_ else None
        self.dtype = d.name
        self.bits = 8 if info is None else info.bits
        self.min, self.max = (0, 1) if info is None else (int(info.min), int(info.max))

    def __repr__(self):
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"
