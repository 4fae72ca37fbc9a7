"""The op table: every operation cygrad offers, each declared once.

An op is a class with `forward(*arrays)` (numpy arrays in, the output array out, saving what
backward needs) and `backward(g)` (the gradient of the output in, one gradient per input out,
None where an input needs none), side by side, with `rule`, the backward formula in words (shown
by traces and docs). All heavy numerics go through `cygrad.backend`, so switching backend
switches every kernel. The autodiff bookkeeping lives in cygrad/tensor.py (`apply`).

Each op is exported under its torch names by `registry.export`: as a cygrad function
(`cygrad.exp`), a Tensor method (`x.exp()`, `x.exp_()`), an `nn.functional` function, and, for
activations, an `nn` module (`nn.Tanh`). Elementwise ops are declared in one line each in
elementwise.py (numpy twin, backward, rule, kernel, torch name); everything else — methods,
functions, modules, the fusable set, the bridge to torch, the tests' lists — is derived from
that entry.

    elementwise.py  unary and binary elementwise ops, comparisons    (one table)
    reduction.py    sum mean prod max min var std logsumexp softmax ...
    shape.py        view reshape permute cat stack indexing gather ...
    linalg.py       matmul bmm einsum
    decompositions.py  det inv solve cholesky qr eigh svd pinv (LAPACK; torch.linalg's)
    extras.py       cov take block_diag searchsorted trapezoid ... (made of the ops above)
    compat.py       in-place forms, quantile, unfold, heaviside ..., torch's process settings
    factories.py    zeros ones full arange linspace eye ...
    layers.py       linear dropout embedding norms attention
    conv.py         conv1d conv2d, max/avg/adaptive pools (1-D and 2-D)
    losses.py       cross_entropy nll mse bce ...

An op says which of the caller's arrays its backward reads: `saves` (input positions) and
`saves_output`; `apply` locks those arrays read-only while the graph lives (ops/locks.py).
For derivatives of derivatives (backward with create_graph=True) an op is `linear`, has a
`select`, a `vjp` or a `decompose`, or is an elementwise entry (higher.py says how each works).
`view_of` names the input whose array the output is a view of (view, transpose, slicing...).
"""

import numpy as np

from . import registry  # noqa: F401
from .locks import Lease, PyLease, lock, unlock  # noqa: F401  (re-exported)


class Op:
    """Base of every op. Parameters arrive as attributes (set by `apply` before forward);
    `needs` (set before backward) says which inputs want a gradient.

    `release()` (run by backward, or implicitly when the graph is dropped) frees what the op
    saved and lets the arrays it read be written again.
    """

    rule = ""
    saves = ()  # positions of the inputs whose arrays backward reads
    saves_output = False  # backward reads the output array
    view_of = None  # position of the input whose array the output views
    # backward reads none of the inputs and forward is linear in its one input: backward
    # with create_graph=True differentiates it through the pair (ops/higher.py); an op that
    # is not linear may define vjp(g, inputs, output) (Tensors) or decompose(*inputs)
    linear = False
    # backward needs no array of the forward's, only shapes and parameters: release keeps
    # them, so backward may pass again without retain_graph (torch's nodes that save no
    # tensor: add, view, sum, a dtype cast...)
    saves_nothing = False
    needs = ()
    released = False
    lease = None
    # torch's name for the node (grad_fn.name()) where it is not kind() + "Backward0": set per
    # class, or per call where torch's node depends on the call (a parameter `node`, or set
    # by forward); kept when the op is released, as torch's grad_fn keeps its name
    node = None

    def __init__(self, **params):
        self.__dict__.update(params)

    @classmethod
    def kind(cls):
        """The op's own short name ("Add", "Linear"): what traces, plans and explanations say."""
        return cls.__name__

    def name(self):
        """torch's grad_fn.name() for the node this op made: "AddBackward0", "AddmmBackward0"
        for a Linear with a bias on rows..."""
        return self.node or type(self).kind() + "Backward0"

    def shown(self):
        """The node as torch's reprs show it: its class's name (name() without a namespace:
        "CopySlices" for "torch::autograd::CopySlices")."""
        return self.name().rpartition("::")[2]

    def __repr__(self):
        return f"<{self.shown()} object at {id(self):#x}>"

    @property
    def next_functions(self):
        """torch's grad_fn.next_functions: for each input, (its grad_fn, 0), (an
        AccumulateGrad of it, 0) for a leaf that requires grad, or (None, 0)."""
        inputs = self.__dict__.get("_inputs")
        if inputs is None:
            raise RuntimeError("next_functions: reach this node as a tensor's grad_fn")
        keep = _ONE_EDGE.get(self.name())
        if keep is not None and len(inputs) == 2:  # torch's node takes the number (or the
            inputs = (inputs[keep],)  # mask) as an argument, not an input: no edge for it
        out = []
        for t in inputs:
            if t._op is not None:
                t._op.__dict__["_inputs"] = t._parents  # so that the walk goes on
                out.append((t._op, 0))
            else:
                out.append((AccumulateGrad(t) if t._rg else None, 0))
        return tuple(out)

    def register_hook(self, fn):
        """torch's Node.register_hook: fn(grad_inputs, grad_outputs) -> None or new
        grad_inputs, run when this node's backward has made the gradients of its inputs (a
        tuple in next_functions order, None where an input needs none) from grad_outputs.
        Returns a handle whose remove() unregisters it."""
        return _node_hook(self, "post", fn)

    def register_prehook(self, fn):
        """torch's Node.register_prehook: fn(grad_outputs) -> None or new grad_outputs, run
        before this node's backward."""
        return _node_hook(self, "pre", fn)

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, g):
        raise NotImplementedError

    # What backward's engine calls (cygrad/tensor.py, when no watcher or capture needs every
    # gradient whole): `backward`, unless an op declares a cheaper form of its gradient — Slice
    # hands a SliceGrad (zero outside its window), which the engine adds into its input's
    # gradient buffer at that window only.
    engine_backward = backward

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "backward" in cls.__dict__ and "engine_backward" not in cls.__dict__:
            cls.engine_backward = cls.__dict__["backward"]

    @property
    def passed(self):
        """Whether a backward that did not retain the graph has passed this op."""
        return self.released or self.__dict__.get("_passed", False)

    def release(self):
        """Drop the arrays saved for backward; a second backward through this op is an error
        (unless it saves nothing: then there is nothing to drop)."""
        if self.saves_nothing:
            self.__dict__["_passed"] = True
            return
        state = self.__dict__
        node = state.get("node")
        state.clear()  # the lease with the rest: freeing it gives its locks back
        state["released"] = True
        if node is not None:
            state["node"] = node


def _node_hook(op, kind, fn):
    from collections import OrderedDict

    from ..utils.hooks import RemovableHandle

    hooks = op.__dict__.setdefault("_node_hooks", {"pre": OrderedDict(), "post": OrderedDict()})
    handle = RemovableHandle(hooks[kind])
    hooks[kind][handle.id] = fn
    return handle


# torch's nodes of one tensor input where cygrad's op has two, and which of the two it is:
# 2 - b (rsub.Scalar), b ** 2 (pow.Tensor_Scalar), 2 ** b (pow.Scalar), masked_fill's mask
_ONE_EDGE = {"RsubBackward1": 1, "PowBackward0": 0, "PowBackward2": 1, "MaskedFillBackward0": 0}


class AccumulateGrad:
    """The node of a leaf that requires grad in next_functions (torch's AccumulateGrad):
    `variable` is the leaf."""

    next_functions = ()

    def __init__(self, variable):
        self.variable = variable

    @staticmethod
    def name():
        return "torch::autograd::AccumulateGrad"

    def __repr__(self):
        return f"<AccumulateGrad object at {id(self):#x}>"


class SliceGrad:
    """A gradient that is zero outside x[index], where it is g: Slice's backward as handed to
    the engine. np.add with it adds g into the other operand's window (in place with out=, else
    into a copy); np.asarray makes it whole (zeros with g written at index, as Slice.backward).
    Every element gets the same additions in the same order as with the whole array: only the
    sign of a zero can differ (0.0 + -0.0 is 0.0)."""

    __slots__ = ("shape", "dtype", "index", "g")
    base = "window"  # not None: the engine copies it (whole) before keeping it as a .grad

    def __init__(self, shape, dtype, index, g):
        self.shape, self.dtype, self.index, self.g = shape, dtype, index, g

    def __array__(self, dtype=None, copy=None):
        dx = np.zeros(self.shape, dtype=self.dtype if dtype is None else dtype)
        dx[self.index] = self.g
        return dx

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        if ufunc is not np.add or method != "__call__" or len(inputs) != 2 or kwargs:
            return NotImplemented
        a, b = inputs
        if type(a) is SliceGrad and type(b) is not SliceGrad:
            a, b = b, a  # the whole operand first (addition commutes, bit for bit)
        if out is not None:  # a += b, in place: the engine's own buffer
            if len(out) != 1 or out[0] is not a or type(a) is SliceGrad:
                return NotImplemented
            target = a
        else:  # a new array: a whole, copied (or made whole)
            target = np.array(a)
        window = target[b.index]
        if type(window) is np.ndarray:  # a view: added where it lies
            np.add(window, b.g, out=window)
        else:  # one element (every index an integer): numpy gave a scalar
            target[b.index] = window + b.g
        return target

    def __add__(self, other):
        return np.add(self, other)

    __radd__ = __add__
