"""torch functions cygrad builds from its other ops (tile, repeat_interleave, meshgrid,
broadcast_tensors/shapes, atleast_nd, take_along_dim, diff, fliplr/flipud/rot90, addmm and its
family, kron, tensordot, dist, cdist, tril/triu_indices, nansum/nanmean, absolute,
set_printoptions) against PyTorch: values, dtypes, shapes, gradients and the exception raised
(tests/ops/torchdiff.py), with a float64 gradcheck of each differentiable one.
"""

import warnings

import numpy as np
import pytest
from torchdiff import diff, need_torch

import cygrad

F64, F32 = np.float64, np.float32


def values(shape, dtype=F64, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if np.dtype(dtype).kind == "b":
        return rng.random(shape) < 0.5
    return rng.integers(-5, 6, shape).astype(dtype)


@pytest.mark.parametrize("dtype", [F64, F32, np.int64, np.bool_])
@pytest.mark.parametrize("shape,dims", [((2, 3), (2,)), ((2, 3), (2, 1, 2)), ((4,), (3,)),
                                        ((), (2, 2)), ((2, 0), (1, 3)), ((2,), (-1,))])
def test_tile(dtype, shape, dims):
    x = values(shape, dtype)
    diff(lambda m, t: m.tile(t, dims), x, gradcheck=np.dtype(dtype) == F64 and x.size > 0)
    diff(lambda m, t: t.tile(*dims), x)


@pytest.mark.parametrize("dtype", [F64, F32, np.int64])
@pytest.mark.parametrize("repeats,dim", [(2, None), (2, 0), (3, 1), (0, 1), (-1, 0),
                                         ("tensor", 1), ("tensor1", 0), ("bad", 1), (2, 5)])
def test_repeat_interleave(dtype, repeats, dim):
    x = values((2, 3), dtype)

    def fn(m, t):
        r = repeats
        if r == "tensor":
            r = m.tensor([1, 0, 2])
        elif r == "tensor1":
            r = m.tensor([3])
        elif r == "bad":
            r = m.tensor([1, 2])
        return m.repeat_interleave(t, r, dim=dim)

    diff(fn, x, gradcheck=np.dtype(dtype) == F64 and repeats not in (0, -1, "bad"))
    if isinstance(repeats, int) and repeats >= 0:
        diff(lambda m, t: t.repeat_interleave(repeats, dim), x)


def test_repeat_interleave_of_counts_alone():
    diff(lambda m, c: m.repeat_interleave(c), np.array([2, 0, 3]))
    diff(lambda m, c: m.repeat_interleave(c), np.array([1, -1]))


@pytest.mark.parametrize("indexing", ["ij", "xy"])
@pytest.mark.parametrize("sizes", [(3,), (3, 2), (2, 3, 4), (0, 2)])
def test_meshgrid(indexing, sizes):
    arrays = [values((n,), F64, i) for i, n in enumerate(sizes)]
    diff(lambda m, *ts: m.meshgrid(*ts, indexing=indexing), *arrays, gradcheck=True)
    diff(lambda m, *ts: m.meshgrid(list(ts), indexing=indexing), *arrays)


def test_meshgrid_warns_without_indexing_and_refuses_bad_input():
    a, b = cygrad.arange(3), cygrad.arange(2)
    with pytest.warns(UserWarning, match="indexing"):
        x, y = cygrad.meshgrid(a, b)
    assert x.shape == (3, 2) and y.shape == (3, 2)
    diff(lambda m, t: m.meshgrid(t, indexing="ij"), values((2, 2)))
    diff(lambda m, t: m.meshgrid(t, indexing="yx"), values((2,)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        diff(lambda m, t, u: m.meshgrid(t, u, indexing="ij"), values((2,)),
             values((2,), np.int64))


@pytest.mark.parametrize("shapes", [[(2, 1), (3,)], [(1,), (2, 3), (4, 1, 1)], [(2,), (3,)],
                                    [()], [(0, 1), (3,)]])
def test_broadcast_tensors_and_shapes(shapes):
    arrays = [values(s, F64, i) for i, s in enumerate(shapes)]
    diff(lambda m, *ts: m.broadcast_tensors(*ts), *arrays, gradcheck=all(a.size for a in arrays))
    torch = need_torch()
    try:
        expected = tuple(torch.broadcast_shapes(*shapes))
    except RuntimeError:
        with pytest.raises(RuntimeError):
            cygrad.broadcast_shapes(*shapes)
        return
    got = cygrad.broadcast_shapes(*shapes)
    assert tuple(got) == expected and isinstance(got, cygrad.Size)
    assert tuple(cygrad.broadcast_shapes(3, (2, 1))) == tuple(torch.broadcast_shapes(3, (2, 1)))


@pytest.mark.parametrize("fn_name", ["atleast_1d", "atleast_2d", "atleast_3d"])
@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (2, 3, 4), (1, 2, 3, 4)])
def test_atleast(fn_name, shape):
    x = values(shape)
    diff(lambda m, t: getattr(m, fn_name)(t), x, gradcheck=True)
    diff(lambda m, t, u: getattr(m, fn_name)(t, u), x, values((2,)))
    diff(lambda m, t, u: getattr(m, fn_name)([t, u]), x, values(()))


@pytest.mark.parametrize("dtype", [F64, F32, np.int64])
@pytest.mark.parametrize("xshape,ishape,dim", [((3, 4), (3, 2), 1), ((3, 4), (1, 4), 0),
                                               ((3, 1), (3, 5), 1), ((2, 3, 4), (1, 3, 2), 2),
                                               ((3, 4), (5,), None), ((3, 4), (3,), 1),
                                               ((3, 4), (2, 2), 1), ((3, 4), (3, 2), 2)])
def test_take_along_dim(dtype, xshape, ishape, dim):
    x = values(xshape, dtype)
    size = int(np.prod(xshape)) if dim is None else xshape[dim % len(xshape)]
    idx = np.random.default_rng(1).integers(0, size, ishape)
    diff(lambda m, t, i: m.take_along_dim(t, i, dim), x, idx,
         gradcheck=np.dtype(dtype) == F64)
    diff(lambda m, t, i: t.take_along_dim(i, dim=dim), x, idx)
    diff(lambda m, t, i: m.take_along_dim(t, i.int(), dim), x, idx)


@pytest.mark.parametrize("dtype", [F64, F32, np.int64, np.bool_])
@pytest.mark.parametrize("n,dim", [(1, -1), (2, 0), (3, 1), (0, 1), (5, 1), (-1, 0), (1, 2)])
def test_diff(dtype, n, dim):
    x = values((3, 4), dtype)
    diff(lambda m, t: m.diff(t, n, dim), x, gradcheck=np.dtype(dtype) == F64 and n in (1, 2))
    diff(lambda m, t: t.diff(n=n, dim=dim), x)


def test_diff_prepend_append_and_bad_input():
    x, p, a = values((2, 3)), values((2, 1), seed=1), values((2, 2), seed=2)
    diff(lambda m, t, u, v: m.diff(t, dim=1, prepend=u, append=v), x, p, a, gradcheck=True)
    diff(lambda m, t, u: m.diff(t, dim=0, append=u), x, values((1, 3), seed=3))
    diff(lambda m, t, u: m.diff(t, dim=1, prepend=u), x, values((3,), seed=3))
    diff(lambda m, t: m.diff(t), values(()))
    diff(lambda m, t: m.diff(t), values((0,)))


@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (2, 3, 4)])
def test_fliplr_flipud(shape):
    x = values(shape)
    diff(lambda m, t: m.fliplr(t), x, gradcheck=len(shape) >= 2)
    diff(lambda m, t: m.flipud(t), x, gradcheck=len(shape) >= 1)


@pytest.mark.parametrize("k", [0, 1, 2, 3, 4, -1, 5])
@pytest.mark.parametrize("dims", [(0, 1), (1, 0), (-1, 0), (1, 2), (0, 0), (0, 1, 2), (3, 0)])
def test_rot90(k, dims):
    x = values((2, 3, 4))
    diff(lambda m, t: m.rot90(t, k, dims), x, gradcheck=k == 1 and len(set(dims)) == 2)
    diff(lambda m, t: t.rot90(k, list(dims)), x)
    diff(lambda m, t: m.rot90(t), values((3,)))


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("beta,alpha", [(1, 1), (0.5, 2.0), (0, 1), (0, 0.5), (2, 0)])
@pytest.mark.parametrize("ishape", [(3, 4), (4,), (1, 4), (3, 1), (), (2, 4)])
def test_addmm(dtype, beta, alpha, ishape):
    i, a, b = values(ishape, dtype), values((3, 5), dtype, 1), values((5, 4), dtype, 2)
    diff(lambda m, x, y, z: m.addmm(x, y, z, beta=beta, alpha=alpha), i, a, b,
         gradcheck=dtype == F64 and ishape != (2, 4))
    diff(lambda m, x, y, z: x.addmm(y, z, beta=beta, alpha=alpha), i, a, b)


def test_addmm_with_beta_zero_ignores_nan_and_checks_shapes():
    i = np.full((3, 4), np.nan)
    diff(lambda m, x, y, z: m.addmm(x, y, z, beta=0), i, values((3, 5)), values((5, 4)))
    diff(lambda m, x, y, z: m.addmm(x, y, z), values((3, 4)), values((3,)), values((5, 4)))


@pytest.mark.parametrize("beta,alpha", [(1, 1), (0.5, -2.0), (0, 1)])
def test_baddbmm_addbmm_addmv(beta, alpha):
    i3, b1, b2 = values((2, 3, 4)), values((2, 3, 5), seed=1), values((2, 5, 4), seed=2)
    diff(lambda m, x, y, z: m.baddbmm(x, y, z, beta=beta, alpha=alpha), i3, b1, b2,
         gradcheck=True)
    diff(lambda m, x, y, z: m.addbmm(x, y, z, beta=beta, alpha=alpha), values((3, 4)), b1, b2,
         gradcheck=True)
    diff(lambda m, x, y, z: m.addmv(x, y, z, beta=beta, alpha=alpha), values((3,)),
         values((3, 5)), values((5,)), gradcheck=True)


@pytest.mark.parametrize("dtype", [F64, F32, np.int64])
@pytest.mark.parametrize("ashape,bshape", [((2, 3), (4, 5)), ((3,), (2,)), ((2, 3), (4,)),
                                           ((2,), (2, 3, 2)), ((), (3,)), ((2, 0), (3, 2))])
def test_kron(dtype, ashape, bshape):
    a, b = values(ashape, dtype), values(bshape, dtype, 1)
    diff(lambda m, x, y: m.kron(x, y), a, b, gradcheck=np.dtype(dtype) == F64)
    diff(lambda m, x, y: x.kron(y), a, b)


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("ashape,bshape,dims", [
    ((2, 3, 4), (3, 4, 5), 2), ((2, 3), (3, 4), 1), ((2, 3), (4, 5), 0),
    ((2, 3, 4), (4, 3, 5), ([1, 2], [1, 0])), ((3, 4), (4, 3), ([0], [1])),
    ((2, 3), (3, 4), ([1], [0, 1])), ((2, 3), (2, 4), 1), ((2, 3), (3, 2), ([-1], [0]))])
def test_tensordot(dtype, ashape, bshape, dims):
    a, b = values(ashape, dtype), values(bshape, dtype, 1)
    diff(lambda m, x, y: m.tensordot(x, y, dims), a, b, gradcheck=dtype == F64)


@pytest.mark.parametrize("p", [2, 1, 3.5, 0, float("inf")])
def test_dist_and_cdist(p):
    # (torch's dist and cdist have no backward for p = 0: it raises there; cygrad's
    # gradient is zero)
    a, b = values((3, 4)), values((3, 4), seed=1)
    diff(lambda m, x, y: m.dist(x, y, p), a, b, grad=p != 0,
         gradcheck=p not in (0, float("inf")))
    diff(lambda m, x, y: x.dist(y, p), a, values((4,), seed=2), grad=p != 0)
    x1, x2 = values((2, 3, 4), seed=3), values((2, 5, 4), seed=4)
    diff(lambda m, x, y: m.cdist(x, y, p), x1, x2, grad=p != 0,
         gradcheck=p not in (0, float("inf")))
    diff(lambda m, x, y: m.cdist(x, y, p), values((3, 4)), values((2, 4)), grad=p != 0)


def test_cdist_bad_input():
    diff(lambda m, x, y: m.cdist(x, y), values((3, 4)), values((2, 5)))
    diff(lambda m, x, y: m.cdist(x, y), values((4,)), values((2, 4)))
    diff(lambda m, x, y: m.cdist(x, y, -1.0), values((3, 4)), values((2, 4)))


@pytest.mark.parametrize("fn_name", ["tril_indices", "triu_indices"])
@pytest.mark.parametrize("row,col,offset", [(3, 3, 0), (4, 3, 1), (3, 5, -1), (0, 3, 0),
                                            (3, 0, 0), (2, 2, 5), (3, 3, -5), (-1, 3, 0)])
def test_triangle_indices(fn_name, row, col, offset):
    torch = need_torch()
    try:
        expected = getattr(torch, fn_name)(row, col, offset)
    except RuntimeError:
        with pytest.raises(RuntimeError):
            getattr(cygrad, fn_name)(row, col, offset)
        return
    got = getattr(cygrad, fn_name)(row, col, offset)
    assert got.dtype == cygrad.int64 and got.shape == tuple(expected.shape)
    np.testing.assert_array_equal(got.numpy(), expected.numpy())
    got32 = getattr(cygrad, fn_name)(row, col, offset, dtype=cygrad.int32)
    assert got32.dtype == cygrad.int32


@pytest.mark.parametrize("fn_name", ["nansum", "nanmean"])
@pytest.mark.parametrize("dtype", [F64, F32, np.int64])
@pytest.mark.parametrize("dim,keepdim", [(None, False), (0, False), (1, True), ((0, 1), False)])
def test_nansum_nanmean(fn_name, dtype, dim, keepdim):
    x = values((3, 4), dtype)
    if np.dtype(dtype).kind == "f":
        x[0, 1] = x[2, 3] = np.nan
        x[1, :] = np.nan  # a row with nothing but NaN: nanmean gives nan there
    diff(lambda m, t: getattr(m, fn_name)(t, dim, keepdim), x)
    diff(lambda m, t: getattr(t, fn_name)(dim=dim, keepdim=keepdim), x)


def test_nansum_gradcheck_away_from_nan():
    x = values((3, 4))
    diff(lambda m, t: m.nansum(t, 1), x, gradcheck=True)
    diff(lambda m, t: m.nanmean(t, 0), x, gradcheck=True)


def test_absolute_is_abs():
    x = values((2, 3))
    diff(lambda m, t: m.absolute(t), x)
    diff(lambda m, t: t.absolute(), x)


def test_set_printoptions_changes_the_format_as_in_torch():
    torch = need_torch()
    values_ = [1.23456789, -2.5, 1000.125]
    try:
        for kwargs in ({"precision": 2}, {"precision": 6}, {"sci_mode": True},
                       {"profile": "short"}, {"linewidth": 20, "precision": 3}):
            torch.set_printoptions(**kwargs)
            cygrad.set_printoptions(**kwargs)
            assert repr(cygrad.tensor(values_)) == repr(torch.tensor(values_)), kwargs
    finally:
        torch.set_printoptions(profile="default")
        cygrad.set_printoptions(profile="default")


@pytest.mark.parametrize("dtype", [F64, F32])
def test_products_keep_tied_rows_bitwise_and_rows_batch_invariant(dtype):
    """The exactness contract through the composite products: identical rows of the input give
    identical rows of the output and of its gradient, and a row alone has the bits it has inside
    the batch (any batch size, 1 or 2 threads)."""
    rng = np.random.default_rng(5)
    row = rng.standard_normal(37).astype(dtype)
    x = np.stack([row, rng.standard_normal(37).astype(dtype), row, row])
    w = rng.standard_normal((37, 9)).astype(dtype)
    bias = rng.standard_normal(9).astype(dtype)
    other = rng.standard_normal((5, 37)).astype(dtype)
    fns = {"addmm": lambda a: cygrad.addmm(cygrad.tensor(bias), a, cygrad.tensor(w), beta=0.5,
                                           alpha=2.0),
           "tensordot": lambda a: cygrad.tensordot(a, cygrad.tensor(w), 1),
           "cdist": lambda a: cygrad.cdist(a, cygrad.tensor(other)),
           "kron": lambda a: cygrad.kron(a, cygrad.tensor(w[:2, :3]))}
    for name, fn in fns.items():
        outs = {}
        for threads in (1, 2):
            with _threads(threads):
                a = cygrad.tensor(x, requires_grad=True)
                y = fn(a)
                y.sum().backward()
                outs[threads] = (y.detach().numpy().copy(), a.grad.numpy().copy())
                alone = fn(cygrad.tensor(x[:1])).detach().numpy()
        y, g = outs[1]
        assert np.array_equal(outs[2][0], y) and np.array_equal(outs[2][1], g), name
        per = y.shape[0] // x.shape[0]  # kron makes several output rows per input row
        rows = y.reshape(x.shape[0], per, -1)
        assert np.array_equal(rows[0], rows[2]) and np.array_equal(rows[0], rows[3]), name
        assert np.array_equal(g[0], g[2]) and np.array_equal(g[0], g[3]), name
        assert np.array_equal(alone.reshape(per, -1), rows[0]), name


class _threads:
    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self.saved = cygrad.get_num_threads()
        cygrad.set_num_threads(self.n)

    def __exit__(self, *exc):
        cygrad.set_num_threads(self.saved)
