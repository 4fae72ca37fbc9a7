"""Losses (functions and modules) and the small functional utilities (one_hot, pad, normalize,
distances): against PyTorch in float64 and float32 over several shapes and options (values,
gradients and dtypes), by gradcheck, bitwise for identical rows, and for torch's errors."""

import warnings

import numpy as np
import pytest

import cygrad
from cygrad import nn
from cygrad.nn import functional as F

try:  # the differential tests need torch; gradchecks and bitwise tests run without it
    import torch
    TF = torch.nn.functional
except ImportError:
    torch = TF = None
needs_torch = pytest.mark.skipif(torch is None, reason="needs PyTorch")

REDUCTIONS = ["mean", "sum", "none"]
TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-5, atol=2e-6)}


def rng(seed=0):
    return np.random.default_rng(seed)


def logits(shape, seed=0):
    return rng(seed).standard_normal(shape)


def classes(shape, n, seed=1, ignore=None, ignore_index=-100):
    t = rng(seed).integers(0, n, shape)
    if ignore is not None:
        t.reshape(-1)[list(ignore)] = ignore_index
    return t


def probs(shape, seed=2):
    return rng(seed).uniform(0.02, 0.98, shape)


# Each case: name, function of (lib, functional module, *inputs), the inputs (arrays; float
# ones are differentiated), and the reductions it takes.
W4 = rng(9).uniform(0.5, 2.0, 4)


CASES = [
    ("cross_entropy", lambda lib, f, x, t, r: f.cross_entropy(x, t, reduction=r),
     [logits((6, 4)), classes(6, 4)]),
    ("cross_entropy_1d", lambda lib, f, x, t, r: f.cross_entropy(x, t, reduction=r),
     [logits(5), np.array(3)]),
    ("cross_entropy_nd", lambda lib, f, x, t, r: f.cross_entropy(x, t, reduction=r),
     [logits((3, 4, 2, 5)), classes((3, 2, 5), 4)]),
    ("cross_entropy_weight_ignore", lambda lib, f, x, t, r: f.cross_entropy(
        x, t, lib.tensor(W4).to(x.dtype), reduction=r),
     [logits((7, 4)), classes(7, 4, ignore=[1, 4])]),
    ("cross_entropy_ignore_index_3", lambda lib, f, x, t, r: f.cross_entropy(
        x, t, ignore_index=3, reduction=r), [logits((3, 4, 6)), classes((3, 6), 4)]),
    ("cross_entropy_label_smoothing", lambda lib, f, x, t, r: f.cross_entropy(
        x, t, lib.tensor(W4).to(x.dtype), reduction=r, label_smoothing=0.15),
     [logits((2, 4, 3)), classes((2, 3), 4, ignore=[2])]),
    ("cross_entropy_smoothing_plain", lambda lib, f, x, t, r: f.cross_entropy(
        x, t, reduction=r, label_smoothing=0.3), [logits((5, 4)), classes(5, 4)]),
    ("cross_entropy_probabilities", lambda lib, f, x, p, r: f.cross_entropy(
        x, p, lib.tensor(W4).to(x.dtype), reduction=r, label_smoothing=0.1),
     [logits((5, 4)), probs((5, 4))]),
    ("cross_entropy_probabilities_nd", lambda lib, f, x, p, r: f.cross_entropy(x, p, reduction=r),
     [logits((2, 4, 3)), probs((2, 4, 3))]),
    ("nll_loss", lambda lib, f, x, t, r: f.nll_loss(x, t, reduction=r),
     [logits((6, 4)), classes(6, 4)]),
    ("nll_loss_weight_ignore_nd", lambda lib, f, x, t, r: f.nll_loss(
        x, t, lib.tensor(W4).to(x.dtype), ignore_index=0, reduction=r),
     [logits((2, 4, 5)), classes((2, 5), 4)]),
    ("mse_loss", lambda lib, f, x, y, r: f.mse_loss(x, y, reduction=r),
     [logits((4, 3)), logits((4, 3), 5)]),
    ("mse_loss_weight", lambda lib, f, x, y, w, r: f.mse_loss(x, y, reduction=r, weight=w),
     [logits((4, 3)), logits((4, 3), 5), probs((4, 3))]),
    ("l1_loss", lambda lib, f, x, y, r: f.l1_loss(x, y, reduction=r),
     [logits((3, 5)), logits((3, 5), 5)]),
    ("l1_loss_weight", lambda lib, f, x, y, w, r: f.l1_loss(x, y, reduction=r, weight=w),
     [logits((3, 5)), logits((3, 5), 5), probs((3, 5))]),
    ("smooth_l1_loss", lambda lib, f, x, y, r: f.smooth_l1_loss(x, y, reduction=r, beta=0.6),
     [logits((4, 5)), logits((4, 5), 5)]),
    ("smooth_l1_loss_beta0", lambda lib, f, x, y, r: f.smooth_l1_loss(x, y, reduction=r,
                                                                       beta=0.0),
     [logits(7), logits(7, 5)]),
    ("huber_loss", lambda lib, f, x, y, r: f.huber_loss(x, y, reduction=r, delta=0.8),
     [logits((4, 5)), logits((4, 5), 5)]),
    ("huber_loss_weight", lambda lib, f, x, y, w, r: f.huber_loss(x, y, reduction=r, delta=0.8,
                                                                   weight=w),
     [logits((4, 5)), logits((4, 5), 5), probs((4, 5))]),
    ("binary_cross_entropy", lambda lib, f, p, t, r: f.binary_cross_entropy(
        p, t, lib.tensor(W4).to(p.dtype), reduction=r), [probs((3, 4)), probs((3, 4), 7)]),
    ("binary_cross_entropy_plain", lambda lib, f, p, t, r: f.binary_cross_entropy(
        p, t, reduction=r), [probs(6), probs(6, 7)]),
    ("bce_with_logits", lambda lib, f, x, t, r: f.binary_cross_entropy_with_logits(
        x, t, reduction=r), [logits((3, 4)) * 3, probs((3, 4))]),
    ("bce_with_logits_weights", lambda lib, f, x, t, r: f.binary_cross_entropy_with_logits(
        x, t, lib.tensor(W4).to(x.dtype), reduction=r,
        pos_weight=lib.tensor(W4[::-1].copy()).to(x.dtype)), [logits((3, 4)) * 3, probs((3, 4))]),
    ("kl_div", lambda lib, f, x, t, r: f.kl_div(x, t, reduction=r),
     [np.log(probs((4, 3))), np.where(probs((4, 3), 3) > 0.3, probs((4, 3), 3), 0.0)]),
    ("kl_div_log_target", lambda lib, f, x, t, r: f.kl_div(x, t, reduction=r, log_target=True),
     [np.log(probs((4, 3))), np.log(probs((4, 3), 3))]),
]
CASE_IDS = [c[0] for c in CASES]


def run(lib, f, fn, arrays, dtype, reduction):
    """fn on the library's tensors of arrays (floats in dtype, requiring grad); the loss and
    the gradient of its weighted sum with respect to every float input."""
    tensors = [lib.tensor(a.astype(dtype) if a.dtype.kind == "f" else a,
                          requires_grad=a.dtype.kind == "f") for a in arrays]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kl_div's 'mean' warning (both libraries give it)
        out = fn(lib, f, *tensors, reduction)
    weights = np.linspace(0.5, 1.5, max(out.numel(), 1))[:out.numel()].reshape(tuple(out.shape))
    (out * lib.tensor(weights.astype(dtype))).sum().backward()
    return out, [t.grad.numpy() if t.grad is not None else None for t in tensors
                 if t.requires_grad]


@needs_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name, fn, arrays", CASES, ids=CASE_IDS)
def test_losses_match_torch(name, fn, arrays, dtype, reduction):
    ours, ours_grads = run(cygrad, F, fn, arrays, dtype, reduction)
    theirs, their_grads = run(torch, TF, fn, arrays, dtype, reduction)
    assert ours.shape == tuple(theirs.shape)
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), **TOL[dtype])
    for a, b in zip(ours_grads, their_grads):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, **TOL[dtype])


@pytest.mark.parametrize("name, fn, arrays", CASES, ids=CASE_IDS)
def test_losses_gradcheck(name, fn, arrays):
    if name == "kl_div":  # d/dt at t = 0 is not defined (torch gives nan there, as we do)
        arrays = [arrays[0], probs((4, 3), 3)]
    float_at = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]

    def loss(*floats):
        inputs = [cygrad.tensor(a) for a in arrays]
        for i, t in zip(float_at, floats):
            inputs[i] = t
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(cygrad, F, *inputs, "none")

    tensors = [cygrad.tensor(arrays[i], requires_grad=True) for i in float_at]
    cygrad.gradcheck(loss, *tensors, atol=1e-6, rtol=1e-5)


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_the_fused_cross_entropy_path_on_both_backends(backend, reduction):
    x, t = logits((9, 5)).astype(np.float32), classes(9, 5)
    xc = cygrad.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    loss = F.cross_entropy(xc, t, reduction=reduction)
    assert loss.grad_fn.name() == "NllLossBackward0"  # one fused node, named as torch's
    loss.backward()
    TF.cross_entropy(xt, torch.tensor(t), reduction=reduction).backward()
    np.testing.assert_allclose(loss.item(), TF.cross_entropy(
        torch.tensor(x), torch.tensor(t), reduction=reduction).item(), rtol=1e-6)
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------------- exactness

ROWWISE = [  # (name, fn(x, t) -> per-row or per-element losses, input row, target row)
    ("cross_entropy", lambda x, t: F.cross_entropy(x, t, reduction="none"), logits(7),
     np.array(3)),
    ("cross_entropy_smoothing", lambda x, t: F.cross_entropy(
        x, t, cygrad.tensor(W4[:3]).float(), reduction="none", label_smoothing=0.2),
     logits(3), np.array(1)),
    ("cross_entropy_probabilities", lambda x, t: F.cross_entropy(x, t, reduction="none"),
     logits(5), probs(5)),
    ("nll_loss", lambda x, t: F.nll_loss(x, t, reduction="none"), logits(6), np.array(2)),
    ("mse_loss", lambda x, t: F.mse_loss(x, t, reduction="none"), logits(4), logits(4, 3)),
    ("l1_loss", lambda x, t: F.l1_loss(x, t, reduction="none"), logits(4), logits(4, 3)),
    ("smooth_l1_loss", lambda x, t: F.smooth_l1_loss(x, t, reduction="none"), logits(4),
     logits(4, 3)),
    ("huber_loss", lambda x, t: F.huber_loss(x, t, reduction="none"), logits(4), logits(4, 3)),
    ("binary_cross_entropy", lambda x, t: F.binary_cross_entropy(x, t, reduction="none"),
     probs(4), probs(4, 3)),
    ("bce_with_logits", lambda x, t: F.binary_cross_entropy_with_logits(
        x, t, reduction="none", pos_weight=cygrad.tensor(W4).float()), logits(4), probs(4, 3)),
    ("kl_div", lambda x, t: F.kl_div(x, t, reduction="none"), np.log(probs(4)), probs(4, 3)),
]


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("name, fn, row, target", ROWWISE, ids=[r[0] for r in ROWWISE])
def test_identical_rows_get_identical_losses_and_gradients(backend, name, fn, row, target,
                                                           reduction):
    """Rows equal in float32 give the same bits in their losses and gradients, at any batch
    size (the exactness contract)."""
    seen = {}
    for n in (1, 6, 37):
        x = cygrad.tensor(np.tile(row.astype(np.float32), (n,) + (1,) * row.ndim),
                          requires_grad=True)
        t = np.tile(target, (n,) + (1,) * target.ndim)
        t = cygrad.tensor(t.astype(np.float32)) if t.dtype.kind == "f" else t
        losses = fn(x, t)
        rows = losses.numpy().reshape(n, -1)
        assert (rows == rows[0]).all(), f"{name}: rows differ at batch size {n}"
        total = {"none": losses, "sum": losses.sum(), "mean": losses.mean()}[reduction]
        total.backward(cygrad.ones_like(total))
        grads = x.grad.numpy().reshape(n, -1)
        assert (grads == grads[0]).all(), f"{name}: row gradients differ at batch size {n}"
        seen[n] = rows[0]
    assert all((v == seen[1]).all() for v in seen.values())  # and across batch sizes


# ---------------------------------------------------------------------- edge cases

EMPTY = [
    ("cross_entropy", lambda lib, f, r: f.cross_entropy(lib.zeros(0, 4), lib.zeros(0).long(),
                                                        reduction=r)),
    ("cross_entropy_weight", lambda lib, f, r: f.cross_entropy(
        lib.zeros(0, 4), lib.zeros(0).long(), lib.ones(4), reduction=r)),
    ("nll_loss", lambda lib, f, r: f.nll_loss(lib.zeros(0, 4), lib.zeros(0).long(),
                                              reduction=r)),
    ("cross_entropy_probabilities", lambda lib, f, r: f.cross_entropy(
        lib.zeros(0, 4), lib.zeros(0, 4), reduction=r)),
    ("mse_loss", lambda lib, f, r: f.mse_loss(lib.zeros(0, 3), lib.zeros(0, 3), reduction=r)),
    ("l1_loss", lambda lib, f, r: f.l1_loss(lib.zeros(0), lib.zeros(0), reduction=r)),
    ("huber_loss", lambda lib, f, r: f.huber_loss(lib.zeros(0), lib.zeros(0), reduction=r)),
    ("bce", lambda lib, f, r: f.binary_cross_entropy(lib.zeros(0), lib.zeros(0), reduction=r)),
    ("bce_with_logits", lambda lib, f, r: f.binary_cross_entropy_with_logits(
        lib.zeros(0), lib.zeros(0), reduction=r)),
    ("all_ignored", lambda lib, f, r: f.cross_entropy(
        lib.zeros(3, 4), lib.full((3,), -100).long(), reduction=r)),
]


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name, call", EMPTY, ids=[e[0] for e in EMPTY])
def test_empty_batches_as_torch(name, call, reduction):
    ours, theirs = call(cygrad, F, reduction), call(torch, TF, reduction)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())  # the mean of nothing: nan
    if reduction == "mean":
        assert np.isnan(ours.item())


@needs_torch
def test_bce_with_logits_at_infinite_logits():
    x = cygrad.tensor([np.inf, -np.inf, 0.0, 200.0], requires_grad=True)
    t = cygrad.tensor([0.0, 1.0, 0.5, 0.0])
    ours = F.binary_cross_entropy_with_logits(x, t, reduction="none").numpy()
    theirs = TF.binary_cross_entropy_with_logits(torch.tensor(x.numpy()), torch.tensor(
        t.numpy()), reduction="none").numpy()
    np.testing.assert_array_equal(ours, theirs)
    assert ours[0] == np.inf and np.isnan(ours[1])  # both as torch


def test_bce_log_is_clamped_at_minus_100():
    p = cygrad.tensor([0.0, 1.0, 0.5])
    t = cygrad.tensor([1.0, 0.0, 1.0])
    np.testing.assert_allclose(F.binary_cross_entropy(p, t, reduction="none").numpy(),
                               [100.0, 100.0, np.log(2)], rtol=1e-6)


def test_cross_entropy_large_logits_are_stable(backend):
    x = cygrad.tensor([[1000.0, 0.0], [-1000.0, 1000.0]], dtype=cygrad.float64,
                      requires_grad=True)
    loss = F.cross_entropy(x, [0, 0], reduction="none")
    np.testing.assert_allclose(loss.numpy(), [0.0, 2000.0])


# ---------------------------------------------------------------------- arguments and targets

@needs_torch
def test_cross_entropy_third_positional_argument_is_weight():
    x = cygrad.tensor(logits((4, 3)))
    w = cygrad.tensor([1.0, 2.0, 0.5], dtype=cygrad.float64)
    assert F.cross_entropy(x, [0, 1, 2, 1], w).item() == pytest.approx(
        TF.cross_entropy(torch.tensor(x.numpy()), torch.tensor([0, 1, 2, 1]),
                         torch.tensor(w.numpy())).item(), rel=1e-12)
    with pytest.raises(TypeError, match="weight must be a Tensor, got the str 'sum'"):
        F.cross_entropy(x, [0, 1, 2, 1], "sum")


@needs_torch
@pytest.mark.parametrize("target", [[2, 0, 1], np.array([2, 0, 1], np.int32),
                                    np.array([2, 0, 1], np.uint8), (2, 0, 1),
                                    cygrad.tensor([2, 0, 1]), cygrad.tensor([2, 0, 1]).byte()],
                         ids=["list", "int32 array", "uint8 array", "tuple", "int64", "uint8"])
def test_class_index_target_forms(target):
    x = cygrad.tensor(logits((3, 4)), requires_grad=True)
    expected = TF.cross_entropy(torch.tensor(x.numpy()), torch.tensor([2, 0, 1]))
    assert F.cross_entropy(x, target).item() == pytest.approx(expected.item(), rel=1e-12)
    assert nn.NLLLoss()(x.log_softmax(1), target).item() == pytest.approx(expected.item(),
                                                                           rel=1e-12)


def test_legacy_size_average_and_reduce():
    x, t = cygrad.tensor(logits((4, 3))), cygrad.tensor(logits((4, 3), 1))
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated, "
                                         "please use reduction='sum' instead"):
        assert F.mse_loss(x, t, size_average=False).item() == pytest.approx(
            F.mse_loss(x, t, reduction="sum").item())
    with pytest.warns(UserWarning, match="reduction='none'"):
        assert F.l1_loss(x, t, reduce=False).shape == (4, 3)
    with pytest.warns(UserWarning, match="reduction='sum'"):
        assert nn.CrossEntropyLoss(size_average=False).reduction == "sum"


@needs_torch
def test_mse_loss_broadcasts_with_torchs_warning():
    x, t = cygrad.tensor(logits((4, 3))), cygrad.tensor(logits(3, 1))
    with pytest.warns(UserWarning, match="Using a target size .* that is different to the "
                                         "input size"):
        ours = F.mse_loss(x, t)
    with pytest.warns(UserWarning):
        theirs = TF.mse_loss(torch.tensor(x.numpy()), torch.tensor(t.numpy()))
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-12)


def test_array_targets_take_the_input_dtype():
    x = cygrad.tensor(np.zeros((2, 2), np.float32), requires_grad=True)
    loss = nn.MSELoss()(x, np.array([[1.0, 0.0], [0.0, 2.0]]))  # a float64 array
    assert loss.dtype == cygrad.float32 and loss.item() == pytest.approx(5 / 4)


@needs_torch
def test_dtype_promotion_as_torch():
    for fn in ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div",
               "binary_cross_entropy_with_logits"):
        for a, b in ((np.float32, np.float64), (np.float64, np.float32)):
            x, t = probs(3).astype(a), probs(3, 1).astype(b)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ours = getattr(F, fn)(cygrad.tensor(x), cygrad.tensor(t))
                theirs = getattr(TF, fn)(torch.tensor(x), torch.tensor(t))
            assert ours.dtype.name == str(theirs.dtype).removeprefix("torch."), (fn, a, b)


# ---------------------------------------------------------------------- errors

ERRORS = [
    ("out of range", lambda lib, f: f.cross_entropy(lib.zeros(3, 4), lib.tensor([0, 4, 1]))),
    ("negative", lambda lib, f: f.nll_loss(lib.zeros(3, 4), lib.tensor([0, -1, 1]))),
    ("batch", lambda lib, f: f.cross_entropy(lib.zeros(3, 4), lib.tensor([0, 1]))),
    ("nd target", lambda lib, f: f.cross_entropy(lib.zeros(2, 4, 3), lib.zeros(2, 2).long())),
    ("int32 target", lambda lib, f: f.cross_entropy(lib.zeros(3, 4), lib.tensor([0, 1, 1]).int())),
    ("float target", lambda lib, f: f.cross_entropy(lib.zeros(3, 4), lib.tensor([0.0, 1, 1]))),
    ("weight size", lambda lib, f: f.nll_loss(lib.zeros(3, 4), lib.tensor([0, 1, 1]),
                                              lib.ones(3))),
    ("weight dtype", lambda lib, f: f.nll_loss(lib.zeros(3, 4), lib.tensor([0, 1, 1]),
                                               lib.ones(4, dtype=lib.float64))),
    ("smoothing", lambda lib, f: f.cross_entropy(lib.zeros(3, 4), lib.tensor([0, 1, 1]),
                                                 label_smoothing=1.5)),
    ("probabilities ignore", lambda lib, f: f.cross_entropy(lib.zeros(3, 4), lib.zeros(3, 4),
                                                            ignore_index=1)),
    ("reduction", lambda lib, f: f.mse_loss(lib.zeros(2), lib.zeros(2), reduction="average")),
    ("ce reduction", lambda lib, f: f.cross_entropy(lib.zeros(2, 2), lib.tensor([0, 1]),
                                                    reduction="avg")),
    ("broadcast", lambda lib, f: f.mse_loss(lib.zeros(3, 2), lib.zeros(4))),
    ("beta", lambda lib, f: f.smooth_l1_loss(lib.zeros(2), lib.zeros(2), beta=-1.0)),
    ("delta", lambda lib, f: f.huber_loss(lib.zeros(2), lib.zeros(2), delta=0.0)),
    ("bce range", lambda lib, f: f.binary_cross_entropy(lib.tensor([1.5]), lib.tensor([1.0]))),
    ("bce shape", lambda lib, f: f.binary_cross_entropy(lib.zeros(2), lib.zeros(2, 1))),
    ("bce dtype", lambda lib, f: f.binary_cross_entropy(lib.zeros(2), lib.zeros(
        2, dtype=lib.float64))),
    ("bcel shape", lambda lib, f: f.binary_cross_entropy_with_logits(lib.zeros(2),
                                                                     lib.zeros(2, 1))),
    ("bcel long target", lambda lib, f: f.binary_cross_entropy_with_logits(
        lib.zeros(2), lib.zeros(2).long())),
    ("kl integral", lambda lib, f: f.kl_div(lib.zeros(2).long(), lib.zeros(2).long())),
    ("weight requires grad", lambda lib, f: f.nll_loss(
        lib.zeros(3, 4), lib.tensor([0, 1, 1]), lib.ones(4, requires_grad=True))),
    ("mse weight size", lambda lib, f: f.mse_loss(lib.zeros(2, 2), lib.zeros(2, 2),
                                                  weight=lib.ones(2))),
    ("one_hot int32", lambda lib, f: f.one_hot(lib.tensor([0, 1]).int())),
    ("one_hot negative", lambda lib, f: f.one_hot(lib.tensor([0, -1]))),
    ("one_hot too large", lambda lib, f: f.one_hot(lib.tensor([0, 3]), 3)),
    ("one_hot empty", lambda lib, f: f.one_hot(lib.zeros(0).long())),
    ("pad odd", lambda lib, f: f.pad(lib.zeros(2, 3), (1,))),
    ("pad long", lambda lib, f: f.pad(lib.zeros(2, 3), (1, 1, 1, 1, 1, 1))),
    ("pad reflect size", lambda lib, f: f.pad(lib.zeros(1, 2, 3), (3, 0), mode="reflect")),
    ("pad reflect value", lambda lib, f: f.pad(lib.zeros(1, 2, 3), (1, 0), mode="reflect",
                                               value=2.0)),
    ("pad reflect dims", lambda lib, f: f.pad(lib.zeros(3), (1, 1), mode="reflect")),
    ("pad mode", lambda lib, f: f.pad(lib.zeros(1, 3), (1, 1), mode="wrap")),
    ("pad crop", lambda lib, f: f.pad(lib.zeros(2, 3), (-2, -2))),
    ("dropout p", lambda lib, f: f.dropout(lib.zeros(2), 1.5)),
]


@needs_torch
@pytest.mark.parametrize("name, call", ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_input_raises_torchs_exception(name, call):
    with pytest.raises(Exception) as theirs:
        call(torch, TF).sum().backward()
    with pytest.raises(type(theirs.value)) as ours:
        call(cygrad, F).sum().backward()
    words = [w for w in str(theirs.value).replace("torch.", "").split()[:4] if "[" not in w]
    text = str(ours.value)
    assert all(w in text for w in words[:2]), (text, str(theirs.value))


# ---------------------------------------------------------------------- modules

MODULES = [
    ("L1Loss", {}, [logits((3, 4)), logits((3, 4), 1)]),
    ("MSELoss", {"reduction": "sum"}, [logits((3, 4)), logits((3, 4), 1)]),
    ("SmoothL1Loss", {"beta": 0.5}, [logits((3, 4)), logits((3, 4), 1)]),
    ("HuberLoss", {"delta": 0.5, "reduction": "none"}, [logits((3, 4)), logits((3, 4), 1)]),
    ("NLLLoss", {"weight": W4, "ignore_index": 2}, [logits((5, 4)), classes(5, 4)]),
    ("CrossEntropyLoss", {"weight": W4, "label_smoothing": 0.1},
     [logits((5, 4)), classes(5, 4)]),
    ("BCELoss", {"weight": W4}, [probs((3, 4)), probs((3, 4), 1)]),
    ("BCEWithLogitsLoss", {"pos_weight": W4}, [logits((3, 4)), probs((3, 4), 1)]),
    ("KLDivLoss", {"reduction": "batchmean", "log_target": True},
     [np.log(probs((3, 4))), np.log(probs((3, 4), 1))]),
]


@needs_torch
@pytest.mark.parametrize("name, kwargs, arrays", MODULES, ids=[m[0] for m in MODULES])
def test_loss_modules_match_torch(name, kwargs, arrays):
    def build(lib):
        args = {k: lib.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        return getattr(lib.nn, name)(**args)

    ours, theirs = build(cygrad), build(torch)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    a = [cygrad.tensor(x, requires_grad=x.dtype.kind == "f") for x in arrays]
    b = [torch.tensor(x, requires_grad=x.dtype.kind == "f") for x in arrays]
    out, tout = ours(*a), theirs(*b)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-12)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(a[0].grad.numpy(), b[0].grad.numpy(), rtol=1e-10, atol=1e-14)
    assert ours.double() is ours  # weight buffers follow the module's dtype


@needs_torch
def test_loss_modules_check_reduction_when_called():
    loss = nn.MSELoss(reduction="average")  # as torch: accepted here, refused in forward
    with pytest.raises(ValueError, match="average is not a valid value for reduction"):
        loss(cygrad.zeros(2), cygrad.zeros(2))


# ---------------------------------------------------------------------- utilities

def compare(fn, *arrays, grad=True):
    if torch is None:
        pytest.skip("needs PyTorch")
    xs = [cygrad.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    ts = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    out, tout = fn(cygrad, F, *xs), fn(torch, TF, *ts)
    assert out.shape == tuple(tout.shape)
    assert out.dtype.name == str(tout.dtype).removeprefix("torch.")
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-12, atol=1e-14)
    if grad:
        w = np.linspace(-1, 1, out.numel()).reshape(tuple(out.shape))
        (out * cygrad.tensor(w)).sum().backward()
        (tout * torch.tensor(w)).sum().backward()
        for x, t in zip(xs, ts):
            if t.requires_grad:
                np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-10,
                                           atol=1e-14)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("pad, shape", [((1, 2), (2, 3, 5)), ((2, 0, 1, 3), (2, 3, 4, 5)),
                                        ((-1, 2), (3, 5)), ((1, -2, 2, 1), (1, 4, 5)),
                                        ((1, 1, 1, 1, 1, 1), (1, 2, 3, 3, 3))])
def test_pad_matches_torch(mode, pad, shape):
    cygrad.gradcheck(lambda x: F.pad(x, pad, mode=mode),
                     cygrad.tensor(logits(shape), requires_grad=True))
    compare(lambda lib, f, x: f.pad(x, pad, mode=mode), logits(shape))


def test_pad_constant_any_dims_and_values():
    compare(lambda lib, f, x: f.pad(x, (1, 1, 0, 2, 3, 0), value=-1.5), logits((2, 3, 4, 2)))
    compare(lambda lib, f, x: f.pad(x, (2, 1), value=2.5), np.arange(6).reshape(2, 3),
            grad=False)


@pytest.mark.parametrize("dim", [1, 0, -1])
def test_distances_and_normalize_match_torch(dim):
    a, b = logits((4, 5)), logits((1, 5), 1)
    cygrad.gradcheck(lambda x, y: F.cosine_similarity(x, y, dim=dim),
                     cygrad.tensor(a, requires_grad=True), cygrad.tensor(b, requires_grad=True))
    for p in (1, 2):
        cygrad.gradcheck(lambda x, p=p: F.normalize(x, p=p, dim=dim),
                         cygrad.tensor(a, requires_grad=True))
    cygrad.gradcheck(lambda x, y: F.pairwise_distance(x, y, p=3, keepdim=dim == 0),
                     cygrad.tensor(a, requires_grad=True), cygrad.tensor(b, requires_grad=True))
    compare(lambda lib, f, x, y: f.cosine_similarity(x, y, dim=dim), a, b)
    compare(lambda lib, f, x: f.normalize(x, p=1, dim=dim), a)
    compare(lambda lib, f, x: f.normalize(x, dim=dim), a)
    compare(lambda lib, f, x, y: f.pairwise_distance(x, y, p=3, keepdim=dim == 0), a, b)
    compare(lambda lib, f, x, y: lib.nn.CosineSimilarity(dim=dim)(x, y), a, logits((4, 5), 2))
    compare(lambda lib, f, x, y: lib.nn.PairwiseDistance()(x, y), a[0], b[0])


def test_cosine_similarity_of_a_zero_vector():
    compare(lambda lib, f, x, y: f.cosine_similarity(x, y), np.zeros((2, 3)), logits((2, 3)))


@needs_torch
def test_one_hot_matches_torch():
    for args in (([0, 2, 1],), ([[0], [3]], 5), ([], 3)):
        ours = F.one_hot(cygrad.tensor(args[0], dtype=cygrad.int64), *args[1:])
        theirs = TF.one_hot(torch.tensor(args[0], dtype=torch.int64), *args[1:])
        assert ours.dtype == cygrad.int64 and ours.shape == tuple(theirs.shape)
        assert ours.tolist() == theirs.tolist()
