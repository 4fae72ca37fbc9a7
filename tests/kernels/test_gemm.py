"""The gemm kernel: C := op(A) @ op(B) against numpy, and the exactness contract, bitwise.

Every element is one fma chain in ascending k (csrc/gemm.pyx), so beyond agreeing with numpy
to rounding the kernel must give: identical rows of A -> identical rows of C, identical columns
of op(B) -> identical columns, a row (or column) alone == the same row inside any batch, the same
bits for 1 and 2 threads, and the same bits from all three variants (packed, blocked, naive).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

gemm_module = pytest.importorskip("cygrad._C.gemm", reason="the gemm extension is not built")

DTYPES = (np.float32, np.float64)
TRANSPOSES = [(False, False), (True, False), (False, True), (True, True)]
KERNELS = ("packed", "blocked", "naive")
_KERNEL_FN = {"packed": gemm_module.gemm, "blocked": gemm_module.gemm_blocked,
              "naive": gemm_module.gemm_naive}


def run_gemm(a, b, ta=False, tb=False, threads=1, kernel="packed"):
    """C := op(A) @ op(B) through the compiled kernel, C allocated here as the backend does.
    With threads > 1 the threads really run, however small the product (see serial_macs)."""
    m = a.shape[1] if ta else a.shape[0]
    n = b.shape[0] if tb else b.shape[1]
    c = np.full((m, n), np.nan, dtype=a.dtype)  # NaN: any element left unwritten shows up
    saved, gemm_module.serial_macs = gemm_module.serial_macs, 0  # no product is too small
    try:
        _KERNEL_FN[kernel](a, b, c, ta, tb, threads)
    finally:
        gemm_module.serial_macs = saved
    return c


def operands(rng, m, n, k, ta, tb, dtype):
    """Random a, b stored so that op(a) is (m, k) and op(b) is (k, n)."""
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    return a, b


def op(x, t):
    return x.T if t else x


def assert_close_to_numpy(c, a, b, ta, tb):
    """|c - exact| <= 2 (K+2) eps (|op A| @ |op B|): the standard bound, for us and for BLAS."""
    oa, ob = op(a, ta).astype(np.float64), op(b, tb).astype(np.float64)
    k = oa.shape[1]
    ref = oa @ ob if a.dtype == np.float32 else np.matmul(op(a, ta), op(b, tb))
    bound = 2 * (k + 2) * np.finfo(a.dtype).eps * (np.abs(oa) @ np.abs(ob)) + 1e-300
    assert c.shape == ref.shape and c.dtype == a.dtype
    assert np.all(np.abs(c - ref) <= bound), np.max(np.abs(c - ref) - bound)


def relayout(x, layout, rng):
    """The same values as x, stored differently: the kernel must read any strides."""
    if layout == "C":
        return np.ascontiguousarray(x)
    if layout == "F":  # a transposed view of a C array
        return np.asfortranarray(x)
    if layout == "step":  # every other row and column of a bigger array
        big = rng.standard_normal((2 * x.shape[0], 2 * x.shape[1])).astype(x.dtype)
        big[1::2, ::2] = x
        return big[1::2, ::2]
    if layout == "neg":  # negative strides on both axes
        return np.ascontiguousarray(x[::-1, ::-1])[::-1, ::-1]
    raise ValueError(layout)


LAYOUTS = ("C", "F", "step", "neg")


# ---------------------------------------------------------------- agreement with numpy

@settings(max_examples=250, deadline=None)
@given(m=st.integers(0, 70), n=st.integers(0, 70), k=st.integers(0, 70),
       ta=st.booleans(), tb=st.booleans(), dtype=st.sampled_from(DTYPES),
       la=st.sampled_from(LAYOUTS), lb=st.sampled_from(LAYOUTS),
       threads=st.sampled_from([1, 2]), seed=st.integers(0, 2**32 - 1))
def test_matches_numpy_any_shape_and_layout(m, n, k, ta, tb, dtype, la, lb, threads, seed):
    rng = np.random.default_rng(seed)
    a, b = operands(rng, m, n, k, ta, tb, dtype)
    a2, b2 = relayout(a, la, rng), relayout(b, lb, rng)
    c = run_gemm(a2, b2, ta, tb, threads)
    assert_close_to_numpy(c, a, b, ta, tb)
    # the same values in another layout give the same bits, and so does the naive spec
    assert np.array_equal(c, run_gemm(a, b, ta, tb, 1))
    assert np.array_equal(c, run_gemm(a, b, ta, tb, 1, kernel="naive"))


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 300), n=st.integers(1, 300), k=st.integers(1, 700),
       ta=st.booleans(), tb=st.booleans(), dtype=st.sampled_from(DTYPES),
       seed=st.integers(0, 2**32 - 1))
def test_larger_shapes_many_tiles_and_k_blocks(m, n, k, ta, tb, dtype, seed):
    """Many tiles, ragged edges and several k-blocks: numpy's values, the naive chain's bits."""
    a, b = operands(np.random.default_rng(seed), m, n, k, ta, tb, dtype)
    c = run_gemm(a, b, ta, tb, 2)
    assert_close_to_numpy(c, a, b, ta, tb)
    assert np.array_equal(c, run_gemm(a, b, ta, tb, 1, kernel="naive"))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n,k", [(130, 300, 3000), (250, 70, 1300), (3, 260, 16500),
                                   (2, 16, 270000)])
def test_both_orders_of_the_k_blocks(dtype, m, n, k):
    """B's k blocks packed at once for blocks of 256+ columns (a block of rows through all its
    k blocks), or, when that would not fit CG_PACKED_B_MAX (16 MiB: k x 256 x 4 bytes past
    k = 16384 in float32; 270000 x 16 narrow columns), one k block at a time outermost: the
    same leaves and tree, the naive chain's bits, at one and two threads."""
    a, b = operands(np.random.default_rng(k), m, n, k, False, False, dtype)
    c = run_gemm(a, b, False, False, 2)
    assert_close_to_numpy(c, a, b, False, False)
    assert np.array_equal(c, run_gemm(a, b, False, False, 1))
    assert np.array_equal(c, run_gemm(a, b, False, False, 1, kernel="naive"))


@pytest.fixture
def wide_tiles():
    """Run the test's products with the wide tile (where this build has one), then restore."""
    before = gemm_module.use_wide_tiles(True)
    yield gemm_module.blocking()["wide"]
    gemm_module.use_wide_tiles(before)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("ta,tb", TRANSPOSES)
@pytest.mark.parametrize("m,n,k", [(14, 32, 5), (29, 50, 600), (131, 70, 1300),
                                   (250, 33, 2100), (3, 17, 40)])
def test_the_wide_tile_gives_the_same_bits(wide_tiles, dtype, threads, ta, tb, m, n, k):
    """The wide tile (14 rows on AVX-512: products with many rows) runs every element's chain
    and tree as the narrower tile does: the naive chain's bits, with ragged rows (29, 131,
    250: not multiples of 14 or 8), ragged columns, several leaves, blocks of 112 rows and
    both splits between threads; forced on here, whatever the product's size."""
    a, b = operands(np.random.default_rng(m + n + k), m, n, k, ta, tb, dtype)
    c = run_gemm(a, b, ta, tb, threads)
    assert_close_to_numpy(c, a, b, ta, tb)
    assert np.array_equal(c, run_gemm(a, b, ta, tb, 1, kernel="naive"))
    gemm_module.use_wide_tiles(False)
    assert np.array_equal(c, run_gemm(a, b, ta, tb, threads))


@pytest.mark.parametrize("setting", ["use_wide_tiles", "use_k_cut", "use_deep_tiles"])
def test_settings_return_the_setting_before(setting):
    use = getattr(gemm_module, setting)
    before = use(True)
    try:
        assert use(False) is True
        assert use(None) is False
        assert use(None) is None
    finally:
        use(before)


def _cpu_vendor():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def test_the_automatic_choice_takes_the_wide_tile_where_it_pays():
    """Where the build has a wide tile, products that suit it take it on Intel's CPUs and not
    on AMD's (their 8-row tile measured faster: gemm_microkernel.h cg_wide_pays)."""
    b = gemm_module.blocking()
    vendor = _cpu_vendor()
    has_wide = b["wide"]["float64"][0] != b["tile"]["float64"][0]
    if not has_wide:
        assert b["wide_auto"] is False
    elif vendor in ("AuthenticAMD", "GenuineIntel"):
        assert b["wide_auto"] is (vendor == "GenuineIntel")
    else:
        pytest.skip(f"no rule for the CPU vendor {vendor!r}")


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", TRANSPOSES)
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (9, 33, 257), (70, 65, 600), (130, 40, 20)])
def test_variants_match_numpy(kernel, dtype, ta, tb, m, n, k):
    a, b = operands(np.random.default_rng(m * n + k), m, n, k, ta, tb, dtype)
    assert_close_to_numpy(run_gemm(a, b, ta, tb, 2, kernel=kernel), a, b, ta, tb)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n,k", [(0, 5, 3), (5, 0, 3), (0, 0, 0), (4, 3, 0), (1, 1, 0)])
@pytest.mark.parametrize("kernel", KERNELS)
def test_empty(dtype, m, n, k, kernel):
    a, b = np.ones((m, k), dtype), np.ones((k, n), dtype)
    c = run_gemm(a, b, threads=2, kernel=kernel)
    assert c.shape == (m, n) and np.array_equal(c, np.zeros((m, n), dtype))


def test_special_values_and_read_only_inputs():
    a = np.array([[np.inf, 1.0], [2.0, np.nan], [-0.0, 0.0]], np.float32)
    b = np.array([[1.0, 0.0], [-1.0, 2.0]], np.float32)
    a.flags.writeable = b.flags.writeable = False
    c = run_gemm(a, b)
    with np.errstate(invalid="ignore"):
        assert np.array_equal(c, a @ b, equal_nan=True)


def test_refuses_shapes_that_do_not_fit():
    a, b = np.ones((3, 4)), np.ones((4, 5))
    with pytest.raises(ValueError):
        gemm_module.gemm(a, b, np.empty((3, 4)), False, False, 1)
    with pytest.raises(ValueError):
        gemm_module.gemm(a, b, np.empty((3, 5)), True, False, 1)


# ---------------------------------------------------------------- the exactness contract

def tied(rng, shape_distinct, size, axis, dtype):
    """A random matrix whose `size` rows (axis 0) or columns (axis 1) repeat a few distinct
    ones at random positions; returns the matrix and which distinct one sits where."""
    distinct = rng.standard_normal(shape_distinct).astype(dtype)
    idx = rng.integers(0, distinct.shape[axis], size)
    idx[: distinct.shape[axis]] = rng.permutation(distinct.shape[axis])[: size]
    return np.take(distinct, idx, axis=axis), distinct, idx


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", TRANSPOSES)
@pytest.mark.parametrize("size", [1, 7, 33, 100, 257, 1000])
def test_tied_rows_and_columns_stay_tied(dtype, ta, tb, size):
    """C[i, j] depends only on which distinct row of A and column of op(B) it reads: so C equals
    the 3 x 3 product of the distinct ones, spread out, bitwise, for 1 and 2 threads."""
    rng = np.random.default_rng(size)
    k = 300 if size <= 257 else 40  # 300 > KC: the chain continues across k-blocks
    oa, da, ia = tied(rng, (3, k), size, 0, dtype)  # op(A): rows from 3 distinct
    ob, db, ib = tied(rng, (k, 3), size, 1, dtype)  # op(B): columns from 3 distinct
    a, b = (oa.T if ta else oa), (ob.T if tb else ob)
    small = run_gemm(da, db)
    expected = small[np.ix_(ia, ib)]
    for threads in (1, 2):
        assert np.array_equal(run_gemm(a, b, ta, tb, threads), expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [7, 100, 1000])
def test_broadcast_rows_stride_zero(dtype, size):
    """A tied layer in its purest form: one row broadcast (stride 0) to every position."""
    rng = np.random.default_rng(1)
    row = rng.standard_normal((1, 50)).astype(dtype)
    a = np.broadcast_to(row, (size, 50))
    b = rng.standard_normal((50, 70)).astype(dtype)
    c = run_gemm(a, b, threads=2)
    assert np.array_equal(c, np.broadcast_to(run_gemm(row, b), c.shape))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", TRANSPOSES)
@pytest.mark.parametrize("m", [1, 5, 64, 257])
def test_batch_invariance(dtype, ta, tb, m):
    """Each row of C, computed alone (M = 1), has the bits it has inside the batch."""
    rng = np.random.default_rng(m)
    k, n = 300, 45
    a, b = operands(rng, m, n, k, ta, tb, dtype)
    c = run_gemm(a, b, ta, tb, 2)
    for i in range(m):
        row = a[:, i:i + 1] if ta else a[i:i + 1]
        assert np.array_equal(run_gemm(row, b, ta, tb, 1), c[i:i + 1]), i


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", TRANSPOSES)
def test_column_invariance(dtype, ta, tb):
    """Each column of C, computed alone (N = 1), has the bits it has among all N."""
    rng = np.random.default_rng(7)
    m, n, k = 37, 70, 260
    a, b = operands(rng, m, n, k, ta, tb, dtype)
    c = run_gemm(a, b, ta, tb, 2)
    for j in range(n):
        col = b[j:j + 1] if tb else b[:, j:j + 1]
        assert np.array_equal(run_gemm(a, col, ta, tb, 1), c[:, j:j + 1]), j


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", TRANSPOSES)
@pytest.mark.parametrize("m,n,k", [(2000, 7, 700), (7, 2000, 700), (257, 257, 513),
                                   (64, 256, 784), (100, 3000, 30), (9, 33, 17), (17, 40, 3)])
def test_threads_and_variants_give_the_same_bits(dtype, ta, tb, m, n, k):
    """1 or 2 threads (split over N or over M, uneven shares) and all three variants: one
    result; and the default threshold sends only big products to two threads."""
    a, b = operands(np.random.default_rng(k), m, n, k, ta, tb, dtype)
    c = run_gemm(a, b, ta, tb, 1)
    assert np.array_equal(c, run_gemm(a, b, ta, tb, 2))
    assert np.array_equal(c, run_gemm(a, b, ta, tb, 2, kernel="blocked"))
    d = np.empty_like(c)
    gemm_module.gemm(a, b, d, ta, tb, 2)  # the default threshold
    assert np.array_equal(c, d)
    if m * n * k <= 15_000_000:
        assert np.array_equal(c, run_gemm(a, b, ta, tb, 1, kernel="naive"))


@pytest.fixture
def thread_zero_first():
    """Threaded products whose threads other than 0 start only when thread 0 is done with its
    share and with taking the units of theirs that it could (gemm.steal_hold)."""
    old = gemm_module.steal_hold(True)
    yield
    gemm_module.steal_hold(old)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", [(False, False), (True, True)])
@pytest.mark.parametrize("m,n,k", [(700, 600, 1100), (1000, 300, 2000), (300, 2100, 40),
                                   (130, 513, 600)])
def test_units_taken_from_another_thread_give_the_same_bits(dtype, ta, tb, m, n, k,
                                                             thread_zero_first):
    """A thread done with its share takes units (MC rows of a block of columns) from the back
    of another's: with thread 1 held until thread 0 is done, thread 0 computes most of thread
    1's share, with its own buffers and partials. The bits are one thread's."""
    a, b = operands(np.random.default_rng(m + n), m, n, k, ta, tb, dtype)
    c = run_gemm(a, b, ta, tb, 1)
    before = gemm_module.units_stolen()
    assert np.array_equal(c, run_gemm(a, b, ta, tb, 2))
    assert gemm_module.units_stolen() > before, "no unit was taken from another share"


def _forced(setting):
    """Run the test's products with gemm's `setting` on wherever it can be, then restore."""
    use = getattr(gemm_module, setting)
    before = use(True)
    yield
    use(before)


@pytest.fixture
def k_cut():
    """k cut in two parts wherever it can be."""
    yield from _forced("use_k_cut")


# products of 2, 3, 5, 6 and 11 leaves (float32 or float64), ragged rows and columns
LEAVES_SHAPES = [(130, 300, 3000), (250, 70, 1300), (29, 600, 1100), (300, 2100, 600),
                 (17, 40, 513), (200, 300, 5 * 512 + 3)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, True), (False, True)])
@pytest.mark.parametrize("m,n,k", LEAVES_SHAPES)
def test_k_cut_in_two_parts_gives_the_same_bits(k_cut, dtype, threads, ta, tb, m, n, k):
    """k cut in two parts (the tree's first group of 2^D leaves, its sum left in C, then the
    rest, whose last leaf adds it): the naive chain's bits and the uncut run's, with 2, 3, 5,
    6 and 11 leaves, ragged rows and columns, one to three threads (columns or rows split)."""
    assert gemm_module.cut_leaves(m, n, k, dtype, 1) > 0, "the product was not cut"
    a, b = operands(np.random.default_rng(m + n + k), m, n, k, ta, tb, dtype)
    c = run_gemm(a, b, ta, tb, threads)
    assert_close_to_numpy(c, a, b, ta, tb)
    assert np.array_equal(c, run_gemm(a, b, ta, tb, 1, kernel="naive"))
    gemm_module.use_k_cut(False)
    assert gemm_module.cut_leaves(m, n, k, dtype, 1) == 0
    assert np.array_equal(c, run_gemm(a, b, ta, tb, threads))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n,k", [(700, 600, 1100), (1000, 300, 2000), (130, 1300, 1536)])
def test_units_of_a_cut_k_taken_from_another_thread(k_cut, thread_zero_first, dtype, m, n, k):
    """A thread taking another's units runs both parts of each (part 1 after the last unit it
    took in that block of columns): with thread 1 held until thread 0 is done, thread 0 runs
    most of thread 1's share; the bits are one thread's."""
    a, b = operands(np.random.default_rng(m + k), m, n, k, False, False, dtype)
    before = gemm_module.units_stolen()
    c = run_gemm(a, b, False, False, 2)
    assert gemm_module.units_stolen() > before, "no unit was taken from another share"
    gemm_module.use_k_cut(False)
    assert np.array_equal(c, run_gemm(a, b, False, False, 1))


def test_the_automatic_choice_cuts_k_where_b_fills_the_budget():
    """Automatic: k is cut when 256 columns of the whole k's packed B take a thread's share
    of the budget (blocking()["packed_b"]) and the cut leaves fewer blocks of columns (two
    instead of four, one instead of two: with deep tiles both pay); then the first part is
    the first 2^D of the N leaves (N/2 for a power of two)."""
    budget, kc = gemm_module.blocking()["packed_b"], gemm_module.k_block["float64"]
    k = max(2048, budget // (256 * 8))
    k = 1 << (k - 1).bit_length()  # a power of two: N leaves, the first part N / 2
    before = gemm_module.use_k_cut(None)
    try:
        assert gemm_module.cut_leaves(512, 4096, k, np.float64, 1) == k // kc // 2
        assert gemm_module.cut_leaves(512, 4096, k + kc, np.float64, 1) == k // kc
        assert gemm_module.cut_leaves(256, 256, k, np.float64, 1) == 0  # one block of columns
        assert gemm_module.cut_leaves(512, 512, k, np.float64, 1) == k // kc // 2  # 2 to 1
        assert gemm_module.cut_leaves(512, 4096, kc, np.float64, 1) == 0  # one leaf
        small = max(kc, budget // (512 * 8) // kc * kc)  # 512 columns of it fit the budget
        assert gemm_module.cut_leaves(512, 4096, small, np.float64, 1) == 0
        gemm_module.use_k_cut(False)
        assert gemm_module.cut_leaves(512, 4096, k, np.float64, 1) == 0
    finally:
        gemm_module.use_k_cut(before)


@pytest.fixture
def deep_tiles():
    """Deep tiles wherever they can be."""
    yield from _forced("use_deep_tiles")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, True), (False, True)])
@pytest.mark.parametrize("cut", [False, True])
@pytest.mark.parametrize("m,n,k", LEAVES_SHAPES + [(45, 5, 900)])
def test_deep_tiles_give_the_same_bits(deep_tiles, dtype, threads, ta, tb, cut, m, n, k):
    """Deep tiles (each tile runs every leaf of its part back to back, the lower levels'
    partials one tile each): the naive chain's bits and those of leaf after leaf, with 2, 3,
    5, 6 and 11 leaves, k cut in two parts or not, ragged rows and columns, a narrow product
    (5 columns), one to three threads (columns or rows split)."""
    uncut = gemm_module.use_k_cut(cut)
    try:
        assert gemm_module.deep_tiles(m, n, k, dtype, 1), "no deep tiles"
        assert (gemm_module.cut_leaves(m, n, k, dtype, 1) > 0) == cut
        a, b = operands(np.random.default_rng(m + n + k), m, n, k, ta, tb, dtype)
        c = run_gemm(a, b, ta, tb, threads)
        assert_close_to_numpy(c, a, b, ta, tb)
        assert np.array_equal(c, run_gemm(a, b, ta, tb, 1, kernel="naive"))
        gemm_module.use_deep_tiles(False)
        assert not gemm_module.deep_tiles(m, n, k, dtype, 1)
        assert np.array_equal(c, run_gemm(a, b, ta, tb, threads))
    finally:
        gemm_module.use_k_cut(uncut)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n,k", [(700, 600, 1100), (130, 1300, 1536)])
def test_deep_units_taken_from_another_thread(deep_tiles, k_cut, thread_zero_first, dtype,
                                              m, n, k):
    """Units with deep tiles run by a thread that took them from another's share (both parts
    of a cut k): the bits of one thread leaf after leaf."""
    a, b = operands(np.random.default_rng(m + k), m, n, k, False, False, dtype)
    before = gemm_module.units_stolen()
    c = run_gemm(a, b, False, False, 2)
    assert gemm_module.units_stolen() > before, "no unit was taken from another share"
    gemm_module.use_deep_tiles(False)
    gemm_module.use_k_cut(False)
    assert np.array_equal(c, run_gemm(a, b, False, False, 1))


def test_the_automatic_choice_takes_deep_tiles_where_k_is_cut():
    """Automatic: deep tiles where k is cut in two parts (their measured gain: the product of
    a long k with many columns), not elsewhere; never with use_deep_tiles(False)."""
    budget, kc = gemm_module.blocking()["packed_b"], gemm_module.k_block["float64"]
    k = max(2048, budget // (256 * 8))
    k = 1 << (k - 1).bit_length()
    before = gemm_module.use_deep_tiles(None)
    cut = gemm_module.use_k_cut(None)
    try:
        assert gemm_module.cut_leaves(512, 4096, k, np.float64, 1) > 0
        assert gemm_module.deep_tiles(512, 4096, k, np.float64, 1)
        assert not gemm_module.deep_tiles(256, 256, k, np.float64, 1)  # not cut
        assert not gemm_module.deep_tiles(512, 4096, kc, np.float64, 1)  # one leaf
        gemm_module.use_k_cut(False)
        assert not gemm_module.deep_tiles(512, 4096, k, np.float64, 1)
        gemm_module.use_k_cut(None)
        gemm_module.use_deep_tiles(False)
        assert not gemm_module.deep_tiles(512, 4096, k, np.float64, 1)
    finally:
        gemm_module.use_deep_tiles(before)
        gemm_module.use_k_cut(cut)


def swapping_shapes(dtype, k):
    """Four (m, n) whose products run transposed in this build (the choice follows the build's
    tile shape: AVX2, AVX-512 and SSE builds pick different ones), spread over n."""
    found = [(m, n) for n in range(1, 33) for m in range(n + 1, 320, 7)
             if gemm_module.swaps(m, n, k, dtype)]
    if not found:  # (SSE2 float64 tiles, 4 x 4: no transposed run wastes 20% less)
        pytest.skip(f"this build's {np.dtype(dtype).name} tiles never gain from a transposed "
                    "run")
    return found[::max(1, len(found) // 4)][:4]


@pytest.mark.parametrize("ta,tb", TRANSPOSES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [50, 600])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_transposed_run_gives_the_same_bits(dtype, ta, tb, k, layout):
    """Few columns and more rows: the product runs as C.T = op(B).T @ op(A).T and is copied
    back; every element is the same chain (fma is symmetric in its factors), so the bits are
    the naive variant's, at 1 and 2 threads, whatever the operands' strides."""
    for m, n in swapping_shapes(dtype, k):
        rng = np.random.default_rng(m + n + k)
        a, b = operands(rng, m, n, k, ta, tb, dtype)
        a, b = relayout(a, layout, rng), relayout(b, layout, rng)
        c = run_gemm(a, b, ta, tb, 1, kernel="naive")
        assert np.array_equal(c, run_gemm(a, b, ta, tb, 1)), (m, n)
        assert np.array_equal(c, run_gemm(a, b, ta, tb, 2)), (m, n)
        assert_close_to_numpy(c, a, b, ta, tb)


def test_transposed_run_is_only_for_ragged_narrow_products():
    assert not gemm_module.swaps(512, 512, 512, np.float32)
    assert not gemm_module.swaps(9, 32, 600, np.float32)  # already the better way round
    assert not gemm_module.swaps(32, 9, 8, np.float32)  # k too short to pay for the copy
    assert not gemm_module.swaps(32, 16, 16, np.float32)  # too small: the copy costs more
    assert not gemm_module.swaps(40000, 9, 600, np.float32)  # C too big for a scratch copy


@pytest.mark.parametrize("ta,tb", TRANSPOSES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [3, 16, 23, 40])
def test_narrow_panels_packed_whole_give_the_same_bits(dtype, ta, tb, k):
    """Products one vector wide or narrower (16 float32 / 8 float64 columns on AVX-512, 8 / 4 on
    AVX2) pack B's narrow panel by the full panels' row copies or in-register transposes; the
    bits are the naive variant's for every column count around the width, every layout."""
    for n in (1, 4, 7, 8, 9, 15, 16):
        for m in (8, 32, 33):
            rng = np.random.default_rng(m * 100 + n + k)
            a, b = operands(rng, m, n, k, ta, tb, dtype)
            c = run_gemm(a, b, ta, tb, 1, kernel="naive")
            assert np.array_equal(c, run_gemm(a, b, ta, tb, 1)), (m, n)
            assert_close_to_numpy(c, a, b, ta, tb)


# ---------------------------------------------------------------- through the backend seam

def test_through_the_backend_seam():
    backend = pytest.importorskip("cygrad.backend")
    if "cython" not in backend.available():
        pytest.skip("the cython backend is not built")
    rng = np.random.default_rng(3)
    for dtype in DTYPES:
        for ta, tb in TRANSPOSES:
            a, b = operands(rng, 33, 70, 300, ta, tb, dtype)
            with backend.using("cython"):
                c = backend.gemm(a, b, ta, tb)
            with backend.using("numpy"):
                ref = backend.gemm(a, b, ta, tb)
            assert c.dtype == ref.dtype == dtype
            assert np.array_equal(c, run_gemm(a, b, ta, tb, 1))
            assert_close_to_numpy(c, a, b, ta, tb)


# ---------------------------------------------------------------------- the peak loop

@pytest.mark.parametrize("dtype", DTYPES)
def test_fma_peak_counts_its_flops_and_computes_its_chains(dtype):
    """fma_peak (the benchmarks' peak of one core): 2 * lanes * chains flops a link, and the
    chains really computed: chain c after n links of acc * 0.999 + 0.001 from c."""
    f = gemm_module.fma_peak
    flops0, total0 = f(dtype, 0)
    assert flops0 == 0.0
    chains = 12
    lanes = total0 / sum(range(chains))  # n = 0: each lane holds its chain's start
    assert lanes == int(lanes) and lanes in (1, 2, 4, 8, 16)
    for n in (1, 5, 1000):
        flops, total = f(dtype, n)
        assert flops == 2 * lanes * chains * n
        x = np.float64(np.float32(0.999) if dtype == np.float32 else 0.999)
        y = np.float64(np.float32(0.001) if dtype == np.float32 else 0.001)
        expected = lanes * sum(c * x**n + y * (1 - x**n) / (1 - x) for c in range(chains))
        assert total == pytest.approx(expected, rel=1e-4 if dtype == np.float32 else 1e-10)


def test_fma_peak_rejects_bad_arguments():
    with pytest.raises(TypeError, match="float32 or float64"):
        gemm_module.fma_peak(np.int64, 10)
    with pytest.raises(ValueError, match="n must be >= 0"):
        gemm_module.fma_peak(np.float32, -1)


def test_blocking_reports_this_builds_tiles_and_a_packing_budget_from_the_l2():
    b = gemm_module.blocking()
    assert b["k_block"] == gemm_module.k_block  # the leaves of every element's tree
    for dtype, (rows, cols) in b["tile"].items():
        assert b["mc"] % rows == 0 and b["nsub"] % cols == 0, dtype
        wide_rows, wide_cols = b["wide"][dtype]  # as many columns; as many rows or more
        assert wide_cols == cols and wide_rows >= rows, dtype
    l2 = gemm_module._l2_bytes()
    want = min(max(4 * l2, 2 << 20), 16 << 20) if l2 > 0 else 4 << 20
    assert b["packed_b"] == want
    assert b["prefetch_b"] >= 0
