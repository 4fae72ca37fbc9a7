"""Tensor and reverse-mode autodiff: the whole of backprop is `_backward` below.

Each Tensor made by an op remembers the op (which knows its own backward rule, cygrad/ops/)
and its input tensors. Backward orders the graph topologically (iteratively, so deep graphs
never hit Python's recursion limit) and walks it once from the output to the leaves, applying
the chain rule. A node used several times receives the sum of its gradients over its uses:
this is how tied weights and reused activations work.

A Tensor holds a numpy array (`_data`, shared by `.numpy()`); its torch surface — methods such
as `sum`, `view`, `tanh` and the operators — is derived from the op table (cygrad/ops/), which
installs each op's method here (`ops.registry.install`).
"""

import copy
import math
import numbers
import sys
import warnings
import weakref

import numpy as np

from . import _state, dtypes, ops
from .dtypes import as_dtype, get_default_dtype, set_default_dtype  # noqa: F401  (re-exported)
from .ops import SliceGrad

_local = _state.local
_FLOAT_NP = (np.dtype(np.float32), np.dtype(np.float64))


# ---------------------------------------------------------------------- the tensor

class Size(tuple):
    """A shape, as torch.Size: a tuple of ints that prints as cygrad.Size([2, 3])."""

    __slots__ = ()

    def __repr__(self):
        return f"{dtypes.display_name}.Size({list(self)})"

    def __getitem__(self, index):
        item = tuple.__getitem__(self, index)
        return Size(item) if isinstance(index, slice) else item

    def __add__(self, other):
        return Size(tuple(self) + tuple(other))

    def numel(self):
        return math.prod(self)


class device:
    """A device, as torch.device. cygrad computes on the CPU only: device("cuda") can be named,
    but a tensor asked to move there raises RuntimeError."""

    __slots__ = ("type", "index")

    def __init__(self, type="cpu", index=None):
        if isinstance(type, device):
            type, index = type.type, type.index
        type = str(type)
        if ":" in type:
            type, _, number = type.partition(":")
            index = int(number)
        self.type, self.index = type, index

    def __repr__(self):
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{index})"

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other):
        try:
            other = device(other)
        except (TypeError, ValueError):
            return NotImplemented
        return self.type == other.type and (self.index or 0) == (other.index or 0)

    def __hash__(self):
        return hash((self.type, self.index or 0))


CPU = device("cpu")


def check_device(where):
    """Accept the CPU (a device, "cpu", "cpu:0" or None); refuse any other device clearly."""
    if where is None:
        return
    d = where if isinstance(where, device) else device(where)
    if d.type != "cpu":
        raise RuntimeError(f"cygrad runs on the CPU only: device '{d}' is not available "
                           "(cygrad.cuda.is_available() is False)")


class Tensor:
    """An n-dimensional array that remembers how it was computed (torch.Tensor's surface).

    `Tensor(data)` makes a tensor of the default float dtype from a list or array, and
    `Tensor(2, 3)` an uninitialised one of that shape, as torch.Tensor does; prefer
    `cygrad.tensor(data)`, which keeps integer and bool data as such.
    """

    # _data: the numpy array; _grad: the gradient, a Tensor or None; _rg: requires grad;
    # _op, _parents: the op that made it and its input tensors (None, () for a leaf);
    # _g: the gradient arriving while backward runs; _mark: backward's visit mark;
    # _extra: None, or a dict of rarely used per-tensor state (hooks, retain_grad, the tensor a
    # .data or .detach() shares its array with, the base of a view);
    # _used: an op recorded with this tensor as an input (in-place ops then refuse to rebase)
    __slots__ = ("_data", "_grad", "_rg", "_op", "_parents", "_g", "_mark", "_extra", "_used",
                 "__weakref__")
    __array_priority__ = 1000  # numpy defers to our operators: array + tensor is a Tensor

    def __init__(self, *args, dtype=None, device=None, requires_grad=False):
        check_device(device)
        dtype = get_default_dtype() if dtype is None else as_dtype(dtype)
        if len(args) == 1 and not isinstance(args[0], numbers.Integral):
            data = args[0]._data if isinstance(args[0], Tensor) else args[0]
            array = np.array(data, dtype=dtype.numpy)
        elif all(isinstance(a, numbers.Integral) for a in args):
            array = np.empty(tuple(int(a) for a in args), dtype=dtype.numpy)
        else:
            raise TypeError(f"Tensor() takes data or sizes, got {args!r}")
        _init(self, array, bool(requires_grad))

    # No __getattr__ (for a friendlier message on a method cygrad lacks): a class that has one
    # loses CPython's fast path for every attribute read, found or not (82 against 19 ns a
    # read of a slot, measured), and the engine reads tensors' slots hundreds of times a step.
    # A torch.Tensor method cygrad lacks raises Python's own AttributeError naming it.

    # ------------------------------------------------------------------ autodiff surface

    @property
    def requires_grad(self):
        return self._rg

    @requires_grad.setter
    def requires_grad(self, value):
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad=True):
        """Make this leaf record (True) or stop recording (False) the ops that use it."""
        requires_grad = bool(requires_grad)
        if self._op is not None and not requires_grad:
            raise RuntimeError("you can only change requires_grad flags of leaf variables. If "
                               "you want to use a computed variable in a subgraph that doesn't "
                               "require differentiation use var_no_grad = var.detach().")
        if requires_grad and self._data.dtype not in _FLOAT_NP:
            raise RuntimeError("only Tensors of floating point dtype can require gradients, "
                               f"got {self.dtype}")
        self._rg = requires_grad
        return self

    @property
    def grad(self):
        """The gradient accumulated by backward (a Tensor of this shape and dtype), or None."""
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad "
                                f"of type {type(value).__name__}")
            if value._data.shape != self._data.shape:
                raise RuntimeError(f"assigned grad has data of a different size: "
                                   f"{tuple(value.shape)} for a tensor of {tuple(self.shape)}")
            if value._data.dtype != self._data.dtype:
                raise RuntimeError(f"assigned grad has data of a different type: "
                                   f"{value.dtype} for a tensor of {self.dtype}")
        self._grad = value

    @grad.deleter
    def grad(self):
        self._grad = None

    @property
    def is_leaf(self):
        return self._op is None

    @property
    def grad_fn(self):
        """The op that made this tensor (None for a leaf): `grad_fn.name()`, its `rule`,
        `next_functions`."""
        op = self._op
        if op is not None:
            op.__dict__["_inputs"] = self._parents  # for next_functions
        return op

    @property
    def data(self):
        """The same array as a new Tensor cut from the graph (torch's `.data`): writes to it
        change this tensor, and no gradient records them."""
        return _shared(self)

    @data.setter
    def data(self, value):
        if not isinstance(value, Tensor):
            raise TypeError(f"data must be a Tensor, got {type(value).__name__}")
        self._data = value._data

    def detach(self):
        """The same array as a new tensor that records nothing (writes are shared)."""
        return _shared(self)

    def detach_(self):
        if _extra(self, "base") is not None:
            raise RuntimeError("can't detach_ a view in place; use detach()")
        self._op, self._parents, self._rg = None, (), False
        return self

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient in .grad during backward (leaves always do)."""
        if not self._rg:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._op is not None:
            _extras(self)["retain"] = True

    @property
    def retains_grad(self):
        return self._op is not None and bool(_extra(self, "retain"))

    def register_hook(self, hook):
        """hook(grad) runs when backward computes this tensor's gradient; a Tensor it returns
        replaces the gradient. Returns a handle whose remove() unregisters it."""
        return self._add_hook("hooks", hook)

    def _add_hook(self, kind, hook):
        """hook into this tensor's table `kind` ("hooks", "post_hooks"): its handle."""
        if not self._rg:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require "
                               "gradient")
        hooks = _extras(self).setdefault(kind, {})
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        return handle

    def register_post_accumulate_grad_hook(self, hook):
        """hook(tensor) runs after backward has added this leaf's gradient into its .grad (an
        optimizer step fused into backward, torch's pattern); what it returns is ignored.
        Returns a handle whose remove() unregisters it."""
        if self._rg and self._op is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf "
                               "tensors")
        return self._add_hook("post_hooks", hook)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Add d(self)/d(leaf) into .grad of every leaf that requires grad (or only of
        `inputs`). gradient defaults to 1 for a one-element tensor. Each op frees the arrays
        it saved as backward passes it, so a second backward raises unless
        retain_graph=True."""
        only = None if inputs is None else _tensor_list(inputs, "inputs")
        if create_graph:  # gradients with a graph of their own (retain_graph defaults to it)
            _backward_graph([self], [gradient], retain_graph is not False, only=only)
            return
        _backward([self], [gradient], bool(retain_graph), only=only)

    # ------------------------------------------------------------------ array facts

    @property
    def shape(self):
        return Size(self._data.shape)

    def size(self, dim=None):
        """The shape (cygrad.Size), or its length along dim."""
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[_dim(dim, self._data.ndim)]

    @property
    def dtype(self):
        return dtypes._BY_NUMPY[self._data.dtype]

    @property
    def device(self):
        return CPU

    is_cuda = False
    is_mps = False
    is_sparse = False
    is_cpu = True
    # the other devices and layouts torch's tensors answer about (a program tests e.g. is_xpu)
    is_xpu = is_xla = is_ipu = is_mtia = is_maia = is_vulkan = is_mkldnn = False
    is_sparse_csr = is_nested = False

    def is_conj(self):
        return False  # no lazily conjugated views: no complex dtypes

    def is_neg(self):
        return False

    def is_distributed(self):
        return False

    def is_shared(self):
        return False

    def share_memory_(self):
        raise NotImplementedError(_NO_SHARED_MEMORY.format("Tensor.share_memory_"))

    def to_sparse(self, sparse_dim=None, *, layout=None, blocksize=None, dense_dim=None):
        """A sparse COO tensor of this (1-D or 2-D) tensor's nonzeros (cygrad/sparse.py); the
        other layouts, blocks and dense dims are not built (NotImplementedError)."""
        from .sparse import sparse_coo, to_sparse

        if layout not in (None, sparse_coo) or blocksize is not None or dense_dim:
            raise NotImplementedError(f"to_sparse(layout={layout!r}, blocksize={blocksize!r}, "
                                      f"dense_dim={dense_dim!r}): cygrad builds COO tensors "
                                      "without dense dims only")
        return to_sparse(self, sparse_dim)

    def to_sparse_coo(self):
        return self.to_sparse()

    def is_coalesced(self):
        raise RuntimeError("is_coalesced expected sparse coordinate tensor layout but got "
                           "Strided")

    def is_set_to(self, tensor):
        """Whether both are views of the same elements: the same memory, shape and strides."""
        a, b = self._data, tensor._data
        return a.__array_interface__["data"][0] == b.__array_interface__["data"][0] and \
            a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype

    @property
    def itemsize(self):
        """Bytes an element."""
        return self._data.itemsize

    @property
    def nbytes(self):
        """Bytes of the elements (numel * itemsize)."""
        return self._data.nbytes
    is_quantized = False
    is_meta = False

    @property
    def ndim(self):
        return self._data.ndim

    def dim(self):
        return self._data.ndim

    ndimension = dim

    def numel(self):
        return self._data.size

    nelement = numel

    def element_size(self):
        return self._data.itemsize

    def is_floating_point(self):
        return self._data.dtype in _FLOAT_NP

    def is_complex(self):
        return False

    def is_contiguous(self, memory_format=None):
        return self._data.flags.c_contiguous

    def stride(self, dim=None):
        """Strides in elements, as torch reports them."""
        strides = tuple(s // self._data.itemsize for s in self._data.strides)
        return strides if dim is None else strides[_dim(dim, self._data.ndim)]

    def data_ptr(self):
        return self._data.ctypes.data

    def storage_offset(self):
        """Where the tensor starts in the memory it shares with the tensors it is a view of
        (_storage_root), in elements: torch's storage offset."""
        root = _storage_root(self._data)
        return (self._data.ctypes.data - root.ctypes.data) // self._data.itemsize

    def numpy(self, force=False):
        """The tensor's own array (shared, not copied). Unlike torch, this works on tensors
        that require grad too: writing into the array is not recorded."""
        if _local.watch is not None:
            _read(self, "numpy()")
        return self._data

    def __array__(self, dtype=None, copy=None):
        if _local.watch is not None:
            _read(self, "numpy's __array__")
        if copy:
            return np.array(self._data, dtype=dtype)
        return self._data if dtype is None else self._data.astype(dtype, copy=False)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise RuntimeError(f"a Tensor with {self._data.size} elements cannot be converted "
                               "to Scalar")
        if _local.watch is not None:
            _read(self, "item()")
        return self._data.item()

    def tolist(self):
        if _local.watch is not None:
            _read(self, "tolist()")
        return self._data.tolist()

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return iter(self.unbind(0))

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with more than one value is ambiguous "
                               f"(shape {tuple(self.shape)})")
        if _local.watch is not None:
            _read(self, "bool()")
        return bool(self._data.reshape(-1)[0])

    def __float__(self):
        return float(self._scalar())

    def __int__(self):
        return int(self._scalar())

    def __index__(self):
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an "
                            "index")
        if _local.watch is not None:
            _read(self, "__index__")
        return int(self._data.reshape(-1)[0])

    def __complex__(self):
        return complex(self._scalar())

    def _scalar(self):
        if self._data.size != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        if _local.watch is not None:
            _read(self, "float(), int() or complex()")
        return self._data.reshape(-1)[0]

    def __format__(self, spec):
        if _local.watch is not None:
            _read(self, "format()")
        if self._data.ndim == 0:
            return format(self._data.item(), spec)
        return object.__format__(self, spec)

    __hash__ = object.__hash__

    def __contains__(self, element):
        if isinstance(element, (Tensor, numbers.Number)):
            return bool((self == element).any())
        raise RuntimeError(f"Tensor.__contains__ only supports Tensor or scalar, but you "
                           f"passed in a {type(element).__name__}")

    def __repr__(self):
        from ._format import tensor_repr

        if _local.watch is not None:
            _read(self, "repr() or print()")
        return tensor_repr(self)

    def __reduce_ex__(self, protocol):  # copy.deepcopy and pickle: a leaf copy of the data
        return (_rebuild, (self._data.copy(), self._rg, type(self)))

    def __deepcopy__(self, memo):
        if self._op is not None:
            raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) "
                               "support the deepcopy protocol at the moment")
        out = _rebuild(self._data.copy(), self._rg, type(self))
        if self._grad is not None:
            out._grad = _wrap(self._grad._data.copy())
        memo[id(self)] = out
        return out

    # ------------------------------------------------------------------ conversions

    def to(self, *args, **kwargs):
        """to(dtype), to(device), to(device, dtype), to(other): a tensor of that dtype (self
        when nothing changes; only the CPU exists)."""
        target = kwargs.pop("dtype", None)
        where = kwargs.pop("device", None)
        kwargs.pop("non_blocking", None)
        copy = kwargs.pop("copy", False)
        kwargs.pop("memory_format", None)
        if kwargs:
            raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                target = a.dtype
            elif isinstance(a, (dtypes.dtype, dtypes.unsupported_dtype)) or \
                    (isinstance(a, type) and a in (float, int, bool)):
                target = a  # (an unsupported one: type() raises naming it)
            elif isinstance(a, (str, device)):
                try:
                    target = as_dtype(a) if not isinstance(a, device) else target
                    if isinstance(a, device):
                        where = a
                except TypeError:
                    where = a
            elif isinstance(a, bool):
                continue  # non_blocking, copy positional flags
            else:
                raise TypeError(f"to() received an invalid argument {a!r}")
        check_device(where)
        out = self if target is None else self.type(target)
        return out.clone() if copy and out is self else out

    def cpu(self, memory_format=None):
        return self

    def pin_memory(self, device=None):
        """self: there is no device to pin memory for."""
        return self

    def is_pinned(self, device=None):
        return False

    def cuda(self, device=None, non_blocking=False, memory_format=None):
        raise RuntimeError("cygrad runs on the CPU only: .cuda() is not available")

    def type(self, dtype=None, non_blocking=False):
        """With no argument, the type's name ('cygrad.FloatTensor'); else the tensor converted
        to that dtype."""
        if dtype is None:
            return f"{dtypes.display_name}.{_LEGACY_NAMES[self.dtype]}"
        if isinstance(dtype, str) and dtype.endswith("Tensor"):
            dtype = {v: k for k, v in _LEGACY_NAMES.items()}[dtype.rsplit(".", 1)[-1]]
        elif isinstance(dtype, type) and isinstance(getattr(dtype, "dtype", None), dtypes.dtype):
            dtype = dtype.dtype  # a legacy class (cygrad.FloatTensor ...)
        target = as_dtype(dtype)
        if target.numpy == self._data.dtype:
            return self
        return ops.registry.FUNCTIONS["_cast"](self, target)

    def type_as(self, other):
        return self.type(other.dtype)

    def float(self, memory_format=None):
        return self.type(dtypes.float32)

    def double(self, memory_format=None):
        return self.type(dtypes.float64)

    def long(self, memory_format=None):
        return self.type(dtypes.int64)

    def int(self, memory_format=None):
        return self.type(dtypes.int32)

    def short(self, memory_format=None):
        return self.type(dtypes.int16)

    def char(self, memory_format=None):
        return self.type(dtypes.int8)

    def byte(self, memory_format=None):
        return self.type(dtypes.uint8)

    def bool(self, memory_format=None):
        return self.type(dtypes.bool_)

    def half(self, memory_format=None):
        raise TypeError("cygrad does not support float16 (half)")

    bfloat16 = half

    # ------------------------------------------------------------------ in place

    def _write(self, result):
        """Make this tensor hold `result` (a Tensor of its shape): the end of every in-place
        op. Without a graph to record the array is written in place; with one, this tensor
        takes result's place in the graph, as torch's in-place ops do."""
        if not (_local.grad_enabled and (self._rg or result._rg)):
            before = self._data
            target = _writable(self)
            src = result._data
            if src.dtype != target.dtype and not _castable(src.dtype, target.dtype):
                raise RuntimeError(f"result type {_scalar_name(src.dtype)} can't be cast to the "
                                   f"desired output type {_scalar_name(target.dtype)}")
            np.copyto(target, src, casting="unsafe")
            if _local.watch is not None:
                for w in _local.watch:
                    w.write(self, before, src, False)
            return self
        if _local.watch is not None:
            for w in _local.watch:
                w.write(self, self._data, result._data, True)
        _check_rebase(self)
        if result._data.dtype != self._data.dtype:
            if not _castable(result._data.dtype, self._data.dtype):
                raise RuntimeError(f"result type {_scalar_name(result._data.dtype)} can't be "
                                   f"cast to the desired output type "
                                   f"{_scalar_name(self._data.dtype)}")
            result = result.type(self.dtype)
        if self._used:
            stand_in = self._extra.pop("stand_in", None) if self._extra else None
            if stand_in is None:
                stand_in = _wrap(self._data, self._rg)
                stand_in._op, stand_in._parents = self._op, self._parents
                _keep_versions(self, stand_in)
            stand_in._used = True
            _rebase(self, stand_in)
        if _written_through(self) is not None:
            return _write_view(self, result)
        target = _writable(self)
        np.copyto(target, result._data)
        self._op, self._parents, self._rg = result._op, result._parents, True
        if self._extra is not None or result._extra is not None:
            _move_versions(result, self)
        if self._op is not None:
            _swap_output(self._op, result, self)
        return self

    def _writable_data(self):
        """self's array, ready for an in-place write of the library's own (see _writable)."""
        return _writable(self)

    def _inplace_input(self):
        """The tensor an in-place op computes from: self, or, when the op will be recorded, a
        stand-in holding a copy of self's values and its place in the graph (the op's backward
        may read them after self has been overwritten)."""
        if not (_local.grad_enabled and self._rg):
            return self
        _check_rebase(self)
        stand_in = _wrap(self._data.copy(), self._rg)
        stand_in._op, stand_in._parents = self._op, self._parents
        _keep_versions(self, stand_in)
        if self._used:  # _write makes it the history earlier consumers keep reaching
            _extras(self)["stand_in"] = stand_in
        return stand_in


# ---------------------------------------------------------------------- helpers

_LEGACY_NAMES = {dtypes.float32: "FloatTensor", dtypes.float64: "DoubleTensor",
                 dtypes.int64: "LongTensor", dtypes.int32: "IntTensor",
                 dtypes.int16: "ShortTensor", dtypes.int8: "CharTensor",
                 dtypes.uint8: "ByteTensor", dtypes.bool_: "BoolTensor"}


def _init(t, array, requires_grad=False):
    t._data, t._grad, t._rg, t._op, t._parents = array, None, requires_grad, None, ()
    t._g = t._mark = t._extra = None
    t._used = False


def _wrap(array, requires_grad=False):
    """A new leaf Tensor around `array` (not copied). The library's constructor."""
    if type(array) is not np.ndarray:
        array = np.asarray(array)
    t = _new(Tensor)
    t._data = array
    t._grad = t._op = t._g = t._mark = t._extra = None
    t._rg = requires_grad
    t._parents = ()
    t._used = False
    return t


def _rebuild(array, requires_grad, cls):
    t = cls.__new__(cls)
    _init(t, array, requires_grad)
    return t


def _shared(t):
    """A leaf sharing t's array (.data, .detach()): copy-on-write under a live graph carries
    over to t while t lives (a weak reference: a detached result must not keep t's graph
    alive, as torch's does not)."""
    out = _wrap(t._data)
    out._extra = {"owner": weakref.ref(t)}
    return out


def _extra(t, key):
    return None if t._extra is None else t._extra.get(key)


def _extras(t):
    if t._extra is None:
        t._extra = {}
    return t._extra


def _scalar_name(numpy_dtype):
    return dtypes.SCALAR_NAMES[dtypes._BY_NUMPY[numpy_dtype].name]


def _castable(src, dst):
    """torch's in-place rule: a result may be written into a tensor of a dtype at least as
    high in the bool < integer < float ladder."""
    return dtypes._BY_NUMPY[src]._category <= dtypes._BY_NUMPY[dst]._category


def _writable(t):
    """t's array, ready for an in-place write. An array a live graph saved for backward (or one
    read-only for a reason of its own) is replaced by a writable copy: the graph keeps the
    values its forward saw, and a tensor sharing its array through .data or .detach() passes
    the copy on to the tensor it came from. A view (of a tensor, or an expand()) cannot be
    copied away from what it views: writing into a read-only one raises."""
    array = t._data
    if array.flags.writeable:
        return array
    if _extra(t, "base") is not None:
        raise RuntimeError(f"cannot write into this tensor (shape {tuple(t.shape)}): it is a "
                           "read-only view (an expand()ed tensor, or a view of an array a live "
                           "graph saved for backward)")
    t._data = copy = array.copy()
    link = _extra(t, "owner")
    while link is not None:
        owner = link()
        if owner is None or owner._data is not array:
            break
        owner._data = copy
        link = _extra(owner, "owner")
    return copy


def _check_rebase(t):
    if t._op is None and t._rg:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place "
                           "operation (wrap it in `with cygrad.no_grad():`)")


# True once an in-place op has rebased a tensor other ops had taken as an input: from then on
# the graph walks resolve such edges (see _rebase and _parents_of).
_stale_possible = False


def _rebase(t, stand_in):
    """t is about to take an in-place op's place in the graph. Ops recorded before took the
    Tensor t as an input and must keep reaching t's history before the write: `stand_in` (a
    Tensor holding that history) becomes version k of t, and those ops' edges to t resolve to
    it (torch keeps separate graph nodes; cygrad's nodes are the Tensors, hence this table).
    An op that saved t's array for backward keeps the old values: a saved array is read-only,
    so the write went to a copy."""
    global _stale_possible
    extra = _extras(t)
    history = extra.setdefault("history", [])
    history.append(stand_in)
    _stale_possible = True


def _parents_of(node):
    """node's inputs, each edge to a tensor rebased since node's op took it resolved to the
    version the op took."""
    parents = node._parents
    if not _stale_possible:
        return parents
    seen = node._extra.get("versions") if node._extra is not None else None
    resolved = []
    for parent in parents:
        history = parent._extra.get("history") if parent._extra is not None else None
        if history:
            version = seen.get(id(parent), 0) if seen else 0
            if version < len(history):
                parent = history[version]
        resolved.append(parent)
    return tuple(resolved)


def _keep_versions(t, stand_in):
    """stand_in takes t's place in the graph: the versions of t's inputs its op took too."""
    versions = _extra(t, "versions")
    if versions is not None:
        _extras(stand_in)["versions"] = versions


def _move_versions(result, t):
    """t takes result's op: the versions of its inputs go with it."""
    versions = _extra(result, "versions")
    if versions is not None:
        _extras(t)["versions"] = versions
    elif t._extra is not None:
        t._extra.pop("versions", None)


def _written_through(t):
    """The view op that made t when a write into t reaches its base's array (basic indexing,
    view, reshape without a copy, transpose, permute, diagonal...), else None."""
    op = _extra(t, "view_op")
    if op is None or not np.may_share_memory(t._data, t._extra["base"]._data):
        return None  # (a reshape that copied: torch's is no view either)
    return op


def _read(t, how):
    for w in _local.watch:
        w.read(t, how)


_NO_SHARED_MEMORY = ("cygrad does not implement {}: its tensors are not put in shared memory, "
                     "so another process would train a copy (torch.multiprocessing's Hogwild "
                     "pattern); see cygrad.multiprocessing")
COPY_SLICES = "torch::autograd::CopySlices"  # torch's node for a write through basic indexing


def _own_storage(array):
    """A numpy array a tensor is made of, sharing its memory (from_numpy, as_tensor): torch's
    storage of that tensor starts at it, not at the array owning the memory it views. So a
    view is wrapped in an array whose base is a memoryview of it: numpy's chain of bases, and
    so _storage_root, stops there."""
    return array if array.base is None else np.asarray(memoryview(array))


def _storage_root(array):
    """The array whose memory is the storage of a tensor with this array: up numpy's chain of
    bases to the first array (_own_storage's wrapper for a tensor made of a numpy view)."""
    root = array
    while isinstance(root.base, np.ndarray):
        root = root.base
    return root


def _write_view(view, result):
    """An in-place op on a view, recorded as torch records it: the base takes the write into
    its own history (CopySlices: base = index_put(base, where the view's elements sit,
    result)), then the view is re-made from the new base (the same view op, recorded again).
    A view of a view writes its base the same way, and so on down (base._write). (The
    base's new history holds the view's old one, which took the base: a reference cycle,
    freed by Python's cyclic collector, not when the last name goes.)"""
    from .ops.shape import IndexPut, Reshape

    base, op = view._extra["base"], view._extra["view_op"]
    kind = type(op).__name__
    if kind == "Expand":  # the one view whose elements can share a place in the base
        raise RuntimeError("unsupported operation: more than one element of the written-to "
                           "tensor refers to a single memory location. Please clone() the "
                           "tensor before performing the operation.")
    slicing = kind == "Slice"
    if kind == "AsStrided":  # (its places are in memory, not in an array of the base's shape)
        index = op.positions_in(base)
    elif not slicing:  # where each of the view's elements sits in its base (row-major)
        index = copy.copy(op).forward(np.arange(base._data.size).reshape(base._data.shape))
    source = base._inplace_input()
    if slicing:
        written = apply(IndexPut, source, result, index=op.index, node=COPY_SLICES)
    else:
        flat = apply(IndexPut, apply(Reshape, source, shape=(-1,)),
                     apply(Reshape, result, shape=(-1,)), index=(index.reshape(-1),))
        written = apply(Reshape, flat, shape=base._data.shape, node=COPY_SLICES)
    base._write(written)
    params = {k: v for k, v in op.__dict__.items() if not k.startswith("_")}
    params.pop("needs", None)
    params["node"] = "AsStridedBackward0"  # torch's view of a written base
    remade = apply(type(op), base, **params)
    view._data, view._op, view._parents, view._rg = \
        remade._data, remade._op, remade._parents, remade._rg
    view._extra["view_op"] = remade._extra["view_op"]
    _move_versions(remade, view)
    return view


def _swap_output(op, old, new):
    """An op's output was moved from `old` to `new` (an in-place rebase): ops that hold their
    output tensor (none do today) would be told here."""


def _tensor_list(items, what):
    items = [items] if isinstance(items, Tensor) else list(items)
    for t in items:
        if not isinstance(t, Tensor):
            raise TypeError(f"{what} must be Tensors, got {type(t).__name__}")
    return items


def _dim(dim, ndim):
    """A dim in [-ndim, ndim) as a non-negative index (a 0-d tensor takes -1 and 0)."""
    try:
        d = dim.__index__()
    except AttributeError:
        raise TypeError(f"dim must be an int, got {type(dim).__name__}") from None
    n = max(ndim, 1)
    if not -n <= d < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {d})")
    return d % n


class RemovableHandle:
    """What register_*_hook returns: remove() unregisters the hook."""

    _next = 0

    def __init__(self, hooks):
        self.hooks = hooks
        RemovableHandle._next += 1
        self.id = RemovableHandle._next

    def remove(self):
        self.hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


# ---------------------------------------------------------------------- recording an op

def apply(op_class, *inputs, **params):
    """Run op_class forward on the inputs' arrays and, if any input needs a gradient (and grad
    mode is on), record it. params become attributes of the op before forward (its __init__
    is not called). The arrays the op's backward reads (op.saves, op.saves_output) are locked
    read-only while it lives."""
    op = op_class.__new__(op_class)
    if params:
        op.__dict__ = params  # the call's own fresh dict becomes the op's: no copy
    grad = _local.grad_enabled
    watch = _local.watch
    if watch is not None:  # detect_anomaly, trace, an op recorder: see cygrad/_state.py
        for w in watch:
            w.begin(op, inputs)
    if len(inputs) == 1:  # the usual arities spelled out: comprehensions cost more
        (a,) = inputs
        data = op.forward(a._data)
        needs = (a._rg,) if grad else ()
    elif len(inputs) == 2:
        a, b = inputs
        data = op.forward(a._data, b._data)
        needs = (a._rg, b._rg) if grad else ()
    elif len(inputs) == 3:  # a layer with a bias
        a, b, c = inputs
        data = op.forward(a._data, b._data, c._data)
        needs = (a._rg, b._rg, c._rg) if grad else ()
    else:
        data = op.forward(*[t._data for t in inputs])
        needs = tuple([t._rg for t in inputs]) if grad else ()
    if type(data) is not np.ndarray:  # numpy gives scalars for 0-d results of ufuncs
        data = np.asarray(data)
    out = _new(Tensor)  # slots stored one statement each: cheaper than tuple assignments
    out._data = data
    out._grad = out._g = out._mark = out._extra = None
    out._used = False
    if True in needs:
        op.needs = needs
        saves = op.saves
        if saves or op.saves_output:
            saved = []
            for i in saves:
                saved.append(inputs[i]._data)
            if op.saves_output:
                saved.append(data)
            op.lease = ops.Lease(saved)
        # each input is now used by a graph (an in-place op on it rebases); one rebased before
        # has a history: remember its length (the usual arities spelled out, as above)
        if len(inputs) == 3:
            a._used = b._used = c._used = True
            extras = a._extra is not None or b._extra is not None or c._extra is not None
        elif len(inputs) == 2:
            a._used = b._used = True
            extras = a._extra is not None or b._extra is not None
        elif len(inputs) == 1:
            a._used = True
            extras = a._extra is not None
        else:
            for t in inputs:
                t._used = True
            extras = True
        out._rg = True
        out._op = op
        out._parents = inputs
        if extras:
            versions = {id(t): len(t._extra["history"]) for t in inputs
                        if t._extra is not None and "history" in t._extra}
            if versions:
                out._extra = {"versions": versions}
    else:
        out._rg = False
        out._op = None
        out._parents = ()
    if op.view_of is not None and op.view_of < len(inputs):  # the output shares input's array
        if out._extra is None:
            out._extra = {"base": inputs[op.view_of], "view_op": op}
        else:
            out._extra["base"] = inputs[op.view_of]
            out._extra["view_op"] = op
    if watch is not None:
        for w in watch:
            w.forward(op, inputs, out)
    return out


def apply_unrecorded(op_class, *inputs, **params):
    """apply() that records nothing, even in grad mode: for results without a gradient (a
    comparison, integer arithmetic) that the library computes directly for speed, when a
    watcher must see them as ops (a compiled step's capture replays what it sees)."""
    token = _state.swap("grad_enabled", False)
    try:
        return apply(op_class, *inputs, **params)
    finally:
        _state.restore("grad_enabled", token)


# ---------------------------------------------------------------------- backward

def _check_seed(root, grad):
    """backward's errors for a root and the gradient given for it (None: implicit 1)."""
    if not root._rg:
        raise RuntimeError("element 0 of tensors does not require grad and does not have a "
                           "grad_fn")
    if grad is None:
        if root._data.size != 1:
            raise RuntimeError(f"grad can be implicitly created only for scalar outputs "
                               f"(got an output of shape {tuple(root.shape)}); pass a "
                               "gradient of that shape")
        return
    shape = grad._data.shape if isinstance(grad, Tensor) else np.shape(grad)
    if shape != root._data.shape:
        raise RuntimeError(f"Mismatch in shape: grad_output has a shape of {tuple(shape)} and "
                           f"output has a shape of {tuple(root.shape)}")


def _backward(roots, grads, retain_graph, only=None, capture=None):
    """Backpropagate from roots (with their output gradients) through the recorded graph.

    Leaves that require grad accumulate into .grad (only those in `only`, when given); with
    `capture` (a dict id -> None), the gradients of those tensors are stored there instead and
    no .grad changes (autograd.grad)."""
    seeds = []
    for root, grad in zip(roots, grads, strict=True):
        _check_seed(root, grad)
        if grad is None:
            g = np.empty(root._data.shape, root._data.dtype)
            g.fill(1)
        else:
            g = np.array(grad._data if isinstance(grad, Tensor) else grad,
                         dtype=root._data.dtype)
        seeds.append((root, g))
    order = _topological_order([r for r, _ in seeds])
    summed = set()  # ids of nodes whose gradient is a sum this loop allocated
    for root, g in seeds:
        if root._g is None:
            root._g = g
        else:
            root._g = np.array(root._g + g)  # (an array even when 0-d: added into later)
            summed.add(id(root))
    only_ids = None if only is None else {id(t) for t in only}
    watch = _local.watch
    # the usual backward: no watcher, no capture (autograd.grad), every leaf: one test a node
    plain = watch is None and capture is None and only_ids is None
    reach = None if capture is None else _reaching(order, capture)
    try:
        for node in reversed(order):
            g, node._g = node._g, None
            op = node._op
            if g is None:  # no gradient reached it (its consumers sent None)
                if op is not None and not retain_graph and (reach is None or id(node) in reach):
                    op.release()  # (autograd.grad leaves what it did not run, as torch)
                continue
            if node._extra is not None:
                g = _node_extras(node, g, capture)
            if op is None:  # a leaf: .grad += g
                if not plain:
                    if watch is not None:
                        for w in watch:
                            w.leaf(node, g)
                    if capture is not None:
                        if id(node) in capture:
                            capture[id(node)] = g if capture[id(node)] is None else \
                                capture[id(node)] + g
                        continue
                    if only_ids is not None and id(node) not in only_ids:
                        continue
                held = node._grad
                # adopted without a copy when only `g` holds it and it owns writable
                # memory (a large weight gradient is never copied); else added in
                if held is None:
                    if not (_refcount(g) == _ALONE and g.base is None
                            and g.dtype is node._data.dtype and g.flags.writeable):
                        g = np.array(g, dtype=node._data.dtype)
                    grad = _new(Tensor)  # the gradient as a leaf Tensor, made inline: a hot path
                    grad._data = g
                    grad._grad = grad._op = grad._g = grad._mark = grad._extra = None
                    grad._rg = grad._used = False
                    grad._parents = ()
                    node._grad = grad
                else:
                    target = _writable(held)
                    target += g
                if node._extra is not None and node._extra.get("post_hooks"):
                    for hook in list(node._extra["post_hooks"].values()):
                        hook(node)
                continue
            if op.released:
                raise RuntimeError(f"Trying to backward through the graph a second time "
                                   f"({op.kind()} has already freed its saved arrays); call "
                                   "backward(retain_graph=True) the first time to keep them")
            node_hooks = op.__dict__.get("_node_hooks")  # grad_fn.register_(pre)hook's
            if node_hooks is not None:
                g = _run_node_hooks(op, node_hooks["pre"], None, g)
            if plain:
                if type(g) is SliceGrad:  # only slices reached it so far: made whole
                    g = np.asarray(g)
                input_grads = op.engine_backward(g)
            else:
                if capture is not None and id(node) in capture:
                    capture[id(node)] = g
                if watch is not None:
                    for w in watch:
                        w.before(node, g)
                input_grads = (op if reach is None else _narrowed(op, node, reach)).backward(g)
                if watch is not None:
                    for w in watch:
                        w.step(node, g, input_grads)
            if node_hooks is not None:
                input_grads = _run_node_hooks(op, node_hooks["post"], input_grads, g)
            if not retain_graph:  # free what it saved now: the rest of backward has room
                op.release()
            for parent, pg in zip(_parents_of(node) if _stale_possible else node._parents,
                                  input_grads):
                if pg is None or not parent._rg:
                    continue
                held = parent._g
                if held is None:
                    parent._g = pg
                elif id(parent) in summed:  # a buffer of our own: add in place
                    held += pg
                else:
                    held = held + pg
                    if type(held) is not np.ndarray:  # 0-d: numpy gave a scalar, which
                        held = np.array(held)  # `+=` would rebind, not add into
                    parent._g = held
                    summed.add(id(parent))
            input_grads = pg = held = None  # keep no reference: leaves adopt g alone
    except BaseException:
        for node in order:  # leave no gradient behind on the nodes
            node._g = None
        raise



_CYCLE_WARNED = []  # torch warns once a process about .grad with a graph


def _backward_graph(roots, grads, retain_graph=True, only=None, capture=None):
    """backward with create_graph=True: as _backward, but every gradient is a Tensor made by
    recorded ops (each node's `vjp`, cygrad/ops/higher.py), so the gradients have a graph of
    their own and can be differentiated again. Grad mode is on throughout (torch's). Leaves'
    .grad are those Tensors (added out of place to a .grad already there); with `capture`,
    the gradients of those tensors are stored there instead. Watchers see each step as in
    _backward (arrays), and the ops the vjps record as forward ops."""
    from .ops.higher import vjp_of

    pending = {}
    for root, grad in zip(roots, grads, strict=True):
        _check_seed(root, grad)
        if grad is None:
            g = _wrap(np.ones(root._data.shape, root._data.dtype))
        else:
            g = grad if isinstance(grad, Tensor) else _wrap(np.asarray(grad))
            if g._data.dtype != root._data.dtype:
                g = g.to(root.dtype)
        held = pending.get(id(root))
        pending[id(root)] = g if held is None else held + g
    order = _topological_order(list(roots))
    if capture is not None:  # only the nodes from which a captured tensor is reached
        reach = _reaching(order, capture)
        order = [node for node in order if id(node) in reach]
    only_ids = None if only is None else {id(t) for t in only}
    watch = _local.watch
    if watch is not None:
        for w in watch:
            w.graph_backward()
    token = _state.swap("grad_enabled", True)
    try:
        for node in reversed(order):
            g = pending.pop(id(node), None)
            if g is None:
                continue
            op = node._op
            if node._extra is not None:
                g = _graph_extras(node, g, capture)
            if op is None:  # a leaf
                if watch is not None:
                    for w in watch:
                        w.leaf(node, g._data)
                if capture is not None:
                    if id(node) in capture:
                        held = capture[id(node)]
                        capture[id(node)] = g if held is None else held + g
                    continue
                if only_ids is not None and id(node) not in only_ids:
                    continue
                if g._rg and not _CYCLE_WARNED:
                    _CYCLE_WARNED.append(True)
                    warnings.warn(
                        "Using backward() with create_graph=True will create a reference cycle "
                        "between the parameter and its gradient which can cause a memory leak. "
                        "We recommend using autograd.grad when creating the graph to avoid this."
                        " If you have to use this function, make sure to reset the .grad fields "
                        "of your parameters to None after use to break the cycle and avoid the "
                        "leak.", UserWarning, stacklevel=3)
                node._grad = g if node._grad is None else node._grad + g
                if node._extra is not None and node._extra.get("post_hooks"):
                    for hook in list(node._extra["post_hooks"].values()):
                        hook(node)
                continue
            if capture is not None and id(node) in capture:  # a tensor autograd.grad asks for
                capture[id(node)] = g
                if not any(id(p) in reach for p in _parents_of(node)):
                    continue
            if op.released:
                raise RuntimeError(f"Trying to backward through the graph a second time "
                                   f"({op.kind()} has already freed its saved arrays); call "
                                   "backward(retain_graph=True) the first time to keep them")
            node_hooks = op.__dict__.get("_node_hooks")
            if node_hooks is not None:
                g = _graph_node_hooks(node_hooks["pre"], None, g)
            if watch is not None:
                for w in watch:
                    w.before(node, g._data)
            parents = _parents_of(node)
            if capture is not None:
                op = _narrowed(op, node, reach)
            input_grads = vjp_of(op, g, parents, node)
            if watch is not None:
                for w in watch:
                    w.step(node, g._data, [None if t is None else t._data for t in input_grads])
            if node_hooks is not None:
                input_grads = _graph_node_hooks(node_hooks["post"], input_grads, g)
            for parent, pg in zip(parents, input_grads):
                if pg is None or not parent._rg:
                    continue
                held = pending.get(id(parent))
                pending[id(parent)] = pg if held is None else held + pg
    finally:
        _state.restore("grad_enabled", token)
    if not retain_graph:
        for node in order:
            if node._op is not None:
                node._op.release()


def _reaching(order, capture):
    """The ids of the nodes of `order` (inputs first) from which a tensor of capture (ids) is
    reached: autograd.grad computes gradients along these only."""
    reach = set(capture)
    for node in order:
        if id(node) not in reach and any(id(p) in reach for p in _parents_of(node)):
            reach.add(id(node))
    return reach


def _narrowed(op, node, reach):
    """node's op asking only for the gradients of inputs in reach (a copy, when that is fewer
    than it records: the graph keeps its own)."""
    needs = tuple(n and id(p) in reach for n, p in zip(op.needs, _parents_of(node)))
    if needs == op.needs:
        return op
    op = copy.copy(op)
    op.needs = needs
    return op


def _graph_node_hooks(hooks, input_grads, g):
    """_run_node_hooks with Tensors (backward with create_graph=True, and _run_node_hooks's
    own work)."""
    if not hooks:
        return g if input_grads is None else input_grads
    outs, ins = (g,), None if input_grads is None else tuple(input_grads)
    for fn in list(hooks.values()):
        r = fn(outs) if ins is None else fn(ins, outs)
        if r is None:
            continue
        r = tuple(r) if isinstance(r, (tuple, list)) else (r,)
        want = len(outs) if ins is None else len(ins)
        if len(r) != want:
            raise RuntimeError(f"hook '{getattr(fn, '__name__', fn)}' has returned an incorrect "
                               f"number of values (got {len(r)}, but expected {want})")
        if ins is None:
            outs = r
        else:
            ins = r
    return outs[0] if ins is None else ins


def _graph_extras(node, g, capture):
    """_node_extras with Tensors: tensor hooks see the gradient with its graph; retain_grad
    keeps it."""
    hooks = node._extra.get("hooks")
    if hooks:
        for hook in list(hooks.values()):
            out = hook(g)
            if out is not None:
                if not isinstance(out, Tensor) or out._data.shape != g._data.shape:
                    raise RuntimeError(f"a hook returned {out!r}: it must return None or a "
                                       f"Tensor of shape {tuple(g.shape)}")
                g = out
    if node._extra.get("retain") and node._op is not None and capture is None:
        node._grad = g if node._grad is None else node._grad + g
    return g


def _run_node_hooks(op, hooks, input_grads, g):
    """A node's hooks as torch runs them: pre-hooks (input_grads None) fn(grad_outputs) ->
    new grad_outputs; hooks fn(grad_inputs, grad_outputs) -> new grad_inputs. Returns g or
    input_grads (arrays), replaced where a hook returned something."""
    if not hooks:
        return g if input_grads is None else input_grads
    ins = None if input_grads is None else \
        tuple(None if x is None else _wrap(np.asarray(x)) for x in input_grads)
    out = _graph_node_hooks(hooks, ins, _wrap(np.asarray(g)))
    if ins is None:
        return out._data
    return tuple(None if t is None else t._data for t in out)


def _node_extras(node, g, capture):
    """Hooks and retain_grad of one node, given the gradient arriving at it."""
    if type(g) is SliceGrad:
        g = np.asarray(g)
    hooks = node._extra.get("hooks")
    if hooks:
        for hook in list(hooks.values()):
            out = hook(_wrap(g))
            if out is not None:
                if not isinstance(out, Tensor) or out._data.shape != g.shape:
                    raise RuntimeError(f"a hook returned {out!r}: it must return None or a "
                                       f"Tensor of shape {g.shape}")
                g = out._data
    if node._extra.get("retain") and node._op is not None and capture is None:
        if node._grad is None:
            node._grad = _wrap(np.array(g))
        else:
            node._grad = _wrap(node._grad._data + g)
    return g


class Watcher:
    """Something that watches the engine in one thread (cygrad/_state.py `watching`): every
    recorded or unrecorded op's forward, and each step of backward. Subclasses override what
    they need: detect_anomaly, cygrad.trace, the symmetry tools' op recorder."""

    def begin(self, op, inputs):
        """op is about to run forward on inputs (Tensors); its parameters are its attributes."""

    def forward(self, op, inputs, out):
        """op has just run forward: inputs (Tensors) gave out (a Tensor)."""

    def write(self, tensor, before, src, recorded):
        """An in-place op wrote the array src into tensor, whose array was `before` (tensor._data
        is now before, or a copy of it when a live graph had saved it). recorded: the write
        joined the autograd graph (grad mode, a tensor that requires grad)."""

    def read(self, tensor, how):
        """Python read tensor's values (`how`: "item()", "bool()", ...)."""

    def before(self, node, g):
        """backward is about to run node's op with g, the gradient of node."""

    def step(self, node, g, input_grads):
        """backward ran node's op: g in, input_grads (arrays or None) out."""

    def leaf(self, node, g):
        """backward is about to add g into the leaf node's .grad."""

    def gone(self):
        """Whether what this watcher reports to no longer exists (it can be taken out)."""
        return False

    def graph_backward(self):
        """A backward with create_graph=True starts: its steps come as before/step/leaf (the
        arrays of its Tensors), and the ops computing them as forward ops."""


class AnomalyWatcher(Watcher):
    """detect_anomaly: NaN and Inf in forward outputs and backward gradients raise
    FloatingPointError naming the op; the bytes backward reads are compared at backward."""

    def forward(self, op, inputs, out):
        if out._op is op and (op.saves or op.saves_output):  # recorded: keep its bytes
            saved = [inputs[i]._data for i in op.saves]
            if op.saves_output:
                saved.append(out._data)
            op.snapshots = [(array, array.tobytes()) for array in saved]
        _check_finite(op, "forward output", out._data)

    def before(self, node, g):
        _check_unchanged(node._op)

    def step(self, node, g, input_grads):
        for pg in input_grads:
            _check_finite(node._op, "backward gradient", pg)


def _check_unchanged(op):
    """Under detect_anomaly: the arrays op's backward reads still hold the bytes its forward
    saw."""
    for array, seen in op.__dict__.get("snapshots", ()):
        if array.tobytes() != seen:
            raise RuntimeError(f"{op.kind()}: an array its backward reads (shape "
                               f"{array.shape}) was changed in place after the forward, through "
                               "a view made before the graph saved it (numpy cannot lock such a "
                               "view)")


def _check_finite(op, what, array):
    if array is not None and array.dtype in _FLOAT_NP and not np.isfinite(array).all():
        bad = "NaN" if np.isnan(array).any() else "Inf"
        raise FloatingPointError(f"{op.kind()} produced {bad} in its {what} "
                                 f"(shape {np.shape(array)}); rule: {op.rule}")


_refcount = sys.getrefcount
_new = object.__new__


def _count_alone():
    array = np.empty(0)
    alone = _refcount(array)
    return alone


# _refcount(g) where one local variable g holds an array and nothing else does (the
# calibration keeps the statement's shape: this count depends on how the interpreter holds
# arguments, not on cygrad)
_ALONE = _count_alone()


def _topological_order(roots):
    """Nodes reachable from roots that need gradients, each after all of its inputs (an
    iterative depth-first search: deep graphs never meet Python's recursion limit)."""
    mark = object()  # a fresh mark for this search: "seen" is _mark is mark
    order = []
    for root in roots:
        if root._mark is mark:
            continue
        root._mark = mark
        if root._op is None:
            order.append(root)
            continue
        stack = [(root, iter(_parents_of(root) if _stale_possible else root._parents))]
        while stack:
            node, parents = stack[-1]
            for parent in parents:
                if parent._rg and parent._mark is not mark:
                    parent._mark = mark
                    if parent._op is None:  # a leaf has no inputs: it is done at once
                        order.append(parent)
                        continue
                    stack.append((parent, iter(_parents_of(parent) if _stale_possible
                                                else parent._parents)))
                    break
            else:
                stack.pop()
                order.append(node)
    return order


__all__ = ["Tensor", "Size", "device", "apply"]
