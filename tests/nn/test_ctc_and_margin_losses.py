"""F.ctc_loss / nn.CTCLoss, F.multilabel_margin_loss / nn.MultiLabelMarginLoss and
F.triplet_margin_with_distance_loss / nn.TripletMarginWithDistanceLoss: values and gradients
against torch (skipped without it), gradcheck in float64, torch's errors, and the exactness
contract for CTC (a sequence's loss and gradient have the same bits alone or in a batch)."""

import numpy as np
import pytest

import cygrad
import cygrad.nn.functional as F
from cygrad import nn


def _ctc_case(seed, T=12, N=3, C=5, S=4):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((T, N, C))
    targets = rng.integers(1, C, (N, S))
    targets[0, :2] = [2, 2]  # a repeat: a blank must separate the two 2s
    return logits, targets, [T, T - 2, 7][:N], [3, 2, 4][:N]


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("concatenated", [False, True])
def test_ctc_matches_torch(reduction, concatenated):
    torch = pytest.importorskip("torch")
    logits, targets, il, tl = _ctc_case(0)
    tgt = np.concatenate([targets[b, :n] for b, n in enumerate(tl)]) if concatenated \
        else targets
    tx = torch.tensor(logits, requires_grad=True)
    cx = cygrad.tensor(logits, requires_grad=True)
    tloss = torch.nn.functional.ctc_loss(tx.log_softmax(2), torch.tensor(tgt),
                                         torch.tensor(il), torch.tensor(tl),
                                         reduction=reduction)
    closs = F.ctc_loss(cx.log_softmax(2), cygrad.tensor(tgt), cygrad.tensor(il),
                       cygrad.tensor(tl), reduction=reduction)
    np.testing.assert_allclose(closs.numpy(), tloss.detach().numpy(), rtol=1e-13)
    w = np.random.default_rng(1).standard_normal(tuple(tloss.shape))
    (tloss * torch.tensor(w)).sum().backward()
    (closs * cygrad.tensor(w)).sum().backward()
    np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), rtol=1e-11, atol=1e-15)


def test_ctc_unbatched_blank_float32_zero_infinity_and_log_prob_gradient():
    torch = pytest.importorskip("torch")
    logits, targets, _, _ = _ctc_case(2, T=6, N=2, C=4, S=5)
    targets = np.where(targets == 3, 1, targets)  # no label equal to the blank 3
    lp = torch.tensor(logits).log_softmax(2).numpy()
    # unbatched, blank 3, float32
    t = torch.nn.CTCLoss(blank=3)(torch.tensor(lp[:, 0]).float(), torch.tensor(targets[0, :2]),
                                  torch.tensor(6), torch.tensor(2))
    c = nn.CTCLoss(blank=3)(cygrad.tensor(lp[:, 0]).float(), cygrad.tensor(targets[0, :2]),
                            cygrad.tensor(6), cygrad.tensor(2))
    assert c.dtype == cygrad.float32
    np.testing.assert_allclose(c.numpy(), t.numpy(), rtol=1e-6)
    # an impossible alignment (5 labels in 3 frames): inf, or 0 and no gradient
    for zero in (False, True):
        tl = torch.tensor(lp, requires_grad=True)
        cl = cygrad.tensor(lp, requires_grad=True)
        args = ([3, 6], [5, 2])
        tloss = torch.nn.functional.ctc_loss(tl, torch.tensor(targets), *map(torch.tensor, args),
                                             blank=3, reduction="none", zero_infinity=zero)
        closs = F.ctc_loss(cl, cygrad.tensor(targets), *map(cygrad.tensor, args), blank=3,
                           reduction="none", zero_infinity=zero)
        np.testing.assert_allclose(closs.numpy(), tloss.detach().numpy(), rtol=1e-13)
        if zero:  # torch's gradient with respect to log_probs themselves
            tloss.sum().backward()
            closs.sum().backward()
            np.testing.assert_allclose(cl.grad.numpy(), tl.grad.numpy(), rtol=1e-11,
                                       atol=1e-15)
            assert not np.any(cl.grad.numpy()[:, 0])


def test_ctc_gradcheck_and_a_sequence_alone_or_in_a_batch():
    logits, targets, il, tl = _ctc_case(3, T=5, N=2, C=4, S=2)
    x = cygrad.tensor(logits, requires_grad=True)
    assert cygrad.gradcheck(
        lambda z: F.ctc_loss(z.log_softmax(2), cygrad.tensor(targets), [5, 4], [2, 1],
                             reduction="sum"), x)
    logits, targets, il, tl = _ctc_case(4)
    batch = cygrad.tensor(logits.astype(np.float32), requires_grad=True)
    losses = F.ctc_loss(batch.log_softmax(2), cygrad.tensor(targets), il, tl, reduction="none")
    losses.sum().backward()
    for b in range(3):
        one = cygrad.tensor(logits[:, b:b + 1].astype(np.float32), requires_grad=True)
        alone = F.ctc_loss(one.log_softmax(2), cygrad.tensor(targets[b:b + 1]), [il[b]],
                           [tl[b]], reduction="none")
        alone.sum().backward()
        assert alone.numpy().tobytes() == losses.numpy()[b:b + 1].tobytes()
        assert one.grad.numpy().tobytes() == batch.grad.numpy()[:, b:b + 1].tobytes()


def test_ctc_errors():
    lp = cygrad.zeros(4, 2, 3)
    with pytest.raises(RuntimeError, match="blank must be in label range"):
        F.ctc_loss(lp, cygrad.tensor([[1, 2]] * 2), [4, 4], [2, 2], blank=3)
    with pytest.raises(RuntimeError, match="Expected input_lengths to have value at most 4"):
        F.ctc_loss(lp, cygrad.tensor([[1, 2]] * 2), [5, 4], [2, 2])
    with pytest.raises(RuntimeError, match="input_lengths must be of size batch_size"):
        F.ctc_loss(lp, cygrad.tensor([[1, 2]] * 2), [4], [2, 2])
    with pytest.raises(RuntimeError, match="Expected tensor to have size at least 3"):
        F.ctc_loss(lp, cygrad.tensor([[1, 2]] * 2), [4, 4], [3, 2])


def test_multilabel_margin_loss_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 5))
    target = np.array([[3, 0, -1, 1, 1], [1, 2, 3, 4, 0], [-1, 2, 0, 0, 0], [4, 4, -1, 2, 3]])
    for reduction in ("none", "mean", "sum"):
        for rows in (slice(None), 1):  # a batch, and one sample (1-D)
            tx = torch.tensor(x[rows], requires_grad=True)
            cx = cygrad.tensor(x[rows], requires_grad=True)
            t = torch.nn.MultiLabelMarginLoss(reduction=reduction)(tx,
                                                                  torch.tensor(target[rows]))
            c = nn.MultiLabelMarginLoss(reduction=reduction)(cx, cygrad.tensor(target[rows]))
            np.testing.assert_allclose(c.numpy(), t.detach().numpy(), rtol=1e-13)
            t.sum().backward()
            c.sum().backward()
            np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    cx = cygrad.tensor(x, requires_grad=True)
    assert cygrad.gradcheck(lambda z: F.multilabel_margin_loss(z, cygrad.tensor(target)), cx)
    with pytest.raises(RuntimeError, match="inconsistent target size"):
        F.multilabel_margin_loss(cx, cygrad.tensor(target[:, :3]))


def test_triplet_margin_with_distance_loss_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    a, p, n = (rng.standard_normal((6, 4)) for _ in range(3))
    for lib_fn, swap in ((None, False), ("cosine", True), ("cosine", False)):
        tt = [torch.tensor(v, requires_grad=True) for v in (a, p, n)]
        cc = [cygrad.tensor(v, requires_grad=True) for v in (a, p, n)]
        tf = (None if lib_fn is None else
              lambda u, v: 1 - torch.nn.functional.cosine_similarity(u, v))
        cf = None if lib_fn is None else lambda u, v: 1 - F.cosine_similarity(u, v)
        t = torch.nn.TripletMarginWithDistanceLoss(distance_function=tf, margin=0.7,
                                                   swap=swap)(*tt)
        c = nn.TripletMarginWithDistanceLoss(distance_function=cf, margin=0.7, swap=swap)(*cc)
        np.testing.assert_allclose(c.numpy(), t.detach().numpy(), rtol=1e-12)
        t.backward()
        c.backward()
        for tv, cv in zip(tt, cc):
            np.testing.assert_allclose(cv.grad.numpy(), tv.grad.numpy(), rtol=1e-11,
                                       atol=1e-15)
    with pytest.raises(ValueError, match="expected margin to be greater than 0"):
        nn.TripletMarginWithDistanceLoss(margin=0)
    with pytest.raises(RuntimeError, match="same number of dimensions"):
        F.triplet_margin_with_distance_loss(cygrad.zeros(2, 3), cygrad.zeros(3),
                                            cygrad.zeros(2, 3))
