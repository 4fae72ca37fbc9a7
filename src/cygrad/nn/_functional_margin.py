"""torch.nn.functional's margin, embedding and likelihood losses, made of cygrad's ops (each
element's loss elementwise, the reductions cygrad's exact sums): margin_ranking_loss,
hinge_embedding_loss, soft_margin_loss, multilabel_soft_margin_loss, cosine_embedding_loss,
multi_margin_loss, triplet_margin_loss, poisson_nll_loss and gaussian_nll_loss. Formulas,
defaults, checks and messages are torch's (ATen's Loss.cpp and torch/nn/functional.py)."""

import math

import numpy as np

from .. import autograd
from ..ops.shape import where
from ..tensor import Tensor, _wrap
from ._functional_loss import (
    _check_reduction,
    _constant,
    _input,
    _legacy_reduction,
    _reduced,
    _target,
    pairwise_distance,
)

__all__ = [
    "margin_ranking_loss", "hinge_embedding_loss", "soft_margin_loss",
    "multilabel_soft_margin_loss", "cosine_embedding_loss", "multi_margin_loss",
    "triplet_margin_loss", "poisson_nll_loss", "gaussian_nll_loss",
]


def _reduction(size_average, reduce, reduction):
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    return reduction


def margin_ranking_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                        reduction="mean"):
    """max(0, -target * (input1 - input2) + margin), reduced."""
    reduction = _reduction(size_average, reduce, reduction)
    _input(input1, "margin_ranking_loss")
    input2, target = _target(input2, input1), _target(target, input1)
    if not input1.ndim == input2.ndim == target.ndim:
        raise RuntimeError(f"margin_ranking_loss : All input tensors should have same dimension "
                           f"but got sizes: input1: {input1.shape}, input2: {input2.shape}, "
                           f"target: {target.shape} ")
    return _reduced((-target * (input1 - input2) + margin).clamp_min(0), reduction)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None,
                         reduction="mean"):
    """input where target is 1, max(0, margin - input) where target is -1 (both where target is
    neither, as torch), reduced."""
    reduction = _reduction(size_average, reduce, reduction)
    _input(input, "hinge_embedding_loss")
    target = _target(target, input)
    zero = input.new_zeros(())
    at_margin = where(target != 1, (margin - input).clamp_min(0), zero)
    return _reduced(at_margin + where(target != -1, input, zero), reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """log(1 + exp(-target * input)), reduced."""
    reduction = _reduction(size_average, reduce, reduction)
    _input(input, "soft_margin_loss")
    return _reduced((-input * _target(target, input)).exp().log1p(), reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction="mean"):
    """-(target * logsigmoid(input) + (1 - target) * logsigmoid(-input)), times weight, averaged
    over the classes (the last dim), then reduced over the samples."""
    reduction = _reduction(size_average, reduce, reduction)
    _input(input, "multilabel_soft_margin_loss")
    target = _target(target, input)
    from .functional import logsigmoid

    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * (weight if isinstance(weight, Tensor) else _target(weight, input))
    dim = input.ndim - 1
    loss = loss.sum(dim) / input.shape[dim]
    return _reduced(loss, reduction)


def cosine_embedding_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                          reduction="mean"):
    """1 - cos(input1, input2) where target is 1, max(0, cos - margin) where it is -1 (0
    elsewhere); cos = sum(x1 x2) / sqrt((sum(x1 x1) + 1e-12)(sum(x2 x2) + 1e-12)) along the
    last dim, reduced."""
    reduction = _reduction(size_average, reduce, reduction)
    _input(input1, "cosine_embedding_loss")
    input2, target = _target(input2, input1), _target(target, input1)
    d = target.ndim
    if d not in (0, 1):
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    if d == 1 and not (input1.ndim == 2 and input2.ndim == 2):
        raise RuntimeError(f"1D target tensor expects 2D input tensors, but found inputs with "
                           f"sizes {list(input1.shape)} and {list(input2.shape)}.")
    if d == 0 and not (input1.ndim == 1 and input2.ndim == 1):
        raise RuntimeError(f"0D target tensor expects 1D input tensors, but found inputs with "
                           f"sizes {list(input1.shape)} and {list(input2.shape)}.")
    eps = 1e-12
    prod = (input1 * input2).sum(d)
    mag1, mag2 = (input1 * input1).sum(d) + eps, (input2 * input2).sum(d) + eps
    cos = prod / (mag1 * mag2).sqrt()
    zero = cos.new_zeros(())
    loss = where(target == 1, 1 - cos, zero) + where(target == -1,
                                                     (cos - margin).clamp_min(0), zero)
    return _reduced(loss, reduction)


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None,
                      reduce=None, reduction="mean"):
    """Per sample, sum over classes i != y of max(0, margin - x[y] + x[i])**p (times
    weight[y]), divided by the number of classes; reduced. input (N, C) or (C,), target (N,)
    or () class indices."""
    reduction = _reduction(size_average, reduce, reduction)
    _input(input, "multi_margin_loss")
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    if input.ndim > 2:
        raise RuntimeError(f"Expected non-empty vector or matrix with optional 0-dim batch "
                           f"size, but got: {list(input.shape)}")
    target = target if isinstance(target, Tensor) else _wrap(np.asarray(target))
    x = input if input.ndim == 2 else input.reshape(1, -1)
    t = target.reshape(-1)
    n, c = x.shape
    if t.shape[0] != n:
        raise RuntimeError(f"inconsistent target size, expected {n} but got "
                           f"{list(target.shape)}")
    labels = t._data.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= c):
        raise IndexError(f"target out of range: targets must lie in [0, {c}), got "
                         f"{labels.min()}..{labels.max()}")
    index = _wrap(labels.reshape(-1, 1))
    picked = x.gather(1, index)
    hinge = (margin - picked + x).clamp_min(0)
    if p == 2:
        hinge = hinge * hinge
    w = _constant(weight, "weight", "multi_margin_loss")
    if w is not None:
        hinge = hinge * _wrap(w.astype(x._data.dtype)[labels].reshape(-1, 1))
    others = _wrap(np.arange(c).reshape(1, -1) != labels.reshape(-1, 1))
    loss = where(others, hinge, hinge.new_zeros(())).sum(1) / c
    if input.ndim < 2:
        loss = loss.reshape(target.shape)
    return _reduced(loss, reduction)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                        size_average=None, reduce=None, reduction="mean"):
    """max(0, margin + d(anchor, positive) - d(anchor, negative)), d the pairwise distance
    (F.pairwise_distance with p and eps); with swap, d(anchor, negative) is replaced by
    d(positive, negative) where that is smaller. Reduced."""
    reduction = _reduction(size_average, reduce, reduction)
    _input(anchor, "triplet_margin_loss")
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise RuntimeError(f"The anchor, positive, and negative tensors are expected to have "
                           f"the same number of dimensions, but got: anchor {anchor.ndim}D, "
                           f"positive {positive.ndim}D, and negative {negative.ndim}D inputs")
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = d_neg.minimum(pairwise_distance(positive, negative, p, eps))
    return _reduced((margin + d_pos - d_neg).clamp_min(0), reduction)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8,
                     reduce=None, reduction="mean"):
    """exp(input) - target * input (log_input), or input - target * log(input + eps); with
    full, Stirling's target * log(target) - target + log(2 pi target) / 2 added where
    target > 1. Reduced."""
    reduction = _reduction(size_average, reduce, reduction)
    _input(input, "poisson_nll_loss")
    target = _target(target, input)
    if log_input:
        loss = input.exp() - target * input
    else:
        loss = input - target * (input + eps).log()
    if full:
        small = target <= 1  # (0 there; computed at 2 instead, so no log(0) is taken)
        t = target.masked_fill(small, 2)
        stirling = t * t.log() - t + 0.5 * (2 * math.pi * t).log()
        loss = loss + stirling.masked_fill(small, 0)
    return _reduced(loss, reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """(log(max(var, eps)) + (input - target)**2 / max(var, eps)) / 2 (+ log(2 pi) / 2 with
    full), reduced. var has input's shape, or input's without its last dim (or with it 1): one
    variance for the last dim's entries. The clamp at eps passes the gradient through, as
    torch's (it is made under no_grad)."""
    _input(input, "gaussian_nll_loss")
    target = _target(target, input)
    if not isinstance(var, Tensor):
        var = _wrap(np.asarray(var, dtype=input._data.dtype))
    if var.shape != input.shape:
        if input.shape[:-1] == var.shape:
            var = var.unsqueeze(-1)
        elif not (input.shape[:-1] == var.shape[:-1] and var.ndim and var.shape[-1] == 1):
            raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not valid")
    if bool((var._data < 0).any()):
        raise ValueError("var has negative entry/entries")
    var = var.clone()
    with autograd.no_grad():
        var.clamp_(min=eps)
    loss = 0.5 * (var.log() + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduced(loss, reduction)


def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Per sample, sum over its target classes j (target's entries up to the first -1) and
    the other classes c of max(0, 1 - (x[j] - x[c])), over the number of classes. Reduced
    over the samples."""
    reduction = _reduction(size_average, reduce, reduction)
    _input(input, "multilabel_margin_loss")
    t = target._data if isinstance(target, Tensor) else np.asarray(target)
    if input.ndim > 2 or tuple(t.shape) != tuple(input.shape) or (
            input.ndim == 1 and input.shape[0] == 0):
        raise RuntimeError(f"inconsistent target size: {list(t.shape)} for input of size: "
                           f"{list(input.shape)}")
    if t.dtype.kind not in "iu":
        raise RuntimeError(f"multilabel_margin_loss: expected target of dtype long, got "
                           f"{t.dtype}")
    x = input if input.ndim == 2 else input.unsqueeze(0)
    t = t.reshape(x.shape)
    n, c = x.shape
    if t.size and (t.min() < -1 or t.max() >= c):
        raise RuntimeError(f"multilabel_margin_loss: target values must be in [-1, {c}), got "
                           f"{int(t.min()) if t.min() < -1 else int(t.max())}")
    valid = np.cumprod(t >= 0, axis=1).astype(bool)  # the targets before the first -1
    labels = np.where(valid, t, 0)
    is_target = np.zeros((n, c), bool)
    rows = np.broadcast_to(np.arange(n)[:, None], labels.shape)
    is_target[rows[valid], labels[valid]] = True
    x_target = x.gather(1, _wrap(labels.astype(np.int64)))  # (n, c): x at each target slot
    pairs = (1 - x_target.unsqueeze(2) + x.unsqueeze(1)).clamp_min(0)  # (n, j, c)
    mask = valid[:, :, None] & ~is_target[:, None, :]
    loss = pairs.masked_fill(_wrap(~mask), 0).sum((1, 2)) / c
    if input.ndim == 1 and reduction == "none":
        loss = loss.squeeze(0)
    return _reduced(loss, reduction)


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None,
                                      margin=1.0, swap=False, reduction="mean"):
    """max(0, margin + d(anchor, positive) - d(anchor, negative)) for a distance d of your
    own (default F.pairwise_distance); with swap, d(anchor, negative) is replaced by
    d(positive, negative) where that is smaller. Reduced."""
    _check_reduction(reduction)
    if margin <= 0:
        raise ValueError(f"triplet_margin_with_distance_loss: expected margin to be greater "
                         f"than 0, got {margin} instead")
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise RuntimeError(f"The anchor, positive, and negative tensors are expected to have "
                           f"the same number of dimensions, but got: anchor {anchor.ndim}D, "
                           f"positive {positive.ndim}D, and negative {negative.ndim}D inputs")
    distance = pairwise_distance if distance_function is None else distance_function
    d_pos = distance(anchor, positive)
    d_neg = distance(anchor, negative)
    if swap:
        d_neg = d_neg.minimum(distance(positive, negative))
    return _reduced((margin + d_pos - d_neg).clamp_min(0), reduction)


__all__ += ["multilabel_margin_loss", "triplet_margin_with_distance_loss"]
