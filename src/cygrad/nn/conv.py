"""Convolution layers (torch.nn.modules.conv): Conv1d, Conv2d, Conv3d, ConvTranspose1d and
ConvTranspose2d, with PyTorch's constructor arguments, attributes, weight layout, default
initialisation and repr."""

import math

import numpy as np

from . import _functional_conv as FC
from . import functional as F
from . import init
from .layers import _dtype
from .module import Module, Parameter

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
           "ConvTranspose3d"]

_PADDING_MODES = {"zeros", "reflect", "replicate", "circular"}


class _ConvNd(Module):
    """Shared by Conv1d and Conv2d: the arguments' checks, the parameters and their init.

    Departure from PyTorch: geometry PyTorch accepts here and rejects at the first forward
    (stride or dilation < 1, negative padding, kernel_size < 1) is rejected here, with the same
    exception type; channels must be >= 1. padding_mode other than "zeros" raises
    NotImplementedError."""

    _dims = 2
    _transposed = False  # ConvTranspose: weight (C_in, C_out/groups, k...), output_padding

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None,
                 output_padding=0):
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
        if padding_mode != "zeros" and self._transposed:
            raise ValueError(f'Only "zeros" padding mode is supported for {name}')
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
        self.transposed = self._transposed
        self.output_padding = FC._ints(output_padding, d, "output_padding", name)
        dtype = _dtype(dtype)
        shape = ((in_channels, out_channels // groups) if self._transposed else
                 (out_channels, in_channels // groups)) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dtype=dtype))
        self.register_parameter("bias", Parameter(np.empty(out_channels, dtype=dtype))
                                if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        """PyTorch's default: kaiming_uniform_(a=sqrt(5)) for W, i.e. W ~ U(-k, k), and
        b ~ U(-k, k), k = 1/sqrt(fan_in), fan_in = W.shape[1] * prod(kernel_size)
        (in_channels/groups; out_channels/groups for a transposed convolution, as torch)."""
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
        if self.output_padding != (0,) * self._dims:
            s += f", output_padding={self.output_padding}"
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



class Conv3d(_ConvNd):
    """Cross-correlation of x (N, C_in, D, H, W) or (C_in, D, H, W) with weight
    (C_out, C_in/groups, kd, kh, kw) -> (N, C_out, OD, OH, OW); F.conv3d has the sizes."""

    _dims = 3

    def forward(self, input):
        p = self._parameters
        return F.conv3d(input, p["weight"], p["bias"], self.stride, self.padding,
                        self.dilation, self.groups)

class _ConvTransposeNd(_ConvNd):
    """Shared by ConvTranspose1d and ConvTranspose2d: torch's argument order and
    forward(input, output_size=None)."""

    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        if isinstance(padding, str):
            raise TypeError(f"{type(self).__name__}: padding must be an int or a tuple of ints "
                            f"(a transposed convolution has no {padding!r} padding)")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype, output_padding)

    def _output_padding(self, input, output_size):
        """self.output_padding, or the one that makes the output output_size (torch's
        ValueErrors for a size no output_padding below the stride reaches)."""
        if output_size is None:
            return self.output_padding
        d = self._dims
        requested = output_size
        output_size = [int(v) for v in output_size]
        extra = 2 if input.ndim == d + 2 else 1
        if len(output_size) == d + extra:
            output_size = output_size[extra:]
        if len(output_size) != d:
            raise ValueError(f"ConvTranspose{d}D: for {input.ndim}D input, output_size must "
                             f"have {d} or {d + extra} elements (got {len(output_size)})")
        lows = [(input.shape[i + extra] - 1) * self.stride[i] - 2 * self.padding[i]
                + self.dilation[i] * (self.kernel_size[i] - 1) + 1 for i in range(d)]
        highs = [low + s - 1 for low, s in zip(lows, self.stride)]
        if any(not low <= size <= high for low, size, high in zip(lows, output_size, highs)):
            raise ValueError(f"requested an output size of {requested}, but valid sizes range "
                             f"from {lows} to {highs} (for an input of "
                             f"{list(input.shape[extra:])})")
        result = [size - low for size, low in zip(output_size, lows)]
        return tuple(result)


class ConvTranspose1d(_ConvTransposeNd):
    """The transpose of Conv1d: x (N, C_in, L) or (C_in, L), weight (C_in, C_out/groups, k)
    -> (N, C_out, L_out); F.conv_transpose1d has the sizes."""

    _dims = 1

    def forward(self, input, output_size=None):
        p = self._parameters
        return F.conv_transpose1d(input, p["weight"], p["bias"], self.stride, self.padding,
                                  self._output_padding(input, output_size), self.groups,
                                  self.dilation)


class ConvTranspose2d(_ConvTransposeNd):
    """The transpose of Conv2d (DCGAN's upsampling layer): x (N, C_in, H, W) or
    (C_in, H, W), weight (C_in, C_out/groups, kh, kw) -> (N, C_out, OH, OW);
    F.conv_transpose2d has the sizes and how it is computed."""

    def forward(self, input, output_size=None):
        p = self._parameters
        return F.conv_transpose2d(input, p["weight"], p["bias"], self.stride, self.padding,
                                  self._output_padding(input, output_size), self.groups,
                                  self.dilation)


class ConvTranspose3d(_ConvTransposeNd):
    """The transpose of Conv3d: x (N, C_in, D, H, W) or (C_in, D, H, W), weight
    (C_in, C_out/groups, kd, kh, kw) -> (N, C_out, OD, OH, OW); F.conv_transpose3d."""

    _dims = 3

    def forward(self, input, output_size=None):
        p = self._parameters
        return F.conv_transpose3d(input, p["weight"], p["bias"], self.stride, self.padding,
                                  self._output_padding(input, output_size), self.groups,
                                  self.dilation)
