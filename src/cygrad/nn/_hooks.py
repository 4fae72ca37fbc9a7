"""The machinery of Module hooks: the handle that register_*_hook returns, and the graph nodes
through which a module's full backward hooks see its gradients.

Backward hooks work as torch's do. While `module(x)` runs, the tensors among its positional
inputs that require grad pass through one identity node, and the tensors among its outputs
through another. Backward reaches the output node once every gradient of the outputs has
arrived: the backward pre-hooks get grad_output there (and may replace it). It reaches the input
node after the module's own backward: the full backward hooks get (grad_input, grad_output)
there (and may replace grad_input). A node packs several tensors into one flat array (a copy)
so that one backward call sees all their gradients; a single tensor passes as a view.
"""

import math
import warnings

import numpy as np

from ..ops import Op
from ..tensor import Tensor, _local, _wrap, apply
from ..utils.hooks import RemovableHandle as _Handle


class RemovableHandle(_Handle):
    """What register_*_hook returns (cygrad.utils.hooks.RemovableHandle, torch's): remove()
    unregisters the hook, once; a context manager too. on_remove, if given, runs at each
    remove() (Module uses it to note that its layout changed)."""

    def __init__(self, hooks_dict, *, extra_dict=None, on_remove=None):
        super().__init__(hooks_dict, extra_dict=extra_dict)
        self._on_remove = on_remove

    def remove(self):
        super().remove()
        if self._on_remove is not None:
            self._on_remove()


# ---------------------------------------------------------------------- backward hooks

class BackwardHookFunction(Op):
    """y = the tensors packed into one flat array; backward gives `callback` the gradients of
    the tensors, split again, and returns what it returns (the module's backward hooks)"""

    rule = "dx_i = callback(g_i): the module's backward hooks see (and may replace) g"

    def forward(self, *arrays):
        self.shapes = [a.shape for a in arrays]
        return np.concatenate([a.reshape(-1) for a in arrays])

    def backward(self, g):
        grads, start = [], 0
        for shape in self.shapes:
            n = math.prod(shape)
            grads.append(g[start:start + n].reshape(shape))
            start += n
        return self.callback(grads)

    def vjp(self, g, inputs, output):
        """Backward with create_graph=True (ops/higher.py): the hooks ran in backward, which
        gave the values; the derivative is the identity's (a hook that replaced a gradient
        replaced its value only)."""
        grads, start = [], 0
        for shape in self.shapes:
            n = math.prod(shape)
            grads.append(g[start:start + n].reshape(shape))
            start += n
        return tuple(grads)


class BackwardHookView(BackwardHookFunction):
    """y = x (a view of it); backward passes g through `callback`"""

    view_of = 0

    def forward(self, x):
        self.shapes = [x.shape]
        return x.view()

    def backward(self, g):
        return self.callback([g])

    def vjp(self, g, inputs, output):
        return (g,)


class BackwardHook:
    """The backward hooks of one call of one module (torch.utils.hooks.BackwardHook's role)."""

    def __init__(self, module, hooks, pre_hooks):
        self.module, self.hooks, self.pre_hooks = module, hooks, pre_hooks
        self.grad_outputs = None
        self.n_inputs = self.n_outputs = -1
        self.input_index = self.output_index = None

    def setup_input_hook(self, args):
        self.n_inputs = len(args)
        args, self.input_index = self._through_node(args, self._input_grads)
        return args

    def setup_output_hook(self, result):
        single = not isinstance(result, tuple)
        outputs = (result,) if single else result
        self.n_outputs = len(outputs)
        outputs, self.output_index = self._through_node(outputs, self._output_grads)
        return outputs[0] if single else outputs

    @staticmethod
    def _through_node(values, callback):
        """values with their tensors that require grad replaced by the outputs of one hook
        node, and the positions of those tensors (None when there are none)."""
        if not _local.grad_enabled:
            return values, None
        index = [i for i, v in enumerate(values) if isinstance(v, Tensor) and v._rg]
        if not index:
            return values, None
        tensors = [values[i] for i in index]
        if len(tensors) == 1:
            new = [apply(BackwardHookView, tensors[0], callback=callback)]
        else:
            kinds = {t._data.dtype for t in tensors}
            if len(kinds) > 1:
                raise NotImplementedError(
                    "cygrad's module backward hooks pack the tensors that require grad into one "
                    f"node, which needs one dtype; got {sorted(str(k) for k in kinds)}")
            flat = apply(BackwardHookFunction, *tensors, callback=callback)
            new, start = [], 0
            for t in tensors:
                n = t._data.size
                new.append(flat.narrow(0, start, n).view(t.shape))
                start += n
        out = list(values)
        for i, t in zip(index, new):
            out[i] = t
        return tuple(out), index

    def _input_grads(self, grads):
        if self.grad_outputs is None:  # the outputs' node never ran: nothing to report
            return grads
        res = _pack(self.input_index, [_wrap(g) for g in grads], self.n_inputs)
        for hook in self.hooks:
            out = hook(self.module, res, self.grad_outputs)
            if out is None:
                continue
            if len(out) != len(res):
                raise RuntimeError(f"Backward hook returned an invalid number of grad_input, "
                                   f"got {len(out)}, but expected {len(res)}")
            res = tuple(out)
        self.grad_outputs = None
        return [_array(res[i], g, "grad_input") for i, g in zip(self.input_index, grads)]

    def _output_grads(self, grads):
        self.grad_outputs = _pack(self.output_index, [_wrap(g) for g in grads], self.n_outputs)
        for hook in self.pre_hooks:
            out = hook(self.module, self.grad_outputs)
            if out is None:
                continue
            if len(out) != len(self.grad_outputs):
                raise RuntimeError(f"Backward pre hook returned an invalid number of "
                                   f"grad_output, got {len(out)}, but expected "
                                   f"{len(self.grad_outputs)}")
            self.grad_outputs = tuple(out)
        local = self.grad_outputs
        if self.input_index is None and self.hooks:
            warnings.warn("Full backward hook is firing when gradients are computed with "
                          "respect to module outputs since no inputs require gradients.",
                          stacklevel=2)
            nothing = (None,) * self.n_inputs
            for hook in self.hooks:
                out = hook(self.module, nothing, self.grad_outputs)
                if out is not None and not (isinstance(out, tuple)
                                            and all(v is None for v in out)):
                    raise RuntimeError("Backward hook for Modules where no input requires "
                                       "gradient should always return None or None for all "
                                       "gradients.")
            self.grad_outputs = None
        return [_array(local[i], g, "grad_output") for i, g in zip(self.output_index, grads)]


def _pack(index, values, size):
    """A tuple of `size` entries: values at the positions in index, None elsewhere."""
    out = [None] * size
    for i, v in zip(index, values):
        out[i] = v
    return tuple(out)


def _array(value, like, what):
    """A hook's gradient (a Tensor or None) as the array backward passes on."""
    if value is None:
        return None
    if not isinstance(value, Tensor):
        raise TypeError(f"a backward hook's {what} must be Tensors or None, got "
                        f"{type(value).__name__}")
    if value._data.shape != like.shape:
        raise RuntimeError(f"a backward hook has changed the size of {what}: expected "
                           f"{tuple(like.shape)}, got {tuple(value.shape)}")
    if value._data.dtype != like.dtype:
        raise RuntimeError(f"a backward hook has changed the type of {what}: expected "
                           f"{like.dtype}, got {value._data.dtype}")
    return value._data
