"""nn.functional's losses and small utilities (one_hot, pad, normalize, distances),
with torch's signatures, defaults, dtypes and errors; nn/functional.py re-exports them.

Reductions ('mean', 'sum', 'none') use the exact sums of ops/reduction.py, and the mean of
nothing is nan, as in torch. Each loss computes every element (or row) with the same arithmetic
wherever it sits: identical rows get identical losses and gradients.

Beyond torch, on purpose: a target may also be a numpy array or a list (class indices of any
integer type; anything else is converted to the input's dtype).
"""

import warnings

import numpy as np

from .. import dtypes
from ..ops import losses as _losses
from ..ops.elementwise import _check_broadcast
from ..ops.reduction import float_sum
from ..ops.registry import FUNCTIONS as _FUNCTIONS
from ..tensor import Tensor, _local, _wrap, apply

__all__ = [
    "nll_loss", "cross_entropy", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div", "cosine_similarity",
    "pairwise_distance", "one_hot", "pad", "normalize",
]

_REDUCTIONS = ("none", "mean", "sum")


# ---------------------------------------------------------------------- argument checks

def _legacy_reduction(size_average, reduce, reduction, where="reduction"):
    """reduction, or the one the legacy size_average/reduce flags name (with torch's warning)."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    reduction = "mean" if size_average and reduce else ("sum" if reduce else "none")
    warnings.warn("size_average and reduce args will be deprecated, please use "
                  f"reduction='{reduction}' instead.", stacklevel=3)
    return reduction


def _check_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")


def _reduced(loss, reduction):
    """loss reduced as asked: its exact sum, its mean (nan for nothing), or itself. Where
    torch's loss is one node, reduction included (BCE, Huber...), the reduction takes its name."""
    if reduction == "none":
        return loss
    out = loss.sum() if reduction == "sum" else loss.mean()
    node = getattr(loss._op, "reduced_node", None)
    if node is not None and out._op is not None:
        out._op.node = node
    return out


def _input(x, where):
    if not isinstance(x, Tensor):
        raise TypeError(f"{where}(): argument 'input' must be Tensor, not {type(x).__name__}")
    return x


def _target(target, like):
    """target as a Tensor: Tensors as they are; arrays and lists in like's dtype."""
    if isinstance(target, Tensor):
        return target
    return _wrap(np.asarray(target, dtype=like._data.dtype))


def _scalar_name(t):
    return dtypes.SCALAR_NAMES[t.dtype.name]


def _constant(t, what, where):
    """An optional weight as an array: torch's losses take no gradient for it."""
    if t is None:
        return None
    if not isinstance(t, Tensor):
        t = _wrap(np.asarray(t))
    if t._rg and _local.grad_enabled:
        raise RuntimeError(f"The function '{where}' is not differentiable with respect to "
                           f"argument '{what}'. This input cannot have requires_grad True.")
    return t._data


def _common(input, target, where):
    """input and target in their promoted float dtype, broadcast to one shape (torch warns
    when their shapes differ)."""
    if target._data.shape != input._data.shape:
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input "
                      f"size ({input.shape}). This will likely lead to incorrect results due to "
                      "broadcasting. Please ensure they have the same size.", stacklevel=3)
    dtype = dtypes.result_type(input, target)
    if not dtype.is_floating_point:
        raise RuntimeError(f"{where}: expected a floating point input or target, got "
                           f"{input.dtype} and {target.dtype}")
    return _broadcast(input.type(dtype), target.type(dtype))


def _broadcast(a, b):
    if a._data.shape == b._data.shape:
        return a, b
    _check_broadcast(a._data.shape, b._data.shape)  # torch's message, naming the dimension
    shape = np.broadcast_shapes(a._data.shape, b._data.shape)
    return a.expand(shape), b.expand(shape)


# ---------------------------------------------------------------------- classification losses

def _class_targets(input, target, where):
    """(targets as an integer array shaped like the per-row losses, is_probabilities): class
    indices (int64 or uint8 tensors, integer arrays or lists) or, for float targets of
    input's shape, class probabilities."""
    if input._data.ndim == 0:
        raise RuntimeError(f"{where}: expected an input of 1 or more dimensions, got 0")
    if isinstance(target, Tensor):
        t = target._data
        if t.dtype.kind == "f" and t.shape == input._data.shape:
            return None, True
        if t.dtype not in (np.dtype(np.int64), np.dtype(np.uint8)):
            raise RuntimeError(f"expected target dtype to be Long or Byte, but got "
                               f"{_scalar_name(target)}")
    else:
        t = np.asarray(target)
        if t.dtype.kind == "f" and t.shape == input._data.shape:
            return None, True
        if t.dtype.kind not in "iu":
            raise RuntimeError(f"expected target dtype to be Long or Byte, but got "
                               f"{t.dtype} (class indices must be integers)")
    # one snapshot of the targets: the range check and the kernel see the same values, even
    # if another thread writes the caller's array meanwhile
    t = np.array(t, copy=True)
    shape = input._data.shape
    expected = () if len(shape) == 1 else (shape[0],) + shape[2:]
    if len(shape) == 1 and t.shape == (1,):  # torch takes a (1,) target for (C,) input too
        t = t.reshape(())
    if t.shape != expected:
        if len(shape) == 1 and t.ndim == 1:
            raise ValueError(f"For 1D input, 1D target must have size 1, but got target size: "
                             f"{t.shape[0]}")
        if len(shape) <= 2 and t.ndim > 1:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        if len(shape) == 2 and t.ndim == 1:
            raise ValueError(f"Expected input batch_size ({shape[0]}) to match target "
                             f"batch_size ({t.shape[0]}).")
        raise RuntimeError(f"Expected target size {list(expected)}, got {list(t.shape)}")
    return t, False


def _class_weight(input, weight, where):
    if weight is None:
        return None
    if isinstance(weight, str):
        raise TypeError(f"{where}(): weight must be a Tensor, got the str {weight!r}; the third "
                        "positional argument is weight, as in torch (pass reduction= by name)")
    w = _constant(weight, "weight", "nll_loss_forward")
    classes = input._data.shape[0 if input._data.ndim == 1 else 1]
    if w.shape != (classes,):
        raise RuntimeError(f"weight tensor should be defined either for all {classes} classes "
                           f"or no classes but got weight tensor of shape: {list(w.shape)}")
    if w.dtype != input._data.dtype:
        raise RuntimeError(f"expected scalar type {_scalar_name(input)} but found "
                           f"{dtypes.SCALAR_NAMES[dtypes.of_array(w).name]}")
    return w


def _rows(x):
    """x (N, C), (C,) or (N, C, d1, ...) as rows of classes (M, C)."""
    if x._data.ndim == 2:
        return x
    if x._data.ndim == 1:
        return x.reshape(1, -1)
    return x.movedim(1, -1).reshape(-1, x._data.shape[1])


def _nll_rows(rows, targets, weight, ignore_index, reduction):
    """(NLL of rows (M, C) at targets (M,), the rows' weights): row i weighs weight[t_i] (1
    without weight), 0 where t_i is ignore_index; None when every row weighs 1."""
    classes = rows._data.shape[1]
    ignored = targets == ignore_index
    bad = ~ignored & ((targets < 0) | (targets >= classes))
    if bad.any():
        raise IndexError(f"Target {targets[bad][0]} is out of bounds.")
    idx = np.where(ignored, 0, targets).astype(np.intp)
    weights = None
    if weight is not None or ignored.any():
        dtype = rows._data.dtype
        weights = weight[idx] if weight is not None else np.ones(idx.shape, dtype)
        weights = np.where(ignored, dtype.type(0), weights)
    out = apply(_losses.NLL, rows, targets=idx, weights=weights, reduction=reduction)
    return out, weights


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """The negative log-likelihood: loss_i = -weight[t_i] * input[i, t_i] for log-probabilities
    input (N, C), (C,) or (N, C, d1, ...) and class indices target (N,), () or (N, d1, ...);
    targets equal to ignore_index count for nothing. 'mean' divides by the sum of the weights
    of the targets counted."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    _input(input, "nll_loss")
    targets, probabilities = _class_targets(input, target, "nll_loss")
    if probabilities:
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got "
                           f"{_scalar_name(target) if isinstance(target, Tensor) else 'Float'}")
    w = _class_weight(input, weight, "nll_loss")
    out, _ = _nll_rows(_rows(input), targets.reshape(-1), w, ignore_index, reduction)
    return out.reshape(targets.shape) if reduction == "none" else out


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """-log_softmax(input) at the target classes (nll_loss of log_softmax), for logits (N, C),
    (C,) or (N, C, d1, ...) and class indices target (N,), () or (N, d1, ...), or class
    probabilities of input's shape. weight (C,) weighs the classes; targets equal to
    ignore_index count for nothing; label_smoothing mixes the target with the uniform
    distribution. Plain (N, C) logits with class indices run one fused exact kernel."""
    if reduction not in _REDUCTIONS or size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce, reduction)
        _check_reduction(reduction)
    _input(input, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    targets, probabilities = _class_targets(input, target, "cross_entropy")
    w = _class_weight(input, weight, "cross_entropy")
    if probabilities:
        return _cross_entropy_probabilities(input, _target(target, input), w, ignore_index,
                                            reduction, label_smoothing)
    if not input.is_floating_point():
        raise NotImplementedError(f"\"log_softmax_lastdim_kernel_impl\" not implemented for "
                                  f"'{_scalar_name(input)}'")
    flat = targets.reshape(-1)
    rows = _rows(input)
    classes = rows._data.shape[1]
    lo, hi = (flat.min(), flat.max()) if flat.size else (0, -1)
    if (w is None and label_smoothing == 0 and flat.size and 0 <= lo and hi < classes
            and not (lo <= ignore_index <= hi and (flat == ignore_index).any())):  # fused
        out = apply(_losses.CrossEntropy, rows, targets=np.ascontiguousarray(flat, np.intp),
                    reduction=reduction)
        return out.reshape(targets.shape) if reduction == "none" else out
    logp = rows.log_softmax(1)
    loss, weights = _nll_rows(logp, flat, w, ignore_index, reduction)
    if label_smoothing > 0:
        # smooth_i = -sum_c weight_c * logp[i, c], weighing 0 on ignored rows; the mean
        # divides by the rows' weights, as the NLL's does
        smooth = -(logp if w is None else logp * _wrap(w)).sum(1)
        ignored = flat == ignore_index
        if ignored.any():
            smooth = smooth * _wrap((~ignored).astype(logp._data.dtype))
        if reduction == "sum":
            smooth = smooth.sum()
        elif reduction == "mean":
            smooth = smooth.sum() / (_wrap(float_sum(weights, (0,))) if weights is not None
                                     else flat.size)
        loss = loss * (1 - label_smoothing) + smooth * (label_smoothing / classes)
    return loss.reshape(targets.shape) if reduction == "none" else loss


def _cross_entropy_probabilities(input, target, w, ignore_index, reduction, label_smoothing):
    """loss_i = -sum_c weight_c * target[i, c] * log_softmax(input)[i, c]; 'mean' divides by
    the number of rows."""
    if ignore_index >= 0:
        raise RuntimeError("ignore_index is not supported for floating point target")
    if target._data.shape != input._data.shape:
        raise RuntimeError(f"cross_entropy: class probabilities of shape {tuple(target.shape)} "
                           f"do not fit input of shape {tuple(input.shape)}")
    if target._data.dtype != input._data.dtype:
        raise RuntimeError(f"expected scalar type {_scalar_name(input)} but found "
                           f"{_scalar_name(target)}")
    class_dim = 0 if input._data.ndim == 1 else 1
    classes = input._data.shape[class_dim]
    if label_smoothing > 0:
        target = target * (1 - label_smoothing) + label_smoothing / classes
    terms = input.log_softmax(class_dim) * target
    if w is not None:
        terms = terms * _wrap(w.reshape((classes,) + (1,) * (input._data.ndim - class_dim - 1)))
    if reduction == "none":
        return -terms.sum(class_dim)
    total = -terms.sum()
    if reduction == "sum":
        return total
    return total / (input._data.size / classes if classes else 0.0)


# ---------------------------------------------------------------------- regression losses

def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """(input - target)**2 per element, averaged (mean), summed (sum) or kept (none). With
    weight (input's shape): weighted, and the mean divides by the sum of the weights."""
    if (weight is None and size_average is None and reduce is None and type(input) is Tensor
            and type(target) is Tensor and reduction in _REDUCTIONS
            and input._data.shape == target._data.shape
            and input._data.dtype == target._data.dtype and input._data.dtype.kind == "f"):
        return apply(_losses.MSE, input, target, reduction=reduction)  # the fast path
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    x, t = _common(_input(input, "mse_loss"), _target(target, input), "mse_loss")
    if weight is None:
        return apply(_losses.MSE, x, t, reduction=reduction)
    return _weighted((x - t) ** 2, input, weight, reduction)


def _weighted(loss, input, weight, reduction, mean_by_weight=True):
    if not isinstance(weight, Tensor):
        weight = _wrap(np.asarray(weight, input._data.dtype))
    if weight.shape != input.shape:
        raise ValueError("Weights and input must have the same size.")
    loss = loss * weight
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / weight.sum() if mean_by_weight else loss.mean()


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """|input - target| per element, reduced (mean, sum) or kept (none). With weight (input's
    shape): weighted, and the mean divides by the sum of the weights."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    x, t = _common(_input(input, "l1_loss"), _target(target, input), "l1_loss")
    loss = apply(_losses.L1, x, t)
    return _reduced(loss, reduction) if weight is None else _weighted(loss, input, weight,
                                                                      reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """0.5 * z**2 / beta where z = |input - target| < beta, else z - 0.5 * beta (beta = 0:
    the L1 loss), reduced."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    x, t = _common(_input(input, "smooth_l1_loss"), _target(target, input), "smooth_l1_loss")
    loss = apply(_losses.L1, x, t) if beta == 0 else apply(_losses.SmoothL1, x, t, beta=beta)
    return _reduced(loss, reduction)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """0.5 * z**2 where z = |input - target| < delta, else delta * (z - 0.5 * delta), reduced;
    computed in input's dtype (as torch's). With weight (input's shape): weighted."""
    _check_reduction(reduction)
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    _input(input, "huber_loss")
    target = _target(target, input)
    if target._data.shape != input._data.shape:
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input "
                      f"size ({input.shape}). This will likely lead to incorrect results due to "
                      "broadcasting. Please ensure they have the same size.", stacklevel=2)
    if not input.is_floating_point():
        raise RuntimeError(f"result type Float can't be cast to the desired output type "
                           f"{_scalar_name(input)}")
    x, t = _broadcast(input, target.type(input.dtype))
    loss = apply(_losses.Huber, x, t, delta=delta)
    return _reduced(loss, reduction) if weight is None else _weighted(
        loss, input, weight, reduction, mean_by_weight=False)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """The KL divergence of target from input (log-probabilities): target * (log(target) -
    input) per element (exp(target) * (target - input) with log_target), reduced; 'batchmean'
    divides the sum by input.size(0) (the mathematical KL divergence)."""
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce, reduction)
    elif reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the "
                      "support size.'batchmean' divides only by the batch size, and aligns with "
                      "the KL div math definition.'mean' will be changed to behave the same as "
                      "'batchmean' in the next major release.", stacklevel=2)
    if reduction != "batchmean":
        _check_reduction(reduction)
    _input(input, "kl_div")
    target = _target(target, input)
    if not (input.is_floating_point() and target.is_floating_point()):
        raise RuntimeError("kl_div: Integral inputs not supported.")
    dtype = dtypes.result_type(input, target)
    x, t = _broadcast(input.type(dtype), target.type(dtype))
    loss = apply(_losses.KLDiv, x, t, log_target=bool(log_target))
    if reduction == "batchmean":
        total = loss.sum()
        return total / input._data.shape[0] if input._data.ndim else total
    return _reduced(loss, reduction)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    """-weight * (target * log(input) + (1 - target) * log(1 - input)) per element (each log
    at least -100), for probabilities input in [0, 1] and target of input's shape and dtype."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    _input(input, "binary_cross_entropy")
    target = _target(target, input)
    if target._data.shape != input._data.shape:
        raise ValueError(f"Using a target size ({target.shape}) that is different to the input "
                         f"size ({input.shape}) is deprecated. Please ensure they have the same "
                         "size.")
    if target._data.dtype != input._data.dtype:
        raise RuntimeError(f"Found dtype {_scalar_name(target)} but expected "
                           f"{_scalar_name(input)}")
    x = input._data
    if not ((x >= 0) & (x <= 1)).all():
        raise RuntimeError("all elements of input should be between 0 and 1")
    w = _loss_weight(weight, input, "binary_cross_entropy", "weight")
    return _reduced(apply(_losses.BCE, input, target, weight=w), reduction)


def _loss_weight(weight, input, where, what):
    """An elementwise loss's weight (or pos_weight): an array of input's dtype that
    broadcasts to input's shape."""
    w = _constant(weight, what, where)
    if w is None:
        return None
    if np.broadcast_shapes(w.shape, input._data.shape) != input._data.shape:
        raise RuntimeError(f"{where}: {what} of shape {tuple(w.shape)} does not broadcast to "
                           f"the input's shape {tuple(input.shape)}")
    return w.astype(input._data.dtype, copy=False)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    """BCE(sigmoid(input), target) in a stable form: (1 - t) * x + lw * softplus(-x) per
    element, lw = 1 + (pos_weight - 1) * t weighing the positive class; times weight. Computed
    in the target's dtype, as torch's."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    _input(input, "binary_cross_entropy_with_logits")
    target = _target(target, input)
    if target._data.shape != input._data.shape:
        raise ValueError(f"Target size ({target.shape}) must be the same as input size "
                         f"({input.shape})")
    if not target.is_floating_point():
        raise RuntimeError(f"result type {_scalar_name(input)} can't be cast to the desired "
                           f"output type {_scalar_name(target)}")
    if not input.is_floating_point():
        raise NotImplementedError(f"\"log_sigmoid_cpu\" not implemented for "
                                  f"'{_scalar_name(input)}'")
    x = input.type(target.dtype)
    w = _loss_weight(weight, x, "binary_cross_entropy_with_logits", "weight")
    pw = _loss_weight(pos_weight, x, "binary_cross_entropy_with_logits", "pos_weight")
    loss = apply(_losses.BCEWithLogits, x, target, weight=w, pos_weight=pw)
    return _reduced(loss, reduction)


# ---------------------------------------------------------------------- utilities

def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """sum(x1 / max(||x1||, eps) * x2 / max(||x2||, eps)) along dim, x1 and x2 broadcast to
    one shape first."""
    x1, x2 = _broadcast(x1, x2)
    n1 = x1.norm(2, dim, keepdim=True).clamp_min(eps)
    n2 = x2.norm(2, dim, keepdim=True).clamp_min(eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """||x1 - x2 + eps||_p along the last dim."""
    return (x1 - x2 + eps).norm(p, -1, keepdim=keepdim)


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """input / max(||input||_p, eps) along dim."""
    if out is not None:
        raise TypeError("normalize(): cygrad does not support out=")
    return input / input.norm(p, dim, keepdim=True).clamp_min(eps).expand_as(input)


def one_hot(tensor, num_classes=-1):
    """(*, num_classes) int64: 1 at each value of tensor (int64 class indices), 0 elsewhere;
    num_classes=-1 takes the largest value plus one."""
    if not isinstance(tensor, Tensor) or tensor._data.dtype != np.int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    t = tensor._data
    if num_classes == -1:
        if t.size == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(t.max()) + 1
    if t.size and t.min() < 0:
        raise RuntimeError("Class values must be non-negative.")
    if t.size and t.max() >= num_classes:
        raise RuntimeError("Class values must be smaller than num_classes.")
    out = np.zeros(t.shape + (num_classes,), np.int64)
    np.put_along_axis(out, t[..., None], 1, axis=-1)
    return _wrap(out)


_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(input, pad, mode="constant", value=None):
    """Pad (or, with negative sizes, crop) the last len(pad) // 2 dims: pad = (left, right)
    for the last dim, then (top, bottom) for the one before, ... mode 'constant' fills with
    value (0 by default); 'reflect', 'replicate' and 'circular' pad 1 to 3 dims of a
    (batched) input with its own elements."""
    _input(input, "pad")
    pad = tuple(int(v) for v in pad)
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    ndim, k = input._data.ndim, len(pad) // 2
    if k > ndim:
        raise RuntimeError(f"Padding length should be less than or equal to two times the input "
                           f"dimension but got padding length {len(pad)} and input of dimension "
                           f"{ndim}")
    if mode not in _PAD_MODES:
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    if mode != "constant":
        if value is not None and value != 0:
            raise RuntimeError(f'Padding mode "{mode}" doesn\'t take in value argument')
        if not 1 <= k <= 3 or ndim not in (k + 1, k + 2):
            raise NotImplementedError(f"Padding size {len(pad)} is not supported for {ndim}D "
                                      "input tensor. Non-constant padding pads the last 1, 2 or "
                                      "3 dimensions of an input with one or two more.")
    x = input
    for i in range(k):
        dim, left, right = ndim - 1 - i, pad[2 * i], pad[2 * i + 1]
        if mode == "constant":
            x = _pad_constant(x, dim, left, right, 0 if value is None else value)
        else:
            x = x.index_select(dim, _wrap(_pad_index(mode, x._data.shape[dim], left, right,
                                                     dim, input)))
    return x


def _pad_constant(x, dim, left, right, value):
    size = x._data.shape[dim]
    if left < 0 or right < 0:
        start, length = max(-left, 0), size - max(-left, 0) - max(-right, 0)
        if length < 0:
            raise RuntimeError("narrow(): length must be non-negative.")
        x = x.narrow(dim, start, length)
    parts = []
    for n in (left, right):
        if n > 0:
            shape = list(x._data.shape)
            shape[dim] = n
            parts.append(_FUNCTIONS["full"](shape, value, dtype=x.dtype))
    if not parts:
        return x
    pieces = ([parts.pop(0)] if left > 0 else []) + [x] + parts
    return _FUNCTIONS["cat"](pieces, dim)


def _pad_index(mode, size, left, right, dim, input):
    """The source index of each output position along one dim (np.int64)."""
    positions = np.arange(-left, size + right)
    if mode == "reflect":
        if left >= size or right >= size:
            raise RuntimeError(f"Argument #4: Padding size should be less than the corresponding "
                               f"input dimension, but got: padding ({left}, {right}) at "
                               f"dimension {dim} of input {list(input.shape)}")
        period = 2 * (size - 1)
        folded = np.abs(positions) % max(period, 1)
        return np.where(folded < size, folded, period - folded).astype(np.int64)
    if mode == "replicate":
        return np.clip(positions, 0, size - 1).astype(np.int64)
    # circular: a negative size crops first; the padding wraps around what is left
    start, kept = max(-left, 0), size - max(-left, 0) - max(-right, 0)
    if left > kept or right > kept or kept <= 0:
        raise RuntimeError("Padding value causes wrapping around more than once.")
    return (start + np.arange(-max(left, 0), kept + max(right, 0)) % kept).astype(np.int64)
