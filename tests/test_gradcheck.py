"""gradcheck itself: it passes correct gradients and catches a wrong one, naming the input."""

import numpy as np
import pytest

import cygrad
from cygrad.ops import Op
from cygrad.tensor import apply


class WrongSquare(Op):
    """y = x**2 with a deliberately wrong backward (dx = g * x instead of 2 g x)"""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, g):
        return (g * self.x,)


def test_passes_a_correct_gradient():
    x = cygrad.tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
    assert cygrad.gradcheck(lambda t: (t * t).tanh(), x)


def test_catches_a_wrong_gradient_and_names_the_input():
    a = cygrad.tensor([1.0, 2.0], requires_grad=True)
    b = cygrad.tensor([0.5, -1.0], requires_grad=True)
    with pytest.raises(cygrad.GradcheckError, match="input 1"):
        cygrad.gradcheck(lambda u, v: u + apply(WrongSquare, v), a, b)


def test_checks_float32_inputs_in_float64():
    x = cygrad.tensor(np.array([0.3, -0.7], np.float32), requires_grad=True)
    assert cygrad.gradcheck(lambda t: t.sigmoid() * t, x)


def test_torch_autograd_gradcheck_form():
    """cygrad.autograd.gradcheck(func, inputs, ...) as torch.autograd.gradcheck: a tuple or one
    tensor, True when right, GradcheckError (a RuntimeError) or False when wrong."""
    x = cygrad.tensor(np.linspace(0.1, 1.0, 5), requires_grad=True)
    y = cygrad.tensor(np.linspace(-1.0, 1.0, 5), requires_grad=True)
    assert cygrad.autograd.gradcheck(lambda a, b: (a * b).sin(), (x, y))
    assert cygrad.autograd.gradcheck(lambda a: a.exp(), x, eps=1e-6, atol=1e-5)

    class Wrong(cygrad.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * a

        @staticmethod
        def backward(ctx, g):
            return g  # should be 2 a g

    with pytest.raises(RuntimeError):
        cygrad.autograd.gradcheck(Wrong.apply, (x,))
    assert cygrad.autograd.gradcheck(Wrong.apply, (x,), raise_exception=False) is False
    with pytest.raises(NotImplementedError, match="forward-mode"):
        cygrad.autograd.gradcheck(lambda a: a, (x,), check_forward_ad=True)
    assert cygrad.autograd.gradgradcheck(lambda a, b: (a * b).sin() * a, (x, y))

    class WrongSecond(cygrad.autograd.Function):  # right first derivative, detached second
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * a * a

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            return g * 3 * a.detach() * a.detach()  # should be g * 3 * a * a

    assert cygrad.autograd.gradcheck(WrongSecond.apply, (x,))
    with pytest.raises(cygrad.GradcheckError, match="input 0"):
        cygrad.autograd.gradgradcheck(WrongSecond.apply, (x,))
    assert cygrad.autograd.gradgradcheck(WrongSecond.apply, (x,), raise_exception=False) is False
    with pytest.raises(NotImplementedError, match="check_fwd_over_rev"):
        cygrad.autograd.gradgradcheck(lambda a: a, (x,), check_fwd_over_rev=True)
