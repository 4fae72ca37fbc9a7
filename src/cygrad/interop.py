"""The bridge to PyTorch: the same network, the same weights, in the other framework.

    torch_model = cygrad.interop.to_torch(model)      # a torch.nn module, weights copied
    model = cygrad.interop.from_torch(torch_model)    # and back

Supported: the containers (Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict),
Linear, Conv1d, Conv2d, MaxPool1d/2d, AvgPool1d/2d, AdaptiveAvgPool1d/2d, AdaptiveMaxPool1d/2d
(with all their arguments), Flatten, Unflatten, Identity, the dropouts, every activation module
of the op table (nn.ReLU, nn.GELU, ...: the list is derived from the table), Softmax,
LogSoftmax, the loss modules, CosineSimilarity and PairwiseDistance, nested in any of the
containers. Parameters and buffers are copied bitwise in their own dtype (float32 or float64),
so a round trip gives back the very same bits. A parameter (or a layer) that appears under
several names stays one object on the other side, so tied weights stay tied. The training/eval
mode and requires_grad are carried over. Neither direction draws random numbers.

A layer kind joins the bridge with one `register` call: its torch class's name and a function
giving its constructor arguments, which must have the same names and meanings in both
frameworks (they are read from either side's module); its parameters and buffers are then
copied by name.

PyTorch is imported only when one of these functions runs; cygrad itself never needs it.
"""

import inspect

import numpy as np

from . import nn
from . import random as _random
from .tensor import _wrap

__all__ = ["to_torch", "from_torch", "register"]

# cygrad class -> (torch class name, args(module) -> constructor keyword arguments)
_LAYERS = {}
_CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")


def register(cygrad_class, torch_name, args):
    """Teach the bridge a layer kind: cygrad_class <-> torch.nn.<torch_name>, built from
    args(module), a dict of constructor arguments (the same in both frameworks); parameters and
    buffers are then copied by name. args may raise ValueError for a setting the other side
    lacks."""
    _LAYERS[cygrad_class] = (torch_name, args)


def _attrs(*names):
    return lambda m: {name: getattr(m, name) for name in names}


def _linear_args(m):
    return dict(in_features=m.in_features, out_features=m.out_features, bias=m.bias is not None)


register(nn.Linear, "Linear", _linear_args)
register(nn.Flatten, "Flatten", _attrs("start_dim", "end_dim"))
register(nn.Unflatten, "Unflatten", _attrs("dim", "unflattened_size"))
register(nn.Identity, "Identity", _attrs())
for _dropout in (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
                 nn.FeatureAlphaDropout):
    register(_dropout, _dropout.__name__, _attrs("p", "inplace"))
register(nn.Softmax, "Softmax", _attrs("dim"))
register(nn.LogSoftmax, "LogSoftmax", _attrs("dim"))
for _loss in (nn.L1Loss, nn.MSELoss, nn.NLLLoss, nn.CrossEntropyLoss, nn.BCELoss,
              nn.BCEWithLogitsLoss, nn.SmoothL1Loss, nn.HuberLoss, nn.KLDivLoss):
    _names = [n for n in inspect.signature(_loss.__init__).parameters
              if n not in ("self", "size_average", "reduce", "weight", "pos_weight")]
    register(_loss, _loss.__name__, _attrs(*_names))
register(nn.CosineSimilarity, "CosineSimilarity", _attrs("dim", "eps"))
register(nn.PairwiseDistance, "PairwiseDistance",
         lambda m: dict(p=m.norm, eps=m.eps, keepdim=m.keepdim))
_POOLS = {  # the constructor arguments of each pool, as attributes of both frameworks' modules
    nn.MaxPool1d: ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"),
    nn.MaxPool2d: ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"),
    nn.AvgPool1d: ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
    nn.AvgPool2d: ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                   "divisor_override"),
    nn.AdaptiveAvgPool1d: ("output_size",), nn.AdaptiveAvgPool2d: ("output_size",),
    nn.AdaptiveMaxPool1d: ("output_size", "return_indices"),
    nn.AdaptiveMaxPool2d: ("output_size", "return_indices"),
}
for _pool, _pool_names in _POOLS.items():
    register(_pool, _pool.__name__, _attrs(*_pool_names))
for _conv in (nn.Conv1d, nn.Conv2d):
    register(_conv, _conv.__name__, lambda m: _conv_args(m))


def _activation_args(entry):
    """An activation's constructor arguments: its op-table parameters (and `inplace`, where
    torch's module takes it)."""
    def args(m):
        out = {name: getattr(m, name) for name in entry.param_names}
        if getattr(m, "inplace", False):
            out["inplace"] = True
        return out
    return args


for _name, _cls in nn.ACTIVATIONS.items():  # nn.Tanh, nn.LeakyReLU, nn.GELU...: the op table's
    register(_cls, _name, _activation_args(_cls.entry))


def _conv_args(m):
    """A conv layer's constructor arguments (the same in both frameworks; cygrad pads with
    zeros only)."""
    _require(m, padding_mode="zeros")
    return dict(in_channels=m.in_channels, out_channels=m.out_channels,
                kernel_size=m.kernel_size, stride=m.stride, padding=m.padding,
                dilation=m.dilation, groups=m.groups, bias=m.bias is not None,
                padding_mode=m.padding_mode)


def _require(m, **settings):
    """Raise ValueError naming the first setting of m that the other side's layer lacks."""
    for name, wanted in settings.items():
        value = getattr(m, name, wanted)
        if any(v != wanted for v in (value if isinstance(value, tuple) else (value,))):
            raise ValueError(f"{type(m).__name__} with {name}={value!r} is not supported "
                             f"(cygrad's layer has {name}={wanted!r})")


def _torch():
    try:
        import torch
    except ImportError as err:
        raise ImportError("cygrad.interop needs PyTorch, which is not installed: "
                          "pip install torch (or pip install 'cygrad[torch]')") from err
    return torch


def _supported():
    return ", ".join(sorted({name for name, _ in _LAYERS.values()} | set(_CONTAINERS)
                            | {"ParameterList", "ParameterDict"}))


def _unsupported(module, where):
    return TypeError(f"unsupported layer {type(module).__name__} at {where or 'the top level'}: "
                     f"the bridge converts {_supported()}")


class _Bridge:
    """One conversion: the objects made so far (by id of the source object), so that a
    parameter or module met twice is converted once and stays shared."""

    def __init__(self, torch):
        self.torch = torch
        self.made = {}

    def module(self, m, where):
        if id(m) in self.made:
            return self.made[id(m)]
        out = self.convert(m, where)
        for name, p in m._parameters.items():
            self.set_param(out, name, self.param(p))
        for name, b in m._buffers.items():
            out.register_buffer(name, None if b is None else self.copy(b),
                                persistent=name not in m._non_persistent_buffers_set)
        out.training = m.training  # this module's own mode (its children keep theirs)
        self.made[id(m)] = out
        return out

    def param(self, p):
        if p is None:
            return None
        if id(p) not in self.made:
            self.made[id(p)] = self.make_param(p)
        return self.made[id(p)]

    def children(self, m, where):
        return [(name, self.module(child, f"{where}.{name}" if where else name))
                for name, child in m._modules.items() if child is not None]

    def arguments(self, m, where, args):
        try:
            return args(m)
        except ValueError as err:
            raise ValueError(f"{where or type(m).__name__}: {err}") from None


# ---------------------------------------------------------------------- cygrad -> torch

def to_torch(model):
    """An equivalent torch.nn module with copies of the parameters and buffers."""
    torch = _torch()
    if not isinstance(model, nn.Module):
        raise TypeError(f"to_torch converts a cygrad nn.Module, got {type(model).__name__}")
    return _ToTorch(torch).module(model, "")


class _ToTorch(_Bridge):
    def convert(self, m, where):
        tnn, kind = self.torch.nn, type(m)
        if kind.__name__ in _CONTAINERS and kind is getattr(nn, kind.__name__):
            out = getattr(tnn, kind.__name__)()
            for name, child in self.children(m, where):
                out.add_module(name, child)
            return out
        if kind in (nn.ParameterList, nn.ParameterDict):
            return getattr(tnn, kind.__name__)()
        if kind not in _LAYERS:
            raise _unsupported(m, where)
        torch_name, args = _LAYERS[kind]
        kwargs = self.arguments(m, where, args)
        cls = getattr(tnn, torch_name)
        first = next((p for p in m._parameters.values() if p is not None), None)
        if first is None:
            return cls(**kwargs)
        if "dtype" in inspect.signature(cls.__init__).parameters:
            kwargs["dtype"] = {np.dtype(np.float32): self.torch.float32,
                               np.dtype(np.float64): self.torch.float64}[first.numpy().dtype]
        return tnn.utils.skip_init(cls, **kwargs)  # no random initialisation to overwrite

    def copy(self, t):
        return self.torch.from_numpy(np.array(t.numpy(), copy=True))

    def make_param(self, p):
        return self.torch.nn.Parameter(self.copy(p), requires_grad=p.requires_grad)

    def set_param(self, out, name, p):
        if isinstance(out, self.torch.nn.ParameterList):
            out.append(p)
        elif isinstance(out, self.torch.nn.ParameterDict):
            out[name] = p
        else:
            setattr(out, name, p)  # None too (an absent bias)


# ---------------------------------------------------------------------- torch -> cygrad

def from_torch(module):
    """An equivalent cygrad module with copies of the parameters and buffers."""
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch converts a torch.nn.Module, got {type(module).__name__}")
    with _random.fork_rng():  # layer constructors draw initial weights: undo it
        return _FromTorch(torch).module(module, "")


class _FromTorch(_Bridge):
    def convert(self, m, where):
        tnn, kind, name = self.torch.nn, type(m), type(m).__name__
        if name in _CONTAINERS and kind is getattr(tnn, name):
            out = getattr(nn, name)()
            for child_name, child in self.children(m, where):
                out.add_module(child_name, child)
            return out
        if name in ("ParameterList", "ParameterDict") and kind is getattr(tnn, name):
            return getattr(nn, name)()
        layers = {torch_name: (cls, args) for cls, (torch_name, args) in _LAYERS.items()}
        if name not in layers or kind is not getattr(tnn, name, None):
            raise _unsupported(m, where)
        for what, t in [*m._parameters.items(), *m._buffers.items()]:
            if t is not None and t.is_floating_point() and t.dtype not in _float_dtypes(self.torch):
                raise TypeError(f"{where or name}: {what} of dtype {t.dtype}; cygrad computes "
                                "in float32 or float64 (convert with module.float() or "
                                "module.double() first)")
        cls, args = layers[name]
        kwargs = self.arguments(m, where, args)
        first = next((p for p in m._parameters.values() if p is not None), None)
        if first is not None and "dtype" in inspect.signature(cls.__init__).parameters:
            kwargs["dtype"] = _float_dtypes(self.torch)[first.dtype]  # parameters made in it
        return cls(**kwargs)

    def copy(self, t):
        return _wrap(t.detach().cpu().numpy().copy())

    def make_param(self, p):
        return nn.Parameter(self.copy(p), requires_grad=p.requires_grad)

    def set_param(self, out, name, p):
        if isinstance(out, nn.ParameterList):
            out.append(p)
        elif isinstance(out, nn.ParameterDict):
            out[name] = p
        else:
            setattr(out, name, p)


def _float_dtypes(torch):
    """torch's float dtypes -> numpy's (the dtypes cygrad computes in)."""
    return {torch.float32: np.float32, torch.float64: np.float64}
