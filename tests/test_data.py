"""cygrad.data: shapes, dtypes, balance, determinism, difficulty of each task; batches."""

import numpy as np
import pytest

import cygrad
from cygrad import data

TASKS = {
    "spirals": (data.spirals, {}, 2, (2,)),
    "spirals3": (data.spirals, {"n_classes": 3}, 3, (2,)),
    "moons": (data.moons, {}, 2, (2,)),
    "xor": (data.xor, {}, 2, (2,)),
    "blobs": (data.blobs, {"n_features": 5, "n_classes": 4}, 4, (5,)),
    "bars_and_crosses": (data.bars_and_crosses, {"size": 6}, 3, (1, 6, 6)),
}


def linear_accuracy(X, y):
    """Training accuracy of a least-squares linear classifier (one-hot targets, with bias)."""
    A = np.c_[X.reshape(len(X), -1).astype(np.float64), np.ones(len(X))]
    W = np.linalg.lstsq(A, np.eye(y.max() + 1)[y], rcond=None)[0]
    return np.mean((A @ W).argmax(1) == y)


def logistic_accuracy(X, y, steps=3000, lr=0.5):
    """Training accuracy of multinomial logistic regression fitted by gradient descent."""
    A = np.c_[X.reshape(len(X), -1).astype(np.float64), np.ones(len(X))]
    Y = np.eye(y.max() + 1)[y]
    W = np.zeros((A.shape[1], Y.shape[1]))
    for _ in range(steps):
        Z = A @ W
        P = np.exp(Z - Z.max(1, keepdims=True))
        P /= P.sum(1, keepdims=True)
        W -= lr * A.T @ (P - Y) / len(y)
    return np.mean((A @ W).argmax(1) == y)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("n", [1, 7, 200])
def test_shapes_dtypes_balance(task, n):
    fn, kwargs, k, feature_shape = TASKS[task]
    X, y = fn(n, **kwargs)
    assert X.shape == (n, *feature_shape) and y.shape == (n,)
    assert X.dtype == cygrad.get_default_dtype() and y.dtype == np.int64
    counts = np.bincount(y, minlength=k)
    assert len(counts) == k and counts.max() - counts.min() <= 1
    assert np.all(np.isfinite(X))


@pytest.mark.parametrize("task", TASKS)
def test_dtype_keyword_rounds_the_float64_data(task):
    fn, kwargs, _, _ = TASKS[task]
    X64, y64 = fn(50, dtype="float64", **kwargs)
    X32, y32 = fn(50, dtype=np.float32, **kwargs)
    assert X64.dtype == np.float64 and X32.dtype == np.float32
    assert np.array_equal(X64.astype(np.float32), X32) and np.array_equal(y64, y32)
    with pytest.raises(TypeError):
        fn(50, dtype="int32", **kwargs)


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_same_bits_other_seed_differs(task):
    fn, kwargs, _, _ = TASKS[task]
    X1, y1 = fn(seed=3, **kwargs)
    X2, y2 = fn(seed=3, **kwargs)
    X3, _ = fn(seed=4, **kwargs)
    assert np.array_equal(X1, X2) and np.array_equal(y1, y2)
    assert not np.array_equal(X1, X3)


def test_seed_none_uses_cygrad_generator():
    cygrad.manual_seed(9)
    a = data.moons(seed=None)[0]
    b = data.moons(seed=None)[0]
    cygrad.manual_seed(9)
    assert not np.array_equal(a, b) and np.array_equal(a, data.moons(seed=None)[0])


def test_samples_are_shuffled():
    _, y = data.spirals(100)
    assert 0 < np.count_nonzero(np.diff(y)) and not np.all(y[:50] == 0)


@pytest.mark.parametrize("task", ["spirals", "spirals3", "xor"])
def test_not_linearly_separable(task):
    fn, kwargs, _, _ = TASKS[task]
    X, y = fn(**kwargs)
    assert linear_accuracy(X, y) < 0.8
    assert logistic_accuracy(X, y) < 0.85


def test_moons_are_nearly_but_not_quite_linear():
    X, y = data.moons(noise=0.0)
    assert 0.7 < logistic_accuracy(X, y) < 1.0


def test_blobs_are_separable_when_tight():
    X, y = data.blobs(cluster_std=0.1)
    assert linear_accuracy(X, y) == 1.0


def test_bars_and_crosses_images():
    X, y = data.bars_and_crosses(60, size=8, noise=0.0)
    rows = (X[:, 0] == 1).all(axis=2).sum(axis=1)  # number of full rows in each image
    cols = (X[:, 0] == 1).all(axis=1).sum(axis=1)
    assert np.array_equal(rows, (y != 1).astype(int)) and np.array_equal(cols, (y != 0).astype(int))
    assert set(np.unique(X)) == {0.0, 1.0}
    assert data.BARS_AND_CROSSES_CLASSES[2] == "cross"


def test_bars_and_crosses_hard_for_a_linear_model_on_held_out_images():
    X, y = data.bars_and_crosses(300)
    Xt, yt = data.bars_and_crosses(300, seed=1)
    A = np.c_[X.reshape(len(X), -1).astype(np.float64), np.ones(len(X))]
    W = np.linalg.lstsq(A, np.eye(3)[y], rcond=None)[0]
    At = np.c_[Xt.reshape(len(Xt), -1).astype(np.float64), np.ones(len(Xt))]
    assert np.mean((At @ W).argmax(1) == yt) < 0.85


def test_bars_and_crosses_learnable_by_a_small_conv_net():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a net this small only loses time to thread hand-offs
    X, y = (torch.tensor(a) for a in data.bars_and_crosses(200))
    Xt, yt = (torch.tensor(a) for a in data.bars_and_crosses(500, seed=1))
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Flatten(), torch.nn.Linear(4 * 64, 3))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    try:
        for _ in range(100):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(X), y).backward()
            opt.step()
        with torch.no_grad():
            accuracy = (net(Xt).argmax(1) == yt).float().mean().item()
    finally:
        torch.set_num_threads(threads)
    assert accuracy > 0.95


# ---------------------------------------------------------------------- batches

@pytest.mark.parametrize("n, batch_size", [(10, 3), (9, 3), (5, 8), (1, 1)])
@pytest.mark.parametrize("shuffle", [True, False])
def test_batches_cover_every_sample_once(n, batch_size, shuffle):
    X = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    y = np.arange(n)
    got = list(data.batches(X, y, batch_size, shuffle=shuffle, seed=0))
    sizes = [len(yb) for _, yb in got]
    assert sizes == [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    order = np.concatenate([yb for _, yb in got])
    assert sorted(order) == list(range(n))
    assert all(np.array_equal(Xb, X[yb]) for Xb, yb in got)
    if not shuffle:
        assert np.array_equal(order, np.arange(n))


def test_batches_shuffle_is_seeded():
    X = data.blobs(100)[0]

    def order(**kwargs):
        return np.concatenate([yb for _, yb in data.batches(X, np.arange(100), 10, **kwargs)])

    assert np.array_equal(order(seed=1), order(seed=1))
    assert not np.array_equal(order(seed=1), order(seed=2))
    cygrad.manual_seed(5)
    a = order()
    cygrad.manual_seed(5)
    assert np.array_equal(a, order()) and not np.array_equal(a, np.arange(100))


@pytest.mark.parametrize("seed", [None, 0, 7])
@pytest.mark.parametrize("shuffle", [True, False])
def test_batches_are_torch_dataloaders_batches(seed, shuffle):
    """One epoch of DataLoader(TensorDataset(X, y), batch_size, shuffle, generator): the same
    batches, and the same draws from the shared stream (its state afterwards)."""
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, TensorDataset
    X, y = data.blobs(50, seed=0)
    torch.manual_seed(11)
    cygrad.manual_seed(11)
    for epoch in range(2):
        g = None if seed is None else torch.Generator().manual_seed(seed + epoch)
        loader = DataLoader(TensorDataset(torch.tensor(X), torch.tensor(y)), batch_size=8,
                            shuffle=shuffle, generator=g)
        theirs = [yb.numpy() for _, yb in loader]
        ours = [yb for _, yb in data.batches(X, y, 8, shuffle, None if seed is None
                                             else seed + epoch)]
        assert all(np.array_equal(a, b) for a, b in zip(theirs, ours, strict=True))
        assert np.array_equal(torch.get_rng_state().numpy(), cygrad.random.get_rng_state())


def test_seed_none_tasks_draw_from_cygrads_stream():
    cygrad.manual_seed(4)
    before = cygrad.random.get_rng_state()
    data.spirals(30, seed=None)
    assert not np.array_equal(before, cygrad.random.get_rng_state())
    data.spirals(30, seed=3)  # an explicit seed leaves the stream alone
    after = cygrad.random.get_rng_state()
    data.spirals(30, seed=3)
    assert np.array_equal(after, cygrad.random.get_rng_state())


# ---------------------------------------------------------------------- bad arguments

@pytest.mark.parametrize("call", [
    lambda: data.spirals(0),
    lambda: data.spirals(10, n_classes=1),
    lambda: data.spirals(10, noise=-0.1),
    lambda: data.spirals(2.5),
    lambda: data.spirals(True),
    lambda: data.moons(-3),
    lambda: data.moons(10, noise=float("nan")),
    lambda: data.xor(0),
    lambda: data.blobs(10, n_features=0),
    lambda: data.blobs(10, cluster_std=-1),
    lambda: data.bars_and_crosses(10, size=2),
    lambda: data.moons(10, seed=-1),
    lambda: data.batches(np.zeros((4, 2)), np.zeros(4), 0),
    lambda: data.batches(np.zeros((4, 2)), np.zeros(3), 2),
])
def test_bad_arguments_raise(call):
    with pytest.raises(ValueError):
        call()
