"""S5 with epsilon = 0, bitwise on the cython backend: a filter copied onto another (with equal
outgoing weights) stays equal to it over training, with any stride and padding, in both dtypes
and on 1 and 2 threads; plus thread and batch invariance of a whole conv net."""

import numpy as np
import pytest
from symmetry_helpers import THREADS, all_rows_distinct, exact, params, step

import cygrad
from cygrad import nn, optim, tensor
from cygrad.symmetry import effective_width, tied_groups

SIZE = 10  # bars_and_crosses images: (N, 1, 10, 10), 3 classes
GEOMETRIES = [(1, 0), (2, 1), (1, 2), (3, 0)]  # (stride, padding)
I, J = 1, 6  # filter J starts as a copy of filter I


def out_size(stride, padding, kernel=3):
    return (SIZE + 2 * padding - kernel) // stride + 1


def conv_net(stride, padding, dtype, two_convs=False):
    """Conv2d(1, 8) -> ReLU [-> Conv2d(8, 16) -> ReLU] -> Flatten -> Linear(..., 3)."""
    side = out_size(stride, padding)
    layers = [nn.Conv2d(1, 8, 3, stride=stride, padding=padding, dtype=dtype), nn.ReLU()]
    channels = 8
    if two_convs:  # the second conv's gemms are large enough to run on two threads
        layers += [nn.Conv2d(8, 16, 3, padding=1, dtype=dtype), nn.ReLU()]
        channels = 16
    layers += [nn.Flatten(), nn.Linear(channels * side * side, 3, dtype=dtype)]
    return nn.Sequential(*layers)


def tie_filters(model, outgoing=True):
    """Copy filter I onto filter J; with `outgoing`, make the next layer listen to both alike."""
    conv, nxt = model[0], model[2] if isinstance(model[2], nn.Conv2d) else model[-1]
    conv.weight.numpy()[J] = conv.weight.numpy()[I]
    conv.bias.numpy()[J] = conv.bias.numpy()[I]
    if not outgoing:
        return
    if isinstance(nxt, nn.Conv2d):
        nxt.weight.numpy()[:, J] = nxt.weight.numpy()[:, I]
    else:  # flattened: channel c owns the block of columns c*k .. (c+1)*k - 1
        k = nxt.in_features // conv.out_channels
        nxt.weight.numpy()[:, J * k:(J + 1) * k] = nxt.weight.numpy()[:, I * k:(I + 1) * k]


def filters_tied(model):
    conv = model[0]
    return (np.array_equal(conv.weight.numpy()[I], conv.weight.numpy()[J])
            and conv.bias.numpy()[I] == conv.bias.numpy()[J])


def data(dtype, n=64):
    X, y = cygrad.data.bars_and_crosses(n, size=SIZE, seed=0, dtype=dtype)
    return tensor(X), y


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("two_convs", [False, True], ids=["conv-linear", "conv-conv-linear"])
@pytest.mark.parametrize("stride,padding", GEOMETRIES)
def test_s5_copied_filters_stay_bitwise_equal(stride, padding, two_convs, dtype, threads):
    cygrad.manual_seed(stride * 10 + padding)
    model = conv_net(stride, padding, dtype, two_convs)
    tie_filters(model)
    conv = model[0]
    start = conv.weight.numpy().copy()
    x, y = data(dtype)
    with exact(threads):
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        for s in range(1, 61):
            step(model, opt, nn.functional.cross_entropy, x, y)
            assert filters_tied(model), f"step {s}: filters {I} and {J} separated"
    nxt = model[2] if two_convs else model[-1]
    groups = tied_groups(conv, nxt)
    assert [I, J] in groups and len(groups) == 7, "the other filters should stay distinct"
    others = [u for u in range(8) if u != J]
    assert all_rows_distinct(conv.weight.numpy()[others])
    moved = (conv.weight.numpy() != start).reshape(8, -1).any(axis=1)
    assert moved.sum() >= 6, "the filters hardly learnt"  # a dead ReLU filter may not move


@pytest.mark.parametrize("two_convs", [False, True], ids=["conv-linear", "conv-conv-linear"])
@pytest.mark.parametrize("stride,padding", GEOMETRIES[:2])
def test_s5_copied_filters_with_different_outgoing_weights_separate(stride, padding, two_convs,
                                                                     dtype):
    cygrad.manual_seed(7)
    model = conv_net(stride, padding, dtype, two_convs)
    tie_filters(model, outgoing=False)
    assert effective_width(model[0]) == 7
    x, y = data(dtype)
    with exact(2):
        step(model, optim.SGD(model.parameters(), lr=0.1), nn.functional.cross_entropy, x, y)
    assert not filters_tied(model)
    assert effective_width(model[0]) == 8


def train_conv(dtype, threads, steps=30):
    cygrad.manual_seed(11)
    model = conv_net(1, 1, dtype, two_convs=True)
    x, y = data(dtype)
    with exact(threads):
        opt = optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(steps):
            step(model, opt, nn.functional.cross_entropy, x, y)
    return model


def test_a_conv_training_run_is_the_same_on_1_and_2_threads(dtype):
    one, two = (params(train_conv(dtype, t)) for t in THREADS)
    for p, q in zip(one, two):
        assert np.array_equal(p, q)


@pytest.mark.parametrize("threads", THREADS)
def test_a_conv_net_gives_a_sample_the_same_bits_alone_and_in_any_batch(dtype, threads):
    model = train_conv(dtype, threads, steps=3)
    X, _ = cygrad.data.bars_and_crosses(37, size=SIZE, seed=1, dtype=dtype)
    with exact(threads), cygrad.no_grad():
        full = model(tensor(X)).numpy()
        for i in (0, 5, 36):
            assert np.array_equal(model(tensor(X[i:i + 1])).numpy(), full[i:i + 1]), f"sample {i}"
        assert np.array_equal(model(tensor(X[4:30])).numpy(), full[4:30])
