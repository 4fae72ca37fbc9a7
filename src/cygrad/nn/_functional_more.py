"""More of torch.nn.functional, made of cygrad's ops as torch's Python code makes them:
local_response_norm, lp_pool1d, lp_pool2d, gumbel_softmax, pdist, rrelu and embedding_bag."""

import numpy as np

from .. import autograd, dtypes
from ..ops.shape import where
from ..tensor import Tensor, _wrap

__all__ = ["local_response_norm", "lp_pool1d", "lp_pool2d", "lp_pool3d", "gumbel_softmax",
           "pdist", "rrelu", "rrelu_", "embedding_bag", "channel_shuffle", "max_unpool1d",
           "max_unpool2d", "max_unpool3d"]


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


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """lp_pool1d over 3-D windows (kernel_size an int or a triple)."""
    F = _F()
    kd, kh, kw = (kernel_size,) * 3 if isinstance(kernel_size, int) else kernel_size
    out = F.avg_pool3d(input ** norm_type, kernel_size, stride if stride is not None else
                       kernel_size, 0, ceil_mode)
    return (out.sign() * F.relu(out.abs()) * (kd * kh * kw)) ** (1.0 / norm_type)


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
    """x where x > 0, a * x from 0 down (torch's: the gradient at 0 is a): when training
    a ~ U(lower, upper) drawn for each such element in memory order, one double each from the
    generator as torch's kernel draws them (rounded to the input's dtype); (lower + upper) / 2
    otherwise."""
    if not isinstance(input, Tensor):
        raise TypeError(f"rrelu(): argument 'input' must be Tensor, not {type(input).__name__}")
    if training:
        with autograd.no_grad():
            low = (input.detach() <= 0).numpy().reshape(-1)
            draws = input.new_empty((int(low.sum()),), dtype=dtypes.float64).uniform_(
                lower, upper)
            slope = np.ones(low.shape, input._data.dtype)
            slope[low] = draws.numpy()
            slope = _wrap(slope.reshape(input._data.shape))
        out = where(input > 0, input, input * slope)
    else:
        out = where(input > 0, input, input * ((lower + upper) / 2))
    if inplace:
        return input.copy_(out)
    return out


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False):
    """rrelu in place."""
    return rrelu(input, lower, upper, training, inplace=True)


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False,
                  mode="mean", sparse=False, per_sample_weights=None, include_last_offset=False,
                  padding_idx=None):
    """Sums, means or maxima of bags of embeddings: input 1-D with offsets (bag b is
    input[offsets[b]:offsets[b + 1]]) or 2-D (each row a bag). -> (bags, embedding_dim);
    an empty bag gives zeros, padding_idx entries are left out of their bags (and of a mean's
    count), per_sample_weights scale each entry (mode "sum" only). Each bag's sum runs over its
    entries in order (an exact scatter-add), so identical bags give identical outputs."""
    from ..ops.shape import index_add
    from ._functional_transformer import embedding

    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"mode has to be one of sum, mean or max, but got {mode}")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(f"embedding_bag: per_sample_weights was not None. "
                                  f"per_sample_weights is only supported for mode='sum' (got "
                                  f"mode='{mode}'). Please open a feature request on GitHub.")
    if input.dim() == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None, as input is treated "
                             "is a mini-batch of fixed length sequences. However, found "
                             f"offsets of type {type(offsets).__name__}")
        bags, length = input.shape
        starts = np.arange(bags, dtype=np.int64) * length
        flat = input.reshape(-1)
        if per_sample_weights is not None:
            per_sample_weights = per_sample_weights.reshape(-1)
    elif input.dim() == 1:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        if offsets.dim() != 1:
            raise ValueError("offsets has to be a 1D Tensor")
        starts = offsets._data.astype(np.int64)
        if include_last_offset:
            starts = starts[:-1]
        flat = input
    else:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension "
                         f"{input.dim()}")
    n, count = flat.shape[0], len(starts)
    if count and (starts[0] != 0 or (np.diff(starts) < 0).any() or starts[-1] > n):
        raise RuntimeError(f"embedding_bag: offsets must start at 0, not decrease and stay "
                           f"within the input's {n} entries, got {starts.tolist()}")
    rows = embedding(flat, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse)
    bag = np.searchsorted(starts, np.arange(n), side="right") - 1
    keep = np.ones(n, bool) if padding_idx is None else \
        flat._data != (padding_idx if padding_idx >= 0 else weight.shape[0] + padding_idx)
    d = weight.shape[1]
    if mode == "max":
        data = np.where(keep[:, None], rows._data, -np.inf)
        pick = np.zeros((count, d), np.int64)
        empty = np.ones(count, bool)
        for b in range(count):
            members = np.nonzero((bag == b) & keep)[0]
            if members.size:
                empty[b] = False
                pick[b] = members[np.argmax(data[members], axis=0)]
        out = rows.gather(0, _wrap(pick)) if n else weight.new_zeros((count, d))
        return out.masked_fill(_wrap(empty[:, None]), 0.0)
    if per_sample_weights is not None:
        rows = rows * per_sample_weights.unsqueeze(1)
    index = _wrap(bag[keep].astype(np.int64))
    total = index_add(weight.new_zeros((count, d)), 0, index, rows[_wrap(keep)])
    if mode == "sum":
        return total
    sizes = np.bincount(bag[keep], minlength=count).astype(weight._data.dtype)
    return total / _wrap(np.maximum(sizes, 1).reshape(-1, 1))


def channel_shuffle(input, groups):
    """ShuffleNet's channel shuffle: the channels (dim 1) seen as (groups, C / groups), that
    transposed: (N, C, *) -> (N, C, *), channel g * (C / groups) + i moved to i * groups + g."""
    if input.dim() < 3:
        raise RuntimeError(f"channel_shuffle expects input to have at least 3 dimensions, but "
                           f"got input with sizes {list(input.shape)}")
    n, c = input.shape[0], input.shape[1]
    if groups <= 0:
        raise RuntimeError(f"Number of groups to divide channels in must be positive. Value of "
                           f"groups:{groups}")
    if c % groups:
        raise RuntimeError(f"Number of channels must be divisible by groups. Got {c} channels "
                           f"and {groups} groups.")
    rest = tuple(input.shape[2:])
    return input.reshape((n, groups, c // groups) + rest).transpose(1, 2).reshape(
        (n, c) + rest)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """max_pool1d(return_indices=True)'s inverse: each value put back at its index in a zero
    (N, C, L_out), L_out = (L - 1) * stride - 2 * padding + kernel_size or output_size."""
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 1,
                       "max_unpool1d")


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """max_pool2d(return_indices=True)'s inverse: each value put back at its index (y * W + x)
    in a zero (N, C, H_out, W_out); gradients go back to the values."""
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 2,
                       "max_unpool2d")


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """max_unpool2d over volumes: each value put back at its index ((z * H + y) * W + x) in a
    zero (N, C, D_out, H_out, W_out)."""
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 3,
                       "max_unpool3d")


def _max_unpool(x, indices, kernel_size, stride, padding, output_size, dims, fn):
    from ..ops.shape import scatter
    from ._functional_conv import _ints

    kernel = _ints(kernel_size, dims, "kernel_size", fn)
    stride = kernel if stride is None else _ints(stride, dims, "stride", fn)
    padding = _ints(padding, dims, "padding", fn)
    if tuple(x.shape) != tuple(indices.shape):
        raise RuntimeError(f"Expected shape of indices to be same as that of the input tensor "
                           f"({list(x.shape)}) but got indices tensor with shape: "
                           f"{list(indices.shape)}")
    if x.dim() not in (dims + 1, dims + 2):
        raise RuntimeError(f"{fn}: expected a {dims + 1}D or {dims + 2}D input, got "
                           f"{list(x.shape)}")
    spatial = tuple(x.shape[-dims:])
    size = tuple((s - 1) * st - 2 * p + k for s, st, p, k in zip(spatial, stride, padding, kernel))
    if output_size is not None:
        wanted = tuple(int(v) for v in output_size)[-dims:]
        if len(wanted) != dims:
            raise ValueError(f"output_size should be a sequence containing {dims} or "
                             f"{dims + 2} elements, but it has a length of "
                             f"'{len(output_size)}'")
        size = wanted
    lead = tuple(x.shape[:-dims])
    total = int(np.prod(size))
    idx = indices._data.reshape(lead + (-1,))
    if idx.size and (idx.min() < 0 or idx.max() >= total):
        raise RuntimeError(f"Found an invalid max index: {int(idx.max())} (output volumes are "
                           f"of size {'x'.join(map(str, size))}")
    flat = x.reshape(lead + (-1,))
    out = scatter(x.new_zeros(lead + (total,)), -1, _wrap(idx.astype(np.int64)), flat)
    return out.reshape(lead + size)
