"""Layers, with PyTorch's constructor arguments, weight layouts and default initialisation."""

import math
from collections import OrderedDict

import numpy as np

from .. import dtypes
from ..ops import registry
from ..ops.elementwise import _bind
from . import functional as F
from . import init
from .module import Module, Parameter, _layout


def _dtype(dtype):
    """The numpy dtype of a layer's parameters: the default float dtype unless given."""
    d = dtypes.get_default_dtype() if dtype is None else dtypes.as_dtype(dtype)
    if not d.is_floating_point:
        raise TypeError(f"unsupported dtype {d.name} for layer parameters: they must be float32 "
                        "or float64")
    return d.numpy


class Linear(Module):
    """y = x @ W.T + b; x (..., in_features) -> (..., out_features). W (out, in): row i is
    unit i's incoming weights."""

    def __init__(self, in_features, out_features, bias=True, dtype=None):
        super().__init__()
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


class Flatten(Module):
    """Merge dimensions start_dim..end_dim: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        start, end = self.start_dim % max(x.ndim, 1), self.end_dim % max(x.ndim, 1)
        if start > end:
            raise ValueError(f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim}) "
                             f"does not fit an input of shape {x.shape}")
        return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1:])

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """While training, zero each element with probability p and scale the rest by 1/(1-p);
    the identity in eval mode. Masks come from cygrad.random.generator()."""

    def __init__(self, p=0.5):
        super().__init__()
        self.p = F._check_probability(p)

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class Identity(Module):
    def forward(self, x):
        return x


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


class Sequential(Module):
    """Modules applied in order; indexable (model[0], model[-1], model[1:]). Built from modules
    or from one OrderedDict name -> module."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            items = list(modules[0].items())
        else:
            items = [(str(i), m) for i, m in enumerate(modules)]
        for name, m in items:
            if not isinstance(m, Module):
                raise TypeError(f"Sequential takes Modules, got {type(m).__name__} at {name}")
            self._modules[name] = m

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(OrderedDict(list(self._modules.items())[index]))
        items = list(self._modules.values())
        if not -len(items) <= index < len(items):
            raise IndexError(f"index {index} is out of range for a Sequential of "
                             f"{len(items)} modules")
        return items[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    _plan = None  # (module._layout count, [(module, fused activation or None, slope)])

    def forward(self, x):
        """The modules in order; a Linear followed by its activation runs as one fused layer
        (F._linear_activation: the same graph nodes and bits, one kernel pass each way)."""
        plan = self._plan
        if plan is None or plan[0] != _layout[0]:  # first call, or some module changed since
            plan = (_layout[0], self._fusion_plan())
            object.__setattr__(self, "_plan", plan)  # not a module change itself
        for module, entry, params in plan[1]:
            if entry is None:
                x = module(x)
            else:
                p = module._parameters
                if entry == "identity":  # Linear.forward, without the call layers
                    x = F.linear(x, p["weight"], p["bias"])
                else:
                    x = F._linear_activation(x, p["weight"], p["bias"], entry, params)
        return x

    def _fusion_plan(self):
        """[(module, entry, params)]: a Linear fused with the activation module after it
        (which is then skipped: entry is the activation's op-table entry), a plain Linear alone
        ("identity"), or (module, None, None) for any other module, run as module(x)."""
        plan = []
        modules = iter(self._modules.values())
        m = next(modules, _END)
        while m is not _END:
            after = next(modules, _END)
            entry = _fusable(m, after)
            if entry is None:
                plain = type(m) is Linear and "forward" not in m.__dict__
                plan.append((m, "identity" if plain else None, None))
                m = after
            else:
                plan.append((m, entry, {k: after.__dict__[k] for k in entry.param_names}))
                m = next(modules, _END)
        return plan


_END = object()  # no module is this


def _fusable(module, after):
    """The activation's op-table entry when module is a plain Linear with a bias and `after`
    a plain activation module whose kernel has the bias-fused forms (neither with a forward of
    its own: a subclass, or one wrapped to watch its output): otherwise None."""
    if type(module) is not Linear or "forward" in module.__dict__:
        return None
    entry = getattr(type(after), "entry", None)
    if (entry is None or not entry.fusable or type(after) is not ACTIVATIONS.get(entry.module)
            or "forward" in after.__dict__ or after.__dict__.get("inplace")
            or module._parameters["bias"] is None):
        return None
    return entry
