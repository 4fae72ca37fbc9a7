"""Indexing against PyTorch: __getitem__ with every kind of index, __setitem__ (values,
broadcasting, gradients through the value, torch's refusals), index_put, index_select, gather,
scatter, scatter_add, index_add, where, masked_fill, masked_select (tests/ops/torchdiff.py runs
each function on both libraries)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torchdiff import diff, need_torch, run_gradcheck

import cygrad

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)
DTYPES = [np.float64, np.float32, np.int64, np.bool_]


def values(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if np.dtype(dtype).kind == "b":
        return rng.random(shape) < 0.5
    return rng.integers(-5, 6, shape).astype(dtype)


# ---------------------------------------------------------------------- index specs

@st.composite
def index_items(draw, shape):
    """An index for a tensor of `shape`, as a list of specs made into real indices per library
    by `materialise` (some items out of range, some advanced indices not broadcastable: torch's
    exception is then the answer)."""
    items, dim = [], 0
    ellipsis = False
    while dim < len(shape) and draw(st.integers(0, 3)) > 0:
        size = shape[dim]
        kind = draw(st.sampled_from(["int", "slice", "slice", "none", "ellipsis", "list",
                                     "tensor", "tensor2", "bool", "int0d"]))
        if kind == "ellipsis":
            if ellipsis:
                continue
            ellipsis = True
            items.append(("ellipsis",))
            dim = len(shape) - draw(st.integers(0, len(shape) - dim))
            continue
        if kind == "none":
            items.append(("none",))
            continue
        if kind == "int":
            items.append(("int", draw(st.integers(-size - 1, size))))
        elif kind == "int0d":
            items.append(("int0d", draw(st.integers(-size, max(size - 1, 0)))))
        elif kind == "slice":
            start = draw(st.none() | st.integers(-size - 2, size + 2))
            stop = draw(st.none() | st.integers(-size - 2, size + 2))
            step = draw(st.none() | st.integers(1, 3))
            items.append(("slice", start, stop, step))
        elif kind in ("list", "tensor", "tensor2"):
            n = draw(st.integers(0, 3))
            bound = max(size, 1)
            # out of range by one now and then (torch checks only the elements it reads:
            # no error when the result is empty)
            high = bound
            picks = draw(st.lists(st.integers(-bound, high), min_size=n, max_size=n))
            if kind == "tensor2":
                picks = [picks, picks[::-1]]
            items.append((kind, picks))
        elif kind == "bool":
            mask = draw(st.lists(st.booleans(), min_size=size, max_size=size))
            items.append(("bool", mask))
        dim += 1
    if draw(st.booleans()):
        items.append(("none",))
    return items


def materialise(m, items):
    out = []
    for item in items:
        kind = item[0]
        if kind == "ellipsis":
            out.append(Ellipsis)
        elif kind == "none":
            out.append(None)
        elif kind == "int":
            out.append(item[1])
        elif kind == "int0d":
            out.append(m.tensor(item[1]))
        elif kind == "slice":
            out.append(slice(*item[1:]))
        elif kind == "list":
            out.append(list(item[1]))
        elif kind in ("tensor", "tensor2"):
            out.append(m.tensor(item[1], dtype=m.int64))
        elif kind == "bool":
            out.append(m.tensor(item[1], dtype=m.bool))
    return out[0] if len(out) == 1 and items[0][0] != "list" else tuple(out)


shapes = st.lists(st.integers(0, 4), max_size=3).map(tuple)


@SETTINGS
@given(shapes, st.sampled_from(DTYPES), st.sampled_from("cts"), st.data())
def test_getitem(shape, dtype, kind, data):
    array = values(shape, dtype, data.draw(st.integers(0, 99)))
    items = data.draw(index_items(shape))
    diff(lambda m, t: t[materialise(m, items)], array, kinds=[kind if shape else "c"])


@SETTINGS
@given(shapes, st.sampled_from([np.float64, np.float32, np.int64]), st.data())
def test_setitem(shape, dtype, data):
    """x[index] = value with a number, a tensor of the indexed shape, or one that broadcasts;
    gradients reach the base and the value through the write."""
    array = values(shape, dtype, 1)
    items = data.draw(index_items(shape))
    kind = data.draw(st.sampled_from(["number", "full", "last", "bad"]))
    value_seed = data.draw(st.integers(0, 99))

    def target_shape(m):
        probe = m.from_numpy(np.zeros(shape, dtype))
        return tuple(probe[materialise(m, items)].shape)

    def write(m, t):
        t = t * 1 if t.is_floating_point() else t.clone()  # a non-leaf: writes are recorded
        index = materialise(m, items)
        target = target_shape(m)
        if kind == "number":
            t[index] = 2.5 if t.is_floating_point() else 3
            return t
        vshape = target if kind == "full" else target[-1:] if kind == "last" else \
            target + (2,)
        v = m.from_numpy(values(vshape, dtype, value_seed)).to(t.dtype)  # (float64 in the
        # float32 run's reference)
        if v.is_floating_point():
            v.requires_grad_(True)
        t[index] = v
        return t, v

    try:
        need_torch().from_numpy(np.zeros(shape, dtype))[materialise(need_torch(), items)]
    except (IndexError, RuntimeError, TypeError, ValueError):
        return  # a bad index: test_getitem holds the exception
    diff(write, array)


def test_setitem_value_gradient_and_leaf_refusal():
    torch = need_torch()
    base = np.arange(12.0).reshape(3, 4)

    def fn(m, x, v):
        y = x * 2
        y[1:, [0, 2]] = v  # v (2,) broadcast over (2, 2)
        y[0] = v.sum()
        return y

    diff(fn, base, np.array([1.5, -2.0]))
    run_gradcheck(fn, [base, np.array([1.5, -2.0])])
    for m in (torch, cygrad):
        leaf = m.ones(3, requires_grad=True)
        with pytest.raises(RuntimeError):
            leaf[0] = 2.0
        with pytest.raises(RuntimeError):
            leaf[1:].fill_(2.0)
        with m.no_grad():
            leaf[0] = 5.0  # allowed outside the graph
        assert leaf[0].item() == 5.0
        with pytest.raises(RuntimeError):
            m.ones(2, 3)[0] = m.ones(4)  # shape mismatch
        ints = m.ones(3, dtype=m.int64)
        ints[0] = m.tensor(-2.5, requires_grad=True)  # converted, as any write into ints
        assert ints.tolist() == [-2, 1, 1]


def test_sequence_of_sequences_is_a_tuple_as_in_torch():
    array = np.arange(12.0).reshape(3, 4)
    diff(lambda m, t: t[[[0, 1]]], array)
    diff(lambda m, t: t[[[0, 1], [1, 2]]], array)
    diff(lambda m, t: t[[0, slice(1, 3)]], array)
    diff(lambda m, t: t[(0, 1),], array)


# ---------------------------------------------------------------------- index_* and scatters

@SETTINGS
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
       st.sampled_from(DTYPES), st.data())
def test_index_select_gather(shape, dtype, data):
    array = values(shape, dtype, 2)
    ndim = len(shape)
    dim = data.draw(st.integers(-ndim - 1, ndim))
    size = shape[dim] if -ndim <= dim < ndim else 1
    picks = data.draw(st.lists(st.integers(-1, size), max_size=5))
    diff(lambda m, t: t.index_select(dim, m.tensor(picks, dtype=m.int64)), array)
    diff(lambda m, t: m.index_select(t, dim, m.tensor(picks, dtype=m.int32)), array)
    gshape = tuple(data.draw(st.integers(0, s + (1 if i == dim % ndim else 0)))
                   for i, s in enumerate(shape))
    index = np.random.default_rng(3).integers(0, size, gshape)
    if data.draw(st.booleans()) and index.size:
        index.reshape(-1)[0] = data.draw(st.sampled_from([-1, size]))
    diff(lambda m, t: t.gather(dim, m.from_numpy(index.copy())), array)
    diff(lambda m, t: m.gather(t, dim, m.from_numpy(index.copy())), array)


@SETTINGS
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
       st.sampled_from([np.float64, np.float32, np.int64]), st.data())
def test_scatter_family(shape, dtype, data):
    array = values(shape, dtype, 4)
    ndim = len(shape)
    dim = data.draw(st.integers(-ndim, ndim - 1))
    size = shape[dim]
    ishape = tuple(data.draw(st.integers(1, s)) for s in shape)  # (torch's backward fails
    # on an empty index)
    index = np.random.default_rng(data.draw(st.integers(0, 99))).integers(0, size, ishape)
    src = values(ishape, dtype, 5)  # (torch's backward fails for a src larger than index)
    diff(lambda m, t, s: t.scatter_add(dim, m.from_numpy(index.copy()), s), array, src)
    diff(lambda m, t, s: m.scatter_add(t, dim, m.from_numpy(index.copy()), s), array, src)
    value = 1.5 if np.dtype(dtype).kind == "f" else 2
    diff(lambda m, t: t.scatter(dim, m.from_numpy(index.copy()), value), array)
    unique = np.argsort(np.random.default_rng(6).random(shape), axis=dim)
    unique = np.take(unique, range(min(ishape[dim], size)), axis=dim)  # no repeated targets
    diff(lambda m, t, s: t.scatter(dim, m.from_numpy(unique.copy()), s[tuple(
        slice(0, n) for n in unique.shape)]), array, values(shape, dtype, 5))
    picks = data.draw(st.lists(st.integers(0, size - 1), max_size=4))
    sshape = list(shape)
    sshape[dim] = len(picks)
    source = values(tuple(sshape), dtype, 7)
    alpha = data.draw(st.sampled_from([1, 2, -0.5])) if np.dtype(dtype).kind == "f" else 2
    diff(lambda m, t, s: t.index_add(dim, m.tensor(picks, dtype=m.int64), s, alpha=alpha),
         array, source)


def test_inplace_scatters_and_index_put():
    array = values((3, 4), np.float64, 8)
    index = np.array([[0, 1, 2, 0], [2, 0, 1, 1]])

    def fn(m, x, s):
        y = x * 1
        y.scatter_add_(0, m.from_numpy(index.copy()), s[:2])
        y.index_add_(1, m.tensor([3, 0]), s[:, :2], alpha=3)
        y.index_put_((m.tensor([0, 2]), m.tensor([1, 1])), s[0, :2])
        z = y.index_put((m.tensor([1]), m.tensor([2])), m.tensor(9.0, dtype=m.float64))
        w = y.index_put([m.tensor([0, 0])], s[1], accumulate=True)
        return z, w

    diff(fn, array, values((3, 4), np.float64, 9))
    run_gradcheck(lambda m, x, s: fn(m, x, s)[0], [array, values((3, 4), np.float64, 9)])
    run_gradcheck(lambda m, x, s: fn(m, x, s)[1], [array, values((3, 4), np.float64, 9)])


# ---------------------------------------------------------------------- where and masks

@SETTINGS
@given(st.lists(st.integers(0, 3), max_size=3).map(tuple), st.sampled_from(DTYPES),
       st.sampled_from(DTYPES), st.data())
def test_where_masked_fill_masked_select(shape, da, db, data):
    cond = values(shape, np.bool_, 10)
    a = values(shape, da, 11)
    bshape = shape[data.draw(st.integers(0, len(shape))):]
    b = values(bshape, db, 12)
    diff(lambda m, c, x, y: m.where(c, x, y), cond, a, b)
    diff(lambda m, c, x, y: x.where(c, y), cond, a, b)
    diff(lambda m, c, x: m.where(c, x, 2.5), cond, a)
    diff(lambda m, c, x: m.where(c, 0, x), cond, a)
    diff(lambda m, c: m.where(c), cond)
    diff(lambda m, x: m.where(x), a)
    mshape = shape[data.draw(st.integers(0, len(shape))):]
    mask = values(mshape, np.bool_, 13)
    value = data.draw(st.sampled_from([0.5, -3, True, float("-inf")]))
    diff(lambda m, x, k: x.masked_fill(k, value), a, mask)
    diff(lambda m, x, k: x.masked_fill(k, m.tensor(2.0)), a, mask)
    diff(lambda m, x, k: m.masked_select(x, k), a, mask)
    diff(lambda m, x, k: x.masked_fill(k.int(), 1), a, mask)


def test_where_and_masked_fill_gradcheck():
    a = values((3, 4), np.float64, 14)
    b = values((4,), np.float64, 15)
    mask = a > 0
    run_gradcheck(lambda m, x, y: m.where(m.from_numpy(mask), x, y), [a, b])
    run_gradcheck(lambda m, x: x.masked_fill(m.from_numpy(mask), -1.0), [a])
    run_gradcheck(lambda m, x, v: x.masked_fill(m.from_numpy(mask), v), [a, np.array(0.5)])
    run_gradcheck(lambda m, x: x.masked_select(m.from_numpy(mask)), [a])
    run_gradcheck(lambda m, x: x[m.from_numpy(mask)], [a])
    run_gradcheck(lambda m, x: x[[0, 2, 0], 1:], [a])
    run_gradcheck(lambda m, x: x[:, m.tensor([[1, 1], [3, 0]])], [a])
    run_gradcheck(lambda m, x: x.gather(1, m.tensor([[0, 0], [3, 1], [2, 2]])), [a])
    run_gradcheck(lambda m, x: x.index_select(1, m.tensor([3, 3, 0])), [a])
    run_gradcheck(lambda m, x, s: x.scatter(1, m.tensor([[2], [0], [1]]), s), [a, a * 2])
    run_gradcheck(lambda m, x, s: x.scatter_add(0, m.tensor([[2, 0, 0, 2]]), s), [a, a * 3])
    run_gradcheck(lambda m, x, s: x.index_add(0, m.tensor([2, 2]), s, alpha=-2.0),
                  [a, a[:2] * 3])


def test_gradients_of_repeated_indices_accumulate_as_torch():
    a = values((4, 3), np.float32, 16)
    diff(lambda m, x: x[m.tensor([0, 0, 3, 0, 1])], a)
    diff(lambda m, x: x[[1, 1], [2, 2]], a)
    diff(lambda m, x: x.index_select(0, m.tensor([2, 2, 2])), a)
    diff(lambda m, x: x.gather(0, m.tensor([[0, 0, 0], [0, 0, 0]])), a)
