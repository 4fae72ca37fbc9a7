"""Shared test setup: every test starts on the default backend, dtype and thread count."""

import numpy as np
import pytest

import cygrad

BACKENDS = [b for b in ("cython", "numpy") if b in cygrad.backend.available()]
DTYPES = [np.float32, np.float64]


@pytest.fixture(autouse=True)
def _restore_defaults():
    backend, threads = cygrad.backend.current(), cygrad.get_num_threads()
    dtype = cygrad.get_default_dtype()
    yield
    cygrad.backend.use(backend)
    cygrad.set_num_threads(threads)
    cygrad.set_default_dtype(dtype)


@pytest.fixture(params=BACKENDS)
def backend(request):
    with cygrad.backend.using(request.param):
        yield request.param


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    return np.dtype(request.param)


def pytest_report_header(config):
    return f"cygrad backends: {', '.join(cygrad.backend.available())}"


@pytest.fixture
def parallel_small(monkeypatch):
    """Every kernel's size thresholds lowered, so that small arrays given 2 threads run down
    the parallel paths (a kernel opens an OpenMP region only for work of ~100 µs otherwise)."""
    try:
        from cygrad._C import conv, elementwise, gemm, loss, pool, reduce
    except ImportError:
        pytest.skip("the compiled kernels are not built")
    monkeypatch.setattr(gemm, "serial_macs", 0)
    monkeypatch.setattr(gemm, "program_serial_macs", 0)
    monkeypatch.setattr(elementwise, "cheap_serial_below", 1)
    monkeypatch.setattr(elementwise, "costly_serial_below", 1)
    monkeypatch.setattr(reduce, "serial_below", 1)
    monkeypatch.setattr(conv, "serial_below", 0)
    monkeypatch.setattr(pool, "serial_below", 0)
    old = loss.set_serial_below(0)
    yield
    loss.set_serial_below(old)
