"""The lazy layers (torch.nn.LazyConv1d ... LazyInstanceNorm3d): the input size (in_channels,
num_features) is read from the first input. Until then the parameters and running statistics
are empty and the module draws no random numbers; the first call sizes them in place (the same
Parameter objects: an optimizer made before it steps them), initialises them as the full
layer's reset_parameters would (torch's draws, in torch's order) and turns the module into that
layer (`cls_to_become`), as torch's. LazyLinear lives in layers.py."""

import numpy as np

from ..tensor import _wrap
from .batchnorm import (
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
)
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d

__all__ = ["LazyConv1d", "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d",
           "LazyConvTranspose2d", "LazyConvTranspose3d", "LazyBatchNorm1d", "LazyBatchNorm2d",
           "LazyBatchNorm3d", "LazyInstanceNorm1d", "LazyInstanceNorm2d", "LazyInstanceNorm3d"]


class _Lazy:
    """What the lazy layers share: pending until the first call, which sizes the tensors
    (initialize_parameters), initialises them and turns the module into cls_to_become."""

    cls_to_become = None

    def has_uninitialized_params(self):
        return self.__dict__.get("_pending", False)

    def _size(self, table, name, shape):
        """Give the tensor `name` of `table` the shape (new, uninitialised values)."""
        t = self.__dict__[table].get(name)
        if t is not None:
            t.data = _wrap(np.empty(shape, t._data.dtype))

    def reset_parameters(self):
        if not self.has_uninitialized_params():
            super().reset_parameters()

    def forward(self, input, *args, **kwargs):
        self.initialize_parameters(input)
        self.__dict__.pop("_pending", None)
        self.reset_parameters()
        self.__class__ = self.cls_to_become
        return self.forward(input, *args, **kwargs)


class _LazyConv(_Lazy):
    def _start(self):
        """After the full layer's __init__ (run with in_channels = groups): in_channels 0 and
        the weight empty, as torch's before the first call."""
        self.in_channels = 0
        self._size("_parameters", "weight", self._weight_shape(0))

    def _weight_shape(self, in_channels):
        if self._transposed:
            return (in_channels, self.out_channels // self.groups) + self.kernel_size
        return (self.out_channels, in_channels // self.groups) + self.kernel_size

    def initialize_parameters(self, input):
        d = self._dims
        if input.dim() not in (d + 1, d + 2):
            raise RuntimeError(f"Expected {d + 1}D (unbatched) or {d + 2}D (batched) input to "
                               f"{type(self).__name__}, but got input of size: {input.shape}")
        channels = int(input.shape[1] if input.dim() == d + 2 else input.shape[0])
        if channels % self.groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        self.in_channels = channels
        self._size("_parameters", "weight", self._weight_shape(channels))


def _conv(name, base):
    def __init__(self, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        self.__dict__["_pending"] = True
        base.__init__(self, groups, out_channels, kernel_size, stride, padding, dilation,
                      groups, bias, padding_mode, device, dtype)
        self._start()

    doc = (f"{base.__name__} whose in_channels is read from its first input "
           f"(torch.nn.{name}); see the module docstring.")
    return type(name, (_LazyConv, base), {"__init__": __init__, "cls_to_become": base,
                                          "__doc__": doc, "__module__": __name__})


def _conv_transpose(name, base):
    def __init__(self, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 groups=1, bias=True, dilation=1, padding_mode="zeros", device=None,
                 dtype=None):
        self.__dict__["_pending"] = True
        base.__init__(self, groups, out_channels, kernel_size, stride, padding, output_padding,
                      groups, bias, dilation, padding_mode, device, dtype)
        self._start()

    doc = (f"{base.__name__} whose in_channels is read from its first input "
           f"(torch.nn.{name}); see the module docstring.")
    return type(name, (_LazyConv, base), {"__init__": __init__, "cls_to_become": base,
                                          "__doc__": doc, "__module__": __name__})


LazyConv1d = _conv("LazyConv1d", Conv1d)
LazyConv2d = _conv("LazyConv2d", Conv2d)
LazyConv3d = _conv("LazyConv3d", Conv3d)
LazyConvTranspose1d = _conv_transpose("LazyConvTranspose1d", ConvTranspose1d)
LazyConvTranspose2d = _conv_transpose("LazyConvTranspose2d", ConvTranspose2d)
LazyConvTranspose3d = _conv_transpose("LazyConvTranspose3d", ConvTranspose3d)


class _LazyNorm(_Lazy):
    def initialize_parameters(self, input):
        self.num_features = n = int(input.shape[1])  # torch's, unbatched instance norms too
        for table, name in (("_parameters", "weight"), ("_parameters", "bias"),
                            ("_buffers", "running_mean"), ("_buffers", "running_var")):
            self._size(table, name, (n,))


def _norm(name, base, affine, track):
    def __init__(self, eps=1e-5, momentum=0.1, affine=affine, track_running_stats=track,
                 device=None, dtype=None):
        self.__dict__["_pending"] = True
        base.__init__(self, 0, eps, momentum, affine, track_running_stats, device, dtype)

    doc = (f"{base.__name__} whose num_features is read from its first input (dim 1: "
           f"torch.nn.{name}); see the module docstring.")
    return type(name, (_LazyNorm, base), {"__init__": __init__, "cls_to_become": base,
                                          "__doc__": doc, "__module__": __name__})


LazyBatchNorm1d = _norm("LazyBatchNorm1d", BatchNorm1d, True, True)
LazyBatchNorm2d = _norm("LazyBatchNorm2d", BatchNorm2d, True, True)
LazyBatchNorm3d = _norm("LazyBatchNorm3d", BatchNorm3d, True, True)
# torch's lazy instance norms take _LazyNormBase's defaults (affine and running statistics on),
# not InstanceNorm's
LazyInstanceNorm1d = _norm("LazyInstanceNorm1d", InstanceNorm1d, True, True)
LazyInstanceNorm2d = _norm("LazyInstanceNorm2d", InstanceNorm2d, True, True)
LazyInstanceNorm3d = _norm("LazyInstanceNorm3d", InstanceNorm3d, True, True)
