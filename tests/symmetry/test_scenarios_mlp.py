"""S1-S4 and S6 on MLPs: every outcome the scenarios mark "Exact", asserted bitwise on the cython
backend, at hidden widths 7, 100, 257 and 1000, in float32 and float64, on 1 and 2 threads.

Batches are chosen per width so that batch * width crosses the size where the elementwise kernels
start a second thread (and gemm tails are hit): with 2 threads every kernel really runs split.
"""

import numpy as np
import pytest
from symmetry_helpers import (
    ACTIVATIONS,
    OPTIMIZERS,
    THREADS,
    WIDTHS,
    all_columns_equal,
    all_rows_distinct,
    all_rows_equal,
    exact,
    linears,
    mlp,
    params,
    set_constant,
    step,
    steps_for,
    task,
)

import cygrad
from cygrad import nn, optim, tensor
from cygrad.symmetry import SymmetryMonitor, effective_width

BATCH = {7: 29, 100: 330, 257: 130, 1000: 40}


def hidden_sizes(width):
    """Three hidden layers where cheap; two at width 1000 (still one 1000 x 1000 layer)."""
    return [width] * (2 if width == 1000 else 3)


def assert_one_unit_per_layer(model, where):
    """S1's generalisation: every hidden layer has one distinct unit (rows and biases equal),
    every layer after the first has all its columns equal."""
    layers = linears(model)
    for k, layer in enumerate(layers):
        w = layer.weight.numpy()
        if k < len(layers) - 1:
            assert all_rows_equal(w), f"{where}: hidden layer {k} rows differ"
            assert all_rows_equal(layer.bias.numpy()), f"{where}: hidden layer {k} biases differ"
        if k > 0:
            assert all_columns_equal(w), f"{where}: layer {k} columns differ"


# ---------------------------------------------------------------- S1: the 2-2-2-1 network

X_S1 = np.array([[1.0, -0.5], [0.3, 0.8], [-1.2, 0.4], [0.6, 0.2]])
T_S1 = np.array([[0.5], [-0.3], [0.8], [0.1]])


def named_weights(model):
    """(w1, ..., w10) in the scenario's names; W1 = [[w1, w3], [w2, w4]] in PyTorch's layout."""
    w1, w2, w3 = (layer.weight.numpy() for layer in linears(model))
    return np.array([w1[0, 0], w1[1, 0], w1[0, 1], w1[1, 1],
                     w2[0, 0], w2[1, 0], w2[0, 1], w2[1, 1], w3[0, 0], w3[0, 1]])


def train_two_two_two_one(a, dtype, objective, steps, lr):
    model = set_constant(mlp([2, 2, 2, 1], "identity", bias=False, dtype=dtype), a)
    opt = optim.SGD(model.parameters(), lr=lr)
    x, t = tensor(X_S1, dtype=dtype), tensor(T_S1, dtype=dtype)
    history = [named_weights(model)]
    for _ in range(steps):
        out = model(x)
        loss = out.sum() if objective == "output" else nn.functional.mse_loss(out, t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(named_weights(model))
    return np.array(history)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("objective,a,lr,steps", [("mse", 0.5, 0.05, 300),
                                                  ("mse", -1.25, 0.01, 300),
                                                  ("output", 0.5, 0.01, 40)])
def test_s1_each_layer_of_the_2_2_2_1_net_acts_as_one_unit(dtype, threads, objective, a, lr,
                                                           steps):
    with exact(threads):
        w = train_two_two_two_one(a, dtype, objective, steps, lr)
    assert np.isfinite(w).all()
    assert np.array_equal(w[:, 0], w[:, 1]), "w1 != w2"
    assert np.array_equal(w[:, 2], w[:, 3]), "w3 != w4"
    for k in (5, 6, 7):
        assert np.array_equal(w[:, 4], w[:, k]), f"w5 != w{k + 1}"
    assert np.array_equal(w[:, 8], w[:, 9]), "w9 != w10"
    assert (w[1:, 0] != w[1:, 2]).all(), "w1 == w3 although x1 != x2"
    assert not np.array_equal(w[-1], w[0]), "nothing was learnt"


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("objective", ["mse", "output"])
def test_s1_with_a_zero_no_weight_ever_changes(dtype, threads, objective):
    with exact(threads):
        w = train_two_two_two_one(0.0, dtype, objective, 100, 0.1)
    assert (w == 0).all()


# ---------------------------------------------------------------- S1 generalised, S6 exact


def train_constant(width, dtype, threads, steps, activation="tanh", loss="cross_entropy",
                   optimizer="momentum", batch=None):
    """A constant-per-layer MLP (weights 0.5 / fan_in, biases 0.1) trained `steps` steps;
    asserts one distinct unit per hidden layer after every step."""
    n_out = 1 if loss == "bce" else 2
    model = mlp([3, *hidden_sizes(width), n_out], activation, dtype=dtype)
    set_constant(model, lambda layer: 0.5 / layer.in_features, 0.1)
    x, target, loss_fn = task(loss, batch or BATCH[width], 3, n_out, dtype)
    before = params(model)
    with exact(threads):
        opt = OPTIMIZERS[optimizer](model.parameters())
        for s in range(1, steps + 1):
            step(model, opt, loss_fn, x, target)
            assert_one_unit_per_layer(model, f"step {s}")
    assert all(np.isfinite(p).all() for p in params(model))
    for k, (p, q) in enumerate(zip(params(model)[::2], before[::2])):
        assert not np.array_equal(p, q), f"the weights of layer {k} never changed"
    return model


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("width", WIDTHS)
def test_s1_s6_constant_tanh_mlp_keeps_one_unit_per_layer(width, dtype, threads):
    """S1 generalised, and S6: the exact backend never separates a constant-initialised tanh
    MLP (where PyTorch and numpy + OpenBLAS do)."""
    train_constant(width, dtype, threads, steps_for(width, threads))


@pytest.mark.parametrize("loss", ["mse", "cross_entropy", "bce"])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_s1_any_activation_any_loss(activation, loss, dtype):
    train_constant(100, dtype, 1, 60, activation, loss, optimizer="sgd", batch=37)


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_s1_any_activation_on_2_threads(activation, dtype):
    """Width 257, batch 130: the activation kernels themselves run on two threads."""
    train_constant(257, dtype, 2, 10, activation, "cross_entropy", optimizer="sgd")


@pytest.mark.parametrize("width", [7, 257])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_s1_any_optimizer(optimizer, width, dtype):
    train_constant(width, dtype, 1, 40, "tanh", "mse", optimizer)


def rounding_prone_mlp(width, dtype):
    """The measured case where numpy + OpenBLAS splits (test_monitor.py): 2-w-w-1 tanh,
    weights 0.3 in the first layer and 1/in_features after, biases 0.1."""
    model = mlp([2, width, width, 1], "tanh", dtype=dtype)
    return set_constant(model, lambda layer: 0.3 if layer.in_features == 2
                        else 1 / layer.in_features, 0.1)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("width", WIDTHS)
def test_s6_exact_backend_never_splits_where_blas_does(width, dtype, threads):
    """Few steps: this learning rate makes the wide nets diverge after about five."""
    for batch in (32, 64):
        model = rounding_prone_mlp(width, dtype)
        X, y = cygrad.data.spirals(batch, seed=0, dtype=dtype)
        x, t = tensor(X), tensor(y.reshape(-1, 1).astype(dtype))
        with exact(threads):
            monitor = SymmetryMonitor(model)
            opt = monitor.attach(optim.SGD(model.parameters(), lr=0.5))
            for _ in range(4):
                step(model, opt, nn.functional.mse_loss, x, t)
        assert all(np.isfinite(p).all() for p in params(model))
        assert monitor.splits == []
        for name, _ in monitor.layers[:-1]:
            assert monitor.widths(name) == [1] * 5
            assert [len(h["layers"][name]["tied"]) for h in monitor.history] == [1] * 5
        assert_one_unit_per_layer(model, "end")


# ---------------------------------------------------------------- S2: all-zero initialisation


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("activation", ["tanh", "relu", "identity"])
def test_s2_zero_init_only_the_output_bias_learns(activation, width, dtype, threads):
    model = set_constant(mlp([3, *hidden_sizes(width), 2], activation, dtype=dtype), 0.0)
    x, target, loss_fn = task("mse", BATCH[width], 3, 2, dtype)
    layers = linears(model)
    output_bias = [layers[-1].bias.numpy().copy()]
    with exact(threads):
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
        for _ in range(max(3, steps_for(width, threads) // 4)):
            step(model, opt, loss_fn, x, target)
            output_bias.append(layers[-1].bias.numpy().copy())
            for layer in layers:
                assert (layer.weight.numpy() == 0).all()
            for layer in layers[:-1]:
                assert (layer.bias.numpy() == 0).all()
    changes = [not np.array_equal(a, b) for a, b in zip(output_bias, output_bias[1:])]
    assert all(changes[:5]), "the output bias did not learn"


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_s2_zero_init_with_any_optimizer(optimizer, dtype):
    model = set_constant(mlp([3, 7, 7, 2], "tanh", dtype=dtype), 0.0)
    x, target, loss_fn = task("cross_entropy", 29, 3, 2, dtype)
    with exact(2):
        opt = OPTIMIZERS[optimizer](model.parameters())
        for _ in range(50):
            step(model, opt, loss_fn, x, target)
    *hidden, out = linears(model)
    assert all((layer.weight.numpy() == 0).all() for layer in [*hidden, out])
    assert all((layer.bias.numpy() == 0).all() for layer in hidden)
    assert (out.bias.numpy() != 0).all()


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("width", WIDTHS)
def test_s2_sigmoid_zero_init_learns_as_one_unit(width, dtype, threads):
    model = set_constant(mlp([3, *hidden_sizes(width), 2], "sigmoid", dtype=dtype), 0.0)
    x, target, loss_fn = task("cross_entropy", BATCH[width], 3, 2, dtype)
    with exact(threads):
        opt = optim.SGD(model.parameters(), lr=0.5)
        for s in range(1, max(3, steps_for(width, threads) // 3) + 1):
            step(model, opt, loss_fn, x, target)
            assert_one_unit_per_layer(model, f"step {s}")
    assert all((layer.weight.numpy() != 0).any() for layer in linears(model))


# ---------------------------------------------------------------- S3: the gradient wavefront


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("depth,threads", [(3, 2), (4, 1), (6, 1), (6, 2)])
def test_s3_gradient_moves_back_one_layer_per_step(depth, width, dtype, threads):
    model = mlp([3] + [width] * (depth - 1) + [2], "tanh", dtype=dtype)
    layers = linears(model)
    rng = np.random.default_rng(width)
    for layer in layers:
        layer.weight.numpy()[...] = 0.0
        layer.bias.numpy()[...] = rng.uniform(-1, 1, layer.bias.shape)
    x, target, loss_fn = task("cross_entropy", BATCH[width], 3, 2, dtype)
    with exact(threads):
        monitor = SymmetryMonitor(model)
        # Each layer's first gradient is about the product of those of the layers above it:
        # with a small learning rate the front underflows float32 before it reaches layer 1.
        opt = monitor.attach(optim.SGD(model.parameters(), lr=2.0))
        for s in range(1, depth + 2):  # one step past the front
            out = model(x).numpy()
            if s <= depth:  # the first layer's weights are still zero
                assert all_rows_equal(out), f"step {s}: inputs give different outputs"
            step(model, opt, loss_fn, x, target)
            grads = monitor.history[-1]["layers"]
            for k, (name, _) in enumerate(monitor.layers, start=1):
                expected = "nonzero" if k >= depth - s + 1 else "zero"
                assert grads[name]["grads"]["weight"]["status"] == expected, (s, name)
    names = [name for name, _ in monitor.layers]
    assert monitor.first_nonzero_grad == {name: depth - k for k, name in enumerate(names)}
    assert (layers[0].weight.numpy() != 0).all()


# ---------------------------------------------------------------- S4: partial symmetry


def tie_units(model, layer_index, i, j, outgoing=True):
    """Copy unit i's incoming row and bias onto unit j (and its outgoing column, if asked)."""
    layers = linears(model)
    layer, nxt = layers[layer_index], layers[layer_index + 1]
    layer.weight.numpy()[j] = layer.weight.numpy()[i]
    layer.bias.numpy()[j] = layer.bias.numpy()[i]
    if outgoing:
        nxt.weight.numpy()[:, j] = nxt.weight.numpy()[:, i]
    else:
        assert not np.array_equal(nxt.weight.numpy()[:, j], nxt.weight.numpy()[:, i])


def pair_tied(model, layer_index, i, j):
    layers = linears(model)
    layer, nxt = layers[layer_index], layers[layer_index + 1]
    return (np.array_equal(layer.weight.numpy()[i], layer.weight.numpy()[j])
            and layer.bias.numpy()[i] == layer.bias.numpy()[j]
            and np.array_equal(nxt.weight.numpy()[:, i], nxt.weight.numpy()[:, j]))


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("width", WIDTHS)
def test_s4_tied_units_stay_tied_while_the_others_evolve(width, dtype, threads):
    cygrad.manual_seed(4)
    model = mlp([3, width, width, 2], "tanh", dtype=dtype)
    pairs = [(0, 1, width - 1), (1, width // 2, 2)]  # (layer, i, j): unit j copies unit i
    for layer_index, i, j in pairs:
        tie_units(model, layer_index, i, j)
    hidden = linears(model)[:2]
    start = [layer.weight.numpy().copy() for layer in hidden]
    x, target, loss_fn = task("cross_entropy", BATCH[width], 3, 2, dtype)
    with exact(threads):
        opt = optim.SGD(model.parameters(), lr=0.2, momentum=0.5)
        for s in range(1, steps_for(width, threads) + 1):
            step(model, opt, loss_fn, x, target)
            for pair in pairs:
                assert pair_tied(model, *pair), f"step {s}: pair {pair} separated"
    for (layer_index, _, j), layer, w0 in zip(pairs, hidden, start):
        assert effective_width(layer) == width - 1, "other units became equal"
        others = np.delete(np.arange(width), j)
        moved = (layer.weight.numpy()[others] != w0[others]).any(axis=1)
        assert moved.all(), f"layer {layer_index}: {np.sum(~moved)} units did not learn"


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("width", WIDTHS)
def test_s4_different_outgoing_columns_separate_at_step_1(width, dtype, threads):
    cygrad.manual_seed(5)
    model = mlp([3, width, width, 2], "tanh", dtype=dtype)
    tie_units(model, 0, 2, 5, outgoing=False)
    tie_units(model, 1, 3, 0, outgoing=False)
    hidden = linears(model)[:2]
    assert [effective_width(layer) for layer in hidden] == [width - 1] * 2
    x, target, loss_fn = task("mse", BATCH[width], 3, 2, dtype)
    with exact(threads):
        step(model, optim.SGD(model.parameters(), lr=0.1), loss_fn, x, target)
    for layer, (i, j) in zip(hidden, [(2, 5), (3, 0)]):
        assert not np.array_equal(layer.weight.numpy()[i], layer.weight.numpy()[j])
        assert layer.bias.numpy()[i] != layer.bias.numpy()[j]
        assert effective_width(layer) == width


# ---------------------------------------------------------------- S6: what breaks symmetry


@pytest.mark.parametrize("width", WIDTHS)
def test_s6_dropout_separates_tied_units_at_step_1(width, dtype):
    cygrad.manual_seed(6)
    model = mlp([3, width, width, 2], "tanh", dtype=dtype, dropout=0.5)
    set_constant(model, lambda layer: 0.5 / layer.in_features, 0.1)
    # MSE: with cross-entropy and a constant output layer the hidden error sums to ~0 at step 1
    x, target, loss_fn = task("mse", BATCH[width], 3, 2, dtype)
    with exact(2):
        step(model, optim.SGD(model.parameters(), lr=0.1), loss_fn, x, target)
    for layer in linears(model)[:-1]:
        assert effective_width(layer) > 1


@pytest.mark.parametrize("width", WIDTHS)
def test_s6_random_init_no_two_units_equal(width, dtype):
    cygrad.manual_seed(width)
    model = mlp([3, width, width, 2], "tanh", dtype=dtype)
    for layer in linears(model):
        assert all_rows_distinct(layer.weight.numpy())
        assert effective_width(layer) == layer.out_features


# ---------------------------------------------------------------- threads and batches


def train_random(width, dtype, threads, steps):
    cygrad.manual_seed(width)
    model = mlp([3, width, width, 2], "tanh", dtype=dtype)
    x, target, loss_fn = task("cross_entropy", BATCH[width], 3, 2, dtype)
    with exact(threads):
        opt = optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(steps):
            step(model, opt, loss_fn, x, target)
    return model


@pytest.mark.parametrize("width", WIDTHS)
def test_a_training_run_is_the_same_on_1_and_2_threads(width, dtype):
    steps = steps_for(width, 2) // 2
    one, two = (params(train_random(width, dtype, t, steps)) for t in (1, 2))
    for p, q in zip(one, two):
        assert np.array_equal(p, q)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("width", WIDTHS)
def test_a_sample_gives_the_same_bits_alone_and_in_any_batch(width, dtype, threads):
    model = train_random(width, dtype, threads, 3)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((BATCH[width] + 3, 3)).astype(dtype)
    with exact(threads), cygrad.no_grad():
        full = model(tensor(X)).numpy()
        for i in (0, 1, 8, len(X) // 2, len(X) - 1):
            assert np.array_equal(model(tensor(X[i:i + 1])).numpy(), full[i:i + 1]), f"sample {i}"
        for lo, hi in [(0, 7), (3, 36), (5, len(X))]:
            assert np.array_equal(model(tensor(X[lo:hi])).numpy(), full[lo:hi]), (lo, hi)
        shuffled = rng.permutation(len(X))
        assert np.array_equal(model(tensor(X[shuffled])).numpy(), full[shuffled])
