"""Tensor construction, dtype rules and the semantics of backward."""

import sys
import weakref

import numpy as np
import pytest

import cygrad


def test_lists_and_numbers_take_torchs_dtypes():
    assert cygrad.tensor([1, 2, 3]).dtype == cygrad.int64
    assert cygrad.tensor([True, False]).dtype == cygrad.bool
    assert cygrad.tensor([1, 2.5]).dtype == np.float32
    assert cygrad.tensor(2.5).dtype == np.float32
    cygrad.set_default_dtype("float64")
    assert cygrad.tensor([[1.0]]).dtype == np.float64
    assert cygrad.get_default_dtype() == np.float64


def test_float_arrays_keep_their_dtype_and_are_copied():
    a = np.arange(4.0)
    t = cygrad.tensor(a)
    assert t.dtype == np.float64
    a[0] = 99
    assert t.numpy()[0] == 0
    assert cygrad.tensor(a.astype(np.float32)).dtype == np.float32


def test_integer_arrays_keep_their_dtype():
    assert cygrad.tensor(np.arange(3)).dtype == cygrad.int64
    assert cygrad.tensor(np.arange(3, dtype=np.int32)).dtype == cygrad.int32
    assert cygrad.tensor(np.arange(3, dtype=np.uint8)).dtype == cygrad.uint8


@pytest.mark.parametrize("array", [np.ones(2, complex), np.array([None, 1]),
                                   np.ones(2, np.float16)])
def test_unsupported_dtypes_are_named(array):
    with pytest.raises(TypeError, match=str(array.dtype)):
        cygrad.tensor(array)


def test_explicit_float_dtype_converts_integers():
    t = cygrad.tensor(np.arange(3), dtype="float64")
    assert t.dtype == np.float64 and t.numpy().tolist() == [0, 1, 2]
    assert cygrad.tensor([1.7], dtype="int32").tolist() == [1]
    with pytest.raises(TypeError, match="float16"):
        cygrad.tensor([1], dtype="float16")


def test_mixing_float32_and_float64_promotes_as_torch():
    a = cygrad.tensor(np.ones(2, np.float32), requires_grad=True)
    b = cygrad.tensor(np.ones(2, np.float64), requires_grad=True)
    for op in (lambda: a + b, lambda: a * b, lambda: b - a, lambda: a / b):
        assert op().dtype == cygrad.float64
    (a * b).sum().backward()
    assert a.grad.dtype == cygrad.float32 and b.grad.dtype == cygrad.float64
    with pytest.raises(RuntimeError, match="same dtype"):
        cygrad.tensor(np.ones((2, 2), np.float32)) @ cygrad.tensor(np.ones((2, 2)))


def test_python_scalars_take_the_tensor_dtype():
    a = cygrad.tensor(np.ones(3, np.float32), requires_grad=True)
    out = (2.5 * a + 1) / 3 - 0.5
    assert out.dtype == np.float32
    out.sum().backward()
    assert a.grad.dtype == np.float32


def test_shapes_that_do_not_broadcast_or_multiply_are_named():
    a, b = cygrad.tensor(np.ones((3, 4))), cygrad.tensor(np.ones((5, 4)))
    with pytest.raises(RuntimeError, match=r"size of tensor a \(3\) must match the size of "
                       r"tensor b \(5\) at non-singleton dimension 0"):
        a + b
    with pytest.raises(RuntimeError, match=r"3x4 and 5x4"):
        a @ b


def test_backward_on_non_scalar_needs_a_gradient():
    x = cygrad.tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        (x * 2).backward()
    (x * 2).backward(cygrad.ones(2, 2, dtype=cygrad.float64))
    assert np.array_equal(x.grad, np.full((2, 2), 2.0))


def test_backward_without_requires_grad_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        cygrad.tensor([1.0]).sum().backward()


def test_leaves_accumulate_across_backward_calls_and_intermediates_keep_nothing():
    x = cygrad.tensor([1.0, 2.0], requires_grad=True)
    h = x * x
    y = h.sum()
    y.backward(retain_graph=True)
    y.backward()  # as in PyTorch: a second call adds the same gradient again
    assert np.array_equal(x.grad, 2 * 2 * x.numpy())
    assert h.grad is None


def test_a_node_used_twice_receives_the_sum_of_its_uses():
    x = cygrad.tensor([3.0], requires_grad=True)
    h = x * 2
    (h * h + h).sum().backward()  # d/dx (4x^2 + 2x) = 8x + 2
    assert x.grad.tolist() == [26.0]


def test_none_grad_versus_zero_grad():
    x = cygrad.tensor([1.0, 2.0], requires_grad=True)
    unused = cygrad.tensor([1.0], requires_grad=True)
    z = cygrad.tensor([5.0, 6.0], requires_grad=True)
    (x * 0 + z * 0).sum().backward()
    assert unused.grad is None  # no gradient reached it
    assert np.array_equal(x.grad, [0, 0]) and x.grad is not None  # a zero gradient


def test_a_chain_of_ten_thousand_ops_has_no_recursion_limit():
    x = cygrad.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    assert sys.getrecursionlimit() < 10_000 * 2
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0001 ** 10_000], rtol=1e-3)


def test_no_grad_records_nothing():
    x = cygrad.tensor([1.0], requires_grad=True)
    with cygrad.no_grad():
        y = x * 2
    assert not y.requires_grad and y._op is None
    assert cygrad.is_grad_enabled()


def test_detach_numpy_item_and_repr():
    x = cygrad.tensor([[1.5]], requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d.item() == 3.0
    assert x.numpy() is x.numpy()
    assert "requires_grad=True" in repr(x) and "grad_fn=<MulBackward0>" in repr(x * 2)
    with pytest.raises(RuntimeError, match="2 elements cannot be converted"):
        cygrad.tensor([1.0, 2.0]).item()


def test_pow_takes_tensor_exponents():
    x = cygrad.tensor([1.0, 2.0], requires_grad=True)
    e = cygrad.tensor([2.0, 3.0], requires_grad=True)
    (x ** e).sum().backward()
    assert x.grad.tolist() == [2.0, 12.0]
    assert np.allclose(e.grad.numpy(), [0.0, 8.0 * np.log(2.0)])


def test_numpy_arrays_on_the_left_give_tensors():
    x = cygrad.tensor(np.ones(2), requires_grad=True)
    y = np.full(2, 3.0) * x
    assert isinstance(y, cygrad.Tensor)
    y.sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_the_graph_is_freed_when_the_output_is_dropped():
    import gc

    gc.disable()
    try:
        x = cygrad.tensor(np.ones((4, 4)), requires_grad=True)
        h = (x @ x).tanh()
        loss = h.sum()
        ref = weakref.ref(h)
        loss.backward()
        del h, loss
        assert ref() is None
    finally:
        gc.enable()


def test_a_second_backward_through_a_freed_graph_raises():
    x = cygrad.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_arrays_saved_for_backward_are_read_only_while_the_graph_lives():
    x = cygrad.tensor([1.0, 2.0], requires_grad=True)
    h = x.tanh()
    y = (h * x).sum()
    with pytest.raises(ValueError, match="read-only"):
        x.numpy()[0] = 5.0  # would make the saved x wrong for backward
    with pytest.raises(ValueError, match="read-only"):
        h.numpy()[0] = 5.0  # tanh's backward reads its output
    y.backward()
    x.numpy()[0] = 5.0  # the graph has freed what it saved: writing is fine again
    h.numpy()[0] = 1.0


def test_dropping_a_graph_without_backward_unlocks_its_arrays():
    x = cygrad.tensor([1.0, 2.0], requires_grad=True)
    y = (x * 3).sum()
    assert not x.numpy().flags.writeable
    del y
    x.numpy()[0] = 4.0


def test_optimizer_step_with_a_retained_graph_keeps_the_graph_correct():
    from cygrad import optim

    w = cygrad.tensor([2.0], requires_grad=True)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    optim.SGD([w], lr=0.5).step()  # writes a new array: the graph keeps w = 2
    assert w.numpy().tolist() == [0.0]
    w.grad = None
    loss.backward()
    assert w.grad.tolist() == [4.0]  # d(w^2)/dw at the saved w = 2


def test_detect_anomaly_names_the_op():
    x = cygrad.tensor([0.0, 1.0], requires_grad=True)
    with cygrad.detect_anomaly(), np.errstate(divide="ignore"):
        with pytest.raises(FloatingPointError, match="Log produced Inf in its forward"):
            x.log()
        y = (x ** 0.5).sum()  # finite forward, infinite gradient at 0
        with pytest.raises(FloatingPointError, match="Pow produced Inf in its backward"):
            y.backward()
    with np.errstate(divide="ignore"):
        x.detach().log()  # outside the block: no check


def test_detect_anomaly_catches_a_write_through_a_view_made_before_the_graph():
    x = cygrad.tensor([1.0, 2.0], requires_grad=True)
    early = x.numpy()[:]  # a view made before the graph saves x: numpy cannot lock it
    with cygrad.detect_anomaly():
        y = (x * x).sum()
        with pytest.raises(ValueError, match="read-only"):
            x.numpy()[0] = 5.0  # the array itself is locked
        early[0] = 5.0  # the earlier view writes past the lock
        with pytest.raises(RuntimeError, match="Mul: an array its backward reads"):
            y.backward(retain_graph=True)
        early[0] = 1.0  # put back: backward runs
        y.backward()
    assert x.grad.tolist() == [2.0, 4.0]


def test_writes_into_parameters_under_a_live_graph_copy_on_write():
    from cygrad import nn

    layer = nn.Linear(2, 1, bias=False)
    nn.init.constant_(layer.weight, 2.0)
    x = cygrad.tensor([[3.0, 1.0]])
    loss = (layer(x) * layer(x)).sum()  # saved weight: 2
    nn.init.zeros_(layer.weight)  # a new array; the graph keeps the one it saved
    layer.load_state_dict({"weight": np.full((1, 2), 5.0, np.float32)})
    assert layer.weight.numpy().tolist() == [[5.0, 5.0]]
    loss.backward()
    # d/dW (W x)^2 = 2 (W x) x with the saved W = 2: 2 * 8 * (3, 1)
    assert layer.weight.grad.tolist() == [[48.0, 16.0]]
