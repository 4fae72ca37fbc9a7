"""The optimiser kernels (csrc/optim.pyx: backend.sgd_update, backend.adam_update) against their
numpy twins, bitwise, for every option, layout and dtype, over several steps; strided pairs
fall back to numpy; bad pairs are refused before any write."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cygrad
from cygrad import backend as B

pytestmark = pytest.mark.skipif("cython" not in B.available(), reason="cython backend not built")


def numpy_update(params, grads, lr):
    for p, g in zip(params, grads, strict=True):
        p -= p.dtype.type(lr) * g


@settings(max_examples=60, deadline=None)
@given(shapes=st.lists(st.tuples(st.integers(0, 9), st.integers(1, 40)), min_size=0, max_size=5),
       dtype=st.sampled_from([np.float32, np.float64]),
       lr=st.floats(1e-4, 3.0), strided=st.booleans(), seed=st.integers(0, 2**16))
def test_sgd_update_is_numpys_update_bitwise(shapes, dtype, lr, strided, seed):
    rng = np.random.default_rng(seed)
    params, grads = [], []
    for rows, cols in shapes:
        p = rng.standard_normal((rows, 2 * cols)).astype(dtype)
        g = rng.standard_normal((rows, 2 * cols)).astype(dtype)
        params.append(p[:, ::2] if strided else p[:, :cols].copy())
        grads.append(g[:, ::2] if strided else g[:, :cols].copy())
    expected = [p.copy() for p in params]
    numpy_update(expected, grads, lr)
    with B.using("cython"):
        B.sgd_update(params, grads, lr)
    for got, want in zip(params, expected, strict=True):
        assert np.array_equal(got, want)


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


def test_bad_pairs_are_refused_before_anything_is_written():
    p = np.ones(3, np.float32)
    with B.using("cython"):
        with pytest.raises(TypeError, match="must have its dtype"):
            B.sgd_update([p], [np.ones(3)], 0.1)
        with pytest.raises(ValueError, match="elements"):
            B.sgd_update([p], [np.ones(4, np.float32)], 0.1)
        with pytest.raises(ValueError, match="2 parameters but 1 gradients"):
            B.sgd_update([p, p], [p], 0.1)
        frozen = np.ones(3, np.float32)
        frozen.setflags(write=False)
        with pytest.raises(ValueError, match="read-only"):
            B.sgd_update([frozen], [np.ones(3, np.float32)], 0.1)
    assert p.tolist() == [1.0, 1.0, 1.0]


def _state(rng, shapes, dtype, strided):
    """Parameters, gradients and two state arrays per shape (strided views or C arrays)."""
    out = []
    for rows, cols in shapes:
        arrays = []
        for scale in (1.0, 1.0, 0.1, 0.01):
            a = (rng.standard_normal((rows, 2 * cols)) * scale).astype(dtype)
            arrays.append(a[:, ::2] if strided else a[:, :cols].copy())
        arrays[3] = np.abs(arrays[3])  # a second moment is never negative
        out.append(arrays)
    return [list(column) for column in zip(*out, strict=True)] if out else [[], [], [], []]


def _both(update, arrays):
    """update(arrays) on the cython and on the numpy backend, each on its own copies."""
    results = []
    for name in ("cython", "numpy"):
        mine = [[a.copy() for a in column] for column in arrays]
        with B.using(name):
            update(*mine)
        results.append(mine)
    return results


@settings(max_examples=60, deadline=None)
@given(shapes=st.lists(st.tuples(st.integers(0, 6), st.integers(1, 40)), max_size=4),
       dtype=st.sampled_from([np.float32, np.float64]), lr=st.floats(1e-4, 2.0),
       momentum=st.sampled_from([0.0, 0.5, 0.9]), dampening=st.sampled_from([0.0, 0.3]),
       nesterov=st.booleans(), weight_decay=st.sampled_from([0.0, 1e-2, 0.3]),
       strided=st.booleans(), seed=st.integers(0, 2**16))
def test_sgd_with_options_is_the_numpy_twin_bitwise(shapes, dtype, lr, momentum, dampening,
                                                     nesterov, weight_decay, strided, seed):
    nesterov = nesterov and momentum > 0 and dampening == 0
    params, grads, bufs, _ = _state(np.random.default_rng(seed), shapes, dtype, strided)

    def three_steps(params, grads, bufs, _):
        for step in range(3):
            B.sgd_update(params, grads, lr, momentum, dampening, nesterov, weight_decay,
                         bufs if momentum else None, [step == 0] * len(params))

    cython, numpy = _both(three_steps, [params, grads, bufs, bufs])
    for got, want in zip(cython[0] + cython[2], numpy[0] + numpy[2], strict=True):
        assert np.array_equal(got, want)


@settings(max_examples=60, deadline=None)
@given(shapes=st.lists(st.tuples(st.integers(0, 6), st.integers(1, 40)), max_size=4),
       dtype=st.sampled_from([np.float32, np.float64]), lr=st.floats(1e-4, 0.5),
       beta1=st.sampled_from([0.0, 0.3, 0.6, 0.9]), beta2=st.sampled_from([0.9, 0.999]),
       eps=st.sampled_from([1e-8, 1e-3]), weight_decay=st.sampled_from([0.0, 1e-2]),
       decoupled=st.booleans(), strided=st.booleans(), seed=st.integers(0, 2**16))
def test_adam_is_the_numpy_twin_bitwise(shapes, dtype, lr, beta1, beta2, eps, weight_decay,
                                        decoupled, strided, seed):
    arrays = _state(np.random.default_rng(seed), shapes, dtype, strided)

    def three_steps(params, grads, exp_avgs, exp_avg_sqs):
        for t in (1, 2, 3):
            n = len(params)
            B.adam_update(params, grads, exp_avgs, exp_avg_sqs, [lr / (1 - beta1**t)] * n,
                          [(1 - beta2**t) ** 0.5] * n, beta1, beta2, eps,
                          0.0 if decoupled else weight_decay,
                          1 - lr * weight_decay if decoupled and weight_decay else None)

    cython, numpy = _both(three_steps, arrays)
    for got, want in zip(sum(cython, []), sum(numpy, []), strict=True):
        assert np.array_equal(got, want)


def test_identical_parameters_stay_identical_under_every_optimiser():
    from cygrad import optim
    from cygrad.tensor import Tensor

    rng = np.random.default_rng(0)
    column = rng.standard_normal((5, 1)).astype(np.float32)
    for make in (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
                 lambda p: optim.Adam(p, lr=0.01, weight_decay=0.01),
                 lambda p: optim.AdamW(p, lr=0.01)):
        w = Tensor(np.repeat(column, 37, axis=1), requires_grad=True)
        opt = make([w])
        for _ in range(5):
            g = np.repeat(rng.standard_normal((5, 1)).astype(np.float32), 37, axis=1)
            w.grad = cygrad.tensor(g)
            opt.step()
        assert np.array_equal(w.numpy(), np.repeat(w.numpy()[:, :1], 37, axis=1))
