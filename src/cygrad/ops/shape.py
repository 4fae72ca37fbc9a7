"""Ops that move numbers without arithmetic: views, joins, splits, indexing, masks.

Views (view, reshape where it can, permute, transpose, squeeze, unsqueeze, expand, slicing,
narrow, select, split, chunk, unbind) share the input's memory as torch's do: writing into one
writes into the other (`view_of`). Joins and advanced indexing copy. Every backward is a copy,
a reshape, or a scatter-add whose contributions are summed in the index order (a fixed order:
the same bits for any thread count).
"""

import math
import numbers
import operator

import numpy as np

from .. import backend as B
from .. import dtypes
from ..tensor import Size, Tensor, _dim, _local, _storage_root, _wrap, apply
from . import Op, SliceGrad, higher, registry
from .factories import scalar_as
from .registry import export

# ---------------------------------------------------------------------- argument helpers


_ARG_NAMES = {"view": "size", "reshape": "shape", "permute": "dims", "expand": "size",
              "repeat": "repeats", "flip": "dims"}


def _shape_args(args, where):
    """A shape from `*shape` or one sequence argument, -1 allowed."""
    if not args:
        raise TypeError(f'{where}() missing 1 required positional arguments: '
                        f'"{_ARG_NAMES.get(where, "size")}"')
    if len(args) == 1 and isinstance(args[0], (tuple, list, Size)):
        args = tuple(args[0])
    shape = []
    for s in args:
        try:
            shape.append(operator.index(s))
        except TypeError:
            raise TypeError(f"{where}(): argument 'size' must be a tuple of ints, but found an "
                            f"element of type {type(s).__name__}") from None
    return tuple(shape)


def _infer_shape(shape, numel, where="view"):
    """torch's shape check: one -1 may stand for the rest; the sizes must multiply to numel."""
    if shape.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    known = 1
    for s in shape:
        if s < -1:
            raise RuntimeError(f"invalid shape dimension {s}")
        if s != -1:
            known *= s
    if -1 in shape:
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    elif known != numel:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    return shape


def _dims(dims, ndim):
    """A tuple of distinct normalised dims."""
    if isinstance(dims, (int, np.integer)):
        dims = (dims,)
    out = tuple(_dim(d, ndim) for d in dims)
    if len(set(out)) != len(out):
        raise RuntimeError(f"dim {out} appears multiple times in the list of dims")
    return out


# ---------------------------------------------------------------------- views

class Reshape(Op):
    """y = x.reshape(shape) (a view where the memory allows, as torch.reshape)"""

    rule = "dx = g.reshape(x.shape)"
    view_of = 0
    linear = True
    saves_nothing = True
    node = "ViewBackward0"  # torch's reshape of a tensor a view can give (squeeze... pass theirs)

    def forward(self, x):
        self.in_shape = x.shape
        y = x.reshape(self.shape)
        base = y.base
        if base is not x and base is not x.base:  # numpy copied (no view has these strides):
            self.node = "UnsafeViewBackward0"  # torch's reshape then clones and views
        return y

    def backward(self, g):
        return (g.reshape(self.in_shape),)


class View(Reshape):
    """y = x.view(shape): always a view; torch's error where the strides do not allow one"""

    def forward(self, x):
        self.in_shape = x.shape
        y = np.reshape(x, self.shape)  # (numpy 2.0's reshape has no copy=False)
        if y.size and not np.may_share_memory(y, x):  # reshape had to copy: no view exists
            raise RuntimeError("view size is not compatible with input tensor's size and stride "
                               "(at least one dimension spans across two contiguous subspaces)."
                               " Use .reshape(...) instead.")
        return y


@export("view", method=True, function=False)
def view(self, *shape):
    """The same memory seen with another shape (one -1 may stand for the rest)."""
    if len(shape) == 1 and isinstance(shape[0], (dtypes.dtype, type, str)):
        raise NotImplementedError("view(dtype) (reinterpreting the bits) is not supported")
    shape = _infer_shape(_shape_args(shape, "view"), self._data.size)
    if shape == self._data.shape:
        return apply(View, self, shape=shape)
    return apply(View, self, shape=shape)


@export("reshape", method=True)
def reshape(input, *shape):
    """input with another shape: a view where the memory allows, else a copy."""
    shape = _infer_shape(_shape_args(shape, "reshape"), input._data.size, "reshape")
    return apply(Reshape, input, shape=shape)


@export("view_as", method=True, function=False)
def view_as(self, other):
    return view(self, other._data.shape)


@export("reshape_as", method=True, function=False)
def reshape_as(self, other):
    return reshape(self, other._data.shape)


@export("flatten", method=True)
def flatten(input, start_dim=0, end_dim=-1):
    """Merge dims start_dim..end_dim into one."""
    shape = input._data.shape
    start, end = _dim(start_dim, len(shape)), _dim(end_dim, len(shape))
    if not shape:
        return reshape(input, (1,))
    if start > end:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    merged = 1
    for s in shape[start:end + 1]:
        merged *= s
    return reshape(input, shape[:start] + (merged,) + shape[end + 1:])


@export("unflatten", method=True)
def unflatten(input, dim, sizes):
    """Split dim into sizes (one -1 may stand for the rest)."""
    shape = input._data.shape
    d = _dim(dim, len(shape))
    sizes = _infer_shape(tuple(sizes), shape[d], "unflatten")
    return view(input, shape[:d] + sizes + shape[d + 1:])


class Permute(Op):
    """y = x.permute(dims)"""

    rule = "dx = g.permute(inverse dims)"
    view_of = 0
    linear = True
    saves_nothing = True

    def forward(self, x):
        return x.transpose(self.dims)

    def backward(self, g):
        return (g.transpose(np.argsort(self.dims)),)


@export("permute", method=True)
def permute(input, *dims):
    """The dims reordered: output dim i is input dim dims[i]."""
    dims = _shape_args(dims, "permute")
    ndim = input._data.ndim
    if len(dims) != ndim:
        raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input does "
                           f"not match the length of the desired ordering of dimensions i.e. "
                           f"input.dim() = {ndim} is not equal to len(dims) = {len(dims)}")
    return apply(Permute, input, dims=_dims(dims, ndim))


@export("transpose", "swapdims", method=True, methods=("swapdims",))
def transpose(input, dim0, dim1):
    """dim0 and dim1 swapped (a view)."""
    ndim = input._data.ndim
    d0, d1 = _dim(dim0, ndim), _dim(dim1, ndim)
    if ndim < 2 or d0 == d1:
        return apply(Reshape, input, shape=input._data.shape)
    dims = list(range(ndim))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return apply(Permute, input, dims=tuple(dims), node="TransposeBackward0")


@export("swapaxes", method=True)
def swapaxes(input, axis0, axis1):
    """transpose under numpy's argument names (torch's swapaxes)."""
    return transpose(input, axis0, axis1)


@export("t", method=True)
def t(input):
    """The transpose of a tensor of at most 2 dims."""
    if input._data.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is "
                           f"{input._data.ndim}D")
    if input._data.ndim < 2:
        return transpose(input, 0, -1)
    return apply(Permute, input, dims=(1, 0), node="TBackward0")


def _T(self):
    return apply(Permute, self, dims=tuple(range(self._data.ndim))[::-1])


def _H(self):
    if self._data.ndim > 2:
        raise RuntimeError(f"tensor.H is only supported on matrices (2-D tensors). Got "
                           f"{self._data.ndim}-D tensor.")
    return _T(self)


def _mT(self):
    if self._data.ndim == 1:
        raise RuntimeError("tensor.mT is only supported on matrices or batches of matrices. "
                           f"Got {self._data.ndim}-D tensor.")
    return transpose(self, -2, -1) if self._data.ndim else _T(self)


Tensor.T = property(_T, doc="All dims reversed (a view).")
Tensor.mT = property(_mT, doc="The last two dims swapped (a view).")
Tensor.H = property(_H, doc="The conjugate transpose of a matrix: for real tensors, .T.")
Tensor.mH = property(_mT, doc="The conjugate transpose of the last two dims: for real "
                              "tensors, .mT.")
registry.METHODS["adjoint"] = _mT


@export("adjoint")
def adjoint(input):
    """The conjugate transpose of the last two dims (real tensors: mT)."""
    return _mT(input)


@export("movedim", "moveaxis", method=True, methods=("moveaxis",))
def movedim(input, source, destination):
    ndim = input._data.ndim
    src, dst = _dims(source, ndim), _dims(destination, ndim)
    if len(src) != len(dst):
        raise RuntimeError(f"movedim: Invalid source or destination dims: source ({list(src)} "
                           f"dims) should contain the same number of dims as destination "
                           f"({list(dst)} dims)")
    if ndim == 0:
        return apply(Reshape, input, shape=())
    order = [d for d in range(ndim) if d not in src]
    for s, d in sorted(zip(dst, src)):
        order.insert(s, d)
    return apply(Permute, input, dims=tuple(order))


# torch's grad_fn of squeeze: every size-1 dim, one dim, several
_SQUEEZE_NODES = {type(None): "SqueezeBackward0", int: "SqueezeBackward1",
                  tuple: "SqueezeBackward2", list: "SqueezeBackward2"}


@export("squeeze", method=True)
def squeeze(input, dim=None):
    """Remove size-1 dims (all of them, or those named by dim; others are left alone)."""
    shape = input._data.shape
    if dim is None:
        dims = {i for i, s in enumerate(shape) if s == 1}
    else:
        dims = {d for d in _dims(dim, len(shape)) if shape and shape[d] == 1}
    return apply(Reshape, input, shape=tuple(s for i, s in enumerate(shape) if i not in dims),
                 node=_SQUEEZE_NODES.get(type(dim), "SqueezeBackward1"))


@export("unsqueeze", method=True)
def unsqueeze(input, dim):
    """A size-1 dim inserted at dim (in [-ndim - 1, ndim])."""
    shape = input._data.shape
    d = _dim(dim, len(shape) + 1)
    return apply(Reshape, input, shape=shape[:d] + (1,) + shape[d:], node="UnsqueezeBackward0")


class Expand(Op):
    """y = x broadcast to shape (a read-only view)"""

    rule = "dx = g summed over the broadcast dims"
    view_of = 0
    linear = True
    saves_nothing = True

    def forward(self, x):
        self.in_shape = x.shape
        return np.broadcast_to(x, self.shape)

    def backward(self, g):
        return (B.sum_to_shape(np.ascontiguousarray(g), self.in_shape),)


@export("expand", method=True, function=False)
def expand(self, *sizes):
    """self broadcast to sizes (-1 keeps a dim; new dims may lead)."""
    sizes = _shape_args(sizes, "expand")
    shape = self._data.shape
    if len(sizes) < len(shape):
        raise RuntimeError(f"expand(cygrad.{self.dtype.name}{{{list(shape)}}}, size={list(sizes)}"
                           f"): the number of sizes provided ({len(sizes)}) must be greater or "
                           f"equal to the number of dimensions in the tensor ({len(shape)})")
    lead = len(sizes) - len(shape)
    target = []
    for i, s in enumerate(sizes):
        if i < lead:
            if s < 0:
                raise RuntimeError(f"The expanded size of the tensor ({s}) isn't allowed in a "
                                   "leading, non-existing dimension")
            target.append(s)
            continue
        own = shape[i - lead]
        if s == -1:
            s = own
        if own != s and own != 1:
            raise RuntimeError(f"The expanded size of the tensor ({s}) must match the existing "
                               f"size ({own}) at non-singleton dimension {i}.  Target sizes: "
                               f"{list(sizes)}.  Tensor sizes: {list(shape)}")
        target.append(s)
    target = tuple(target)
    if target == shape:
        return apply(Reshape, self, shape=shape)
    return apply(Expand, self, shape=target)


@export("expand_as", method=True, function=False)
def expand_as(self, other):
    return expand(self, other._data.shape)


@export("broadcast_to", method=True)
def broadcast_to(input, size):
    return expand(input, size)


class Repeat(Op):
    """y = x tiled `repeats` times along each dim (torch.Tensor.repeat, numpy's tile)"""

    rule = "dx = g summed over the copies"
    linear = True

    def forward(self, x):
        self.in_shape = x.shape
        return np.tile(x, self.repeats)

    def backward(self, g):
        lead = len(self.repeats) - len(self.in_shape)
        shape = (1,) * lead + self.in_shape
        split = []
        for r, s in zip(self.repeats, shape):
            split += [r, s]
        g = g.reshape(split)
        target = tuple(1 if i % 2 == 0 else n for i, n in enumerate(split))
        return (B.sum_to_shape(np.ascontiguousarray(g), target).reshape(self.in_shape),)


@export("repeat", method=True, function=False)
def repeat(self, *sizes):
    """self tiled sizes[i] times along dim i (sizes may add leading dims)."""
    sizes = _shape_args(sizes, "repeat")
    if len(sizes) < self._data.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number "
                           "of dimensions of tensor")
    if any(s < 0 for s in sizes):
        lead = (1,) * (len(sizes) - self._data.ndim) + self._data.shape
        raise RuntimeError(f"Trying to create tensor with negative dimension "
                           f"{min(sizes)}: {[a * b for a, b in zip(lead, sizes)]}")
    return apply(Repeat, self, repeats=sizes)


class Slice(Op):
    """y = x[index] with basic indexing (ints, slices, None, Ellipsis): a view"""

    rule = "dx = zeros with g written at index"
    view_of = 0
    linear = True
    saves_nothing = True

    def forward(self, x):
        self.shape, self.dtype = x.shape, x.dtype
        return x[self.index]

    def backward(self, g):
        dx = np.zeros(self.shape, dtype=self.dtype)
        dx[self.index] = g
        return (dx,)

    def engine_backward(self, g):
        """dx as a SliceGrad: the engine adds g into x's gradient at index alone, so the L
        slices of a sequence (an RNN's steps, unbind, split) cost O(L) work, not O(L^2)."""
        return (SliceGrad(self.shape, self.dtype, self.index, g),)


class Gather(Op):
    """y = x[index] with advanced indexing (integer or bool arrays): a copy"""

    rule = "dx = zeros with g added at index (in index order)"

    def forward(self, x):
        self.shape, self.dtype = x.shape, x.dtype
        try:
            return x[self.index]
        except IndexError as err:
            self.index = _empty_result_index(x, self.index, err)
            return x[self.index]

    def backward(self, g):
        dx = np.zeros(self.shape, dtype=self.dtype)
        np.add.at(dx, self.index, g)  # sequential in index order: fixed for any thread count
        return (dx,)


def _empty_result_index(x, index, err):
    """For an advanced index numpy refuses (an integer out of range): torch checks only the
    elements it reads, so an index whose result is empty (another dim sliced to nothing) is
    fine. Returns an index of the same result shape with the integer arrays zeroed, or raises
    the original IndexError when the result has elements."""
    items = index if isinstance(index, tuple) else (index,)
    safe = tuple(np.zeros_like(i) if isinstance(i, np.ndarray) and i.dtype.kind in "iu" else i
                 for i in items)
    try:
        empty = x[safe].size == 0
    except IndexError:
        empty = False
    if not empty:
        raise err
    return safe if isinstance(index, tuple) else safe[0]


def _index(index):
    """A torch index as a numpy one (tensors to arrays), and whether it is basic (a view)."""
    if isinstance(index, list) and len(index) < 32 and any(
            isinstance(i, (Tensor, list, tuple, slice, np.ndarray)) or i is None or
            i is Ellipsis for i in index):
        index = tuple(index)  # torch reads such a list as a tuple of indices (numpy < 1.23)
    items = index if isinstance(index, tuple) else (index,)
    out, basic = [], True
    for item in items:
        if isinstance(item, Tensor):
            array = item._data
            if array.dtype.kind == "b":
                basic = False
                out.append(array)
            elif array.dtype.kind in "iu":
                if array.ndim == 0:
                    out.append(int(array))
                else:
                    basic = False
                    out.append(array)
            else:
                raise IndexError("tensors used as indices must be long, int, byte or bool "
                                 "tensors")
        elif isinstance(item, (list, tuple, np.ndarray)):
            array = np.asarray(item) if len(item) else np.zeros(0, np.int64)
            if array.dtype.kind == "f":
                raise IndexError("tensors used as indices must be long, int, byte or bool "
                                 "tensors")
            if array.dtype.kind not in "biu" and array.size:
                raise IndexError(f"unsupported index {item!r}")
            basic = False
            out.append(array.astype(np.int64) if array.size == 0 else array)
        elif isinstance(item, range):
            basic = False
            out.append(np.arange(item.start, item.stop, item.step))
        elif isinstance(item, slice):
            out.append(slice(*(None if v is None else operator.index(v)
                               for v in (item.start, item.stop, item.step))))
        elif item is None or item is Ellipsis:
            out.append(item)
        elif isinstance(item, bool):
            basic = False
            out.append(np.bool_(item))
        elif isinstance(item, (numbers.Integral, np.integer)):
            out.append(operator.index(item))
        else:
            raise IndexError(f"only integers, slices (`:`), ellipsis (`...`), None and long or "
                             f"byte Variables are valid indices (got {type(item).__name__})")
    if basic and Ellipsis not in out:
        out.append(Ellipsis)  # numpy then gives a 0-d view, not a scalar, for x[i, j]
    if not isinstance(index, tuple) and len(out) == 1:
        return out[0], basic
    return tuple(out), basic


_ALL = slice(None)


def getitem(self, index):
    index, basic = _index(index)
    if isinstance(index, slice) and index == slice(None):
        return apply(Slice, self, index=index)
    if basic:  # torch's grad_fn: that of the last index it applies (a full slice and ...
        node = "SliceBackward0"  # apply none): a select, an unsqueeze or a slice
        for i in (index if isinstance(index, tuple) else (index,)):
            if isinstance(i, slice):
                if i.step is not None and i.step <= 0:
                    raise ValueError("step must be greater than zero")
                if i != _ALL:
                    node = "SliceBackward0"
            elif i is None:
                node = "UnsqueezeBackward0"
            elif i is not Ellipsis:
                node = "SelectBackward0"
        return apply(Slice, self, index=index, node=node)
    return apply(Gather, self, index=index, node="IndexBackward0")


class IndexPut(Op):
    """y = x with y[index] = v (a copy; x itself is written by the in-place form), or, with
    accumulate, y[index] += v (repeated indices add up, in index order)"""

    rule = "dx = g (with zeros at index unless accumulating);  dv = g[index] summed to v's shape"
    accumulate = False

    def forward(self, x, v):
        self.v_shape = v.shape
        y = x.copy()
        try:
            try:
                self._put(y, v)
            except IndexError as err:
                self.index = _empty_result_index(y, self.index, err)
                self._put(y, v)
        except ValueError as err:
            raise RuntimeError(f"shape mismatch: value tensor of shape {list(v.shape)} cannot "
                               f"be broadcast to indexing result ({err})") from None
        return y

    def _put(self, y, v):
        if self.accumulate:
            np.add.at(y, self.index, v)
        else:
            y[self.index] = v

    def backward(self, g):
        dx = dv = None
        if self.needs[0]:
            dx = g
            if not self.accumulate:
                dx = g.copy()
                dx[self.index] = 0
        if self.needs[1]:
            picked = g[self.index]
            lead = len(self.v_shape) - picked.ndim
            if lead > 0:  # v had leading size-1 dims the write dropped
                picked = picked.reshape((1,) * lead + picked.shape)
            dv = B.sum_to_shape(np.ascontiguousarray(picked), self.v_shape)
        return dx, dv

    def vjp(self, g, inputs, output):
        dx = dv = None
        if self.needs[0]:
            dx = g
            if not self.accumulate:
                keep = np.ones(g.shape, bool)
                keep[self.index] = False
                dx = higher.where_const(keep, g)
        if self.needs[1]:
            picked = g[self.index]
            lead = len(self.v_shape) - picked.ndim
            if lead > 0:
                picked = picked.reshape((1,) * lead + tuple(picked.shape))
            dv = higher.sum_to(picked, self.v_shape)
        return dx, dv


def setitem(self, index, value):
    """self[index] = value, in place (value: a number or a tensor broadcast to the slots)."""
    np_index, basic = _index(index)
    if not isinstance(value, Tensor):
        value = _wrap(np.asarray(scalar_as(value, self._data.dtype)))
    elif value._data.dtype != self._data.dtype:
        value = value.type(self.dtype) if value._rg and _local.grad_enabled else \
            _wrap(value._data.astype(self._data.dtype))
    if not (_local.grad_enabled and (self._rg or value._rg)):
        from ..tensor import _writable

        target = _writable(self)
        try:
            try:
                target[np_index] = value._data
            except IndexError as err:
                target[_empty_result_index(target, np_index, err)] = value._data
        except ValueError as err:
            raise RuntimeError(f"shape mismatch: value tensor of shape {list(value.shape)} "
                               f"cannot be broadcast to indexing result ({err})") from None
        return
    from ..tensor import COPY_SLICES

    self._write(apply(IndexPut, self._inplace_input(), value, index=np_index,
                      node=COPY_SLICES if basic else None))


Tensor.__getitem__ = getitem
Tensor.__setitem__ = setitem


@export("index_put", method=True)
def index_put(input, indices, values, accumulate=False):
    """input with input[indices] = values (indices: a tuple of index tensors), or += with
    accumulate=True."""
    if not isinstance(indices, (tuple, list)):
        raise TypeError(f"index_put(): argument 'indices' must be tuple of Tensors, not "
                        f"{type(indices).__name__}")
    np_index, _ = _index(tuple(indices))
    if not isinstance(values, Tensor):
        raise TypeError(f"index_put(): argument 'values' must be Tensor, not "
                        f"{type(values).__name__}")
    if values._data.dtype != input._data.dtype:
        raise RuntimeError(f"Index put requires the source and destination dtypes match, got "
                           f"{_name(input)} for the destination and {_name(values)} for the "
                           f"source.")
    return apply(IndexPut, input, values, index=np_index, accumulate=bool(accumulate))


registry.METHODS["index_put_"] = lambda self, indices, values, accumulate=False: \
    self._write(index_put(self._inplace_input(), indices, values, accumulate))


@export("narrow", method=True)
def narrow(input, dim, start, length):
    d = _dim(dim, input._data.ndim)
    size = input._data.shape[d]
    start = operator.index(start)
    if start < 0:
        start += size
    if not 0 <= start <= size or length < 0 or start + length > size:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size "
                           f"({size}).")
    return apply(Slice, input, index=(slice(None),) * d + (slice(start, start + length),))


@export("select", method=True)
def select(input, dim, index):
    d = _dim(dim, input._data.ndim)
    size = input._data.shape[d]
    i = operator.index(index)
    if not -size <= i < size:
        raise IndexError(f"select(): index {i} out of range for tensor of size "
                         f"{list(input.shape)} at dimension {d}")
    return apply(Slice, input, index=(slice(None),) * d + (i,), node="SelectBackward0")


@export("unbind", method=True)
def unbind(input, dim=0):
    """The slices along dim, as a tuple of views."""
    d = _dim(dim, input._data.ndim)
    return tuple(apply(Slice, input, index=(slice(None),) * d + (i,), node="UnbindBackward0")
                 for i in range(input._data.shape[d]))


@export("split")
def split(tensor, split_size_or_sections, dim=0):
    """Views of consecutive pieces along dim: of split_size each (the last may be smaller), or
    of the listed sizes."""
    d = _dim(dim, tensor._data.ndim)
    size = tensor._data.shape[d]
    node = "SplitWithSizesBackward0"
    if isinstance(split_size_or_sections, (int, np.integer)):
        node = "SplitBackward0"
        step = int(split_size_or_sections)
        if step <= 0 and size:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got "
                               f"dimension size of {size}")
        sizes = [min(step, size - s) for s in range(0, size, step)] if size else [0]
    else:
        sizes = [operator.index(s) for s in split_size_or_sections]
        if sum(sizes) != size:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {size} "
                               f"(input tensor's size at dimension {d}), but got split_sizes="
                               f"{sizes}")
    pieces, start = [], 0
    for s in sizes:
        pieces.append(apply(Slice, tensor, index=(slice(None),) * d + (slice(start, start + s),),
                            node=node))
        start += s
    return tuple(pieces)


def _split_method(self, split_size, dim=0):
    """Tensor.split(split_size, dim=0): torch.split(self, split_size, dim) (the method names
    its argument split_size, as torch's)."""
    return split(self, split_size, dim)


_split_method.__name__ = _split_method.__qualname__ = "split"
registry.METHODS["split"] = _split_method


@export("chunk", method=True)
def chunk(input, chunks, dim=0):
    """At most `chunks` views along dim, each ceil(size / chunks) long (torch's rule)."""
    if chunks <= 0:
        raise RuntimeError("chunk expects `chunks` to be greater than 0, got: " + str(chunks))
    size = input._data.shape[_dim(dim, input._data.ndim)]
    step = max(-(-size // chunks), 1)
    return split(input, step, dim)


@export("tensor_split", method=True)
def tensor_split(input, indices_or_sections, dim=0):
    d = _dim(dim, input._data.ndim)
    size = input._data.shape[d]
    if isinstance(indices_or_sections, (int, np.integer)):
        n = int(indices_or_sections)
        q, r = divmod(size, n)
        sizes = [q + 1] * r + [q] * (n - r)
    else:
        bounds = [0] + [min(operator.index(i), size) for i in indices_or_sections] + [size]
        sizes = [max(b - a, 0) for a, b in zip(bounds, bounds[1:])]
    pieces, start = [], 0
    for s in sizes:
        pieces.append(narrow(input, d, start, s))
        start += s
    return tuple(pieces)


# ---------------------------------------------------------------------- joins

class Cat(Op):
    """y = the inputs joined along dim (1-D empty inputs skipped, as torch.cat skips them)"""

    rule = "dx_i = the slice of g that came from x_i"
    saves_nothing = True

    def forward(self, *xs):
        self.skipped = [x.shape == (0,) for x in xs]
        joined = [x for x, skip in zip(xs, self.skipped) if not skip] or xs[:1]
        self.sizes = [0 if skip else x.shape[self.dim] for x, skip in zip(xs, self.skipped)]
        return np.concatenate(joined, axis=self.dim)

    def backward(self, g):
        grads, start = [], 0
        for size, need, skip in zip(self.sizes, self.needs, self.skipped):
            if not need:
                grads.append(None)
            elif skip:
                grads.append(np.zeros(0, g.dtype))
            else:
                index = (slice(None),) * self.dim + (slice(start, start + size),)
                grads.append(np.ascontiguousarray(g[index]))
            start += size
        return tuple(grads)

    def vjp(self, g, inputs, output):
        grads, start = [], 0
        for x, size, need, skip in zip(inputs, self.sizes, self.needs, self.skipped):
            if not need or skip:
                grads.append(None if not need else registry.FUNCTIONS["zeros_like"](x))
            else:
                grads.append(g[(slice(None),) * self.dim + (slice(start, start + size),)])
            start += size
        return tuple(grads)


def _tensors(tensors, where):
    if isinstance(tensors, Tensor):
        raise TypeError(f"{where}(): argument 'tensors' must be tuple of Tensors, not Tensor")
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError(f"{where}(): expected a non-empty list of Tensors")
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"{where}(): expected Tensor as element in argument 'tensors', but "
                            f"got {type(t).__name__}")
    common = dtypes.result_type(*tensors) if len({t._data.dtype for t in tensors}) > 1 else None
    if common is not None:
        tensors = [t.type(common) for t in tensors]
    return tensors


@export("cat", "concat", "concatenate")
def cat(tensors, dim=0, *, out=None):
    """The tensors joined along dim (their other dims must match; dtypes promote)."""
    tensors = _tensors(tensors, "cat")
    for i, t in enumerate(tensors):
        if t._data.ndim == 0:
            raise RuntimeError(f"zero-dimensional tensor (at position {i}) cannot be "
                               f"concatenated")
    # torch skips 1-D empty tensors (legacy behaviour kept by torch.cat)
    kept = [t for t in tensors if not (t._data.ndim == 1 and t._data.shape[0] == 0)]
    ref = (kept or tensors)[0]._data
    d = _dim(dim, ref.ndim)
    for i, t in enumerate(tensors):
        s = t._data.shape
        if s == (0,):
            continue
        if len(s) != ref.ndim:
            raise RuntimeError(f"Tensors must have same number of dimensions: got {ref.ndim} "
                               f"and {len(s)}")
        for k in range(ref.ndim):
            if k != d and s[k] != ref.shape[k]:
                raise RuntimeError(f"Sizes of tensors must match except in dimension {d}. "
                                   f"Expected size {ref.shape[k]} but got size {s[k]} for "
                                   f"tensor number {i} in the list.")
    return _joined(tensors, d, out, "CatBackward0")


def _joined(tensors, d, out, node):
    result = apply(Cat, *tensors, dim=d, node=node)
    if out is not None:
        return out._write(result)
    return result


@export("stack")
def stack(tensors, dim=0, *, out=None):
    """The tensors (all of one shape) joined along a new dim."""
    tensors = _tensors(tensors, "stack")
    shape = tensors[0]._data.shape
    for i, t in enumerate(tensors):
        if t._data.shape != shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got "
                               f"{list(shape)} at entry 0 and {list(t.shape)} at entry {i}")
    d = _dim(dim, len(shape) + 1)
    return _joined([unsqueeze(t, d) for t in tensors], d, out, "StackBackward0")


@export("hstack")
def hstack(tensors):
    tensors = _tensors(tensors, "hstack")
    return cat(tensors, 0 if tensors[0]._data.ndim == 1 else 1)


@export("vstack", "row_stack")
def vstack(tensors):
    tensors = [t if t._data.ndim >= 2 else t.reshape(1, -1) for t in _tensors(tensors, "vstack")]
    return cat(tensors, 0)


@export("column_stack")
def column_stack(tensors):
    tensors = [t if t._data.ndim >= 2 else t.reshape(-1, 1)
               for t in _tensors(tensors, "column_stack")]
    return cat(tensors, 1)


# ---------------------------------------------------------------------- gathers and masks

class GatherDim(Op):
    """y[i][j] = x[index[i][j]][j] (dim 0; likewise for any dim): torch.gather"""

    rule = "dx = zeros with g added at index along dim (in index order)"
    linear = True

    def forward(self, x):
        self.shape, self.dtype = x.shape, x.dtype
        return np.take_along_axis(x, self.index, axis=self.dim)

    def backward(self, g):
        dx = np.zeros(self.shape, dtype=self.dtype)
        np.add.at(dx, _along(self.index, self.dim), g)
        return (dx,)


def _along(index, dim):
    """numpy's full index tuple for take/put along `dim` with `index`."""
    grids = np.indices(index.shape, sparse=True)
    return tuple(index if k == dim else grids[k] for k in range(index.ndim))


def _name(t):
    return dtypes.SCALAR_NAMES[t.dtype.name]


def _long_index(index, where, int32=False):
    """The index tensor's array: int64 (gather, scatter), or int32 too (index_select,
    index_add), as torch requires."""
    if not isinstance(index, Tensor):
        raise TypeError(f"{where}(): argument 'index' must be Tensor, not "
                        f"{type(index).__name__}")
    allowed = (np.int64, np.int32) if int32 else (np.int64,)
    if index._data.dtype not in allowed:
        names = "int32 or int64" if int32 else "int64"
        raise RuntimeError(f"{where}(): Expected dtype {names} for index")
    return index._data


@export("gather", method=True)
def gather(input, dim, index, *, sparse_grad=False):
    """Values of input picked along dim by index (same number of dims as input)."""
    idx = _long_index(index, "gather")
    d = _dim(dim, input._data.ndim)
    if idx.ndim != input._data.ndim:
        raise RuntimeError("Index tensor must have the same number of dimensions as input "
                           "tensor")
    size = input._data.shape[d]
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        bad = int(idx.min()) if idx.min() < 0 else int(idx.max())
        raise RuntimeError(f"index {bad} is out of bounds for dimension {d} with size {size}")
    for k in range(idx.ndim):
        if k != d and idx.shape[k] > input._data.shape[k]:
            raise RuntimeError(f"Size does not match at dimension {k} expected index "
                               f"{list(idx.shape)} to be smaller than self "
                               f"{list(input.shape)} apart from dimension {d}")
    x = input
    if any(idx.shape[k] < input._data.shape[k] for k in range(idx.ndim) if k != d):
        x = input[tuple(slice(0, idx.shape[k]) if k != d else slice(None)
                        for k in range(idx.ndim))]
    return apply(GatherDim, x, index=idx, dim=d)


class IndexSelect(Op):
    """y = x taken at index along dim"""

    rule = "dx = zeros with g added at index along dim (in index order)"
    linear = True

    def forward(self, x):
        self.shape, self.dtype = x.shape, x.dtype
        return np.take(x, self.index, axis=self.dim)

    def backward(self, g):
        dx = np.zeros(self.shape, dtype=self.dtype)
        where = (slice(None),) * self.dim + (self.index,)
        np.add.at(dx, where, g)
        return (dx,)


@export("index_select", method=True)
def index_select(input, dim, index):
    idx = _long_index(index, "index_select", int32=True)
    if idx.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    d = _dim(dim, input._data.ndim)
    size = input._data.shape[d] if input._data.ndim else 1
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        bad = int(idx.min()) if idx.min() < 0 else int(idx.max())
        # torch's two kernels: dim 0 raises IndexError, the others RuntimeError
        raise (IndexError if d == 0 else RuntimeError)(
            f"index out of range in self (index {bad} for dimension {d} of size {size})")
    return apply(IndexSelect, input, index=idx.reshape(-1), dim=d)


class ScatterAdd(Op):
    """y = x with src added at index along dim (in index order)"""

    rule = "dx = g;  dsrc = g gathered at index"

    def forward(self, x, src):
        y = x.copy()
        np.add.at(y, _along(self.index, self.dim), _leading(src, self.index.shape))
        return y

    def backward(self, g):
        return g, _scattered_grad(self, g) if self.needs[1] else None


class Scatter(Op):
    """y = x with src written at index along dim"""

    rule = "dx = g with zeros where written;  dsrc = g gathered at index"

    def forward(self, x, src):
        y = x.copy()
        y[_along(self.index, self.dim)] = _leading(src, self.index.shape)
        return y

    def backward(self, g):
        dx = None
        if self.needs[0]:
            dx = g.copy()
            dx[_along(self.index, self.dim)] = 0
        return dx, _scattered_grad(self, g) if self.needs[1] else None


def _leading(src, shape):
    """The part of src a scatter reads: its leading block of the index's shape."""
    return src[tuple(slice(0, s) for s in shape)]


def _scattered_grad(op, g):
    dsrc = np.zeros(op.src_shape, g.dtype)
    dsrc[tuple(slice(0, s) for s in op.index.shape)] = g[_along(op.index, op.dim)]
    return dsrc


def _scatter(op, input, dim, index, src, where, **params):
    idx = _long_index(index, where)
    d = _dim(dim, input._data.ndim)
    if not isinstance(src, Tensor):
        src = _wrap(np.full(idx.shape, scalar_as(src, input._data.dtype),
                            dtype=input._data.dtype))
    if src._data.dtype != input._data.dtype:
        raise RuntimeError(f"{where}(): Expected self.dtype to be equal to src.dtype")
    shape, ndim = input._data.shape, input._data.ndim
    if idx.ndim != ndim and not (idx.ndim <= 1 and ndim <= 1):
        raise RuntimeError("Index tensor must have the same number of dimensions as self "
                           "tensor")
    if idx.ndim != src._data.ndim and not (idx.ndim <= 1 and src._data.ndim <= 1):
        raise RuntimeError("Index tensor must have the same number of dimensions as src "
                           "tensor")
    idx = idx.reshape(idx.shape if ndim else ())
    if any(idx.shape[k] > (shape[k] if k != d else idx.shape[k]) or
           idx.shape[k] > src._data.shape[k] for k in range(idx.ndim)):
        raise RuntimeError(f"Expected index {list(idx.shape)} to be smaller than self "
                           f"{list(shape)} apart from dimension {d} and to be smaller size than "
                           f"src {list(src.shape)}")
    size = shape[d] if ndim else 1
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        bad = int(idx.min()) if idx.min() < 0 else int(idx.max())
        raise RuntimeError(f"index {bad} is out of bounds for dimension {d} with size {size}")
    return apply(op, input, src, index=idx, dim=d, src_shape=src._data.shape, **params)


_REDUCERS = {"sum": np.add, "prod": np.multiply, "mean": np.add, "amax": np.maximum,
             "amin": np.minimum}


def _identity(reduce, dtype):
    """The value a position starts from when self is not included."""
    if reduce in ("sum", "mean"):
        return 0
    if reduce == "prod":
        return 1
    if dtype.kind == "f":
        return -np.inf if reduce == "amax" else np.inf
    if dtype.kind == "b":
        return reduce == "amin"
    info = np.iinfo(dtype)
    return info.min if reduce == "amax" else info.max


def _scatter_reduced(x, src, index, dim, reduce, include_self):
    """x with src's values reduced into it at index along dim: each position of x, from its
    own value (include_self) or the reduction's identity, then the values scattered to it in
    index order (sum, prod, amax, amin; mean: the sum over the count, floored for integers).
    Also returns the count of values scattered to each position."""
    where = _along(index, dim)
    values = _leading(src, index.shape)
    y = x.copy()
    if not include_self:
        y[where] = _identity(reduce, y.dtype)
    _REDUCERS[reduce].at(y, where, values)
    count = np.zeros(x.shape, np.int64)
    np.add.at(count, where, 1)
    if reduce == "mean":
        n = np.maximum(count + (1 if include_self else 0), 1)
        if y.dtype.kind == "f":
            y = y / n.astype(y.dtype)
        else:
            y = np.floor_divide(y, n).astype(y.dtype)
    return y, count


class ScatterReduce(Op):
    """y = x with src reduced into it at index along dim (sum, prod, mean, amax, amin; each
    position in index order, from x's value when include_self)"""

    rule = ("sum: dx = g, dsrc = g gathered;  mean: g / n;  prod: dx = g y / x, dsrc = "
            "g y / src (a lone zero: the product of the others);  amax/amin: g shared evenly "
            "by the values equal to y;  dx = 0 where written when not include_self")

    def forward(self, x, src):
        self.x, self.src = x, src
        y, self.count = _scatter_reduced(x, src, self.index, self.dim, self.reduce,
                                         self.include_self)
        self.y = y
        return y

    def backward(self, g):
        reduce, where = self.reduce, _along(self.index, self.dim)
        x, y = self.x, self.y
        src = _leading(self.src, self.index.shape)
        if reduce == "sum":
            dx, dsrc = g, g[where]
        elif reduce == "mean":
            n = np.maximum(self.count + (1 if self.include_self else 0), 1).astype(g.dtype)
            dx = g / n
            dsrc = dx[where]
        elif reduce == "prod":
            masked = np.where(x == 0, 1, x).astype(x.dtype)
            others, _ = _scatter_reduced(masked, self.src, self.index, self.dim, "prod",
                                         self.include_self)
            dx = g * others / masked
            zero = src == 0
            zeros = np.zeros(x.shape, np.int64)
            np.add.at(zeros, where, zero.astype(np.int64))
            lone = zero & (zeros[where] == 1)
            lone_src = self.src.copy()
            lone_src[tuple(slice(0, k) for k in self.index.shape)] = np.where(lone, 1, src)
            rest, _ = _scatter_reduced(x, lone_src, self.index, self.dim, "prod",
                                       self.include_self)
            dsrc = np.where(lone, (g * rest)[where], (g * y)[where] / np.where(zero, 1, src))
        else:
            value = y[where]
            self_is = (x == y).astype(g.dtype)
            src_is = (src == value).astype(g.dtype)
            n = self_is.copy()
            np.add.at(n, where, src_is)
            share = g / n
            dx = self_is * share
            dsrc = src_is * share[where]
        if not self.include_self:
            dx = dx.copy()
            dx[where] = 0
        full = np.zeros(self.src.shape, g.dtype)
        full[tuple(slice(0, k) for k in self.index.shape)] = dsrc
        return dx, full if self.needs[1] else None


@export("scatter_reduce", method=True)
def scatter_reduce(input, dim, index, src, reduce, *, include_self=True):
    """input with src reduced into it at index along dim: reduce "sum", "prod", "mean",
    "amax" or "amin", each position from its own value (include_self) or only from what is
    scattered to it, in index order."""
    if reduce not in _REDUCERS:
        raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, got "
                           f"{reduce}")
    return _scatter(ScatterReduce, input, dim, index, src, "scatter_reduce", reduce=reduce,
                    include_self=bool(include_self))


@export("scatter", method=True)
def scatter(input, dim, index, src=None, value=None, *, reduce=None):
    """input with src (or value) written at index along dim; reduce="add" or "multiply":
    added or multiplied in instead (scatter_reduce's "sum" and "prod")."""
    source = value if src is None else src
    if reduce is None:
        return _scatter(Scatter, input, dim, index, source, "scatter")
    if reduce not in ("add", "multiply"):
        raise RuntimeError(f"reduce argument must be either add or multiply, got {reduce}")
    return _scatter(ScatterReduce, input, dim, index, source, "scatter",
                    reduce="sum" if reduce == "add" else "prod", include_self=True)


@export("scatter_add", method=True)
def scatter_add(input, dim, index, src):
    return _scatter(ScatterAdd, input, dim, index, src, "scatter_add")


registry.METHODS["scatter_"] = lambda self, dim, index, src=None, value=None, reduce=None: \
    self._write(scatter(self._inplace_input(), dim, index, src, value, reduce=reduce))
registry.METHODS["scatter_add_"] = lambda self, dim, index, src: \
    self._write(scatter_add(self._inplace_input(), dim, index, src))
registry.METHODS["scatter_reduce_"] = lambda self, dim, index, src, reduce, *, \
    include_self=True: self._write(scatter_reduce(self._inplace_input(), dim, index, src, reduce,
                                                  include_self=include_self))


@export("index_add", method=True)
def index_add(input, dim, index, source, *, alpha=1):
    """input with alpha * source's slices added at index along dim (in index order)."""
    d, full = _index_along(input, dim, index, source, "index_add")
    if alpha != 1:
        source = source * alpha
    return _scatter(ScatterAdd, input, d, full, source, "index_add")


def _index_along(input, dim, index, source, name):
    """index_add's and index_reduce's checks; (dim, index as a scatter's: index[i] at every
    position of source's slice i along dim)."""
    idx = _long_index(index, name, int32=True)
    d = _dim(dim, input._data.ndim)
    if source._data.dtype != input._data.dtype:
        raise RuntimeError(f"{name}_(): self ({_name(input)}) and source ({_name(source)}) "
                           "must have the same scalar type")
    if idx.ndim > 1:
        raise IndexError(f"{name}_(): Index is supposed to be a vector")
    expected = input._data.shape[:d] + (idx.size,) + input._data.shape[d + 1:]
    if source._data.shape != expected and input._data.ndim:
        raise RuntimeError(f"{name}_(): source of shape {list(source.shape)} does not match "
                           f"self of shape {list(input.shape)} with {idx.size} indices along "
                           f"dim {d} (expected {list(expected)})")
    shape = [1] * source._data.ndim
    shape[d] = idx.size
    full = np.broadcast_to(idx.reshape(shape), source._data.shape)
    return d, _wrap(np.ascontiguousarray(full))


registry.METHODS["index_add_"] = lambda self, dim, index, source, *, alpha=1: \
    self._write(index_add(self._inplace_input(), dim, index, source, alpha=alpha))


@export("index_reduce", method=True)
def index_reduce(input, dim, index, source, reduce, *, include_self=True):
    """input with source's slices reduced into it at index along dim (reduce "prod", "mean",
    "amax" or "amin"; scatter_reduce's rules, each slice in index order)."""
    if reduce not in ("prod", "mean", "amax", "amin"):
        raise RuntimeError(f"index_reduce(): Expected reduce to be one of prod, mean, amax or "
                           f"amin but got {reduce}.")
    d, full = _index_along(input, dim, index, source, "index_reduce")
    return _scatter(ScatterReduce, input, d, full, source, "index_reduce", reduce=reduce,
                    include_self=bool(include_self))


registry.METHODS["index_reduce_"] = lambda self, dim, index, source, reduce, *, \
    include_self=True: self._write(index_reduce(self._inplace_input(), dim, index, source,
                                                reduce, include_self=include_self))


class Where(Op):
    """y = x where condition else other"""

    rule = "dx = g where condition (else 0);  dother = g where not condition"

    def forward(self, x, other):
        self.shapes = x.shape, other.shape
        return np.where(self.condition, x, other)

    def backward(self, g):
        zero = g.dtype.type(0)
        dx = B.sum_to_shape(np.where(self.condition, g, zero), self.shapes[0]) \
            if self.needs[0] else None
        do = B.sum_to_shape(np.where(self.condition, zero, g), self.shapes[1]) \
            if self.needs[1] else None
        return dx, do

    def vjp(self, g, inputs, output):
        dx = higher.sum_to(higher.where_const(self.condition, g), self.shapes[0]) \
            if self.needs[0] else None
        do = higher.sum_to(higher.where_const(~np.asarray(self.condition), g), self.shapes[1]) \
            if self.needs[1] else None
        return dx, do


@export("where")
def where(condition, input=None, other=None, *, out=None):
    """input where condition holds, else other (broadcast; dtypes promote). With only a
    condition: the indices of its non-zero elements, one tensor per dim."""
    if input is None and other is None:
        return nonzero(condition, as_tuple=True)
    from .elementwise import _as, _check_broadcast, _operand

    cond = condition._data if isinstance(condition, Tensor) else np.asarray(condition)
    if cond.dtype != np.bool_:
        raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor "
                           f"with dtype {dtypes._BY_NUMPY.get(cond.dtype, cond.dtype)}")
    a, b = _operand(input), _operand(other)
    common = dtypes.result_type(a, b)
    a, b = _as(a, common), _as(b, common)
    for s in (a._data.shape, b._data.shape):
        if s != cond.shape:
            _check_broadcast(cond.shape, s)
    shape = np.broadcast_shapes(cond.shape, a._data.shape, b._data.shape)
    if not common.is_floating_point:
        return _wrap(np.where(cond, a._data, b._data))
    out_ = apply(Where, a, b, condition=cond)
    if out_._data.shape != shape:  # the condition broadcast the result further
        out_ = expand(out_, shape).contiguous()
    return out_


registry.METHODS["where"] = lambda self, condition, other: where(condition, self, other)


@export("nonzero", method=True)
def nonzero(input, *, as_tuple=False):
    idx = np.nonzero(input._data) if input._data.ndim else np.nonzero(input._data.reshape(1))
    if as_tuple:
        return tuple(_wrap(i.astype(np.int64)) for i in idx)
    if input._data.ndim == 0:  # one row per nonzero element, no index columns
        return _wrap(np.empty((idx[0].size, 0), np.int64))
    return _wrap(np.stack(idx, axis=1).astype(np.int64) if idx else
                 np.empty((0, 0), np.int64))


@export("argwhere", method=True)
def argwhere(input):
    return nonzero(input)


class MaskedFill(Op):
    """y = x with value wherever mask is true"""

    rule = "dx = g where not mask;  dvalue = sum of g where mask"

    def forward(self, x, value):
        self.mask_b = np.broadcast_to(self.mask, x.shape)
        return np.where(self.mask_b, value.astype(x.dtype), x)

    def backward(self, g):
        zero = g.dtype.type(0)
        dx = np.where(self.mask_b, zero, g) if self.needs[0] else None
        dv = None
        if self.needs[1]:
            dv = B.sum_to_shape(np.where(self.mask_b, g, zero).reshape(-1, 1), (1,)).reshape(())
        return dx, dv


@export("masked_fill", method=True)
def masked_fill(input, mask, value):
    """input with value (a number or a 0-d tensor) wherever mask (bool, broadcast) is true."""
    m = mask._data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype "
                           f"{dtypes._BY_NUMPY.get(m.dtype, m.dtype)}")
    try:
        shape = np.broadcast_shapes(m.shape, input._data.shape)
    except ValueError:
        raise RuntimeError(f"The size of tensor a ({list(input.shape)}) must match the size of "
                           f"tensor b ({list(m.shape)})") from None
    if shape != input._data.shape:
        raise RuntimeError(f"masked_fill: the mask of shape {list(m.shape)} cannot broadcast to "
                           f"the input's shape {list(input.shape)}")
    if isinstance(value, Tensor):
        if value._data.ndim != 0:
            raise RuntimeError(f"masked_fill_ only supports a 0-dimensional value tensor, but "
                               f"got tensor with {value._data.ndim} dimension(s).")
        if value._data.dtype != input._data.dtype:
            value = value.type(input.dtype)
    else:
        value = _wrap(np.asarray(scalar_as(value, input._data.dtype)))
    return apply(MaskedFill, input, value, mask=m)


registry.METHODS["masked_fill_"] = lambda self, mask, value: \
    self._write(masked_fill(self._inplace_input(), mask, value))


@export("masked_select", method=True)
def masked_select(input, mask):
    m = mask._data if isinstance(mask, Tensor) else np.asarray(mask)
    shape = np.broadcast_shapes(m.shape, input._data.shape)
    return expand(input, shape)[_wrap(np.broadcast_to(m, shape))]


class Tri(Op):
    """y = the lower (tril) or upper (triu) triangle of x's last two dims"""

    rule = "dx = the same triangle of g"
    linear = True

    def forward(self, x):
        return self.fn(x, self.diagonal)

    def backward(self, g):
        return (self.fn(g, self.diagonal),)


def _tri(fn, name):
    def triangle(input, diagonal=0):
        if input._data.ndim < 2:
            raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions")
        if not input.is_floating_point():
            return _wrap(fn(input._data, diagonal))
        return apply(Tri, input, fn=fn, diagonal=operator.index(diagonal))

    triangle.__doc__ = f"{name}(input, diagonal=0): the {'lower' if name == 'tril' else 'upper'}" \
                       f" triangle of the last two dims, the rest zero"
    export(name, method=True)(triangle)
    registry.METHODS[name + "_"] = lambda self, diagonal=0: \
        self._write(triangle(self._inplace_input(), diagonal))
    return triangle


tril = _tri(np.tril, "tril")
triu = _tri(np.triu, "triu")


class Flip(Op):
    """y = x reversed along dims"""

    rule = "dx = g reversed along dims"
    linear = True

    def forward(self, x):
        return np.flip(x, self.dims).copy()

    def backward(self, g):
        return (np.flip(g, self.dims).copy(),)


@export("flip", method=True)
def flip(input, *dims):
    dims = _shape_args(dims, "flip")
    return apply(Flip, input, dims=_dims(dims, input._data.ndim))


class Roll(Op):
    """y = x rolled by shifts along dims"""

    rule = "dx = g rolled back"
    linear = True

    def forward(self, x):
        return np.roll(x, self.shifts, self.dims)

    def backward(self, g):
        back = tuple(-s for s in self.shifts) if self.dims is not None else -self.shifts
        return (np.roll(g, back, self.dims),)


@export("roll", method=True)
def roll(input, shifts, dims=None):
    """input rolled by shifts along dims (a dim named twice rolls twice); with no dims, the
    flattened input is rolled and reshaped back."""
    if dims is None or (isinstance(dims, (tuple, list)) and not dims):
        if not isinstance(shifts, (int, np.integer)):
            if len(shifts) != 1:
                raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, "
                                   "dims:0")
            shifts = shifts[0]
        return apply(Roll, input, shifts=operator.index(shifts), dims=None)
    shifts = (shifts,) if isinstance(shifts, (int, np.integer)) else tuple(shifts)
    dims = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:"
                           f"{len(dims)}")
    ndim = input._data.ndim
    return apply(Roll, input, shifts=tuple(operator.index(s) for s in shifts),
                 dims=tuple(_dim(d, ndim) for d in dims))


class Diagonal(Op):
    """y = the diagonal of x's dims dim1, dim2 (offset) as the last dim: a view"""

    rule = "dx = zeros with g on the diagonal"
    linear = True
    view_of = 0

    def forward(self, x):
        self.shape = x.shape
        return _diagonal_view(x, self.offset, self.dim1, self.dim2)

    def backward(self, g):
        dx = np.zeros(self.shape, g.dtype)
        _diagonal_view(dx, self.offset, self.dim1, self.dim2)[...] = g
        return (dx,)


def _diagonal_view(x, offset, dim1, dim2):
    """The diagonal as a view that can be written when x can (numpy's is read-only)."""
    moved = np.moveaxis(x, (dim1, dim2), (-2, -1))
    rows, cols = moved.shape[-2:]
    if offset >= 0:
        start, n = (0, offset), max(min(rows, cols - offset), 0)
    else:
        start, n = (-offset, 0), max(min(rows + offset, cols), 0)
    corner = moved[..., min(start[0], rows):, min(start[1], cols):]
    strides = corner.strides[:-2] + (corner.strides[-2] + corner.strides[-1],)
    return np.lib.stride_tricks.as_strided(corner, corner.shape[:-2] + (n,), strides,
                                           writeable=x.flags.writeable)


@export("diagonal", method=True)
def diagonal_of(input, offset=0, dim1=0, dim2=1):
    n = input._data.ndim
    d1, d2 = _dim(dim1, n), _dim(dim2, n)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    return apply(Diagonal, input, offset=operator.index(offset), dim1=d1, dim2=d2)


@export("diag", method=True)
def diag(input, diagonal=0):
    """A 1-D input as a square matrix's diagonal (offset `diagonal`); a 2-D input's diagonal."""
    if input._data.ndim not in (1, 2):
        raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {input._data.ndim}D")
    if input._data.ndim == 1:
        n = input._data.shape[0] + abs(diagonal)
        base = _wrap(np.zeros((n, n), input._data.dtype))
        idx = np.arange(input._data.shape[0])
        rows, cols = (idx, idx + diagonal) if diagonal >= 0 else (idx - diagonal, idx)
        return index_put(base, (_wrap(rows), _wrap(cols)), input)
    return diagonal_of(input, diagonal).clone()  # torch.diag copies (diagonal() views)


# ---------------------------------------------------------------------- composites
# torch functions made of the ops above (views, expand, flip, index_select, gather, cat and
# the elementwise ops): their gradients are those ops' gradients, their bits those ops' bits.

def _broadcast_shape(shapes, where):
    """torch's broadcast of several shapes (right-aligned, 1 stretches), or RuntimeError."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(ndim):
        sizes = {s[len(s) - ndim + i] for s in shapes if len(s) - ndim + i >= 0} - {1}
        if len(sizes) > 1:
            raise RuntimeError(f"{where}: shape mismatch: objects cannot be broadcast to a "
                               f"single shape; shapes {[list(s) for s in shapes]}")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


@export("broadcast_shapes")
def broadcast_shapes(*shapes):
    """The shape the given shapes (ints or sequences of ints) broadcast to, as a Size."""
    normal = []
    for s in shapes:
        s = (s,) if isinstance(s, (int, np.integer)) else tuple(s)
        for n in s:
            if operator.index(n) < 0:
                raise RuntimeError(f"Trying to create tensor with negative dimension {n}: "
                                   f"{list(s)}")
        normal.append(tuple(operator.index(n) for n in s))
    return Size(_broadcast_shape(normal, "broadcast_shapes"))


@export("broadcast_tensors")
def broadcast_tensors(*tensors):
    """The tensors expanded to their common shape (views), as a tuple."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"broadcast_tensors(): expected Tensor as element in argument "
                            f"'tensors', but got {type(t).__name__}")
    shape = _broadcast_shape([t._data.shape for t in tensors], "broadcast_tensors")
    return tuple(expand(t, shape) for t in tensors)


@export("tile", method=True)
def tile(input, *dims):
    """input repeated dims[i] times along dim i (torch.tile): with fewer dims than input has,
    leading 1s are assumed; with more, input gains leading dims (Tensor.repeat after that)."""
    dims = _shape_args(dims, "tile")
    nd = input._data.ndim
    if len(dims) < nd:
        dims = (1,) * (nd - len(dims)) + tuple(dims)
    return repeat(input, dims)


@export("repeat_interleave", method=True)
def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """Each element (each slice along dim; of the flattened input when dim is None) repeated
    `repeats` times in place: an int, or a tensor of one count per element. With a single
    tensor argument, torch.repeat_interleave(repeats): its indices repeated. An index_select,
    whose gradient sums each element's copies in order."""
    if repeats is None:  # torch.repeat_interleave(repeats)
        counts = input
        if not isinstance(counts, Tensor) or counts._data.ndim > 1:
            raise RuntimeError("repeat_interleave only accept 1D vector as repeat")
        reps = _counts(counts)
        return _wrap(np.repeat(np.arange(reps.size, dtype=np.int64), reps))
    if dim is None:
        x, d = input.reshape(-1), 0
    else:
        x, d = input, _dim(dim, input._data.ndim)
    size = x._data.shape[d] if x._data.ndim else 1
    if isinstance(repeats, Tensor):
        if repeats._data.ndim > 1:
            raise RuntimeError("repeats must be 0-dim or 1-dim tensor")
        reps = _counts(repeats)
        if reps.size == 1:
            reps = np.full(size, reps[0], np.int64)
        elif reps.size != size:
            raise RuntimeError(f"repeats must have the same size as input along dim, but got "
                               f"repeats.size(0) = {reps.size} and input.size({d}) = {size}")
    else:
        n = operator.index(repeats)
        if n < 0:
            raise RuntimeError("repeats can not be negative")
        reps = np.full(size, n, np.int64)
    index = np.repeat(np.arange(size, dtype=np.int64), reps)
    if output_size is not None and output_size != index.size:
        raise RuntimeError(f"allocated size does not match required size: output_size "
                           f"{output_size}, required {index.size}")
    if x._data.ndim == 0:
        x = x.reshape(1)
    return index_select(x, d, _wrap(index))


def _counts(counts):
    if counts._data.dtype.kind not in "iu":
        raise RuntimeError("repeat_interleave: repeats has to be Long or Int tensor")
    reps = counts._data.reshape(-1).astype(np.int64)
    if reps.size and reps.min() < 0:
        raise RuntimeError("repeats can not be negative")
    return reps


@export("meshgrid")
def meshgrid(*tensors, indexing=None):
    """Coordinate grids of 0-D or 1-D tensors (expanded views): indexing "ij" (the default,
    with torch's warning when not given) or "xy" (the first two dims swapped)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing is None:
        import warnings
        warnings.warn("torch.meshgrid: in an upcoming release, it will be required to pass the "
                      "indexing argument.", UserWarning, stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f'torch.meshgrid: indexing must be one of "xy" or "ij", but '
                           f'received: {indexing}')
    if not tensors:
        raise RuntimeError("torch.meshgrid: Expected at least one tensor in the tensor list")
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"meshgrid(): expected Tensor as element in argument 'tensors', but "
                            f"got {type(t).__name__}")
        if t._data.ndim > 1:
            raise RuntimeError(f"torch.meshgrid: Expected 0D or 1D tensor in the tensor list but "
                               f"got: {t._data.ndim}D")
    if len({t._data.dtype for t in tensors}) > 1:
        raise RuntimeError("meshgrid expects all tensors to have the same dtype")
    order = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) >= 2:
        order[0], order[1] = 1, 0
    sizes = [tensors[i]._data.size for i in order]
    out = []
    for i, t in enumerate(tensors):
        place = order.index(i)
        shape = [1] * len(tensors)
        shape[place] = sizes[place]
        out.append(t.reshape(shape).expand(sizes))
    return tuple(out)


def _atleast(ndim, tensors, where):
    single = len(tensors) == 1 and isinstance(tensors[0], Tensor)
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    out = []
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"{where}(): argument 'tensors' must be tuple of Tensors, not "
                            f"{type(t).__name__}")
        n = t._data.ndim
        if n >= ndim:
            out.append(t)
        elif ndim == 3 and n == 2:
            out.append(t.unsqueeze(-1))
        elif ndim == 3 and n == 1:
            out.append(t.reshape(1, -1, 1))
        else:
            out.append(t.reshape((1,) * (ndim - max(n, 1)) + (t._data.shape or (1,))))
    return out[0] if single else tuple(out)


@export("atleast_1d")
def atleast_1d(*tensors):
    return _atleast(1, tensors, "atleast_1d")


@export("atleast_2d")
def atleast_2d(*tensors):
    return _atleast(2, tensors, "atleast_2d")


@export("atleast_3d")
def atleast_3d(*tensors):
    return _atleast(3, tensors, "atleast_3d")


@export("take_along_dim", method=True)
def take_along_dim(input, indices, dim=None):
    """input's values at indices along dim (input and indices broadcast in the other dims), or
    of the flattened input at the flattened indices when dim is None: a gather."""
    if not isinstance(indices, Tensor):
        raise TypeError(f"take_along_dim(): argument 'indices' must be Tensor, not "
                        f"{type(indices).__name__}")
    if dim is None:  # (torch takes int32 indices here too)
        if indices._data.dtype.kind not in "iu":
            raise RuntimeError("take(): Expected a long tensor for index, but got "
                               f"{dtypes.SCALAR_NAMES[indices.dtype.name]}")
        return gather(input.reshape(-1), 0, indices.reshape(-1).long())
    if indices._data.dtype != np.int64:
        raise RuntimeError(f"torch.take_along_dim(): dtype of indices should be Long but got "
                           f"{dtypes.SCALAR_NAMES[indices.dtype.name]}")
    n = input._data.ndim
    d = _dim(dim, n)
    if indices._data.ndim != n:
        raise RuntimeError(f"torch.take_along_dim(): input and indices should have the same "
                           f"number of dimensions, but got {n} dimensions for input, and "
                           f"{indices._data.ndim} dimensions for indices")
    xs, ks = list(input._data.shape), list(indices._data.shape)
    xs[d] = ks[d] = 1
    common = list(_broadcast_shape([tuple(xs), tuple(ks)], "take_along_dim"))
    xs, ks = common.copy(), common.copy()
    xs[d], ks[d] = input._data.shape[d], indices._data.shape[d]
    return gather(expand(input, xs), d, expand(indices, ks))


@export("diff", method=True)
def diff(input, n=1, dim=-1, prepend=None, append=None):
    """The n-th forward difference along dim (x[i+1] - x[i], repeated n times; for bool
    x[i+1] != x[i]), after prepend and append are joined on."""
    if input._data.ndim == 0:
        raise RuntimeError("diff expects input to be at least one-dimensional")
    n = operator.index(n)
    if n < 0:
        raise RuntimeError(f"order must be non-negative but got {n}")
    d = _dim(dim, input._data.ndim)
    parts = [t for t in (prepend, input, append) if t is not None]
    for t in parts:
        if not isinstance(t, Tensor):
            raise TypeError(f"diff(): argument 'prepend' must be Tensor, not {type(t).__name__}")
        if t._data.ndim != input._data.ndim:
            raise RuntimeError("diff expects prepend or append to be the same dimension as input")
    x = cat(parts, d) if len(parts) > 1 else input
    for _ in range(n):
        length = x._data.shape[d]
        if length == 0:
            break
        hi, lo = narrow(x, d, 1, length - 1), narrow(x, d, 0, length - 1)
        x = hi != lo if x._data.dtype == np.bool_ else hi - lo
    return x


@export("fliplr", method=True)
def fliplr(input):
    if input._data.ndim < 2:
        raise RuntimeError("Input must be >= 2-d.")
    return flip(input, 1)


@export("flipud", method=True)
def flipud(input):
    if input._data.ndim < 1:
        raise RuntimeError("Input must be >= 1-d.")
    return flip(input, 0)


@export("rot90", method=True)
def rot90(input, k=1, dims=(0, 1)):
    """input rotated by k quarter turns in the plane of dims, from the first towards the
    second (flips and a transpose: views and copies only)."""
    dims = tuple(dims)
    if len(dims) != 2:
        raise RuntimeError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
    n = input._data.ndim
    if n < 2:
        raise RuntimeError(f"expected total dims >= 2, but got total dims = {n}")
    a, b = _dim(dims[0], n), _dim(dims[1], n)
    if a == b:
        raise RuntimeError(f"expected rotation dims to be different, but got dim0 = {a} and "
                           f"dim1 = {b}")
    k = operator.index(k) % 4
    if k == 1:
        return flip(input, b).transpose(a, b)
    if k == 2:
        return flip(input, a, b)
    if k == 3:
        return flip(input, a).transpose(a, b)
    return input.clone()


# ---------------------------------------------------------------------- as_strided

def _storage(a):
    """The memory `a` is a view of, as one contiguous 1-D array (tensor._storage_root,
    flattened), and where a's first element sits in it (in elements)."""
    root = _storage_root(a)
    if not root.flags.c_contiguous or root.nbytes % a.itemsize:
        raise NotImplementedError("as_strided on a tensor whose memory is a non-contiguous "
                                  "numpy array: cygrad has no storage of it to index")
    flat = root.reshape(-1).view(a.dtype)  # (a view of another dtype's memory: a's elements)
    return flat, (a.__array_interface__["data"][0] - flat.__array_interface__["data"][0]) \
        // a.itemsize


def _positions(shape, strides, offset):
    """The storage index of every element of a (shape, strides in elements, offset) view."""
    pos = np.full(shape, offset, dtype=np.int64)
    for d, (n, s) in enumerate(zip(shape, strides)):
        pos += (np.arange(n, dtype=np.int64) * s).reshape((n,) + (1,) * (len(shape) - d - 1))
    return pos


class AsStrided(Op):
    """y[i] = the element of x's memory at offset + sum_d i_d * stride_d: a view"""

    rule = ("dx = g added into a zero copy of x's memory where y sits (in y's order), divided "
            "by how many of x's elements share each place, read at x's")
    view_of = 0
    linear = True
    saves_nothing = True

    def forward(self, x):
        flat, start = _storage(x)
        size, stride, offset = self.size, self.stride, self.offset
        if offset is None:
            offset = start
        item = x.itemsize
        if any(n == 0 for n in size):
            need = offset
        else:
            need = offset + 1 + sum((n - 1) * s for n, s in zip(size, stride))
        if need > flat.size:
            raise RuntimeError(f"setStorage: sizes {list(size)}, strides {list(stride)}, storage "
                               f"offset {offset}, and itemsize {item} requiring a storage size "
                               f"of {need * item} are out of bounds for storage of size "
                               f"{flat.size * item}")
        self.x_geometry = (x.shape, tuple(s // item for s in x.strides), start)
        self.y_geometry = (size, stride, offset)
        self.storage_size, self.dtype = flat.size, x.dtype
        return np.lib.stride_tricks.as_strided(flat[offset:], size,
                                               tuple(s * item for s in stride))

    def backward(self, g):
        memory = np.zeros(self.storage_size, dtype=self.dtype)
        np.add.at(memory, _positions(*self.y_geometry), g)  # in y's order: fixed
        x_pos = _positions(*self.x_geometry)
        count = np.bincount(x_pos.reshape(-1), minlength=self.storage_size)
        if count.max(initial=0) > 1:  # x's elements overlap (an expand): torch's share each
            np.divide(memory, count, out=memory, where=count > 1)
        return (memory[x_pos],)

    def positions_in(self, base):
        """Where each of the view's elements sits among base's (row-major indices), for a
        write through the view (tensor._write_view); raises where two share one or one lies
        outside base."""
        x_pos = _positions(*self.x_geometry).reshape(-1)
        y_pos = _positions(*self.y_geometry)
        order = np.argsort(x_pos, kind="stable")
        found = np.searchsorted(x_pos[order], y_pos)
        inside = (found < x_pos.size) & (x_pos[order][np.minimum(found, x_pos.size - 1)]
                                         == y_pos)
        if not inside.all():
            raise RuntimeError("a write through an as_strided view reaching memory outside the "
                               "tensor it was taken from is not supported in cygrad")
        if np.unique(y_pos).size != y_pos.size or np.unique(x_pos).size != x_pos.size:
            raise RuntimeError("unsupported operation: more than one element of the written-to "
                               "tensor refers to a single memory location. Please clone() the "
                               "tensor before performing the operation.")
        return order[found]


@export("resize_", method=True, function=False)
def resize_(self, *size, memory_format=None):
    """torch's resize_: the same tensor with another shape, its memory read in C order from
    its storage offset (the strides it had are dropped, unless the shape is the one it
    has); a larger shape than its storage holds gets a larger storage, the old elements kept
    and the new ones uninitialized. Departure: a storage that grows is new memory, which
    views taken before the resize do not see (torch's views share the grown storage)."""
    if memory_format is not None and memory_format != "contiguous_format":
        raise NotImplementedError(f"resize_(): memory_format={memory_format} is not supported "
                                  "(cygrad tensors are C-ordered)")
    shape = _shape_args(size, "resize_")
    if any(n < 0 for n in shape):
        raise RuntimeError(f"Trying to create tensor with negative dimension "
                           f"{min(shape)}: {list(shape)}")
    if self.requires_grad:
        raise RuntimeError("cannot resize variables that require grad")
    a = self._data
    if shape == a.shape:
        return self
    numel = math.prod(shape)
    flat, start = _storage(a)
    if start + numel > flat.size:  # torch's storage grows: old elements kept, the rest new
        grown = np.empty(start + numel, dtype=a.dtype)
        grown[:flat.size] = flat
        flat = grown
    self._data = flat[start:][:numel].reshape(shape)  # ([start:start] would drop the offset)
    if self._extra is not None:  # no longer the view op's result: writes go to its memory
        self._extra.pop("base", None)
        self._extra.pop("view_op", None)
    return self


@export("resize_as_", method=True, function=False)
def resize_as_(self, the_template, *, memory_format=None):
    """torch's resize_as_: resize_(the_template.shape)."""
    return resize_(self, tuple(the_template.shape), memory_format=memory_format)


@export("as_strided", method=True)
def as_strided(input, size, stride, storage_offset=None):
    """A view of input's memory with the given sizes and strides (in elements), from
    storage_offset (input's own when None), as torch.as_strided: overlapping windows and
    all. Its gradient adds every window's share back where it came from."""
    if not isinstance(input, Tensor):
        raise TypeError(f"as_strided(): argument 'input' must be Tensor, not "
                        f"{type(input).__name__}")
    size, stride = tuple(operator.index(n) for n in size), tuple(operator.index(s)
                                                                  for s in stride)
    if len(size) != len(stride):
        raise RuntimeError(f"mismatch in length of strides and shape: sizes {list(size)}, "
                           f"strides {list(stride)}")
    if any(s < 0 for s in stride):
        raise RuntimeError(f"as_strided: Negative strides are not supported at the moment, got "
                           f"strides: {list(stride)}")
    if any(n < 0 for n in size):
        raise RuntimeError(f"as_strided: negative size in {list(size)}")
    if storage_offset is not None:
        storage_offset = operator.index(storage_offset)
        if storage_offset < 0:
            raise RuntimeError(f"Tensor: invalid storage offset {storage_offset}")
    return apply(AsStrided, input, size=size, stride=stride, offset=storage_offset)
