"""The bridge to PyTorch: the same network, the same weights, in the other framework.

    torch_model = cygrad.interop.to_torch(model)      # a torch.nn module, weights copied
    model = cygrad.interop.from_torch(torch_model)    # and back

Supported layers, nested in Sequential: Linear, Conv1d, Conv2d, MaxPool1d/2d, AvgPool1d/2d,
AdaptiveAvgPool1d/2d, AdaptiveMaxPool1d/2d (with all their arguments), Flatten, Dropout, ReLU,
LeakyReLU, Tanh, Sigmoid, Identity. Weights are copied bitwise in their own dtype
(float32 or float64), so a round trip gives back the very same bits. A parameter (or a layer)
that appears under several names stays one object on the other side, so tied weights stay tied.
The training/eval mode is carried over. Neither direction draws random numbers.

PyTorch is imported only when one of these functions runs; cygrad itself never needs it.
"""

from collections import OrderedDict

import numpy as np

from . import nn
from . import random as _random

__all__ = ["to_torch", "from_torch"]

_SUPPORTED = ("Linear", "Conv1d", "Conv2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d",
              "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
              "Flatten", "Dropout", "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "Identity",
              "Sequential")
_CONVS = ("Conv1d", "Conv2d")
_POOLS = {  # the constructor arguments of each pool, as attributes of both frameworks' modules
    "MaxPool1d": ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"),
    "MaxPool2d": ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"),
    "AvgPool1d": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
    "AvgPool2d": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                  "divisor_override"),
    "AdaptiveAvgPool1d": ("output_size",), "AdaptiveAvgPool2d": ("output_size",),
    "AdaptiveMaxPool1d": ("output_size", "return_indices"),
    "AdaptiveMaxPool2d": ("output_size", "return_indices"),
}


def _conv_args(m):
    """A conv layer's constructor arguments after the channels (the same in both frameworks)."""
    return dict(kernel_size=m.kernel_size, stride=m.stride, padding=m.padding,
                dilation=m.dilation, groups=m.groups, padding_mode=m.padding_mode)


def _pool_args(m):
    return {name: getattr(m, name) for name in _POOLS[type(m).__name__]}


def _torch():
    try:
        import torch
    except ImportError as err:
        raise ImportError("cygrad.interop needs PyTorch, which is not installed: "
                          "pip install torch (or pip install 'cygrad[torch]')") from err
    return torch


def _unsupported(module, where):
    return TypeError(f"unsupported layer {type(module).__name__} at {where or 'the top level'}: "
                     f"the bridge converts {', '.join(_SUPPORTED)}")


# ---------------------------------------------------------------------- cygrad -> torch

def to_torch(model):
    """An equivalent torch.nn module (Sequential or single layer) with copies of the weights."""
    torch = _torch()
    if not isinstance(model, nn.Module):
        raise TypeError(f"to_torch converts a cygrad nn.Module, got {type(model).__name__}")
    return _ToTorch(torch).module(model, "")


class _ToTorch:
    def __init__(self, torch):
        self.torch, self.tnn = torch, torch.nn
        self.params, self.modules = {}, {}  # id(cygrad object) -> torch object: keeps ties

    def module(self, m, where):
        if id(m) in self.modules:
            return self.modules[id(m)]
        out = self._convert(m, where)
        out.train(m.training)
        self.modules[id(m)] = out
        return out

    def param(self, p):
        if p is None:
            return None
        if id(p) not in self.params:
            data = self.torch.from_numpy(np.array(p._data, copy=True))
            self.params[id(p)] = self.tnn.Parameter(data, requires_grad=p.requires_grad)
        return self.params[id(p)]

    def _with_weights(self, cls, m, *args, **kwargs):
        # skip_init: no random initialisation that the copied weights would overwrite anyway
        layer = self.tnn.utils.skip_init(cls, *args, bias=m.bias is not None,
                                         dtype=self._dtype(m.weight), **kwargs)
        layer.weight = self.param(m.weight)
        layer.bias = self.param(m.bias)
        return layer

    def _dtype(self, p):
        return {np.dtype(np.float32): self.torch.float32,
                np.dtype(np.float64): self.torch.float64}[p.dtype]

    def _convert(self, m, where):
        tnn, kind = self.tnn, type(m)
        if kind is nn.Sequential:
            return tnn.Sequential(OrderedDict(
                (name, self.module(child, f"{where}.{name}" if where else name))
                for name, child in m.named_children()))
        if kind is nn.Linear:
            return self._with_weights(tnn.Linear, m, m.in_features, m.out_features)
        name = kind.__name__
        if kind is getattr(nn, name, None) and name in _CONVS:
            return self._with_weights(getattr(tnn, name), m, m.in_channels, m.out_channels,
                                      **_conv_args(m))
        if kind is getattr(nn, name, None) and name in _POOLS:
            return getattr(tnn, name)(**_pool_args(m))
        if kind is nn.Flatten:
            return tnn.Flatten(m.start_dim, m.end_dim)
        if kind is nn.Dropout:
            return tnn.Dropout(m.p)
        if kind is nn.LeakyReLU:
            return tnn.LeakyReLU(m.negative_slope)
        simple = {nn.ReLU: tnn.ReLU, nn.Tanh: tnn.Tanh, nn.Sigmoid: tnn.Sigmoid,
                  nn.Identity: tnn.Identity}
        if kind in simple:
            return simple[kind]()
        raise _unsupported(m, where)


# ---------------------------------------------------------------------- torch -> cygrad

def from_torch(module):
    """An equivalent cygrad module (Sequential or single layer) with copies of the weights."""
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch converts a torch.nn.Module, got {type(module).__name__}")
    with _random.fork_rng():  # layer constructors draw initial weights: undo it
        return _FromTorch(torch).module(module, "")


class _FromTorch:
    def __init__(self, torch):
        self.torch, self.tnn = torch, torch.nn
        self.params, self.modules = {}, {}

    def module(self, m, where):
        if id(m) in self.modules:
            return self.modules[id(m)]
        out = self._convert(m, where)
        out.train(m.training)
        self.modules[id(m)] = out
        return out

    def param(self, p, where):
        if p is None:
            return None
        if id(p) not in self.params:
            data = p.detach().cpu().numpy().copy()
            self.params[id(p)] = nn.Parameter(data, requires_grad=p.requires_grad)
        return self.params[id(p)]

    def dtype(self, m, where):
        """The numpy dtype of m's weight: float32 or float64, else TypeError."""
        dtypes = {self.torch.float32: np.float32, self.torch.float64: np.float64}
        if m.weight.dtype not in dtypes:
            raise TypeError(f"{where or type(m).__name__}: parameters of dtype {m.weight.dtype}; "
                            "cygrad computes in float32 or float64 (convert with module.float() "
                            "or module.double() first)")
        return dtypes[m.weight.dtype]

    def _with_weights(self, layer, m, where):
        layer.weight = self.param(m.weight, f"{where}.weight" if where else "weight")
        layer.bias = self.param(m.bias, f"{where}.bias" if where else "bias")
        return layer

    def _convert(self, m, where):
        tnn, kind = self.tnn, type(m)
        if kind is tnn.Sequential:  # not named_children(): it lists a repeated layer once
            return nn.Sequential(OrderedDict(
                (name, self.module(child, f"{where}.{name}" if where else name))
                for name, child in m._modules.items() if child is not None))
        if kind is tnn.Linear:
            layer = nn.Linear(m.in_features, m.out_features, m.bias is not None,
                              dtype=self.dtype(m, where))
            return self._with_weights(layer, m, where)
        name = kind.__name__
        if kind is getattr(tnn, name, None) and name in _CONVS:
            _require(m, where, padding_mode="zeros")
            layer = getattr(nn, name)(m.in_channels, m.out_channels, bias=m.bias is not None,
                                      dtype=self.dtype(m, where), **_conv_args(m))
            return self._with_weights(layer, m, where)
        if kind is getattr(tnn, name, None) and name in _POOLS:
            return getattr(nn, name)(**_pool_args(m))
        if kind is tnn.Flatten:
            return nn.Flatten(m.start_dim, m.end_dim)
        if kind is tnn.Dropout:
            return nn.Dropout(m.p)
        if kind is tnn.LeakyReLU:
            return nn.LeakyReLU(m.negative_slope)
        simple = {tnn.ReLU: nn.ReLU, tnn.Tanh: nn.Tanh, tnn.Sigmoid: nn.Sigmoid,
                  tnn.Identity: nn.Identity}
        if kind in simple:
            return simple[kind]()
        raise _unsupported(m, where)


def _require(m, where, **settings):
    """Raise ValueError naming the first setting of m that cygrad's layer does not have."""
    for name, wanted in settings.items():
        value = getattr(m, name)
        if any(v != wanted for v in (value if isinstance(value, tuple) else (value,))):
            raise ValueError(f"{where or type(m).__name__}: {type(m).__name__} with "
                             f"{name}={value!r} is not supported (cygrad's layer has "
                             f"{name}={wanted!r})")
