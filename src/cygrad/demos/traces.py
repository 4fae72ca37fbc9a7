"""One training step of each scenario, small enough that its backward trace shows every number.

`python -m cygrad trace [scenario]` prints it; S1's trace lets a reader check the hand
derivation ∂y/∂w9 = y3, ∂y/∂w5 = w9·y1, ∂y/∂w1 = (w9·w5 + w10·w6)·x1.
"""

import numpy as np

from .. import data, nn, tensor
from ..nn import functional as F
from ..random import manual_seed
from . import mlp, set_constant


def s1_network(a=0.5, dtype="float32"):
    """The 2-2-2-1 net of S1: no biases, identity activation, every weight a."""
    return set_constant(mlp([2, 2, 2, 1], activation=None, bias=False, dtype=dtype), a)


def _s1(dtype):
    model = s1_network(dtype=dtype)
    x = tensor([[1.0, 2.0]], dtype=dtype)  # x1 != x2; dyadic values keep the hand check exact
    return model, "the S1 network, every weight 0.5, x = (1, 2); objective y itself", \
        lambda: model(x).sum()


def _zero_init(dtype):
    model = set_constant(mlp([2, 2, 1], dtype=dtype), 0.0, 0.0)
    x, t = tensor([[1.0, -1.0], [0.5, 2.0]], dtype=dtype), tensor([[1.0], [0.0]], dtype=dtype)
    return model, "2-2-1 tanh, all weights and biases zero, squared error", \
        lambda: F.mse_loss(model(x), t)


def _wavefront(dtype):
    model = set_constant(mlp([2, 2, 2, 1], dtype=dtype), 0.0, lambda m: 0.5)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            m.bias._data[:] = np.linspace(-0.5, 0.5, m.bias.shape[0])
    x, t = tensor([[1.0, -1.0]], dtype=dtype), tensor([[1.0]], dtype=dtype)
    return model, "2-2-2-1 tanh, zero weights, distinct biases: only the last layer gets a " \
        "weight gradient at step 1", lambda: F.mse_loss(model(x), t)


def _outgoing(dtype):
    model = mlp([2, 3, 2], dtype=dtype)
    model[0].weight._data[1] = model[0].weight._data[0]
    model[0].bias._data[1] = model[0].bias._data[0]
    x = tensor([[0.5, -1.0]], dtype=dtype)
    return model, "2-3-2 tanh, unit 1 a copy of unit 0 (incoming), different outgoing " \
        "weights", lambda: F.cross_entropy(model(x), [1])


def _filters(dtype):
    model = nn.Sequential(nn.Conv2d(1, 2, 2, dtype=dtype), nn.ReLU(), nn.Flatten(),
                          nn.Linear(8, 2, dtype=dtype))
    model[0].weight._data[1] = model[0].weight._data[0]
    x = tensor(np.arange(9.0).reshape(1, 1, 3, 3) / 8, dtype=dtype)
    return model, "a 2-filter conv net, filter 1 a copy of filter 0", \
        lambda: F.cross_entropy(model(x), [0])


def _breakers(dtype):
    model = nn.Sequential(nn.Linear(2, 3, dtype=dtype), nn.Tanh(), nn.Dropout(0.5),
                          nn.Linear(3, 1, dtype=dtype))
    set_constant(model, 0.3, 0.1)
    x, t = tensor([[1.0, -1.0]], dtype=dtype), tensor([[1.0]], dtype=dtype)
    return model, "2-3-1 tanh, constant init, dropout 0.5: tied units get different masks", \
        lambda: F.mse_loss(model(x), t)


def _tying(dtype):
    encoder = nn.Linear(3, 2, bias=False, dtype=dtype)
    x = tensor([[1.0, 0.5, -1.0]], dtype=dtype)
    return encoder, "an autoencoder 3-2-3 whose decoder is the encoder's weight transposed", \
        lambda: F.mse_loss(F.linear(encoder(x).tanh(), encoder.weight.T), x)


def _spirals(dtype):
    model = mlp([2, 3, 2], dtype=dtype)
    X, y = data.spirals(4, seed=0, dtype=dtype)
    return model, "2-3-2 tanh on four spiral points, cross-entropy", \
        lambda: F.cross_entropy(model(tensor(X)), y)


SETUPS = {"constant-init": _s1, "zero-init": _zero_init, "wavefront": _wavefront,
          "outgoing": _outgoing, "filters": _filters, "breakers": _breakers, "tying": _tying,
          "spirals": _spirals}


def trace_step(scenario="constant-init", dtype="float32", seed=0):
    """(model, title, loss, trace) for one forward and backward of the scenario."""
    from ..trace import trace

    manual_seed(seed)
    model, title, objective = SETUPS[scenario](dtype)
    loss = objective()
    with trace(model) as t:
        loss.backward(retain_graph=True)  # kept, so the graph can still be drawn
    return model, title, loss, t


def s1_forward(model):
    """Lines naming S1's weights and forward values, for reading its trace by hand."""
    w1, w2, w3 = (m.weight._data for m in model)
    y12 = w1 @ np.array([1.0, 2.0], dtype=w1.dtype)
    y34 = w2 @ y12
    return ["names: 0.weight = [[w1, w3], [w2, w4]], 1.weight = [[w5, w7], [w6, w8]], "
            "2.weight = [[w9, w10]]",
            f"forward: x = (1, 2), y1 = {y12[0]:g}, y2 = {y12[1]:g}, y3 = {y34[0]:g}, "
            f"y4 = {y34[1]:g}, y = {(w3 @ y34)[0]:g}"]


def s1_checks(model, t):
    """The hand derivation of S1 against the traced gradients: (claim, holds) pairs, bitwise."""
    (w1, w2, w3) = (m.weight._data for m in model)
    x1 = 1.0
    y1 = w1[0, 0] * 1.0 + w1[0, 1] * 2.0
    y3 = w2[0, 0] * y1 + w2[0, 1] * (w1[1, 0] * 1.0 + w1[1, 1] * 2.0)
    grads = {s["node"]: s["grad_after"] for s in t.steps if s["kind"] == "leaf"}
    g1, g2, g3 = grads["0.weight"], grads["1.weight"], grads["2.weight"]
    w5, w6, w9, w10 = w2[0, 0], w2[1, 0], w3[0, 0], w3[0, 1]
    return [
        ("dy/dw9 = y3", g3[0, 0] == y3),
        ("dy/dw5 = w9*y1", g2[0, 0] == w9 * y1),
        ("dy/dw1 = (w9*w5 + w10*w6)*x1", g1[0, 0] == (w9 * w5 + w10 * w6) * x1),
        ("dy/dw9 = dy/dw10", g3[0, 0] == g3[0, 1]),
        ("dy/dw5 = dy/dw6 = dy/dw7 = dy/dw8", bool(np.all(g2 == g2[0, 0]))),
    ]
