"""More of torch.nn.functional, made of cygrad's ops as torch's Python code makes them:
local_response_norm, lp_pool1d, lp_pool2d, gumbel_softmax, pdist and rrelu."""

import numpy as np

from .. import autograd
from ..ops.shape import where
from ..tensor import Tensor, _wrap

__all__ = ["local_response_norm", "lp_pool1d", "lp_pool2d", "gumbel_softmax", "pdist", "rrelu",
           "rrelu_"]


def _F():
    from . import functional

    return functional


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """input / (k + alpha * mean of input**2 over `size` neighbouring channels) ** beta (the
    window centred on each channel, zeros past the ends: AlexNet's normalisation)."""
    F = _F()
    dim = input.dim()
    if dim < 3:
        raise ValueError(f"Expected 3D or higher dimensionality input (got {dim} dimensions)")
    if input.numel() == 0:
        return input
    sizes = tuple(input.shape)
    div = (input * input).reshape(sizes[0], 1, sizes[1], -1)  # channels as rows of one plane
    div = F.pad(div, (0, 0, size // 2, (size - 1) // 2))
    div = F.avg_pool2d(div, (size, 1), stride=1).reshape(sizes)
    return input / (div * alpha + k) ** beta


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """(sum of x**p over each window) ** (1/p), p = norm_type (torch's: the average pool of
    x**p times the window's size; a negative sum gives 0)."""
    F = _F()
    out = F.avg_pool1d(input ** norm_type, kernel_size, stride if stride is not None else
                       kernel_size, 0, ceil_mode)
    return (out.sign() * F.relu(out.abs()) * kernel_size) ** (1.0 / norm_type)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """lp_pool1d over 2-D windows (kernel_size an int or a pair)."""
    F = _F()
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    out = F.avg_pool2d(input ** norm_type, kernel_size, stride if stride is not None else
                       kernel_size, 0, ceil_mode)
    return (out.sign() * F.relu(out.abs()) * (kw * kh)) ** (1.0 / norm_type)


def gumbel_softmax(logits, tau=1, hard=False, eps=1e-10, dim=-1):
    """softmax((logits + g) / tau) along dim, g ~ Gumbel(0, 1) drawn from cygrad's generator
    (-log of exponential draws); with hard, the one-hot of its argmax in the forward and the
    soft sample's gradient (straight through). eps is unused, as in torch."""
    gumbels = -logits.detach().new_empty(tuple(logits.shape)).exponential_().log()
    y_soft = ((logits + gumbels) / tau).softmax(dim)
    if not hard:
        return y_soft
    index = y_soft.detach().argmax(dim, keepdim=True)
    y_hard = logits.detach().new_zeros(tuple(logits.shape)).scatter(dim, index, 1.0)
    return y_hard - y_soft.detach() + y_soft


def pdist(input, p=2):
    """The p-norm distances between the rows of input (N, M), i < j in row-major order:
    (N * (N - 1) / 2,). The gradient at a zero distance is 0 (as torch's)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"pdist(): argument 'input' must be Tensor, not {type(input).__name__}")
    if input.dim() != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {input.dim()}D")
    if not input.is_floating_point():
        raise RuntimeError("pdist only supports floating-point dtypes")
    if p < 0:
        raise RuntimeError("pdist only supports non-negative p values")
    n = input.shape[0]
    i, j = np.triu_indices(n, 1)
    diff = input.index_select(0, _wrap(i.astype(np.int64))) - \
        input.index_select(0, _wrap(j.astype(np.int64)))
    if p == 2:  # sqrt of the sum of squares, its gradient 0 where it is 0
        sq = (diff * diff).sum(1)
        zero = sq.detach() == 0
        safe = sq.masked_fill(zero, 1.0).sqrt()
        return safe.masked_fill(zero, 0.0)
    return diff.norm(p, 1)


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
    """x where x >= 0, a * x below: a ~ U(lower, upper) per element when training (cygrad's
    generator), (lower + upper) / 2 otherwise."""
    if not isinstance(input, Tensor):
        raise TypeError(f"rrelu(): argument 'input' must be Tensor, not {type(input).__name__}")
    if training:
        with autograd.no_grad():
            slope = input.detach().new_empty(tuple(input.shape)).uniform_(lower, upper)
        out = where(input >= 0, input, input * slope)
    else:
        out = where(input >= 0, input, input * ((lower + upper) / 2))
    if inplace:
        return input.copy_(out)
    return out


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False):
    """rrelu in place."""
    return rrelu(input, lower, upper, training, inplace=True)
