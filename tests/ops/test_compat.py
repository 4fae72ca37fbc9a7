"""ops/compat.py: torch's in-place forms, helpers, predicates and process settings, against
torch (skipped without it), with gradcheck for the differentiable ones."""

import numpy as np
import pytest

import cygrad
import cygrad.nn.functional as F


def _x(shape=(3, 7), seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("dim,size,step", [(1, 3, 2), (0, 2, 1), (-1, 7, 3), (1, 1, 4)])
def test_unfold_matches_torch(dim, size, step):
    torch = _torch()
    x = _x()
    c, t = cygrad.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    cy, ty = c.unfold(dim, size, step), t.unfold(dim, size, step)
    assert tuple(cy.shape) == tuple(ty.shape)
    assert np.array_equal(cy.numpy(), ty.detach().numpy())
    g = _x(tuple(ty.shape), 1)
    (cy * cygrad.tensor(g)).sum().backward()
    (ty * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy(), rtol=1e-14)


@pytest.mark.parametrize("interpolation", ["linear", "lower", "higher", "midpoint", "nearest"])
@pytest.mark.parametrize("dim,keepdim", [(None, False), (None, True), (1, False), (0, True),
                                         (-1, True)])
def test_quantile_matches_torch(interpolation, dim, keepdim):
    torch = _torch()
    x = _x((4, 9))
    for q in (0.3, 1.0, [0.0, 0.25, 0.5, 0.9]):
        cq = cygrad.tensor(q, dtype=cygrad.float64) if isinstance(q, list) else q
        tq = torch.tensor(q, dtype=torch.float64) if isinstance(q, list) else q
        c, t = cygrad.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        cy = cygrad.quantile(c, cq, dim, keepdim, interpolation=interpolation)
        ty = torch.quantile(t, tq, dim, keepdim, interpolation=interpolation)
        assert tuple(cy.shape) == tuple(ty.shape)
        np.testing.assert_allclose(cy.numpy(), ty.detach().numpy(), rtol=1e-13, atol=1e-15)
        cy.sum().backward()
        ty.sum().backward()
        np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy(), rtol=1e-13, atol=1e-15)


def test_quantiles_with_nan_match_torch():
    torch = _torch()
    x = _x((4, 6))
    x[0, 2] = np.nan
    x[2] = np.nan
    for fn in ("quantile", "nanquantile"):
        for dim in (None, 1, 0):
            got = getattr(cygrad, fn)(cygrad.tensor(x), 0.4, dim=dim).numpy()
            want = getattr(torch, fn)(torch.tensor(x), 0.4, dim=dim).numpy()
            np.testing.assert_allclose(got, want, rtol=1e-13, equal_nan=True)
    with pytest.raises(RuntimeError, match=r"q values must be in the range \[0, 1\]"):
        cygrad.quantile(cygrad.tensor(x), 1.5)
    with pytest.raises(RuntimeError, match="same dtype as the input"):
        cygrad.quantile(cygrad.tensor(x), cygrad.tensor([0.5], dtype=cygrad.float32))
    with pytest.raises(RuntimeError, match="interpolation must be one of"):
        cygrad.quantile(cygrad.tensor(x), 0.5, interpolation="cubic")


def test_logcumsumexp_and_sum_to_size_match_torch():
    torch = _torch()
    x = _x((3, 6))
    x[1, :2] = -np.inf
    x[2, 3] = 800.0  # no overflow
    c, t = cygrad.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    cy, ty = cygrad.logcumsumexp(c, 1), torch.logcumsumexp(t, 1)
    np.testing.assert_allclose(cy.numpy(), ty.detach().numpy(), rtol=1e-14)
    cy.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy(), rtol=1e-13, atol=1e-300)
    y = _x((2, 3, 4), 3)
    for size in ((3, 1), (1, 4), (1, 1, 1), (2, 3, 4), (4,)):
        np.testing.assert_allclose(cygrad.tensor(y).sum_to_size(size).numpy(),
                                   torch.tensor(y).sum_to_size(size).numpy(), rtol=1e-14)
    with pytest.raises(RuntimeError, match="is not expandable"):
        cygrad.tensor(y).sum_to_size(2, 4)


def test_gradcheck():
    t = lambda a: cygrad.tensor(a, requires_grad=True)  # noqa: E731
    assert cygrad.gradcheck(lambda x: x.unfold(1, 3, 2), t(_x((2, 7), 4)))
    q = cygrad.tensor([0.2, 0.7], dtype=cygrad.float64)
    assert cygrad.gradcheck(lambda x: cygrad.quantile(x, q, 1), t(_x()))
    assert cygrad.gradcheck(lambda x: cygrad.logcumsumexp(x, 0), t(_x((4, 3), 5)))
    assert cygrad.gradcheck(lambda x: x.sum_to_size(3, 1), t(_x((2, 3, 4), 6)))


@pytest.mark.parametrize("name,args,kwargs", [
    ("addcdiv_", (np.full((3, 4), 2.0), np.full((3, 4), 4.0)), {"value": 0.5}),
    ("addcmul_", (np.full((3, 4), 2.0), np.full((3, 4), 3.0)), {"value": -1.5}),
    ("lerp_", (np.zeros((3, 4)), 0.25), {}),
    ("cumsum_", (1,), {}),
    ("cumprod_", (0,), {}),
    ("nan_to_num_", (), {"nan": 7.0}),
])
def test_inplace_forms_match_torch(name, args, kwargs):
    torch = _torch()
    x = _x((3, 4), 7)
    x[0, 0] = np.nan if name == "nan_to_num_" else x[0, 0]
    c, t = cygrad.tensor(x), torch.tensor(x)
    cargs = [cygrad.tensor(a) if isinstance(a, np.ndarray) else a for a in args]
    targs = [torch.tensor(a) if isinstance(a, np.ndarray) else a for a in args]
    assert getattr(c, name)(*cargs, **kwargs) is c
    getattr(t, name)(*targs, **kwargs)
    np.testing.assert_allclose(c.numpy(), t.numpy(), rtol=1e-15)


@pytest.mark.parametrize("name,self_shape,shapes,kwargs", [
    ("addmm_", (3, 4), [(3, 5), (5, 4)], {"beta": 0.5, "alpha": 2.0}),
    ("addmv_", (3,), [(3, 5), (5,)], {"alpha": -1.0}),
    ("addbmm_", (3, 4), [(2, 3, 5), (2, 5, 4)], {}),
    ("baddbmm_", (2, 3, 4), [(2, 3, 5), (2, 5, 4)], {"beta": 0.0}),
])
def test_product_inplace_forms_match_torch(name, self_shape, shapes, kwargs):
    """self.addmm_(m1, m2) ...: the product written into self, its gradients through the
    graph to self's old value and both operands, as torch's; torch.addmv_ too."""
    torch = _torch()
    arrays = [_x(s, i + 20) for i, s in enumerate([self_shape] + shapes)]
    cs = [cygrad.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    c0, t0 = cs[0] * 1, ts[0] * 1
    assert getattr(c0, name)(*cs[1:], **kwargs) is c0
    getattr(t0, name)(*ts[1:], **kwargs)
    np.testing.assert_allclose(c0.detach().numpy(), t0.detach().numpy(), rtol=1e-13)
    g = _x(self_shape, 30)
    (c0 * cygrad.tensor(g)).sum().backward()
    (t0 * torch.tensor(g)).sum().backward()
    for c, t in zip(cs, ts):
        np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy(), rtol=1e-13, atol=1e-14)
    if name == "addmv_":
        c, t = cygrad.tensor(arrays[0]), torch.tensor(arrays[0])
        assert cygrad.addmv_(c, cygrad.tensor(arrays[1]), cygrad.tensor(arrays[2])) is c
        torch.addmv_(t, torch.tensor(arrays[1]), torch.tensor(arrays[2]))
        np.testing.assert_allclose(c.numpy(), t.numpy(), rtol=1e-13)


@pytest.mark.parametrize("p", [1, 2, 3, 5])
def test_mvlgamma_matches_torch(p):
    """torch.mvlgamma / Tensor.mvlgamma(_) / torch.special.multigammaln: values and gradient,
    integer input in the default dtype, values at and below (p - 1) / 2."""
    torch = _torch()
    x = np.random.default_rng(p).uniform(p / 2, p / 2 + 4, (3, 4))
    c, t = cygrad.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    cy, ty = cygrad.mvlgamma(c, p), torch.mvlgamma(t, p)
    np.testing.assert_allclose(cy.detach().numpy(), ty.detach().numpy(), rtol=1e-14)
    cy.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy(), rtol=1e-12)
    assert cygrad.gradcheck(lambda z: z.mvlgamma(p), cygrad.tensor(x, requires_grad=True))
    np.testing.assert_allclose(cygrad.special.multigammaln(cygrad.tensor(x), p).numpy(),
                               ty.detach().numpy(), rtol=1e-14)
    y = cygrad.tensor(x)
    assert y.mvlgamma_(p) is y
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-14)
    ints = [[p + 1, p + 2]]
    ci, ti = cygrad.mvlgamma(cygrad.tensor(ints), p), torch.mvlgamma(torch.tensor(ints), p)
    assert ci.dtype.name == str(ti.dtype).removeprefix("torch.")
    np.testing.assert_allclose(ci.numpy(), ti.numpy(), rtol=1e-6)
    low = np.array([(p - 1) / 2, (p - 1) / 2 - 0.3, -0.7])  # torch 2 checks no domain
    np.testing.assert_allclose(cygrad.mvlgamma(cygrad.tensor(low), p).numpy(),
                               torch.mvlgamma(torch.tensor(low), p).numpy(), rtol=1e-14)


def test_storage_offset_as_torch():
    """Where a view starts in the memory of the tensor it was taken from, in elements."""
    torch = _torch()
    c, t = cygrad.arange(60.0).reshape(3, 4, 5), torch.arange(60.0).reshape(3, 4, 5)
    views = [lambda z: z, lambda z: z[1:], lambda z: z[2, 1:, 3:], lambda z: z.transpose(0, 2)[1:],
             lambda z: z.reshape(-1)[7:], lambda z: z[:, 2], lambda z: z.unsqueeze(0)[:, 1:],
             lambda z: z[1].t()[2:], lambda z: z.select(2, 4), lambda z: z.narrow(1, 2, 2)]
    for view in views:
        assert view(c).storage_offset() == view(t).storage_offset()
    assert cygrad.zeros(3).storage_offset() == 0


def test_inplace_forms_record_the_graph():
    a = cygrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = a * 1
    b.addcmul_(a, a, value=2.0)  # b = a + 2 a^2
    b.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), 1 + 4 * np.array([1.0, 2.0, 3.0]))
    m = cygrad.tensor([True, False])
    m.logical_not_()
    assert m.tolist() == [False, True]
    i = cygrad.tensor([1, 6])
    i.bitwise_not_()
    assert i.tolist() == [-2, -7]


def test_helpers_match_torch():
    torch = _torch()
    x = _x((3, 4), 8)
    c, t = cygrad.tensor(x), torch.tensor(x)
    assert np.array_equal(cygrad.fliplr(c).numpy(), torch.fliplr(t).numpy())
    assert np.array_equal(c.flipud().numpy(), t.flipud().numpy())
    assert np.array_equal(cygrad.broadcast_to(c[0], (2, 4)).numpy(),
                          torch.broadcast_to(t[0], (2, 4)).numpy())
    assert cygrad.positive(c) is c
    with pytest.raises(RuntimeError, match="bool tensor is not supported"):
        cygrad.positive(cygrad.tensor([True]))
    ints = cygrad.tensor([2, 3])
    assert cygrad.float_power(ints, 2).dtype == cygrad.float64
    np.testing.assert_allclose(cygrad.float_power(ints, 0.5).numpy(),
                               torch.float_power(torch.tensor([2, 3]), 0.5).numpy(), rtol=1e-15)
    h = np.array([-1.0, 0.0, 2.0, 0.0])
    np.testing.assert_array_equal(
        cygrad.heaviside(cygrad.tensor(h), cygrad.tensor([0.5], dtype=cygrad.float64)).numpy(),
        torch.heaviside(torch.tensor(h), torch.tensor([0.5], dtype=torch.float64)).numpy())
    parts = cygrad.split_with_sizes(c, [1, 3], 1)
    assert [tuple(p.shape) for p in parts] == [(3, 1), (3, 3)]
    with pytest.raises(RuntimeError, match="sum exactly to 4"):
        c.split_with_sizes([1, 2], 1)
    got = cygrad.unravel_index(cygrad.tensor([4, 10, -1]), (3, 4))
    want = torch.unravel_index(torch.tensor([4, 10, -1]), (3, 4))
    assert [g.tolist() for g in got] == [w.tolist() for w in want]
    assert cygrad.scalar_tensor(3).dtype == cygrad.get_default_dtype()
    assert cygrad.typename(c) == torch.typename(t) == "torch.DoubleTensor"
    assert (c.itemsize, c.nbytes, c.is_cpu, c.get_device()) == (8, 96, True, -1)


def test_predicates():
    x = cygrad.zeros(2, 3)
    assert cygrad.is_same_size(x, cygrad.ones(2, 3)) and not x.is_same_size(cygrad.ones(3, 2))
    assert x.is_signed() and not cygrad.tensor([1], dtype=cygrad.uint8).is_signed()
    assert cygrad.tensor([2.0]).is_nonzero() and not cygrad.tensor(0).is_nonzero()
    with pytest.raises(RuntimeError, match="more than one value is ambiguous"):
        x.is_nonzero()
    assert cygrad.isreal(x).all()


def test_process_settings():
    assert not cygrad.are_deterministic_algorithms_enabled()
    cygrad.use_deterministic_algorithms(True, warn_only=True)
    try:
        assert cygrad.are_deterministic_algorithms_enabled()
        assert cygrad.is_deterministic_algorithms_warn_only_enabled()
    finally:
        cygrad.use_deterministic_algorithms(False)
    cygrad.set_float32_matmul_precision("high")
    try:
        assert cygrad.get_float32_matmul_precision() == "high"
    finally:
        cygrad.set_float32_matmul_precision("highest")
    with pytest.raises(RuntimeError, match="Invalid precision"):
        cygrad.set_float32_matmul_precision("low")
    assert str(cygrad.get_default_device()) == "cpu"
    cygrad.set_default_device("cpu")
    with pytest.raises(RuntimeError, match="CPU only"):
        cygrad.set_default_device("cuda")


def test_top_level_functional_aliases():
    for name in ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                 "conv_transpose3d", "cosine_similarity", "pairwise_distance", "pixel_shuffle",
                 "pixel_unshuffle", "bilinear", "adaptive_avg_pool1d", "avg_pool1d", "pdist",
                 "hardshrink", "prelu", "rms_norm"):
        assert getattr(cygrad, name) is getattr(F, name)


def test_inverse_hyperbolics_match_torch():
    torch = _torch()
    x = np.array([1.1, 1.5, 2.0, 7.0])
    for name, a in (("asinh", x - 3), ("acosh", x), ("atanh", (x - 3) / 5)):
        for alias in (name, "arc" + name[1:]):
            c = cygrad.tensor(a, requires_grad=True)
            t = torch.tensor(a, requires_grad=True)
            cy, ty = getattr(cygrad, alias)(c), getattr(torch, alias)(t)
            np.testing.assert_allclose(cy.numpy(), ty.detach().numpy(), rtol=1e-15)
            cy.sum().backward()
            ty.sum().backward()
            np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy(), rtol=1e-14)


def test_mode_nanmedian_index_fill_copy_match_torch():
    torch = _torch()
    x = np.array([[1, 2, 2, 3, 3, 1, 0], [5, 5, 4, 4, 9, 9, 9]])
    for dim, keepdim in ((1, False), (0, True), (-1, True)):
        ours, theirs = cygrad.mode(cygrad.tensor(x), dim, keepdim), \
            torch.mode(torch.tensor(x), dim, keepdim)
        assert ours.values.tolist() == theirs.values.tolist()
        assert ours.indices.tolist() == theirs.indices.tolist()
    y = np.array([[1.0, np.nan, 3.0, 2.0], [4.0, 1.0, np.nan, np.nan], [5.0, 3.0, 2.0, 7.0]])
    ours, theirs = cygrad.nanmedian(cygrad.tensor(y), 1), torch.nanmedian(torch.tensor(y), 1)
    assert ours.values.tolist() == theirs.values.tolist()
    assert ours.indices.tolist() == theirs.indices.tolist()
    assert float(cygrad.nanmedian(cygrad.tensor(y))) == float(torch.nanmedian(torch.tensor(y)))
    z = _x((3, 4), 20)
    src = _x((3, 2), 21)
    c, t = cygrad.tensor(z, requires_grad=True), torch.tensor(z, requires_grad=True)
    cs, ts = cygrad.tensor(src, requires_grad=True), torch.tensor(src, requires_grad=True)
    cy = cygrad.index_copy(c, 1, cygrad.tensor([3, 0]), cs).index_fill(0, cygrad.tensor([1]), 2.0)
    ty = torch.index_copy(t, 1, torch.tensor([3, 0]), ts).index_fill(0, torch.tensor([1]), 2.0)
    assert np.array_equal(cy.numpy(), ty.detach().numpy())
    g = _x((3, 4), 22)
    (cy * cygrad.tensor(g)).sum().backward()
    (ty * torch.tensor(g)).sum().backward()
    assert np.array_equal(c.grad.numpy(), t.grad.numpy())
    assert np.array_equal(cs.grad.numpy(), ts.grad.numpy())
    m = cygrad.tensor(z)
    assert m.index_fill_(0, cygrad.tensor([1]), 0.0) is m and m.numpy()[1].sum() == 0


def test_inplace_view_ops():
    torch = _torch()
    c, t = cygrad.ones(2, 3), torch.ones(2, 3)
    for name, args in (("t_", ()), ("unsqueeze_", (0,)), ("transpose_", (0, 2)),
                       ("squeeze_", ()), ("swapdims_", (0, 1)), ("swapaxes_", (1, 0))):
        assert getattr(c, name)(*args) is c
        getattr(t, name)(*args)
        assert tuple(c.shape) == tuple(t.shape)
    base = cygrad.arange(6).reshape(2, 3)
    row = base[0]
    row.unsqueeze_(0)
    assert tuple(row.shape) == (1, 3) and tuple(base.shape) == (2, 3)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        cygrad.ones(2, requires_grad=True).unsqueeze_(0)
    with pytest.raises(NotImplementedError, match="out-of-place unsqueeze"):
        (cygrad.ones(2, requires_grad=True) * 2).unsqueeze_(0)


def test_unfold_dimension_errors_match_torch():
    torch = _torch()
    for dim in (2, -3):
        with pytest.raises(IndexError) as ours:
            cygrad.ones(2, 3).unfold(dim, 1, 1)
        with pytest.raises(IndexError) as theirs:
            torch.ones(2, 3).unfold(dim, 1, 1)
        assert str(ours.value) == str(theirs.value)
    assert cygrad.tensor(5.0).unfold(0, 1, 1).tolist() == [5.0]


def test_integer_and_float_bit_functions_match_torch():
    torch = _torch()
    a, b = np.array([12, -8, 0, 7, 45]), np.array([18, 6, 0, -21, 10])
    for name in ("gcd", "lcm"):
        assert getattr(cygrad, name)(cygrad.tensor(a), cygrad.tensor(b)).tolist() == \
            getattr(torch, name)(torch.tensor(a), torch.tensor(b)).tolist()
    with pytest.raises(RuntimeError, match="not implemented for 'Float'"):
        cygrad.gcd(cygrad.ones(2), cygrad.ones(2))
    x = np.array([3.0, 0.0, -0.75, 1e-300, 6.5e8])
    ours, theirs = cygrad.frexp(cygrad.tensor(x)), torch.frexp(torch.tensor(x))
    assert ours.mantissa.tolist() == theirs.mantissa.tolist()
    assert ours.exponent.tolist() == theirs.exponent.tolist()
    assert ours.exponent.dtype == cygrad.int32
    e = np.array([3, -2, 0, 10, 1])
    c = cygrad.tensor(x, requires_grad=True)
    y = cygrad.ldexp(c, cygrad.tensor(e))
    assert y.tolist() == torch.ldexp(torch.tensor(x), torch.tensor(e)).tolist()
    y.sum().backward()
    assert c.grad.tolist() == (2.0 ** e).tolist()
    d = np.array([1.0, -1.0, 0.0])
    assert cygrad.nextafter(cygrad.tensor(d), cygrad.tensor([2.0, -2.0, -1.0])).tolist() == \
        torch.nextafter(torch.tensor(d), torch.tensor([2.0, -2.0, -1.0])).tolist()


def _pair(torch, shape, seed, positive=False, requires_grad=True):
    x = _x(shape, seed)
    x = np.abs(x) + 0.1 if positive else x
    return (cygrad.tensor(x, requires_grad=requires_grad),
            torch.tensor(x, requires_grad=requires_grad))


def _aten_cases(torch):
    """(name, cygrad arguments, torch arguments) for torch's top-level functions that take
    ATen's signatures; tensors made alike from the same numbers."""
    x, tx = _pair(torch, (4, 6, 5), 1)
    w, tw = _pair(torch, (6,), 2)
    b, tb = _pair(torch, (6,), 3)
    rm, trm = _pair(torch, (6,), 4, requires_grad=False)
    rv, trv = _pair(torch, (6,), 5, positive=True, requires_grad=False)
    p, tp = _pair(torch, (4, 6), 6)
    t01 = (np.random.default_rng(7).random((4, 6)) > 0.5).astype(float)
    y, ty = cygrad.tensor(t01), torch.tensor(t01)
    pos, tpos = _pair(torch, (6,), 8, positive=True, requires_grad=False)
    sign = np.where(np.random.default_rng(9).random(4) > 0.5, 1.0, -1.0)
    s, ts = cygrad.tensor(sign), torch.tensor(sign)
    a1, ta1 = _pair(torch, (4,), 10)
    a2, ta2 = _pair(torch, (4,), 11)
    v1, tv1 = _pair(torch, (4, 6), 12)
    v2, tv2 = _pair(torch, (4, 6), 13)
    table, ttable = _pair(torch, (10, 6), 14)
    idx = np.array([[1, 4, 0], [9, 4, 2]])
    i, ti = cygrad.tensor(idx), torch.tensor(idx)
    logp = np.log(np.random.default_rng(15).dirichlet(np.ones(6), 4))
    lp, tlp = cygrad.tensor(logp, requires_grad=True), torch.tensor(logp, requires_grad=True)
    prob = np.random.default_rng(16).dirichlet(np.ones(6), 4)
    q, tq = cygrad.tensor(prob), torch.tensor(prob)
    counts = np.random.default_rng(17).poisson(2.0, (4, 6)).astype(float)
    k, tk = cygrad.tensor(counts), torch.tensor(counts)
    return [
        ("batch_norm", (x, w, b, rm, rv, False, 0.1, 1e-5, True),
         (tx, tw, tb, trm, trv, False, 0.1, 1e-5, True)),
        ("batch_norm", (x, w, b, None, None, True, 0.1, 1e-5, True),
         (tx, tw, tb, None, None, True, 0.1, 1e-5, True)),
        ("instance_norm", (x, w, b, None, None, True, 0.1, 1e-5, True),
         (tx, tw, tb, None, None, True, 0.1, 1e-5, True)),
        ("layer_norm", (x, (5,), None, None, 1e-5, True), (tx, (5,), None, None, 1e-5, True)),
        ("group_norm", (x, 3, w, b, 1e-5, True), (tx, 3, tw, tb, 1e-5, True)),
        ("embedding", (table, i), (ttable, ti)),
        ("embedding", (table, i, 4), (ttable, ti, 4)),
        ("dropout", (x, 0.3, False), (tx, 0.3, False)),
        ("alpha_dropout", (x, 0.3, False), (tx, 0.3, False)),
        ("celu", (x, 0.5), (tx, 0.5)),  # (torch's backward rounds 1 / alpha to float32)
        ("rrelu", (x, 0.1, 0.3, False), (tx, 0.1, 0.3, False)),
        ("max_pool1d", (x, 2), (tx, 2)),
        ("max_pool2d", (x.unsqueeze(0), 2, 1, 1), (tx.unsqueeze(0), 2, 1, 1)),
        ("max_pool3d", (x.unsqueeze(0), 2), (tx.unsqueeze(0), 2)),
        ("adaptive_max_pool1d", (x, 3), (tx, 3)),
        ("constant_pad_nd", (x, (1, 2), 0.5), (tx, (1, 2), 0.5)),
        ("binary_cross_entropy_with_logits", (p, y, None, pos, 2), (tp, ty, None, tpos, 2)),
        ("binary_cross_entropy_with_logits", (p, y), (tp, ty)),  # reduction 0 (torch's)
        ("kl_div", (lp, q), (tlp, tq)),
        ("hinge_embedding_loss", (p, y * 2 - 1), (tp, ty * 2 - 1)),
        ("cosine_embedding_loss", (v1, v2, s), (tv1, tv2, ts)),
        ("margin_ranking_loss", (a1, a2, s), (ta1, ta2, ts)),
        ("binary_cross_entropy_with_logits", (p, y, None, None, 1), (tp, ty, None, None, 1)),
        ("kl_div", (lp, q, 0), (tlp, tq, 0)),
        ("kl_div", (lp, q.log()), {"reduction": 2, "log_target": True},
         (tlp, tq.log()), {"reduction": 2, "log_target": True}),
        ("poisson_nll_loss", (p, k, True, False, 1e-8, 1), (tp, tk, True, False, 1e-8, 1)),
        ("poisson_nll_loss", (p.exp(), k, False, True, 1e-8, 0),
         (tp.exp(), tk, False, True, 1e-8, 0)),
        ("cosine_embedding_loss", (v1, v2, s, 0.2, 1), (tv1, tv2, ts, 0.2, 1)),
        ("margin_ranking_loss", (a1, a2, s, 0.1, 2), (ta1, ta2, ts, 0.1, 2)),
        ("hinge_embedding_loss", (p, y * 2 - 1, 0.5, 0), (tp, ty * 2 - 1, 0.5, 0)),
        ("rsub", (p, v1), {"alpha": 2.5}, (tp, tv1), {"alpha": 2.5}),
        ("rsub", (p, 3.0, 2.0), (tp, 3.0, 2.0)),
        ("detach", (p,), (tp,)),
        ("conv3d", (x.reshape(1, 4, 6, 5, 1), cygrad.ones(2, 4, 2, 2, 1, dtype=cygrad.float64)),
         (tx.reshape(1, 4, 6, 5, 1), torch.ones(2, 4, 2, 2, 1, dtype=torch.float64))),
        ("avg_pool1d", (x, 3, 2, 1), (tx, 3, 2, 1)),
        ("pdist", (v1,), (tv1,)),
        ("hardshrink", (x, 0.4), (tx, 0.4)),
        ("prelu", (x, w), (tx, tw)),
        ("rms_norm", (x, (5,), None, 1e-6), (tx, (5,), None, 1e-6)),
    ]


def _outputs(result):
    return list(result) if isinstance(result, tuple) else [result]


def test_aten_signatures_match_torch():
    """torch.batch_norm(input, weight, bias, running_mean, running_var, ...), torch.embedding(
    weight, indices), reductions as 0/1/2 ...: values and gradients as torch's, every case
    through its own call."""
    torch = _torch()
    for case in _aten_cases(torch):
        name, cargs, targs = case[0], case[1], case[-2] if len(case) == 5 else case[2]
        ckw, tkw = (case[2], case[4]) if len(case) == 5 else ({}, {})
        cout = _outputs(getattr(cygrad, name)(*cargs, **ckw))
        tout = _outputs(getattr(torch, name)(*targs, **tkw))
        assert len(cout) == len(tout), name
        for c, t in zip(cout, tout):
            assert tuple(c.shape) == tuple(t.shape), name
            np.testing.assert_allclose(c.detach().numpy(), t.detach().numpy(), rtol=1e-12,
                                       atol=1e-12, err_msg=name)
        c, t = cout[0], tout[0]
        if t.requires_grad and t.dtype.is_floating_point:
            g = _x(tuple(t.shape), 40)
            cins = [a for a in cargs if isinstance(a, cygrad.Tensor) and a.requires_grad]
            tins = [a for a in targs if isinstance(a, torch.Tensor) and a.requires_grad]
            cg = cygrad.autograd.grad((c * cygrad.tensor(g)).sum(), cins, allow_unused=True)
            tg = torch.autograd.grad((t * torch.tensor(g)).sum(), tins, allow_unused=True)
            for a, bgrad in zip(cg, tg):
                assert (a is None) == (bgrad is None), name
                if a is not None:
                    np.testing.assert_allclose(a.numpy(), bgrad.numpy(), rtol=1e-10,
                                               atol=1e-12, err_msg=name)


def test_aten_forms_in_place_and_errors():
    """torch.dropout_ / alpha_dropout_ / celu_ / rrelu_ write their input; a reduction outside
    0-2 and rrelu's generator raise; the training dropouts draw as nn.functional's."""
    torch = _torch()
    x = _x((3, 4), 50)
    c, t = cygrad.tensor(x), torch.tensor(x)
    assert cygrad.celu_(c, 0.5) is c
    torch.celu_(t, 0.5)
    np.testing.assert_allclose(c.numpy(), t.numpy(), rtol=1e-15)
    c = cygrad.tensor(x)
    assert cygrad.dropout_(c, 0.0, True) is c and np.array_equal(c.numpy(), x)
    assert cygrad.alpha_dropout_(c, 0.0, False) is c
    assert cygrad.rrelu_(c, 0.1, 0.2) is c
    np.testing.assert_allclose(c.numpy(), np.where(x >= 0, x, x * 0.15), rtol=1e-15)
    cygrad.manual_seed(3)
    a = cygrad.dropout(cygrad.tensor(x), 0.4, True)
    cygrad.manual_seed(3)
    assert np.array_equal(a.numpy(), F.dropout(cygrad.tensor(x), 0.4, True).numpy())
    with pytest.raises(RuntimeError, match="not a valid value for reduction"):
        cygrad.kl_div(cygrad.tensor(x), cygrad.tensor(x), 3)
    with pytest.raises(TypeError, match="keyword-only"):
        cygrad.rsub(cygrad.tensor(x), cygrad.tensor(x), 2.0)
    with pytest.raises(NotImplementedError, match="generator"):
        cygrad.rrelu(cygrad.tensor(x), generator=cygrad.Generator())
    assert cygrad.tensor(x).hardshrink(0.3).tolist() == F.hardshrink(cygrad.tensor(x), 0.3).tolist()
    w = cygrad.tensor([0.25])
    assert cygrad.tensor(x).prelu(w).tolist() == F.prelu(cygrad.tensor(x), w).tolist()


@pytest.mark.parametrize("name,args", [("unsafe_chunk", (3, 1)), ("unsafe_split", (2, 0)),
                                       ("unsafe_split_with_sizes", ([1, 3, 3], 1))])
def test_unsafe_splits_match_torch(name, args):
    """torch.unsafe_chunk / unsafe_split / unsafe_split_with_sizes and their methods: the
    pieces and their gradients of chunk / split / split_with_sizes."""
    torch = _torch()
    x = _x((4, 7), 60)
    c, t = cygrad.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    cs, ts = getattr(cygrad, name)(c, *args), getattr(torch, name)(t, *args)
    assert len(cs) == len(ts)
    for i, (a, b) in enumerate(zip(cs, ts)):
        assert np.array_equal(a.detach().numpy(), b.detach().numpy())
        (a * (i + 1)).sum().backward(retain_graph=True)
        (b * (i + 1)).sum().backward(retain_graph=True)
    assert np.array_equal(c.grad.numpy(), t.grad.numpy())
    assert [p.tolist() for p in getattr(c.detach(), name)(*args)] == \
        [p.tolist() for p in cs]
