"""Reductions over dims, and the softmax family, with torch's signatures.

Float sums (sum, mean, var, std, norm, logsumexp, and every gradient summed back to an
operand's shape) run through the backend's exact sum: one fixed summation tree shared by every
output element, whatever its position, the batch size or the thread count. Maximum, minimum,
any, all and the index reductions are exact by nature. torch's `axis=`/`keepdims=` spellings
are accepted where torch accepts them.
"""

import numpy as np

from .. import backend as B
from .. import dtypes
from .._return_types import return_type, return_types
from ..tensor import Tensor, _dim, _local, _wrap, apply
from . import Op, higher, registry
from .decompositions import NoDerivative
from .registry import export

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

values_indices = {name: return_type(name, ["values", "indices"])
                  for name in ("max", "min", "sort", "topk", "kthvalue", "median", "mode",
                               "cummax", "cummin", "nanmedian")}


def _axes(dim, ndim):
    """A sorted tuple of distinct normalised dims; None (or an empty list) means all."""
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        return tuple(range(ndim))
    dims = (dim,) if not isinstance(dim, (tuple, list)) else dim
    axes = tuple(sorted({_dim(d, ndim) for d in dims}))
    if len(axes) != len(dims):
        raise RuntimeError(f"dim {tuple(dims)} appears multiple times in the list of dims")
    return axes if ndim else ()


def _dim_args(dim, keepdim, kwargs, where):
    """torch's numpy-style aliases: axis= for dim, keepdims= for keepdim."""
    if "axis" in kwargs:
        dim = kwargs.pop("axis")
    if "keepdims" in kwargs:
        keepdim = kwargs.pop("keepdims")
    if kwargs:
        raise TypeError(f"{where}() got an unexpected keyword argument "
                        f"'{next(iter(kwargs))}'")
    return dim, bool(keepdim)


def float_sum(x, axes):
    """x summed over axes (a sorted tuple) with the backend's exact summation tree."""
    if not axes:
        return x.copy()
    if hasattr(B, "sum"):
        return B.sum(x, axes)
    kept = tuple(1 if i in axes else s for i, s in enumerate(x.shape))
    out = B.sum_to_shape(np.ascontiguousarray(x), kept)
    return out.reshape([s for i, s in enumerate(x.shape) if i not in axes])


def _keep(y, shape, axes, keepdim):
    """y (reduced dims removed) with the reduced dims kept as size 1 if keepdim."""
    if not keepdim:
        return y
    return y.reshape(tuple(1 if i in axes else s for i, s in enumerate(shape)))


def _restore(g, shape, axes, keepdim):
    """A reduction's output gradient reshaped to broadcast against its input."""
    if keepdim:
        return g
    return g.reshape(tuple(1 if i in axes else s for i, s in enumerate(shape)))


# ---------------------------------------------------------------------- sum, mean, prod

class Sum(Op):
    """y = x summed over dims"""

    rule = "dx = g broadcast to x.shape"
    linear = True
    saves_nothing = True

    def forward(self, x):
        self.shape = x.shape
        return _keep(float_sum(x, self.axes), x.shape, self.axes, self.keepdim)

    def backward(self, g):
        return (np.broadcast_to(_restore(g, self.shape, self.axes, self.keepdim), self.shape),)


def _out_dtype(input, dtype):
    if dtype is not None:
        return dtypes.as_dtype(dtype)
    return input.dtype if input.is_floating_point() else dtypes.int64


@export("sum", method=True)
def reduce_sum(input, dim=None, keepdim=False, *, dtype=None, **aliases):
    """The sum over dim (an int, a tuple, or None for all); integers sum in int64."""
    dim, keepdim = _dim_args(dim, keepdim, aliases, "sum")
    axes = _axes(dim, input._data.ndim)
    target = _out_dtype(input, dtype)
    if target.is_floating_point:
        x = input if input._data.dtype == target.numpy else input.type(target)
        return apply(Sum, x, axes=axes, keepdim=keepdim,
                     node="SumBackward0" if dim is None else "SumBackward1")
    return _wrap(np.asarray(input._data.sum(axis=axes, keepdims=keepdim, dtype=target.numpy)))


class Mean(Op):
    """y = x averaged over dims"""

    rule = "dx = g / n broadcast to x.shape (n = elements averaged)"
    linear = True
    saves_nothing = True

    def forward(self, x):
        self.shape, self.dtype = x.shape, x.dtype
        self.count = int(np.prod([x.shape[a] for a in self.axes]))
        total = float_sum(x, self.axes)
        with np.errstate(invalid="ignore", divide="ignore"):
            y = total / x.dtype.type(self.count)
        return _keep(np.asarray(y, x.dtype), x.shape, self.axes, self.keepdim)

    def backward(self, g):
        with np.errstate(invalid="ignore", divide="ignore"):
            g = _restore(g, self.shape, self.axes, self.keepdim) / self.dtype.type(self.count)
        return (np.broadcast_to(g, self.shape),)


@export("mean", method=True)
def mean(input, dim=None, keepdim=False, *, dtype=None, **aliases):
    """The mean over dim (floats only, as in torch; the mean of nothing is nan)."""
    dim, keepdim = _dim_args(dim, keepdim, aliases, "mean")
    target = input.dtype if dtype is None else dtypes.as_dtype(dtype)
    if not target.is_floating_point:
        raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be either a "
                           f"floating point or complex dtype. Got: {target.name.capitalize()}")
    x = input if input._data.dtype == target.numpy else input.type(target)
    return apply(Mean, x, axes=_axes(dim, input._data.ndim), keepdim=keepdim,
                 node="MeanBackward0" if dim is None else "MeanBackward1")


class NanToZero(Op):
    """y = 0 where x is NaN, else x"""

    rule = "dx = g * (x is not NaN)  (a product, as torch's nansum: inf * 0 is NaN)"

    def forward(self, x):
        self.keep = ~np.isnan(x)
        return np.where(self.keep, x, x.dtype.type(0))

    def backward(self, g):
        with np.errstate(invalid="ignore"):  # inf * 0: NaN, as torch gives
            return (g * self.keep,)


def _not_nan(input, where):
    if not isinstance(input, Tensor):
        raise TypeError(f"{where}(): argument 'input' must be Tensor, not "
                        f"{type(input).__name__}")
    if input.is_floating_point():
        return apply(NanToZero, input)
    return input


@export("nansum", method=True)
def nansum(input, dim=None, keepdim=False, *, dtype=None, **aliases):
    """The sum with NaN counted as zero (its gradient there is zero)."""
    dim, keepdim = _dim_args(dim, keepdim, aliases, "nansum")
    return reduce_sum(_not_nan(input, "nansum"), dim, keepdim, dtype=dtype)


@export("nanmean", method=True)
def nanmean(input, dim=None, keepdim=False, *, dtype=None, **aliases):
    """The mean of the elements that are not NaN (nan where there is none)."""
    dim, keepdim = _dim_args(dim, keepdim, aliases, "nanmean")
    if not input.is_floating_point() and dtype is None:
        raise RuntimeError(f"nanmean(): expected input to have floating point or complex dtype "
                           f"but got {dtypes.SCALAR_NAMES[input.dtype.name]}")
    total = nansum(input, dim, keepdim, dtype=dtype)
    count = reduce_sum(~input.isnan(), dim, keepdim)
    return total / count


class Prod(Op):
    """y = product of x over dim"""

    rule = "dx = g * y / x (with zeros: the product of the other elements)"
    saves, saves_output = (0,), True

    def forward(self, x):
        self.x = x
        self.y = np.prod(x, axis=self.axis, keepdims=True)
        return self.y if self.keepdim else np.squeeze(self.y, self.axis)

    def backward(self, g):
        x, y = self.x, self.y
        axis = self.axis if self.axis is not None else None
        g = g if self.keepdim or axis is None else np.expand_dims(g, axis)
        if not (x == 0).any():
            return (g * (y / x),)
        flat = x if axis is not None else x.reshape(-1)
        ax = axis if axis is not None else 0
        left = np.cumprod(np.concatenate([np.ones_like(np.take(flat, [0], ax)),
                                          np.take(flat, range(flat.shape[ax] - 1), ax)], ax), ax)
        rev = np.flip(flat, ax)
        right = np.flip(np.cumprod(np.concatenate([np.ones_like(np.take(rev, [0], ax)),
                                                   np.take(rev, range(rev.shape[ax] - 1), ax)],
                                                  ax), ax), ax)
        others = (left * right).reshape(x.shape)
        return (g * others,)

    def decompose(self, x):
        """The product as a tree of recorded multiplications (backward with create_graph=True
        differentiates this: no division, so zeros need no case)."""
        t, ax = (x.reshape(-1), 0) if self.axis is None else (x, self.axis)
        t = _product_tree(t, ax)
        if self.axis is None:
            return t.reshape(())
        return t if self.keepdim else t.squeeze(ax)


def _product_tree(t, ax):
    """The product of t along ax (kept, length 1) as a tree of recorded multiplications:
    halves multiplied pairwise until one element is left."""
    n = t.shape[ax]
    if n == 0:
        return t.sum(ax, keepdim=True) * 0 + 1
    while n > 1:
        h = n // 2
        p = t.narrow(ax, 0, h) * t.narrow(ax, h, h)
        t = p if n % 2 == 0 else registry.FUNCTIONS["cat"]([p, t.narrow(ax, 2 * h, 1)], ax)
        n = t.shape[ax]
    return t


@export("prod", method=True)
def prod(input, dim=None, keepdim=False, *, dtype=None):
    target = _out_dtype(input, dtype)
    x = input if input._data.dtype == target.numpy else input.type(target)
    axis = None if dim is None else _dim(dim, input._data.ndim)
    if input._data.ndim == 0:
        axis = None  # a 0-d tensor's dim 0 is the tensor itself
    if not target.is_floating_point:
        return _wrap(np.asarray(np.prod(x._data, axis=axis, keepdims=keepdim and
                                        axis is not None)))
    return apply(Prod, x, axis=axis, keepdim=keepdim and axis is not None)


# ---------------------------------------------------------------------- max, min, arg*

class AllReduce(Op):
    """y = max (or min) of all elements; ties share the gradient evenly (torch's rule)"""

    rule = "dx = g * (x == y) / (number of maxima)"
    saves, saves_output = (0,), True

    def forward(self, x):
        if x.size == 0:
            raise RuntimeError(f"{self.fn.__name__}(): Expected reduction dim to be specified "
                               "for input.numel() == 0. Specify the reduction dim with the "
                               "'dim' argument.")
        self.x, self.y = x, np.asarray(self.fn(x))
        return self.y

    def backward(self, g):
        x, y = self.x, self.y
        mask = (x == y) | (np.isnan(x) & np.isnan(y))
        count = x.dtype.type(np.count_nonzero(mask))
        return (np.where(mask, g / count, x.dtype.type(0)),)

    def select(self, gg):
        """The transpose of backward (ops/higher.py): gg's maxima averaged."""
        x, y = self.x, self.y
        mask = (x == y) | (np.isnan(x) & np.isnan(y))
        count = x.dtype.type(np.count_nonzero(mask))
        total = float_sum(np.where(mask, gg, x.dtype.type(0)), tuple(range(x.ndim)))
        return np.asarray(total / count, x.dtype)


class DimReduce(Op):
    """(values, indices) = max (or min) along dim; the gradient goes to the index picked"""

    rule = "dx = g routed to the index of each max"

    def forward(self, x):
        self.shape = x.shape
        idx = self.argfn(x, axis=self.dim, keepdims=True)
        self.idx = idx
        values = np.take_along_axis(x, idx, axis=self.dim)
        return values if self.keepdim else np.squeeze(values, self.dim)

    def backward(self, g):
        dx = np.zeros(self.shape, g.dtype)
        g = g if self.keepdim else np.expand_dims(g, self.dim)
        np.put_along_axis(dx, self.idx, g, axis=self.dim)
        return (dx,)

    def select(self, gg):
        """gg at the indices forward picked (the transpose of backward: ops/higher.py)."""
        values = np.take_along_axis(gg, self.idx, axis=self.dim)
        return values if self.keepdim else np.squeeze(values, self.dim)


def _nan_arg(argfn, nanfn):
    """numpy's argmax/argmin, NaN winning (torch propagates NaN)."""
    def arg(x, axis, keepdims=False):
        idx = argfn(x, axis=axis, keepdims=keepdims)
        if x.dtype.kind == "f":
            nans = np.isnan(x)
            if nans.any():
                first = np.argmax(nans, axis=axis, keepdims=keepdims)
                has = np.any(nans, axis=axis, keepdims=keepdims)
                idx = np.where(has, first, idx)
        return idx
    return arg


_argmax = _nan_arg(np.argmax, np.nanargmax)
_argmin = _nan_arg(np.argmin, np.nanargmin)


def _extreme(name, fn, argfn, pairwise):
    # torch's grad_fn: max() is MaxBackward1, max(dim) MaxBackward0 (min alike)
    whole, along = f"{name.capitalize()}Backward1", f"{name.capitalize()}Backward0"

    def reduce(input, dim=None, keepdim=False, *, out=None, **aliases):
        if isinstance(dim, Tensor):  # max(input, other): the elementwise maximum
            return pairwise(input, dim)
        dim, keepdim = _dim_args(dim, keepdim, aliases, name)
        if dim is None:
            if not input.is_floating_point():
                if input._data.size == 0:
                    raise RuntimeError(f"{name}(): Expected reduction dim to be specified for "
                                       "input.numel() == 0.")
                return _wrap(np.asarray(fn(input._data)))
            return apply(AllReduce, input, fn=fn, node=whole)
        d = _dim(dim, input._data.ndim)
        x = input if input._data.ndim else input.reshape(1)
        if x._data.shape[d] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")
        if not x.is_floating_point():
            idx = argfn(x._data, axis=d, keepdims=True)
            values = np.take_along_axis(x._data, idx, axis=d)
            if not keepdim:
                values, idx = np.squeeze(values, d), np.squeeze(idx, d)
            if input._data.ndim == 0:
                values, idx = values.reshape(()), idx.reshape(())
            return values_indices[name](_wrap(values), _wrap(idx.astype(np.int64)))
        values = apply(DimReduce, x, argfn=argfn, dim=d, keepdim=keepdim, node=along)
        idx = values._op.idx if values._op is not None else argfn(x._data, axis=d, keepdims=True)
        idx = idx if keepdim else np.squeeze(idx, d)
        if input._data.ndim == 0:
            values, idx = values.reshape(()), idx.reshape(())
        return values_indices[name](values, _wrap(np.asarray(idx, np.int64)))

    reduce.__doc__ = (f"{name}(input): the {name}imum element (ties share the gradient "
                      f"evenly); {name}(input, dim, keepdim=False): (values, indices) along dim, "
                      f"the gradient going to the index picked (the first {name}imum); "
                      f"{name}(input, other): the elementwise {name}imum.")
    return export(name, method=True)(reduce)


def _maximum(a, b):
    return registry.FUNCTIONS["maximum"](a, b)


def _minimum(a, b):
    return registry.FUNCTIONS["minimum"](a, b)


reduce_max = _extreme("max", np.max, _argmax, _maximum)
reduce_min = _extreme("min", np.min, _argmin, _minimum)


class AmaxReduce(Op):
    """y = amax (or amin) over dims; ties share the gradient evenly"""

    rule = "dx = g * (x == y) / (number of maxima along dims)"
    saves, saves_output = (0,), True

    def forward(self, x):
        self.x = x
        self.y = self.fn(x, axis=self.axes, keepdims=True)
        return self.y if self.keepdim else np.squeeze(self.y, self.axes)

    def backward(self, g):
        mask = (self.x == self.y).astype(self.x.dtype)
        count = float_sum(mask, self.axes).reshape(self.y.shape)
        g = g if self.keepdim else np.expand_dims(g, self.axes)
        return ((g / count) * mask,)

    def select(self, gg):
        """The transpose of backward (ops/higher.py): gg's maxima along dims, averaged."""
        mask = (self.x == self.y).astype(self.x.dtype)
        count = float_sum(mask, self.axes).reshape(self.y.shape)
        y = float_sum(gg * mask, self.axes).reshape(self.y.shape) / count
        return y if self.keepdim else np.squeeze(y, self.axes)


def _amax(name, fn):
    def reduce(input, dim=(), keepdim=False, **aliases):
        dim, keepdim = _dim_args(dim, keepdim, aliases, name)
        axes = _axes(dim, input._data.ndim)
        if input._data.size == 0:
            if dim is None or (isinstance(dim, (tuple, list)) and not dim):
                raise RuntimeError(f"{name}(): Expected reduction dim to be specified for "
                                   f"input.numel() == 0. Specify the reduction dim with the "
                                   f"'dim' argument.")
            for a in axes:
                if input._data.shape[a] == 0:
                    raise IndexError(f"{name}(): Expected reduction dim {a} to have non-zero "
                                     f"size.")
        if not input.is_floating_point():
            return _wrap(np.asarray(fn(input._data, axis=axes, keepdims=keepdim)))
        return apply(AmaxReduce, input, fn=fn, axes=axes, keepdim=keepdim, label=name,
                     node=f"{name.capitalize()}Backward0")

    return export(name, method=True)(reduce)


amax = _amax("amax", np.max)
amin = _amax("amin", np.min)


def _argreduce(name, argfn):
    def reduce(input, dim=None, keepdim=False):
        x = input._data
        if x.dtype.kind == "b":
            raise RuntimeError(f"{name}(): does not support bool input")
        if dim is None:
            if x.size == 0:
                raise IndexError(f"{name}(): Expected reduction dim to be specified for "
                                 "input.numel() == 0.")
            idx = argfn(x.reshape(-1), axis=0)
            return _wrap(np.asarray(idx, np.int64).reshape((1,) * x.ndim if keepdim else ()))
        d = _dim(dim, x.ndim)
        if x.ndim == 0:
            return _wrap(np.asarray(0, np.int64))
        if x.shape[d] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")
        return _wrap(np.asarray(argfn(x, axis=d, keepdims=keepdim), np.int64))

    reduce.__doc__ = f"{name}(input, dim=None, keepdim=False): the index of the first " \
                     f"{name[3:]}imum (over all elements, or along dim)."
    return export(name, method=True)(reduce)


argmax = _argreduce("argmax", _argmax)
argmin = _argreduce("argmin", _argmin)


def _logical_axes(dim, ndim):
    """all/any read an empty dim list as no dims (sum and the others: all dims)."""
    if isinstance(dim, (tuple, list)) and not dim:
        return ()
    return _axes(dim, ndim)


@export("all", method=True)
def reduce_all(input, dim=None, keepdim=False, *, out=None, **aliases):
    """Whether every element (along dim) is true (dim=(): each element, unreduced)."""
    dim, keepdim = _dim_args(dim, keepdim, aliases, "all")
    axes = _logical_axes(dim, input._data.ndim)
    return _wrap(np.asarray(np.all(input._data, axis=axes, keepdims=keepdim)))


@export("any", method=True)
def reduce_any(input, dim=None, keepdim=False, *, out=None, **aliases):
    """Whether any element (along dim) is true (dim=(): each element, unreduced)."""
    dim, keepdim = _dim_args(dim, keepdim, aliases, "any")
    axes = _logical_axes(dim, input._data.ndim)
    return _wrap(np.asarray(np.any(input._data, axis=axes, keepdims=keepdim)))


@export("count_nonzero", method=True)
def count_nonzero(input, dim=None):
    axes = _axes(dim, input._data.ndim)
    return _wrap(np.asarray(np.count_nonzero(input._data, axis=axes), np.int64))


# ---------------------------------------------------------------------- var, std, norms

class Var(Op):
    """y = sum((x - mean)**2) / (n - correction) over dims (std: its square root), two-pass"""

    rule = "dx = g * 2 (x - mean) / (n - correction)   (std: g / (2 y) first)"
    saves = (0,)

    def forward(self, x):
        self.x = x
        axes, n = self.axes, int(np.prod([x.shape[a] for a in self.axes]))
        self.n = n
        wide = x.astype(np.float64)  # torch accumulates float32 statistics in double
        mean = float_sum(wide, axes) / n if n else np.full(
            [s for i, s in enumerate(x.shape) if i not in axes], np.nan)
        self.mean = mean.reshape([1 if i in axes else s for i, s in enumerate(x.shape)])
        dev = wide - self.mean
        with np.errstate(invalid="ignore", divide="ignore"):
            var = float_sum(dev * dev, axes) / max(n - self.correction, 0)
        y = np.sqrt(var) if self.std else var
        self.y = np.asarray(y, x.dtype)
        return _keep(self.y, x.shape, axes, self.keepdim)

    def backward(self, g):
        x, y = self.x, self.y.reshape(self.mean.shape)
        g = _restore(g, x.shape, self.axes, self.keepdim)
        if self.std:
            with np.errstate(invalid="ignore", divide="ignore"):
                g = np.where(y == 0, x.dtype.type(0), g / (y * 2))
        scale = x.dtype.type(2.0 / max(self.n - self.correction, 0)) if \
            self.n - self.correction > 0 else x.dtype.type(np.inf)
        return (scale * g * (x - self.mean.astype(x.dtype)),)

    def decompose(self, x):
        """The op as recorded ops (backward with create_graph=True differentiates this)."""
        d = x - x.mean(self.axes, keepdim=True)
        y = (d * d).sum(self.axes, keepdim=self.keepdim) / max(self.n - self.correction, 0)
        return y.sqrt() if self.std else y


def _var_args(dim, unbiased, correction, keepdim, where):
    """torch's two overloads: var(input, dim, unbiased, keepdim) and
    var(input, dim, *, correction, keepdim)."""
    if isinstance(dim, bool) and unbiased is None:  # var(input, unbiased)
        dim, unbiased = None, dim
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    elif unbiased is not None:
        raise TypeError(f"{where}(): pass either unbiased or correction, not both")
    return dim, float(correction), bool(keepdim)


def _var(std):
    name = "std" if std else "var"
    node = "StdBackward0" if std else "VarBackward0"

    def reduce(input, dim=None, unbiased=None, keepdim=False, *, correction=None, **aliases):
        dim, keepdim = _dim_args(dim, keepdim, aliases, name)
        dim, correction, keepdim = _var_args(dim, unbiased, correction, keepdim, name)
        if not input.is_floating_point():
            raise RuntimeError(f"{name}(): input dtype should be floating point, got "
                               f"{input.dtype.name}")
        return apply(Var, input, axes=_axes(dim, input._data.ndim), correction=correction,
                     keepdim=keepdim, std=std, node=node)

    reduce.__doc__ = f"{name}(input, dim=None, unbiased=True, keepdim=False, *, correction=1):" \
                     f" the {'standard deviation' if std else 'variance'} over dim with " \
                     f"Bessel's correction by default (n - 1 in the denominator)."
    return export(name, method=True)(reduce)


var = _var(False)
std = _var(True)


@export("var_mean")
def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return var(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


@export("std_mean")
def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return std(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


class LogSumExp(Op):
    """y = log(sum(exp(x))) over dims, shifted by the maximum for stability"""

    rule = "dx = g * exp(x - y)"
    saves, saves_output = (0,), True

    def forward(self, x):
        self.x = x
        if x.size == 0:
            m = np.zeros([1 if i in self.axes else s for i, s in enumerate(x.shape)], x.dtype)
        else:
            m = np.max(x, axis=self.axes, keepdims=True)
            m = np.where(np.isinf(m), x.dtype.type(0), m)
        with np.errstate(divide="ignore"):
            total = float_sum(np.exp(x - m), self.axes).reshape(m.shape)
            self.y = np.log(total) + m
        return self.y if self.keepdim else np.squeeze(self.y, self.axes)

    def backward(self, g):
        g = g if self.keepdim else np.expand_dims(g, self.axes)
        return (g * np.exp(self.x - self.y),)

    def vjp(self, g, inputs, output):
        keep = self.y.shape
        return (g.reshape(keep) * (inputs[0] - output.reshape(keep)).exp(),)


@export("logsumexp", method=True)
def logsumexp(input, dim, keepdim=False):
    x = input if input.is_floating_point() else input.type(dtypes.get_default_dtype())
    return apply(LogSumExp, x, axes=_axes(dim, x._data.ndim), keepdim=bool(keepdim))


class CumSum(Op):
    """y = running sums of x along dim (in index order)"""
    node = "CumsumBackward0"  # torch's grad_fn name

    rule = "dx = running sums of g from the end"
    linear = True

    def forward(self, x):
        return np.cumsum(x, axis=self.dim, dtype=x.dtype)

    def backward(self, g):
        return (np.flip(np.cumsum(np.flip(g, self.dim), axis=self.dim), self.dim).copy(),)


def _scan(input, dim, dtype, op_class, numpy_scan):
    """cumsum / cumprod: in dtype (integers in int64 by default, with no gradient), a 0-d
    input copied."""
    target = _out_dtype(input, dtype)
    x = input if input._data.dtype == target.numpy else input.type(target)
    d = _dim(dim, x._data.ndim)
    if x._data.ndim == 0:
        return x.clone()
    if not target.is_floating_point:
        return _wrap(numpy_scan(x._data, axis=d, dtype=target.numpy))
    return apply(op_class, x, dim=d)


@export("cumsum", method=True)
def cumsum(input, dim, *, dtype=None):
    """Running sums along dim (integers add in int64, as torch.cumsum)."""
    return _scan(input, dim, dtype, CumSum, np.cumsum)


class CumProd(Op):
    """y = running products of x along dim (in index order, one rounding a step: torch's)"""

    rule = "dx_i = sum_{j >= i} g_j prod_{k <= j, k != i} x_k  (reverse_cumsum(g y) / x " \
           "before a row's first zero; at it, the products of the rest; 0 after)"
    saves, saves_output = (0,), True

    def forward(self, x):
        self.x = x
        self.y = np.cumprod(x, axis=self.dim, dtype=x.dtype)
        return self.y

    def backward(self, g):
        d, x, y = self.dim, np.moveaxis(self.x, self.dim, -1), np.moveaxis(self.y, self.dim, -1)
        g = np.moveaxis(g, d, -1)
        n = x.shape[-1]
        zero = x == 0
        first = np.where(zero.any(-1), zero.argmax(-1), n)[..., None]  # a row's first zero
        pos = np.arange(n)
        with np.errstate(divide="ignore", invalid="ignore"):
            before = np.flip(np.cumsum(np.flip(g * y, -1), -1), -1) / x
        # at the first zero z: prod_{k < z} x_k * sum_{j >= z} g_j prod_{z < k <= j} x_k
        head = np.take_along_axis(np.concatenate([np.ones_like(y[..., :1]), y], -1),
                                  np.minimum(first, n), -1)  # prod_{k < z} x_k
        after = np.where(pos > first, x, x.dtype.type(1))  # x past z, 1 up to it
        tail = np.cumprod(np.where(pos >= first, after, x.dtype.type(1)), -1)
        at = head * np.flip(np.cumsum(np.flip(np.where(pos >= first, g * tail, 0), -1), -1),
                            -1)
        dx = np.where(pos < first, before, np.where(pos == first, at, x.dtype.type(0)))
        return (np.ascontiguousarray(np.moveaxis(dx.astype(x.dtype), -1, d)),)

    def decompose(self, x):
        """The running products as recorded multiplications, a scan of log2(n) steps (each
        element times the one `s` before it, s = 1, 2, 4...): what backward with
        create_graph=True differentiates."""
        cat, d, n, s = registry.FUNCTIONS["cat"], self.dim, x.shape[self.dim], 1
        while s < n:
            x = cat([x.narrow(d, 0, s), x.narrow(d, s, n - s) * x.narrow(d, 0, n - s)], d)
            s *= 2
        return x


@export("cumprod", method=True)
def cumprod(input, dim, *, dtype=None):
    """Running products along dim (integers multiply in int64, as torch.cumprod)."""
    return _scan(input, dim, dtype, CumProd, np.cumprod)


cummax_result = return_type("cummax", ["values", "indices"])
cummin_result = return_type("cummin", ["values", "indices"])


def _running(input, dim, bigger):
    """(values, indices) of the running maximum (bigger) or minimum along dim, torch's way: a
    later equal element, or a NaN, takes the index over; the values gathered from input, so
    the gradient goes to the element each index names."""
    nd = max(input._data.ndim, 1)
    d = _dim(dim, nd)
    x = input._data.reshape(1) if input._data.ndim == 0 else input._data
    y = (np.maximum if bigger else np.minimum).accumulate(x, axis=d)
    shape = [1] * x.ndim
    shape[d] = x.shape[d]
    pos = np.arange(x.shape[d]).reshape(shape)
    takes = (x == y) | np.isnan(x)
    idx = np.maximum.accumulate(np.where(takes, pos, 0), axis=d).astype(np.int64)
    src = input if input._data.ndim else input.reshape(1)
    values = src.gather(d, _wrap(idx)) if src._data.dtype.kind == "f" else _wrap(y)
    if input._data.ndim == 0:
        return values.reshape(()), _wrap(idx.reshape(()))
    return values, _wrap(idx)


@export("cummax", method=True)
def cummax(input, dim):
    """(values, indices): the running maximum along dim and where it was taken."""
    return cummax_result(*_running(input, dim, True))


@export("cummin", method=True)
def cummin(input, dim):
    """(values, indices): the running minimum along dim and where it was taken."""
    return cummin_result(*_running(input, dim, False))


class Norm(Op):
    """y = the p-norm over dims: (sum |x|**p)**(1/p); p = inf: max |x|"""
    node = "LinalgVectorNormBackward0"  # torch's grad_fn name

    rule = "dx = g * x |x|**(p-2) / y**(p-1)  (p = 2: g * x / y; 0 where y = 0)"
    saves, saves_output = (0,), True

    def forward(self, x):
        self.x, p = x, self.p
        a = np.abs(x)
        if p == np.inf:
            y = np.max(a, axis=self.axes, keepdims=True) if x.size else \
                np.zeros([1 if i in self.axes else s for i, s in enumerate(x.shape)], x.dtype)
        elif p == -np.inf:
            y = np.min(a, axis=self.axes, keepdims=True)
        elif p == 0:
            y = float_sum((x != 0).astype(x.dtype), self.axes)
        elif p == 1:
            y = float_sum(a, self.axes)
        elif p == 2:
            y = np.sqrt(float_sum(x * x, self.axes))
        else:
            y = float_sum(a ** x.dtype.type(p), self.axes) ** x.dtype.type(1 / p)
        self.y = np.asarray(y, x.dtype).reshape(
            [1 if i in self.axes else s for i, s in enumerate(x.shape)])
        return self.y if self.keepdim else np.squeeze(self.y, self.axes)

    def backward(self, g):
        x, y, p = self.x, self.y, self.p
        g = g if self.keepdim else np.expand_dims(g, self.axes)
        zero = x.dtype.type(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            if p == 2:
                return (x * np.where(y == 0, zero, g / y),)
            if p == 1:
                return (np.sign(x) * g,)
            if p == 0:
                return (np.zeros_like(x),)
            if np.isinf(p):
                mask = (np.abs(x) == y).astype(x.dtype)
                count = float_sum(mask, self.axes).reshape(y.shape)
                return (np.sign(x) * mask * (g / count),)
            scale = np.where(y == 0, zero, g / y ** x.dtype.type(p - 1))
            return (x * np.abs(x) ** x.dtype.type(p - 2) * scale,)

    def vjp(self, g, inputs, output):
        (x,), p = inputs, self.p
        if p not in (1, 2):
            higher.unsupported(self, f"the {p:g}-norm")
        keep = self.y.shape
        g = g.reshape(keep)
        if p == 1:
            return (x.sign() * g,)
        y = output.reshape(keep)
        safe = higher.where_const(self.y == 0, registry.FUNCTIONS["ones_like"](y), y)  # not 0
        return (x * higher.where_const(self.y != 0, g / safe),)


@export("norm")
def norm(input, p="fro", dim=None, keepdim=False, out=None, dtype=None):
    """The p-norm (default: 2, "fro") over dim (all elements by default). (Tensor.norm has no
    `out`: its fifth argument is dtype, as in torch.)"""
    result = _norm(input, p, dim, keepdim, dtype)
    return result if out is None else out._write(result)


@export("norm", method=True, function=False)
def _norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    if p in ("fro", None):
        p = 2
    if p == "nuc":  # a matrix norm (torch.norm hands it to linalg.matrix_norm)
        from ..linalg import matrix_norm

        return matrix_norm(input, "nuc", (-2, -1) if dim is None else dim, keepdim,
                           dtype=dtype)
    if not input.is_floating_point():
        raise RuntimeError(f"linalg.vector_norm: Expected a floating point or complex tensor as "
                           f"input. Got {dtypes.SCALAR_NAMES[input.dtype.name]}")
    x = input if dtype is None else input.type(dtype)
    axes = _axes(dim, x._data.ndim)
    if abs(float(p)) == float("inf") and x._data.size == 0 and (
            not x._data.ndim or any(x._data.shape[a] == 0 for a in axes)):
        raise RuntimeError(f"linalg.vector_norm cannot compute the {p} norm on an empty "
                           f"tensor because the operation does not have an identity")
    return apply(Norm, x, p=float(p), axes=axes, keepdim=bool(keepdim))


# ---------------------------------------------------------------------- softmax family

class Softmax(Op):
    """y = exp(x - max) / sum(exp(x - max)) along dim"""

    rule = "dx = y * (g - sum(g * y, dim))"
    saves_output = True

    def forward(self, x):
        if x.size == 0:
            self.y = x.copy()
            return self.y
        if self._rows(x) and self._regular(x):
            # along the last dimension the exact row kernel (the sum in ascending order); rows
            # with a NaN, +inf or nothing but -inf keep numpy's path (torch's NaNs)
            self.y = B.softmax_rows(x)
            return self.y
        m = x.max(axis=self.dim, keepdims=True)
        e = np.exp(x - m)
        self.y = e / e.sum(axis=self.dim, keepdims=True)
        return self.y

    def _rows(self, x):
        return self.dim == x.ndim - 1 and x.dtype in B.FLOAT_DTYPES

    @staticmethod
    def _regular(x):
        """Every row's maximum finite (no NaN, no +inf, no row of only -inf)? The whole array's
        maximum and the first column answer it in two vector passes when the first column
        is finite (an attention's causal mask never hides the first key); numpy's maximum
        along short rows took 53 us for 16 x 32 x 32, twice the softmax kernel's time."""
        if not np.isfinite(x.max()):  # a NaN or +inf somewhere
            return False
        return bool(np.isfinite(x[..., 0]).all() or np.isfinite(x.max(axis=-1)).all())

    def backward(self, g):
        y = self.y
        if self._rows(y) and g.dtype == y.dtype:
            return (B.softmax_rows_backward(y, g),)
        return (y * (g - (g * y).sum(axis=self.dim, keepdims=True)),)

    def vjp(self, g, inputs, output):
        return (output * (g - (g * output).sum(self.dim, keepdim=True)),)


class LogSoftmax(Op):
    """y = x - max - log(sum(exp(x - max))) along dim"""

    rule = "dx = g - exp(y) * sum(g, dim)"
    saves_output = True

    def forward(self, x):
        if x.size == 0:
            self.y = x.copy()
            return self.y
        shifted = x - x.max(axis=self.dim, keepdims=True)
        self.y = shifted - np.log(np.exp(shifted).sum(axis=self.dim, keepdims=True))
        return self.y

    def backward(self, g):
        return (g - np.exp(self.y) * g.sum(axis=self.dim, keepdims=True),)

    def vjp(self, g, inputs, output):
        return (g - output.exp() * g.sum(self.dim, keepdim=True),)


def _softmax_dim(input, dim, where):
    if dim is None:  # torch's legacy implicit choice (it warns)
        dim = 0 if input._data.ndim in (0, 1, 3) else 1
    return _dim(dim, input._data.ndim)


def _softmax(name, op):
    def function(input, dim=None, _stacklevel=3, dtype=None):
        x = input
        d = _softmax_dim(x, dim, name)
        if dtype is not None:
            x = x.type(dtype)
        elif not x.is_floating_point():  # (torch's dispatcher raises NotImplementedError)
            if x._data.size == 0:
                return _wrap(x._data.copy())
            raise NotImplementedError(f"\"{name}_lastdim_kernel_impl\" not implemented for "
                                      f"'{dtypes.SCALAR_NAMES[x.dtype.name]}'")
        if x._data.ndim == 0:
            return apply(op, x.reshape(1), dim=0).reshape(())
        return apply(op, x, dim=d)

    function.__doc__ = f"{name}(input, dim): along dim. Backward: {op.rule}."
    return export(name, method=True, functional=True)(function)


softmax = _softmax("softmax", Softmax)
log_softmax = _softmax("log_softmax", LogSoftmax)


# ---------------------------------------------------------------------- sorting

class TakeAlong(Op):
    """y = x picked along dim by indices (sort, topk): the gradient goes back to them"""

    rule = "dx = g scattered to the picked indices"
    linear = True

    def forward(self, x):
        self.shape = x.shape
        return np.take_along_axis(x, self.idx, axis=self.dim)

    def backward(self, g):
        dx = np.zeros(self.shape, g.dtype)
        np.put_along_axis(dx, self.idx, g, axis=self.dim)
        return (dx,)


def _stable_order(x, dim, descending):
    if descending:
        if x.dtype.kind == "b":
            return np.argsort(~x, axis=dim, kind="stable")
        order = np.argsort(-x if x.dtype.kind == "f" else np.negative(x.astype(np.int64)),
                           axis=dim, kind="stable")
        return order
    return np.argsort(x, axis=dim, kind="stable")


@export("sort", method=True)
def sort(input, dim=-1, descending=False, stable=False):
    """(values, indices) sorted along dim (a stable sort)."""
    if input._data.ndim == 0:
        return values_indices["sort"](input.clone(), _wrap(np.asarray(0, np.int64)))
    d = _dim(dim, input._data.ndim)
    idx = _stable_order(input._data, d, descending)
    values = apply(TakeAlong, input, idx=idx, dim=d) if input.is_floating_point() else \
        _wrap(np.take_along_axis(input._data, idx, axis=d))
    return values_indices["sort"](values, _wrap(idx.astype(np.int64)))


@export("argsort", method=True)
def argsort(input, dim=-1, descending=False, stable=False):
    return sort(input, dim, descending).indices


@export("topk", method=True)
def topk(input, k, dim=-1, largest=True, sorted=True):
    """(values, indices) of the k largest (or smallest) along dim."""
    if input._data.dtype.kind == "b":
        raise RuntimeError("topk does not support bool dtypes on CPU")
    d = _dim(dim, input._data.ndim)
    if input._data.ndim == 0:
        out = topk(input.reshape(1), k, 0, largest, sorted)
        return values_indices["topk"](out.values.reshape(()), out.indices.reshape(()))
    size = input._data.shape[d] if input._data.ndim else 1
    if not 0 <= k <= size:
        raise RuntimeError(f"selected index k out of range (k={k}, size {size})")
    idx = _stable_order(input._data, d, largest)
    idx = np.take(idx, np.arange(k), axis=d)
    values = apply(TakeAlong, input, idx=idx, dim=d) if input.is_floating_point() else \
        _wrap(np.take_along_axis(input._data, idx, axis=d))
    return values_indices["topk"](values, _wrap(idx.astype(np.int64)))


@export("median", method=True)
def median(input, dim=None, keepdim=False):
    """The lower median (torch's: no averaging of the two middle values)."""
    if dim is not None:
        d = _dim(dim, input._data.ndim)
        if input._data.ndim and input._data.shape[d] == 0:
            raise IndexError(f"median(): Expected reduction dim {d} to have non-zero size.")
    kind = input._data.dtype.kind
    if dim is None and input._data.size == 0:  # torch: nan, or its integer kernel's start
        if kind == "f":
            return input.sum() * float("nan")
        return _wrap(np.asarray(True if kind == "b" else np.iinfo(input._data.dtype).min,
                                input._data.dtype))
    if kind == "b":
        raise NotImplementedError(f"\"median_{'cpu' if dim is None else 'out'}\" not "
                                  f"implemented for 'Bool'")
    if dim is None:
        flat = input.reshape(-1)
        n = flat._data.size
        return sort(flat).values[(n - 1) // 2]
    d = _dim(dim, input._data.ndim)
    if input._data.ndim == 0:
        return median(input.reshape(1), 0)
    n = input._data.shape[d]
    s = sort(input, d)
    k = (n - 1) // 2
    values = s.values.narrow(d, k, 1)
    indices = s.indices.narrow(d, k, 1)
    if not keepdim:
        values, indices = values.squeeze(d), indices.squeeze(d)
    return values_indices["median"](values, indices)


@export("unique", method=True)
def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """The distinct values (sorted; each NaN distinct, as torch), or with `dim` the distinct
    slices along dim, sorted lexicographically (torch's unique_dim: `sorted` has no effect
    there; slices with a NaN are all distinct, -0.0 equals 0.0); inverse indices and counts on
    request, int64."""
    if dim is not None:
        if input._data.ndim == 0:
            raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
        values, inverse, counts = _unique_dim(input._data, _dim(dim, input._data.ndim))
    else:
        values, inverse, counts = np.unique(input._data, return_inverse=True,
                                            return_counts=True, equal_nan=False)  # (as torch)
        inverse = inverse.reshape(input._data.shape)
    kernel = "_unique2" if dim is None else "unique_dim"
    # a float input's values: marked as torch marks them, backward raising as torch's does
    out = [apply(NoDerivative, input, value=values, error=NotImplementedError,
                 message=f"the derivative for '{kernel}' is not implemented.")
           if input._data.dtype.kind == "f" else _wrap(values)]
    if return_inverse:
        out.append(_wrap(inverse.astype(np.int64)))
    if return_counts:
        out.append(_wrap(counts.astype(np.int64)))
    return out[0] if len(out) == 1 else tuple(out)


def _unique_dim(x, d):
    """(distinct slices along d in lexicographic order, each slice's group, group sizes)."""
    n = x.shape[d]
    if x.size == 0 and n != 0:
        raise RuntimeError("There are 0 sized dimensions, and they aren't selected, so unique "
                           "cannot be applied")
    rows = np.moveaxis(x, d, 0).reshape(n, x.size // n if n else 0)
    order = np.lexsort(rows.T[::-1]) if rows.shape[1] else np.arange(n)  # stable, by column 0
    ranked = rows[order]
    new = np.ones(n, dtype=bool)  # a slice starting a group: differs from the one before it
    if n > 1:
        new[1:] = np.any(ranked[1:] != ranked[:-1], axis=1)
    group = np.cumsum(new) - 1
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = group
    counts = np.diff(np.append(np.flatnonzero(new), n)).astype(np.int64)
    picked = np.moveaxis(x, d, 0)[order[new]]
    return np.ascontiguousarray(np.moveaxis(picked, 0, d)), inverse, counts


@export("bincount", method=True)
def bincount(input, weights=None, minlength=0):
    w = None if weights is None else weights._data
    out = np.bincount(input._data, w, minlength)
    return _wrap(out if w is not None else out.astype(np.int64))


@export("histc", method=True)
def histc(input, bins=100, min=0, max=0):
    x = input._data
    lo, hi = (x.min(), x.max()) if min == 0 and max == 0 else (min, max)
    counts, _ = np.histogram(x, bins=bins, range=(lo, hi))
    return _wrap(counts.astype(x.dtype))


histogram_result = return_type("histogram", ["hist", "bin_edges"])


@export("histogram", method=True)
def histogram(input, bins=100, *, range=None, weight=None, density=False):
    """(hist, bin_edges) of the values (float tensors), as torch.histogram."""
    b = bins._data if isinstance(bins, Tensor) else bins
    w = None if weight is None else weight._data
    hist, edges = np.histogram(input._data, bins=b, range=range, weights=w, density=density)
    return histogram_result(_wrap(hist.astype(input._data.dtype)),
                            _wrap(edges.astype(input._data.dtype)))


registry.FUNCTIONS["return_types"] = return_types
_ = _local, Tensor
