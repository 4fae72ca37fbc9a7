"""F.ctc_loss / nn.CTCLoss: the connectionist temporal classification loss (Graves et al.,
2006), the negative log-likelihood of a target sequence summed over every alignment of it with
the input frames (blanks between and around labels, repeats merged).

Per sequence, in log space and float64: alpha over the 2L+1 extended labels (blank, l1,
blank, l2, ..., blank) frame by frame, beta backwards; nll = -logsumexp of alpha's last two
entries. The gradient is torch's: with respect to log_probs as the output of a log_softmax,
exp(lp) - exp(logsumexp_s(alpha + beta) + nll - lp) over the positions s of each class (the
same gradient with respect to the logits before a log_softmax as the exact derivative; what
torch's kernel returns for log_probs themselves). The frames past a sequence's input length get
none. Each sequence's sums run in one fixed order, whatever the batch: a sequence has the same
loss bits alone or in any batch."""

import numpy as np

from ..ops import Op
from ..tensor import Tensor, _wrap, apply
from ._functional_loss import _check_reduction


def _logsumexp(*terms):
    """log(sum(exp(t))) elementwise over the arrays given, -inf where all are -inf."""
    top = terms[0]
    for t in terms[1:]:
        top = np.maximum(top, t)
    safe = np.where(np.isfinite(top), top, 0.0)
    total = np.zeros_like(safe)
    for t in terms:
        total = total + np.exp(t - safe)
    with np.errstate(divide="ignore"):
        return np.where(np.isfinite(top), safe + np.log(total), top)


def _extended(labels, blank):
    ext = np.full(2 * len(labels) + 1, blank, np.int64)
    ext[1::2] = labels
    return ext


def _alpha(lp, ext, frames):
    """log alpha (frames x S) of one sequence; lp (frames x C) float64."""
    s_len = len(ext)
    alpha = np.full((frames, s_len), -np.inf)
    alpha[0, 0] = lp[0, ext[0]]
    if s_len > 1:
        alpha[0, 1] = lp[0, ext[1]]
    skip = np.zeros(s_len, bool)  # s may come from s - 2: a label unlike the one before it
    skip[2:] = ext[2:] != ext[:-2]  # (blanks sit at even s: never)
    none = np.full(s_len, -np.inf)
    for t in range(1, frames):
        prev = alpha[t - 1]
        one = np.concatenate(([-np.inf], prev[:-1]))
        two = np.where(skip, np.concatenate(([-np.inf, -np.inf], prev[:-2])), none)
        alpha[t] = lp[t, ext] + _logsumexp(prev, one, two)
    return alpha


def _beta(lp, ext, frames):
    """log beta (frames x S) of one sequence (each entry includes its own frame's lp, as
    alpha's do)."""
    s_len = len(ext)
    beta = np.full((frames, s_len), -np.inf)
    beta[frames - 1, s_len - 1] = lp[frames - 1, ext[s_len - 1]]
    if s_len > 1:
        beta[frames - 1, s_len - 2] = lp[frames - 1, ext[s_len - 2]]
    skip = np.zeros(s_len, bool)  # s may go on to s + 2
    skip[:-2] = ext[:-2] != ext[2:]
    none = np.full(s_len, -np.inf)
    for t in range(frames - 2, -1, -1):
        nxt = beta[t + 1]
        one = np.concatenate((nxt[1:], [-np.inf]))
        two = np.where(skip, np.concatenate((nxt[2:], [-np.inf, -np.inf])), none)
        beta[t] = lp[t, ext] + _logsumexp(nxt, one, two)
    return beta


class CTCLoss(Op):
    """y[b] = -log sum over the alignments of sequence b's target of prod lp (module
    docstring)"""

    rule = ("dlp[t, c] = g[b] (exp(lp) - exp(logsumexp_{s: l'_s = c}(alpha + beta) + nll - "
            "lp)) for t < input_length[b], else 0")

    def forward(self, lp):
        self.lp = lp
        n = lp.shape[1]
        out = np.zeros(n, np.float64)
        self.parts = []
        for b in range(n):
            frames, labels = self.input_lengths[b], self.labels[b]
            ext = _extended(labels, self.blank)
            x = lp[:frames, b].astype(np.float64)
            if frames == 0:
                nll = 0.0 if len(labels) == 0 else np.inf
                alpha = np.zeros((0, len(ext)))
            else:
                alpha = _alpha(x, ext, frames)
                ends = alpha[-1, -2:] if len(ext) > 1 else alpha[-1, -1:]
                nll = -float(_logsumexp(*ends))
            if self.zero_infinity and np.isinf(nll):
                nll = 0.0
                alpha = None
            out[b] = nll
            self.parts.append((ext, alpha, nll))
        return out.astype(lp.dtype)

    def backward(self, g):
        lp = self.lp
        grad = np.zeros(lp.shape, np.float64)
        for b, (ext, alpha, nll) in enumerate(self.parts):
            frames = self.input_lengths[b]
            if alpha is None or frames == 0:  # zero_infinity's, or no frames
                continue
            x = lp[:frames, b].astype(np.float64)
            beta = _beta(x, ext, frames)
            both = alpha + beta
            lcab = np.full((frames, lp.shape[2]), -np.inf)
            for s, c in enumerate(ext):  # in the order of the extended labels
                lcab[:, c] = _logsumexp(lcab[:, c], both[:, s])
            with np.errstate(over="ignore", invalid="ignore"):
                grad[:frames, b] = (np.exp(x) - np.exp(lcab + nll - x)) * float(g[b])
        return (grad.astype(lp.dtype),)


def _lengths(values, n, name):
    a = values._data if isinstance(values, Tensor) else np.asarray(values)
    a = a.reshape(-1)
    if a.dtype.kind not in "iu":
        raise RuntimeError(f"ctc_loss: {name} must be integers, got {a.dtype}")
    if a.size != n:
        raise RuntimeError(f"{name} must be of size batch_size")
    return [int(v) for v in a]


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False):
    """The CTC loss of log_probs (T, N, C) (or (T, C): one sequence), a log_softmax over the
    classes, against targets (N, S) padded or 1-D concatenated (sum(target_lengths)) with
    input_lengths and target_lengths per sequence. reduction "mean": each loss over its target
    length, then the mean; zero_infinity: impossible alignments give 0 (and no gradient)."""
    _check_reduction(reduction)
    unbatched = log_probs.ndim == 2
    lp = log_probs.unsqueeze(1) if unbatched else log_probs
    if lp.ndim != 3:
        raise RuntimeError(f"ctc_loss: expected log_probs of 3 (batched) or 2 (unbatched) "
                           f"dimensions, got {log_probs.ndim}")
    if not lp.is_floating_point():
        raise RuntimeError(f"ctc_loss: expected floating point log_probs, got {lp.dtype}")
    frames, n, classes = lp.shape
    if not 0 <= blank < classes:
        raise RuntimeError("blank must be in label range")
    t = targets._data if isinstance(targets, Tensor) else np.asarray(targets)
    if unbatched:
        t = t.reshape(1, -1)
    ins = _lengths(input_lengths, n, "input_lengths")
    outs = _lengths(target_lengths, n, "target_lengths")
    labels = []
    if t.ndim == 1:
        if t.size < sum(outs):
            raise RuntimeError(f"Expected tensor to have size at least {sum(outs)} at "
                               f"dimension 0, but got size {t.size} for argument #2 'targets'")
        start = 0
        for length in outs:
            labels.append(t[start:start + length].astype(np.int64))
            start += length
    else:
        for b, length in enumerate(outs):
            if length > t.shape[1]:
                raise RuntimeError(f"Expected tensor to have size at least {length} at "
                                   f"dimension 1, but got size {t.shape[1]} for argument #2 "
                                   "'targets' (while checking arguments for ctc_loss_cpu)")
            labels.append(t[b, :length].astype(np.int64))
    for b in range(n):
        if ins[b] < 0 or ins[b] > frames:
            raise RuntimeError(f"Expected input_lengths to have value at most {frames}, but "
                               f"got value {ins[b]} (while checking arguments for "
                               "ctc_loss_cpu)")
        if outs[b] < 0:
            raise RuntimeError("target_lengths must be non-negative")
        if labels[b].size and (labels[b].min() < 0 or labels[b].max() >= classes
                               or (labels[b] == blank).any()):
            raise RuntimeError(f"ctc_loss: target labels must be in [0, {classes}) and not the "
                               f"blank ({blank})")
    losses = apply(CTCLoss, lp, input_lengths=ins, labels=labels, blank=blank,
                   zero_infinity=bool(zero_infinity))
    if reduction == "none":
        return losses.squeeze(0) if unbatched else losses
    if reduction == "sum":
        return losses.sum()
    divisor = _wrap(np.maximum(np.asarray(outs, np.float64), 1).astype(losses._data.dtype))
    return (losses / divisor).mean()
