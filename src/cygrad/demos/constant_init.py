"""S1. Constant initialisation of a 2-2-2-1 network: each layer behaves like a single unit.

Names as in the scenario: y1 = w1·x1 + w3·x2, y2 = w2·x1 + w4·x2, y3 = w5·y1 + w7·y2,
y4 = w6·y1 + w8·y2, y = w9·y3 + w10·y4. In PyTorch's layout W1 = [[w1, w3], [w2, w4]],
W2 = [[w5, w7], [w6, w8]], W3 = [[w9, w10]].
"""

import numpy as np

from .. import nn, optim, tensor
from . import Result, mlp, set_constant, table

INPUTS = np.array([[1.0, -0.5], [0.3, 0.8], [-1.2, 0.4], [0.6, 0.2]])
TARGETS = np.array([[0.5], [-0.3], [0.8], [0.1]])


def named_weights(model):
    """(w1, ..., w10) of the 2-2-2-1 net."""
    w1, w2, w3 = (m.weight._data for m in model if isinstance(m, nn.Linear))
    return (w1[0, 0], w1[1, 0], w1[0, 1], w1[1, 1],
            w2[0, 0], w2[1, 0], w2[0, 1], w2[1, 1], w3[0, 0], w3[0, 1])


def train_named(a, steps, dtype, lr=0.05):
    """The 2-2-2-1 net (no biases, identity activation) from constant a, trained by SGD on
    the squared error; returns the ten weights after every step (step 0 first)."""
    model = set_constant(mlp([2, 2, 2, 1], activation=None, bias=False, dtype=dtype), a)
    opt = optim.SGD(model.parameters(), lr=lr)
    x, t = tensor(INPUTS, dtype=dtype), tensor(TARGETS, dtype=dtype)
    history = [named_weights(model)]
    for _ in range(steps):
        loss = nn.functional.mse_loss(model(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(named_weights(model))
    return np.array(history)


def one_unit_per_layer(width, steps, dtype, make_optimizer):
    """A constant-initialised tanh MLP 3-w-w-w-2: does every hidden layer keep exactly one
    distinct unit, and every layer after the first all its columns equal, at every step?"""
    from ..symmetry import SymmetryMonitor

    model = mlp([3, width, width, width, 2], activation=nn.Tanh, dtype=dtype)
    set_constant(model, lambda m: 0.5 / m.in_features, 0.1)
    monitor = SymmetryMonitor(model)
    opt = monitor.attach(make_optimizer(model.parameters()))
    rng = np.random.default_rng(0)
    x = tensor(rng.standard_normal((16, 3)), dtype=dtype)
    y = rng.integers(0, 2, 16)
    columns_equal = True
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        for m in list(model)[2::2]:  # every Linear after the first
            w = m.weight._data
            columns_equal &= bool(np.array_equal(w, np.repeat(w[:, :1], w.shape[1], axis=1)))
    hidden = [name for name, _ in monitor.layers][:-1]
    widest = max(max(monitor.widths(name)) for name in hidden)
    return widest, columns_equal


def run(options):
    steps = 10 if options.steps is None else options.steps
    width = 16 if options.width is None else options.width
    dtype = options.dtype
    result = Result("S1", "Constant initialisation of a 2-2-2-1 network",
                    "if every weight starts at the same constant a, SGD keeps w1 = w2, w3 = w4, "
                    "w5 = w6 = w7 = w8 and w9 = w10 forever: each layer acts as one unit.")
    w = train_named(0.5, steps, dtype)
    names = [f"w{i}" for i in range(1, 11)]
    result.add(f"The ten weights, a = 0.5, SGD lr 0.05 on 4 samples ({dtype}):",
               table(["step"] + names, [[s] + list(row) for s, row in enumerate(w)],
                     [None] + [".6g"] * 10))
    n = f"every one of {steps} steps"
    result.verdict(f"w1 = w2 and w3 = w4 at {n}",
                   np.array_equal(w[:, 0], w[:, 1]) and np.array_equal(w[:, 2], w[:, 3]))
    result.verdict(f"w5 = w6 = w7 = w8 at {n}",
                   all(np.array_equal(w[:, 4], w[:, k]) for k in (5, 6, 7)))
    result.verdict(f"w9 = w10 at {n}", np.array_equal(w[:, 8], w[:, 9]))
    if steps:
        result.verdict("the first layer keeps two values (w1 != w3 after step 1, since x1 != x2)",
                       bool(np.all(w[1:, 0] != w[1:, 2])))
    zero = train_named(0.0, steps, dtype)
    result.verdict(f"with a = 0 no weight changes in {steps} steps", not zero.any())

    rows = []
    for label, make in [("SGD", lambda p: optim.SGD(p, lr=0.1)),
                        ("SGD + momentum 0.9", lambda p: optim.SGD(p, lr=0.1, momentum=0.9)),
                        ("Adam", lambda p: optim.Adam(p, lr=0.01))]:
        widest, columns_equal = one_unit_per_layer(width, steps, dtype, make)
        rows.append([label, widest, "yes" if columns_equal else "no"])
        result.verdict(f"{label}: every hidden layer of a 3-{width}-{width}-{width}-2 tanh MLP "
                       f"keeps one distinct unit, and later layers equal columns",
                       widest == 1 and columns_equal)
    result.add(f"Generalisation: constant weights and biases per layer, tanh, width {width}, "
               f"{steps} steps:",
               table(["optimiser", "most distinct units in a hidden layer",
                      "columns equal in every later layer"], rows))
    return result
