"""The summation tree of the sums (csrc/sums.h) and of the gemm's k chain: its definition, its
bits in every engine, layout and thread count, the numpy twin's bits, and its accuracy.

The tree of a sum of n elements: leaves are chains of L = 32 consecutive elements from +0 (the
last one shorter); the N = ceil(n / L) leaves fall into consecutive groups of 2^e1, 2^e2, ...
leaves (N's binary digits, largest first), each a perfect binary tree; S = G1 + (G2 + ...).
The gemm uses the same tree over its k blocks (leaves: fma chains of KC).
"""

import math

import numpy as np
import pytest
from exactness import assert_columns_identical, twin_backward_bias

from cygrad import backend as B
from cygrad.backend import numpy_backend

pytestmark = pytest.mark.skipif("cython" not in B.available(), reason="cython backend not built")

LEAF = numpy_backend.LEAF


@pytest.fixture(params=[1, 2], ids=["1 thread", "2 threads"])
def threads(request, monkeypatch):
    """Both thread counts, with the serial thresholds lowered so that 2 threads are used."""
    from cygrad._C import elementwise, reduce

    monkeypatch.setattr(reduce, "serial_below", 1)
    monkeypatch.setattr(elementwise, "cheap_serial_below", 1)
    B.set_num_threads(request.param)
    with B.using("cython"):
        yield request.param


def tree(values, dtype, leaf=LEAF, chain=None):
    """The definition, element by element in Python with the dtype's rounding: the oracle that
    shares no code with either backend. `chain(block)` makes a leaf (default: adds from +0)."""
    t = np.dtype(dtype).type

    def add_chain(block):
        acc = t(0)
        for v in block:
            acc = t(acc + v)
        return acc

    leaves = [(chain or add_chain)(values[i:i + leaf]) for i in range(0, len(values), leaf)]

    def perfect(xs):
        if len(xs) == 1:
            return xs[0]
        half = len(xs) // 2
        return t(perfect(xs[:half]) + perfect(xs[half:]))

    groups, start = [], 0
    for e in reversed(range(len(leaves).bit_length())):
        if len(leaves) >> e & 1:
            groups.append(perfect(leaves[start:start + (1 << e)]))
            start += 1 << e
    if not groups:
        return t(0)
    total = groups[-1]
    for g in reversed(groups[:-1]):
        total = t(g + total)
    return total


def ill_conditioned(n, dtype, seed):
    """Values whose sum depends on the order of the additions (large and small, signs mixed)."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n) * 10.0 ** rng.integers(-3, 8, n)).astype(dtype)


LENGTHS = [0, 1, 2, 31, 32, 33, 64, 65, 95, 96, 97, 128, 161, 1000, 32 * 7 + 5, 32 * 64 + 1]


@pytest.mark.parametrize("n", LENGTHS)
def test_the_tree_is_the_definition(n, dtype, threads):
    g = ill_conditioned(n, dtype, n)
    expected = tree(g, dtype)
    assert B.column_sum(g[:, None])[0].tobytes() == expected.tobytes()
    assert B.row_sum(g[None, :])[0].tobytes() == expected.tobytes()
    assert B.sum(g, (0,)).tobytes() == expected.tobytes()
    assert numpy_backend.tree_sum(g).tobytes() == expected.tobytes()


@pytest.mark.parametrize("n", [0, 5, 32, 33, 100, 1057])
@pytest.mark.parametrize("m", [1, 3, 7, 8, 9, 40, 257, 600])
def test_every_engine_layout_and_the_twin_give_one_result(n, m, dtype, threads):
    g = ill_conditioned(n * m, dtype, n + m).reshape(n, m)
    s = B.column_sum(g)
    assert s.shape == (m,) and s.dtype == dtype
    for other in (numpy_backend.column_sum(g, 1), B.row_sum(np.ascontiguousarray(g.T)),
                  B.row_sum(g.T), B.column_sum(np.asfortranarray(g)),
                  B.sum(g, (0,)), B.sum(np.ascontiguousarray(g.T), (1,)),
                  B.channel_sum(np.ascontiguousarray(g.T).reshape(1, m, n)),
                  B.channel_sum(np.ascontiguousarray(g.reshape(n, 1, m).transpose(0, 2, 1))),
                  numpy_backend.row_sum(np.ascontiguousarray(g.T), 1)):
        assert np.array_equal(s, other)
    if n:  # a column alone has the bits it has among the others
        assert np.array_equal(B.column_sum(g[:, m // 2:m // 2 + 1]), s[m // 2:m // 2 + 1])


@pytest.mark.parametrize("shape", [(3, 4, 5), (70, 3, 2), (2, 0, 4), (5, 1, 7), (40, 33)])
def test_sum_over_any_axes_gives_the_twins_bits_in_every_layout(shape, dtype, threads):
    from itertools import combinations

    x = ill_conditioned(math.prod(shape), dtype, len(shape)).reshape(shape)
    layouts = [x, np.asfortranarray(x), np.repeat(x, 2, axis=-1)[..., ::2]]
    for k in range(len(shape) + 1):
        for axes in combinations(range(len(shape)), k):
            expected = numpy_backend.sum(x, axes, 1)
            assert expected.shape == tuple(s for i, s in enumerate(shape) if i not in axes)
            for layout in layouts:
                got = B.sum(layout, axes)
                assert got.shape == expected.shape and got.dtype == dtype
                assert np.array_equal(got, expected), (axes, layout.flags)
            with B.using("numpy"):
                assert np.array_equal(B.sum(x, axes), expected)


@pytest.mark.parametrize("n", [33, 100, 1000])
@pytest.mark.parametrize("m", [1, 5, 300])
@pytest.mark.parametrize("name", ["tanh", "relu", "leaky_relu"])
def test_the_fused_bias_gradient_is_the_column_sum(n, m, name, dtype, threads):
    rng = np.random.default_rng(n * m)
    g = ill_conditioned(n * m, dtype, m).reshape(n, m)
    saved = rng.standard_normal((n, m)).astype(dtype)
    dz, db = B.activation_backward_bias(name, g, saved, 0.1)
    assert np.array_equal(db, B.column_sum(dz))
    x = saved  # the twin reads x or y as its entry says; either way the numbers given here
    twin_dz, twin_db = twin_backward_bias(name, g, x, saved, 0.1)
    if name != "tanh":  # relu and leaky_relu are exact in both; so is the tree
        assert np.array_equal(dz, twin_dz) and np.array_equal(db, twin_db)


def test_tied_columns_stay_tied_across_chunks_and_threads(dtype, threads):
    column = ill_conditioned(1000, dtype, 7)[:, None]
    g = np.repeat(column, 600, axis=1)  # 600 columns: three chunks of the lanes engine
    s = B.column_sum(g)
    assert_columns_identical(s[None, :])
    dz, db = B.activation_backward_bias("relu", g, np.abs(g) + 1, 0.1)
    assert_columns_identical(db[None, :])


# ---------------------------------------------------------------------- accuracy

def ulps_off(value, exact, dtype):
    """|value - exact| in units of the last place of exact in the dtype."""
    return abs(float(value) - exact) / np.spacing(np.asarray(exact, dtype))


def test_ten_million_tenths_in_float32_are_accurate():
    n = 10_000_000
    x = np.full(n, np.float32(0.1))
    exact = float(np.float32(0.1)) * n
    budget = math.log2(n)  # ulps; a single chain is off by 8.8% (about 1.5 million ulps)
    for got in (B.sum(x, (0,)), B.column_sum(x.reshape(-1, 1))[0], B.row_sum(x[None])[0]):
        assert ulps_off(got, exact, np.float32) <= budget


def test_the_bias_gradient_of_a_mean_over_ten_million_rows_is_accurate():
    import cygrad

    x = cygrad.tensor(np.random.default_rng(0).standard_normal((10_000_000, 1)).astype(
        np.float32))
    b = cygrad.tensor(np.zeros(1, np.float32), requires_grad=True)
    (x + b).mean().backward()
    grad = b.grad if isinstance(b.grad, np.ndarray) else np.asarray(b.grad.numpy())
    assert grad.dtype == np.float32
    assert ulps_off(grad[0], 1.0, np.float32) <= math.log2(1e7)  # was 1.0648


@pytest.mark.parametrize("k", [1 << 24, (1 << 25) + 3])
def test_a_gemm_over_a_huge_k_is_accurate(k):
    from cygrad._C import gemm

    ones = np.ones((1, k), np.float32)
    c = gemm.gemm(ones, ones, None, False, True, 1)  # a chain stops at 2^24 = 16,777,216
    assert c[0, 0] == k
    tenths = np.full((1, 10_000_000), np.float32(0.1))
    c = gemm.gemm(tenths, ones[:, :10_000_000], None, False, True, 1)
    # leaves of KC = 512 products: a few ulps per level of log2(n)
    assert ulps_off(c[0, 0], float(np.float32(0.1)) * 1e7, np.float32) <= 4 * math.log2(1e7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_gemm_k_tree_is_the_definition(dtype):
    from cygrad._C import gemm

    kc = gemm.k_block[np.dtype(dtype).name]
    for k in [kc - 1, kc, kc + 1, 2 * kc, 3 * kc + 5, 4 * kc, 5 * kc + 1, 9 * kc - 3]:
        a = ill_conditioned(2 * k, dtype, k).reshape(2, k)
        b = np.ones((k, 3), dtype)  # products are exact: the adds alone decide the bits
        c = gemm.gemm(a, b, None, False, False, 1)
        for i in range(2):
            expected = tree(a[i], dtype, leaf=kc)
            assert (c[i] == expected).all(), (k, i)
        for variant in (gemm.gemm_naive, gemm.gemm_blocked):
            d = np.empty_like(c)
            variant(a, b, d, False, False, 2)
            assert np.array_equal(c, d)
