"""torch.autograd.Function: an op of your own, its forward and backward written with tensors.

    class Exp(cygrad.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad_output):
            (y,) = ctx.saved_tensors
            return grad_output * y

    y = Exp.apply(x)

As torch's: forward runs without recording (grad mode off) and gets a ctx; apply records one
node (grad_fn `ExpBackward`) when grad mode is on and a tensor argument requires grad;
backward gets one gradient per output and returns one per forward argument (None for those
that need none: ctx.needs_input_grad says which do); a gradient of another shape that sums to
the input's (a broadcast) is summed to it, anything else raises. The new style (a static
`setup_context(ctx, inputs, output)`, forward without ctx) works too.

How it is recorded: one cygrad op whose output is the differentiable (floating) output, or,
for several, all of them flattened end to end (one dtype), the outputs handed back as views of
it, so each output's gradient reaches the op's backward as its part of one gradient. Integer
outputs, and those passed to ctx.mark_non_differentiable, come back as plain tensors; an
output without a gradient reaches backward as zeros (ctx.set_materialize_grads(False) is
accepted and changes nothing). Saved tensors are the arrays they had when saved, kept
read-only while the graph lives (an in-place write later goes to a copy: the backward sees the
saved values). Under backward(create_graph=True) the backward runs in grad mode and
ctx.saved_tensors gives the saved tensors themselves (a saved output: the result the caller
got), so a backward written in tensor ops differentiates again (torch's rule);
@once_differentiable makes its gradients raise if differentiated again. ctx.mark_dirty
(in-place custom functions) raises.
"""

import numpy as np

from . import _state
from .ops import Lease, Op
from .tensor import Tensor, _local, _wrap, apply

__all__ = ["Function", "FunctionCtx", "once_differentiable"]


class FunctionCtx:
    """The ctx a Function's forward (or setup_context) and backward share."""

    def __init__(self, needs_input_grad):
        self.needs_input_grad = needs_input_grad
        self.materialize_grads = True
        self._to_save = ()
        self._saved = None
        self._non_differentiable = set()
        self._graph = False
        self._originals = ()

    def save_for_backward(self, *tensors):
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward can only save variables, but argument {i} "
                                f"is of type {type(t).__name__}")
        self._to_save = tensors

    def save_for_forward(self, *tensors):
        raise NotImplementedError("save_for_forward (forward-mode AD) is not supported in "
                                  "cygrad")

    @property
    def saved_tensors(self):
        if self._saved is None:  # forward has not ended: the tensors as given
            return tuple(self._to_save)
        if self._graph:  # backward with create_graph=True: the tensors with their graphs
            return self._originals
        return tuple(None if a is None else _wrap(a) for a in self._saved)

    def mark_non_differentiable(self, *tensors):
        self._non_differentiable.update(id(t) for t in tensors)

    def set_materialize_grads(self, value):
        self.materialize_grads = bool(value)

    def mark_dirty(self, *tensors):
        raise NotImplementedError("mark_dirty (a custom Function that changes its inputs in "
                                  "place) is not supported in cygrad: return a new tensor")

    def _keep(self):
        """Forward is over: hold the saved arrays, read-only while the graph lives."""
        self._saved = tuple(None if t is None else t._data for t in self._to_save)
        self._lease = Lease([a for a in self._saved if a is not None])
        self._originals = tuple(self._to_save)  # (an output is replaced by its result: _record)
        self._to_save = ()


class _Recorded(Op):
    """The node a Function's apply records: its output is the differentiable outputs
    flattened end to end (already computed: forward hands them over)."""

    @classmethod
    def name(cls):
        return cls.kind() + "Backward"  # torch names a Function's node so

    def forward(self, *arrays):
        return self.flat

    def backward(self, g):
        g = np.asarray(g).reshape(-1)
        grads = [_wrap(np.ascontiguousarray(g[a:b]).reshape(shape))
                 for a, b, shape in self.parts]
        result = self._run_backward(self.fill(grads), graph=False)
        return tuple(None if gi is None else np.asarray(gi._data, dtype=dtype).reshape(shape)
                     for gi, (_, shape, dtype) in zip(result, self.inputs))

    def vjp(self, g, inputs, output):
        """The derivative of this node's gradients (ops/higher.py): the Function's backward
        run in grad mode on Tensors (saved tensors with their graphs), as torch runs it; a
        backward marked @once_differentiable raises (torch's error)."""
        if getattr(self.function.backward, "_once_differentiable", False):
            from .ops.higher import OnceDifferentiable

            raise OnceDifferentiable(f"trying to differentiate twice a function that was "
                                     f"marked with @once_differentiable ({self._name()})")
        flat = g.reshape(-1)
        return tuple(self._run_backward(
            self.fill([flat[a:b].reshape(shape) for a, b, shape in self.parts]), graph=True))

    def _name(self):
        return type(self).__name__ + "Backward"

    def _run_backward(self, grads, graph):
        """The Function's backward on grads (Tensors), one gradient (a Tensor of the input's
        shape, broadcast ones summed) or None per tensor input: in grad mode with the saved
        tensors' graphs (graph: backward with create_graph=True), else without."""
        ctx = self.ctx
        ctx._graph = graph
        token = _state.swap("grad_enabled", graph)
        try:
            out = self.function.backward(ctx, *grads)
        finally:
            _state.restore("grad_enabled", token)
            ctx._graph = False
        if not isinstance(out, tuple):
            out = (out,)
        name = self._name()
        if len(out) != self.nargs:
            raise RuntimeError(f"function {name} returned an incorrect number of gradients "
                               f"(expected {self.nargs}, got {len(out)})")
        result = []
        for i, shape, _ in self.inputs:
            gi = out[i]
            if gi is None:
                result.append(None)
                continue
            if not isinstance(gi, Tensor):
                gi = _wrap(np.asarray(gi))
            if tuple(gi.shape) != shape:
                try:
                    if np.broadcast_shapes(shape, tuple(gi.shape)) != tuple(gi.shape):
                        raise ValueError
                    gi = gi.sum_to_size(shape) if shape else gi.sum()
                except ValueError:
                    raise RuntimeError(f"Function {name} returned an invalid gradient at index "
                                       f"{i} - got {list(gi.shape)} but expected shape "
                                       f"compatible with {list(shape)}") from None
            result.append(gi)
        return result

    def release(self):
        ctx = self.__dict__.get("ctx")
        lease = getattr(ctx, "_lease", None)
        if lease is not None:
            lease.release()
        super().release()


class _FunctionMeta(type):
    """Each Function subclass gets its node class, named after it (grad_fn's name)."""

    def __init__(cls, name, bases, namespace):
        super().__init__(name, bases, namespace)
        cls._node = type(name, (_Recorded,), {"__module__": cls.__module__})  # <NameBackward>


class Function(metaclass=_FunctionMeta):
    """Subclass with static forward(ctx, *args) and backward(ctx, *grad_outputs) (or
    forward(*args) with setup_context(ctx, inputs, output)); call Subclass.apply(*args)."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom "
                                  "autograd.Function.")

    @staticmethod
    def setup_context(ctx, inputs, output):
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for "
                                  "your custom autograd.Function to use it with backward "
                                  "mode AD.")

    vjp = backward

    @staticmethod
    def jvp(ctx, *grad_inputs):
        raise NotImplementedError("forward-mode AD (jvp) is not supported in cygrad")

    def __init__(self, *args, **kwargs):
        raise RuntimeError("Legacy autograd function with non-static forward method is "
                           "deprecated. Please use new-style autograd function with static "
                           "forward method.")

    @classmethod
    def apply(cls, *args, **kwargs):
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        record = _local.grad_enabled and any(needs)
        ctx = FunctionCtx(needs)
        new_style = cls.setup_context is not Function.setup_context
        token = _state.swap("grad_enabled", False)
        try:
            if new_style:
                output = cls.forward(*args, **kwargs)
                cls.setup_context(ctx, args, output)
            else:
                output = cls.forward(ctx, *args, **kwargs)
        finally:
            _state.restore("grad_enabled", token)
        if not record:
            return output
        return _record(cls, ctx, args, output)


def _record(cls, ctx, args, output):
    single = not isinstance(output, tuple)
    outputs = (output,) if single else output
    floats = [o for o in outputs if isinstance(o, Tensor) and o.is_floating_point()
              and id(o) not in ctx._non_differentiable]
    if not floats:
        ctx._keep()
        return output
    dtypes = {o._data.dtype for o in floats}
    if len(dtypes) > 1:
        raise NotImplementedError(f"{cls.__name__}: differentiable outputs of different dtypes "
                                  f"({sorted(str(d) for d in dtypes)}) are not supported")
    parts, start = [], 0
    for o in floats:
        parts.append((start, start + o._data.size, o._data.shape))
        start += o._data.size
    if len(floats) == 1:  # the node's output is the output itself (a copy: no alias)
        flat = np.array(floats[0]._data, copy=True)
    else:
        flat = np.concatenate([np.asarray(o._data).reshape(-1) for o in floats])
    positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
    tensors = [args[i] for i in positions]
    slot = {id(o): k for k, o in enumerate(floats)}
    kinds = [slot.get(id(o)) for o in outputs]
    zeros = [np.zeros_like(o._data) if isinstance(o, Tensor) else None for o in outputs]

    def fill(grads):
        """One gradient per output: the differentiable ones' parts, zeros for the rest."""
        return [grads[k] if k is not None else
                (_wrap(z) if z is not None else None) for k, z in zip(kinds, zeros)]

    ctx._keep()
    node = apply(cls._node, *tensors, flat=flat, parts=parts, ctx=ctx, function=cls,
                 nargs=len(args), fill=fill,
                 inputs=[(i, tuple(args[i].shape), args[i]._data.dtype) for i in positions])
    views = [node] if len(floats) == 1 else [node[a:b].reshape(shape) for a, b, shape in parts]
    results = [views[k] if k is not None else o for k, o in zip(kinds, outputs)]
    # a saved output is, for a backward with create_graph=True, the result the caller got
    ctx._originals = tuple(views[slot[id(t)]] if t is not None and id(t) in slot else t
                           for t in ctx._originals)
    return results[0] if single else tuple(results)


def once_differentiable(fn):
    """torch's decorator for a backward that is not itself differentiable: its gradients,
    made under create_graph=True, raise if backward reaches them (torch's error)."""
    import functools

    @functools.wraps(fn)
    def wrapper(ctx, *args):
        return fn(ctx, *args)

    wrapper._once_differentiable = True
    return wrapper
