"""Derivatives of derivatives: what backward(create_graph=True) runs at each node.

The usual backward (cygrad/tensor.py) computes gradients as numpy arrays: fast, and nothing
is recorded. With create_graph=True each node's gradient is a Tensor that can be
differentiated again (Hessian-vector products, gradient penalties, MAML, PINNs): its value is
the op's own backward's (the bits a plain backward gives), its graph the op's gradient formula
computed with recorded ops (`vjp_of`). The formula comes from what the op already declares:

- an elementwise entry (elementwise.py): its `grad` formula itself, run on Tensors (`Traced`
  below makes numpy's functions in the formula call cygrad's: `g * np.cos(x)` becomes
  `g * cygrad.cos(x)`). One formula gives both orders.
- `linear = True` (reshape, permute, expand, slicing, sum, mean, nll_loss...: backward reads
  none of the op's inputs, and forward is linear in its one input): the backward runs as an
  op (`Adjoint`) whose own backward is the forward, so every order comes from the pair; and
  `select(gg)` (max pooling, max along a dim: backward routes g by what forward selected,
  select picks the same elements of gg) the same way with select for forward.
- `vjp` written by hand with Tensor ops, beside the op's backward (matmul, linear, softmax,
  cross_entropy, mse_loss, norm, cat, where...), or `decompose` (the op as a composition of
  recorded ops, differentiated through: layer_norm, batch_norm, convolution, attention,
  var/std, prod, cumprod).
- anything else: its gradient comes with a node that raises NotImplementedError naming the
  op if backward reaches it (torch raises where a double backward is missing).

Every op the vjps record is one of cygrad's own, with its exact kernel: the exactness contract
covers second derivatives too.
"""

import copy

import numpy as np

from .. import dtypes
from ..tensor import Tensor, _wrap, apply
from . import Op, registry


def vjp_of(op, g, inputs, output):
    """The gradients (Tensors or None, one per input) of op's node from g (a Tensor).

    Their values are op.backward's, the numbers a backward without create_graph gives, bit
    for bit; their graph is the op's formula on Tensors (`formula`: what differentiating
    them again follows, and exactly what they depend on). A linear or selecting op's
    gradient is its backward run as an op (`Adjoint`). An op without a formula gives its
    gradients with a node that raises if backward reaches it (torch's rule)."""
    if type(op).linear:
        return (apply(Adjoint, g, op=copy.copy(op), via="forward"),)
    if hasattr(op, "select"):
        return (apply(Adjoint, g, op=copy.copy(op), via="select"),)
    arrays = op.backward(g._data)
    if getattr(op, "zero_grad", False):  # a step function: a constant 0, as torch's
        return tuple(None if a is None else const(np.asarray(a)) for a in arrays)
    try:
        made = formula(op, g, inputs, output)
    except (NotImplementedError, OnceDifferentiable) as e:
        return tuple(None if a is None else
                     apply(Underivable, g, *inputs, value=np.asarray(a), error=e)
                     for a in arrays)
    return tuple(None if a is None else
                 const(np.asarray(a)) if m is None or not m.requires_grad else
                 apply(Pin, m, value=np.asarray(a),
                       node=None if m._op is None else m._op.name())
                 for a, m in zip(arrays, made))


def formula(op, g, inputs, output):
    """op's input gradients as recorded ops on Tensors (so differentiable again): its own
    `vjp`, else its `decompose` differentiated, else NotImplementedError naming it."""
    own = getattr(type(op), "vjp", None)
    if own is not None:
        return own(op, g, inputs, output)
    if hasattr(op, "decompose"):
        return _through(op, g, inputs)
    unsupported(op)


class Pin(Op):
    """A gradient whose value is the op's own backward's (`value`) and whose derivative is its
    formula's (the input): y = value, dx = g."""

    rule = "dx = g"  # (named as its input's node: the formula's last op, as torch's grad_fn)

    def forward(self, x):
        return self.value

    def backward(self, g):
        return (g,)

    def vjp(self, g, inputs, output):
        return (g,)


class Underivable(Op):
    """A gradient (`value`) of an op that has no formula for its derivative: backward through
    it raises `error` (again)."""

    def forward(self, *arrays):
        return self.value

    def backward(self, g):
        raise type(self.error)(str(self.error))


class OnceDifferentiable(RuntimeError):
    """A custom Function's backward marked @once_differentiable was to be differentiated."""


def unsupported(op, what=None):
    """Raise: op's gradient cannot be differentiated (torch's words for such a node)."""
    raise NotImplementedError(
        f"the derivative of {op.name()}'s gradient{' for ' + what if what else ''} is not "
        f"implemented in cygrad (backward(create_graph=True) or autograd.grad(create_graph="
        f"True) through {op.kind()}); without create_graph its first derivative works")


def _through(op, g, inputs):
    """op's vjp by differentiating its decomposition (recorded ops) with a graph."""
    from ..tensor import _backward_graph

    wanted = [t for t, need in zip(inputs, op.needs) if need]
    out = op.decompose(*inputs)
    capture = {id(t): None for t in wanted}
    _backward_graph([out], [g], capture=capture)
    return tuple(capture[id(t)] if need else None for t, need in zip(inputs, op.needs))


class Adjoint(Op):
    """gx = op.backward(g) for an op (its parameter `op`) whose backward is linear in g and
    reads none of its inputs' values: a linear op (via "forward": the transpose of its
    backward is its forward) or one that routes g by a fixed selection (via "select": max
    pooling, max along a dim; op.select(gg) picks what forward picked). Its own backward is
    that transpose (an Adjoint of an Adjoint runs the op's backward again), so such ops are
    differentiable to any order."""

    rule = "dg = the op's forward (or its fixed selection) applied to the incoming gradient"
    linear = True

    def name(self):
        return self.op.name().replace("Backward0", "BackwardBackward0").replace(
            "Backward1", "BackwardBackward1")

    def forward(self, g):
        op = copy.copy(self.op)
        op.needs = (True,)
        (gx,) = op.backward(g)
        return np.asarray(gx)

    def backward(self, gg):
        return (np.asarray(getattr(copy.copy(self.op), self.via)(gg)),)


# ---------------------------------------------------------------------- helpers for vjps

def sum_to(t, shape):
    """t (a Tensor) summed down to shape, as broadcasting made it (recorded)."""
    shape = tuple(shape)
    if tuple(t.shape) == shape:
        return t
    lead = t.ndim - len(shape)
    if lead:
        t = t.sum(dim=tuple(range(lead)))
    dims = tuple(i for i, s in enumerate(shape) if s == 1 and t.shape[i] != 1)
    if dims:
        t = t.sum(dim=dims, keepdim=True)
    return t


def const(array):
    """A numpy array as a Tensor no gradient flows into."""
    return _wrap(np.asarray(array))


def where_const(keep, g, other=None):
    """g where the numpy mask keep holds, else 0 (or the Tensor other): recorded."""
    from .shape import where

    zero = registry.FUNCTIONS["zeros_like"](g) if other is None else other
    return where(const(np.asarray(keep, bool)), g, zero)


# ---------------------------------------------------------------------- formulas on Tensors

class Traced:
    """A Tensor seen by an elementwise entry's numpy formula: operators, numpy's ufuncs and
    np.where / zeros_like / ones_like / clip run cygrad's ops, recorded. Lives only while a
    formula runs (an entry's vjp)."""

    __slots__ = ("t",)
    __array_priority__ = 1000

    def __init__(self, t):
        self.t = t

    dtype = property(lambda self: self.t._data.dtype)
    shape = property(lambda self: self.t._data.shape)
    ndim = property(lambda self: self.t._data.ndim)
    size = property(lambda self: self.t._data.size)

    def __getattr__(self, name):  # an array method the formula needs and Traced lacks
        raise NotImplementedError(f"the array method .{name}")

    def __float__(self):
        return float(self.t._data)

    def __bool__(self):
        return bool(self.t._data)

    def astype(self, dtype, copy=True):
        dtype = np.dtype(dtype)
        if dtype == self.t._data.dtype:
            return self
        return Traced(self.t.to(dtypes._BY_NUMPY[dtype]))

    def copy(self):
        return Traced(self.t.clone())

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        fn = _ufuncs().get(ufunc)
        if method != "__call__" or fn is None or kwargs.get("out") is not None:
            raise NotImplementedError(f"numpy's {ufunc.__name__}.{method} on a traced tensor")
        kwargs.pop("out", None)
        if kwargs:
            raise NotImplementedError(f"numpy's {ufunc.__name__} with {sorted(kwargs)}")
        args = [_plain(x) for x in inputs]
        if len(args) == 2:  # a number beside a tensor: a 0-d tensor of its dtype (maximum,
            t = args[0] if isinstance(args[0], Tensor) else args[1]  # atan2... take no number)
            args = [const(np.asarray(a, t._data.dtype)) if not isinstance(a, Tensor) else a
                    for a in args]
        return _traced(fn(*args))

    def __array_function__(self, func, types, args, kwargs):
        fn = _FUNCTIONS.get(func)
        if fn is None:
            raise NotImplementedError(f"numpy's {func.__name__} on a traced tensor")
        return fn(*args, **kwargs)


def _plain(x):
    """A formula's operand for cygrad's ops: the Tensor of a Traced, a Python number for a
    numpy scalar (cygrad's ops take numbers as torch does: in the tensor's dtype)."""
    if type(x) is Traced:
        return x.t
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return const(x)
    return x


def _traced(x):
    return Traced(x) if isinstance(x, Tensor) else x


def _operator(name):
    def op(self, other):
        fn = getattr(self.t, name)
        return _traced(fn(_plain(other)))

    op.__name__ = name
    return op


for _name in ("add", "sub", "mul", "truediv", "pow", "lt", "le", "gt", "ge", "eq", "ne",
              "and", "or", "xor", "radd", "rsub", "rmul", "rtruediv", "rpow", "rand", "ror"):
    setattr(Traced, f"__{_name}__", _operator(f"__{_name}__"))
Traced.__neg__ = lambda self: Traced(-self.t)
Traced.__invert__ = lambda self: Traced(~self.t)
Traced.__abs__ = lambda self: Traced(self.t.abs())
Traced.__hash__ = None

_UFUNCS = None


def _ufuncs():
    """numpy's ufuncs a formula may call, each with the cygrad function computing it."""
    global _UFUNCS
    if _UFUNCS is None:
        from . import elementwise

        f = registry.FUNCTIONS
        names = {"absolute": "abs", "negative": "neg", "add": "add", "subtract": "sub",
                 "multiply": "mul", "true_divide": "div", "divide": "div", "power": "pow",
                 "float_power": "pow", "arcsin": "asin", "arccos": "acos", "arctan": "atan",
                 "arcsinh": "asinh", "arccosh": "acosh", "arctanh": "atanh",
                 "arctan2": "atan2", "greater": "gt", "greater_equal": "ge", "less": "lt",
                 "less_equal": "le", "equal": "eq", "not_equal": "ne", "invert": "bitwise_not"}
        table = {}
        for name in dir(np):
            u = getattr(np, name)
            if isinstance(u, np.ufunc):
                torch_name = names.get(name, name)
                if torch_name in f:
                    table[u] = f[torch_name]
        table[elementwise._ERF] = f["erf"]
        table[elementwise._ERFC] = f["erfc"]
        _UFUNCS = table
    return _UFUNCS


def call(name, *args):
    """cygrad's function `name` on a formula's operands (Traced or not), recorded: for a
    formula's helper that numpy's protocols do not reach (lgamma's digamma)."""
    return _traced(registry.FUNCTIONS[name](*[_plain(a) for a in args]))


def _where(condition, x=None, y=None):
    from .shape import where

    cond = _plain(condition)
    return _traced(where(cond if isinstance(cond, Tensor) else const(cond), _plain(x),
                         _plain(y)))


def _like(fill):
    def like(a, dtype=None, **kwargs):
        t = _plain(a)
        out = (registry.FUNCTIONS["zeros_like"] if fill == 0 else
               registry.FUNCTIONS["ones_like"])(t)
        return _traced(out if dtype is None else out.to(dtypes._BY_NUMPY[np.dtype(dtype)]))

    return like


def _clip(a, lo, hi, **kwargs):
    return _traced(_plain(a).clamp(_plain(lo), _plain(hi)))


_FUNCTIONS = {np.where: _where, np.zeros_like: _like(0), np.ones_like: _like(1), np.clip: _clip}


def traced(fn, *args, name="", **params):
    """fn(*args, **params), a numpy formula, with its Tensor arguments traced: the recorded
    result (each Traced in a returned tuple made a Tensor; a numpy value returned, as
    zeros_like(g) of a step function, a constant)."""
    wrapped = [Traced(a) if isinstance(a, Tensor) else a for a in args]
    try:
        with np.errstate(all="ignore"):
            out = fn(*wrapped, **params)
    except NotImplementedError as e:
        raise NotImplementedError(f"the derivative of {name}'s gradient is not implemented in "
                                  f"cygrad (its formula uses {e})") from None
    if isinstance(out, tuple):
        return tuple(_result(o) for o in out)
    return _result(out)


def _result(out):
    if out is None or isinstance(out, Tensor):
        return out
    return out.t if type(out) is Traced else const(np.asarray(out))
