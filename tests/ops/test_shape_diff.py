"""Shape ops against PyTorch: views, joins, splits, triangles, flips (tests/ops/torchdiff.py
runs each one-line function on both libraries and compares values, dtypes, shapes, gradients and
the exception raised).

Hypothesis draws shapes (with size-0 dims), dtypes, memory layouts (non-contiguous inputs) and
the op's arguments, including out-of-range dims, where torch's exception type is the answer.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torchdiff import diff, run_gradcheck, shares_memory_like_torch

import cygrad

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)
DTYPES = [np.float64, np.float32, np.int64, np.bool_]
shapes = st.lists(st.integers(0, 4), max_size=4).map(tuple)
nonempty_shapes = st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple)


def values(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if np.dtype(dtype).kind == "b":
        return rng.random(shape) < 0.5
    return rng.integers(-5, 6, shape).astype(dtype)


@st.composite
def tensors(draw, shape_strategy=shapes, dtypes=DTYPES):
    shape = draw(shape_strategy)
    dtype = draw(st.sampled_from(dtypes))
    kind = draw(st.sampled_from("cts")) if shape else "c"
    return values(shape, dtype, draw(st.integers(0, 1000))), kind


def dim_of(ndim, extra=1):
    """A dim in torch's range, and now and then one just outside it."""
    n = max(ndim, 1)
    return st.integers(-n - extra, n - 1 + extra)


# ---------------------------------------------------------------------- views

@SETTINGS
@given(tensors(), st.data())
def test_reshape_view_flatten(x, data):
    array, kind = x
    n = array.size
    divisors = [d for d in range(1, n + 1) if n % d == 0] or [1]
    d = data.draw(st.sampled_from(divisors))
    target = data.draw(st.sampled_from([(d, -1), (-1, d), (n,), (-1,), (d, n // d if n else 3),
                                        (1, -1, 1), (n + 1,), (-1, -1)]))
    diff(lambda m, t: t.reshape(target), array, kinds=[kind])
    diff(lambda m, t: m.reshape(t, target), array, kinds=[kind])
    diff(lambda m, t: t.view(*target), array, kinds=[kind])
    diff(lambda m, t: t.view(target).view_as(t), array, kinds=[kind])
    diff(lambda m, t: t.reshape_as(t), array, kinds=[kind])
    start, end = data.draw(dim_of(array.ndim)), data.draw(dim_of(array.ndim))
    diff(lambda m, t: t.flatten(), array, kinds=[kind])
    diff(lambda m, t: m.flatten(t, start, end), array, kinds=[kind])


@SETTINGS
@given(tensors(nonempty_shapes), st.data())
def test_unflatten(x, data):
    array, kind = x
    dim = data.draw(dim_of(array.ndim))
    size = array.shape[dim] if -array.ndim <= dim < array.ndim else 1
    sizes = data.draw(st.sampled_from([(size,), (1, size), (-1, 1), (size, -1), (2, -1),
                                       (size + 1,)]))
    diff(lambda m, t: t.unflatten(dim, sizes), array, kinds=[kind])


@SETTINGS
@given(tensors(), st.data())
def test_squeeze_unsqueeze(x, data):
    array, kind = x
    array = array.reshape(tuple(data.draw(st.permutations(array.shape + (1, 1)))))
    ndim = array.ndim
    diff(lambda m, t: t.squeeze(), array, kinds=[kind])
    d = data.draw(dim_of(ndim))
    diff(lambda m, t: t.squeeze(d), array, kinds=[kind])
    diff(lambda m, t: m.squeeze(t, dim=d), array, kinds=[kind])
    dims = tuple(data.draw(st.lists(dim_of(ndim, 0), max_size=3, unique=True)))
    diff(lambda m, t: t.squeeze(dims), array, kinds=[kind])
    u = data.draw(dim_of(ndim + 1))
    diff(lambda m, t: t.unsqueeze(u), array, kinds=[kind])


@SETTINGS
@given(tensors(), st.data())
def test_permute_transpose(x, data):
    array, kind = x
    ndim = array.ndim
    order = data.draw(st.permutations(range(ndim)))
    signed = [o - ndim if data.draw(st.booleans()) else o for o in order]
    diff(lambda m, t: t.permute(*signed), array, kinds=[kind])
    diff(lambda m, t: m.permute(t, signed), array, kinds=[kind])
    if ndim:
        diff(lambda m, t: t.permute(*signed[:-1]), array, kinds=[kind])
    d0, d1 = data.draw(dim_of(ndim)), data.draw(dim_of(ndim))
    diff(lambda m, t: t.transpose(d0, d1), array, kinds=[kind])
    diff(lambda m, t: m.swapaxes(t, d0, d1), array, kinds=[kind])
    diff(lambda m, t: t.t(), array, kinds=[kind])
    diff(lambda m, t: t.mT, array, kinds=[kind])
    if ndim in (0, 2):
        diff(lambda m, t: t.T, array, kinds=[kind])
    src = tuple(data.draw(st.lists(dim_of(ndim, 0), max_size=2, unique=True)))
    dst = tuple(data.draw(st.lists(dim_of(ndim, 0), min_size=len(src), max_size=len(src),
                                   unique=True)))
    diff(lambda m, t: t.movedim(src, dst), array, kinds=[kind])
    if src:
        diff(lambda m, t: m.movedim(t, src[0], dst[0]), array, kinds=[kind])


@SETTINGS
@given(tensors(), st.data())
def test_expand_repeat(x, data):
    array, kind = x
    shape = array.shape
    target = [data.draw(st.sampled_from([s, -1, 3] if s == 1 else [s, -1]))
              for s in shape]
    lead = data.draw(st.lists(st.integers(0, 3), max_size=2))
    diff(lambda m, t: t.expand(*(lead + target)), array, kinds=[kind])
    diff(lambda m, t: t.expand(lead + target).sum(0) if lead else t.expand(target), array,
         kinds=[kind])
    other = np.zeros(tuple(lead) + tuple(3 if s == 1 else s for s in shape))
    diff(lambda m, t, o: t.expand_as(o), array, other, kinds=[kind, "c"])
    diff(lambda m, t: m.broadcast_to(t, tuple(lead) + shape), array, kinds=[kind])
    reps = data.draw(st.lists(st.integers(0, 3), min_size=len(shape), max_size=len(shape) + 2))
    diff(lambda m, t: t.repeat(*reps), array, kinds=[kind])
    if shape:
        diff(lambda m, t: t.repeat(reps[1:len(shape)]), array, kinds=[kind])


@SETTINGS
@given(tensors(nonempty_shapes), st.data())
def test_split_chunk_unbind_narrow_select(x, data):
    array, kind = x
    ndim = array.ndim
    dim = data.draw(dim_of(ndim))
    size = array.shape[dim] if -ndim <= dim < ndim else 1
    step = data.draw(st.integers(1, 5))
    diff(lambda m, t: t.split(step, dim), array, kinds=[kind])
    diff(lambda m, t: m.split(t, step, dim=dim), array, kinds=[kind])
    parts = data.draw(st.lists(st.integers(0, size), max_size=3))
    sizes = parts + [size - sum(parts)] if sum(parts) <= size else parts
    diff(lambda m, t: t.split(sizes, dim), array, kinds=[kind])
    chunks = data.draw(st.integers(1, 6))
    diff(lambda m, t: t.chunk(chunks, dim), array, kinds=[kind])
    diff(lambda m, t: m.tensor_split(t, chunks, dim), array, kinds=[kind])
    cuts = sorted(data.draw(st.lists(st.integers(0, size + 1), max_size=3)))
    diff(lambda m, t: t.tensor_split(cuts, dim=dim), array, kinds=[kind])
    diff(lambda m, t: t.unbind(dim), array, kinds=[kind])
    start = data.draw(st.integers(-size, size))
    length = data.draw(st.integers(0, size))
    diff(lambda m, t: t.narrow(dim, start, length), array, kinds=[kind])
    index = data.draw(st.integers(-size - 1, size))
    diff(lambda m, t: t.select(dim, index), array, kinds=[kind])


@SETTINGS
@given(st.lists(tensors(st.just((2, 3)), [np.float64, np.float32, np.int64, np.bool_]),
                min_size=1, max_size=3), st.data())
def test_cat_stack_promote_dtypes(items, data):
    arrays = [a for a, _ in items]
    kinds = [k for _, k in items]
    dim = data.draw(dim_of(2))
    diff(lambda m, *ts: m.cat(ts, dim), *arrays, kinds=kinds)
    diff(lambda m, *ts: m.concat(list(ts), dim=dim), *arrays, kinds=kinds)
    sdim = data.draw(dim_of(3))
    diff(lambda m, *ts: m.stack(ts, sdim), *arrays, kinds=kinds)
    diff(lambda m, *ts: m.hstack(ts), *arrays, kinds=kinds)
    diff(lambda m, *ts: m.vstack(ts), *arrays, kinds=kinds)
    diff(lambda m, *ts: m.column_stack(ts), *arrays, kinds=kinds)


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 3)), min_size=1, max_size=4),
       st.sampled_from([np.float64, np.float32]), st.data())
def test_cat_shapes(sizes, dtype, data):
    """Joins of pieces of different lengths along dim, mismatched shapes (torch's error), and
    1-D empty tensors, which torch.cat skips whatever the others' shapes."""
    dim = data.draw(st.integers(0, 1))
    arrays = [values((a, b) if dim == 0 else (b, a), dtype, i) for i, (a, b) in enumerate(sizes)]
    if data.draw(st.booleans()):
        arrays.insert(data.draw(st.integers(0, len(arrays))), np.zeros(0, dtype))
    diff(lambda m, *ts: m.cat(ts, dim), *arrays)
    vectors = [values((a,), dtype, i) for i, (a, _) in enumerate(sizes)]
    diff(lambda m, *ts: m.cat(ts), *vectors)
    diff(lambda m, *ts: m.hstack(ts), *vectors)
    diff(lambda m, *ts: m.vstack(ts), *vectors)
    diff(lambda m, *ts: m.column_stack(ts), *vectors)


@SETTINGS
@given(tensors(st.lists(st.integers(0, 4), min_size=1, max_size=3).map(tuple)), st.data())
def test_tril_triu_flip_roll(x, data):
    array, kind = x
    ndim = array.ndim
    k = data.draw(st.integers(-3, 3))
    diff(lambda m, t: t.tril(k), array, kinds=[kind])
    diff(lambda m, t: m.triu(t, diagonal=k), array, kinds=[kind])
    dims = data.draw(st.lists(dim_of(ndim, 0), max_size=ndim, unique=True))
    diff(lambda m, t: t.flip(dims), array, kinds=[kind])
    diff(lambda m, t: m.flip(t, dims), array, kinds=[kind])
    shift = data.draw(st.integers(-5, 5))
    diff(lambda m, t: t.roll(shift), array, kinds=[kind])
    rdims = data.draw(st.lists(dim_of(ndim, 0), min_size=1, max_size=ndim, unique=True))
    shifts = data.draw(st.lists(st.integers(-5, 5), min_size=len(rdims), max_size=len(rdims)))
    diff(lambda m, t: t.roll(shifts, rdims), array, kinds=[kind])
    diff(lambda m, t: m.roll(t, shift, rdims[0]), array, kinds=[kind])


@SETTINGS
@given(tensors(st.lists(st.integers(0, 4), min_size=1, max_size=3).map(tuple)), st.data())
def test_diagonal_diag(x, data):
    array, kind = x
    ndim = array.ndim
    offset = data.draw(st.integers(-3, 3))
    if ndim >= 2:
        d1, d2 = data.draw(dim_of(ndim, 0)), data.draw(dim_of(ndim, 0))
        diff(lambda m, t: t.diagonal(offset, d1, d2), array, kinds=[kind])
        diff(lambda m, t: m.diagonal(t, offset=offset), array, kinds=[kind])
    if ndim <= 2:
        diff(lambda m, t: m.diag(t, offset), array, kinds=[kind])


# ---------------------------------------------------------------------- views share memory

VIEWS = {
    "view": lambda m, t: t.view(3, 4),
    "view_as": lambda m, t: t.view_as(t),
    "reshape": lambda m, t: t.reshape(2, 6),
    "reshape of transposed": lambda m, t: t.t().reshape(12),
    "flatten": lambda m, t: t.flatten(),
    "flatten transposed": lambda m, t: t.t().flatten(),
    "unflatten": lambda m, t: t.unflatten(1, (2, 2)),
    "squeeze": lambda m, t: t.unsqueeze(0).squeeze(),
    "unsqueeze": lambda m, t: t.unsqueeze(1),
    "permute": lambda m, t: t.permute(1, 0),
    "transpose": lambda m, t: t.transpose(0, 1),
    "t": lambda m, t: t.t(),
    "T": lambda m, t: t.T,
    "mT": lambda m, t: t.mT,
    "movedim": lambda m, t: t.movedim(0, 1),
    "expand": lambda m, t: t[:1].expand(5, 4),
    "expand_as": lambda m, t: t[:1].expand_as(t),
    "repeat": lambda m, t: t.repeat(1, 2),
    "split": lambda m, t: t.split(2),
    "split list": lambda m, t: t.split([1, 2], dim=0),
    "chunk": lambda m, t: t.chunk(2, 1),
    "tensor_split": lambda m, t: t.tensor_split(3, 1),
    "unbind": lambda m, t: t.unbind(1),
    "narrow": lambda m, t: t.narrow(1, 1, 2),
    "select": lambda m, t: t.select(0, 1),
    "int index": lambda m, t: t[1],
    "slice": lambda m, t: t[1:, ::2],
    "None and Ellipsis": lambda m, t: t[None, ..., 1],
    "bool mask": lambda m, t: t[t > 0],
    "int list": lambda m, t: t[[0, 2]],
    "int tensor": lambda m, t: t[m.tensor([1, 0])],
    "index_select": lambda m, t: t.index_select(0, m.tensor([1])),
    "gather": lambda m, t: t.gather(1, m.tensor([[0], [1], [2]])),
    "masked_select": lambda m, t: t.masked_select(t > 0),
    "where": lambda m, t: m.where(t > 0, t, 0.0),
    "tril": lambda m, t: t.tril(),
    "flip": lambda m, t: t.flip(0),
    "roll": lambda m, t: t.roll(1),
    "diagonal": lambda m, t: t.diagonal(),
    "diag": lambda m, t: m.diag(t),
    "cat": lambda m, t: m.cat([t, t]),
    "stack": lambda m, t: m.stack([t]),
    "clone": lambda m, t: t.clone(),
    "contiguous": lambda m, t: t.contiguous(),
    "contiguous of t": lambda m, t: t.t().contiguous(),
    "detach": lambda m, t: t.detach(),
    "data": lambda m, t: t.data,
    "to same dtype": lambda m, t: t.to(t.dtype),
    "float of float32": lambda m, t: t.float(),
    "double": lambda m, t: t.double(),
}


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_views_share_memory_as_torch(name):
    """A write into the input shows in the output exactly where torch's output is a view."""
    array = np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5
    shares_memory_like_torch(VIEWS[name], array)


def test_write_through_a_view_changes_the_base():
    for m in (pytest.importorskip("torch"), cygrad):
        x = m.zeros(3, 4)
        x[1].fill_(2.0)
        x.t()[0].add_(1.0)
        x.view(-1)[-1] = 7.0
        x.narrow(1, 1, 2).mul_(3)
        x.unsqueeze(0).squeeze(0)[2, 0] = -1
        if m is cygrad:
            got = x.numpy()
        else:
            expected = x.numpy()
    assert np.array_equal(got, expected)


# ---------------------------------------------------------------------- gradcheck

GRADCHECKED = {
    "reshape": lambda m, t: t.reshape(4, 3) * m.arange(12.0).reshape(4, 3),
    "flatten": lambda m, t: t.flatten(0, 1),
    "unflatten": lambda m, t: t.unflatten(1, (2, 2)),
    "squeeze": lambda m, t: t[:1].squeeze(0),
    "unsqueeze": lambda m, t: t.unsqueeze(-1),
    "permute": lambda m, t: t.permute(1, 0),
    "transpose": lambda m, t: t.transpose(-1, -2),
    "movedim": lambda m, t: t.movedim(1, 0),
    "mT": lambda m, t: t.mT,
    "expand": lambda m, t: t[:, :1].expand(3, 5),
    "repeat": lambda m, t: t.repeat(2, 1, 2),
    "split": lambda m, t: t.split(3, 1)[1],
    "chunk": lambda m, t: t.chunk(2)[0],
    "unbind": lambda m, t: t.unbind(1)[2],
    "narrow": lambda m, t: t.narrow(1, 1, 2),
    "select": lambda m, t: t.select(1, -1),
    "cat": lambda m, t: m.cat([t, t * 2, t[:1]]),
    "stack": lambda m, t: m.stack([t, t.flip(0)], 1),
    "hstack": lambda m, t: m.hstack([t, t]),
    "vstack": lambda m, t: m.vstack([t[0], t]),
    "column_stack": lambda m, t: m.column_stack([t[0], t[1]]),
    "tril": lambda m, t: t.tril(-1),
    "triu": lambda m, t: t.triu(1),
    "flip": lambda m, t: t.flip(0, 1),
    "roll": lambda m, t: t.roll((1, -1), (0, 1)),
    "diagonal": lambda m, t: t.diagonal(1),
    "diag": lambda m, t: m.diag(t[0], -1),
}


@pytest.mark.parametrize("name", sorted(GRADCHECKED))
def test_gradcheck(name):
    array = np.random.default_rng(3).standard_normal((3, 4))
    run_gradcheck(GRADCHECKED[name], [array])


@pytest.mark.parametrize("name", sorted(GRADCHECKED))
def test_gradients_as_torch(name):
    array = np.random.default_rng(4).standard_normal((3, 4))
    diff(GRADCHECKED[name], array)
    diff(GRADCHECKED[name], array.astype(np.float32), kinds=["s"])


# the aliases and the in-place and index-returning forms, on every dtype and a 0-d and an empty
# input (each row: one call)
ALIASES = [
    lambda m, t: t.swapdims(0, -1), lambda m, t: m.swapdims(t, 1, 0),
    lambda m, t: m.moveaxis(t, 0, -1), lambda m, t: t.moveaxis((0, 1), (1, 0)),
    lambda m, t: m.concatenate([t, t], 1), lambda m, t: m.concatenate((t, t), axis=0),
    lambda m, t: m.row_stack([t, t]), lambda m, t: t.adjoint(), lambda m, t: m.adjoint(t),
    lambda m, t: t.nonzero(), lambda m, t: m.nonzero(t, as_tuple=True),
    lambda m, t: m.argwhere(t), lambda m, t: t.argwhere(),
    lambda m, t: t.clone().masked_fill_(t > 0, 7) if t.dtype != m.bool else
    t.clone().masked_fill_(t, False),
    lambda m, t: (t * 1).scatter_(0, m.zeros_like(t, dtype=m.int64)[:1], 2) if t.dim() else t,
    lambda m, t: (t * 1).scatter_(-1, m.zeros(t.shape[:-1] + (1,), dtype=m.int64),
                                  t[..., :1] * 3) if t.dim() else t,
]


@pytest.mark.parametrize("i", range(len(ALIASES)))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 4), (2, 0), ()])
def test_aliases_and_inplace_forms(i, dtype, shape):
    diff(ALIASES[i], values(shape, dtype, 5), kinds=["t" if len(shape) == 2 else "c"])
