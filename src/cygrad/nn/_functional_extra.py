"""More of torch.nn.functional, made of cygrad's ops (where, clamp, expm1, sigmoid, softmax,
chunk, mean, var, rsqrt...): celu, glu, softmin, prelu, threshold, tanhshrink, hardshrink,
softshrink, group_norm, rms_norm. Their gradients are those ops' gradients, and so are their
bits: a statistic is an exact sum, the same tree for every output.
"""

import math
import numbers

from .. import autograd, dtypes
from ..ops import registry
from ..tensor import Tensor

__all__ = ["celu", "glu", "softmin", "prelu", "threshold", "tanhshrink", "hardshrink",
           "softshrink", "group_norm", "rms_norm", "instance_norm"]


def _f(name):
    return registry.FUNCTIONS[name]


def _tensor(t, name, where):
    if not isinstance(t, Tensor):
        raise TypeError(f"{where}(): argument '{name}' (position 1) must be Tensor, not "
                        f"{type(t).__name__}")


def celu(input, alpha=1.0, inplace=False):
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1)); the exponential of min(x, 0), so that a
    large x gives no inf in the branch not taken."""
    _tensor(input, "input", "celu")
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError")
    if alpha > 0:  # torch's: elu of x / alpha (the gradient from x: exp(x / alpha), no
        negative = registry.FUNCTIONAL["elu"](input / alpha, alpha)  # far below 0)
    else:
        negative = (input.clamp(max=0) / alpha).expm1() * alpha
    out = _f("where")(input > 0, input, negative)
    return input.copy_(out) if inplace else out


def glu(input, dim=-1):
    """a * sigmoid(b), a and b the two halves of input along dim."""
    _tensor(input, "input", "glu")
    if input.dim() == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    d = dim % input.dim() if -input.dim() <= dim < input.dim() else dim
    size = input.shape[d] if isinstance(d, int) and 0 <= d < input.dim() else None
    if size is None:
        raise IndexError(f"Dimension out of range (expected to be in range of "
                         f"[{-input.dim()}, {input.dim() - 1}], but got {dim})")
    if size % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {d} is size {size}")
    a, b = input.chunk(2, d)
    return a * b.sigmoid()


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    """softmax(-input) along dim."""
    _tensor(input, "input", "softmin")
    x = input if dtype is None else input.type(dtype)
    return _f("softmax")(-x, dim)


def prelu(input, weight):
    """x where x > 0, else weight * x; weight one number or one per channel (dim 1)."""
    _tensor(input, "input", "prelu")
    _tensor(weight, "weight", "prelu")
    n = weight.numel()
    w = weight
    if n != 1:
        channels = input.shape[1] if input.dim() >= 2 else (input.shape[0] if input.dim() else 1)
        if weight.dim() != 1 or n != channels:
            raise RuntimeError(f"Mismatch of parameter numbers and input channel size. Found "
                               f"parameter numbers = {n} and channel size = {channels}.")
        if input.dim() >= 2:
            w = weight.reshape((1, n) + (1,) * (input.dim() - 2))
    else:
        w = weight.reshape(())
    return _f("where")(input > 0, input, w * input)


def threshold(input, threshold, value, inplace=False):
    """x where x > threshold, else value."""
    _tensor(input, "input", "threshold")
    out = _f("where")(input > threshold, input, _f("full_like")(input, value))
    return input.copy_(out) if inplace else out


def tanhshrink(input):
    """x - tanh(x)."""
    _tensor(input, "input", "tanhshrink")
    return input - input.tanh()


def hardshrink(input, lambd=0.5):
    """x where |x| > lambd, else 0."""
    _tensor(input, "input", "hardshrink")
    keep = (input > lambd) | (input < -lambd)
    return _f("where")(keep, input, _f("zeros_like")(input))


def softshrink(input, lambd=0.5):
    """x - lambd above lambd, x + lambd below -lambd, 0 between."""
    _tensor(input, "input", "softshrink")
    if lambd < 0:
        raise RuntimeError(f"lambda must be greater or equal to 0, but found to be {lambd}.")
    where = _f("where")
    zero = _f("zeros_like")(input)
    return where(input > lambd, input - lambd, where(input < -lambd, input + lambd, zero))


def _affine_shape(weight, bias, shape, where):
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != shape:
            raise RuntimeError(f"{where}: expected {name} of shape {list(shape)}, got "
                               f"{list(t.shape)}")


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Per sample and group of channels (dim 1 cut into num_groups): (x - mean) / sqrt(var +
    eps) (var biased) * weight + bias (per channel)."""
    _tensor(input, "input", "group_norm")
    if input.dim() < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received "
                           f"{input.dim()}")
    n, c = input.shape[0], input.shape[1]
    if num_groups <= 0 or c % num_groups:
        raise RuntimeError(f"Expected number of channels in input to be divisible by "
                           f"num_groups, but got input of shape {list(input.shape)} and "
                           f"num_groups={num_groups}")
    if not input.is_floating_point():
        raise RuntimeError(f"\"GroupNormKernelImpl\" not implemented for "
                           f"'{dtypes.SCALAR_NAMES[input.dtype.name]}'")
    _affine_shape(weight, bias, (c,), "group_norm")
    x = input.reshape(n, num_groups, -1)
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, keepdim=True, correction=0)
    y = ((x - mean) * (var + eps).rsqrt()).reshape(input.shape)
    affine = (1, c) + (1,) * (input.dim() - 2)
    if weight is not None:
        y = y * weight.reshape(affine)
    if bias is not None:
        y = y + bias.reshape(affine)
    return y


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """Per sample and channel: (x - mean) / sqrt(var + eps) over the spatial dims (var
    biased), * weight + bias per channel. As torch's: batch_norm of the input seen as one
    sample of N*C channels; running_mean / running_var (C,), when given and use_input_stats,
    become the mean over the samples of their momentum updates (var unbiased), in place;
    without use_input_stats they normalise instead of the input's statistics."""
    from ._functional_transformer import batch_norm

    _tensor(input, "input", "instance_norm")
    if input.dim() < 3:
        raise ValueError(f"instance_norm expects an input of at least 3 dims (N, C, ...), got "
                         f"shape {tuple(input.shape)}")
    n, c = input.shape[0], input.shape[1]
    if use_input_stats and math.prod(input.shape[2:]) == 1:
        raise ValueError(f"Expected more than 1 spatial element when training, got input size "
                         f"{list(input.shape)}")
    rm, rv = running_mean, running_var
    for name, t in (("running_mean", rm), ("running_var", rv), ("weight", weight),
                    ("bias", bias)):
        if t is not None and tuple(t.shape) != (c,):
            raise RuntimeError(f"{name} should contain {c} elements not {t.numel()}")
    rm_n = None if rm is None else rm.detach().repeat(n)  # one copy a sample (torch's)
    rv_n = None if rv is None else rv.detach().repeat(n)
    y = batch_norm(input.reshape((1, n * c) + tuple(input.shape[2:])), rm_n, rv_n,
                   None if weight is None else weight.repeat(n),
                   None if bias is None else bias.repeat(n), use_input_stats, momentum, eps)
    if use_input_stats:
        with autograd.no_grad():
            for kept, copies in ((rm, rm_n), (rv, rv_n)):
                if kept is not None:
                    kept.copy_(copies.reshape(n, c).mean(0))
    return y.reshape(input.shape)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """x / sqrt(mean(x**2) + eps) * weight over the last len(normalized_shape) dims; eps None:
    the dtype's machine epsilon (torch.finfo(x.dtype).eps)."""
    _tensor(input, "input", "rms_norm")
    if isinstance(normalized_shape, numbers.Integral):
        raise TypeError("rms_norm(): argument 'normalized_shape' (position 2) must be tuple of "
                        "ints, not int")
    shape = tuple(normalized_shape)
    if not shape or tuple(input.shape[input.dim() - len(shape):]) != shape or \
            input.dim() < len(shape):
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape "
                           f"[*, {', '.join(map(str, shape))}], but got input of size"
                           f"{list(input.shape)}")
    if not input.is_floating_point():
        raise RuntimeError(f"\"rms_norm\" not implemented for "
                           f"'{dtypes.SCALAR_NAMES[input.dtype.name]}'")
    _affine_shape(weight, None, shape, "rms_norm")
    if eps is None:
        eps = dtypes.finfo(input.dtype).eps
    dims = tuple(range(input.dim() - len(shape), input.dim()))
    y = input * ((input * input).mean(dims, keepdim=True) + eps).rsqrt()
    return y if weight is None else y * weight
