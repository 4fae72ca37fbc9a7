"""The exactness contract through the layers: identical conv filters (with equal outgoing columns
in the next Linear layer) give bitwise identical output channels and weight gradients, and stay
tied under training, on the Cython backend, in both dtypes and at 1 and 2 threads."""

import numpy as np
import pytest

import cygrad
from cygrad import nn, optim
from cygrad.nn import functional as F

pytestmark = pytest.mark.skipif("cython" not in cygrad.backend.available(),
                                reason="the exact backend is not built")

I, J = 1, 4  # filter J starts as a copy of filter I
CHANNELS, SIZE = 6, 8
PIXELS = (SIZE // 2) ** 2  # per channel after Conv2d(padding=1) and MaxPool2d(2)


def tied_net(dtype, tie_outgoing=True):
    cygrad.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, CHANNELS, 3, padding=1, dtype=dtype), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(CHANNELS * PIXELS, 3, dtype=dtype))
    conv, linear = net[0], net[4]
    conv.weight.numpy()[J] = conv.weight.numpy()[I]
    conv.bias.numpy()[J] = conv.bias.numpy()[I]
    if tie_outgoing:  # channel c owns Flatten's features c*PIXELS ... (c+1)*PIXELS - 1
        linear.weight.numpy()[:, J * PIXELS:(J + 1) * PIXELS] = (
            linear.weight.numpy()[:, I * PIXELS:(I + 1) * PIXELS])
    return net


def batch(dtype, n=5, seed=0):
    rng = np.random.default_rng(seed)
    return (cygrad.tensor(rng.standard_normal((n, 2, SIZE, SIZE)), dtype=dtype),
            rng.integers(0, 3, n))


def on_cython(threads):
    cygrad.backend.use("cython")  # the conftest fixture restores backend and threads
    cygrad.set_num_threads(threads)


def columns(array, c):
    return array[:, c * PIXELS:(c + 1) * PIXELS]


@pytest.mark.parametrize("threads", [1, 2])
def test_identical_filters_give_identical_channels_and_gradients(dtype, threads,
                                                               parallel_small):
    on_cython(threads)
    net = tied_net(dtype)
    x, y = batch(dtype)
    hidden = net[0](x)
    assert np.array_equal(hidden.numpy()[:, I], hidden.numpy()[:, J])
    assert not np.array_equal(hidden.numpy()[:, I], hidden.numpy()[:, I + 1])
    F.cross_entropy(net(x), y).backward()
    conv, linear = net[0], net[4]
    assert conv.weight.grad.dtype == dtype
    assert np.array_equal(conv.weight.grad[I], conv.weight.grad[J])
    assert np.array_equal(conv.bias.grad[I], conv.bias.grad[J])
    assert np.array_equal(columns(linear.weight.grad, I), columns(linear.weight.grad, J))
    assert not np.array_equal(conv.weight.grad[I], conv.weight.grad[I + 1])


@pytest.mark.parametrize("threads", [1, 2])
def test_identical_filters_stay_tied_under_training(dtype, threads, parallel_small):
    on_cython(threads)
    net = tied_net(dtype)
    opt = optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    for step in range(5):
        x, y = batch(dtype, n=8, seed=step)
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    conv, linear = net[0], net[4]
    assert np.array_equal(conv.weight.numpy()[I], conv.weight.numpy()[J])
    assert np.array_equal(conv.bias.numpy()[I], conv.bias.numpy()[J])
    assert np.array_equal(columns(linear.weight.numpy(), I), columns(linear.weight.numpy(), J))
    assert not np.array_equal(conv.weight.numpy()[I], conv.weight.numpy()[I + 1])


def test_different_outgoing_columns_separate_the_filters(dtype):
    on_cython(1)
    net = tied_net(dtype, tie_outgoing=False)
    x, y = batch(dtype)
    F.cross_entropy(net(x), y).backward()
    assert not np.array_equal(net[0].weight.grad[I], net[0].weight.grad[J])


def test_results_do_not_depend_on_thread_count(dtype):
    results = []
    for threads in (1, 2):
        on_cython(threads)
        net = tied_net(dtype)
        x, y = batch(dtype, n=9)
        out = net(x)
        F.cross_entropy(out, y).backward()
        results.append([out.numpy()] + [p.grad for p in net.parameters()])
    for a, b in zip(*results):
        assert np.array_equal(a, b)


def test_a_sample_gets_the_same_bits_alone_or_in_a_batch(dtype):
    on_cython(2)
    net = tied_net(dtype)
    x, _ = batch(dtype, n=7)
    together = net(x).numpy()
    alone = net(x[3:4]).numpy()
    assert np.array_equal(together[3:4], alone)
