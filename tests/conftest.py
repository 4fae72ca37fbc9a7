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
