"""Convolution and pooling as torch.nn.functional has them (re-exported by nn.functional):
conv1d, conv2d, max_pool1d/2d, avg_pool1d/2d, adaptive_avg_pool1d/2d, adaptive_max_pool1d/2d.

Arguments follow PyTorch (ints or tuples, padding="same"/"valid", unbatched inputs) and are
checked here, once, with PyTorch's exception types: RuntimeError for bad geometry or shapes,
TypeError for non-integer sizes and (cygrad's rule) for mixed dtypes. The ops are in
cygrad/ops/conv.py.
"""

import math
import numbers

import numpy as np

from ..ops import conv as C
from ..tensor import Tensor, apply

__all__ = ["conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d",
           "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d",
           "adaptive_max_pool2d"]


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _ints(value, n, name, fn):
    """An int, or a tuple/list of 1 or n ints -> a tuple of n ints (PyTorch's expansion)."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if not all(_is_int(v) for v in values):
        raise TypeError(f"{fn}(): {name} must be an int or a tuple of {n} ints, got {value!r}")
    if len(values) == 1:
        values = values * n
    if len(values) != n:
        raise RuntimeError(f"{fn}(): expected {name} to be a single integer value or a list of "
                           f"{n} values, but got {name}={list(values)}")
    return tuple(int(v) for v in values)


def _check_tensor(x, what, fn):
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn} expects a cygrad Tensor, got {type(x).__name__}" if what == "input"
                        else f"{fn}: {what} must be a cygrad Tensor, got {type(x).__name__}")


def _check_dtype(fn, x, *others):
    for what, t in others:
        if t is not None and t._data.dtype != x._data.dtype:
            raise RuntimeError(f"{fn}: input has dtype {x._data.dtype} but {what} has dtype "
                               f"{t._data.dtype}; convert one of them (e.g. build the layer "
                               "with dtype=...)")  # (torch: RuntimeError, "Input type ...")


# ---------------------------------------------------------------------- convolution

def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation: input (N, C_in, L) or (C_in, L), weight (C_out, C_in/groups, k),
    bias (C_out,) -> (N, C_out, L_out), L_out = (L + 2*padding - dilation*(k-1) - 1)//stride + 1.
    padding: an int, a 1-tuple, "valid" (0) or "same" (L_out = L; stride 1)."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation: input (N, C_in, H, W) or (C_in, H, W), weight
    (C_out, C_in/groups, kh, kw), bias (C_out,) -> (N, C_out, OH, OW),
    OH = (H + 2*padding[0] - dilation[0]*(kh-1) - 1)//stride[0] + 1 (OW likewise).
    stride, padding, dilation: an int or a pair; padding also "valid" (0) or "same" (output
    of the input's size, stride 1; an odd total padding puts the extra row/column after the
    image, as PyTorch does). groups splits the channels into independent convolutions."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    """The transpose of conv1d (its gradient with respect to its input): input
    (N, C_in, L) or (C_in, L), weight (C_in, C_out/groups, k), bias (C_out,) -> (N, C_out,
    L_out), L_out = (L - 1)*stride - 2*padding + dilation*(k - 1) + output_padding + 1."""
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 1, "conv_transpose1d")


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    """The transpose of conv2d (its gradient with respect to its input, the "deconvolution"
    of DCGAN's generator): input (N, C_in, H, W) or (C_in, H, W), weight
    (C_in, C_out/groups, kh, kw), bias (C_out,) -> (N, C_out, OH, OW),
    OH = (H - 1)*stride[0] - 2*padding[0] + dilation[0]*(kh - 1) + output_padding[0] + 1.

    Computed as conv2d of the input with stride - 1 zeros between its elements, padded by
    dilation*(k - 1) - padding (output_padding more after), with the kernel flipped and its
    two channel axes swapped within each group: each output is one exact chain over
    (input channel, kernel row, kernel column), the zeros adding exact zeros, so identical
    filters give identical outputs. Departure from torch (speed only): a strided one does
    stride^2 times the multiply-adds of a direct kernel."""
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 2, "conv_transpose2d")


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    """The transpose of conv3d: input (N, C_in, D, H, W) or (C_in, D, H, W), weight
    (C_in, C_out/groups, kd, kh, kw) -> (N, C_out, OD, OH, OW), each size as
    conv_transpose2d's; computed as conv_transpose2d is, with conv3d."""
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 3, "conv_transpose3d")


def _conv_transpose(x, weight, bias, stride, padding, output_padding, groups, dilation, dims,
                    fn):
    from ..ops.shape import stack
    from ._functional_loss import pad as _pad

    _check_tensor(x, "input", fn)
    _check_tensor(weight, "weight", fn)
    if bias is not None:
        _check_tensor(bias, "bias", fn)
    _check_dtype(fn, x, ("weight", weight), ("bias", bias))
    _check_conv_shapes(x, weight, groups, dims, fn, "C_in, C_out/groups")
    stride, dilation = _strides(stride, dilation, dims, fn)
    padding = _ints(padding, dims, "padding", fn)
    output_padding = _ints(output_padding, dims, "output_padding", fn)
    if min(padding) < 0:
        raise RuntimeError("negative padding is not supported")
    if min(output_padding) < 0:
        raise RuntimeError("negative output_padding is not supported")
    if any(op >= s and op >= d for op, s, d in zip(output_padding, stride, dilation)):
        raise RuntimeError(f"output padding must be smaller than either stride or dilation, "
                           f"but got output_padding={list(output_padding)}, "
                           f"stride={list(stride)}, dilation={list(dilation)}")
    batched = x.ndim == dims + 2
    if not batched:
        x = x.unsqueeze(0)
    c, spatial = x.shape[1], x.shape[2:]
    c_in, c_out_g, kernel = weight.shape[0], weight.shape[1], weight.shape[2:]
    if c_in != c:
        raise RuntimeError(f"Given transposed=1, weight of size {list(weight.shape)}, expected "
                           f"input{list(x.shape)} to have {c_in} channels, but got {c} "
                           "channels instead")
    if c_in % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by "
                           f"{groups} at dimension 0, but got weight of size "
                           f"{list(weight.shape)} instead")
    c_out = c_out_g * groups
    if bias is not None and bias.shape != (c_out,):
        raise RuntimeError(f"Given transposed=1, weight of size {list(weight.shape)}, expected "
                           f"bias to be 1-dimensional with {c_out} elements, but got bias of "
                           f"size {list(bias.shape)} instead")
    if min(kernel) < 1 or c_out < 1:
        raise RuntimeError(f"{fn}: weight of size {list(weight.shape)} has an empty dimension")
    out = tuple((n - 1) * s - 2 * p + d * (k - 1) + op + 1 for n, s, p, d, k, op in
                zip(spatial, stride, padding, dilation, kernel, output_padding))
    if min(out) < 1:
        raise RuntimeError(f"Given input size per channel: ({' x '.join(map(str, spatial))}). "
                           f"Calculated output size per channel: ({' x '.join(map(str, out))})."
                           " Output size is too small")
    z = x
    for i, s in enumerate(stride):  # s - 1 zeros after each element, none after the last
        if s > 1:
            axis, n = 2 + i, z.shape[2 + i]
            z = stack([z] + [z.new_zeros(z.shape)] * (s - 1), axis + 1)
            z = z.reshape(z.shape[:axis] + (n * s,) + z.shape[axis + 2:])
            z = z.narrow(axis, 0, (n - 1) * s + 1)
    sides = []
    for d, k, p, op in reversed(list(zip(dilation, kernel, padding, output_padding))):
        sides += [d * (k - 1) - p, d * (k - 1) - p + op]  # (negative: a crop)
    if any(sides):
        z = _pad(z, sides)
    w = weight.reshape((groups, c_in // groups, c_out_g) + kernel).transpose(1, 2)
    w = w.reshape((c_out, c_in // groups) + kernel).flip(tuple(range(2, 2 + dims)))
    if dims == 3:
        y = conv3d(z, w, bias, 1, 0, dilation, groups)
    else:
        y = _conv(z, w, bias, 1, 0, dilation, groups, dims, fn)
    return y if batched else y.squeeze(0)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-D cross-correlation: input (N, C_in, D, H, W) or (C_in, D, H, W), weight
    (C_out, C_in/groups, kd, kh, kw), bias (C_out,) -> (N, C_out, OD, OH, OW) (conv2d's sizes
    on each axis; padding an int, a triple, "valid" or "same").

    Computed as one conv2d a kernel depth (the input's depth slices it meets, for every output
    depth, as one batch), added in ascending kernel depth: each output is the same sequence of
    operations (per kernel depth one exact chain over (channel, row, column)), so identical
    filters give identical outputs and a sample has its bits alone or in a batch."""
    from ._functional_loss import pad as _pad

    fn = "conv3d"
    _check_tensor(input, "input", fn)
    _check_tensor(weight, "weight", fn)
    if bias is not None:
        _check_tensor(bias, "bias", fn)
    _check_dtype(fn, input, ("weight", weight), ("bias", bias))
    _check_conv_shapes(input, weight, groups, 3, fn)
    batched = input.ndim == 5
    x = input if batched else input.unsqueeze(0)
    n, c, depth = x.shape[0], x.shape[1], x.shape[2]
    o, kernel = weight.shape[0], tuple(weight.shape[2:])
    if weight.shape[1] * groups != c:
        raise RuntimeError(f"Given groups={groups}, weight of size {list(weight.shape)}, "
                           f"expected input{list(x.shape)} to have {weight.shape[1] * groups} "
                           f"channels, but got {c} channels instead")
    stride, dilation = _strides(stride, dilation, 3, fn)
    before, total = _conv_padding(padding, 3, stride, dilation, kernel, fn)
    sides = []
    for b, t in reversed(list(zip(before, total))):
        sides += [b, t - b]
    if any(sides):
        x = _pad(x, sides)
    depth = x.shape[2]
    extent = dilation[0] * (kernel[0] - 1) + 1
    if depth < extent:
        raise RuntimeError(f"Calculated padded input size per channel: ({depth} x "
                           f"{x.shape[3]} x {x.shape[4]}). Kernel size: ({extent} x ...). "
                           "Kernel size can't be greater than actual input size")
    od = (depth - extent) // stride[0] + 1
    y = None
    for z in range(kernel[0]):  # the kernel's depths, in order
        start = z * dilation[0]
        planes = x[:, :, start:start + (od - 1) * stride[0] + 1:stride[0]]
        planes = planes.permute(0, 2, 1, 3, 4).reshape((n * od, c) + tuple(x.shape[3:]))
        part = _conv(planes, weight[:, :, z], None, stride[1:], 0, dilation[1:], groups, 2,
                     fn)
        y = part if y is None else y + part
    y = y.reshape((n, od, o) + tuple(y.shape[2:])).permute(0, 2, 1, 3, 4)
    if bias is not None:
        y = y + bias.reshape(o, 1, 1, 1)
    return y if batched else y.squeeze(0)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Maximum over kernel_size boxes of each volume of x (N, C, D, H, W) or (C, D, H, W)
    (max_pool2d's rules on each axis): max_pool2d over each depth slice, then the maximum over
    the depth windows (a box's maximum is that of its slices' maxima: the same value).
    return_indices is not built yet (NotImplementedError)."""
    return _pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, "max_pool3d",
                   return_indices=return_indices)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Mean over kernel_size boxes of each volume (avg_pool2d's rules on each axis): the mean of
    each depth slice's windows, then the mean over the depth windows (a box's count is the
    product of its axes' counts). Two divisions where torch divides once: the same value to
    rounding."""
    return _pool3d(input, kernel_size, stride, padding, 1, ceil_mode, "avg_pool3d",
                   count_include_pad=count_include_pad, divisor_override=divisor_override)


def _pool3d(x, kernel_size, stride, padding, dilation, ceil_mode, fn, return_indices=False,
            count_include_pad=True, divisor_override=None):
    spatial = _pool_input(x, 3, fn)
    kernel, stride, padding, dilation = _pool_args(fn, 3, kernel_size, stride, padding,
                                                   dilation)
    if return_indices:
        raise NotImplementedError("max_pool3d(return_indices=True) is not implemented in "
                                  "cygrad yet")
    out = tuple(C.pool_out_size(*a, bool(ceil_mode))
                for a in zip(spatial, kernel, stride, padding, dilation))
    if min(out) < 1:
        raise RuntimeError(f"{fn}: Given input size: ({'x'.join(map(str, x.shape[-4:]))}). "
                           f"Calculated output size: ({x.shape[-4]}x{'x'.join(map(str, out))})."
                           " Output size is too small")
    lead = tuple(x.shape[:-3])
    planes = x.reshape((-1, 1) + tuple(spatial[1:]))
    if fn == "max_pool3d":
        planes = max_pool2d(planes, kernel[1:], stride[1:], padding[1:], dilation[1:],
                            ceil_mode)
    else:
        planes = avg_pool2d(planes, kernel[1:], stride[1:], padding[1:], ceil_mode,
                            count_include_pad, 1 if divisor_override else None)
    rows = planes.reshape((-1, spatial[0], out[1] * out[2])).transpose(1, 2)
    if fn == "max_pool3d":
        rows = max_pool1d(rows, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    else:
        rows = _avg_pool(rows, kernel[0], stride[0], padding[0], ceil_mode, count_include_pad,
                         divisor_override, 1, fn)  # (the override divides the box's sum once)
    return rows.transpose(1, 2).reshape(lead + out)


def _plain(v):
    """An int, a string or a tuple of ints (a geometry argument a cache key can stand for)."""
    t = type(v)
    return t is int or t is str or (t is tuple and all(type(e) is int for e in v))


# (shapes and geometry arguments) -> the op's parameters: what _conv_geometry decides from
# them alone, every check included, so a hit skips nothing that could fail (a layer calls with
# the same ones at every step).
_GEOMETRY = {}


def _conv(x, weight, bias, stride, padding, dilation, groups, dims, fn):
    _check_tensor(x, "input", fn)
    _check_tensor(weight, "weight", fn)
    if bias is not None:
        _check_tensor(bias, "bias", fn)
    _check_dtype(fn, x, ("weight", weight), ("bias", bias))
    inputs = (x, weight) if bias is None else (x, weight, bias)
    op = C.Conv2d if dims == 2 else C.Conv1d
    if type(groups) is int and _plain(stride) and _plain(padding) and _plain(dilation):
        key = (x._data.shape, weight._data.shape, None if bias is None else bias._data.shape,
               stride, padding, dilation, groups, dims, fn)
        params = _GEOMETRY.get(key)
        if params is None:
            params = _conv_geometry(x, weight, bias, stride, padding, dilation, groups, dims, fn)
            if len(_GEOMETRY) > 512:
                _GEOMETRY.clear()
            _GEOMETRY[key] = params
        return apply(op, *inputs, **params)
    return apply(op, *inputs, **_conv_geometry(x, weight, bias, stride, padding, dilation,
                                               groups, dims, fn))


def _check_conv_shapes(x, weight, groups, dims, fn, layout="C_out, C_in/groups"):
    """torch's checks of a convolution's input and weight ranks and of groups."""
    if x.ndim not in (dims + 1, dims + 2):
        raise RuntimeError(f"Expected {dims + 1}D (unbatched) or {dims + 2}D (batched) input to "
                           f"{fn}, but got input of size: {list(x.shape)}")
    if weight.ndim != dims + 2:
        kernel = ("k", "kh, kw", "kd, kh, kw")[dims - 1]
        raise RuntimeError(f"{fn}: weight must be {dims + 2}-D ({layout}, {kernel}), got shape "
                           f"{list(weight.shape)}")
    if not _is_int(groups):
        raise TypeError(f"{fn}(): groups must be an int, got {groups!r}")
    if groups < 1:
        raise RuntimeError("non-positive groups is not supported")


def _strides(stride, dilation, dims, fn):
    """stride and dilation as tuples of dims ints, torch's checks made."""
    stride = _ints(stride, dims, "stride", fn)
    dilation = _ints(dilation, dims, "dilation", fn)
    if min(stride) < 1:
        raise RuntimeError("non-positive stride is not supported")
    if min(dilation) < 1:
        raise RuntimeError("non-positive dilation is not supported")
    return stride, dilation


def _conv_geometry(x, weight, bias, stride, padding, dilation, groups, dims, fn):
    """The Conv2d op's parameters for these shapes and arguments, every check made (torch's
    errors)."""
    _check_conv_shapes(x, weight, groups, dims, fn)
    batched = x.ndim == dims + 2
    n, c = (x.shape[:2] if batched else (1, x.shape[0]))
    spatial = x.shape[-dims:]
    o, cg, kernel = weight.shape[0], weight.shape[1], weight.shape[2:]
    if o < 1 or o % groups:  # torch's two messages
        need = "at least 1" if groups == 1 else f"divisible by {groups}"
        raise RuntimeError(f"Given groups={groups}, expected weight to be {need} at dimension "
                           f"0, but got weight of size {list(weight.shape)} instead")
    if cg * groups != c:
        raise RuntimeError(f"Given groups={groups}, weight of size {list(weight.shape)}, "
                           f"expected input{list(x.shape)} to have {cg * groups} channels, but "
                           f"got {c} channels instead")
    if bias is not None and bias.shape != (o,):
        raise RuntimeError(f"Given weight of size {list(weight.shape)}, expected bias to be "
                           f"1-dimensional with {o} elements, but got bias of size "
                           f"{list(bias.shape)} instead")
    if min(kernel) < 1:
        raise RuntimeError(f"{fn}: kernel size must be positive, got weight of size "
                           f"{list(weight.shape)}")
    stride, dilation = _strides(stride, dilation, dims, fn)
    extent = tuple(d * (k - 1) + 1 for d, k in zip(dilation, kernel))
    before, padding = _conv_padding(padding, dims, stride, dilation, kernel, fn)
    padded = tuple(s + p for s, p in zip(spatial, padding))  # padding: the total per axis
    if any(p < e for p, e in zip(padded, extent)):
        raise RuntimeError(f"Calculated padded input size per channel: "
                           f"({' x '.join(map(str, padded))}). Kernel size: "
                           f"({' x '.join(map(str, extent))}). Kernel size can't be greater "
                           "than actual input size")
    out = tuple((p - e) // s + 1 for p, e, s in zip(padded, extent, stride))
    # one output position along an axis: its stride never moves the window (so a stride past
    # the kernels' 2^31 - 1 limit works, as in torch)
    stride = tuple(1 if o_ == 1 else s for o_, s in zip(out, stride))
    if max(padded) >= 1 << 31 or n * o * math.prod(out) >= 1 << 48:
        raise RuntimeError(f"{fn}: padded input {list(padded)} (output {list(out)}) is too large "
                           "to allocate")
    if dims == 1:  # a row of one: (N, C, 1, L) with a (1, k) kernel
        stride, before, dilation, out, kernel = ((1,) + stride, (0,) + before,
                                                 (1,) + dilation, (1,) + out, (1,) + kernel)
    return dict(stride=stride, padding=before, dilation=dilation, groups=groups, out_size=out,
                x4=(n, c) + ((1,) + spatial if dims == 1 else spatial), w4=(o, cg) + kernel,
                y_shape=((n,) if batched else ()) + (o,) + out[-dims:])


def _conv_padding(padding, dims, stride, dilation, kernel, fn):
    """(padding before each axis, total padding of each axis) from PyTorch's forms."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * dims, (0,) * dims
        if padding != "same":
            raise RuntimeError(f"Invalid padding string: {padding!r}")
        if any(s != 1 for s in stride):
            raise RuntimeError("padding='same' is not supported for strided convolutions")
        total = tuple(d * (k - 1) for d, k in zip(dilation, kernel))
        return tuple(t // 2 for t in total), total  # the odd one after the image
    padding = _ints(padding, dims, "padding", fn)
    if min(padding) < 0:
        raise RuntimeError("negative padding is not supported")
    return padding, tuple(2 * p for p in padding)


# ---------------------------------------------------------------------- pooling

def _pool_input(x, dims, fn):
    """The input's spatial shape, after PyTorch's checks (dims + 1 or + 2 dimensions, no empty
    non-batch dimension)."""
    _check_tensor(x, "input", fn)
    if x.ndim not in (dims + 1, dims + 2) or 0 in x.shape[-(dims + 1):]:
        raise RuntimeError(f"{fn}: Expected {dims + 1}D or {dims + 2}D (batch mode) tensor with "
                           f"optional 0 dim batch size for input, but got: {list(x.shape)}")
    return x.shape[-dims:]


def _pool_args(fn, dims, kernel_size, stride, padding, dilation):
    kernel = _ints(kernel_size, dims, "kernel_size", fn)
    empty = stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)
    stride = kernel if empty else _ints(stride, dims, "stride", fn)
    padding = _ints(padding, dims, "padding", fn)
    dilation = _ints(dilation, dims, "dilation", fn)
    if min(kernel) < 1:
        raise RuntimeError(f"{fn}: kernel size should be greater than zero, but got {kernel}")
    if min(stride) < 1:
        raise RuntimeError(f"{fn}: stride should be greater than zero, but got {stride}")
    if min(padding) < 0:
        raise RuntimeError(f"{fn}: pad must be non-negative, but got pad: {padding}")
    if min(dilation) < 1:
        raise RuntimeError(f"{fn}: dilation should be greater than zero, but got {dilation}")
    for k, p, d in zip(kernel, padding, dilation):
        if p > (d * (k - 1) + 1) // 2:
            raise RuntimeError(f"{fn}: pad should be at most half of effective kernel size, but "
                               f"got pad={p}, kernel_size={k} and dilation={d}")
    return kernel, stride, padding, dilation


def _pool_windows(fn, x, dims, kernel, stride, padding, dilation, ceil_mode):
    """(rows, columns, out): each axis's (starts, ends, padded counts); a 1-D pool has one row."""
    spatial = x.shape[-dims:]
    out = tuple(C.pool_out_size(*a, bool(ceil_mode))
                for a in zip(spatial, kernel, stride, padding, dilation))
    if min(out) < 1:
        raise RuntimeError(f"{fn}: Given input size: ({'x'.join(map(str, x.shape[-dims - 1:]))})"
                           f". Calculated output size: ({x.shape[-dims - 1]}x"
                           f"{'x'.join(map(str, out))}). Output size is too small")
    axes = [C.pool_windows(*a) for a in zip(spatial, kernel, stride, padding, dilation, out)]
    if dims == 1:
        one = np.ones(1, np.int64)
        axes.insert(0, (one * 0, one, one))
    return axes[0], axes[1], out


def _index_tensor(array):
    """PyTorch's int64 indices as a Tensor (no gradient). While cygrad's Tensor holds floats
    only, the array is wrapped as it is."""
    try:
        t = Tensor(array)
        if t._data.dtype == np.int64:
            return t
    except TypeError:
        pass
    t = Tensor(np.zeros(0, np.float32))
    t._data = array
    return t


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Maximum over windows of x (N, C, L) or (C, L); see max_pool2d."""
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
                     1, "max_pool1d")


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Maximum over kernel_size windows of each plane of x (N, C, H, W) or (C, H, W), moved by
    stride (default kernel_size), with implicit -inf padding (at most half the dilated kernel)
    and dilation; ceil_mode rounds the output size up (no window starting in the right
    padding). The first of tied maxima wins, NaN wins. return_indices: also the int64 index
    y*W + x of each maximum in its plane (PyTorch's)."""
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
                     2, "max_pool2d")


def _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, dims, fn):
    spatial = _pool_input(x, dims, fn)
    kernel, stride, padding, dilation = _pool_args(fn, dims, kernel_size, stride, padding,
                                                   dilation)
    rows, cols, out = _pool_windows(fn, x, dims, kernel, stride, padding, dilation, ceil_mode)
    steps = ((1,) + dilation) if dims == 1 else dilation
    return _apply_max(C.MaxPool1d if dims == 1 else C.MaxPool2d, x, dims, spatial, rows, cols,
                      steps, out, return_indices)


def _apply_max(op, x, dims, spatial, rows, cols, steps, out, return_indices):
    indices = [] if return_indices else None
    y = apply(op, x, windows=(rows[0], rows[1], cols[0], cols[1]), steps=steps,
              plane=(1,) + spatial if dims == 1 else spatial, y_shape=x.shape[:-dims] + out,
              indices=indices)
    return (y, _index_tensor(indices[0])) if return_indices else y


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """Mean over windows of x (N, C, L) or (C, L); see avg_pool2d."""
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, None,
                     1, "avg_pool1d")


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Mean over kernel_size windows of each plane of x (N, C, H, W) or (C, H, W), moved by
    stride (default kernel_size), with zero padding (at most half the kernel); divided by the
    window's size with its padding (count_include_pad) or without, or by divisor_override."""
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, 2, "avg_pool2d")


def _avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
              dims, fn):
    spatial = _pool_input(x, dims, fn)
    kernel, stride, padding, _ = _pool_args(fn, dims, kernel_size, stride, padding, 1)
    if divisor_override is not None:
        if not _is_int(divisor_override):
            raise TypeError(f"{fn}(): divisor_override must be an int, got "
                            f"{divisor_override!r}")
        if divisor_override == 0:
            raise RuntimeError(f"{fn}: divisor must be not zero")
    rows, cols, out = _pool_windows(fn, x, dims, kernel, stride, padding, (1,) * dims,
                                    ceil_mode)
    counts = [a[2] if count_include_pad else a[1] - a[0] for a in (rows, cols)]
    return apply(C.AvgPool1d if dims == 1 else C.AvgPool2d, x,
                 windows=(rows[0], rows[1], cols[0], cols[1]), counts=tuple(counts),
                 divisor_override=int(divisor_override or 0),
                 plane=(1,) + spatial if dims == 1 else spatial, y_shape=x.shape[:-dims] + out)


# ---------------------------------------------------------------------- adaptive pooling

def _adaptive(x, output_size, dims, fn):
    spatial = _pool_input(x, dims, fn)
    sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (
        (output_size,) * dims)
    if len(sizes) != dims:
        raise ValueError(f"{fn}: output_size must be an int or a tuple of {dims}, got "
                         f"{output_size!r}")
    sizes = tuple(s if s is not None else n for s, n in zip(sizes, spatial))
    if not all(_is_int(s) for s in sizes):
        raise TypeError(f"{fn}(): output_size must hold ints (or None), got {output_size!r}")
    if min(sizes) < 0:
        raise RuntimeError(f"{fn}: elements of output_size must be greater than or equal to 0 "
                           f"but received {sizes}")
    axes = [C.adaptive_windows(n, s) for n, s in zip(spatial, sizes)]
    if dims == 1:
        axes.insert(0, (np.zeros(1, np.int64), np.ones(1, np.int64)))
    return spatial, axes[0], axes[1], sizes


def adaptive_avg_pool1d(input, output_size):
    """Mean over output_size adaptive windows of x (N, C, L) or (C, L)."""
    return _adaptive_avg(input, output_size, 1, "adaptive_avg_pool1d")


def adaptive_avg_pool2d(input, output_size):
    """Mean over adaptive windows of each plane: output row i pools the input rows
    floor(i*H/OH) to ceil((i+1)*H/OH) (exclusive), likewise the columns. output_size: an int,
    or a pair whose None keeps that dimension."""
    return _adaptive_avg(input, output_size, 2, "adaptive_avg_pool2d")


def adaptive_avg_pool3d(input, output_size):
    """Mean over adaptive windows of each volume of x (N, C, D, H, W) or (C, D, H, W):
    output (OD, OH, OW) from output_size, an int or a triple (None keeps that size). Each
    window's mean is the mean over its depth window of adaptive_avg_pool2d's plane means (the
    same windows, equal weights: torch's value to rounding)."""
    return _adaptive3d(input, output_size, "adaptive_avg_pool3d", adaptive_avg_pool2d,
                       adaptive_avg_pool1d)


def _adaptive3d(input, output_size, fn, pool2d, pool1d):
    """An adaptive 3-D pool as pool2d over each depth slice's plane, then pool1d over depth
    (adaptive windows are separable)."""
    _check_tensor(input, "input", fn)
    if input.ndim not in (4, 5) or 0 in input.shape[-4:]:
        raise RuntimeError(f"{fn}(): Expected 4D or 5D tensor, but got {list(input.shape)}")
    sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (
        (output_size,) * 3)
    if len(sizes) != 3:
        raise ValueError(f"{fn}: output_size must be an int or a tuple of 3, got "
                         f"{output_size!r}")
    d, h, w = input.shape[-3:]
    od, oh, ow = (n if s is None else s for s, n in zip(sizes, (d, h, w)))
    if not all(_is_int(s) for s in (od, oh, ow)):
        raise TypeError(f"{fn}(): output_size must hold ints (or None), got {output_size!r}")
    lead = input.shape[:-3]
    planes = pool2d(input.reshape(-1, h, w), (oh, ow))  # (L*D, OH, OW)
    columns = planes.reshape(-1, d, oh * ow).transpose(1, 2)  # (L, OH*OW, D)
    pooled = pool1d(columns, od)  # (L, OH*OW, OD)
    return pooled.transpose(1, 2).reshape(lead + (od, oh, ow))


def adaptive_max_pool3d(input, output_size, return_indices=False):
    """Maximum over adaptive windows of each volume (adaptive_avg_pool3d's windows): the
    maximum over the depth window of adaptive_max_pool2d's plane maxima (exactly torch's
    values; a gradient goes to the first maximum in (depth, row, column) order, torch's).
    return_indices is not built yet (NotImplementedError)."""
    if return_indices:
        raise NotImplementedError("adaptive_max_pool3d(return_indices=True) is not implemented "
                                  "in cygrad")
    return _adaptive3d(input, output_size, "adaptive_max_pool3d", adaptive_max_pool2d,
                       adaptive_max_pool1d)


def _adaptive_avg(x, output_size, dims, fn):
    spatial, rows, cols, out = _adaptive(x, output_size, dims, fn)
    return apply(C.AdaptiveAvgPool2d, x, windows=(rows[0], rows[1], cols[0], cols[1]),
                 counts=(rows[1] - rows[0], cols[1] - cols[0]), divisor_override=0,
                 plane=(1,) + spatial if dims == 1 else spatial, y_shape=x.shape[:-dims] + out)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Maximum over output_size adaptive windows of x (N, C, L) or (C, L)."""
    return _adaptive_max(input, output_size, return_indices, 1, "adaptive_max_pool1d")


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Maximum over adaptive_avg_pool2d's windows; return_indices as max_pool2d's."""
    return _adaptive_max(input, output_size, return_indices, 2, "adaptive_max_pool2d")


def _adaptive_max(x, output_size, return_indices, dims, fn):
    spatial, rows, cols, out = _adaptive(x, output_size, dims, fn)
    return _apply_max(C.AdaptiveMaxPool2d, x, dims, spatial, rows, cols, (1, 1), out,
                      return_indices)


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=True):
    """max_pool1d(..., return_indices=True): (values, indices)."""
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=True):
    """max_pool2d(..., return_indices=True): (values, indices)."""
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def adaptive_max_pool1d_with_indices(input, output_size, return_indices=True):
    """adaptive_max_pool1d(..., return_indices=True): (values, indices)."""
    return adaptive_max_pool1d(input, output_size, True)


def adaptive_max_pool2d_with_indices(input, output_size, return_indices=True):
    """adaptive_max_pool2d(..., return_indices=True): (values, indices)."""
    return adaptive_max_pool2d(input, output_size, True)
