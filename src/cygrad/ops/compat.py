"""torch names a program reaches for that are other ops under another form: in-place forms
(addcdiv_, addcmul_, lerp_, cumsum_, cumprod_, nan_to_num_, logical_not_, bitwise_not_),
small helpers (positive, float_power, heaviside, sum_to_size,
split_with_sizes, Tensor.unfold, logcumsumexp, quantile, nanquantile, unravel_index,
scalar_tensor), predicates (is_same_size, is_signed, is_nonzero, isreal), the nn.functional
functions torch also has at the top level, and the process settings torch programs set
(deterministic algorithms, float32 matmul precision, default device), the writes of one
tensor into another (fill_diagonal_, masked_scatter, select/slice/diagonal_scatter), cross,
addr and weight normalisation's norm_except_dim. Gradients are those of the ops they are made
of."""

import math

import numpy as np

from .. import dtypes
from ..tensor import _LEGACY_NAMES, Tensor, _wrap
from . import registry
from .registry import export


def _f(name):
    return registry.FUNCTIONS[name]


def _inplace(name):
    """self = name(self, ...): the op's result written into self (its graph, its version)."""
    def inplace(self, *args, **kwargs):
        return self._write(_f(name)(self._inplace_input(), *args, **kwargs))

    inplace.__name__ = inplace.__qualname__ = name + "_"
    inplace.__doc__ = f"In place: self = {name}(self, ...)."
    return inplace


for _name in ("addcdiv", "addcmul", "lerp", "cumsum", "cumprod", "nan_to_num", "logical_not",
              "bitwise_not", "addmm", "addmv", "addbmm", "baddbmm", "mvlgamma"):
    registry.METHODS[_name + "_"] = _inplace(_name)
registry.FUNCTIONS["addmv_"] = registry.METHODS["addmv_"]  # torch.addmv_(input, mat, vec)


@export("mvlgamma", method=True)
def mvlgamma(input, p):
    """The multivariate log-gamma of dimension p: sum_{i < p} lgamma(x - i / 2) +
    p (p - 1) / 4 log(pi), as torch's: the terms from x - (p - 1) / 2 up to x along a new last
    dimension, summed. As torch 2's, no domain check: at or below (p - 1) / 2 the terms' lgamma
    gives what it gives (inf at the poles)."""
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)):
        raise TypeError(f"mvlgamma(): argument 'p' must be int, not {type(p).__name__}")
    if p < 1:
        raise RuntimeError("p has to be greater than or equal to 1")
    if not input.is_floating_point():
        input = input.type(dtypes.get_default_dtype())
    steps = _f("arange")(-(p - 1) / 2, 0.5, 0.5, dtype=input.dtype)
    terms = input.unsqueeze(-1) + steps
    return terms.lgamma().sum(-1) + p * (p - 1) / 4 * math.log(math.pi)


# ---------------------------------------------------------------------- shape helpers

@export("positive", method=True)
def positive(input):
    """input itself (torch's unary plus); bool input raises as torch's."""
    if input.dtype == dtypes.bool_:
        raise RuntimeError("The `+` operator, on a bool tensor is not supported.")
    return input


@export("sum_to_size", function=False, method=True)
def sum_to_size(self, *size):
    """self summed down to `size` (which it must expand to): the gradient of an expand."""
    size = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else size
    shape = tuple(self.shape)
    if len(size) > len(shape) or any(s not in (1, d) for s, d in
                                     zip(size, shape[len(shape) - len(size):])):
        raise RuntimeError(f"size {{{', '.join(map(str, size))}}} is not expandable to size "
                           f"{{{', '.join(map(str, shape))}}}.")
    lead = len(shape) - len(size)
    out = self.sum(tuple(range(lead))) if lead else self
    dims = tuple(i for i, s in enumerate(size) if s == 1 and out.shape[i] != 1)
    return out.sum(dims, keepdim=True) if dims else out


@export("split_with_sizes", method=True)
def split_with_sizes(input, split_sizes, dim=0):
    """input.split(split_sizes, dim), the sizes summing to that dim's length."""
    split_sizes = [int(s) for s in split_sizes]
    length = input.shape[dim]
    if sum(split_sizes) != length:
        raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {length} "
                           f"(input tensor's size at dimension {dim}), but got "
                           f"split_sizes={split_sizes}")
    return input.split(split_sizes, dim)


@export("unfold", function=False, method=True)
def unfold(self, dimension, size, step):
    """Every window of `size` elements along `dimension`, `step` apart, as a new last dim:
    shape (..., (n - size) // step + 1, ..., size). A copy here (torch: a view)."""
    d = dimension + max(self.dim(), 1) if dimension < 0 else dimension
    if not 0 <= d < max(self.dim(), 1):
        raise IndexError(f"Dimension out of range (expected to be in range of "
                         f"[{-max(self.dim(), 1)}, {max(self.dim(), 1) - 1}], but got "
                         f"{dimension})")
    n = self.shape[d] if self.dim() else 1
    if size > n:
        raise RuntimeError(f"maximum size for tensor at dimension {d} is {n} but size is {size}")
    if step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")
    if self.dim() == 0:
        return self.reshape(1)
    count = (n - size) // step + 1
    starts = np.arange(count) * step
    index = _wrap((starts[:, None] + np.arange(size)[None, :]).reshape(-1))
    windows = self.index_select(d, index)  # (..., count * size, ...)
    shape = tuple(self.shape)
    windows = windows.reshape(shape[:d] + (count, size) + shape[d + 1:])
    return windows.movedim(d + 1, -1)


# ---------------------------------------------------------------------- arithmetic

@export("float_power", method=True)
def float_power(input, exponent):
    """input ** exponent in float64 (torch's: both promoted to double first)."""
    base = input.double() if isinstance(input, Tensor) else input
    power = exponent.double() if isinstance(exponent, Tensor) else float(exponent)
    if not isinstance(base, Tensor):
        return _wrap(np.asarray(float(base), np.float64)) ** power
    return base ** power


def _float_power_inplace(self, exponent):
    if self.dtype != dtypes.float64:
        raise RuntimeError(f"the base given to float_power_ has dtype "
                           f"{dtypes.SCALAR_NAMES[self.dtype.name]} but the operation's "
                           "result requires dtype Double")
    return self._write(float_power(self._inplace_input(), exponent))


registry.METHODS["float_power_"] = _float_power_inplace


@export("heaviside", method=True)
def heaviside(input, values):
    """0 where input < 0, values where input == 0, 1 where input > 0 (no gradient, as torch's
    is not implemented)."""
    if not isinstance(values, Tensor):
        raise TypeError(f"heaviside(): argument 'values' must be Tensor, not "
                        f"{type(values).__name__}")
    if input.dtype != values.dtype:
        raise RuntimeError(f"heaviside is not yet implemented for tensors with different "
                           f"dtypes, got {input.dtype} and {values.dtype}")
    x, v = np.broadcast_arrays(input._data, values._data)
    out = np.where(x == 0, v, (x > 0).astype(x.dtype))
    return _wrap(np.ascontiguousarray(out.astype(x.dtype)))


@export("logcumsumexp", method=True)
def logcumsumexp(input, dim):
    """log(cumsum(exp(input))) along dim, stably: each output the logaddexp of the one before
    and the next input (a scan, one op a step: no overflow, no underflow to -inf; -inf inputs
    stay -inf, their gradient NaN as torch's)."""
    if input.dim() == 0:
        return input * 1
    d = dim + input.dim() if dim < 0 else dim
    if input.shape[d] == 0:
        return input * 1
    parts = input.unbind(d)
    outs = [parts[0]]
    for part in parts[1:]:
        outs.append(_f("logaddexp")(outs[-1], part))
    return _f("stack")(outs, d)


# ---------------------------------------------------------------------- statistics

_QUANTILE_MODES = ("linear", "lower", "higher", "midpoint", "nearest")


@export("quantile", method=True)
def quantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    """The q-th quantiles of input (flattened when dim is None) along dim, torch's five
    interpolations between the sorted values at floor and ceil of q * (n - 1); NaN where the
    slice holds a NaN. q a float or a 1-D tensor (its values then lead the result's shape)."""
    return _quantile(input, q, dim, keepdim, interpolation, "quantile", False)


@export("nanquantile", method=True)
def nanquantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    """quantile ignoring NaNs (NaN only where a slice is all NaN)."""
    return _quantile(input, q, dim, keepdim, interpolation, "nanquantile", True)


def _quantile(input, q, dim, keepdim, interpolation, where, ignore_nan):
    if not isinstance(input, Tensor):
        raise TypeError(f"{where}(): argument 'input' must be Tensor, not "
                        f"{type(input).__name__}")
    if not input.is_floating_point():
        raise RuntimeError(f"{where}() input tensor must be either float or double dtype")
    if interpolation not in _QUANTILE_MODES:
        raise RuntimeError(f"{where}() interpolation must be one of linear, lower, higher, "
                           f"midpoint or nearest. Got {interpolation}")
    scalar_q = not isinstance(q, Tensor)
    qs = np.asarray([float(q)] if scalar_q else q._data, np.float64).reshape(-1)
    if not scalar_q and q.dim() > 1:
        raise RuntimeError(f"{where}() q must be a scalar or 1D tensor")
    if not scalar_q and q.dtype != input.dtype:
        raise RuntimeError(f"{where}() q tensor must be same dtype as the input tensor")
    if ((qs < 0) | (qs > 1)).any():
        raise RuntimeError(f"{where}() q values must be in the range [0, 1]")
    if input.numel() == 0:
        raise RuntimeError(f"{where}() input tensor must be non-empty")
    x = input.reshape(-1) if dim is None else input
    d = 0 if dim is None else (dim + x.dim() if dim < 0 else dim)
    x = x.movedim(d, -1) if x.dim() else x.reshape(1)
    values = x.sort(-1).values  # NaN sorts last
    n = values.shape[-1]
    nan = x.detach().isnan()
    count = (~nan).sum(-1, keepdim=True)._data if ignore_nan else None
    outs = []
    for qv in qs:
        if ignore_nan:  # positions within each slice's non-NaN values
            pos = qv * np.maximum(count - 1, 0).astype(np.float64)
        else:
            pos = np.full(values.shape[:-1] + (1,), qv * (n - 1))
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(np.ceil(pos).astype(np.int64), n - 1)
        frac = pos - lo
        vlo = values.gather(-1, _wrap(lo))
        vhi = values.gather(-1, _wrap(hi))
        if interpolation == "lower":
            out = vlo
        elif interpolation == "higher":
            out = vhi
        elif interpolation == "midpoint":
            out = vlo + (vhi - vlo) * 0.5
        elif interpolation == "nearest":
            pick = np.round(pos).astype(np.int64)  # (half to even, as torch's round)
            out = values.gather(-1, _wrap(np.minimum(pick, n - 1)))
        else:
            out = vlo + (vhi - vlo) * _wrap(frac.astype(input._data.dtype))
        if ignore_nan:
            out = out.masked_fill(_wrap(count == 0), float("nan"))
        else:
            out = out.masked_fill(nan.any(-1, keepdim=True), float("nan"))
        out = out.squeeze(-1)
        if keepdim:
            out = (out.reshape((1,) * input.dim()) if dim is None else out.unsqueeze(d))
        outs.append(out)
    if scalar_q:
        return outs[0]
    return _f("stack")(outs, 0)


# ---------------------------------------------------------------------- predicates

@export("is_same_size", method=True)
def is_same_size(input, other):
    """Whether the two tensors have the same shape."""
    return tuple(input.shape) == tuple(other.shape)


@export("is_signed", method=True)
def is_signed(input):
    """Whether input's dtype has a sign (every dtype but bool and uint8)."""
    return input.dtype not in (dtypes.bool_, dtypes.uint8)


@export("is_nonzero", method=True)
def is_nonzero(input):
    """bool of a one-element tensor (torch's errors otherwise)."""
    if input.numel() == 0:
        raise RuntimeError("Boolean value of Tensor with no values is ambiguous")
    if input.numel() > 1:
        raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
    return bool(input._data.reshape(-1)[0] != 0)


@export("isreal", method=True)
def isreal(input):
    """True everywhere: cygrad has no complex dtypes."""
    return _wrap(np.ones(input._data.shape, np.bool_))


def _get_device(self):
    """-1: a CPU tensor (torch's answer for one)."""
    return -1


registry.METHODS["get_device"] = _get_device


# ---------------------------------------------------------------------- creation and indices

@export("scalar_tensor")
def scalar_tensor(s, *, dtype=None, layout=None, device=None, pin_memory=None):
    """A 0-d tensor holding s, of the default float dtype unless dtype is given."""
    return _f("tensor")(s, dtype=dtype if dtype is not None else dtypes.get_default_dtype())


@export("unravel_index")
def unravel_index(indices, shape):
    """The coordinates of flat indices in a tensor of `shape`: a tuple of int64 tensors, one a
    dim, each of indices' shape (negative indices count from the end, as torch's)."""
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s)
                                                                            for s in shape)
    if isinstance(indices, Tensor):
        if indices.is_floating_point() or indices.dtype == dtypes.bool_:
            raise TypeError("expected 'indices' to be integer dtype, but got "
                            f"{dtypes.SCALAR_NAMES[indices.dtype.name]}")
        flat = indices._data.astype(np.int64)
    else:
        flat = np.asarray(indices, np.int64)
    if any(s < 0 for s in shape):
        raise ValueError("'shape' cannot have negative values, but got "
                         f"{tuple(shape)}")
    total = math.prod(shape)
    if flat.size and ((flat >= total).any() or (flat < -total).any()):
        raise RuntimeError(f"'indices' must be in range [-{total}, {total - 1}]")
    flat = np.where(flat < 0, flat + total, flat)
    coords = np.unravel_index(flat, shape) if shape else ()
    return tuple(_wrap(np.ascontiguousarray(np.asarray(c, np.int64))) for c in coords)


# ---------------------------------------------------------------------- process settings

_DETERMINISTIC = {"on": False, "warn_only": False}
_MATMUL_PRECISION = {"value": "highest"}


@export("use_deterministic_algorithms")
def use_deterministic_algorithms(mode, *, warn_only=False):
    """Recorded, as torch records it: every cygrad kernel is deterministic whatever this says
    (each output element one fixed sequence of operations, at any thread count)."""
    if not isinstance(mode, bool):
        raise RuntimeError(f"use_deterministic_algorithms expects a bool, but got "
                           f"{type(mode).__name__}")
    _DETERMINISTIC["on"], _DETERMINISTIC["warn_only"] = mode, bool(warn_only)


@export("are_deterministic_algorithms_enabled")
def are_deterministic_algorithms_enabled():
    return _DETERMINISTIC["on"]


@export("is_deterministic_algorithms_warn_only_enabled")
def is_deterministic_algorithms_warn_only_enabled():
    return _DETERMINISTIC["warn_only"]


@export("set_float32_matmul_precision")
def set_float32_matmul_precision(precision):
    """Recorded ("highest", "high" or "medium"); cygrad's float32 products always compute in
    float32 with one fixed chain per element (no TF32 or bfloat16 shortcuts to allow)."""
    if precision not in ("highest", "high", "medium"):
        raise RuntimeError(f"Invalid precision value: {precision!r}; expected one of "
                           "'highest', 'high', 'medium'")
    _MATMUL_PRECISION["value"] = precision


@export("get_float32_matmul_precision")
def get_float32_matmul_precision():
    return _MATMUL_PRECISION["value"]


@export("get_default_device")
def get_default_device():
    """The CPU: the only device cygrad has."""
    from ..tensor import device

    return device("cpu")


@export("set_default_device")
def set_default_device(device):
    """Only the CPU (or None) is accepted: cygrad runs on the CPU alone."""
    if device is not None and str(device).split(":")[0] != "cpu":
        raise RuntimeError(f"cygrad runs on the CPU only, got device={device!r}")


@export("typename")
def typename(obj):
    """torch.typename: 'torch.FloatTensor'-style names for tensors (cygrad's dtypes), the
    qualified class name for anything else."""
    if isinstance(obj, Tensor):
        return f"torch.{_LEGACY_NAMES[obj.dtype]}"  # (the names Tensor.type() gives)
    module = getattr(type(obj), "__module__", "")
    name = type(obj).__qualname__
    return name if module in ("builtins", "__builtin__", None) else f"{module}.{name}"


# ---------------------------------------------------------------------- index fills, mode

def _index_mask(input, dim, index, where):
    """A bool array of input's shape: True at the index positions along dim."""
    d = dim + input.dim() if dim < 0 else dim
    idx = np.asarray(index._data if isinstance(index, Tensor) else index, np.int64).reshape(-1)
    n = input.shape[d] if input.dim() else 1
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"{where}(): index out of range for dimension {d} of size {n}")
    mask = np.zeros(n, bool)
    mask[idx] = True
    shape = [1] * max(input.dim(), 1)
    shape[d] = n
    return np.broadcast_to(mask.reshape(shape), tuple(input.shape)), d, idx


@export("index_fill", method=True)
def index_fill(input, dim, index, value):
    """input with the slices at `index` along dim set to value (no gradient reaches them)."""
    mask, _, _ = _index_mask(input, dim, index, "index_fill")
    return input.masked_fill(_wrap(np.ascontiguousarray(mask)), value)


@export("index_copy", method=True)
def index_copy(input, dim, index, source):
    """input with its slices at `index` along dim replaced by source's (in index order):
    gradients reach input outside them and source."""
    mask, d, idx = _index_mask(input, dim, index, "index_copy")
    cleared = input.masked_fill(_wrap(np.ascontiguousarray(mask)), 0)
    return cleared.index_add(d, _wrap(idx), source)


for _name in ("index_fill", "index_copy"):
    registry.METHODS[_name + "_"] = _inplace(_name)


@export("mode", method=True)
def mode(input, dim=-1, keepdim=False):
    """The most frequent value along dim (the smallest of those tied) and the index of its
    last occurrence, as torch's: (values, indices)."""
    from .reduction import values_indices

    x = input if input.dim() else input.reshape(1)
    d = dim + x.dim() if dim < 0 else dim
    moved = np.moveaxis(x._data, d, -1)
    rows = moved.reshape(-1, moved.shape[-1])
    picks = np.empty(rows.shape[0], np.int64)
    for r, row in enumerate(rows):
        values, counts = np.unique(row, return_counts=True)  # sorted: ties take the smallest
        best = values[np.argmax(counts)]
        picks[r] = np.nonzero(row == best)[0][-1]
    index = _wrap(picks.reshape(moved.shape[:-1] + (1,)))
    index = index.movedim(-1, d)
    out = x.gather(d, index)
    if not keepdim:
        out, index = out.squeeze(d), index.squeeze(d)
    if input.dim() == 0:
        out, index = out.reshape(()), index.reshape(())
    return values_indices["mode"](out, index)


@export("nanmedian", method=True)
def nanmedian(input, dim=None, keepdim=False):
    """The lower median ignoring NaN (NaN where a slice has nothing else); with dim, torch's
    (values, indices)."""
    from .reduction import values_indices

    if dim is None:
        flat = input.reshape(-1)
        count = int((~np.isnan(flat._data)).sum()) if flat.is_floating_point() else \
            flat.numel()
        s = flat.sort().values
        return s[(count - 1) // 2 if count else max(flat.numel() - 1, 0) // 2]
    x = input if input.dim() else input.reshape(1)
    d = dim + x.dim() if dim < 0 else dim
    s = x.sort(d)
    n = x.shape[d]
    counts = (~np.isnan(x._data)).sum(d, keepdims=True) if x.is_floating_point() else \
        np.full(tuple(1 if i == d else k for i, k in enumerate(x.shape)), n)
    k = np.where(counts > 0, (counts - 1) // 2, (n - 1) // 2).astype(np.int64)
    values, indices = s.values.gather(d, _wrap(k)), s.indices.gather(d, _wrap(k))
    if not keepdim:
        values, indices = values.squeeze(d), indices.squeeze(d)
    return values_indices["nanmedian"](values, indices)


# ---------------------------------------------------------------------- in-place view ops

def _inplace_view(name):
    """self = self.name(...), changing self's shape in place (its memory stays): torch's
    unsqueeze_, squeeze_, t_, transpose_, swapaxes_, swapdims_."""
    def method(self, *args, **kwargs):
        from ..tensor import _local

        if self._op is not None:  # a graph's output: its node expects its shape
            raise NotImplementedError(f"{name}_ on a tensor in a graph is not supported in "
                                      f"cygrad: use the out-of-place {name}")
        if _local.grad_enabled and self._rg:
            raise RuntimeError("a leaf Variable that requires grad is being used in an "
                               "in-place operation.")
        self._data = getattr(self, name)(*args, **kwargs)._data
        return self

    method.__name__ = method.__qualname__ = name + "_"
    method.__doc__ = f"In place: self becomes self.{name}(...) (a view of the same memory)."
    return method


for _name in ("unsqueeze", "squeeze", "t", "transpose", "swapaxes", "swapdims"):
    registry.METHODS[_name + "_"] = _inplace_view(_name)


# ---------------------------------------------------------------------- integer and float bits

def _int_pair(input, other, where):
    for t in (input, other):
        if not isinstance(t, Tensor):
            raise TypeError(f"{where}(): arguments must be Tensors, got {type(t).__name__}")
        if t.is_floating_point() or t.dtype == dtypes.bool_:
            raise RuntimeError(f"\"{where}_cpu\" not implemented for "
                               f"'{dtypes.SCALAR_NAMES[t.dtype.name]}'")
    return np.broadcast_arrays(input._data, other._data)


@export("gcd", method=True)
def gcd(input, other):
    """The greatest common divisor, elementwise (integers; gcd(0, 0) = 0)."""
    a, b = _int_pair(input, other, "gcd")
    return _wrap(np.ascontiguousarray(np.gcd(a, b)))


@export("lcm", method=True)
def lcm(input, other):
    """The least common multiple, elementwise (integers; non-negative)."""
    a, b = _int_pair(input, other, "lcm")
    return _wrap(np.ascontiguousarray(np.abs(np.lcm(a, b))))


@export("frexp", method=True)
def frexp(input):
    """(mantissa, exponent) with input = mantissa * 2**exponent, |mantissa| in [0.5, 1)
    (0 for 0); the exponent int32, as torch's."""
    from .._return_types import return_type

    if not input.is_floating_point():
        raise RuntimeError("torch.frexp() only supports floating-point dtypes")
    m, e = np.frexp(input._data)
    pair = return_type("frexp", ["mantissa", "exponent"])
    return pair(_wrap(np.ascontiguousarray(m)), _wrap(np.ascontiguousarray(e.astype(np.int32))))


@export("ldexp", method=True)
def ldexp(input, other):
    """input * 2**other (a float result; gradient to input)."""
    scale = (other.type(dtypes.float64) if isinstance(other, Tensor) else float(other))
    x = input if input.is_floating_point() else input.type(dtypes.get_default_dtype())
    return x * _f("exp2")(scale).type(x.dtype) if isinstance(scale, Tensor) else x * 2.0 ** scale


@export("nextafter", method=True)
def nextafter(input, other):
    """The next floating-point value after input towards other (no gradient)."""
    a, b = np.broadcast_arrays(input._data, other._data)
    return _wrap(np.ascontiguousarray(np.nextafter(a, b)))


for _name in ("gcd", "lcm", "ldexp"):
    registry.METHODS[_name + "_"] = _inplace(_name)


# ---------------------------------------------------------------------- weight normalisation

@export("norm_except_dim")
def norm_except_dim(v, pow=2, dim=0):
    """The pow-norm of v over every dimension but dim, shaped to broadcast against v (size 1
    elsewhere); dim=-1: the norm of the whole tensor, 0-d (torch's meaning of -1 here, not the
    last dimension). What weight_norm divides by."""
    if dim == -1:
        return v.norm(pow)
    if dim < 0 or dim >= v.ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of [-1, {v.ndim - 1}]"
                         f", but got {dim})")
    if dim == 0:
        shape = (v.shape[0],) + (1,) * (v.ndim - 1)
        return v.contiguous().view(v.shape[0], -1).norm(pow, 1).view(shape)
    if dim == v.ndim - 1:
        shape = (1,) * (v.ndim - 1) + (v.shape[-1],)
        return v.contiguous().view(-1, v.shape[-1]).norm(pow, 0).view(shape)
    return norm_except_dim(v.transpose(0, dim), pow, 0).transpose(0, dim)


@export("_weight_norm")
def _weight_norm(v, g, dim=0):
    """v * (g / norm_except_dim(v, 2, dim)): weight normalisation's weight (Salimans and
    Kingma, 2016), a direction v scaled to norm g along dim (-1: the whole tensor)."""
    return v * (g / norm_except_dim(v, 2, dim))


# ---------------------------------------------------------------------- scatter-like writes

@export("cross", method=True)
def cross(input, other, dim=None):
    """The cross product of 3-vectors along dim; dim=None: the first dimension of size 3 (with
    torch's deprecation warning), else as linalg.cross."""
    from .. import linalg

    if dim is None:
        from .._warn import warn

        shape = registry.FUNCTIONS["broadcast_shapes"](input.shape, other.shape)
        sizes = [d for d, n in enumerate(shape) if n == 3]
        if not sizes:
            raise RuntimeError(f"no dimension of size 3 in input (shapes {list(input.shape)} "
                               f"and {list(other.shape)})")
        warn("Using torch.cross without specifying the dim arg is deprecated.\n"
             "Please either pass the dim explicitly or simply use torch.linalg.cross.\n"
             "The default value of dim will change to agree with that of linalg.cross in a "
             "future release.")
        dim = sizes[0]
    return linalg.cross(input, other, dim=dim)


@export("addr", method=True)
def addr(input, vec1, vec2, *, beta=1, alpha=1):
    """beta * input + alpha * outer(vec1, vec2) (beta=0: input not read, its NaNs dropped)."""
    if vec1.ndim != 1 or vec2.ndim != 1:
        raise RuntimeError(f"addr: Expected 1-D argument vec1, but got {vec1.ndim}-D"
                           if vec1.ndim != 1 else
                           f"addr: Expected 1-D argument vec2, but got {vec2.ndim}-D")
    product = _f("outer")(vec1, vec2)
    if alpha != 1:
        product = product * alpha
    if beta == 0:  # input's shape and a zero gradient, its values (NaNs too) not read
        keep = _wrap(np.ones(tuple(product.shape), bool))
        return _f("where")(keep, product, input)
    return (input if beta == 1 else input * beta) + product


registry.METHODS["addr_"] = lambda self, vec1, vec2, *, beta=1, alpha=1: \
    self._write(addr(self._inplace_input(), vec1, vec2, beta=beta, alpha=alpha))


def _diagonal_mask(shape, wrap):
    """The positions fill_diagonal_ writes: (i, i, ..., i), and with wrap a tall matrix's
    diagonal again from row width + 1 on, every width + 1 elements."""
    if len(shape) < 2:
        raise RuntimeError("dimensions must larger than 1")
    if len(shape) > 2 and any(n != shape[0] for n in shape[1:]):
        raise RuntimeError("all dimensions of input must be of equal length")
    mask = np.zeros(shape, bool)
    size = min(shape[0], shape[1])
    mask[(np.arange(size),) * len(shape)] = True
    h, w = shape[0], shape[1]
    if wrap and len(shape) == 2 and h > w + 1:
        step = w + 1
        flat = mask.reshape(-1)
        count = (h * w + step - 1) // step - size
        flat[step * w + step * np.arange(count)] = True
    return mask


def _fill_diagonal_(self, fill_value, wrap=False):
    """Write fill_value on the main diagonal, in place (see _diagonal_mask)."""
    mask = _wrap(_diagonal_mask(tuple(self.shape), wrap))
    return self._write(_f("masked_fill")(self._inplace_input(), mask, fill_value))


registry.METHODS["fill_diagonal_"] = _fill_diagonal_


@export("masked_scatter", method=True)
def masked_scatter(input, mask, source):
    """input with source's elements, in order, written where mask (broadcast to input) is
    True."""
    m = mask._data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        raise RuntimeError(f"masked_scatter_ only supports boolean masks, but got mask with "
                           f"dtype {dtypes.SCALAR_NAMES.get(m.dtype.name, m.dtype.name)}")
    if source.dtype != input.dtype:
        raise RuntimeError(f"masked_scatter: expected self and source to have same dtypes but "
                           f"got {input.dtype} and {source.dtype}")
    shape = np.broadcast_shapes(m.shape, tuple(input.shape))
    m = np.broadcast_to(m, shape)
    count = int(m.sum())
    if count > source.numel():
        raise RuntimeError("masked_scatter: Number of elements of source < number of ones in "
                           "mask")
    x = input.expand(*shape) if tuple(input.shape) != shape else input  # (torch's too)
    values = source.reshape(-1)[:count]
    return _f("index_put")(x, (_wrap(np.ascontiguousarray(m)),), values)


registry.METHODS["masked_scatter_"] = lambda self, mask, source: \
    self._write(masked_scatter(self._inplace_input(), mask, source))


def _embedded(input, src, where, name, view):
    """input with src written at `where` (an index tuple), src checked against the view of
    input it replaces."""
    if tuple(src.shape) != tuple(view.shape):
        raise RuntimeError(f"{name}: expected src to have a size equal to the slice of self. "
                           f"src size = {list(src.shape)}, slice size = {list(view.shape)}")
    if src.dtype != input.dtype:
        src = src.to(input.dtype)
    out = input.clone()
    out[where] = src
    return out


@export("select_scatter", method=True)
def select_scatter(input, src, dim, index):
    """input with src written at index along dim (the slice input.select(dim, index))."""
    d = dim + input.ndim if dim < 0 else dim
    view = input.select(d, index)
    where = (slice(None),) * d + (index,)
    return _embedded(input, src, where, "select_scatter", view)


@export("slice_scatter", method=True)
def slice_scatter(input, src, dim=0, start=None, end=None, step=1):
    """input with src written over input[..., start:end:step, ...] (along dim)."""
    d = dim + input.ndim if dim < 0 else dim
    where = (slice(None),) * d + (slice(start, end, step),)
    return _embedded(input, src, where, "slice_scatter", input[where])


@export("diagonal_scatter", method=True)
def diagonal_scatter(input, src, offset=0, dim1=0, dim2=1):
    """input with src written over its diagonal input.diagonal(offset, dim1, dim2)."""
    view = input.diagonal(offset, dim1, dim2)
    if tuple(src.shape) != tuple(view.shape):
        raise RuntimeError(f"diagonal_scatter: expected src to have a size equal to the slice "
                           f"of self. src size = {list(src.shape)}, slice size = "
                           f"{list(view.shape)}")
    nd = input.ndim
    d1, d2 = dim1 % nd, dim2 % nd
    positions = np.moveaxis(np.indices(tuple(input.shape)), 0, -1)
    diag = np.diagonal(positions, offset, d1, d2)  # (..., n, nd): the positions in src's order
    diag = np.moveaxis(diag, -2, -1)
    index = tuple(_wrap(np.ascontiguousarray(diag[..., k])) for k in range(nd))
    return _f("index_put")(input.clone(), index, src.to(input.dtype))


# ---------------------------------------------------------------------- more torch names

@export("unique_consecutive", method=True)
def unique_consecutive(input, return_inverse=False, return_counts=False, dim=None):
    """input with each run of equal consecutive values (or slices along dim) kept once, in
    order; the inverse indices and the runs' lengths (int64) on request."""
    x = input._data
    if dim is None:
        flat = x.reshape(-1)
        new = np.ones(flat.size, bool)
        if flat.size > 1:
            new[1:] = flat[1:] != flat[:-1]
        values = flat[new]
        group = np.cumsum(new) - 1
        inverse = group.reshape(x.shape)
    else:
        d = dim + x.ndim if dim < 0 else dim
        if not 0 <= d < max(x.ndim, 1):
            raise IndexError(f"Dimension out of range (expected to be in range of "
                             f"[{-x.ndim}, {x.ndim - 1}], but got {dim})")
        rows = np.moveaxis(x, d, 0)
        n = rows.shape[0]
        new = np.ones(n, bool)
        if n > 1:
            new[1:] = np.any((rows[1:] != rows[:-1]).reshape(n - 1, -1), axis=1)
        values = np.ascontiguousarray(np.moveaxis(rows[new], 0, d))
        inverse = np.cumsum(new) - 1
    counts = np.diff(np.append(np.flatnonzero(new), new.size))
    out = [_wrap(np.ascontiguousarray(values))]
    if return_inverse:
        out.append(_wrap(np.ascontiguousarray(inverse.astype(np.int64))))
    if return_counts:
        out.append(_wrap(counts.astype(np.int64)))
    return out[0] if len(out) == 1 else tuple(out)


@export("renorm", method=True)
def renorm(input, p, dim, maxnorm):
    """input with each slice along dim whose p-norm exceeds maxnorm scaled down to norm
    maxnorm (by maxnorm / (norm + 1e-7), torch's); the others unchanged."""
    if not input.is_floating_point():
        raise RuntimeError("renorm: input needs to be floating point")
    if p <= 0:
        raise RuntimeError(f"renorm: non-positive-norm not supported (got p={p})")
    if maxnorm < 0:
        raise RuntimeError(f"renorm: expected maxnorm to be >= 0 but got {maxnorm}")
    d = dim + input.ndim if dim < 0 else dim
    others = tuple(k for k in range(input.ndim) if k != d)
    norm = input.norm(p, others, True)
    over = norm > maxnorm
    factor = _f("where")(over, maxnorm / (norm + 1e-7), _f("ones_like")(norm))
    return input * factor


registry.METHODS["renorm_"] = lambda self, p, dim, maxnorm: \
    self._write(renorm(self._inplace_input(), p, dim, maxnorm))


@export("put", method=True)
def put(input, index, source, accumulate=False):
    """input with source's values written (or, with accumulate, added in index order) at the
    flat indices of index (negative from the end)."""
    n = input.numel()
    idx = (index._data if isinstance(index, Tensor) else np.asarray(index)).astype(np.int64)
    if idx.size != source.numel():
        raise RuntimeError(f"put_(): Expected source and index to have the same number of "
                           f"elements, but got source.numel() = {source.numel()}, "
                           f"index.numel() = {idx.size}")
    bad = (idx >= n) | (idx < -n)
    if np.any(bad):
        raise IndexError(f"out of range: tried to access index {int(idx[bad][0])} on a tensor "
                         f"of {n} elements.")
    flat_idx = _wrap(np.ascontiguousarray(np.where(idx < 0, idx + n, idx).reshape(-1)))
    flat = input.reshape(-1)
    values = source.reshape(-1).to(input.dtype)
    if accumulate:
        out = _f("index_add")(flat, 0, flat_idx, values)
    else:
        out = _f("index_put")(flat, (flat_idx,), values)
    return out.reshape(tuple(input.shape))


registry.METHODS["put_"] = lambda self, index, source, accumulate=False: \
    self._write(put(self._inplace_input(), index, source, accumulate))


def _real(value):
    if isinstance(value, str) or not hasattr(value, "__float__"):
        raise TypeError(f"must be real number, not {type(value).__name__}")
    return float(value)


def _python_elements(self, name, fn, args):
    """torch's apply_ / map_: fn on each element (as a Python number), written back in place
    in self's dtype (an integer dtype truncates, as torch's cast does)."""
    if self.requires_grad:
        raise RuntimeError(f"Can't call {name}() on Variable that requires grad. Use "
                           f"var.detach().{name}() instead.")
    kind = self._data.dtype.kind
    cast = bool if kind == "b" else int if kind in "iu" else _real
    values = [cast(fn(*vs)) for vs in zip(*[a.ravel().tolist() for a in args])]
    self._write(_wrap(np.asarray(values, dtype=self._data.dtype).reshape(self._data.shape)))
    return self


@export("apply_", method=True, function=False)
def apply_(self, callable):
    """Each element replaced by callable(element), in place: one Python call an element (CPU
    tensors, slow, as in torch)."""
    return _python_elements(self, "apply_", callable, [self._data])


@export("map_", method=True, function=False)
def map_(self, tensor, callable):
    """Each element replaced by callable(element, tensor's element), tensor broadcast to self's
    shape, in place."""
    try:
        other = np.broadcast_to(tensor._data, self._data.shape)
    except ValueError:
        raise RuntimeError(f"The expanded size of the tensor ({list(self._data.shape)}) must "
                           f"match the existing size ({list(tensor._data.shape)}): map_ expands "
                           "tensor to self's shape") from None
    return _python_elements(self, "map_", callable, [self._data, other])


# ---------------------------------------------------------------------- aten's signatures
# nn.functional functions torch also has at its top level under ATen's own signatures
# (torch.batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps,
# cudnn_enabled), reductions as ints 0/1/2 for none/mean/sum, ...): each the F function's
# computation, its arguments put in F's places. (Those whose two signatures agree are F's
# functions themselves: cygrad/__init__.py.) A reduction left out is 0, none, as torch 2.13's
# Python bindings give (ATen's schemas say Mean; torch.kl_div(x, y) returns every element).

def _F(name):
    from ..nn import functional

    return getattr(functional, name)


_REDUCTIONS = ("none", "mean", "sum")


def _reduction(value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
            or not 0 <= value < 3:
        raise RuntimeError(f"{value!r} is not a valid value for reduction: 0 (none), 1 (mean) "
                           "or 2 (sum)")
    return _REDUCTIONS[value]


@export("batch_norm")
def batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps,
               cudnn_enabled):
    return _F("batch_norm")(input, running_mean, running_var, weight, bias, training, momentum,
                            eps)


@export("instance_norm")
def instance_norm(input, weight, bias, running_mean, running_var, use_input_stats, momentum,
                  eps, cudnn_enabled):
    return _F("instance_norm")(input, running_mean, running_var, weight, bias, use_input_stats,
                               momentum, eps)


@export("layer_norm")
def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5, cudnn_enable=True):
    return _F("layer_norm")(input, normalized_shape, weight, bias, eps)


@export("group_norm")
def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5, cudnn_enabled=True):
    return _F("group_norm")(input, num_groups, weight, bias, eps)


@export("embedding")
def embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    """torch.embedding(weight, indices): the table first; padding_idx -1 for none."""
    return _F("embedding")(indices, weight, None if padding_idx == -1 else padding_idx,
                           scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)


def _dropout(name, fn_name):
    def dropout(input, p, train):
        return _F(fn_name)(input, p, train)

    def dropout_(input, p, train):
        return _F(fn_name)(input, p, train, inplace=True)

    export(name)(dropout)
    export(name + "_")(dropout_)


_dropout("dropout", "dropout")
_dropout("alpha_dropout", "alpha_dropout")


@export("celu")
def celu(input, alpha=1.0):
    return _F("celu")(input, alpha)


@export("celu_")
def celu_(input, alpha=1.0):
    return _F("celu")(input, alpha, inplace=True)


@export("rrelu")
def rrelu(input, lower=0.125, upper=1.0 / 3.0, training=False, generator=None):
    _no_generator(generator, "rrelu")
    return _F("rrelu")(input, lower, upper, training)


@export("rrelu_")
def rrelu_(input, lower=0.125, upper=1.0 / 3.0, training=False, generator=None):
    _no_generator(generator, "rrelu_")
    return _F("rrelu")(input, lower, upper, training, inplace=True)


def _no_generator(generator, name):
    if generator is not None:
        raise NotImplementedError(f"torch.{name}(generator=...) is not built in cygrad: its "
                                  "slopes come from the default generator (seed it with "
                                  "manual_seed)")


def _max_pool(dims):
    def max_pool(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
        return _F(f"max_pool{dims}d")(input, kernel_size, stride if stride != () and stride
                                      != [] else None, padding, dilation, ceil_mode)

    export(f"max_pool{dims}d")(max_pool)


for _dims in (1, 2, 3):
    _max_pool(_dims)


@export("adaptive_max_pool1d")
def adaptive_max_pool1d(input, output_size):
    """(values, indices), as torch's top-level form always returns."""
    return _F("adaptive_max_pool1d")(input, output_size, return_indices=True)


@export("constant_pad_nd")
def constant_pad_nd(input, pad, value=0):
    return _F("pad")(input, pad, value=value)


@export("binary_cross_entropy_with_logits")
def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, reduction=0):
    return _F("binary_cross_entropy_with_logits")(input, target, weight,
                                                  reduction=_reduction(reduction),
                                                  pos_weight=pos_weight)


@export("kl_div")
def kl_div(input, target, reduction=0, *, log_target=False):
    return _F("kl_div")(input, target, reduction=_reduction(reduction), log_target=log_target)


@export("poisson_nll_loss")
def poisson_nll_loss(input, target, log_input, full, eps, reduction):
    return _F("poisson_nll_loss")(input, target, log_input, full, eps=eps,
                                  reduction=_reduction(reduction))


@export("cosine_embedding_loss")
def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction=0):
    return _F("cosine_embedding_loss")(input1, input2, target, margin,
                                       reduction=_reduction(reduction))


@export("margin_ranking_loss")
def margin_ranking_loss(input1, input2, target, margin=0.0, reduction=0):
    return _F("margin_ranking_loss")(input1, input2, target, margin,
                                     reduction=_reduction(reduction))


@export("hinge_embedding_loss")
def hinge_embedding_loss(input, target, margin=1.0, reduction=0):
    return _F("hinge_embedding_loss")(input, target, margin, reduction=_reduction(reduction))


@export("detach")
def detach(input):
    return input.detach()


@export("rsub")
def rsub(input, other, *args, alpha=1):
    """other - alpha * input (torch.sub with its operands swapped); alpha positional only
    when other is a number, as torch's overloads."""
    if args:
        if isinstance(other, Tensor) or len(args) > 1:
            raise TypeError("rsub() received an invalid combination of arguments: alpha is "
                            "keyword-only when other is a Tensor (rsub(input, other, *, "
                            "alpha=1) or rsub(input, number, alpha=1))")
        alpha = args[0]
    return _f("sub")(other, input, alpha=alpha)


def _unsafe(name, safe):
    """torch.unsafe_<split>: <split> without torch's ban on writing into one of its outputs
    in place. Here the safe form allows that already (the write goes into the input's graph,
    CopySlices), so the two are one function; torch's unsafe form leaves the input's graph
    unaware of such a write instead."""
    def unsafe(input, *args, **kwargs):
        return _f(safe)(input, *args, **kwargs)

    unsafe.__doc__ = f"torch.{name}: {safe} (its outputs may be written in place)."
    export(name, method=True)(unsafe)


for _name, _safe in (("unsafe_chunk", "chunk"), ("unsafe_split", "split"),
                     ("unsafe_split_with_sizes", "split_with_sizes")):
    _unsafe(_name, _safe)


def _prelu_method(self, weight):
    return _F("prelu")(self, weight)


def _hardshrink_method(self, lambd=0.5):
    return _F("hardshrink")(self, lambd)


for _name, _method in (("prelu", _prelu_method), ("hardshrink", _hardshrink_method)):
    _method.__name__ = _method.__qualname__ = _name
    registry.METHODS[_name] = _method
