"""torch.as_strided / Tensor.as_strided: views of a tensor's memory with any sizes and
strides (overlapping windows included), against torch (skipped without it): values, the
shared memory, gradients (each window's share added back where it came from, divided where
the input's own elements overlap), writes through the view, torch's errors; gradcheck and
bitwise checks."""

import numpy as np
import pytest

import cygrad


def _torch():
    return pytest.importorskip("torch")


CASES = [  # (base shape, a view of the base by name, size, stride, storage_offset)
    ((12,), "whole", (4, 3), (2, 1), None),  # overlapping windows
    ((12,), "whole", (3, 4), (4, 1), 0),
    ((4, 5), "slice", (2, 2), (5, 1), None),  # from a view: its own offset
    ((4, 5), "t", (3,), (6,), 1),
    ((4, 5), "whole", (2, 3, 2), (5, 2, 1), 3),
    ((6,), "whole", (0, 2), (1, 1), None),
    ((2, 3, 4), "narrow", (2, 2, 2), (12, 4, 1), None),
    ((10,), "whole", (), (), 4),
]


def _view(t, name):
    if name == "slice":
        return t[1:, 1:]
    if name == "t":
        return t.t()
    if name == "narrow":
        return t.narrow(2, 1, 2)
    return t


@pytest.mark.parametrize("shape,view,size,stride,offset", CASES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_matches_torch(shape, view, size, stride, offset, dtype):
    torch = _torch()
    x = np.random.default_rng(len(shape) + len(size)).standard_normal(shape).astype(dtype)
    c = cygrad.tensor(x, requires_grad=True)
    t = torch.tensor(x, requires_grad=True)
    args = (size, stride) if offset is None else (size, stride, offset)
    cy = _view(c * 1, view).as_strided(*args)
    ty = _view(t * 1, view).as_strided(*args)
    assert tuple(cy.shape) == tuple(ty.shape)
    assert np.array_equal(cy.detach().numpy(), ty.detach().numpy())
    assert cy.grad_fn.name() == ty.grad_fn.name() == "AsStridedBackward0"
    g = np.random.default_rng(3).standard_normal(tuple(ty.shape)).astype(dtype)
    (cy * cygrad.tensor(g)).sum().backward()
    (ty * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy(), rtol=1e-6, atol=1e-6)
    cz = cygrad.as_strided(_view(cygrad.tensor(x), view), *args)
    assert np.array_equal(cz.numpy(), ty.detach().numpy())


def test_overlapping_input_shares_the_gradient_as_torch():
    """An expanded input (its elements share memory): each place's gradient divided among
    the elements there, as torch's as_strided_backward."""
    torch = _torch()
    c = cygrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    t = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    c.expand(2, 3).as_strided((2, 2), (1, 1)).sum().backward()
    t.expand(2, 3).as_strided((2, 2), (1, 1)).sum().backward()
    assert c.grad.tolist() == t.grad.tolist() == [1.0, 2.0, 1.0]


def test_shares_memory_and_writes_through():
    """The view is the base's memory (writes to either show in the other); an in-place op on
    it writes the base's graph as torch's (values and gradients); an overlapping view refuses
    an in-place op."""
    torch = _torch()
    base = cygrad.zeros(6)
    view = base.as_strided((2, 2), (3, 1), 1)
    base[1] = 5.0
    assert view[0, 0].item() == 5.0
    view[1, 1] = 7.0
    assert base[5].item() == 7.0
    x = np.arange(12.0)
    c, t = cygrad.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    c2, t2 = c * 1, t * 1
    c2.as_strided((3, 2), (4, 1), 1).mul_(3)
    t2.as_strided((3, 2), (4, 1), 1).mul_(3)
    assert np.array_equal(c2.detach().numpy(), t2.detach().numpy())
    (c2 * cygrad.arange(12.0)).sum().backward()
    (t2 * torch.arange(12.0)).sum().backward()
    assert np.array_equal(c.grad.numpy(), t.grad.numpy())
    with pytest.raises(RuntimeError, match="single memory location"):
        (c * 1).as_strided((3, 3), (2, 1)).mul_(2)


def test_errors_as_torch():
    torch = _torch()
    for args in [((3,), (2,)), ((2,), (-1,)), ((2, 2), (1,)), ((2,), (1,), -1)]:
        with pytest.raises(RuntimeError) as ours:
            cygrad.arange(4.0).as_strided(*args)
        with pytest.raises(RuntimeError) as theirs:
            torch.arange(4.0).as_strided(*args)
        if "setStorage" in str(theirs.value):
            assert str(ours.value) == str(theirs.value)
    with pytest.raises(TypeError, match="must be Tensor"):
        cygrad.as_strided([1.0, 2.0], (2,), (1,))


def test_gradcheck():
    x = cygrad.tensor(np.random.default_rng(5).standard_normal(10), requires_grad=True)
    assert cygrad.gradcheck(lambda t: t.as_strided((4, 3), (2, 1), 1), x)
    y = cygrad.tensor(np.random.default_rng(6).standard_normal((3, 4)), requires_grad=True)
    assert cygrad.gradcheck(lambda t: t.t().as_strided((2, 3), (1, 4)), y)


def test_windows_keep_tied_columns_tied_bitwise():
    """Sliding windows over rows of a matrix whose two columns are equal: the gradient's two
    columns are bitwise equal (every place sums its windows' shares in the same order), at
    one thread and two, and a column computed alone has the same bits."""
    rng = np.random.default_rng(7)
    col = rng.standard_normal(50)
    x = np.stack([col, col], axis=1)
    g = rng.standard_normal((48, 3, 1))

    def grad(data, threads):
        cygrad.set_num_threads(threads)
        t = cygrad.tensor(data, requires_grad=True)
        cols = data.shape[1]
        w = t.as_strided((48, 3, cols), (cols, cols, 1))
        (w * cygrad.tensor(np.repeat(g, cols, axis=2))).sum().backward()
        return t.grad.numpy()

    try:
        one, two = grad(x, 1), grad(x, 2)
    finally:
        cygrad.set_num_threads(1)
    assert one.tobytes() == two.tobytes()
    assert one[:, 0].tobytes() == one[:, 1].tobytes()
    assert grad(col[:, None].copy(), 1)[:, 0].tobytes() == one[:, 0].tobytes()


def test_memory_of_another_dtype_as_torch():
    """A tensor made from a numpy view of another dtype's array: as_strided counts in the
    tensor's own elements, as torch.from_numpy's does."""
    torch = _torch()
    for array in (np.arange(6.0).view(np.int64), np.arange(6.0).view(np.float32)[3:]):
        c, t = cygrad.from_numpy(array), torch.from_numpy(array)
        assert c.storage_offset() == t.storage_offset()
        assert c.as_strided((2,), (2,), 1).tolist() == t.as_strided((2,), (2,), 1).tolist()
