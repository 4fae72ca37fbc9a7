"""cygrad.nn.utils: clip_grad_norm_, clip_grad_value_, get_total_norm, parameters_to_vector
and vector_to_parameters against torch.nn.utils, in place, and their edge cases."""

import math
import warnings

import numpy as np
import pytest

import cygrad
from cygrad.nn import utils

SHAPES = [(5, 4), (4,), (3, 2, 2), (1,)]


def params_with_grads(dtype, scale=1.0, seed=0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    ps, grads = [], []
    for s in shapes:
        p = cygrad.tensor(rng.standard_normal(s).astype(dtype), requires_grad=True)
        g = (rng.standard_normal(s) * scale).astype(dtype)
        p.grad = cygrad.tensor(g)
        ps.append(p)
        grads.append(g)
    return ps, grads


def grad_of(p):
    return p.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("norm_type", [2.0, 1, 3.0, 0.5, 0, math.inf, -math.inf, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_torch(dtype, norm_type, max_norm):
    torch = pytest.importorskip("torch")
    ps, grads = params_with_grads(dtype)
    theirs = [torch.zeros(s, dtype=torch.float64 if dtype == np.float64 else torch.float32,
                          requires_grad=True) for s in SHAPES]
    for t, g in zip(theirs, grads, strict=True):
        t.grad = torch.tensor(g)
    before = [p.grad for p in ps]
    total = utils.clip_grad_norm_(ps, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    rtol = 1e-6 if dtype == np.float32 else 1e-13
    assert isinstance(total, cygrad.Tensor) and total.dtype == dtype and total.shape == ()
    np.testing.assert_allclose(total.item(), expected.item(), rtol=rtol)
    for p, t, b in zip(ps, theirs, before, strict=True):
        assert p.grad is b  # in place
        np.testing.assert_allclose(grad_of(p), t.grad.numpy(), rtol=rtol, atol=rtol * 1e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_coefficient_is_torchs_formula(dtype):
    ps, grads = params_with_grads(dtype, scale=3.0)
    total = utils.clip_grad_norm_(ps, 2.0)
    dt = np.dtype(dtype).type
    norms = [np.sqrt(np.sum(g.astype(np.float64) ** 2)) for g in grads]
    np.testing.assert_allclose(total.item(), np.sqrt(np.sum(np.square(norms))), rtol=1e-6)
    coef = min(dt(2.0) / (total.numpy() + dt(1e-6)), dt(1.0))
    for p, g in zip(ps, grads, strict=True):
        assert np.array_equal(grad_of(p), g * coef)


def test_no_clipping_below_max_norm_leaves_gradients_bitwise():
    ps, grads = params_with_grads(np.float32, scale=1e-3)
    utils.clip_grad_norm_(ps, 10.0)
    for p, g in zip(ps, grads, strict=True):
        assert np.array_equal(grad_of(p), g)


def test_identical_units_stay_identical():
    p = cygrad.tensor(np.ones((3, 64), np.float32), requires_grad=True)
    column = np.random.default_rng(0).standard_normal((3, 1)).astype(np.float32) * 10
    p.grad = cygrad.tensor(np.repeat(column, 64, axis=1))
    utils.clip_grad_norm_([p], 1.0)
    g = grad_of(p)
    assert np.array_equal(g, np.repeat(g[:, :1], 64, axis=1))


def test_parameters_without_grads_and_a_single_tensor():
    ps, grads = params_with_grads(np.float64)
    ps[1].grad = None
    total = utils.clip_grad_norm_(ps, 1e6)
    expected = math.sqrt(sum(np.sum(g ** 2) for i, g in enumerate(grads) if i != 1))
    assert math.isclose(total.item(), expected, rel_tol=1e-13)
    single = utils.clip_grad_norm_(ps[0], 1e6)
    assert math.isclose(single.item(), math.sqrt(np.sum(grads[0] ** 2)), rel_tol=1e-13)


def test_empty_inputs():
    total = utils.clip_grad_norm_([], 1.0)
    assert total.item() == 0.0 and total.dtype == np.float32
    with pytest.warns(UserWarning, match="empty generator"):
        utils.clip_grad_norm_((p for p in []), 1.0)
    p = cygrad.tensor([1.0], requires_grad=True)
    assert utils.clip_grad_norm_([p], 1.0).item() == 0.0  # no gradient anywhere


def test_nonfinite_total():
    ps, _ = params_with_grads(np.float32)
    ps[2].grad.numpy()[0, 0, 0] = np.inf
    with pytest.raises(RuntimeError, match="non-finite"):
        utils.clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        total = utils.clip_grad_norm_(ps, 1.0)  # as torch: scales by max_norm / inf = 0
    assert total.item() == np.inf and grad_of(ps[0]).max() == 0


def test_read_only_gradient_gets_a_copy():
    ps, grads = params_with_grads(np.float64, scale=5.0)
    grad_of(ps[0]).setflags(write=False)
    utils.clip_grad_norm_(ps, 1.0)
    assert np.abs(grad_of(ps[0])).max() < np.abs(grads[0]).max()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_value_matches_torch_bitwise(dtype):
    torch = pytest.importorskip("torch")
    ps, grads = params_with_grads(dtype, scale=2.0)
    before = [p.grad for p in ps]
    assert utils.clip_grad_value_(ps, 0.75) is None
    for p, g, b in zip(ps, grads, before, strict=True):
        t = torch.tensor(g)
        t.clamp_(min=-0.75, max=0.75)
        assert p.grad is b and np.array_equal(grad_of(p), t.numpy())


def test_get_total_norm_and_clip_grads_with_norm():
    ps, grads = params_with_grads(np.float64, scale=4.0)
    total = utils.get_total_norm([p.grad for p in ps], norm_type=1)
    assert math.isclose(total.item(), sum(np.abs(g).sum() for g in grads), rel_tol=1e-13)
    utils.clip_grads_with_norm_(ps, 1.0, total)
    coef = 1.0 / (total.item() + 1e-6)
    for p, g in zip(ps, grads, strict=True):
        assert np.array_equal(grad_of(p), g * coef)


def test_deprecated_clip_grad_norm_warns():
    ps, _ = params_with_grads(np.float32)
    with pytest.warns(FutureWarning, match="deprecated"):
        utils.clip_grad_norm(ps, 1.0)


# ---------------------------------------------------------------------- parameters <-> vector

def test_parameters_to_vector_and_back():
    ps, _ = params_with_grads(np.float64)
    vec = utils.parameters_to_vector(ps)
    assert vec.shape == (sum(int(np.prod(s)) for s in SHAPES),)
    assert np.array_equal(vec.numpy(), np.concatenate([p.numpy().ravel() for p in ps]))
    new = cygrad.tensor(np.arange(vec.shape[0], dtype=np.float64))
    utils.vector_to_parameters(new, ps)
    assert np.array_equal(ps[0].numpy(), np.arange(20.0).reshape(5, 4))
    assert ps[1].numpy().tolist() == [20.0, 21.0, 22.0, 23.0]
    new.numpy()[20] = -1.0  # the parameters share the vector's memory, as in torch
    assert ps[1].numpy()[0] == -1.0


def test_parameters_to_vector_matches_torch():
    torch = pytest.importorskip("torch")
    ps, _ = params_with_grads(np.float32)
    expected = torch.nn.utils.parameters_to_vector([torch.tensor(p.numpy()) for p in ps])
    assert np.array_equal(utils.parameters_to_vector(ps).numpy(), expected.numpy())


def test_vector_to_parameters_errors():
    ps, _ = params_with_grads(np.float64)
    with pytest.raises(TypeError, match="expected torch.Tensor"):
        utils.vector_to_parameters(np.zeros(41), ps)
    with pytest.raises(RuntimeError, match="invalid for input of size"):
        utils.vector_to_parameters(cygrad.tensor(np.zeros(10)), ps)
