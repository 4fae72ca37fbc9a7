"""S2. All-zero initialisation: with g(0) = 0 (tanh, ReLU, identity) every weight stays exactly
zero and only the output bias learns; with sigmoid (g(0) = 0.5) the weights move, but every
hidden layer keeps a single distinct unit.

Why: a weight's gradient is (error arriving at its unit) x (activation leaving the unit below).
With g(0) = 0 every hidden activation is 0, so the last layer's weight gradients vanish; every
earlier error passes through a zero weight, so it vanishes too. Only the output bias, whose
"activation below" is the constant 1, sees the loss.
"""

import numpy as np

from .. import data, nn, optim, tensor
from ..symmetry import SymmetryMonitor
from . import Result, every, mlp, table

ACTIVATIONS = {"tanh": nn.Tanh, "ReLU": nn.ReLU, "identity": None, "sigmoid": nn.Sigmoid}


def train(activation, width, steps, dtype, X, t, lr=0.05):
    """A 2-w-w-1 MLP from all-zero weights and biases, full-batch SGD on the squared error.
    Returns the monitor and, per step (step 0 first), each layer's (weight, bias) copies."""
    model = mlp([2, width, width, 1], activation=ACTIVATIONS[activation], dtype=dtype)
    for p in model.parameters():
        nn.init.zeros_(p)
    monitor = SymmetryMonitor(model)
    opt = monitor.attach(optim.SGD(model.parameters(), lr=lr))
    linears = [m for _, m in monitor.layers]

    def snapshot():
        return [(m.weight._data.copy(), m.bias._data.copy()) for m in linears]

    x, history = tensor(X), [snapshot()]
    for _ in range(steps):
        loss = nn.functional.mse_loss(model(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(snapshot())
    return monitor, history


def run(options):
    steps = 50 if options.steps is None else options.steps
    width = 16 if options.width is None else options.width
    dtype = options.dtype
    result = Result("S2", "All-zero initialisation",
                    "with every weight and bias zero and g(0) = 0 (tanh, ReLU, identity), every "
                    "weight stays exactly zero forever and only the output bias learns; with "
                    "sigmoid (g(0) = 0.5) the weights change, but every hidden layer keeps one "
                    "distinct unit.")
    X, y = data.moons(100, seed=options.seed, dtype=dtype)
    t = tensor(y.reshape(-1, 1).astype(dtype))  # targets 0/1: their mean is 0.5
    shown = every(steps)
    runs = {name: train(name, width, steps, dtype, X, t) for name in ACTIVATIONS}

    rows = []
    for step in shown:
        row = [step]
        for name in ("tanh", "ReLU", "identity"):
            layers = runs[name][1][step]
            row.append(" ".join(f"{np.abs(w).max():.0e}" if w.any() else "0" for w, _ in layers))
            row.append(float(layers[-1][1][0]))
        rows.append(row)
    result.add(f"Zero init, 2-{width}-{width}-1 MLP, SGD lr 0.05 on the squared error to moons "
               f"labels (100 points, {dtype}); max |W| of the three layers, and the output bias:",
               table(["step", "tanh: max|W|", "b_out", "ReLU: max|W|", "b_out",
                      "identity: max|W|", "b_out"], rows,
                     [None, None, ".6f", None, ".6f", None, ".6f"]))
    for name in ("tanh", "ReLU", "identity"):
        history = runs[name][1]
        weights_zero = all(not w.any() for layers in history for w, _ in layers)
        hidden_bias_zero = all(not b.any() for layers in history for _, b in layers[:-1])
        moved = [s for s, layers in enumerate(history) if layers[-1][1].any()]
        result.verdict(f"{name}: every weight and hidden bias exactly 0 at every one of "
                       f"{steps} steps", weights_zero and hidden_bias_zero)
        if steps:
            result.verdict(f"{name}: the output bias learns",
                           bool(moved) and moved[0] == 1,
                           f"{history[-1][-1][1][0]:.6f} after {steps} steps"
                           if moved else "it never moved")

    monitor, history = runs["sigmoid"]
    names = [n for n, _ in monitor.layers]
    rows = [[step, "/".join(str(monitor.widths(n)[step]) for n in names[:-1]),
             " / ".join(f"{np.abs(w).max():.2e}" for w, _ in history[step]),
             float(history[step][-1][1][0])] for step in shown]
    result.add(f"Sigmoid, same network and data; width = distinct units per hidden layer "
               f"(of {width}):",
               table(["step", "width", "max|W| per layer", "b_out"], rows,
                     [None, None, None, ".6f"]))
    most = [max(monitor.widths(n)) for n in names[:-1]]
    result.verdict(f"sigmoid: every hidden layer has 1 distinct unit at every one of {steps} "
                   f"steps", most == [1] * len(most),
                   "most distinct units per hidden layer: " + "/".join(map(str, most)))
    changed = [k + 1 for k, (w, _) in enumerate(history[-1]) if w.any()]
    if steps:
        result.verdict("sigmoid: the weights do change", bool(changed),
                       f"non-zero after {steps} steps in layers {changed} of {len(names)}")
    if options.plot:
        result.figures += monitor.plot(f"{options.plot}/zero-init-sigmoid",
                                       title="zero init, sigmoid")
    return result
