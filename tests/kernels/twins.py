"""The numpy twins of the elementwise kernels, taken from the op table (cygrad/ops/
elementwise.py states each op's math once; the kernels of csrc/elementwise.pyx must agree)."""

import numpy as np

from cygrad.backend import numpy_backend
from cygrad.ops import registry


def _params(name, slope):
    entry = registry.ENTRIES[name]
    return {entry.kernel_param: slope} if entry.kernel_param else {}


def saved_for(name, x, y):
    """What the kernel's backward reads: x for leaky_relu, y for the others."""
    return x if registry.ENTRIES[name].saves == "x" else y


def activation_forward(name, x, slope):
    return registry.ENTRIES[name].forward(x, **_params(name, slope))


def activation_backward(name, g, saved, slope):
    entry = registry.ENTRIES[name]
    x = saved if entry.saves == "x" else None
    y = saved if entry.saves == "y" else None
    return entry.grad(g, x, y, **_params(name, slope))


def bias_activation(name, z, b, slope):
    """Z := Z + b in place; returns act(Z)."""
    np.add(z, b, out=z)
    return activation_forward(name, z, slope)


def activation_backward_bias(name, g, saved, slope):
    dz = np.ascontiguousarray(activation_backward(name, g, saved, slope))
    return dz, numpy_backend.column_sum(dz, 1)
