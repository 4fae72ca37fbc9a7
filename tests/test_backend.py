"""Switching backends and threads: per thread, as PyTorch's modes are."""

import threading

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


def test_threads_accepts_any_positive_count_and_reports_it():
    cygrad.set_num_threads(100_000)  # torch accepts it too; the kernels cap what they use
    assert cygrad.get_num_threads() == 100_000
    cygrad.set_num_threads(2.0)
    assert cygrad.get_num_threads() == 2
    for bad in (True, "2", None):
        with pytest.raises((TypeError, ValueError)):
            cygrad.set_num_threads(bad)


# ---------------------------------------------------------------------- per-thread state

def in_thread(fn):
    """fn() in a new thread; its result (or exception) back here."""
    out = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as exc:  # pragma: no cover - re-raised below
            out["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def test_a_thread_starts_from_the_process_defaults():
    backend.use("numpy")  # the main thread sets the defaults
    cygrad.set_num_threads(3)
    assert in_thread(lambda: (backend.current(), cygrad.get_num_threads())) == ("numpy", 3)


def test_a_setter_in_another_thread_changes_that_thread_only():
    def worker():
        backend.use("numpy")
        cygrad.set_num_threads(5)
        return backend.current(), cygrad.get_num_threads()

    before = cygrad.get_num_threads()
    assert in_thread(worker) == ("numpy", 5)
    assert backend.current() == "cython" and cygrad.get_num_threads() == before
    assert in_thread(lambda: (backend.current(), cygrad.get_num_threads())) == ("cython", before)


def test_a_thread_with_its_own_choice_keeps_it_when_the_defaults_change():
    chose, defaults_changed, seen = threading.Event(), threading.Event(), {}

    def worker():
        backend.use("numpy")
        chose.set()
        defaults_changed.wait(10)
        seen["own"] = backend.current()

    def bystander():
        chose.wait(10)
        defaults_changed.wait(10)
        seen["default"] = backend.current()

    threads = [threading.Thread(target=worker), threading.Thread(target=bystander)]
    for t in threads:
        t.start()
    chose.wait(10)
    backend.use("cython")  # main thread: the default, which the worker has overridden
    cygrad.set_num_threads(1)
    defaults_changed.set()
    for t in threads:
        t.join()
    assert seen == {"own": "numpy", "default": "cython"}


def test_overlapping_using_blocks_in_two_threads_restore_their_own_state():
    # The defect: thread A enters using("numpy"), B enters, A leaves (restoring "cython" for
    # everyone), B leaves (restoring "numpy" for everyone): the process stayed on numpy.
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a():
        with backend.using("numpy"):
            a_in.set()
            b_in.wait(10)
            seen["a inside"] = backend.current()
        a_out.set()
        seen["a after"] = backend.current()

    def b():
        a_in.wait(10)
        with backend.using("numpy"):
            b_in.set()
            a_out.wait(10)
            seen["b inside"] = backend.current()
        seen["b after"] = backend.current()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"a inside": "numpy", "a after": "cython", "b inside": "numpy",
                    "b after": "cython"}
    assert backend.current() == "cython"


def test_using_restores_having_no_value_of_its_own():
    # A thread that used `using` and left it follows the defaults again, not a frozen copy.
    left, default_set, seen = threading.Event(), threading.Event(), {}

    def worker():
        with backend.using("cython"):
            pass
        left.set()
        default_set.wait(10)
        seen["after"] = backend.current()

    t = threading.Thread(target=worker)
    t.start()
    left.wait(10)
    backend.use("numpy")
    default_set.set()
    t.join()
    assert seen["after"] == "numpy"


def test_use_inside_using_in_the_main_thread_lasts_until_the_block_ends():
    with backend.using("numpy"):
        backend.use("cython")  # the default and this thread's value
        assert backend.current() == "cython"
        assert in_thread(backend.current) == "cython"
    assert backend.current() == "cython"


def test_ops_in_each_thread_run_on_that_threads_backend(monkeypatch):
    from cygrad.backend import cython_backend, numpy_backend

    calls = []
    for module in (cython_backend, numpy_backend):
        real = module.column_sum
        monkeypatch.setattr(module, "column_sum",
                            lambda g, n, real=real, name=module.__name__: (
                                calls.append((threading.get_ident(), name)), real(g, n))[1])
    g = np.ones((4, 3), np.float32)
    start = threading.Barrier(2)

    def worker():
        with backend.using("numpy"):
            start.wait(10)
            for _ in range(50):
                backend.column_sum(g)
        return threading.get_ident()

    t = threading.Thread(target=lambda: calls.append(("worker", worker())))
    t.start()
    start.wait(10)
    for _ in range(50):
        backend.column_sum(g)
    t.join()
    worker_id = next(c[1] for c in calls if c[0] == "worker")
    main_id = threading.get_ident()
    kernels = [c for c in calls if c[0] != "worker"]
    assert {name for tid, name in kernels if tid == worker_id} == {numpy_backend.__name__}
    assert {name for tid, name in kernels if tid == main_id} == {cython_backend.__name__}


# ---------------------------------------------------------------------- arguments

@pytest.mark.parametrize("call, argument", [
    (lambda: backend.gemm(None, np.ones((2, 2))), "a"),
    (lambda: backend.gemm(np.ones((2, 2)), [[1.0]]), "b"),
    (lambda: backend.activation_forward("tanh", None), "x"),
    (lambda: backend.activation_backward("tanh", np.ones(2), None), "saved"),
    (lambda: backend.bias_add(np.ones((2, 2)), None), "b"),
    (lambda: backend.bias_add(np.ones((2, 2)), np.ones(2), out=[0]), "out"),
    (lambda: backend.bias_activation("relu", None, np.ones(2)), "z"),
    (lambda: backend.activation_backward_bias("relu", np.ones((2, 2)), None), "saved"),
    (lambda: backend.column_sum(None), "g"),
    (lambda: backend.row_sum(None), "g"),
    (lambda: backend.sum(None, (0,)), "x"),
    (lambda: backend.channel_sum(None), "g"),
    (lambda: backend.sum_to_shape(None, (1,)), "g"),
    (lambda: backend.log_softmax_nll(None, [0]), "logits"),
    (lambda: backend.log_softmax_nll_backward(np.zeros((1, 2)), [0], None), "g_rows"),
    (lambda: backend.im2col(None, 1, 1), "x"),
    (lambda: backend.col2im(None, (1, 1, 2, 2), 1, 1), "cols"),
    (lambda: backend.im2col_t(None, 1, 1), "x"),
    (lambda: backend.col2im_t(None, (1, 1, 2, 2), 1, 1), "cols_t"),
    (lambda: backend.planes_to_images(None, None, 1, 1), "planes"),
])
def test_an_argument_that_is_not_an_array_is_named(call, argument):
    with pytest.raises(TypeError, match=f"argument '{argument}' must be a numpy array"):
        call()


@pytest.mark.parametrize("axes", [(1, 0), (0, 0), (2,), (-1,), [0], (0.0,), 0])
def test_sum_axes_must_be_a_sorted_tuple_of_axes(axes):
    with pytest.raises((TypeError, ValueError), match="axes"):
        backend.sum(np.ones((2, 3)), axes)


def test_unaligned_and_byte_swapped_arrays_are_read_through_copies(backend, dtype):
    raw = np.zeros(6 * 5 * dtype.itemsize + 1, np.uint8)
    x = np.frombuffer(raw.data, dtype, count=30, offset=1).reshape(6, 5)
    assert not x.flags.aligned
    x[...] = np.arange(30).reshape(6, 5) / 7
    ref = np.array(x)
    w = np.linspace(-1, 1, 10).astype(dtype).reshape(5, 2)
    assert np.array_equal(cygrad.backend.gemm(x, w), cygrad.backend.gemm(ref, w))
    if cygrad.backend.has_kernel("tanh", x):
        assert np.array_equal(cygrad.backend.activation_forward("tanh", x),
                              cygrad.backend.activation_forward("tanh", ref))
    assert np.array_equal(cygrad.backend.sum(x, (0,)), cygrad.backend.sum(ref, (0,)))
    out = np.frombuffer(np.zeros(x.nbytes + 1, np.uint8).data, dtype, count=30,
                        offset=1).reshape(6, 5)
    b = np.ones(5, dtype)
    assert cygrad.backend.bias_add(ref, b, out=out) is out
    assert np.array_equal(out, ref + b)


def test_bias_add_into_an_out_that_overlaps_x_gives_numpys_result(backend, dtype):
    buf = np.arange(40, dtype=dtype).reshape(8, 5) / 3
    x, out = buf[:6], buf[2:]  # out starts two rows down: rows would shift under the loop
    b = np.linspace(1, 2, 5).astype(dtype)
    expected = np.add(x.copy(), b)
    assert cygrad.backend.bias_add(x, b, out=out) is out
    assert np.array_equal(out, expected)
    z = np.arange(30, dtype=dtype).reshape(6, 5)
    cygrad.backend.bias_add(z, z[3], out=z)  # b is a row of out: read before it changes
    assert np.array_equal(z, np.arange(30, dtype=dtype).reshape(6, 5)
                          + np.arange(15, 20, dtype=dtype))


@pytest.mark.parametrize("env, expected", [
    ({"OMP_NUM_THREADS": "1"}, 1), ({"OMP_NUM_THREADS": "3,2"}, 3),
    ({"OMP_NUM_THREADS": "9999"}, None),
    ({"OMP_NUM_THREADS": "1", "CYGRAD_NUM_THREADS": "2"}, 2),
    ({"OMP_NUM_THREADS": "junk"}, None), ({}, None)])
def test_default_threads_follow_omp_num_threads_as_torchs(env, expected):
    """torch's intra-op threads are OpenMP's: OMP_NUM_THREADS=1 python train.py runs it on one
    thread; cygrad's default follows it (before: every core, whatever OMP_NUM_THREADS said)."""
    import os
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items()
             if k not in ("OMP_NUM_THREADS", "CYGRAD_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", "import cygrad; print(cygrad.get_num_threads())"],
                         env={**clean, **env}, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    cores = os.cpu_count()
    if "CYGRAD_NUM_THREADS" not in env and expected:
        expected = min(expected, cores)  # torch takes at most one a core from OMP_NUM_THREADS
    assert int(out.stdout) == (expected or cores)
