"""Switching backends and threads."""

import numpy as np
import pytest

import cygrad
from cygrad import backend


def test_cython_is_the_default_and_built():
    assert "cython" in backend.available()
    assert backend.current() == "cython"


def test_using_switches_and_restores():
    with backend.using("numpy"):
        assert backend.current() == "numpy"
    assert backend.current() == "cython"


def test_unknown_backend():
    with pytest.raises(ValueError, match="'blas'"):
        backend.use("blas")


def test_threads():
    cygrad.set_num_threads(1)
    assert cygrad.get_num_threads() == 1
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError):
            cygrad.set_num_threads(bad)


def test_both_backends_agree_on_a_small_network(dtype):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((8, 5)).astype(dtype), rng.standard_normal((5, 3)).astype(dtype)
    results = []
    for name in ("cython", "numpy"):
        with backend.using(name):
            a, b = cygrad.tensor(x, requires_grad=True), cygrad.tensor(w, requires_grad=True)
            (a @ b).tanh().sum().backward()
            results.append((a.grad, b.grad))
    for g1, g2 in zip(*results):
        np.testing.assert_allclose(g1, g2, rtol=1e-4, atol=1e-6)
