"""F.embedding_bag and nn.EmbeddingBag (the text-classification tutorial's layer): values and
gradients (table and per-sample weights) against torch for every mode, padding_idx, 2-D input
and include_last_offset (skipped without torch); identical bags give identical outputs; the
module's init, repr and torch's errors."""

import numpy as np
import pytest

import cygrad
import cygrad.nn.functional as F
from cygrad import nn

W = np.random.default_rng(0).standard_normal((10, 4))
INPUT = np.array([1, 2, 4, 5, 4, 3, 2, 9, 0])
OFFSETS = np.array([0, 4, 4, 7])  # (the second bag is empty)


@pytest.mark.parametrize("mode,weighted", [("sum", False), ("sum", True), ("mean", False),
                                           ("max", False)])  # (weights: mode='sum' only)
@pytest.mark.parametrize("padding_idx", [None, 2])
def test_matches_torch(mode, padding_idx, weighted):
    torch = pytest.importorskip("torch")
    psw = np.random.default_rng(1).standard_normal(len(INPUT))
    results = []
    for lib, fn in ((torch, torch.nn.functional.embedding_bag), (cygrad, F.embedding_bag)):
        w = lib.tensor(W, requires_grad=True)
        p = lib.tensor(psw, requires_grad=True) if weighted else None
        out = fn(lib.tensor(INPUT), w, lib.tensor(OFFSETS), mode=mode, padding_idx=padding_idx,
                 per_sample_weights=p)
        g = np.arange(out.numel(), dtype=np.float64).reshape(tuple(out.shape))
        (out * lib.tensor(g)).sum().backward()
        results.append((out.detach().numpy(), w.grad.numpy(),
                        p.grad.numpy() if weighted else None))
    (want, wgrad, pgrad), (got, cgrad, cpgrad) = results
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(cgrad, wgrad, rtol=1e-13, atol=1e-15)
    if weighted:
        np.testing.assert_allclose(cpgrad, pgrad, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_2d_input_and_last_offset_match_torch(mode):
    torch = pytest.importorskip("torch")
    rows = np.random.default_rng(2).integers(0, 10, (3, 4))
    want = torch.nn.functional.embedding_bag(torch.tensor(rows), torch.tensor(W), mode=mode)
    got = F.embedding_bag(cygrad.tensor(rows), cygrad.tensor(W), mode=mode)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-14)
    last = np.append(OFFSETS, len(INPUT))
    want = torch.nn.functional.embedding_bag(torch.tensor(INPUT), torch.tensor(W),
                                             torch.tensor(last), mode=mode,
                                             include_last_offset=True)
    got = F.embedding_bag(cygrad.tensor(INPUT), cygrad.tensor(W), cygrad.tensor(last),
                          mode=mode, include_last_offset=True)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-14)


def test_identical_bags_identical_outputs():
    w = cygrad.tensor(np.random.default_rng(3).standard_normal((50, 8)).astype(np.float32))
    bag = [7, 3, 3, 41, 12, 0, 9]
    inp = cygrad.tensor(bag + [5, 6] + bag)
    out = F.embedding_bag(inp, w, cygrad.tensor([0, 7, 9]), mode="mean").numpy()
    assert np.array_equal(out[0], out[2]) and not np.array_equal(out[0], out[1])


def test_module():
    torch = pytest.importorskip("torch")
    m = nn.EmbeddingBag(10, 3, mode="sum", padding_idx=0)
    assert repr(m) == repr(torch.nn.EmbeddingBag(10, 3, mode="sum", padding_idx=0))
    assert np.array_equal(m.weight.numpy()[0], np.zeros(3))
    out = m(cygrad.tensor([1, 2, 0, 3]), cygrad.tensor([0, 2]))
    assert tuple(out.shape) == (2, 3)
    np.testing.assert_allclose(out.numpy()[1], m.weight.numpy()[3], rtol=1e-6)
    with pytest.raises(ValueError, match="offsets has to be a 1D Tensor but got None"):
        m(cygrad.tensor([1, 2]))
    with pytest.raises(ValueError, match="offsets has to be None"):
        m(cygrad.tensor([[1, 2]]), cygrad.tensor([0]))
    with pytest.raises(NotImplementedError, match="only supported for mode='sum'"):
        F.embedding_bag(cygrad.tensor([1]), cygrad.tensor(W), cygrad.tensor([0]), mode="mean",
                        per_sample_weights=cygrad.ones(1, dtype=cygrad.float64))
