"""Convolution layers (torch.nn.modules.conv): Conv1d and Conv2d, with PyTorch's constructor
arguments, attributes, weight layout, default initialisation and repr."""

import math

import numpy as np

from . import _functional_conv as FC
from . import functional as F
from . import init
from .layers import _dtype
from .module import Module, Parameter

__all__ = ["Conv1d", "Conv2d"]

_PADDING_MODES = {"zeros", "reflect", "replicate", "circular"}


class _ConvNd(Module):
    """Shared by Conv1d and Conv2d: the arguments' checks, the parameters and their init.

    Departure from PyTorch: geometry PyTorch accepts here and rejects at the first forward
    (stride or dilation < 1, negative padding, kernel_size < 1) is rejected here, with the same
    exception type; channels must be >= 1. padding_mode other than "zeros" raises
    NotImplementedError."""

    _dims = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        name, d = type(self).__name__, self._dims
        if not FC._is_int(groups) or groups <= 0:
            raise ValueError("groups must be a positive integer")
        self.in_channels = F._size(in_channels, f"{name}: in_channels")
        self.out_channels = F._size(out_channels, f"{name}: out_channels")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        self.kernel_size = FC._ints(kernel_size, d, "kernel_size", name)
        self.stride = FC._ints(stride, d, "stride", name)
        self.dilation = FC._ints(dilation, d, "dilation", name)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of "
                                 "{'valid', 'same'}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = FC._ints(padding, d, "padding", name)
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, but got "
                             f"padding_mode={padding_mode!r}")
        if padding_mode != "zeros":
            raise NotImplementedError(f"{name}: padding_mode={padding_mode!r} is not "
                                      "implemented in cygrad (only 'zeros')")
        if device is not None and str(device) != "cpu":
            raise RuntimeError(f"cygrad runs on the CPU only, got device={device!r}")
        if min(self.kernel_size) < 1:
            raise RuntimeError(f"{name}: kernel_size must be positive, got {self.kernel_size}")
        if min(self.stride) < 1:
            raise RuntimeError("non-positive stride is not supported")
        if min(self.dilation) < 1:
            raise RuntimeError("non-positive dilation is not supported")
        if not isinstance(self.padding, str) and min(self.padding) < 0:
            raise RuntimeError("negative padding is not supported")
        self.groups, self.padding_mode = groups, padding_mode
        self.transposed, self.output_padding = False, (0,) * d
        dtype = _dtype(dtype)
        shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dtype=dtype))
        self.register_parameter("bias", Parameter(np.empty(out_channels, dtype=dtype))
                                if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        """PyTorch's default: kaiming_uniform_(a=sqrt(5)) for W, i.e. W ~ U(-k, k), and
        b ~ U(-k, k), k = 1/sqrt(fan_in), fan_in = in_channels/groups * prod(kernel_size)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self._dims:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._dims:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(_ConvNd):
    """Cross-correlation of x (N, C_in, L) or (C_in, L) with weight (C_out, C_in/groups, k)
    -> (N, C_out, L_out); F.conv1d has the sizes. Row i of W is filter i."""

    _dims = 1

    def forward(self, input):
        p = self._parameters
        return F.conv1d(input, p["weight"], p["bias"], self.stride, self.padding,
                        self.dilation, self.groups)


class Conv2d(_ConvNd):
    """Cross-correlation of x (N, C_in, H, W) or (C_in, H, W) with weight
    (C_out, C_in/groups, kh, kw) -> (N, C_out, OH, OW); F.conv2d has the sizes. Row i of W is
    filter i."""

    def forward(self, input):
        p = self._parameters
        return F.conv2d(input, p["weight"], p["bias"], self.stride, self.padding,
                        self.dilation, self.groups)
