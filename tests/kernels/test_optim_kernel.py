"""The optimiser kernels (csrc/optim.pyx: backend.sgd_update, adam_update, rmsprop_update,
adagrad_update, adadelta_update) against their numpy twins, bitwise, for every option, layout
and dtype, over several steps; strided pairs fall back to numpy; read-only parameters are
refused before anything of theirs is written; bad pairs raise before any write."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cygrad import backend as B

pytestmark = pytest.mark.skipif("cython" not in B.available(), reason="cython backend not built")

DTYPES = st.sampled_from([np.float32, np.float64])
SHAPES = st.lists(st.tuples(st.integers(0, 6), st.integers(1, 40)), max_size=4)
COMMON = {"shapes": SHAPES, "dtype": DTYPES, "strided": st.booleans(),
          "maximize": st.booleans(), "seed": st.integers(0, 2**16)}


def same_bits(a, b):
    """Bitwise equal, any NaN matching any NaN."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    ints = {4: np.int32, 8: np.int64}[a.dtype.itemsize]
    same = np.ascontiguousarray(a).view(ints) == np.ascontiguousarray(b).view(ints)
    return bool(np.all(same | (np.isnan(a) & np.isnan(b))))


def state(rng, shapes, dtype, strided, count, positive=()):
    """count lists of arrays, one array per shape (strided views or C arrays); the columns in
    `positive` are non-negative (second moments, sums of squares)."""
    columns = [[] for _ in range(count)]
    for rows, cols in shapes:
        for c in range(count):
            a = (rng.standard_normal((rows, 2 * cols)) * (0.1 if c >= 2 else 1.0)).astype(dtype)
            if c in positive:
                a = np.abs(a)
            columns[c].append(a[:, ::2] if strided else a[:, :cols].copy())
    return columns


def steps_for(shapes, step_dtype):
    return [np.zeros((), step_dtype) for _ in shapes]


def both(update, arrays):
    """update(*arrays) on the cython and the numpy backend, each on copies of the arrays;
    the two results must agree bitwise in every array (parameters, state, step counters)."""
    results = []
    for name in ("cython", "numpy"):
        mine = [None if column is None else [a.copy() for a in column] for column in arrays]
        with B.using(name):
            update(*mine)
        results.append(mine)
    for cy, np_ in zip(*results, strict=True):
        for got, want in zip(cy or [], np_ or [], strict=True):
            assert same_bits(got, want)
    return results


# ---------------------------------------------------------------------- SGD

def numpy_update(params, grads, lr):
    for p, g in zip(params, grads, strict=True):
        p -= p.dtype.type(lr) * g


@settings(max_examples=60, deadline=None)
@given(shapes=st.lists(st.tuples(st.integers(0, 9), st.integers(1, 40)), min_size=0, max_size=5),
       dtype=DTYPES, lr=st.floats(1e-4, 3.0), strided=st.booleans(), seed=st.integers(0, 2**16))
def test_sgd_update_is_numpys_update_bitwise(shapes, dtype, lr, strided, seed):
    params, grads = state(np.random.default_rng(seed), shapes, dtype, strided, 2)
    expected = [p.copy() for p in params]
    numpy_update(expected, grads, lr)
    with B.using("cython"):
        assert B.sgd_update(params, grads, lr) == []
    for got, want in zip(params, expected, strict=True):
        assert np.array_equal(got, want)


@settings(max_examples=80, deadline=None)
@given(lr=st.floats(1e-4, 2.0), momentum=st.sampled_from([0.0, 0.5, 0.9]),
       dampening=st.sampled_from([0.0, 0.3]), nesterov=st.booleans(),
       weight_decay=st.sampled_from([0.0, 1e-2, 0.3]), **COMMON)
def test_sgd_with_options_is_the_numpy_twin_bitwise(shapes, dtype, lr, momentum, dampening,
                                                     nesterov, weight_decay, strided, maximize,
                                                     seed):
    nesterov = nesterov and momentum > 0 and dampening == 0
    params, grads, bufs = state(np.random.default_rng(seed), shapes, dtype, strided, 3)

    def three_steps(params, grads, bufs):
        for step in range(3):
            assert B.sgd_update(params, grads, lr, momentum, dampening, nesterov, weight_decay,
                                bufs if momentum else None, [step == 0] * len(params),
                                maximize) == []

    both(three_steps, [params, grads, bufs])


# ---------------------------------------------------------------------- Adam, AdamW

@settings(max_examples=80, deadline=None)
@given(lr=st.floats(1e-4, 0.5), beta1=st.sampled_from([0.0, 0.3, 0.6, 0.9]),
       beta2=st.sampled_from([0.0, 0.9, 0.999]), eps=st.sampled_from([1e-8, 1e-3]),
       weight_decay=st.sampled_from([0.0, 1e-2]), decoupled=st.booleans(),
       amsgrad=st.booleans(), step_dtype=DTYPES, **COMMON)
def test_adam_is_the_numpy_twin_bitwise(shapes, dtype, lr, beta1, beta2, eps, weight_decay,
                                        decoupled, amsgrad, step_dtype, strided, maximize, seed):
    arrays = state(np.random.default_rng(seed), shapes, dtype, strided, 5, positive=(3, 4))

    def three_steps(params, grads, exp_avgs, exp_avg_sqs, maxes, steps):
        for _ in range(3):
            assert B.adam_update(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2,
                                 eps, weight_decay, decoupled, amsgrad, maxes, maximize) == []

    cython, _ = both(three_steps, arrays + [steps_for(shapes, step_dtype)])
    assert all(s == 3 and s.dtype == step_dtype for s in cython[5])


# ---------------------------------------------------------------------- threads

def _parameters(rng, sizes, dtype, count):
    return [[(rng.standard_normal(n) * (0.1 if c >= 2 else 1.0)).astype(dtype) for n in sizes]
            for c in range(count)]


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(0, 700), min_size=1, max_size=4), dtype=DTYPES,
       threads=st.integers(2, 5), momentum=st.sampled_from([0.0, 0.9]), seed=st.integers(0, 99))
def test_sgd_split_over_threads_has_one_threads_bits(sizes, dtype, threads, momentum, seed):
    # every parameter is split (serial_below 0) into runs of whole 64-element blocks, one a
    # thread: sizes below, at and across the block and run boundaries
    from cygrad._C import optim

    arrays = _parameters(np.random.default_rng(seed), sizes, dtype, 3)
    results = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(optim, "serial_below", 0)
        for nt in (1, threads):
            params, grads, bufs = [[a.copy() for a in column] for column in arrays]
            for step in range(2):
                assert optim.sgd(params, grads, 0.1, momentum, 0.1, False, 0.01,
                                 bufs if momentum else None, [step == 0] * len(sizes), False,
                                 nt) == ([], [])
            results.append(params + bufs)
    assert [a.tobytes() for a in results[0]] == [a.tobytes() for a in results[1]]


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(0, 700), min_size=1, max_size=4), dtype=DTYPES,
       threads=st.integers(2, 5), decoupled=st.booleans(), amsgrad=st.booleans(),
       seed=st.integers(0, 99))
def test_adam_split_over_threads_has_one_threads_bits(sizes, dtype, threads, decoupled, amsgrad,
                                                      seed):
    from cygrad._C import optim

    arrays = _parameters(np.random.default_rng(seed), sizes, dtype, 5)
    for column in arrays[3:]:
        for a in column:
            np.abs(a, out=a)
    results = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(optim, "serial_below", 0)
        for nt in (1, threads):
            params, grads, m, v, vmax = [[a.copy() for a in column] for column in arrays]
            steps = steps_for(sizes, np.float32)
            for _ in range(2):
                assert optim.adam(params, grads, m, v, vmax if amsgrad else None, steps, 0.01,
                                  0.9, 0.999, 1e-8, 0.1, decoupled, amsgrad, False,
                                  nt) == ([], [])
            results.append(params + m + v + (vmax if amsgrad else []))
    assert [a.tobytes() for a in results[0]] == [a.tobytes() for a in results[1]]


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(0, 700), min_size=1, max_size=4), dtype=DTYPES,
       threads=st.integers(2, 5), centered=st.booleans(), momentum=st.sampled_from([0.0, 0.9]),
       which=st.sampled_from(["rmsprop", "adagrad", "adadelta"]), seed=st.integers(0, 99))
def test_other_optimisers_split_over_threads_have_one_threads_bits(sizes, dtype, threads,
                                                                   centered, momentum, which,
                                                                   seed):
    # RMSprop (centred or not, with momentum or not), Adagrad and Adadelta split as SGD does
    from cygrad._C import optim

    arrays = _parameters(np.random.default_rng(seed), sizes, dtype, 5)
    for column in arrays[2:]:
        for a in column:
            np.abs(a, out=a)
    results = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(optim, "serial_below", 0)
        for nt in (1, threads):
            params, grads, s1, s2, s3 = [[a.copy() for a in column] for column in arrays]
            steps = steps_for(sizes, np.float32)
            for _ in range(2):
                if which == "rmsprop":
                    out = optim.rmsprop(params, grads, s1, s2 if centered else None,
                                        s3 if momentum else None, steps, 0.01, 0.99, 1e-8, 0.1,
                                        momentum, centered, False, nt)
                elif which == "adagrad":
                    out = optim.adagrad(params, grads, s1, steps, 0.01, 0.1, 0.1, 1e-10, False,
                                        nt)
                else:
                    out = optim.adadelta(params, grads, s1, s2, steps, 1.0, 0.9, 1e-6, 0.1,
                                         False, nt)
                assert out == ([], [])
            results.append(params + s1 + s2 + s3)
    assert [a.tobytes() for a in results[0]] == [a.tobytes() for a in results[1]]


def test_adam_bias_corrections_are_pythons():
    # the kernel forms lr / (1 - beta1**t) and (1 - beta2**t) ** 0.5 in C: Python's bits
    p, g = np.array([0.5]), np.array([0.25])
    lr, beta1, beta2, eps = 0.003, 0.87, 0.9991, 1e-8
    m, v, t = np.zeros(1), np.zeros(1), np.array(6.0)
    with B.using("cython"):
        B.adam_update([p], [g], [m], [v], [t], lr, beta1, beta2, eps)
    step = 7.0
    want_m = 0.0 + (1 - beta1) * (0.25 - 0.0)
    want_v = 0.0 * beta2 + (1 - beta2) * 0.25 * 0.25
    denom = want_v ** 0.5 / (1 - beta2 ** step) ** 0.5 + eps
    want = 0.5 - lr / (1 - beta1 ** step) * want_m / denom
    assert t == 7.0 and m[0] == want_m and v[0] == want_v and p[0] == want


# ---------------------------------------------------------------------- RMSprop, Adagrad, Adadelta

@settings(max_examples=80, deadline=None)
@given(lr=st.floats(1e-4, 0.5), alpha=st.sampled_from([0.0, 0.4, 0.9, 0.99]),
       eps=st.sampled_from([1e-8, 1e-2]), weight_decay=st.sampled_from([0.0, 0.1]),
       momentum=st.sampled_from([0.0, 0.9]), centered=st.booleans(), **COMMON)
def test_rmsprop_is_the_numpy_twin_bitwise(shapes, dtype, lr, alpha, eps, weight_decay,
                                           momentum, centered, strided, maximize, seed):
    arrays = state(np.random.default_rng(seed), shapes, dtype, strided, 5, positive=(2,))

    def three_steps(params, grads, square_avgs, grad_avgs, bufs, steps):
        for _ in range(3):
            assert B.rmsprop_update(params, grads, square_avgs, steps, lr, alpha, eps,
                                    weight_decay, momentum, centered, grad_avgs, bufs,
                                    maximize) == []

    both(three_steps, arrays + [steps_for(shapes, np.float32)])


@settings(max_examples=60, deadline=None)
@given(lr=st.floats(1e-4, 1.0), lr_decay=st.sampled_from([0.0, 0.1]),
       weight_decay=st.sampled_from([0.0, 0.1]), eps=st.sampled_from([1e-10, 1e-3]),
       step_dtype=DTYPES, **COMMON)
def test_adagrad_is_the_numpy_twin_bitwise(shapes, dtype, lr, lr_decay, weight_decay, eps,
                                           step_dtype, strided, maximize, seed):
    arrays = state(np.random.default_rng(seed), shapes, dtype, strided, 3, positive=(2,))

    def three_steps(params, grads, sums, steps):
        for _ in range(3):
            assert B.adagrad_update(params, grads, sums, steps, lr, lr_decay, weight_decay,
                                    eps, maximize) == []

    both(three_steps, arrays + [steps_for(shapes, step_dtype)])


@settings(max_examples=60, deadline=None)
@given(lr=st.floats(1e-3, 2.0), rho=st.sampled_from([0.0, 0.5, 0.9, 1.0]),
       eps=st.sampled_from([1e-6, 1e-2]), weight_decay=st.sampled_from([0.0, 0.1]), **COMMON)
def test_adadelta_is_the_numpy_twin_bitwise(shapes, dtype, lr, rho, eps, weight_decay, strided,
                                            maximize, seed):
    arrays = state(np.random.default_rng(seed), shapes, dtype, strided, 4, positive=(2, 3))

    def three_steps(params, grads, square_avgs, acc_deltas, steps):
        for _ in range(3):
            assert B.adadelta_update(params, grads, square_avgs, acc_deltas, steps, lr, rho,
                                     eps, weight_decay, maximize) == []

    both(three_steps, arrays + [steps_for(shapes, np.float32)])


SPECIAL = [0.0, -0.0, 1.0, -1.5, np.inf, -np.inf, np.nan, 1e-40, -3e38, 6e-8]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values_agree_bitwise(dtype):
    # infinities, NaN, signed zeros and subnormals through every optimiser's arithmetic
    rng = np.random.default_rng(0)
    values = np.array(SPECIAL, dtype=dtype)
    p, g, a, b, c = (rng.choice(values, 257).astype(dtype) for _ in range(5))
    b, c = np.abs(b), np.abs(c)
    calls = [
        lambda p, g, a, b, c, s: B.sgd_update(p, g, 0.1, 0.9, 0.1, False, 0.01, a, [False],
                                              True),
        lambda p, g, a, b, c, s: B.adam_update(p, g, a, b, s, 0.01, 0.9, 0.999, 1e-8, 0.1,
                                               False, True, c, True),
        lambda p, g, a, b, c, s: B.rmsprop_update(p, g, b, s, 0.01, 0.99, 1e-8, 0.1, 0.9,
                                                  True, a, c, True),
        lambda p, g, a, b, c, s: B.adagrad_update(p, g, b, s, 0.1, 0.01, 0.1, 1e-10, True),
        lambda p, g, a, b, c, s: B.adadelta_update(p, g, b, c, s, 1.0, 0.9, 1e-6, 0.1, True),
    ]
    with np.errstate(all="ignore"):
        for call in calls:
            both(call, [[p], [g], [a], [b], [c], [np.zeros((), np.float32)]])


# ---------------------------------------------------------------------- refusals and errors

def test_both_backends_agree_on_an_fma_sensitive_update():
    # values where one rounding (a fused multiply-add) and numpy's two roundings differ
    rng = np.random.default_rng(1)
    p = rng.standard_normal(4096).astype(np.float32)
    g = rng.standard_normal(4096).astype(np.float32)
    fused = (p.astype(np.float64) - np.float64(np.float32(0.1)) * g).astype(np.float32)
    mine = p.copy()
    with B.using("cython"):
        B.sgd_update([mine], [g], 0.1)
    twin = p.copy()
    with B.using("numpy"):
        B.sgd_update([twin], [g], 0.1)
    assert np.array_equal(mine, twin)
    assert not np.array_equal(mine, fused)  # the case the -ffp-contract=off build is about


@pytest.mark.parametrize("name", ["cython", "numpy"])
@pytest.mark.parametrize("strided", [False, True])
def test_read_only_parameters_are_refused_and_left_untouched(name, strided):
    rng = np.random.default_rng(3)
    base = [rng.standard_normal((3, 8)) for _ in range(3)]
    params = [b[:, ::2] if strided else b[:, :4].copy() for b in base]
    params[1].setflags(write=False)
    grads = [np.ones_like(p) for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    steps = [np.zeros((), np.float32) for _ in params]
    before = [p.copy() for p in params]
    with B.using(name):
        refused = B.adam_update(params, grads, m, v, steps, 0.1, 0.9, 0.999, 1e-8)
    assert refused == [1]
    assert np.array_equal(params[1], before[1]) and steps[1] == 0
    assert not m[1].any() and not v[1].any()
    assert steps[0] == steps[2] == 1 and not np.array_equal(params[0], before[0])


def test_bad_pairs_are_refused_before_anything_is_written():
    p = np.ones(3, np.float32)
    with B.using("cython"):
        with pytest.raises(TypeError, match="must have its dtype"):
            B.sgd_update([p], [np.ones(3)], 0.1)
        with pytest.raises(ValueError, match="elements"):
            B.sgd_update([p], [np.ones(4, np.float32)], 0.1)
        with pytest.raises(ValueError, match="2 parameters but 1 gradients"):
            B.sgd_update([p, p], [p], 0.1)
        with pytest.raises(TypeError, match="step counter"):
            B.adam_update([p], [p.copy()], [p.copy()], [p.copy()], [np.zeros(2, np.float32)],
                          0.1, 0.9, 0.999, 1e-8)
        with pytest.raises(TypeError, match="float32 or float64"):
            B.adagrad_update([p], [p.copy()], [p.copy()], [np.zeros((), np.int64)], 0.1)
    assert p.tolist() == [1.0, 1.0, 1.0]


def test_identical_parameters_stay_identical_under_every_optimiser():
    import cygrad
    from cygrad import optim

    rng = np.random.default_rng(0)
    column = rng.standard_normal((5, 1)).astype(np.float32)
    makers = [
        lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        lambda p: optim.Adam(p, lr=0.01, weight_decay=0.01, amsgrad=True),
        lambda p: optim.AdamW(p, lr=0.01, maximize=True),
        lambda p: optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True, weight_decay=0.1),
        lambda p: optim.Adagrad(p, lr=0.1, lr_decay=0.01, weight_decay=0.1),
        lambda p: optim.Adadelta(p, weight_decay=0.1),
    ]
    for make in makers:
        w = cygrad.tensor(np.repeat(column, 37, axis=1), requires_grad=True)
        opt = make([w])
        for _ in range(5):
            w.grad = cygrad.tensor(np.repeat(rng.standard_normal((5, 1)).astype(np.float32), 37,
                                             axis=1))
            opt.step()
        assert np.array_equal(w.numpy(), np.repeat(w.numpy()[:, :1], 37, axis=1))
