"""autograd.Function (cygrad/_function.py): custom ops written with tensors, as torch's -- the
PyTorch tutorial's LegendreP3, several outputs (an integer one among them), non-tensor
arguments, the new setup_context style, needs_input_grad, broadcast gradients and torch's
errors; against torch (skipped without it) and gradcheck."""

import numpy as np
import pytest

import cygrad
from cygrad.autograd import Function


def _legendre(lib):
    class LegendrePolynomial3(lib.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return 0.5 * (5 * input ** 3 - 3 * input)

        @staticmethod
        def backward(ctx, grad_output):
            (input,) = ctx.saved_tensors
            return grad_output * 1.5 * (5 * input ** 2 - 1)

    return LegendrePolynomial3


def _two_outputs(lib):
    class ScaledProduct(lib.autograd.Function):
        @staticmethod
        def forward(ctx, a, b, scale):
            ctx.scale = scale
            ctx.save_for_backward(a, b)
            return a * b * scale, a.argmax(), a + b

        @staticmethod
        def backward(ctx, g_prod, g_index, g_sum):
            a, b = ctx.saved_tensors
            return g_prod * b * ctx.scale + g_sum, g_prod * a * ctx.scale + g_sum, None

    return ScaledProduct


def test_the_tutorials_legendre_polynomial_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.linspace(-1.5, 1.5, 7)
    got = {}
    for lib in (cygrad, torch):
        t = lib.tensor(x, requires_grad=True)
        y = _legendre(lib).apply(t)
        (y * lib.tensor(np.arange(7.0))).sum().backward()
        got[lib.__name__] = (y.detach().numpy(), t.grad.numpy(), y.grad_fn.name())
    (y, g, name), (ty, tg, tname) = got["cygrad"], got["torch"]
    np.testing.assert_allclose(y, ty, rtol=1e-15)
    np.testing.assert_allclose(g, tg, rtol=1e-15)
    assert name == tname == "LegendrePolynomial3Backward"


def test_gradcheck_of_a_correct_backward_and_a_wrong_one_caught():
    fn = _legendre(cygrad)
    x = cygrad.tensor([0.3, -0.7, 1.2], dtype=cygrad.float64, requires_grad=True)
    assert cygrad.gradcheck(fn.apply, x)

    class Wrong(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x  # should be 2 x

    with pytest.raises(cygrad.GradcheckError):
        cygrad.gradcheck(Wrong.apply, x)


def test_several_outputs_and_non_tensor_arguments_match_torch():
    torch = pytest.importorskip("torch")
    got = {}
    for lib in (cygrad, torch):
        a = lib.tensor([1.0, 2.0, 0.5], dtype=lib.float64, requires_grad=True)
        b = lib.tensor([3.0, 4.0, -1.0], dtype=lib.float64, requires_grad=True)
        prod, index, total = _two_outputs(lib).apply(a, b, 2.0)
        assert not index.requires_grad and index.dtype == lib.int64
        (prod.sum() * 3 + (total ** 2).sum()).backward()
        got[lib.__name__] = (prod.detach().numpy(), total.detach().numpy(), a.grad.numpy(),
                             b.grad.numpy(), int(index))
    for ours, theirs in zip(got["cygrad"], got["torch"], strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-15)


def test_setup_context_style_and_needs_input_grad():
    seen = []

    class MulConst(Function):
        @staticmethod
        def forward(x, k, y):
            return x * k + y

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.k = inputs[1]
            seen.append(ctx.needs_input_grad)

        @staticmethod
        def backward(ctx, g):
            return g * ctx.k, None, g if ctx.needs_input_grad[2] else None

    x = cygrad.tensor([1.0, 2.0], requires_grad=True)
    y = cygrad.tensor([5.0, 5.0])
    out = MulConst.apply(x, 3.0, y)
    out.sum().backward()
    assert seen == [(True, False, False)]
    assert x.grad.tolist() == [3.0, 3.0] and y.grad is None


def test_not_recorded_without_grad():
    fn = _legendre(cygrad)
    x = cygrad.tensor([0.5], requires_grad=True)
    with cygrad.no_grad():
        y = fn.apply(x)
    assert y.grad_fn is None and not y.requires_grad
    z = fn.apply(cygrad.tensor([0.5]))
    assert z.grad_fn is None


def test_broadcast_gradients_are_summed_and_bad_ones_raise():
    class AddBias(Function):
        @staticmethod
        def forward(ctx, x, b):
            return x + b

        @staticmethod
        def backward(ctx, g):
            return g, g  # g has x's shape: summed to b's

    x = cygrad.ones(4, 3, requires_grad=True)
    b = cygrad.zeros(3, requires_grad=True)
    AddBias.apply(x, b).sum().backward()
    assert b.grad.tolist() == [4.0, 4.0, 4.0]

    class BadShape(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g[:1]

    with pytest.raises(RuntimeError, match="returned an invalid gradient at index 0"):
        BadShape.apply(cygrad.ones(3, requires_grad=True)).sum().backward()

    class TooFew(Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(RuntimeError, match="incorrect number of gradients"):
        TooFew.apply(cygrad.ones(2, requires_grad=True), cygrad.ones(2)).sum().backward()


def test_saved_values_survive_a_later_in_place_write():
    fn = _legendre(cygrad)
    x = cygrad.tensor([0.5, 1.0], dtype=cygrad.float64, requires_grad=True)
    h = x * 1
    y = fn.apply(h)
    with cygrad.no_grad():
        h.add_(100.0)  # the saved array is read-only: the write goes to a copy
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 1.5 * (5 * np.array([0.5, 1.0]) ** 2 - 1))


def test_tied_rows_stay_identical():
    class Cube(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x * x

    w0 = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    w0[2] = w0[0]
    w = cygrad.tensor(w0, requires_grad=True)
    x = cygrad.tensor(np.random.default_rng(1).standard_normal((7, 5)).astype(np.float32))
    Cube.apply(x @ w.T).sum().backward()
    assert np.array_equal(w.grad.numpy()[0], w.grad.numpy()[2])


def test_mark_non_differentiable_and_legacy_forms():
    class SortValues(Function):
        @staticmethod
        def forward(ctx, x):
            values, index = x.sort()
            ctx.mark_non_differentiable(index)
            ctx.save_for_backward(index)
            return values, index

        @staticmethod
        def backward(ctx, g_values, g_index):
            (index,) = ctx.saved_tensors
            out = cygrad.zeros(g_values.shape)
            out[index] = g_values
            return out

    x = cygrad.tensor([3.0, 1.0, 2.0], requires_grad=True)
    values, index = SortValues.apply(x)
    assert values.tolist() == [1.0, 2.0, 3.0] and not index.requires_grad
    (values * cygrad.tensor([1.0, 10.0, 100.0])).sum().backward()
    assert x.grad.tolist() == [100.0, 1.0, 10.0]
    with pytest.raises(RuntimeError, match="non-static forward"):
        SortValues()
    v = cygrad.autograd.Variable(cygrad.ones(2), requires_grad=True)
    assert v.requires_grad and v.is_leaf
    once = cygrad.autograd.once_differentiable(lambda ctx, a: a + 1)  # calls through
    assert once(None, 1) == 2 and once._once_differentiable
