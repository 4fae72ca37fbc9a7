"""csrc/program.pyx: kernel calls as instructions (cygrad.compile's native tier).

Each exec function must give its eager entry point's bits on the same operands (the compiled
step's bitwise promise rests on it), at any size and thread count; a Program must check what
each run binds and never write into an array someone else holds."""

import time

import numpy as np
import pytest

from cygrad import backend as B
from cygrad.ops import losses

pytestmark = pytest.mark.skipif("cython" not in B.available(), reason="cython backend not built")

if "cython" in B.available():
    from cygrad._C import elementwise, gemm, loss, program, reduce


def _one(kernel, family, dtype, threads, code, operands, sizes, x=0.0, writes=()):
    """Run one instruction: operands are ("in", array) (bound) or ("out", shape[, dtype])
    (output slots); returns the outputs' arrays."""
    p = program.Program()
    slots, bound = [], []
    for kind, value, *rest in operands:
        if kind == "in":
            slots.append(p.slot(value.shape, value.dtype, "bound"))
            bound.append(value)
        elif kind == "none":
            slots.append(-1)
        else:
            slots.append(p.slot(value, rest[0] if rest else dtype, "output"))
    p.add(kernel, family.EXEC[kernel], dtype, threads, code, slots, sizes, x, writes)
    return p.run(tuple(bound))


def _rng(seed, *shape, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("trans", [0, 1, 2, 3])
@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (32, 16, 2), (70, 33, 600), (5, 300, 17)])
def test_gemm_instruction_is_the_entry_points_bits(m, n, k, trans, threads, dtype):
    a = _rng(m + k, *((k, m) if trans & 1 else (m, k)), dtype=dtype)
    b = _rng(n + k, *((n, k) if trans & 2 else (k, n)), dtype=dtype)
    (c,) = _one("gemm", gemm, dtype, threads, trans, [("in", a), ("in", b), ("out", (m, n))],
                [m, n, k, a.shape[1], b.shape[1]], writes=(2,))
    expected = gemm.product(a, b, bool(trans & 1), bool(trans & 2), threads)
    assert c.tobytes() == expected.tobytes()


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name, slope", [("tanh", 0.0), ("relu", 0.0), ("leaky_relu", 0.2),
                                         ("sigmoid", 0.0), ("gelu", 0.0), ("silu", 0.0)])
@pytest.mark.parametrize("m, n", [(3, 5), (40, 70)])
def test_dense_layer_instructions_are_the_entry_points_bits(m, n, name, slope, threads,
                                                            dtype):
    z, b, g = _rng(1, m, n, dtype=dtype), _rng(2, n, dtype=dtype), _rng(3, m, n, dtype=dtype)
    code = elementwise.activation_code(name)
    p = program.Program()
    sz, sb, sg = (p.slot(a.shape, dtype, "bound") for a in (z, b, g))
    zi = p.slot((m, n), dtype, "output")
    y, added, dz, db = (p.slot(s, dtype, "output") for s in ((m, n), (m, n), (m, n), (n,)))
    # z copied into an output slot by bias_add with a zero bias, then the fused forward on it
    zero = p.slot((n,), dtype, "internal")
    p.add("bias_add", elementwise.EXEC["bias_add"], dtype, threads, 0, [sz, zero, zi], [m, n],
          0.0, (2,))
    p.add("bias_activation", elementwise.EXEC["bias_activation"], dtype, threads, code,
          [zi, sb, y], [m, n], slope, (0, 2))
    p.add("bias_add", elementwise.EXEC["bias_add"], dtype, threads, 0, [sz, sb, added], [m, n],
          0.0, (2,))
    p.add("activation_backward_bias", elementwise.EXEC["activation_backward_bias"], dtype,
          threads, code, [sg, y if name != "leaky_relu" else zi, dz, db], [m, n], slope, (2, 3))
    out = dict(zip(["zi", "y", "added", "dz", "db"], p.run((z, b, g))))
    z_eager = z.copy()
    y_eager = elementwise.bias_activation(name, z_eager, b, slope, threads)
    assert out["zi"].tobytes() == z_eager.tobytes() and out["y"].tobytes() == y_eager.tobytes()
    assert out["added"].tobytes() == elementwise.bias_add(z, b, None, threads).tobytes()
    dz_e, db_e = elementwise.activation_backward_bias(
        name, g, y_eager if name != "leaky_relu" else z_eager, slope, threads)
    assert out["dz"].tobytes() == dz_e.tobytes() and out["db"].tobytes() == db_e.tobytes()


@pytest.mark.parametrize("m, n", [(1, 1), (31, 4), (33, 9), (1100, 3)])
def test_column_sum_instruction_is_the_entry_points_bits(m, n, dtype):
    g = _rng(m * n, m, n, dtype=dtype)
    (s,) = _one("column_sum", reduce, dtype, 2, 0, [("in", g), ("out", (n,))], [m, n],
                writes=(1,))
    assert s.tobytes() == reduce.column_sum(g, 2).tobytes()


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("shape", [(1,), (32, 1), (100, 7)])
def test_mse_instructions_are_the_ops_bits(shape, reduction, dtype):
    x, t = _rng(5, *shape, dtype=dtype), _rng(6, *shape, dtype=dtype)
    code = {"mean": 1, "sum": 2}[reduction]
    p = program.Program()
    sx, st = p.slot(shape, dtype, "bound"), p.slot(shape, dtype, "bound")
    diff, sq = p.slot(shape, dtype, "internal"), p.slot(shape, dtype, "internal")
    value, dx, dt = (p.slot(s, dtype, "output") for s in ((), shape, shape))
    p.add("mse", loss.EXEC["mse"], dtype, 1, code, [sx, st, diff, sq, value], [x.size], 0.0,
          (2, 3, 4))
    p.add("mse_backward", loss.EXEC["mse_backward"], dtype, 1, code, [diff, dx, dt], [x.size],
          0.0, (1, 2))
    got = p.run((x, t))
    op = losses.MSE()
    op.reduction, op.needs = reduction, (True, True)
    with B.using("cython"):
        expected = op.forward(x, t)
        dx_e, dt_e = op.backward(np.ones((), dtype))
    assert [a.tobytes() for a in got] == [np.asarray(expected).tobytes(), dx_e.tobytes(),
                                          dt_e.tobytes()]


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("n, c", [(1, 2), (64, 10), (300, 3)])
def test_cross_entropy_instructions_are_the_ops_bits(n, c, reduction, dtype):
    x = _rng(7, n, c, dtype=dtype)
    t = np.random.default_rng(8).integers(0, c, n).astype(np.intp)
    code = {"mean": 1, "sum": 2}[reduction]
    p = program.Program()
    sx, st = p.slot((n, c), dtype, "bound"), p.slot((n,), np.intp, "bound")
    logp, rows = p.slot((n, c), dtype, "internal"), p.slot((n,), dtype, "internal")
    value, dx = p.slot((), dtype, "output"), p.slot((n, c), dtype, "output")
    p.add("cross_entropy", loss.EXEC["cross_entropy"], dtype, 1, code,
          [sx, st, logp, rows, value], [n, c], 0.0, (2, 3, 4))
    p.add("cross_entropy_backward", loss.EXEC["cross_entropy_backward"], dtype, 1, code,
          [logp, st, dx], [n, c], 0.0, (2,))
    got = p.run((x, t))
    op = losses.CrossEntropy()
    op.reduction, op.targets, op.needs = reduction, t, (True,)
    with B.using("cython"):
        expected = op.forward(x)
        (dx_e,) = op.backward(np.ones((), dtype))
    assert got[0].tobytes() == np.asarray(expected).tobytes()
    assert got[1].tobytes() == dx_e.tobytes()
    bad = t.copy()
    bad[-1] = c
    with pytest.raises(ValueError, match=f"class index {c} .* out of range for {c} classes"):
        p.run((x, bad))


def _gemm_program():
    p = program.Program()
    a, b = p.slot((4, 3), np.float32, "bound"), p.slot((3, 2), np.float32, "bound")
    c = p.slot((4, 2), np.float32, "output")
    p.add("gemm", gemm.EXEC["gemm"], np.float32, 1, 0, [a, b, c], [4, 2, 3, 3, 2], 0.0, (2,))
    return p


def test_a_run_checks_every_bound_array():
    p = _gemm_program()
    a, b = np.ones((4, 3), np.float32), np.ones((3, 2), np.float32)
    assert p.run((a, b))[0].tolist() == [[3.0, 3.0]] * 4
    with pytest.raises(TypeError, match="2 arrays expected, got 1"):
        p.run((a,))
    with pytest.raises(ValueError, match=r"argument 1 has shape \(2, 3\), expected \(3, 2\)"):
        p.run((a, b.T.copy()))
    with pytest.raises(ValueError, match="argument 0 is not an aligned float32 array"):
        p.run((a.astype(np.float64), b))
    with pytest.raises((ValueError, BufferError), match="contiguous"):
        p.run((np.ones((4, 6), np.float32)[:, ::2], b))
    with pytest.raises(TypeError):
        p.run((a, [[1.0, 1.0]] * 3))
    assert p.run((a, b))[0].tolist() == [[3.0, 3.0]] * 4  # and it still runs


def test_an_output_held_outside_is_never_written_again():
    p = _gemm_program()
    a, b = np.ones((4, 3), np.float32), np.ones((3, 2), np.float32)
    (first,) = p.run((a, b))
    (second,) = p.run((2 * a, b))
    assert second is not first and first.tolist() == [[3.0, 3.0]] * 4
    view = second[1:]
    del second
    (third,) = p.run((3 * a, b))
    assert view.tolist() == [[6.0, 6.0]] * 3  # a view holds its base: not reused either
    kept = id(third)
    del third, view
    (fourth,) = p.run((a, b))
    assert id(fourth) == kept  # nothing held it: the same array again


def test_a_run_times_each_instruction_without_changing_a_bit():
    p = program.Program()
    a, b = p.slot((200, 300), np.float64, "bound"), p.slot((300, 100), np.float64, "bound")
    c = p.slot((200, 100), np.float64, "internal")
    d = p.slot((200, 100), np.float64, "output")
    p.add("gemm", gemm.EXEC["gemm"], np.float64, 1, 0, [a, b, c], [200, 100, 300, 300, 100],
          0.0, (2,))
    p.add("bias_add", elementwise.EXEC["bias_add"], np.float64, 1, 0,
          [c, p.slot((100,), np.float64, "bound"), d], [200, 100], 0.0, (2,))
    args = (_rng(1, 200, 300, dtype=np.float64), _rng(2, 300, 100, dtype=np.float64),
            _rng(3, 100, dtype=np.float64))
    times = np.full(3, -1.0)
    start = time.perf_counter()
    (timed,) = p.run(args, (), times)
    wall = time.perf_counter() - start
    assert timed.tobytes() == p.run(args)[0].tobytes()
    assert 0 < times[0] < wall and 0 < times[1] < wall and times[0] + times[1] < wall
    assert times[2] == -1.0  # beyond the instructions: untouched
    with pytest.raises(ValueError, match="times holds 1 durations, 2 instructions"):
        p.run(args, (), np.zeros(1))
    with pytest.raises(ValueError):  # float64, writable
        p.run(args, (), np.zeros(2, np.float32))
    frozen = np.zeros(2)
    frozen.flags.writeable = False
    with pytest.raises(ValueError):
        p.run(args, (), frozen)


def _two_products(shapes, dtype, pair=True):
    """A program of two gemm instructions (each ((m, k), (k, n)) with its transposes code),
    paired or not; returns (program, bound arrays)."""
    p = program.Program()
    args = []
    for i, ((m, n, k), code) in enumerate(shapes):
        a = _rng(10 + i, *((k, m) if code & 1 else (m, k)), dtype=dtype)
        b = _rng(20 + i, *((n, k) if code & 2 else (k, n)), dtype=dtype)
        sa, sb = p.slot(a.shape, dtype, "bound"), p.slot(b.shape, dtype, "bound")
        c = p.slot((m, n), dtype, "output")
        p.add("gemm", gemm.EXEC["gemm"], dtype, 2, code, [sa, sb, c],
              [m, n, k, a.shape[1], b.shape[1]], 0.0, (2,), gemm.EXEC_PAIR["gemm"])
        args += [a, b]
    if pair:
        p.pair(0)
    return p, tuple(args)


@pytest.mark.parametrize("shapes", [
    [((64, 256, 128), 0), ((128, 256, 64), 1)],  # a layer's dX and dW (the MNIST step's)
    [((300, 70, 600), 2), ((33, 517, 9), 3)],    # ragged, long k (the tree's merges), wide
    [((5, 3, 40), 0), ((0, 4, 4), 0)],           # an empty one: one after the other
    [((70, 2, 100), 0), ((16, 40, 16), 1)],      # one run as its transpose (few columns)
])
def test_a_pair_of_products_has_each_products_bits(shapes, dtype):
    paired, args = _two_products(shapes, dtype)
    assert paired.paired == [False, True]
    alone, _ = _two_products(shapes, dtype, pair=False)
    times = np.zeros(2)
    got = paired.run(args, (), times)
    for (c, want), i in zip(zip(got, alone.run(args)), (0, 2)):
        a, b, code = args[i], args[i + 1], shapes[i // 2][1]
        expected = gemm.product(a, b, bool(code & 1), bool(code & 2), 1)
        assert c.tobytes() == want.tobytes() == expected.tobytes()
    assert times[0] > 0 and times[1] == 0  # the pair's time is its first instruction's


def test_only_independent_instructions_of_one_pair_form_pair():
    p, _ = _two_products([((8, 8, 8), 0), ((8, 8, 8), 0)], np.float32, pair=False)
    with pytest.raises(ValueError, match="no instructions 1 and 2 to pair"):
        p.pair(1)
    p.pair(0)
    with pytest.raises(ValueError, match="paired already"):
        p.pair(0)
    q = program.Program()  # the second reads what the first writes
    a = q.slot((8, 8), np.float32, "bound")
    c = q.slot((8, 8), np.float32, "internal")
    d = q.slot((8, 8), np.float32, "output")
    for x, y in ((a, c), (c, d)):
        q.add("gemm", gemm.EXEC["gemm"], np.float32, 2, 0, [a, x, y], [8, 8, 8, 8, 8], 0.0,
              (2,), gemm.EXEC_PAIR["gemm"])
    with pytest.raises(ValueError, match="depend on each other"):
        q.pair(0)
    q.add("column_sum", reduce.EXEC["column_sum"], np.float32, 2, 0, [d, -1], [8, 8], 0.0, ())
    with pytest.raises(ValueError, match="no pair form in common"):
        q.pair(1)
    with pytest.raises(TypeError, match="not a pair exec capsule"):
        q.add("gemm", gemm.EXEC["gemm"], np.float32, 2, 0, [a, a, d], [8, 8, 8, 8, 8], 0.0,
              (2,), gemm.EXEC["gemm"])
    assert q.paired == [False, False, False]


def test_instructions_are_checked_when_added():
    p = program.Program()
    a = p.slot((2, 2), np.float32, "bound")
    c = p.slot((2, 2), np.float32, "output")
    with pytest.raises(TypeError, match="not an exec capsule"):
        p.add("gemm", object(), np.float32, 1, 0, [a, a, c], [2, 2, 2, 2, 2], 0.0, (2,))
    with pytest.raises(ValueError, match="not a slot it may write"):
        p.add("gemm", gemm.EXEC["gemm"], np.float32, 1, 0, [a, c, a], [2, 2, 2, 2, 2], 0.0, (2,))
    with pytest.raises(ValueError, match="no slot 7"):
        p.add("gemm", gemm.EXEC["gemm"], np.float32, 1, 0, [a, 7, c], [2, 2, 2, 2, 2], 0.0, (2,))
    with pytest.raises(TypeError, match="float32, float64 or \\(bound\\) intp"):
        p.slot((2,), np.intp, "output")
    with pytest.raises(ValueError, match="unknown slot role"):
        p.slot((2,), np.float32, "scratch")
    assert len(p) == 0 and [s[0] for s in p.slots] == ["bound", "output"]


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("momentum, dampening, nesterov, weight_decay, maximize", [
    (0.0, 0.0, False, 0.0, False), (0.0, 0.0, False, 0.01, True), (0.9, 0.0, False, 0.0, False),
    (0.9, 0.1, False, 0.01, False), (0.9, 0.0, True, 0.0, True)])
def test_sgd_instruction_is_the_entry_points_bits(momentum, dampening, nesterov, weight_decay,
                                                  maximize, threads, dtype, monkeypatch):
    # threaded from any size here: each thread updates its own run of a parameter; the bits are
    # the one-thread entry point's
    from cygrad._C import optim

    monkeypatch.setattr(optim, "program_serial_below", 0)
    shapes = [(3, 5), (7, 41), (1,)]
    params = [_rng(i, *s, dtype=dtype) for i, s in enumerate(shapes)]
    grads = [_rng(10 + i, *s, dtype=dtype) for i, s in enumerate(shapes)]
    bufs = [_rng(20 + i, *s, dtype=dtype) for i, s in enumerate(shapes)]
    p = program.Program()
    sp = [p.slot(s, dtype, "bound", True) for s in shapes]
    sg = [p.slot(s, dtype, "bound") for s in shapes]
    sb = [p.slot(s, dtype, "bound", True) if momentum else -1 for s in shapes]
    for s, a, g, b in zip(shapes, sp, sg, sb):
        p.add("sgd", optim.EXEC["sgd"], dtype, threads, 0, [a, g, b], [int(np.prod(s))], 0.0,
              (0, 2) if momentum else (0,))
    mine = [a.copy() for a in params + bufs]
    for _ in range(3):  # three steps: the buffers' update too
        p.run(tuple(mine[:3]) + tuple(grads) + (tuple(mine[3:]) if momentum else ()),
              (0.1, momentum, dampening, nesterov, weight_decay, maximize))
    theirs = [a.copy() for a in params + bufs]
    for _ in range(3):
        optim.sgd(theirs[:3], grads, 0.1, momentum, dampening, nesterov, weight_decay,
                  theirs[3:] if momentum else None, [False] * 3 if momentum else None, maximize)
    assert [a.tobytes() for a in mine] == [a.tobytes() for a in theirs]


def test_a_writable_slot_refuses_a_read_only_array_before_any_write():
    from cygrad._C import optim

    p = program.Program()
    a, b = p.slot((4,), np.float32, "bound", True), p.slot((4,), np.float32, "bound", True)
    g = p.slot((4,), np.float32, "bound")
    for s in (a, b):
        p.add("sgd", optim.EXEC["sgd"], np.float32, 1, 0, [s, g, -1], [4], 0.0, (0,))
    first, second = np.ones(4, np.float32), np.ones(4, np.float32)
    second.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        p.run((first, second, np.ones(4, np.float32)), (0.5, 0, 0, 0, 0, 0))
    assert first.tolist() == [1.0] * 4  # the first parameter was not updated either
    with pytest.raises(TypeError, match="at most 8 scalars"):
        p.run((first, first, first), (0.0,) * 9)
