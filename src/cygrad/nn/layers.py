"""Layers, with PyTorch's constructor arguments, weight layouts and default initialisation."""

import math

import numpy as np

from .. import dtypes
from ..ops import registry
from ..ops.elementwise import _bind
from ..ops.layers import linear_activation_op
from ..tensor import _wrap, check_device
from . import functional as F
from . import init
from ._functional_dropout import _check_probability
from .module import Module, Parameter


def _dtype(dtype):
    """The numpy dtype of a layer's parameters: the default float dtype unless given."""
    d = dtypes.get_default_dtype() if dtype is None else dtypes.as_dtype(dtype)
    if not d.is_floating_point:  # (torch: RuntimeError, as its parameters must require grad)
        raise RuntimeError(f"unsupported dtype {d.name} for layer parameters: they must be "
                           "float32 or float64 (only floating point tensors can require "
                           "gradients)")
    return d.numpy


class Linear(Module):
    """y = x @ W.T + b; x (..., in_features) -> (..., out_features). W (out, in): row i is
    unit i's incoming weights."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        check_device(device)
        self.in_features = F._size(in_features, "Linear: in_features", 0)
        self.out_features = F._size(out_features, "Linear: out_features", 0)
        dtype = _dtype(dtype)
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        self.register_parameter("bias", Parameter(np.empty(out_features, dtype=dtype))
                                if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        """PyTorch's default: kaiming_uniform_(a=sqrt(5)) for W, i.e. W, b ~ U(-k, k) with
        k = 1/sqrt(in_features)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        p = self._parameters  # not self.weight: Module.__getattr__ is slow
        return F.linear(x, p["weight"], p["bias"])

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class LazyLinear(Linear):
    """Linear whose in_features is read from its first input (torch.nn.LazyLinear): until
    then weight is (out_features, 0) and bias uninitialised; the first forward sizes them in
    place (the same Parameter objects), initialises them as Linear's and turns the module into
    a Linear."""

    cls_to_become = Linear

    def __init__(self, out_features, bias=True, device=None, dtype=None):
        Module.__init__(self)
        check_device(device)
        self.in_features = 0
        self.out_features = F._size(out_features, "LazyLinear: out_features", 0)
        dtype = _dtype(dtype)
        self.weight = Parameter(np.empty((out_features, 0), dtype=dtype))
        self.register_parameter("bias", Parameter(np.empty(out_features, dtype=dtype))
                                if bias else None)

    def has_uninitialized_params(self):
        return True

    def reset_parameters(self):
        if self.in_features:
            Linear.reset_parameters(self)

    def forward(self, x):
        self.in_features = int(x.shape[-1])
        weight = self._parameters["weight"]
        weight.data = _wrap(np.empty((self.out_features, self.in_features),
                                     dtype=weight._data.dtype))
        Linear.reset_parameters(self)
        self.__class__ = self.cls_to_become
        return Linear.forward(self, x)


class Bilinear(Module):
    """y = x1^T W x2 + b per output (F.bilinear); x1 (..., in1), x2 (..., in2) -> (..., out).
    W (out, in1, in2) and b (out,) ~ U(-k, k), k = 1/sqrt(in1_features), as torch."""

    def __init__(self, in1_features, in2_features, out_features, bias=True, device=None,
                 dtype=None):
        super().__init__()
        check_device(device)
        self.in1_features = F._size(in1_features, "Bilinear: in1_features", 0)
        self.in2_features = F._size(in2_features, "Bilinear: in2_features", 0)
        self.out_features = F._size(out_features, "Bilinear: out_features", 0)
        dtype = _dtype(dtype)
        self.weight = Parameter(np.empty((out_features, in1_features, in2_features), dtype))
        self.register_parameter("bias", Parameter(np.empty(out_features, dtype=dtype))
                                if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1 / math.sqrt(self.weight.shape[1]) if self.weight.shape[1] > 0 else 0
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1, input2):
        p = self._parameters
        return F.bilinear(input1, input2, p["weight"], p["bias"])

    def extra_repr(self):
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")


class Flatten(Module):
    """Merge dimensions start_dim..end_dim: (N, C, H, W) -> (N, C*H*W) by default
    (input.flatten(start_dim, end_dim): IndexError for a dim out of range)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dimension dim into unflattened_size: Unflatten(1, (C, H, W)) turns (N, C*H*W)
    into (N, C, H, W) (input.unflatten(dim, unflattened_size); one size may be -1)."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        if isinstance(dim, str):
            raise TypeError("Unflatten: named dimensions are not supported in cygrad; give dim "
                            "as an int")
        if not isinstance(dim, int) or isinstance(dim, bool):
            raise TypeError(f"invalid argument 'dim': expected an int, got {type(dim).__name__}")
        if not isinstance(unflattened_size, (tuple, list)):
            raise TypeError("unflattened_size must be tuple of ints, but found type "
                            f"{type(unflattened_size).__name__}")
        for size in unflattened_size:
            if not isinstance(size, int) or isinstance(size, bool):
                raise TypeError("unflattened_size must be tuple of ints, but found element of "
                                f"type {type(size).__name__} at pos {unflattened_size.index(size)}")
        self.dim, self.unflattened_size = dim, unflattened_size

    def forward(self, input):
        return input.unflatten(self.dim, self.unflattened_size)

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class _DropoutNd(Module):
    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        self.p = _check_probability(p)
        self.inplace = inplace

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """While training, zero each element with probability p and scale the rest by 1/(1-p)
    (p = 1 zeroes everything); the identity in eval mode. Masks come from cygrad's generator."""

    def forward(self, input):
        return F.dropout(input, self.p, self.training, self.inplace)


class Dropout1d(_DropoutNd):
    """Dropout of whole channels of (N, C, L) or (C, L) inputs."""

    def forward(self, input):
        return F.dropout1d(input, self.p, self.training, self.inplace)


class Dropout2d(_DropoutNd):
    """Dropout of whole channels of (N, C, H, W) or (C, H, W) inputs."""

    def forward(self, input):
        return F.dropout2d(input, self.p, self.training, self.inplace)


class Dropout3d(_DropoutNd):
    """Dropout of whole channels of (N, C, D, H, W) or (C, D, H, W) inputs."""

    def forward(self, input):
        return F.dropout3d(input, self.p, self.training, self.inplace)


class AlphaDropout(_DropoutNd):
    """Dropout that keeps a SELU network's mean and variance (F.alpha_dropout)."""

    def forward(self, input):
        return F.alpha_dropout(input, self.p, self.training)


class FeatureAlphaDropout(_DropoutNd):
    """Alpha dropout of whole channels (F.feature_alpha_dropout)."""

    def forward(self, input):
        return F.feature_alpha_dropout(input, self.p, self.training)


class Identity(Module):
    """y = x; any constructor arguments are accepted and ignored (as torch's)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


def _activation_module(entry):
    """The nn module of an elementwise entry (nn.Tanh, nn.LeakyReLU(negative_slope=0.01)...):
    its parameters as constructor arguments in torch's order, then `inplace`."""
    names, defaults = entry.param_names, dict(entry.params)

    def __init__(self, *args, inplace=False, **kwargs):
        Module.__init__(self)
        if len(args) > len(names):  # inplace given positionally, after the parameters
            inplace, args = args[len(names)], args[:len(names)]
        params = _bind(entry, defaults, args, kwargs)
        for name in names:
            setattr(self, name, params[name])
        self.inplace = bool(inplace)

    def forward(self, input):
        params = {name: self.__dict__[name] for name in names}
        if self.inplace:
            return entry.inplace(input, **params)
        return entry.function(input, **params)

    def extra_repr(self):
        parts = [f"{name}={self.__dict__[name]!r}" for name in names]
        if self.inplace:
            parts.append("inplace=True")
        return ", ".join(parts)

    doc = f"y = {entry.name}(x) elementwise (cygrad.{entry.name}); backward: {entry.rule}."
    return type(entry.module, (Module,), {"__init__": __init__, "forward": forward,
                                          "extra_repr": extra_repr, "__doc__": doc,
                                          "entry": entry, "__module__": __name__})


# nn.Tanh, nn.ReLU, nn.GELU ...: one module per op-table entry that names one
ACTIVATIONS = {name: _activation_module(entry) for name, entry in registry.MODULES.items()}
globals().update(ACTIVATIONS)


class Softmax(Module):
    """softmax along dim"""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log_softmax along dim"""

    def forward(self, input):
        return F.log_softmax(input, self.dim)


def _fusion_plan(modules):
    """[(module, op, params)] for nn.Sequential's forward: a Linear fused with the activation
    module after it (which is then skipped: op is the fused op class of the activation's
    op-table entry, ops.layers.linear_activation_op), a plain Linear alone ("identity"), or
    (module, None, None) for any other module, run as module(x) (through its hooks)."""
    plan = []
    modules = iter(modules)
    m = next(modules, _END)
    while m is not _END:
        after = next(modules, _END)
        entry = _fusable(m, after)
        if entry is None:
            plan.append((m, "identity" if _plain(m, Linear) else None, None))
            m = after
        else:
            plan.append((m, linear_activation_op(entry),
                         {k: after.__dict__[k] for k in entry.param_names}))
            m = next(modules, _END)
    return plan


_END = object()  # no module is this


def _plain(module, kind):
    """module is of exactly this class, with no forward of its own (a wrapper watching it)
    and no hooks: running its arithmetic directly is the same as calling it."""
    state = module.__dict__
    return (type(module) is kind and "forward" not in state
            and not (state["_forward_pre_hooks"] or state["_forward_hooks"]
                     or state["_backward_pre_hooks"] or state["_backward_hooks"]))


def _fusable(module, after):
    """The activation's op-table entry when module is a plain Linear with a bias and `after`
    a plain activation module (not in place) whose kernel has the bias-fused forms; otherwise
    None."""
    if not _plain(module, Linear) or module._parameters["bias"] is None:
        return None
    entry = getattr(type(after), "entry", None)
    if (entry is None or not entry.fusable or not _plain(after, ACTIVATIONS.get(entry.module))
            or after.__dict__.get("inplace")):
        return None
    return entry
