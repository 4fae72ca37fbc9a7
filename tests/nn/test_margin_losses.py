"""The margin, embedding and likelihood losses (nn/_functional_margin.py) and their modules:
values and gradients against torch for every reduction (skipped without torch), gradcheck,
the per-sample losses' bits alone and inside a batch, and torch's errors."""

import numpy as np
import pytest

import cygrad
import cygrad.nn.functional as F
from cygrad import nn


def _rng(seed):
    return np.random.default_rng(seed)


def _signs(shape, seed):
    return np.where(_rng(seed).random(shape) < 0.5, -1.0, 1.0)


# name -> (arrays as float64 (differentiable first), constant arguments, keyword arguments)
def _cases():
    r = _rng(0)
    x, y = r.standard_normal((6, 5)), r.standard_normal((6, 5))
    labels = r.integers(0, 5, 6)
    return [
        ("margin_ranking_loss", [r.standard_normal(7), r.standard_normal(7)],
         [_signs(7, 1)], {"margin": 0.3}),
        ("hinge_embedding_loss", [x], [_signs((6, 5), 2)], {"margin": 0.7}),
        ("soft_margin_loss", [x], [_signs((6, 5), 3)], {}),
        ("multilabel_soft_margin_loss", [x], [(r.random((6, 5)) < 0.4).astype(float)], {}),
        ("multilabel_soft_margin_loss", [x], [(r.random((6, 5)) < 0.4).astype(float)],
         {"weight": r.random(5)}),
        ("cosine_embedding_loss", [x, y], [_signs(6, 4)], {"margin": 0.2}),
        ("cosine_embedding_loss", [x[0], y[0]], [np.array(-1.0)], {"margin": -0.5}),
        ("multi_margin_loss", [x], [labels], {}),
        ("multi_margin_loss", [x], [labels], {"p": 2, "margin": 0.5, "weight": r.random(5)}),
        ("triplet_margin_loss", [x, y, r.standard_normal((6, 5))], [], {"margin": 1.5}),
        ("triplet_margin_loss", [x, y, r.standard_normal((6, 5))], [],
         {"p": 1, "swap": True}),
        ("poisson_nll_loss", [x], [r.poisson(2.0, (6, 5)).astype(float)], {}),
        ("poisson_nll_loss", [np.abs(x) + 0.1], [r.poisson(3.0, (6, 5)).astype(float)],
         {"log_input": False, "full": True}),
        ("gaussian_nll_loss", [x, np.abs(y) + 1e-7], [r.standard_normal((6, 5))],
         {"full": True}),
        ("gaussian_nll_loss", [x, np.abs(y[:, 0]) + 0.1], [r.standard_normal((6, 5))], {}),
    ]


CASES = _cases()
IDS = [f"{name}-{i}" for i, (name, *_) in enumerate(CASES)]


def _call(lib, name, arrays, constants, kwargs, reduction, requires_grad):
    f = getattr(lib.nn.functional, name)
    tensors = [lib.tensor(a, requires_grad=requires_grad) for a in arrays]
    consts = [lib.tensor(c) if name != "multi_margin_loss" else lib.tensor(c, dtype=lib.int64)
              for c in constants]
    kw = {k: (lib.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in kwargs.items()}
    if name == "gaussian_nll_loss":  # (input, target, var): var is the second array
        args = [tensors[0], consts[0], tensors[1]]
    elif name in ("triplet_margin_loss",):
        args = tensors
    else:
        args = tensors[:2] + consts if name in ("margin_ranking_loss",
                                                 "cosine_embedding_loss") else tensors + consts
    return f(*args, reduction=reduction, **kw), tensors


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_values_and_gradients_match_torch(case, reduction):
    torch = pytest.importorskip("torch")
    name, arrays, constants, kwargs = case
    ours, ts = _call(cygrad, name, arrays, constants, kwargs, reduction, True)
    theirs, tts = _call(torch, name, arrays, constants, kwargs, reduction, True)
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-14)
    g = _rng(7).standard_normal(tuple(theirs.shape))
    (ours * cygrad.tensor(g)).sum().backward()
    (theirs * torch.tensor(g)).sum().backward()
    for a, b in zip(ts, tts, strict=True):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", [c for c in CASES if c[0] in (
    "margin_ranking_loss", "soft_margin_loss", "cosine_embedding_loss", "multi_margin_loss",
    "poisson_nll_loss", "gaussian_nll_loss", "multilabel_soft_margin_loss")],
    ids=lambda c: c[0])
def test_gradcheck(case):
    name, arrays, constants, kwargs = case
    small = [a[:3] if a.ndim else a for a in arrays]
    consts = [c[:3] if getattr(c, "ndim", 0) else c for c in constants]

    def f(*tensors):
        fn = getattr(F, name)
        cs = [cygrad.tensor(c) if name != "multi_margin_loss" else cygrad.tensor(c,
              dtype=cygrad.int64) for c in consts]
        kw = {k: (cygrad.tensor(v) if isinstance(v, np.ndarray) else v)
              for k, v in kwargs.items()}
        if name == "gaussian_nll_loss":
            return fn(tensors[0], cs[0], tensors[1], reduction="sum", **kw)
        if name in ("margin_ranking_loss", "cosine_embedding_loss"):
            return fn(tensors[0], tensors[1], cs[0], reduction="sum", **kw)
        return fn(*tensors, *cs, reduction="sum", **kw)

    inputs = [cygrad.tensor(a, requires_grad=True) for a in small]
    assert cygrad.gradcheck(f, *inputs)


def test_per_sample_losses_have_their_bits_alone_and_in_a_batch():
    r = _rng(3)
    a, p, n = (r.standard_normal((5, 9)).astype(np.float32) for _ in range(3))
    t = r.integers(0, 9, 5)
    batch = F.triplet_margin_loss(cygrad.tensor(a), cygrad.tensor(p), cygrad.tensor(n),
                                  reduction="none").numpy()
    mm = F.multi_margin_loss(cygrad.tensor(a), cygrad.tensor(t), reduction="none").numpy()
    for i in range(5):
        one = F.triplet_margin_loss(cygrad.tensor(a[i:i + 1]), cygrad.tensor(p[i:i + 1]),
                                    cygrad.tensor(n[i:i + 1]), reduction="none").numpy()
        assert one[0] == batch[i]
        assert F.multi_margin_loss(cygrad.tensor(a[i]), cygrad.tensor(t[i]),
                                   reduction="none").numpy() == mm[i]


def test_modules_match_the_functions():
    r = _rng(4)
    x, y, z = (cygrad.tensor(r.standard_normal((4, 3))) for _ in range(3))
    s = cygrad.tensor(_signs(4, 5))
    t = cygrad.tensor(r.integers(0, 3, 4))
    pairs = [
        (nn.MarginRankingLoss(0.1)(x[:, 0], y[:, 0], s),
         F.margin_ranking_loss(x[:, 0], y[:, 0], s, 0.1)),
        (nn.HingeEmbeddingLoss(2.0, reduction="sum")(x, s.unsqueeze(1).expand(4, 3)),
         F.hinge_embedding_loss(x, s.unsqueeze(1).expand(4, 3), 2.0, reduction="sum")),
        (nn.SoftMarginLoss()(x, s.unsqueeze(1)), F.soft_margin_loss(x, s.unsqueeze(1))),
        (nn.MultiLabelSoftMarginLoss()(x, (y > 0).double()),
         F.multilabel_soft_margin_loss(x, (y > 0).double())),
        (nn.CosineEmbeddingLoss(0.5)(x, y, s), F.cosine_embedding_loss(x, y, s, 0.5)),
        (nn.MultiMarginLoss(p=2)(x, t), F.multi_margin_loss(x, t, p=2)),
        (nn.TripletMarginLoss(swap=True)(x, y, z), F.triplet_margin_loss(x, y, z, swap=True)),
        (nn.PoissonNLLLoss()(x, y.abs()), F.poisson_nll_loss(x, y.abs())),
        (nn.GaussianNLLLoss(full=True)(x, y, z.abs()),
         F.gaussian_nll_loss(x, y, z.abs(), full=True)),
    ]
    for a, b in pairs:
        assert np.array_equal(a.numpy(), b.numpy())


def test_errors():
    x = cygrad.zeros(4, 3)
    with pytest.raises(RuntimeError, match="All input tensors should have same dimension"):
        F.margin_ranking_loss(x, x, cygrad.ones(4))
    with pytest.raises(RuntimeError, match="1D target tensor expects 2D input tensors"):
        F.cosine_embedding_loss(x[0], x[0], cygrad.ones(4))
    with pytest.raises(RuntimeError, match="0D or 1D target tensor expected"):
        F.cosine_embedding_loss(x, x, cygrad.ones(4, 1))
    with pytest.raises(ValueError, match="only p == 1 and p == 2 supported"):
        F.multi_margin_loss(x, cygrad.zeros(4, dtype=cygrad.int64), p=3)
    with pytest.raises(RuntimeError, match="same number of dimensions"):
        F.triplet_margin_loss(x, x, x[0])
    with pytest.raises(ValueError, match="var is of incorrect size"):
        F.gaussian_nll_loss(x, x, cygrad.ones(3, 4))
    with pytest.raises(ValueError, match="var has negative entry"):
        F.gaussian_nll_loss(x, x, -cygrad.ones(4, 3))
    with pytest.raises(ValueError, match="expected margin to be greater than 0"):
        nn.TripletMarginLoss(margin=0)
    with pytest.raises(ValueError, match="is not a valid value for reduction"):
        F.soft_margin_loss(x, x, reduction="avg")
