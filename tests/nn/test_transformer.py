"""Embedding, scaled_dot_product_attention, MultiheadAttention and the gelu/silu kernels:
torch's values and gradients, gradchecks, exactness (tied embedding dimensions and heads,
batch and thread invariance, bitwise) and torch's errors."""

import math

import numpy as np
import pytest

import cygrad
import cygrad.nn.functional as F
from cygrad import backend as B
from cygrad import nn

RNG = np.random.default_rng
CYTHON = pytest.mark.skipif("cython" not in B.available(), reason="cython backend not built")


def _t(a, grad=True):
    return cygrad.tensor(a, requires_grad=grad)


@pytest.fixture
def parallel_paths(monkeypatch):
    """Small arrays down the kernels' parallel paths (thresholds lowered)."""
    from cygrad._C import gemm, transformer

    monkeypatch.setattr(transformer, "serial_below", 0)
    monkeypatch.setattr(gemm, "serial_macs", 0)


# ---------------------------------------------------------------------- Embedding

@pytest.mark.parametrize("index_dtype", [np.int64, np.int32])
@pytest.mark.parametrize("kwargs", [{}, {"padding_idx": 2}, {"padding_idx": -1},
                                    {"scale_grad_by_freq": True},
                                    {"padding_idx": 0, "scale_grad_by_freq": True}])
def test_embedding_matches_torch(index_dtype, kwargs, backend):
    torch = pytest.importorskip("torch")
    rng = RNG(0)
    w = rng.standard_normal((9, 6)).astype(np.float32)
    idx = rng.integers(0, 9, (4, 7)).astype(index_dtype)
    g = rng.standard_normal((4, 7, 6)).astype(np.float32)
    cw, tw = _t(w), torch.tensor(w, requires_grad=True)
    y = F.embedding(cygrad.tensor(idx), cw, **kwargs)
    ty = torch.nn.functional.embedding(torch.tensor(idx), tw, **kwargs)
    assert np.array_equal(y.numpy(), ty.detach().numpy())
    y.backward(cygrad.tensor(g))
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(cw.grad.numpy(), tw.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_embedding_gradcheck():
    # (padding_idx and scale_grad_by_freq change the gradient on purpose: torch's test above)
    idx = cygrad.tensor([[0, 3, 3], [1, 0, 4]])
    w = _t(RNG(1).standard_normal((5, 3)))
    assert cygrad.gradcheck(lambda w: F.embedding(idx, w), w)


def test_embedding_gradient_is_an_ordered_scatter_add(backend):
    """dW[k] adds the rows at the positions holding k in ascending position: np.add.at's
    order, bitwise; the padding row gets nothing."""
    rng = RNG(2)
    g = (rng.standard_normal((50, 5)) * 10.0 ** rng.integers(-3, 4, (50, 1))).astype(np.float32)
    idx = rng.integers(0, 6, 50)
    w = _t(np.zeros((6, 5), np.float32))
    F.embedding(cygrad.tensor(idx), w, padding_idx=3).backward(cygrad.tensor(g))
    expected = np.zeros((6, 5), np.float32)
    for i in range(50):
        if idx[i] != 3:
            expected[idx[i]] += g[i]
    assert np.array_equal(w.grad.numpy(), expected)


@CYTHON
def test_embedding_identical_dimensions_identical_gradients(parallel_paths):
    """Identical columns of the output gradient give identical columns of dW, bitwise, on 1
    and 2 threads (columns split between threads), and the thread count changes no bit."""
    rng = RNG(3)
    col = rng.standard_normal((300, 1)).astype(np.float32)
    g = np.concatenate([np.repeat(col, 130, axis=1), rng.standard_normal((300, 70))], 1)
    g = g.astype(np.float32)
    idx = rng.integers(0, 20, 300)
    grads = []
    for threads in (1, 2):
        cygrad.set_num_threads(threads)
        dw = B.embedding_backward(g, idx, 20)
        assert (dw[:, :130] == dw[:, :1]).all()
        grads.append(dw)
    assert np.array_equal(grads[0], grads[1])


def test_embedding_module_as_torch():
    torch = pytest.importorskip("torch")
    for args, kwargs in (((10, 3), {}), ((10, 3), {"padding_idx": -2}),
                         ((4, 2), {"max_norm": 1.0, "norm_type": 1.0,
                                   "scale_grad_by_freq": True})):
        ours, theirs = nn.Embedding(*args, **kwargs), torch.nn.Embedding(*args, **kwargs)
        assert repr(ours) == repr(theirs)
        assert ours.padding_idx == theirs.padding_idx
        assert ours.weight.shape == tuple(theirs.weight.shape)
        if ours.padding_idx is not None:
            assert (ours.weight.numpy()[ours.padding_idx] == 0).all()
    table = cygrad.tensor([[1.0, 2.0], [3.0, 4.0]])
    frozen = nn.Embedding.from_pretrained(table)
    assert not frozen.weight.requires_grad and frozen.weight.numpy() is table.numpy()
    assert nn.Embedding.from_pretrained(table, freeze=False).weight.requires_grad
    assert np.array_equal(frozen(cygrad.tensor([1, 1, 0])).numpy(), [[3, 4], [3, 4], [1, 2]])


def test_embedding_max_norm_renormalises_rows_as_torch():
    torch = pytest.importorskip("torch")
    w = RNG(4).standard_normal((6, 4)) * 3
    idx = np.array([[0, 2, 2], [5, 1, 0]])
    for norm_type in (2.0, 1.0, 3.0):
        cw, tw = _t(w.copy()), torch.tensor(w.copy(), requires_grad=True)
        y = F.embedding(cygrad.tensor(idx), cw, max_norm=1.5, norm_type=norm_type)
        ty = torch.nn.functional.embedding(torch.tensor(idx), tw, max_norm=1.5,
                                           norm_type=norm_type)
        np.testing.assert_allclose(cw.numpy(), tw.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12)
        assert np.array_equal(cw.numpy()[3], w[3])  # rows not looked up are left alone


def test_embedding_bad_input():
    w = cygrad.zeros(5, 3)
    with pytest.raises(RuntimeError, match="Long, Int"):
        F.embedding(cygrad.tensor([1.0]), w)
    with pytest.raises(RuntimeError, match="Long, Int"):
        F.embedding(cygrad.tensor([1], dtype=cygrad.int16), w)
    with pytest.raises(IndexError, match="index out of range"):
        F.embedding(cygrad.tensor([5]), w)
    with pytest.raises(IndexError, match="index out of range"):
        F.embedding(cygrad.tensor([-1]), w)
    with pytest.raises(AssertionError, match="Padding_idx"):
        nn.Embedding(5, 3, padding_idx=5)
    with pytest.raises(AssertionError, match="Padding_idx"):
        nn.Embedding(5, 3, padding_idx=-6)
    with pytest.raises(NotImplementedError, match="sparse"):
        nn.Embedding(5, 3, sparse=True)
    with pytest.raises(AssertionError, match="Shape of weight"):
        nn.Embedding(5, 3, _weight=cygrad.zeros(4, 3))
    with pytest.raises(AssertionError, match="2-dimensional"):
        nn.Embedding.from_pretrained(cygrad.zeros(4))


@CYTHON
def test_embedding_kernel_refuses_bad_indices_itself():
    g = np.ones((3, 2), np.float32)
    with pytest.raises(IndexError, match="out of range"):
        B.embedding_backward(g, np.array([0, 7, 1]), 5)
    with pytest.raises(ValueError, match="one index each"):
        B.embedding_backward(g, np.array([0, 1]), 5)
    from cygrad._C import transformer

    with pytest.raises(TypeError, match="intp"):
        transformer.embedding_backward(g, np.array([0, 1, 1], np.int32), 5, -1, False, 1)


# ---------------------------------------------------------------------- attention

def _sdpa_inputs(rng, batch=(2, 3), L=4, S=5, E=6, Ev=7):
    return (rng.standard_normal(batch + (L, E)), rng.standard_normal(batch + (S, E)),
            rng.standard_normal(batch + (S, Ev)))


@pytest.mark.parametrize("mask", [None, "bool", "float", "causal", "float broadcast"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sdpa_matches_torch(mask, dtype, backend):
    torch = pytest.importorskip("torch")
    rng = RNG(5)
    q, k, v = (a.astype(dtype) for a in _sdpa_inputs(rng))
    ours, theirs = {}, {}
    if mask and "bool" in mask:
        m = rng.random((4, 5)) > 0.4
        m[:, 0] = True
        ours["attn_mask"], theirs["attn_mask"] = cygrad.tensor(m), torch.tensor(m)
    if mask == "float":
        m = rng.standard_normal((2, 3, 4, 5)).astype(dtype)
        ours["attn_mask"], theirs["attn_mask"] = _t(m), torch.tensor(m, requires_grad=True)
    if mask == "float broadcast":
        m = rng.standard_normal((3, 1, 5)).astype(dtype)
        ours["attn_mask"], theirs["attn_mask"] = _t(m), torch.tensor(m, requires_grad=True)
    if mask and "causal" in mask:
        ours["is_causal"] = theirs["is_causal"] = True
    cq, ck, cv = _t(q), _t(k), _t(v)
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    y = F.scaled_dot_product_attention(cq, ck, cv, scale=0.3, **ours)
    ty = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, scale=0.3, **theirs)
    g = rng.standard_normal(y.shape).astype(dtype)
    y.backward(cygrad.tensor(g))
    ty.backward(torch.tensor(g))
    assert y.dtype == cq.dtype
    tol = 2e-5 if dtype == "float32" else 1e-12
    pairs = [(y, ty), (cq.grad, tq.grad), (ck.grad, tk.grad), (cv.grad, tv.grad)]
    if mask in ("float", "float broadcast"):
        pairs.append((ours["attn_mask"].grad, theirs["attn_mask"].grad))
    for a, b in pairs:
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("mask", [None, "bool", "float", "causal"])
def test_sdpa_gradcheck(mask):
    rng = RNG(6)
    q, k, v = (_t(a) for a in _sdpa_inputs(rng, batch=(2,), L=3, S=4, E=2, Ev=3))
    args = [q, k, v]
    kwargs = {}
    if mask == "bool":
        m = rng.random((3, 4)) > 0.5
        m[:, 1] = True
        kwargs["attn_mask"] = cygrad.tensor(m)
    if mask == "causal":
        kwargs["is_causal"] = True
    if mask == "float":
        args.append(_t(rng.standard_normal((3, 4))))
    fn = (lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, m)) if mask == "float" \
        else (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **kwargs))
    assert cygrad.gradcheck(fn, *args)


def test_sdpa_rows_with_nothing_to_attend_give_zeros():
    torch = pytest.importorskip("torch")
    rng = RNG(7)
    q, k, v = _sdpa_inputs(rng, batch=(1,), L=3, S=3, E=2, Ev=2)
    m = np.ones((3, 3), bool)
    m[1] = False
    cq = _t(q)
    y = F.scaled_dot_product_attention(cq, _t(k), _t(v), cygrad.tensor(m))
    tq = torch.tensor(q, requires_grad=True)
    ty = torch.nn.functional.scaled_dot_product_attention(tq, torch.tensor(k), torch.tensor(v),
                                                          torch.tensor(m))
    assert (y.numpy()[0, 1] == 0).all()
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), atol=1e-12)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(cq.grad.numpy(), tq.grad.numpy(), atol=1e-12)


def test_sdpa_grouped_query_attention_and_broadcast_batches():
    torch = pytest.importorskip("torch")
    rng = RNG(8)
    q = rng.standard_normal((2, 4, 3, 5))
    k, v = rng.standard_normal((2, 2, 6, 5)), rng.standard_normal((2, 2, 6, 4))
    y = F.scaled_dot_product_attention(_t(q), _t(k), _t(v), enable_gqa=True)
    ty = torch.nn.functional.scaled_dot_product_attention(
        torch.tensor(q), torch.tensor(k), torch.tensor(v), enable_gqa=True)
    np.testing.assert_allclose(y.numpy(), ty.numpy(), atol=1e-12)
    k1, v1 = k[:1, :1], v[:1, :1]  # one key/value set for every batch element and head
    y = F.scaled_dot_product_attention(_t(q), _t(k1), _t(v1))
    ty = torch.nn.functional.scaled_dot_product_attention(torch.tensor(q), torch.tensor(k1),
                                                          torch.tensor(v1))
    np.testing.assert_allclose(y.numpy(), ty.numpy(), atol=1e-12)


def test_sdpa_dropout_draws_from_cygrads_generator():
    rng = RNG(9)
    q, k, v = (_t(a) for a in _sdpa_inputs(rng))
    cygrad.manual_seed(3)
    a = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    cygrad.manual_seed(3)
    b = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    c = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    assert np.array_equal(a.numpy(), b.numpy()) and not np.array_equal(a.numpy(), c.numpy())
    a.sum().backward()
    assert q.grad is not None and v.grad is not None


def test_sdpa_dropout_one_drops_everything_as_torch():
    torch = pytest.importorskip("torch")
    q, k, v = _sdpa_inputs(RNG(10))
    cq, ck, cv = (_t(a) for a in (q, k, v))
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    y = F.scaled_dot_product_attention(cq, ck, cv, dropout_p=1.0)
    t = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, dropout_p=1.0)
    assert np.array_equal(y.numpy(), t.detach().numpy())
    y.sum().backward()
    t.sum().backward()
    for a, b in ((cq, tq), (ck, tk), (cv, tv)):
        assert np.array_equal(a.grad.numpy(), b.grad.numpy())


def test_sdpa_bad_input():
    x = cygrad.zeros(2, 3, 4)
    with pytest.raises(RuntimeError, match="at least 2 dimensional"):
        F.scaled_dot_product_attention(cygrad.zeros(4), x, x)
    with pytest.raises(RuntimeError, match="same dtype"):
        F.scaled_dot_product_attention(x, x.double(), x)
    with pytest.raises(RuntimeError, match="do not fit"):
        F.scaled_dot_product_attention(x, cygrad.zeros(2, 3, 5), x)
    with pytest.raises(RuntimeError, match="broadcast"):
        F.scaled_dot_product_attention(x, cygrad.zeros(3, 3, 4), x)
    with pytest.raises(RuntimeError, match="attn_mask"):
        F.scaled_dot_product_attention(x, x, x, attn_mask=cygrad.zeros(3, 2))
    with pytest.raises(ValueError, match="dropout probability"):
        F.scaled_dot_product_attention(x, x, x, dropout_p=1.5)
    with pytest.raises(RuntimeError, match="is_causal"):
        F.scaled_dot_product_attention(x, x, x, attn_mask=cygrad.ones(3, 3, dtype=cygrad.bool),
                                       is_causal=True)


@CYTHON
@pytest.mark.parametrize("causal", [False, True])
def test_tied_heads_stay_tied_at_any_batch_size_and_thread_count(causal, dtype,
                                                                 parallel_paths):
    """Heads whose queries, keys and values are equal get bitwise equal outputs and
    gradients; a sample's result has the same bits alone or in a batch, on 1 or 2 threads."""
    rng = RNG(10)
    one = [rng.standard_normal((5, 1, 6, 4)).astype(dtype) for _ in range(3)]
    q, k, v = (np.repeat(a, 3, axis=1) for a in one)  # 3 identical heads
    g = np.repeat(rng.standard_normal((5, 1, 6, 4)).astype(dtype), 3, axis=1)
    results = []
    for threads in (1, 2):
        cygrad.set_num_threads(threads)
        cq, ck, cv = _t(q), _t(k), _t(v)
        y = F.scaled_dot_product_attention(cq, ck, cv, is_causal=causal)
        y.backward(cygrad.tensor(g))
        for arr in (y.numpy(), cq.grad.numpy(), ck.grad.numpy(), cv.grad.numpy()):
            assert (arr == arr[:, :1]).all()
        alone = F.scaled_dot_product_attention(_t(q[3:4]), _t(k[3:4]), _t(v[3:4]),
                                               is_causal=causal)
        assert np.array_equal(alone.numpy(), y.numpy()[3:4])
        results.append((y.numpy(), cq.grad.numpy()))
    assert all(np.array_equal(a, b) for a, b in zip(*results))


@CYTHON
def test_softmax_kernel_against_its_twin(dtype, parallel_paths):
    rng = RNG(11)
    x = (rng.standard_normal((3, 7, 9)) * 4).astype(dtype)
    x[0, 2] = -np.inf  # a row with nothing to attend to
    g = rng.standard_normal(x.shape).astype(dtype)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    for causal, shift in ((0, 0), (7, 0), (7, 2), (7, -1)):
        for threads in (1, 2):
            cygrad.set_num_threads(threads)
            y = B.softmax_rows(x, 0.5, causal, shift)
            with B.using("numpy"):
                ref = B.softmax_rows(x, 0.5, causal, shift)
                dref = B.softmax_rows_backward(ref, g, 0.5)
            np.testing.assert_allclose(y, ref, rtol=tol, atol=tol)
            np.testing.assert_allclose(B.softmax_rows_backward(y, g, 0.5), dref, rtol=tol * 10,
                                       atol=tol)
            assert (y[0, 2] == 0).all()


@CYTHON
def test_batched_gemm_is_gemm_per_matrix(dtype, parallel_paths):
    rng = RNG(12)
    a = rng.standard_normal((5, 7, 9)).astype(dtype)
    b = rng.standard_normal((5, 9, 3)).astype(dtype)
    for ta, tb in ((False, False), (True, False), (False, True), (True, True)):
        aa = np.ascontiguousarray(a.transpose(0, 2, 1)) if ta else a
        bb = np.ascontiguousarray(b.transpose(0, 2, 1)) if tb else b
        for threads in (1, 2):
            cygrad.set_num_threads(threads)
            c = B.batched_gemm(aa, bb, ta, tb)
            for i in range(5):
                assert np.array_equal(c[i], B.gemm(aa[i], bb[i], ta, tb))
    shared = np.broadcast_to(b[0], b.shape)  # a batch stride of 0
    assert np.array_equal(B.batched_gemm(a, shared), B.batched_gemm(a, np.repeat(b[:1], 5, 0)))
    with pytest.raises(ValueError, match="do not multiply"):
        B.batched_gemm(a, a)
    with pytest.raises(ValueError, match="3-D"):
        B.batched_gemm(a[0], b[0])


# ---------------------------------------------------------------------- MultiheadAttention

def _copy_params(ours, theirs):
    params = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        params[name].numpy()[...] = p.detach().numpy()


@pytest.mark.parametrize("kwargs", [{}, {"batch_first": True}, {"bias": False},
                                    {"kdim": 3, "vdim": 5}, {"add_bias_kv": True},
                                    {"add_zero_attn": True, "dropout": 0.3}])
@pytest.mark.parametrize("call", ["weights", "no weights", "per head", "causal",
                                  "key padding", "float masks"])
def test_multihead_attention_matches_torch(kwargs, call):
    torch = pytest.importorskip("torch")
    rng = RNG(13)
    ours = nn.MultiheadAttention(8, 2, dtype=cygrad.float64, **kwargs).eval()
    theirs = torch.nn.MultiheadAttention(8, 2, dtype=torch.float64, **kwargs).eval()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    _copy_params(ours, theirs)
    L, N, S = 4, 3, 4
    first = kwargs.get("batch_first", False)

    def seq(length, width):
        return rng.standard_normal((N, length, width) if first else (length, N, width))

    arrays = [seq(L, 8), seq(S, kwargs.get("kdim", 8)), seq(S, kwargs.get("vdim", 8))]
    ours_kw, theirs_kw = {}, {}
    if call == "no weights":
        ours_kw["need_weights"] = theirs_kw["need_weights"] = False
    if call == "per head":
        ours_kw["average_attn_weights"] = theirs_kw["average_attn_weights"] = False
    if call == "causal":
        m = np.triu(np.ones((L, S), bool), 1)
        ours_kw = {"attn_mask": cygrad.tensor(m), "is_causal": True, "need_weights": False}
        theirs_kw = {"attn_mask": torch.tensor(m), "is_causal": True, "need_weights": False}
    if call == "key padding":
        m = rng.random((N, S)) > 0.6
        m[:, 0] = False
        ours_kw["key_padding_mask"], theirs_kw["key_padding_mask"] = (cygrad.tensor(m),
                                                                      torch.tensor(m))
    if call == "float masks":
        am, kpm = rng.standard_normal((N * 2, L, S)), rng.standard_normal((N, S))
        ours_kw = {"attn_mask": cygrad.tensor(am), "key_padding_mask": cygrad.tensor(kpm)}
        theirs_kw = {"attn_mask": torch.tensor(am), "key_padding_mask": torch.tensor(kpm)}
    cs = [_t(a) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, w = ours(*cs, **ours_kw)
    tout, tw = theirs(*ts, **theirs_kw)
    g = rng.standard_normal(out.shape)
    out.backward(cygrad.tensor(g))
    tout.backward(torch.tensor(g))
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), atol=1e-12)
    assert (w is None) == (tw is None)
    if w is not None:
        np.testing.assert_allclose(w.numpy(), tw.detach().numpy(), atol=1e-12)
    for c, t in zip(cs, ts):
        np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy(), atol=1e-12)
    their_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), their_params[name].grad.numpy(),
                                   atol=1e-12, err_msg=name)


def test_multihead_attention_module_as_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = nn.MultiheadAttention(12, 3), torch.nn.MultiheadAttention(12, 3)
    assert repr(ours) == repr(theirs)
    assert ours.in_proj_weight.shape == tuple(theirs.in_proj_weight.shape)
    assert np.array_equal(ours.in_proj_bias.numpy(), np.zeros(36))
    assert np.array_equal(ours.out_proj.bias.numpy(), np.zeros(12))
    bound = math.sqrt(6 / (12 + 36))  # xavier_uniform_ of (36, 12)
    assert np.abs(ours.in_proj_weight.numpy()).max() <= bound
    x = _t(RNG(14).standard_normal((5, 12)).astype(np.float32))  # unbatched (L, E)
    out, w = ours(x, x, x)
    assert out.shape == (5, 12) and w.shape == (5, 5)
    with pytest.raises(AssertionError, match="divisible"):
        nn.MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match="greater than 0"):
        nn.MultiheadAttention(0, 3)
    with pytest.raises(RuntimeError, match="Need attn_mask"):
        ours(x, x, x, is_causal=True)
    with pytest.raises(AssertionError, match="3-D"):
        ours(x.unsqueeze(1), x, x)


def test_multihead_attention_mismatched_mask_types_warn_as_torch():
    torch = pytest.importorskip("torch")
    import warnings

    x = RNG(15).standard_normal((2, 4, 6)).astype(np.float32)
    pad = np.array([[False, False, True, False], [False, True, False, False]])
    causal = np.triu(np.ones((4, 4), bool), 1)
    outs = []
    for lib in (cygrad, torch):
        lib.manual_seed(0)
        mha = lib.nn.MultiheadAttention(6, 2, batch_first=True)
        q = lib.tensor(x)
        float_mask = lib.zeros(4, 4).masked_fill(lib.tensor(causal), float("-inf"))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out, _ = mha(q, q, q, key_padding_mask=lib.tensor(pad), attn_mask=float_mask)
            mha(q, q, q, key_padding_mask=lib.tensor(pad), attn_mask=lib.tensor(causal))
        outs.append(out.detach().numpy())
        texts = [str(w.message) for w in caught]
        assert texts.count("Support for mismatched key_padding_mask and attn_mask is "
                           "deprecated. Use same type for both instead.") == 1, (lib, texts)
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-6)


@CYTHON
def test_multihead_attention_tied_heads(parallel_paths):
    """Heads with equal query/key/value blocks and equal output-projection columns: bitwise
    equal weights, outputs and gradients, on 1 and 2 threads and at any batch size."""
    rng = RNG(15)
    m = nn.MultiheadAttention(8, 4, batch_first=True)
    hd = 2
    with cygrad.no_grad():
        w = m.in_proj_weight.numpy()
        b = m.in_proj_bias.numpy()
        b[:] = rng.standard_normal(24)
        for part in range(3):
            block = w[part * 8:(part + 1) * 8]
            bias = b[part * 8:(part + 1) * 8]
            for h in range(1, 4):
                block[h * hd:(h + 1) * hd] = block[:hd]
                bias[h * hd:(h + 1) * hd] = bias[:hd]
        ow = m.out_proj.weight.numpy()
        for h in range(1, 4):
            ow[:, h * hd:(h + 1) * hd] = ow[:, :hd]
    x = rng.standard_normal((6, 5, 8)).astype(np.float32)
    grads = []
    for threads in (1, 2):
        cygrad.set_num_threads(threads)
        m.zero_grad()
        out, weights = m(_t(x), _t(x), _t(x), average_attn_weights=False)
        (out * out).sum().backward()
        per_head = weights.numpy()
        assert (per_head == per_head[:, :1]).all()
        gw = m.in_proj_weight.grad.numpy().reshape(3, 4, hd, 8)
        assert (gw == gw[:, :1]).all()
        go = m.out_proj.weight.grad.numpy().reshape(8, 4, hd)
        assert (go == go[:, :1]).all()
        alone, _ = m(_t(x[2:3]), _t(x[2:3]), _t(x[2:3]))
        assert np.array_equal(alone.numpy(), out.numpy()[2:3])
        grads.append(gw.copy())
    assert np.array_equal(grads[0], grads[1])


# ---------------------------------------------------------------------- gelu and silu kernels

@CYTHON
@pytest.mark.parametrize("name,params", [("gelu", {"approximate": "none"}),
                                         ("gelu", {"approximate": "tanh"}), ("silu", {})])
def test_gelu_silu_kernels_against_twin_and_torch(name, params, dtype, parallel_paths):
    """The kernels (float32 computed in double, rounded once) within a few ulps of the op
    table's numpy twin and of torch; gradients likewise; identical elements identical at any
    position and thread count."""
    entry = cygrad.ops.registry.ENTRIES[name]
    x = np.concatenate([np.linspace(-9, 9, 997), [0.0, -0.0, 1e-30, 40, -40]]).astype(dtype)
    g = np.cos(np.arange(x.size)).astype(dtype)
    param = params.get("approximate", 0.0)
    y = B.activation_forward(entry.kernel, x, param)
    dx = B.activation_backward(entry.kernel, g, x, param)
    y_twin, dx_twin = entry.forward(x, **params), entry.grad(g, x, None, **params)
    # the twin rounds each operation in the dtype: 1 + erf(x) cancels for negative x, an
    # error of about eps * |x| that the kernel (in double) does not make
    eps = np.finfo(dtype).eps
    assert (np.abs(y - y_twin) <= 4 * eps * (np.abs(y_twin) + np.abs(x))).all()
    assert (np.abs(dx - dx_twin) <= 8 * eps * (np.abs(dx_twin) + np.abs(g) * (1 + x * x))).all()
    rep = np.repeat(x[::97], 130)
    for threads in (1, 2):
        cygrad.set_num_threads(threads)
        out = B.activation_forward(entry.kernel, rep, param).reshape(-1, 130)
        assert (out == out[:, :1]).all()
        assert np.array_equal(B.activation_forward(entry.kernel, x, param), y)
    torch = pytest.importorskip("torch")
    tx = torch.tensor(x, requires_grad=True)
    ty = getattr(torch.nn.functional, name)(tx, **params)
    ty.backward(torch.tensor(g))
    tol = 2e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_silu_ops_gradcheck_and_modules(approximate):
    x = _t(np.linspace(-3, 3, 13))
    assert cygrad.gradcheck(lambda x: F.gelu(x, approximate=approximate), x)
    assert cygrad.gradcheck(F.silu, x)
    assert repr(nn.GELU(approximate=approximate)) == f"GELU(approximate='{approximate}')"
    with pytest.raises(RuntimeError, match="approximate"):
        F.gelu(x, approximate="erf")


def test_softmax_last_dim_runs_the_exact_row_kernel_with_torchs_nans(parallel_paths):
    """F.softmax along the last dimension: a row's bits do not depend on the batch or the
    thread count (the row kernel); masked (-inf) entries as torch, and a row of only -inf or
    with a NaN gives torch's NaNs."""
    torch = pytest.importorskip("torch")
    rng = RNG(11)
    x = rng.standard_normal((6, 7, 9))
    x[0, 1, 3:] = -np.inf
    g = rng.standard_normal(x.shape)
    outs = []
    for threads in (1, 2):
        cygrad.set_num_threads(threads)
        try:
            cx = _t(x)
            y = F.softmax(cx, dim=-1)
            y.backward(cygrad.tensor(g))
            alone = F.softmax(_t(x[2:3, 4:5]), dim=-1)
            assert np.array_equal(alone.numpy(), y.numpy()[2:3, 4:5])
            outs.append((y.numpy(), cx.grad.numpy()))
        finally:
            cygrad.set_num_threads(1)
    assert all(np.array_equal(a, b) for a, b in zip(*outs))
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.softmax(tx, dim=-1)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(outs[0][0], ty.detach().numpy(), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(outs[0][1], tx.grad.numpy(), rtol=1e-12, atol=1e-14)
    x[1, 2, :] = -np.inf
    x[3, 0, 4] = np.nan
    with np.errstate(invalid="ignore"):
        y = F.softmax(_t(x, False), dim=-1).numpy()
    t = torch.softmax(torch.tensor(x), dim=-1).numpy()
    np.testing.assert_allclose(y, t, rtol=1e-14, atol=1e-15, equal_nan=True)
    assert np.isnan(y[1, 2]).all() and np.isnan(y[3, 0]).all()
