"""Tensor and reverse-mode autodiff: the whole of backprop is `Tensor.backward` below.

Each Tensor made by an op remembers the op (which knows its own backward rule, cygrad/ops/)
and its input tensors. `backward` orders the graph topologically (iteratively, so deep graphs
never hit Python's recursion limit) and walks it once from the output to the leaves, applying
the chain rule. A node used several times receives the sum of its gradients over its uses:
this is how tied weights and reused activations work.
"""

import contextlib
import numbers
import sys

import numpy as np

from . import ops
from .ops import activation, arithmetic, reduction, shape

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_default_dtype = np.dtype(np.float32)
_grad_enabled = True
_tracer = None  # a cygrad.trace.Trace while `with cygrad.trace():` is open
_anomaly = False  # inside `with cygrad.detect_anomaly():`


def set_default_dtype(dtype):
    """The dtype given to Python lists and scalars (float32 unless changed)."""
    global _default_dtype
    _default_dtype = _float_dtype(dtype)


def get_default_dtype():
    return _default_dtype


@contextlib.contextmanager
def no_grad():
    """Inside this block ops record no graph (for evaluation and optimiser updates)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled():
    return _grad_enabled


@contextlib.contextmanager
def detect_anomaly():
    """Inside this block every op checks its forward output and backward gradients and raises
    FloatingPointError at the first NaN or Inf, naming the op. Ops recorded inside it also keep
    a copy of the bytes their backward reads, and backward raises RuntimeError if those changed
    (a write through a numpy view made before the graph saved the array, which the read-only
    lock cannot reach)."""
    global _anomaly
    previous, _anomaly = _anomaly, True
    try:
        yield
    finally:
        _anomaly = previous


def _check_unchanged(op):
    """Under detect_anomaly: the arrays op's backward reads still hold the bytes its forward
    saw."""
    for array, seen in op.__dict__.get("snapshots", ()):
        if array.tobytes() != seen:
            raise RuntimeError(f"{op.name}: an array its backward reads (shape {array.shape}) "
                               "was changed in place after the forward, through a view made "
                               "before the graph saved it (numpy cannot lock such a view)")


def _check_finite(op, what, array):
    if array is not None and not np.isfinite(array).all():
        bad = "NaN" if np.isnan(array).any() else "Inf"
        raise FloatingPointError(f"{op.name} produced {bad} in its {what} "
                                 f"(shape {np.shape(array)}); rule: {op.rule}")


def _set_tracer(tracer):
    """Install a backward tracer (cygrad.trace); returns the previous one."""
    global _tracer
    previous, _tracer = _tracer, tracer
    return previous


def _float_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in _FLOATS:
        raise TypeError(f"unsupported dtype {dtype}: cygrad computes in float32 or float64")
    return dtype


def _to_array(data, dtype=None):
    """A fresh float array from data, with cygrad's dtype rules."""
    if isinstance(data, Tensor):
        data = data._data
    if dtype is not None:
        dtype = _float_dtype(dtype)
        array = np.asarray(data)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"cannot convert an array of dtype {array.dtype} to {dtype}")
        return np.array(array, dtype=dtype)
    if isinstance(data, (np.ndarray, np.generic)):
        if data.dtype not in _FLOATS:
            raise TypeError(f"unsupported dtype {data.dtype}: cygrad computes in float32 or "
                            "float64; convert explicitly, e.g. cygrad.tensor(x, dtype='float32')")
        return np.array(data)
    array = np.array(data)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"unsupported data of dtype {array.dtype}: cygrad computes in float32 "
                        "or float64")
    return array.astype(_default_dtype)


def tensor(data, dtype=None, requires_grad=False):
    """A new leaf Tensor holding a copy of data (a list, a number, an array or a Tensor).

    Float numpy arrays keep their dtype; lists and numbers get the default dtype (float32).
    """
    return Tensor(_to_array(data, dtype), requires_grad=requires_grad)


class Tensor:
    """An n-dimensional float array that remembers how it was computed."""

    # _g: the gradient arriving at this node while backward runs (None otherwise);
    # _mark: backward's visit mark for the topological sort
    __slots__ = ("_data", "grad", "requires_grad", "_op", "_parents", "_g", "_mark",
                 "__weakref__")
    __array_priority__ = 1000  # numpy defers to our operators: array + tensor is a Tensor

    def __init__(self, data, requires_grad=False):
        if not (isinstance(data, np.ndarray) and data.dtype in _FLOATS):
            data = _to_array(data)
        self._data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._op = None
        self._parents = ()
        self._g = self._mark = None

    # ------------------------------------------------------------------ autodiff

    def backward(self, grad=None, retain_graph=False):
        """Add d(self)/d(leaf) into .grad of every leaf that requires grad.

        grad defaults to 1 for a single-element tensor. Leaves accumulate across calls (zero
        them between steps); intermediate tensors keep no gradient. Each op frees the arrays it
        saved (and unlocks them) as soon as backward has passed it, so a second backward raises,
        unless retain_graph=True.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad: no input "
                               "of the computation had requires_grad=True")
        if grad is None:
            if self._data.size != 1:
                raise RuntimeError(f"backward() needs a gradient argument for a non-scalar "
                                   f"output of shape {self.shape}; call .sum() first, or pass "
                                   "grad=ones of that shape")
            grad = np.empty(self._data.shape, self._data.dtype)
            grad.fill(1)
        else:
            grad = _to_array(grad, self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"gradient of shape {grad.shape} for an output of shape "
                                 f"{self.shape}")
        order = _topological_order(self)
        self._g = grad
        summed = set()  # ids of nodes whose gradient is a sum this loop allocated
        tracer = _tracer
        try:
            for node in reversed(order):
                g, node._g = node._g, None
                op = node._op
                if g is None:  # no gradient reached it (its consumers sent None)
                    if op is not None and not retain_graph:
                        op.release()
                    continue
                if op is None:  # a leaf: .grad += g
                    if tracer is not None:
                        tracer.leaf(node, g)
                    # adopted without a copy when only `g` holds it and it owns writable
                    # memory (a large weight gradient is never copied); else added in
                    if (node.grad is None and _refcount(g) == _ALONE and g.base is None
                            and g.dtype is node._data.dtype and g.flags.writeable):
                        node.grad = g
                    else:
                        node._accumulate(g)
                    continue
                if op.released:
                    raise RuntimeError(f"backward through the graph a second time ({op.name} "
                                       "has already freed its saved arrays); call backward("
                                       "retain_graph=True) the first time to keep them")
                if _anomaly:
                    _check_unchanged(op)
                input_grads = op.backward(g)
                if _anomaly:
                    for pg in input_grads:
                        _check_finite(op, "backward gradient", pg)
                if tracer is not None:
                    tracer.step(node, g, input_grads)
                if not retain_graph:  # free what it saved now: the rest of backward has room
                    op.release()
                for parent, pg in zip(node._parents, input_grads):
                    if pg is None or not parent.requires_grad:
                        continue
                    held = parent._g
                    if held is None:
                        parent._g = pg
                    elif id(parent) in summed:  # a buffer of our own: add in place
                        held += pg
                    else:
                        parent._g = held + pg
                        summed.add(id(parent))
                input_grads = pg = held = None  # keep no reference: leaves adopt g alone
        except BaseException:
            for node in order:  # leave no gradient behind on the nodes
                node._g = None
            raise

    def _writable_data(self):
        """self._data, ready for an in-place write. An array a live graph saved for backward is
        read-only; it is replaced by a writable copy (copy-on-write), so the graph keeps the
        values its forward saw."""
        if not self._data.flags.writeable:
            self._data = self._data.copy()
        return self._data

    def _accumulate(self, g):
        """.grad += g (into a copy of g the first time)."""
        if self.grad is None:
            self.grad = np.array(g, dtype=self._data.dtype)
        else:
            self.grad += g

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor(self._data)

    # ------------------------------------------------------------------ array facts

    @property
    def data(self):
        """The same array as a new Tensor cut from the graph (as torch's `.data`): writes to it
        change this tensor, and no gradient records them."""
        return Tensor(self._data)

    @data.setter
    def data(self, value):
        if not isinstance(value, Tensor):
            raise TypeError(f"data must be a Tensor, got {type(value).__name__}")
        self._data = value._data

    def __array__(self, dtype=None, copy=None):
        if copy:
            return np.array(self._data, dtype=dtype)
        return self._data if dtype is None else self._data.astype(dtype, copy=False)

    @property
    def shape(self):
        return self._data.shape

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def ndim(self):
        return self._data.ndim

    @property
    def size(self):
        return self._data.size

    def numpy(self):
        """The data array itself (shared, not copied)."""
        return self._data

    def item(self):
        if self._data.size != 1:
            raise ValueError(f"item() needs a single element, the tensor has shape {self.shape}")
        return self._data.item()

    def __len__(self):
        return len(self._data)

    def __repr__(self):
        body = np.array2string(self._data, separator=", ", precision=4, threshold=20)
        extra = f", grad_fn={self._op.name}" if self._op is not None else (
            ", requires_grad=True" if self.requires_grad else "")
        dtype = "" if self.dtype == np.float32 else f", dtype={self.dtype}"
        return f"tensor({body}{dtype}{extra})"

    # ------------------------------------------------------------------ operators

    def __add__(self, other):
        return _binary(arithmetic.Add, self, _operand(other, self))

    def __radd__(self, other):
        return _binary(arithmetic.Add, _operand(other, self), self)

    def __sub__(self, other):
        return _binary(arithmetic.Sub, self, _operand(other, self))

    def __rsub__(self, other):
        return _binary(arithmetic.Sub, _operand(other, self), self)

    def __mul__(self, other):
        return _binary(arithmetic.Mul, self, _operand(other, self))

    def __rmul__(self, other):
        return _binary(arithmetic.Mul, _operand(other, self), self)

    def __truediv__(self, other):
        return _binary(arithmetic.Div, self, _operand(other, self))

    def __rtruediv__(self, other):
        return _binary(arithmetic.Div, _operand(other, self), self)

    def __neg__(self):
        return apply(arithmetic.Neg, self)

    def __pow__(self, exponent):
        if not isinstance(exponent, numbers.Real):
            raise TypeError(f"** takes a Python number as exponent, got {type(exponent).__name__}")
        return apply(arithmetic.Pow, self, p=float(exponent))

    def __matmul__(self, other):
        return matmul(self, _operand(other, self))

    def __rmatmul__(self, other):
        return matmul(_operand(other, self), self)

    def __getitem__(self, index):
        if isinstance(index, Tensor):
            index = index._data
        return apply(shape.GetItem, self, index=index)

    # ------------------------------------------------------------------ methods

    def sum(self, axis=None, keepdims=False):
        return apply(reduction.Sum, self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return apply(reduction.Mean, self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return apply(reduction.Max, self, axis=axis, keepdims=keepdims)

    def reshape(self, *new_shape):
        if len(new_shape) == 1 and isinstance(new_shape[0], (tuple, list)):
            new_shape = tuple(new_shape[0])
        return apply(shape.Reshape, self, shape=new_shape)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return apply(shape.Transpose, self, axes=axes or None)

    @property
    def T(self):
        return self.transpose()

    def exp(self):
        return apply(activation.Exp, self)

    def log(self):
        return apply(activation.Log, self)

    def tanh(self):
        return apply(activation.Tanh, self)

    def sigmoid(self):
        return apply(activation.Sigmoid, self)

    def relu(self):
        return apply(activation.ReLU, self)

    def leaky_relu(self, negative_slope=0.01):
        return apply(activation.LeakyReLU, self, slope=float(negative_slope))

    def softmax(self, axis=-1):
        return apply(reduction.Softmax, self, axis=axis)

    def log_softmax(self, axis=-1):
        return apply(reduction.LogSoftmax, self, axis=axis)


def apply(op_class, *inputs, **params):
    """Run op_class forward on the inputs' data and, if any input needs a gradient, record it.

    params become attributes of the op before forward (its __init__ is not called). The arrays
    the op's backward reads (op.saves, op.saves_output) are locked read-only while it lives.
    """
    op = op_class.__new__(op_class)
    if params:
        op.__dict__ = params  # the call's own fresh dict becomes the op's: no copy
    if len(inputs) == 1:  # the usual arities spelled out: comprehensions cost more
        (a,) = inputs
        data = op.forward(a._data)
        needs = (a.requires_grad,) if _grad_enabled else ()
    elif len(inputs) == 2:
        a, b = inputs
        data = op.forward(a._data, b._data)
        needs = (a.requires_grad, b.requires_grad) if _grad_enabled else ()
    elif len(inputs) == 3:  # a layer with a bias
        a, b, c = inputs
        data = op.forward(a._data, b._data, c._data)
        needs = (a.requires_grad, b.requires_grad, c.requires_grad) if _grad_enabled else ()
    else:
        data = op.forward(*[t._data for t in inputs])
        needs = tuple([t.requires_grad for t in inputs]) if _grad_enabled else ()
    out = Tensor.__new__(Tensor)
    out._data, out.grad, out._g, out._mark = data, None, None, None
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
            if _anomaly:
                op.snapshots = [(array, array.tobytes()) for array in saved]
        out.requires_grad, out._op, out._parents = True, op, inputs
    else:
        out.requires_grad, out._op, out._parents = False, None, ()
    if _anomaly:
        _check_finite(op, "forward output", data)
    return out


def matmul(a, b):
    """a @ b for 2-D tensors, or batches of them (3-D)."""
    if a.ndim not in (2, 3) or b.ndim not in (2, 3):
        raise ValueError(f"matmul takes 2-D or 3-D tensors, got shapes {a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not multiply "
                         f"({a.shape[-1]} != {b.shape[-2]})")
    _check_same_dtype(a, b)
    return apply(arithmetic.MatMul, a, b)


def _check_same_dtype(a, b):
    if a._data.dtype != b._data.dtype:
        raise TypeError(f"dtype mismatch: {a._data.dtype} and {b._data.dtype}; convert one "
                        "operand (cygrad.tensor(x, dtype=...)) first")


def _operand(other, like):
    """The other operand of a binary op as a Tensor: Python numbers take like's dtype."""
    if isinstance(other, Tensor):
        return other
    if isinstance(other, numbers.Number) and not isinstance(other, complex):
        return Tensor(np.asarray(other, dtype=like._data.dtype))
    return Tensor(_to_array(other))


def _binary(op_class, a, b):
    """An elementwise binary op; dtypes must agree and shapes broadcast (checked before any
    arithmetic)."""
    da, db = a._data, b._data
    if da.dtype is not db.dtype:
        _check_same_dtype(a, b)
    if da.shape != db.shape:
        try:
            np.broadcast_shapes(da.shape, db.shape)
        except ValueError:
            raise ValueError(f"shapes {a.shape} and {b.shape} cannot be broadcast "
                             "together") from None
    return apply(op_class, a, b)


_refcount = sys.getrefcount


def _count_alone():
    array = np.empty(0)
    alone = _refcount(array)
    return alone


# _refcount(g) where one local variable g holds an array and nothing else does (the
# calibration keeps the statement's shape: this count depends on how the interpreter holds
# arguments, not on cygrad)
_ALONE = _count_alone()


def _topological_order(root):
    """Nodes reachable from root that need gradients, each after all of its inputs (an
    iterative depth-first search: deep graphs never meet Python's recursion limit)."""
    mark = root._mark = object()  # a fresh mark for this search: "seen" is _mark is mark
    order, stack = [], [(root, iter(root._parents))]
    while stack:
        node, parents = stack[-1]
        for parent in parents:
            if parent.requires_grad and parent._mark is not mark:
                parent._mark = mark
                if parent._op is None:  # a leaf has no inputs: it is done at once
                    order.append(parent)
                    continue
                stack.append((parent, iter(parent._parents)))
                break
        else:
            stack.pop()
            order.append(node)
    return order


__all__ = ["Tensor", "tensor", "no_grad", "is_grad_enabled", "set_default_dtype",
           "get_default_dtype", "apply", "matmul", "ops"]
