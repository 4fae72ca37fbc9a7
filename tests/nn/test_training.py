"""Real training: an MLP fits the two spirals (>= 97% training accuracy) and a small conv net the
bars-and-crosses images (>= 95%), each in a few seconds, on both backends."""

import time

import numpy as np
import pytest

import cygrad
from cygrad import data, nn, optim
from cygrad.nn import functional as F

TIME_LIMIT = 30.0  # seconds; a few on an idle 2-core machine, the margin is for a busy one


def fit(model, opt, X, y, epochs, batch_size):
    """Mini-batch training with cross-entropy; returns (training accuracy in eval mode, seconds)."""
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        for xb, yb in data.batches(X, y, batch_size, seed=epoch):
            loss = F.cross_entropy(model(cygrad.tensor(xb)), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with cygrad.no_grad():
        accuracy = float((model(cygrad.tensor(X)).numpy().argmax(axis=1) == y).mean())
    return accuracy, time.perf_counter() - start


def test_mlp_fits_the_spirals(backend):
    X, y = data.spirals(400, n_classes=2, noise=0.2, seed=0)
    cygrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(),
                          nn.Linear(64, 2))
    accuracy, seconds = fit(model, optim.Adam(model.parameters(), lr=0.02), X, y,
                            epochs=100, batch_size=64)
    print(f"spirals MLP on {backend}: training accuracy {accuracy:.4f} in {seconds:.2f} s")
    assert accuracy >= 0.97
    assert seconds < TIME_LIMIT


def test_conv_net_fits_bars_and_crosses(backend):
    X, y = data.bars_and_crosses(600, size=8, noise=0.1, seed=0)
    assert X.shape == (600, 1, 8, 8)
    cygrad.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Dropout(0.1), nn.Linear(8 * 4 * 4, 3))
    accuracy, seconds = fit(model, optim.Adam(model.parameters(), lr=0.01), X, y,
                            epochs=6, batch_size=32)
    print(f"conv net on {backend}: training accuracy {accuracy:.4f} in {seconds:.2f} s")
    assert accuracy >= 0.95
    assert seconds < TIME_LIMIT


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_seed_same_training_bits(dtype):
    """Initialisation, batches and dropout masks all come from seeds: two runs agree bitwise."""
    X, y = data.spirals(64, seed=1, dtype=dtype)
    runs = []
    for _ in range(2):
        cygrad.manual_seed(3)
        model = nn.Sequential(nn.Linear(2, 8, dtype=dtype), nn.ReLU(), nn.Dropout(0.2),
                              nn.Linear(8, 2, dtype=dtype))
        fit(model, optim.SGD(model.parameters(), lr=0.1, momentum=0.9), X, y, epochs=3,
            batch_size=16)
        runs.append([p.numpy() for p in model.parameters()])
    assert all(np.array_equal(a, b) for a, b in zip(*runs))
