"""Builders and bitwise checks shared by the symmetry tests.

Every check here is exact (np.array_equal), never allclose: the exact backend promises bits.
"""

import contextlib

import numpy as np

import cygrad
from cygrad import nn, optim, tensor

WIDTHS = [7, 100, 257, 1000]
THREADS = [1, 2]
# Steps per hidden width: hundreds where a step costs well under a millisecond, fewer where a
# 1000 x 1000 layer makes a step cost milliseconds. Two threads run fewer steps at the large
# widths: what they add is another split of the work, which shows from the first step on, and a
# second thread is slow when the two cores are busy with something else.
STEPS = {7: 500, 100: 300, 257: 200, 1000: 60}
STEPS_2_THREADS = {7: 500, 100: 300, 257: 120, 1000: 30}


def steps_for(width, threads):
    return (STEPS if threads == 1 else STEPS_2_THREADS)[width]


ACTIVATIONS = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": lambda: nn.LeakyReLU(0.1),
    "identity": None,
}

OPTIMIZERS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.1),
    "momentum": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9),
    "nesterov_wd": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True,
                                        weight_decay=1e-3),
    "adam": lambda ps: optim.Adam(ps, lr=1e-2),
    "adamw": lambda ps: optim.AdamW(ps, lr=1e-2, weight_decay=1e-2),
}


@contextlib.contextmanager
def exact(threads):
    """Run the block on the cython backend with `threads` threads."""
    previous = cygrad.get_num_threads()
    with cygrad.backend.using("cython"):
        cygrad.set_num_threads(threads)
        try:
            yield
        finally:
            cygrad.set_num_threads(previous)


def mlp(sizes, activation="tanh", bias=True, dtype=np.float32, dropout=0.0):
    """Linear layers of the given sizes with `activation` (and Dropout) between them."""
    make = ACTIVATIONS[activation]
    layers = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out, bias=bias, dtype=dtype))
        if k < len(sizes) - 2:
            if make is not None:
                layers.append(make())
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def linears(model):
    return [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def set_constant(model, weight, bias=0.0):
    """Every weight of a layer to one constant: `weight` (a number, or a function of the layer);
    every bias to `bias`."""
    for layer in linears(model):
        layer.weight.numpy()[...] = weight(layer) if callable(weight) else weight
        if layer.bias is not None:
            layer.bias.numpy()[...] = bias
    return model


def task(loss, batch, n_in, n_out, dtype, seed=0):
    """(x, target, loss_fn) for "mse", "cross_entropy" or "bce" (which needs n_out == 1)."""
    rng = np.random.default_rng(seed)
    x = tensor(rng.standard_normal((batch, n_in)), dtype=dtype)
    if loss == "mse":
        target = rng.standard_normal((batch, n_out)).astype(dtype)
        return x, target, nn.functional.mse_loss
    if loss == "cross_entropy":
        return x, rng.integers(0, n_out, batch), nn.functional.cross_entropy
    if loss == "bce":
        target = rng.integers(0, 2, (batch, n_out)).astype(dtype)
        return x, target, nn.functional.binary_cross_entropy_with_logits
    raise ValueError(loss)


def step(model, opt, loss_fn, x, target):
    loss = loss_fn(model(x), target)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


def params(model):
    return [p.numpy().copy() for p in model.parameters()]


def all_rows_equal(a):
    a = a.reshape(a.shape[0], -1)
    return bool(np.array_equal(a, np.broadcast_to(a[:1], a.shape)))


def all_columns_equal(a):
    return bool(np.array_equal(a, np.broadcast_to(a[:, :1], a.shape)))


def all_rows_distinct(a):
    a = a.reshape(a.shape[0], -1)
    return len({row.tobytes() for row in a + 0.0}) == a.shape[0]
