"""Sparse COO tensors (cygrad/sparse.py) against torch's: construction, printing, coalescing,
sparse @ dense and dense @ sparse with the dense operand's gradient (gradcheck in float64),
the exactness of a row's chain, and a graph-convolution program (pytorch/examples' gcn) that
prints torch's losses."""


import numpy as np
import pytest

import cygrad
from cygrad.gradcheck import gradcheck
from helpers import run_program

INDICES = [[0, 1, 1, 2, 0], [1, 0, 2, 2, 1]]  # (0, 1) twice: a duplicate


def make(lib, dtype="float64", coalesce=False):
    s = lib.sparse_coo_tensor(INDICES, lib.tensor([1.5, -2.0, 3.0, 0.25, 4.0],
                                                  dtype=getattr(lib, dtype)), (3, 3))
    return s.coalesce() if coalesce else s


def test_construction_and_questions():
    s = make(cygrad)
    assert s.is_sparse and s.layout == cygrad.sparse_coo and s.shape == (3, 3)
    assert s._nnz() == 5 and not s.is_coalesced() and s.dtype == cygrad.float64
    with pytest.raises(RuntimeError, match="uncoalesced"):
        s.indices()
    c = s.coalesce()
    assert c.is_coalesced() and c._nnz() == 4
    assert c.indices().tolist() == [[0, 1, 1, 2], [1, 0, 2, 2]]
    assert c.values().tolist() == [5.5, -2.0, 3.0, 0.25]
    assert np.array_equal(s.to_dense().numpy(), c.to_dense().numpy())
    assert cygrad.sparse_coo_tensor([[0, 2]], [1, 2]).shape == (3,)
    assert cygrad.sparse_coo_tensor([[0, 2]], [1, 2]).dtype == cygrad.int64
    assert cygrad.sparse_coo_tensor([[0, 2]], [1.0, 2]).dtype == cygrad.float32


def test_bad_input_raises():
    with pytest.raises(RuntimeError, match="size is inconsistent with indices"):
        cygrad.sparse_coo_tensor([[0, 5]], [1.0, 2.0], (3,))  # torch: unchecked by default
    with pytest.raises(RuntimeError, match="same nnz"):
        cygrad.sparse_coo_tensor([[0, 1]], [1.0], (3,))
    with pytest.raises(NotImplementedError, match="hybrid"):
        cygrad.sparse_coo_tensor([[0, 1]], [[1.0], [2.0]], (3, 1))
    s = make(cygrad)
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        s @ cygrad.ones(4, 2, dtype=cygrad.float64)
    with pytest.raises(RuntimeError, match="same dtype"):
        s @ cygrad.ones(3, 2)
    with pytest.raises(TypeError, match="not SparseTensor"):
        cygrad.exp(s)
    with pytest.raises(TypeError, match="to_dense"):
        np.asarray(s)
    with pytest.raises(AttributeError, match="to_dense"):
        s.view(9)


def test_as_torchs():
    torch = pytest.importorskip("torch")
    for coalesce in (False, True):
        ours, theirs = make(cygrad, coalesce=coalesce), make(torch, coalesce=coalesce)
        assert repr(ours).replace("cygrad.", "torch.") == repr(theirs)
        assert ours.is_coalesced() == theirs.is_coalesced()
        assert np.array_equal(ours.to_dense().numpy(), theirs.to_dense().numpy())
        for a, b in ((ours.t(), theirs.t()), (-ours, -theirs), (ours * 2, theirs * 2),
                     (ours + ours, theirs + theirs)):
            assert a.is_coalesced() == b.is_coalesced()
            assert np.array_equal(a.to_dense().numpy(), b.to_dense().numpy())
        assert ours.sum().item() == theirs.sum().item()
    for values in ([1, 2], [True, False]):  # a number's promotion, as a Tensor's
        ours = cygrad.sparse_coo_tensor([[0, 1], [1, 0]], cygrad.tensor(values), (2, 2))
        theirs = torch.sparse_coo_tensor([[0, 1], [1, 0]], torch.tensor(values), (2, 2))
        for a, b in ((ours * 1.5, theirs * 1.5), (ours * 2, theirs * 2), (ours / 2, theirs / 2)):
            assert a.dtype.name == str(b.dtype).split(".")[1]
            assert a.to_dense().tolist() == b.to_dense().tolist()
    dense = np.array([[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]], np.float32)
    ours, theirs = cygrad.tensor(dense).to_sparse(), torch.tensor(dense).to_sparse()
    assert repr(ours).replace("cygrad.", "torch.") == repr(theirs)
    ints = [[0, 1], [1, 0]]
    a = cygrad.eye(2) + cygrad.sparse_coo_tensor(ints, cygrad.ones(2), (2, 2),
                                                 dtype=cygrad.int64)
    b = torch.eye(2) + torch.sparse_coo_tensor(ints, torch.ones(2), (2, 2), dtype=torch.int64)
    assert a.dtype.name == str(b.dtype).split(".")[1] and np.array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("coalesce", [False, True])
def test_products_and_gradients_as_torchs(coalesce):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    d = rng.standard_normal((3, 4))
    left = rng.standard_normal((2, 3))
    for f in (lambda lib, s, x: s @ x, lambda lib, s, x: lib.mm(s, x),
              lambda lib, s, x: lib.spmm(s, x), lambda lib, s, x: lib.sparse.mm(s, x),
              lambda lib, s, x: lib.matmul(s, x[:, 0])):
        x, t = cygrad.tensor(d, requires_grad=True), torch.tensor(d, requires_grad=True)
        y, z = f(cygrad, make(cygrad, coalesce=coalesce), x), \
            f(torch, make(torch, coalesce=coalesce), t)
        np.testing.assert_allclose(y.detach().numpy(), z.detach().numpy(), rtol=1e-14,
                                   atol=1e-15)
        y.pow(2).sum().backward()
        z.pow(2).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-14, atol=1e-15)
    x, t = cygrad.tensor(left, requires_grad=True), torch.tensor(left, requires_grad=True)
    y, z = x @ make(cygrad, coalesce=coalesce), t @ make(torch, coalesce=coalesce)
    np.testing.assert_allclose(y.detach().numpy(), z.detach().numpy(), rtol=1e-14)
    y.sum().backward()
    z.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-14)


def test_gradcheck():
    s = make(cygrad)
    x = cygrad.randn(3, 2, dtype=cygrad.float64, requires_grad=True)
    w = cygrad.randn(4, 3, dtype=cygrad.float64, requires_grad=True)
    assert gradcheck(lambda x: s @ x, x)
    assert gradcheck(lambda w: w @ s, w)
    assert gradcheck(lambda x: cygrad.spmm(s, x.tanh()) * 2, x)


def test_a_rows_chain_is_the_same_wherever_it_is():
    """Identical sparse rows give bitwise identical output rows, alone or among others."""
    rng = np.random.default_rng(1)
    d = cygrad.tensor(rng.standard_normal((50, 7)).astype(np.float32))
    cols = rng.choice(50, 20, replace=False)
    vals = rng.standard_normal(20).astype(np.float32)
    row = cygrad.sparse_coo_tensor([np.zeros(20, int), cols], vals, (1, 50))
    many_rows = np.concatenate([np.full(20, r) for r in (3, 17, 40)])
    other = rng.integers(0, 50, (30, 2))
    ind = np.concatenate([np.stack([many_rows, np.tile(cols, 3)]), other.T], axis=1)
    val = np.concatenate([np.tile(vals, 3), rng.standard_normal(30).astype(np.float32)])
    big = cygrad.sparse_coo_tensor(ind, val, (50, 50))
    alone = (row @ d).numpy()[0]
    together = (big @ d).numpy()
    for r in (3, 17, 40):
        if r not in other[:, 0]:
            assert together[r].tobytes() == alone.tobytes()


GCN = """
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class GraphConv(nn.Module):  # pytorch/examples gcn/main.py's layer
    def __init__(self, input_dim, output_dim):
        super().__init__()
        self.kernel = nn.Parameter(torch.Tensor(input_dim, output_dim))
        nn.init.xavier_normal_(self.kernel)

    def forward(self, input_tensor, adj_mat):
        support = torch.mm(input_tensor, self.kernel)
        return torch.spmm(adj_mat, support)


torch.manual_seed(0)
rng = np.random.default_rng(0)
V, E, features_dim = 40, 120, 12
features = torch.FloatTensor(rng.integers(0, 2, (V, features_dim)).astype(np.int32))
scale = 1 / torch.sum(features, dim=1)
scale[scale == float("inf")] = 0
features = torch.diag(scale).to_sparse() @ features
edges = rng.integers(0, V, (E, 2)).astype(np.int32)
adj = torch.sparse_coo_tensor(edges.T, torch.ones(E), (V, V), dtype=torch.int64)
adj = torch.eye(V) + adj
degree = torch.sqrt(1 / torch.sum(adj, dim=1))
degree[degree == float("inf")] = 0
degree = torch.diag(degree).to_sparse()
adj = (degree @ adj @ degree).to_sparse()
features = features.to_sparse()
labels = torch.LongTensor(rng.integers(0, 3, V))
gc1, gc2 = GraphConv(features_dim, 8), GraphConv(8, 3)
optimizer = torch.optim.Adam(list(gc1.parameters()) + list(gc2.parameters()), lr=0.05,
                             weight_decay=5e-4)
for step in range(4):
    optimizer.zero_grad()
    out = F.log_softmax(gc2(F.relu(gc1(features, adj)), adj), dim=1)
    loss = F.nll_loss(out, labels)
    loss.backward()
    optimizer.step()
    print(repr(loss.item()))
"""


def run(program, on_cygrad):
    return [float(line) for line in run_program(program, on_cygrad, "-W", "ignore")]


def test_gcn_program_prints_torchs_losses():
    ours = run(GCN, on_cygrad=True)
    assert len(ours) == 4 and ours[-1] < ours[0]
    pytest.importorskip("torch")
    theirs = run(GCN, on_cygrad=False)
    np.testing.assert_allclose(ours, theirs, rtol=2e-6)


@pytest.mark.parametrize("columns", [None, 3])
def test_a_product_row_is_the_documented_chain(columns):
    """out[r] = (((0 + v0 * d[c0]) + v1 * d[c1]) + ...) over row r's nonzeros in column order,
    bit for bit (a vector or a matrix on the right)."""
    rng = np.random.default_rng(4)
    n = 40
    s = cygrad.sparse_coo_tensor(rng.integers(0, n, (2, 300)), rng.standard_normal(300),
                                 (n, n)).coalesce()
    assert s.dtype == cygrad.float64  # a float64 array's dtype kept, as torch.tensor keeps it
    d = rng.standard_normal(n if columns is None else (n, columns))
    want = np.zeros(d.shape)
    (rows, cols), values = s.indices().numpy(), s.values().numpy()
    for r, c, v in zip(rows, cols, values):
        want[r] = want[r] + v * d[c]
    assert (s @ cygrad.tensor(d)).numpy().tobytes() == want.tobytes()
