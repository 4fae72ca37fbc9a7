"""Gradients exactly at the kinks of piecewise functions (x = 0, +-3, thresholds): torch's
choice of side at each, compared with torch; and rrelu's training draws, torch's."""

import numpy as np
import pytest

import cygrad

torch = pytest.importorskip("torch")

POINTS = [-20.0, -6.0, -3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 6.0, 20.0]

KINKS = {
    "hardswish": lambda L, F, t: F.hardswish(t), "hardsigmoid": lambda L, F, t: F.hardsigmoid(t),
    "relu6": lambda L, F, t: F.relu6(t), "hardtanh": lambda L, F, t: F.hardtanh(t),
    "relu": lambda L, F, t: F.relu(t), "leaky_relu": lambda L, F, t: F.leaky_relu(t),
    "elu": lambda L, F, t: F.elu(t), "selu": lambda L, F, t: F.selu(t),
    "celu": lambda L, F, t: F.celu(t), "threshold": lambda L, F, t: F.threshold(t, 0.5, -1.0),
    "hardshrink": lambda L, F, t: F.hardshrink(t), "softshrink": lambda L, F, t: F.softshrink(t),
    "softplus": lambda L, F, t: F.softplus(t, beta=1, threshold=20), "abs": lambda L, F, t: t.abs(),
    "clamp": lambda L, F, t: t.clamp(-1, 1), "prelu": lambda L, F, t: F.prelu(
        t, L.tensor([0.25])), "rrelu eval": lambda L, F, t: F.rrelu(t, training=False),
    "maximum": lambda L, F, t: L.maximum(t, L.zeros_like(t)),
    "smooth_l1": lambda L, F, t: F.smooth_l1_loss(t, L.zeros_like(t), reduction="none"),
    "huber": lambda L, F, t: F.huber_loss(t, L.zeros_like(t), reduction="none"),
}


@pytest.mark.parametrize("name", sorted(KINKS))
def test_gradient_at_the_kinks_is_torchs(name):
    """Before: hardswish gave -0.5 at -3 and 1.5 at 3 (torch: 0 and 1), rrelu's slope at 0
    was 1 (torch: the negative side's)."""
    grads = []
    for lib in (cygrad, torch):
        x = lib.tensor(POINTS, requires_grad=True)
        KINKS[name](lib, lib.nn.functional, x).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6, atol=0)


def test_rrelu_training_draws_torchs_slopes():
    """torch's kernel draws one double a non-positive element, in memory order (none for a
    positive one): the same slopes (a float32 slope may differ in its last place: torch's
    kernel rounds its draw its own way) and the generator in step after."""
    results = []
    for lib in (cygrad, torch):
        lib.manual_seed(3)
        x = lib.randn(5, 7, requires_grad=True)
        y = lib.nn.functional.rrelu(x, training=True)
        y.sum().backward()
        results.append((y.detach().numpy(), x.grad.numpy(), lib.rand(3).numpy()))
    (y1, g1, r1), (y2, g2, r2) = results
    np.testing.assert_allclose(y1, y2, rtol=2e-7, atol=0)
    np.testing.assert_allclose(g1, g2, rtol=2e-7, atol=0)
    assert np.array_equal(r1, r2)
