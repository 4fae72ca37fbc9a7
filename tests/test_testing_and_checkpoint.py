"""cygrad.testing.assert_close (torch's tolerances per dtype, shape/dtype checks, nested
containers, torch's message) and cygrad.utils.checkpoint (runs the function: same values and
gradients)."""

import numpy as np
import pytest

import cygrad
from cygrad.testing import assert_allclose, assert_close
from cygrad.utils.checkpoint import checkpoint, checkpoint_sequential


def test_assert_close():
    assert_close(cygrad.ones(2), cygrad.ones(2) + 1e-7)  # within float32's 1.3e-6
    assert_close({"a": [cygrad.zeros(1), 2.0]}, {"a": [cygrad.zeros(1), 2.0]})
    with pytest.raises(AssertionError, match=r"Mismatched elements: 1 / 2 \(50.0%\)"):
        assert_close(cygrad.ones(2), cygrad.tensor([1.0, 1.1]))
    with pytest.raises(AssertionError, match="'dtype' do not match"):
        assert_close(cygrad.ones(2), cygrad.ones(2, dtype=cygrad.float64))
    with pytest.raises(AssertionError, match="'shape' do not match"):
        assert_close(cygrad.ones(2), cygrad.ones(3))
    with pytest.raises(AssertionError):  # float64's tolerance is tighter
        assert_close(cygrad.ones(1, dtype=cygrad.float64), cygrad.ones(1, dtype=cygrad.float64)
                     + 1e-6)
    assert_close(cygrad.tensor([float("nan")]), cygrad.tensor([float("nan")]), equal_nan=True)
    assert_close(cygrad.ones(2), cygrad.tensor([1.0, 1.05]), rtol=0.1, atol=0.0)
    assert_allclose(cygrad.ones(2), np.ones(2))  # dtypes need not match here
    with pytest.raises(ValueError, match="must be either specified or omitted"):
        assert_close(cygrad.ones(1), cygrad.ones(1), rtol=0.1)


def test_checkpoint_gives_the_functions_values_and_gradients():
    x = cygrad.tensor([1.0, -2.0], dtype=cygrad.float64, requires_grad=True)
    y = checkpoint(lambda a, b: (a * b).tanh(), x, 3.0, use_reentrant=False)
    y.sum().backward()
    expected = 3 * (1 - np.tanh(3 * np.array([1.0, -2.0])) ** 2)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)
    seq = cygrad.nn.Sequential(cygrad.nn.Linear(2, 2), cygrad.nn.ReLU())
    inp = cygrad.ones(1, 2)
    assert np.array_equal(checkpoint_sequential(seq, 2, inp).numpy(), seq(inp).numpy())
