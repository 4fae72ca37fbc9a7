"""Optimiser steps from several threads while other threads run forwards over the same
parameters (issue 14, item 9): never a spurious "read-only" error, never a lost update.

A forward that records a graph locks the parameter arrays its backward will read; a step that
meets a locked array updates a copy instead (copy-on-write). Before, the writability check and
the kernel's write were two steps, and a lock taken in between made step() raise "buffer source
array is read-only"; two optimisers over shared parameters could also drop each other's update.
"""

import sys
import threading

import numpy as np
import pytest

import cygrad
from cygrad import optim


@pytest.fixture
def fast_switching():
    """Switch threads every microsecond: the race needs a switch between two bytecodes."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def hammer(params, x, stop, errors):
    """Forwards that lock the parameters' arrays, keeping a few graphs alive at a time."""
    graphs = []
    try:
        while not stop.is_set():
            graphs.append(sum((x * p).sum() for p in params))
            if len(graphs) > 3:
                graphs.pop(0)
    except Exception as err:  # noqa: BLE001 -- reported by the test
        errors.append(err)


def run(make, steppers=2, steps=1500, hammers=2, n=257):
    params = [cygrad.tensor(np.zeros(n), requires_grad=True),
              cygrad.tensor(np.zeros((3, n)), requires_grad=True)]
    for p in params:
        p.grad = cygrad.tensor(np.ones(p.shape))  # lr 1: each SGD step subtracts exactly 1
    x = cygrad.tensor(np.ones(n))
    stop, errors = threading.Event(), []

    def stepping(opt):
        try:
            for _ in range(steps):
                opt.step()
        except Exception as err:  # noqa: BLE001 -- reported by the test
            errors.append(err)

    opts = [make(params) for _ in range(steppers)]
    threads = [threading.Thread(target=hammer, args=(params, x, stop, errors))
               for _ in range(hammers)]
    workers = [threading.Thread(target=stepping, args=(opt,)) for opt in opts]
    for t in threads + workers:
        t.start()
    for t in workers:
        t.join()
    stop.set()
    for t in threads:
        t.join()
    assert not errors, f"{len(errors)} errors, the first: {errors[0]!r}"
    return params, opts


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_concurrent_sgd_steps_all_land(fast_switching, backend):
    if backend not in cygrad.backend.available():
        pytest.skip("cython backend not built")
    with cygrad.backend.using(backend):
        params, _ = run(lambda ps: optim.SGD(ps, lr=1.0), steppers=2, steps=1500)
    for p in params:  # 2 optimisers x 1500 steps, every one applied exactly once
        assert np.all(p.numpy() == -3000.0)


def test_concurrent_adam_steps_never_fail(fast_switching):
    params, opts = run(lambda ps: optim.Adam(ps, lr=1e-3, amsgrad=True), steppers=3,
                       steps=600)
    for opt in opts:
        for p in params:
            assert opt.state[p]["step"].item() == 600
    for p in params:
        assert np.all(np.isfinite(p.numpy())) and np.all(p.numpy() < 0)
