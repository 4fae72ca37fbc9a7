"""The monitor's training diagnostics on constructed cases: all saturated, all dead, no update."""

import numpy as np

import cygrad
from cygrad import nn, optim
from cygrad.symmetry import SymmetryMonitor, activation_health, update_ratio


def test_activation_health_on_constructed_outputs():
    assert activation_health(np.full((4, 3), 0.99), nn.Tanh) == {"saturated": 1.0}
    assert activation_health(np.array([[0.5, -0.99]]), nn.Tanh) == {"saturated": 0.5}
    assert activation_health(np.array([[0.01, 0.5, 0.999]]), nn.Sigmoid) == {"saturated": 2 / 3}
    # unit 0 is zero on every sample (dead), unit 1 fires once
    relu_out = np.array([[0.0, 0.0], [0.0, 2.0]])
    assert activation_health(relu_out, nn.ReLU) == {"dead": 0.5}
    conv_out = np.zeros((2, 3, 4, 4))
    conv_out[1, 2, 0, 0] = 1.0
    assert activation_health(conv_out, nn.ReLU) == {"dead": 2 / 3}


def test_update_ratio():
    w = np.array([[1.0, -1.0], [1.0, -1.0]])
    assert update_ratio(w, w) == 0.0
    assert update_ratio(w, w * 1.5) == 0.5
    assert update_ratio(np.zeros(3), np.zeros(3)) is None


def _train(model, x, y, lr, steps=2):
    monitor = SymmetryMonitor(model, health_every=1)  # measured at every step
    opt = monitor.attach(optim.SGD(model.parameters(), lr=lr))
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return monitor


def test_an_all_saturated_tanh_layer():
    cygrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 2))
    nn.init.constant_(model[0].weight, 50.0)  # |pre-activation| >> 1 everywhere
    x = cygrad.tensor([[1.0, 1.0], [-1.0, -2.0]])
    monitor = _train(model, x, [0, 1], lr=0.01)
    assert monitor.history[-1]["layers"]["0"]["saturated"] == 1.0
    assert "saturated 100%" in monitor.report()


def test_an_all_dead_relu_layer():
    cygrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
    nn.init.constant_(model[0].weight, 0.0)
    nn.init.constant_(model[0].bias, -1.0)  # every unit below zero on every input
    monitor = _train(model, cygrad.tensor([[1.0, 1.0], [-1.0, -2.0]]), [0, 1], lr=0.1)
    entry = monitor.history[-1]["layers"]["0"]
    assert entry["dead"] == 1.0
    # dead units pass no gradient: the first layer never moves
    assert entry["grads"]["weight"]["status"] == "zero" and entry["update_ratio"] is None


def test_a_zero_learning_rate_gives_a_zero_update_ratio():
    cygrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 2))
    monitor = _train(model, cygrad.tensor([[1.0, 1.0], [-1.0, -2.0]]), [0, 1], lr=0.0)
    assert all(monitor.history[-1]["layers"][n]["update_ratio"] == 0.0 for n in ("0", "2"))
    assert "update/data 0.00e+00" in monitor.report()
