"""Memory: a graph is freed by reference counting alone as soon as the user drops its output,
and a long training run does not grow the resident set.

The long run is the MNIST-size MLP (784-256-128-10, batch 64, ReLU, cross-entropy, SGD,
float32): 200 warm-up steps, then 10,000 steps (about 25 s on one thread of the 2-core
development machine) during which the resident set (/proc/self/statm, the current RSS, not the
peak that getrusage reports) must grow by less than 5 MB. It runs on one thread: memory does not
depend on the thread count, and two threads on a shared 2-core machine can be many times slower.
CYGRAD_LEAK_STEPS overrides the number of steps.
"""

import gc
import os
import time
import weakref

import numpy as np
import pytest

import cygrad
from cygrad import nn
from cygrad.nn import functional as F

LEAK_STEPS = int(os.environ.get("CYGRAD_LEAK_STEPS", "10000"))
WARMUP_STEPS = 200


@pytest.fixture
def no_gc():
    """Only reference counting frees objects inside the test: a cycle would leak."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def mlp():
    cygrad.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 16), nn.Tanh(),
                         nn.Linear(16, 5))


def batch(n=8):
    rng = np.random.default_rng(0)
    return cygrad.tensor(rng.standard_normal((n, 20)).astype(np.float32)), rng.integers(0, 5, n)


def test_graph_freed_after_backward_when_output_dropped(no_gc):
    model = mlp()
    x, y = batch()
    hidden = model[1](model[0](x))  # an intermediate tensor of the graph
    out = model[4](model[3](model[2](hidden)))
    loss = F.cross_entropy(out, y)
    hidden_ref, op_ref = weakref.ref(hidden), weakref.ref(out._op)
    del hidden
    loss.backward()
    assert hidden_ref() is not None  # still reachable from out through the graph
    assert all(p.grad is not None for p in model.parameters())
    del loss, out
    assert hidden_ref() is None, "an intermediate tensor outlived its graph"
    assert op_ref() is None, "an op (and the arrays it saved) outlived its graph"
    for p in model.parameters():  # no array stays locked by a dead graph
        assert p.numpy().flags.writeable


def test_graph_freed_without_backward(no_gc):
    model = mlp()
    x, y = batch()
    hidden = model[0](x).relu()
    loss = F.cross_entropy(model[4](model[3](model[2](hidden))), y)
    ref = weakref.ref(hidden)
    del hidden, loss
    assert ref() is None
    for p in model.parameters():
        assert p.numpy().flags.writeable


def test_graph_freed_with_retained_graph_and_reuse(no_gc):
    x = cygrad.tensor(np.ones((4, 3)), requires_grad=True)
    h = (x * 2).tanh()
    out = (h * h + h).sum()  # h used three times
    ref = weakref.ref(h)
    out.backward(retain_graph=True)
    out.backward()
    del h
    assert ref() is not None
    del out
    assert ref() is None
    np.testing.assert_allclose(x.grad, 2 * 2 * (2 * np.tanh(2) + 1) * (1 - np.tanh(2) ** 2))


def test_optimizer_state_does_not_hold_graphs(no_gc):
    model = mlp()
    opt = cygrad.optim.Adam(model.parameters(), lr=1e-3)
    x, y = batch()
    refs = []
    for _ in range(3):
        out = model(x)
        refs.append(weakref.ref(out))
        opt.zero_grad()
        F.cross_entropy(out, y).backward()
        opt.step()
        del out
    assert all(r() is None for r in refs)


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_no_growth_over_long_training():
    cygrad.set_num_threads(1)  # restored by conftest
    cygrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                          nn.Linear(128, 10))
    opt = cygrad.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64 * 16, 784)).astype(np.float32)
    Y = rng.integers(0, 10, 64 * 16)

    def step(i):
        j = (i % 16) * 64
        opt.zero_grad()
        loss = F.cross_entropy(model(cygrad.tensor(X[j:j + 64])), Y[j:j + 64])
        loss.backward()
        opt.step()
        return loss

    for i in range(WARMUP_STEPS):
        step(i)
    gc.collect()
    start, began = rss_bytes(), time.perf_counter()
    peak = start
    for i in range(LEAK_STEPS):
        loss = step(i)
        if i % 500 == 0:
            peak = max(peak, rss_bytes())
    gc.collect()
    growth = rss_bytes() - start
    seconds = time.perf_counter() - began
    print(f"{LEAK_STEPS} steps in {seconds:.1f} s; RSS grew {growth / 2**20:.2f} MB "
          f"(peak {(peak - start) / 2**20:.2f} MB above the start)")
    assert np.isfinite(loss.item())
    assert growth < 5 * 2**20, f"RSS grew by {growth / 2**20:.1f} MB over {LEAK_STEPS} steps"


def test_a_detached_result_does_not_keep_the_graph_alive():
    """`keep.append(loss.detach())` must not hold the loss's graph (torch's does not): the
    tensor it was detached from dies with its last reference (no cycle collection needed)."""
    x = cygrad.randn(50, 50, requires_grad=True)
    y = x.tanh().exp()
    alive = weakref.ref(y)
    kept, data = y.detach(), y.data
    gc.disable()
    try:
        del y
        assert alive() is None
    finally:
        gc.enable()
    assert kept.shape == data.shape == (50, 50)
