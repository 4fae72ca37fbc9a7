"""cygrad.nn.init: gains, fans, bounds and spreads of each initialiser, dtypes, seeding."""

import math

import numpy as np
import pytest

import cygrad
from cygrad.nn import init


def weight(*shape, dtype="float32"):
    return cygrad.tensor(np.zeros(shape), dtype=dtype, requires_grad=True)


# ---------------------------------------------------------------------- gains and fans

@pytest.mark.parametrize("name, expected", [
    ("linear", 1), ("conv1d", 1), ("conv2d", 1), ("conv3d", 1), ("conv_transpose1d", 1),
    ("conv_transpose2d", 1), ("conv_transpose3d", 1), ("sigmoid", 1), ("tanh", 5 / 3),
    ("relu", math.sqrt(2)), ("selu", 0.75), ("leaky_relu", math.sqrt(2 / (1 + 0.01**2))),
])
def test_gain_table(name, expected):
    assert init.calculate_gain(name) == pytest.approx(expected, rel=1e-15)


def test_leaky_relu_gain_uses_slope():
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("leaky_relu", 0) == pytest.approx(math.sqrt(2))


@pytest.mark.parametrize("bad", [("softplus", None), ("leaky_relu", "a"), ("leaky_relu", True)])
def test_bad_gain_raises(bad):
    with pytest.raises(ValueError):
        init.calculate_gain(*bad)


@pytest.mark.parametrize("shape, fans", [
    ((5, 3), (3, 5)), ((16, 3, 3, 3), (27, 144)), ((8, 4, 5), (20, 40)),
    ((2, 6, 1, 2, 3), (36, 12)),
])
def test_fans(shape, fans):
    assert init._calculate_fan_in_and_fan_out(weight(*shape)) == fans


@pytest.mark.parametrize("fn", [init.xavier_uniform_, init.xavier_normal_, init.kaiming_uniform_,
                                init.kaiming_normal_, init.orthogonal_])
def test_needs_two_dims(fn):
    with pytest.raises(ValueError, match="2 (or more )?dimensions"):
        fn(weight(7))


@pytest.mark.parametrize("fn", [init.kaiming_uniform_, init.kaiming_normal_])
def test_kaiming_bad_mode_and_nonlinearity(fn):
    with pytest.raises(ValueError, match="fan_avg not supported"):
        fn(weight(3, 4), mode="fan_avg")
    with pytest.raises(ValueError, match="nonlinearity"):
        fn(weight(3, 4), nonlinearity="swish")


def test_bad_uniform_and_normal_arguments():
    # torch's kernels raise RuntimeError for these
    with pytest.raises(RuntimeError, match="range"):
        init.uniform_(weight(3), 1.0, 0.0)
    with pytest.raises(RuntimeError, match="std >= 0"):
        init.normal_(weight(3), 0.0, -1.0)


def test_eye_dirac_and_sparse_shapes():
    assert np.array_equal(init.eye_(weight(2, 3)).numpy(), np.eye(2, 3))
    w = init.dirac_(weight(4, 2, 3, 3), groups=2).numpy()
    assert w.sum() == 4 and w[0, 0, 1, 1] == w[1, 1, 1, 1] == w[2, 0, 1, 1] == w[3, 1, 1, 1] == 1
    cygrad.manual_seed(0)
    w = init.sparse_(weight(10, 6), 0.3).numpy()
    assert np.all((w == 0).sum(axis=0) == 3)
    for fn in (init.eye_, lambda t: init.sparse_(t, 0.5)):
        with pytest.raises(ValueError, match="2 dimensions"):
            fn(weight(2, 2, 2))
    with pytest.raises(ValueError, match="3, 4, or 5"):
        init.dirac_(weight(2, 2))
    with pytest.raises(ValueError, match="divisible by groups"):
        init.dirac_(weight(3, 2, 3), groups=2)


# ---------------------------------------------------------------------- values

def test_constants():
    w = weight(3, 4)
    assert init.constant_(w, 0.25) is w and np.all(w.numpy() == np.float32(0.25))
    assert np.all(init.ones_(w).numpy() == 1) and np.all(init.zeros_(w).numpy() == 0)


def test_in_place_keeps_array_and_records_nothing():
    w = weight(20, 30)
    before = w.numpy()
    init.kaiming_uniform_(w)
    assert w.numpy() is before and w._op is None and w.grad is None and w.requires_grad


def test_uniform_bounds_and_spread():
    cygrad.manual_seed(0)
    w = init.uniform_(weight(200, 200), -2.0, 3.0)
    assert w.numpy().min() >= -2.0 and w.numpy().max() < 3.0
    assert w.numpy().mean() == pytest.approx(0.5, abs=0.03)
    assert w.numpy().std() == pytest.approx(5 / math.sqrt(12), rel=0.02)


def test_normal_moments():
    cygrad.manual_seed(1)
    w = init.normal_(weight(200, 200), 1.0, 0.5)
    assert w.numpy().mean() == pytest.approx(1.0, abs=0.01)
    assert w.numpy().std() == pytest.approx(0.5, rel=0.02)


def test_xavier_uniform_bound_and_std():
    cygrad.manual_seed(2)
    w = init.xavier_uniform_(weight(300, 200), gain=2.0)
    bound = 2.0 * math.sqrt(6 / 500)
    assert np.abs(w.numpy()).max() <= bound and np.abs(w.numpy()).max() > 0.99 * bound
    assert w.numpy().std() == pytest.approx(bound / math.sqrt(3), rel=0.02)


def test_xavier_normal_std_on_conv_weight():
    cygrad.manual_seed(3)
    w = init.xavier_normal_(weight(64, 32, 3, 3))  # fans 288 and 576
    assert w.numpy().std() == pytest.approx(math.sqrt(2 / (288 + 576)), rel=0.02)


@pytest.mark.parametrize("mode, fan", [("fan_in", 32 * 9), ("fan_out", 64 * 9)])
def test_kaiming_uniform_bound(mode, fan):
    cygrad.manual_seed(4)
    w = init.kaiming_uniform_(weight(64, 32, 3, 3), mode=mode, nonlinearity="relu")
    bound = math.sqrt(2) * math.sqrt(3 / fan)
    assert np.abs(w.numpy()).max() <= bound and np.abs(w.numpy()).max() > 0.99 * bound
    assert w.numpy().std() == pytest.approx(bound / math.sqrt(3), rel=0.02)


def test_kaiming_uniform_default_is_torch_linear_style_with_a():
    # torch's Linear uses kaiming_uniform_(w, a=sqrt(5)): bound = 1 / sqrt(fan_in)
    cygrad.manual_seed(5)
    w = init.kaiming_uniform_(weight(100, 400), a=math.sqrt(5))
    assert np.abs(w.numpy()).max() <= 1 / 20 and np.abs(w.numpy()).max() > 0.99 / 20


def test_kaiming_normal_std():
    cygrad.manual_seed(6)
    w = init.kaiming_normal_(weight(300, 400), nonlinearity="tanh")
    assert w.numpy().std() == pytest.approx((5 / 3) / math.sqrt(400), rel=0.02)


@pytest.mark.parametrize("shape", [(6, 6), (4, 10), (10, 4), (8, 2, 3, 3)])
@pytest.mark.parametrize("dtype, tol", [("float32", 1e-5), ("float64", 1e-12)])
def test_orthogonal(shape, dtype, tol):
    w = init.orthogonal_(weight(*shape, dtype=dtype), gain=2.0)
    m = w.numpy().reshape(shape[0], -1).astype(np.float64) / 2.0
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    np.testing.assert_allclose(gram, np.eye(len(gram)), atol=tol)


def test_zero_element_tensors_are_left_alone():
    w = weight(0, 3)
    with pytest.warns(UserWarning):
        assert init.kaiming_uniform_(w) is w
    assert init.orthogonal_(w) is w


# ---------------------------------------------------------------------- dtype and seeding

ALL = [init.uniform_, init.normal_, init.xavier_uniform_, init.xavier_normal_,
       init.kaiming_uniform_, init.kaiming_normal_, init.orthogonal_]


@pytest.mark.parametrize("fn", ALL)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_kept(fn, dtype):
    w = fn(weight(5, 4, 3, dtype=dtype))
    assert w.dtype == np.dtype(dtype)


@pytest.mark.parametrize("fn", ALL)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_seed_same_bits(fn, dtype):
    cygrad.manual_seed(123)
    a = fn(weight(6, 5, dtype=dtype)).numpy().copy()
    cygrad.manual_seed(123)
    assert np.array_equal(a, fn(weight(6, 5, dtype=dtype)).numpy())
    g = cygrad.random.Generator().manual_seed(123)  # an explicit generator: the same stream
    assert np.array_equal(a, fn(weight(6, 5, dtype=dtype), generator=g).numpy())
    cygrad.manual_seed(124)
    assert not np.array_equal(a, fn(weight(6, 5, dtype=dtype)).numpy())


def test_trunc_normal_stays_in_bounds_with_its_spread():
    cygrad.manual_seed(7)
    w = init.trunc_normal_(weight(300, 300), std=0.02).numpy()  # bounds at 100 std: all kept
    assert np.abs(w).max() < 0.2 and w.std() == pytest.approx(0.02, rel=0.02)
    w = init.trunc_normal_(weight(300, 300), mean=0.5, std=1.0, a=0.0, b=1.0).numpy()
    assert w.min() >= 0 and w.max() <= 1
    w = init.trunc_normal_(weight(300, 300), mean=0.0, std=1.0, a=2.0, b=3.0).numpy()  # p < 0.3
    # E = (pdf(2) - pdf(3)) / (cdf(3) - cdf(2)) = 2.3157...
    assert w.min() >= 2 and w.max() < 3 and w.mean() == pytest.approx(2.3157, abs=0.005)


# ---------------------------------------------------------------------- against PyTorch

@pytest.mark.parametrize("name", ["linear", "conv2d", "sigmoid", "tanh", "relu", "selu",
                                  "leaky_relu"])
def test_gain_matches_torch(name):
    torch = pytest.importorskip("torch")
    assert init.calculate_gain(name) == pytest.approx(torch.nn.init.calculate_gain(name))
    if name == "leaky_relu":
        assert init.calculate_gain(name, 0.3) == pytest.approx(
            torch.nn.init.calculate_gain(name, 0.3))


@pytest.mark.parametrize("shape", [(7, 3), (16, 3, 3, 3), (4, 6, 5)])
def test_fans_match_torch(shape):
    torch = pytest.importorskip("torch")
    ours = init._calculate_fan_in_and_fan_out(weight(*shape))
    assert ours == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


DRAWS = [("uniform_", {"a": -0.3, "b": 0.7}), ("normal_", {"mean": 0.5, "std": 2.0}),
         ("xavier_uniform_", {"gain": 1.5}), ("xavier_normal_", {}),
         ("kaiming_uniform_", {"a": math.sqrt(5)}),
         ("kaiming_uniform_", {"mode": "fan_out", "nonlinearity": "relu"}),
         ("kaiming_normal_", {"mode": "fan_out", "nonlinearity": "relu"}),
         ("trunc_normal_", {"std": 0.02}), ("trunc_normal_", {"mean": 0.5, "a": 0.0, "b": 1.0}),
         ("trunc_normal_", {"a": 1.5, "b": 3.0}), ("sparse_", {"sparsity": 0.3}),
         ("eye_", {}), ("zeros_", {}), ("ones_", {}), ("constant_", {"val": 0.3})]


@pytest.mark.parametrize("name, kwargs", DRAWS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(3, 4), (96, 48), (16, 3, 3, 3), (5, 7, 2)])
def test_draws_match_torch_bitwise(name, kwargs, dtype, shape):
    torch = pytest.importorskip("torch")
    if name in ("eye_", "sparse_") and len(shape) != 2:
        return
    torch.manual_seed(0)
    cygrad.manual_seed(0)
    theirs = getattr(torch.nn.init, name)(torch.empty(shape, dtype=getattr(torch, dtype)),
                                          **kwargs)
    ours = getattr(init, name)(weight(*shape, dtype=dtype), **kwargs)
    assert np.array_equal(theirs.numpy().view(np.uint8), ours.numpy().view(np.uint8))
    assert np.array_equal(torch.get_rng_state().numpy(), cygrad.random.get_rng_state())


@pytest.mark.parametrize("shape", [(96, 48, 3, 3), (5, 20), (20, 5), (8, 8)])
def test_orthogonal_matches_torch_to_rounding(shape):
    """The same draws; the QR is numpy's (float64 LAPACK) where torch runs float32 LAPACK."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    cygrad.manual_seed(0)
    theirs = torch.nn.init.orthogonal_(torch.empty(shape), gain=1.3).numpy()
    ours = init.orthogonal_(weight(*shape), gain=1.3).numpy()
    np.testing.assert_allclose(ours, theirs, atol=2e-5)
    assert np.array_equal(torch.get_rng_state().numpy(), cygrad.random.get_rng_state())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layers_built_after_the_same_seed_hold_torchs_weights(dtype):
    torch = pytest.importorskip("torch")
    torch.manual_seed(1337)
    cygrad.manual_seed(1337)
    td = getattr(torch, dtype)
    theirs = [torch.nn.Linear(3, 4, dtype=td), torch.nn.Linear(200, 27, dtype=td),
              torch.nn.Conv2d(3, 8, 3, dtype=td), torch.nn.Linear(5, 1, bias=False, dtype=td)]
    ours = [cygrad.nn.Linear(3, 4, dtype=dtype), cygrad.nn.Linear(200, 27, dtype=dtype),
            cygrad.nn.Conv2d(3, 8, 3, dtype=dtype), cygrad.nn.Linear(5, 1, bias=False,
                                                                      dtype=dtype)]
    for t, c in zip(theirs, ours, strict=True):
        for (name, tp), (_, cp) in zip(t.named_parameters(), c.named_parameters(), strict=True):
            assert np.array_equal(tp.detach().numpy().view(np.uint8), cp.numpy().view(np.uint8)), \
                name
