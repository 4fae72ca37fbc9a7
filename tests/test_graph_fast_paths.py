"""The engine's fast paths give the results of the plain ones:

- a leaf adopts its gradient array without a copy only when nothing else can see it;
- a gradient summed over several uses is accumulated in place into a buffer backward owns;
- an op locks only the arrays its backward reads (and a view's owner with the view);
- nn.Sequential runs Linear + activation fused (one kernel pass each way) with the same graph
  nodes and bitwise the same numbers as the two separate calls;
- a slice's gradient reaches the engine as its window alone (SliceGrad), added into its input's
  buffer there: the sums of whole zero-padded arrays, bit for bit, in O(window) work.
"""

import numpy as np
import pytest

import cygrad
from cygrad import nn
from cygrad.nn import functional as F
from cygrad.ops import Op
from cygrad.tensor import apply


def leaf(values, dtype=np.float64):
    return cygrad.tensor(np.array(values, dtype=dtype), requires_grad=True)


def test_gradients_shared_by_several_leaves_are_not_aliased():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    ((a + b) * 2.0).sum().backward()  # Add hands the same array to a and to b
    assert a.grad is not b.grad and not np.shares_memory(a.grad, b.grad)
    a.grad += 1
    assert b.grad.tolist() == [2.0, 2.0]


def test_a_leaf_used_many_times_gets_the_sum():
    x = leaf([1.0, -2.0, 3.0])
    y = (x * 2.0 + x * 3.0 + x * x + x).sum()  # four uses: sums accumulate in place
    y.backward()
    assert x.grad.tolist() == (2 + 3 + 2 * np.array([1.0, -2.0, 3.0]) + 1).tolist()
    c = leaf([1.0, 2.0])
    ((c + c) * 2.0).sum().backward()
    assert c.grad.tolist() == [4.0, 4.0]


def test_retained_graph_accumulates_across_backwards():
    w = leaf([[1.0, 2.0], [3.0, 4.0]])
    x = cygrad.tensor(np.ones((3, 2)))
    loss = F.linear(x, w).tanh().sum()
    loss.backward(retain_graph=True)
    first = w.grad.numpy().copy()
    loss.backward()
    np.testing.assert_array_equal(w.grad, 2 * first)


def test_a_user_held_gradient_is_copied():
    x = leaf([1.0, 2.0])
    g = np.array([1.0, 1.0])
    y = x * 3.0
    y.backward(g)
    assert not np.shares_memory(x.grad, g)
    g[0] = 100.0
    assert x.grad.tolist() == [3.0, 3.0]


def test_only_arrays_read_by_backward_are_locked():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    s = a + b  # Add reads nothing back
    assert a.numpy().flags.writeable and b.numpy().flags.writeable
    p = a * b  # Mul reads both
    assert not a.numpy().flags.writeable and not b.numpy().flags.writeable
    del p
    assert a.numpy().flags.writeable
    s.sum().backward()


def test_a_saved_view_locks_itself_and_its_owner():
    x = leaf(np.arange(6.0))
    v = x.reshape(2, 3)  # v.numpy() is a view of x.numpy()
    y = (v * v).sum()
    with pytest.raises(ValueError, match="read-only"):
        v.numpy()[0, 0] = 9.0
    with pytest.raises(ValueError, match="read-only"):
        x.numpy()[0] = 9.0
    y.backward()
    x.numpy()[0] = 9.0
    v.numpy()[0, 1] = 1.0
    assert x.grad.tolist() == (2 * np.arange(6.0)).tolist()


ACTIVATIONS = [nn.Tanh, nn.Sigmoid, nn.ReLU, lambda: nn.LeakyReLU(0.2)]


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_sequential_fusion_keeps_graph_and_bits(act, dtype):
    cygrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7, dtype=dtype), act(), nn.Linear(7, 3, dtype=dtype))
    x = cygrad.tensor(np.random.default_rng(0).standard_normal((6, 5)), dtype=dtype)
    targets = [0, 1, 2, 0, 1, 2]

    fused = model(x)
    assert fused.grad_fn.kind() == "Linear"
    hidden = fused._parents[0]  # the first Linear and its activation: one explicit node
    assert hidden.grad_fn.kind() in ("LinearTanh", "LinearSigmoid", "LinearRelu",
                                     "LinearLeakyRelu")
    assert [p is q for p, q in zip(hidden._parents, (x, model[0].weight, model[0].bias))] \
        == [True, True, True]
    F.cross_entropy(fused, targets).backward()
    grads = [p.grad.numpy().copy() for p in model.parameters()]

    model.zero_grad()
    unfused = model[2](model[1](model[0](x)))  # module by module: no fusion
    np.testing.assert_array_equal(fused.numpy(), unfused.numpy())
    F.cross_entropy(unfused, targets).backward()
    for g, p in zip(grads, model.parameters()):
        np.testing.assert_array_equal(g, p.grad)


def test_fusion_stands_aside_for_a_wrapped_forward():
    cygrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh())
    seen = []
    forward = model[1].forward
    model[1].forward = lambda x: seen.append(x) or forward(x)  # as the symmetry monitor does
    model(cygrad.tensor(np.ones((2, 3), np.float32)))
    assert len(seen) == 1 and seen[0].shape == (2, 4)


def test_fused_layer_in_no_grad_mode_adds_the_bias():
    cygrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    x = cygrad.tensor(np.ones((2, 3), np.float32))
    with cygrad.no_grad():
        y = model(x)
    ref = np.maximum(x.numpy() @ model[0].weight.numpy().T + model[0].bias.numpy(), 0)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-6)
    assert not y.requires_grad


def test_a_weight_gradient_is_adopted_without_a_copy(monkeypatch):
    import weakref

    from cygrad import backend

    made = []  # weak references: a strong one would (rightly) make backward copy
    gemm = backend.gemm

    def recording_gemm(*args, **kwargs):
        out = gemm(*args, **kwargs)
        made.append(weakref.ref(out))
        return out

    monkeypatch.setattr(backend, "gemm", recording_gemm)
    w = leaf(np.ones((3, 4)))
    x = cygrad.tensor(np.ones((5, 4)))
    F.linear(x, w).sum().backward()
    assert any(ref() is w.grad.numpy() for ref in made)  # dW from the gemm became .grad itself


def test_fusion_plan_follows_changes_made_after_the_first_forward():
    cygrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(0.5))
    x = cygrad.tensor(-np.ones((2, 3), np.float32))
    model(x)  # the plan is made here
    seen = []
    forward = model[1].forward
    model[1].forward = lambda x: seen.append(x) or forward(x)  # wrapped afterwards
    model(x)
    assert len(seen) == 1  # the wrapper ran: the pair is no longer fused
    del model[1].forward
    model[1].negative_slope = 0.25  # a new slope, seen by the fused pair
    z = x.numpy() @ model[0].weight.numpy().T + model[0].bias.numpy()
    np.testing.assert_allclose(model(x).numpy(), np.where(z > 0, z, 0.25 * z), rtol=1e-6)
    model.append(nn.Tanh())  # a new module: the plan grows
    np.testing.assert_allclose(model(x).numpy(), np.tanh(np.where(z > 0, z, 0.25 * z)), rtol=1e-6)


class _StopGradient(Op):
    """y = x, but backward sends no gradient to x (a custom op may do that)."""

    def forward(self, x):
        return x.copy()

    def backward(self, g):
        return (None,)


def test_backward_gives_back_every_lock_of_the_graph_it_passes():
    from cygrad import ops

    if ops.Lease is ops.PyLease:
        def locked():
            return len(ops._saved)
    else:
        from cygrad._C.graph import locked_count as locked

    before = locked()  # graphs other tests left alive may hold locks
    w = leaf([[1.0, 2.0], [3.0, 4.0]])
    x = cygrad.tensor(np.ones((3, 2)))
    h = F.linear(x, w).tanh()
    blocked = apply(_StopGradient, F.linear(x, w * 1.0).tanh())  # sends its input None
    y = h.sum() + blocked.sum()
    loss = y * 2.0
    assert locked() > before
    loss.backward()
    starved = blocked._parents[0]  # the tanh node: no gradient ever reached it
    for node in (h, loss, blocked, starved, starved._parents[0]):
        assert node._op.released
    assert y._op.saves_nothing and not y._op.released  # (an add: nothing to free, as torch)
    assert locked() == before
    np.testing.assert_allclose(w.grad, 2 * (1 - h.numpy()**2).T @ x.numpy())  # the tanh branch only
    h.numpy()[0, 0] = 7.0  # writable again: no lock outlives backward
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


def test_mse_scalars_have_the_bits_of_the_dtypes_own_arithmetic(dtype):
    rng = np.random.default_rng(5)
    for n in (1, 3, 32, 1000, 4097):
        x = cygrad.tensor(rng.standard_normal((n, 1)) * 7, dtype=dtype, requires_grad=True)
        t = cygrad.tensor(rng.standard_normal((n, 1)), dtype=dtype)
        for reduction in ("mean", "sum"):
            x.grad = None
            loss = F.mse_loss(x, t, reduction=reduction)
            g = cygrad.tensor(np.array(rng.uniform(0.1, 3)), dtype=dtype)
            loss.backward(g.numpy())
            d = x.numpy() - t.numpy()
            total = cygrad.backend.column_sum((d * d).reshape(-1, 1))[0]  # the kernels' tree
            scale = g.numpy() * dtype.type(2)
            if reduction == "mean":
                total, scale = total / dtype.type(n), scale / dtype.type(n)
            assert loss.numpy().dtype == dtype
            assert loss.numpy().tobytes() == np.asarray(total).tobytes()
            assert x.grad.numpy().tobytes() == (scale * d).tobytes()


def test_cross_entropy_scalars_have_the_bits_of_the_dtypes_own_arithmetic(dtype):
    rng = np.random.default_rng(6)
    for n in (1, 3, 64, 1001):
        logits = cygrad.tensor(rng.standard_normal((n, 5)) * 4, dtype=dtype, requires_grad=True)
        targets = rng.integers(0, 5, n)
        for reduction in ("mean", "sum"):
            logits.grad = None
            loss = F.cross_entropy(logits, targets, reduction=reduction)
            g = np.array(rng.uniform(0.1, 3), dtype=dtype)
            loss.backward(g)
            losses = F.cross_entropy(cygrad.tensor(logits.numpy()), targets,
                                     reduction="none").numpy()
            total = cygrad.backend.column_sum(losses.reshape(-1, 1))[0]  # the kernels' tree
            rows = np.full(n, g, dtype=dtype)
            if reduction == "mean":
                total, rows = total / dtype.type(n), np.full(n, g / dtype.type(n), dtype=dtype)
            expected = cygrad.backend.log_softmax_nll_backward(
                cygrad.backend.log_softmax_nll(logits.numpy(), targets)[1], targets, rows)
            assert loss.numpy().tobytes() == np.asarray(total).tobytes()
            assert logits.grad.numpy().tobytes() == expected.tobytes()


def _grads_whole(fn, x):
    """x's gradient from fn(x).backward() with every gradient whole (a watcher on: the engine's
    path that hands watchers full arrays)."""
    from cygrad import _state
    from cygrad.tensor import Watcher
    with _state.watching(Watcher()):
        fn(x).backward()
    whole, x.grad = x.grad, None
    return whole


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_slices_add_their_windows_as_the_whole_arrays_would(dtype):
    rng = np.random.default_rng(0)
    x = cygrad.tensor(rng.standard_normal((30, 3, 4)).astype(dtype), requires_grad=True)

    def fn(x):
        steps = x.unbind(0)  # 30 slices, some used twice, overlapping windows, a dense use
        total = sum((s * float(i % 7 - 3)).sum() for i, s in enumerate(steps))
        total = total + (x[2:9] * 1.5).sum() + (x[5:12, 1] ** 2).sum() + x[3, 2, 1] * 4.0
        h = x * 0.5  # an op node reached by slices alone: made whole before its backward
        return total + h[0].sum() + (h[1:4] * h[1:4]).sum() + (x * x).sum()

    whole = _grads_whole(fn, x)
    fn(x).backward()
    assert x.grad.dtype == whole.dtype and np.array_equal(x.grad.numpy(), whole.numpy())


def test_slice_gradients_reach_leaves_hooks_and_retained_grads_whole():
    from cygrad.ops import SliceGrad
    from cygrad.ops.shape import Slice
    x = leaf(np.arange(6.0))
    y = x * 1.0
    y.retain_grad()
    seen = []
    y.register_hook(lambda g: seen.append(g.shape))
    (y[1] * 2 + y[4:6].sum()).backward()
    assert seen == [(6,)] and y.grad.tolist() == [0, 2, 0, 0, 1, 1]
    assert x.grad.tolist() == [0, 2, 0, 0, 1, 1] and type(x.grad._data) is np.ndarray
    z = leaf([1.0, 2.0, 3.0])
    z[0].backward()  # a leaf whose only gradient is one slice
    assert z.grad.tolist() == [1.0, 0.0, 0.0]
    # what the engine gets: the window, not an array of the input's size
    op = apply(Slice, leaf(np.zeros((1000, 4))), index=(7,)).grad_fn
    (part,) = op.engine_backward(np.ones(4))
    assert type(part) is SliceGrad and part.g.shape == (4,)
    assert np.array_equal(np.asarray(part), op.backward(np.ones(4))[0])
