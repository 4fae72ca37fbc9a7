"""nn.functional's celu, glu, softmin, prelu, threshold, tanhshrink, hardshrink, softshrink,
group_norm, rms_norm and their modules against PyTorch (values, gradients, exception types;
tests/ops/torchdiff.py), gradchecked in float64; tied channels stay tied through the norms.
"""

import pathlib
import sys

import numpy as np
import pytest

import cygrad
from cygrad import nn

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "ops"))
from torchdiff import diff, need_torch  # noqa: E402

F64, F32 = np.float64, np.float32


def values(shape, dtype=F64, seed=0, scale=2.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("name,args", [
    ("celu", ()), ("celu", (0.5,)), ("celu", (2.0,)), ("tanhshrink", ()), ("hardshrink", ()),
    ("hardshrink", (1.0,)), ("softshrink", ()), ("softshrink", (1.5,)), ("softshrink", (-1.0,)),
    ("threshold", (0.3, -2.0)), ("threshold", (-0.5, 7.0)), ("softmin", (1,)),
    ("softmin", (-1,)), ("glu", ()), ("glu", (1,)), ("glu", (0,)), ("glu", (3,))])
def test_elementwise_family(dtype, name, args):
    x = values((3, 4, 6), dtype)
    x[0, 0, :3] = [0.0, 0.5, -0.5]  # the branch points
    diff(lambda m, t: getattr(m.nn.functional, name)(t, *args), x,
         gradcheck=dtype == F64 and name not in ("hardshrink", "softshrink", "threshold"))


def test_celu_has_no_overflow_in_the_branch_not_taken():
    x = np.array([1000.0, -1000.0, -3.0, 80.0])
    diff(lambda m, t: m.nn.functional.celu(t, 0.1), x)


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("shape,wshape", [((3, 4, 5), (4,)), ((3, 4), (1,)), ((2, 4, 3, 3), (4,)),
                                          ((5,), (1,)), ((3, 4), (3,)), ((3, 4), (2, 2))])
def test_prelu(dtype, shape, wshape):
    x = values(shape, dtype)
    w = np.abs(values(wshape, dtype, 1)) * 0.3
    diff(lambda m, t, u: m.nn.functional.prelu(t, u), x, w, gradcheck=dtype == F64)


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("shape,groups,affine", [((3, 6, 5), 3, True), ((3, 6, 5), 1, False),
                                                 ((2, 4, 3, 3), 4, True), ((2, 6), 2, True),
                                                 ((3, 6, 5), 4, True), ((6,), 2, False)])
def test_group_norm(dtype, shape, groups, affine):
    x = values(shape, dtype)
    c = shape[1] if len(shape) > 1 else 1
    w, b = values((c,), dtype, 1), values((c,), dtype, 2)
    if affine:
        diff(lambda m, t, u, v: m.nn.functional.group_norm(t, groups, u, v, 1e-5), x, w, b,
             gradcheck=dtype == F64)
    else:
        diff(lambda m, t: m.nn.functional.group_norm(t, groups), x, gradcheck=dtype == F64)


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("shape,normalized,eps", [
    ((3, 4, 5), (5,), None), ((3, 4, 5), (4, 5), 1e-3), ((3, 5), 5, None), ((3, 5), (4,), None)])
def test_rms_norm(dtype, shape, normalized, eps):
    x = values(shape, dtype)
    norm_shape = (normalized,) if isinstance(normalized, int) else normalized
    w = values(norm_shape, dtype, 1)
    diff(lambda m, t, u: m.nn.functional.rms_norm(t, normalized, u, eps), x, w,
         gradcheck=dtype == F64)
    diff(lambda m, t: m.nn.functional.rms_norm(t, normalized, eps=eps), x)


@pytest.mark.parametrize("name,args,kwargs", [
    ("CELU", (0.5,), {}), ("GLU", (1,), {}), ("Softmin", (1,), {}), ("PReLU", (), {}),
    ("PReLU", (4, 0.1), {}), ("Threshold", (0.1, 5.0), {}), ("Tanhshrink", (), {}),
    ("Hardshrink", (0.7,), {}), ("Softshrink", (0.7,), {}), ("GroupNorm", (2, 4), {}),
    ("GroupNorm", (4, 4, 1e-3, False), {}), ("GroupNorm", (2, 4), {"bias": False}),
    ("RMSNorm", (6,), {}), ("RMSNorm", ((4, 6), 1e-4, False), {})])
def test_modules_match_torch(name, args, kwargs):
    torch = need_torch()
    x = values((2, 4, 6))
    tm = getattr(torch.nn, name)(*args, **kwargs).double()
    cm = getattr(nn, name)(*args, **kwargs).double()
    cm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    assert [n for n, _ in cm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert repr(cm) == repr(tm)
    tx, cx = torch.tensor(x, requires_grad=True), cygrad.tensor(x, requires_grad=True)
    ty, cy = tm(tx), cm(cx)
    np.testing.assert_allclose(cy.detach().numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = values(tuple(ty.shape), F64, 9)
    ty.backward(torch.tensor(g))
    cy.backward(cygrad.tensor(g))
    np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    for (n, p), (_, q) in zip(cm.named_parameters(), tm.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=n)


def test_module_construction_checks():
    with pytest.raises(ValueError):
        nn.GroupNorm(3, 4)
    need_torch()
    diff(lambda m, t: m.nn.GroupNorm(3, 6)(t), values((2, 4, 5)))  # channels differ


def test_tied_groups_and_rows_stay_tied_bitwise():
    """Two groups of GroupNorm with equal channels and weights, two samples of RMSNorm with
    equal rows: equal outputs and input gradients bit for bit, a sample alone the same bits as
    in its batch, and the same at 1 and 2 threads."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 6, 7)).astype(np.float32)
    x[:, 2:4] = x[:, 0:2]  # group 1 (channels 2, 3) equals group 0 (channels 0, 1)
    x[3] = x[1]  # and sample 3 equals sample 1
    w = rng.standard_normal(6).astype(np.float32)
    w[2:4] = w[0:2]
    runs = []
    for threads in (1, 2):
        cygrad.set_num_threads(threads)
        gn, rms = nn.GroupNorm(3, 6), nn.RMSNorm(7)
        with cygrad.no_grad():
            gn.weight.copy_(cygrad.tensor(w))
        t = cygrad.tensor(x, requires_grad=True)
        y = gn(t)
        z = rms(t)
        ((y * y).sum() + (z * z * z).sum()).backward()
        yn, zn, g = y.detach().numpy(), z.detach().numpy(), t.grad.numpy()
        assert np.array_equal(yn[:, 0:2], yn[:, 2:4]) and np.array_equal(g[:, 0:2], g[:, 2:4])
        assert np.array_equal(zn[1], zn[3]) and np.array_equal(g[1], g[3])
        alone = rms(cygrad.tensor(x[1:2])).detach().numpy()
        assert np.array_equal(alone[0], zn[1])
        assert np.array_equal(gn(cygrad.tensor(x[1:2])).detach().numpy()[0], yn[1])
        runs.append((yn.copy(), zn.copy(), g.copy()))
    assert all(np.array_equal(a, b) for a, b in zip(*runs))
