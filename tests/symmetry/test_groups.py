"""tied_groups_of, tied_groups, effective_width and weight_layers on hand-made arrays and layers."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cygrad import nn
from cygrad.symmetry import effective_width, tied_groups, tied_groups_of, weight_layers

# ---------------------------------------------------------------- plain arrays


def test_distinct_rows_are_singletons():
    w = np.arange(12.0).reshape(4, 3)
    assert tied_groups_of(w) == [[0], [1], [2], [3]]


def test_equal_rows_group_in_order_of_their_first_unit():
    a, b, c = [1.0, 2.0], [3.0, 4.0], [5.0, 6.0]
    w = np.array([b, a, b, c, a, b])
    assert tied_groups_of(w) == [[0, 2, 5], [1, 4], [3]]


def test_a_constant_layer_is_one_group():
    assert tied_groups_of(np.full((1000, 5), 0.25, dtype=np.float32)) == [list(range(1000))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_ulp_is_a_difference(dtype):
    w = np.full((3, 4), 0.3, dtype=dtype)
    w[1, 2] = np.nextafter(w[1, 2], dtype(np.inf))
    assert tied_groups_of(w) == [[0, 2], [1]]
    b = np.zeros(3, dtype)
    b[2] = np.nextafter(dtype(0), dtype(1))  # the smallest subnormal
    assert tied_groups_of(np.ones((3, 2), dtype), b) == [[0, 1], [2]]


def test_bias_splits_equal_rows():
    w = np.ones((4, 2))
    assert tied_groups_of(w, np.array([0.1, 0.2, 0.1, 0.2])) == [[0, 2], [1, 3]]


def test_outgoing_columns_split_equal_rows():
    w, b = np.ones((3, 2)), np.zeros(3)
    outgoing = np.array([[1.0, 1.0, 1.0], [2.0, 5.0, 2.0]])  # (next, units)
    assert tied_groups_of(w, b, outgoing) == [[0, 2], [1]]
    assert tied_groups_of(w, b) == [[0, 1, 2]]


def test_outgoing_after_a_flatten_gives_each_unit_a_block_of_columns():
    # 3 channels of 2x2 pixels flattened: channel c owns columns 4c .. 4c+3
    filters = np.ones((3, 1, 2, 2))
    outgoing = np.tile(np.arange(4.0), (5, 3))  # (next=5, 3*4): every block equal
    assert tied_groups_of(filters, np.zeros(3), outgoing) == [[0, 1, 2]]
    outgoing[2, 4 + 3] += 1.0  # one column of channel 1's block
    assert tied_groups_of(filters, np.zeros(3), outgoing) == [[0, 2], [1]]
    outgoing = np.tile(np.arange(4.0), (5, 3))
    outgoing[0, 0], outgoing[0, 8] = 7.0, 7.0  # channels 0 and 2 changed alike
    assert tied_groups_of(filters, None, outgoing) == [[0, 2], [1]]


def test_blocks_are_owned_per_channel_not_interleaved():
    # block layout: unit 0 owns columns 0-1, unit 1 columns 2-3 (not 0, 2 and 1, 3)
    assert tied_groups_of(np.ones((2, 1)), None, np.array([[1.0, 1.0, 2.0, 2.0]])) == [[0], [1]]
    assert tied_groups_of(np.ones((2, 1)), None, np.array([[1.0, 2.0, 1.0, 2.0]])) == [[0, 1]]


def test_outgoing_of_a_conv_next_layer():
    # next layer a conv: outgoing (next_channels, units, kh, kw)
    outgoing = np.zeros((4, 3, 2, 2))
    outgoing[:, 1] = 1.0
    assert tied_groups_of(np.ones((3, 2, 3, 3)), np.ones(3), outgoing) == [[0, 2], [1]]


def test_negative_zero_counts_equal_to_zero():
    w = np.array([[0.0, 1.0], [-0.0, 1.0], [0.0, -1.0]])
    assert tied_groups_of(w) == [[0, 1], [2]]
    assert tied_groups_of(np.ones((2, 1)), np.array([-0.0, 0.0])) == [[0, 1]]
    outgoing = np.array([[0.0, -0.0], [-0.0, -0.0]])
    assert tied_groups_of(np.ones((2, 1)), np.zeros(2), outgoing) == [[0, 1]]
    w32 = np.array([[-0.0], [0.0]], dtype=np.float32)
    assert tied_groups_of(w32) == [[0, 1]]


def test_inputs_are_not_modified():
    w = np.array([[-0.0, 1.0], [0.0, 1.0]], dtype=np.float32)
    b = np.array([-0.0, 0.0], dtype=np.float32)
    tied_groups_of(w, b, np.ones((3, 2), np.float32))
    assert np.signbit(w[0, 0]) and np.signbit(b[0])


@pytest.mark.parametrize("shape", [(6,), (4, 5), (4, 4, 2)])
def test_outgoing_that_does_not_fit_raises(shape):
    with pytest.raises(ValueError, match="outgoing weights of shape"):
        tied_groups_of(np.ones((3, 2)), None, np.ones(shape))


def test_degenerate_sizes():
    assert tied_groups_of(np.ones((3, 0))) == [[0, 1, 2]]  # no inputs: nothing tells them apart
    assert tied_groups_of(np.ones((3, 2)), None, np.ones((0, 3))) == [[0, 1, 2]]  # no next units
    assert tied_groups_of(np.ones((0, 2))) == []


def test_works_on_lists():
    assert tied_groups_of([[1, 2], [1, 2], [0, 0]], [5, 5, 5]) == [[0, 1], [2]]


@st.composite
def layers(draw):
    """A small layer whose rows are drawn from few distinct values, so ties are common."""
    units = draw(st.integers(1, 8))
    n_in = draw(st.integers(1, 3))
    values = st.sampled_from([0.0, -0.0, 1.0, 0.5, np.nextafter(0.5, 1.0)])
    w = np.array(draw(st.lists(st.lists(values, min_size=n_in, max_size=n_in),
                               min_size=units, max_size=units)))
    b = np.array(draw(st.lists(values, min_size=units, max_size=units)))
    k = draw(st.integers(1, 2))
    nxt = draw(st.integers(1, 2))
    out = np.array(draw(st.lists(values, min_size=nxt * units * k, max_size=nxt * units * k)))
    return w, b, out.reshape(nxt, units * k), k


@settings(max_examples=200, deadline=None)
@given(layers())
def test_groups_match_a_pairwise_oracle(layer):
    """Units i, j share a group exactly when every value of theirs compares equal."""
    w, b, out, k = layer
    units = w.shape[0]
    blocks = out.reshape(out.shape[0], units, k)

    def same(i, j):
        return (np.array_equal(w[i], w[j]) and b[i] == b[j]
                and np.array_equal(blocks[:, i], blocks[:, j]))

    groups = tied_groups_of(w, b, out)
    assert sorted(itertools.chain(*groups)) == list(range(units))
    assert [g[0] for g in groups] == sorted(g[0] for g in groups)
    group_of = {u: n for n, g in enumerate(groups) for u in g}
    for i, j in itertools.combinations(range(units), 2):
        assert (group_of[i] == group_of[j]) == same(i, j), (i, j)


# ---------------------------------------------------------------- layers


def test_tied_groups_of_a_linear_layer_and_its_next():
    first, second = nn.Linear(2, 4, dtype="float64"), nn.Linear(4, 3, dtype="float64")
    first.weight.numpy()[...] = [[1, 2], [1, 2], [3, 4], [1, 2]]
    first.bias.numpy()[...] = [0, 0, 0, 1]
    second.weight.numpy()[...] = 0.5
    second.weight.numpy()[1, 1] = 0.25
    assert tied_groups(first) == [[0, 1], [2], [3]]
    assert effective_width(first) == 3
    assert tied_groups(first, second) == [[0], [1], [2], [3]]
    assert effective_width(first, second) == 4
    second.weight.numpy()[1, 1] = 0.5
    assert tied_groups(first, second) == [[0, 1], [2], [3]]


def test_a_layer_without_bias():
    layer = nn.Linear(3, 5, bias=False)
    layer.weight.numpy()[...] = 1.0
    assert tied_groups(layer) == [[0, 1, 2, 3, 4]]
    assert effective_width(layer) == 1


def test_conv_filters_with_a_flattened_linear_after_them():
    conv = nn.Conv2d(1, 3, 2, dtype="float64")  # 4x4 input -> 3 channels of 3x3
    head = nn.Linear(3 * 9, 2, dtype="float64")
    conv.weight.numpy()[2] = conv.weight.numpy()[0]
    conv.bias.numpy()[2] = conv.bias.numpy()[0]
    assert tied_groups(conv) == [[0, 2], [1]]
    assert effective_width(conv, head) == 3  # random outgoing blocks
    head.weight.numpy()[:, 18:27] = head.weight.numpy()[:, 0:9]
    assert tied_groups(conv, head) == [[0, 2], [1]]
    assert effective_width(conv, head) == 2


def test_random_init_has_no_ties():
    model = nn.Sequential(nn.Conv2d(2, 16, 3), nn.Flatten(), nn.Linear(16 * 4, 300),
                          nn.Tanh(), nn.Linear(300, 10))
    for layer in (model[0], model[2], model[4]):
        assert effective_width(layer) == layer.weight.shape[0]


def test_tied_groups_rejects_other_modules():
    with pytest.raises(TypeError, match="do not understand a Tanh layer"):
        tied_groups(nn.Tanh())
    with pytest.raises(TypeError, match="outgoing side of units into a ReLU"):
        effective_width(nn.Linear(2, 2), nn.ReLU())


def test_weight_layers_in_forward_order():
    inner = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 4), inner)
    names = [name for name, _ in weight_layers(model)]
    assert names == ["0", "3", "4.0", "4.2"]
    assert [layer for _, layer in weight_layers(model)] == [model[0], model[3], inner[0],
                                                              inner[2]]
    assert weight_layers(nn.Sequential(nn.Tanh())) == []
