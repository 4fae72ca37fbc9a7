"""More of torch.nn.functional, made of cygrad's ops as torch's Python code makes them:
local_response_norm, lp_pool1d, lp_pool2d, gumbel_softmax, pdist, rrelu and embedding_bag."""

import numpy as np

from .. import autograd
from ..ops.shape import where
from ..tensor import Tensor, _wrap

__all__ = ["local_response_norm", "lp_pool1d", "lp_pool2d", "gumbel_softmax", "pdist", "rrelu",
           "rrelu_", "embedding_bag"]


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
