"""Elementwise functions. tanh, sigmoid, relu and leaky_relu run through the backend's kernels."""

import numpy as np

from .. import backend as B
from . import Op


class Exp(Op):
    """y = exp(x)"""

    rule = "dx = g * y"

    def forward(self, x):
        self.y = np.exp(x)
        return self.y

    def backward(self, g):
        return (g * self.y,)


class Log(Op):
    """y = log(x)"""

    rule = "dx = g / x"

    def forward(self, x):
        self.x = x
        return np.log(x)

    def backward(self, g):
        return (g / self.x,)


class Activation(Op):
    """y = act(x) through the backend kernel; subclasses name the activation."""

    kind = ""
    slope = 0.01

    def forward(self, x):
        self.x = x
        self.y = B.activation_forward(self.kind, x, self.slope)
        return self.y

    def backward(self, g):
        return (B.activation_backward(self.kind, g, self.x, self.y, self.slope),)


class Tanh(Activation):
    """y = tanh(x)"""

    kind, rule = "tanh", "dx = g * (1 - y**2)"


class Sigmoid(Activation):
    """y = 1 / (1 + exp(-x))"""

    kind, rule = "sigmoid", "dx = g * y * (1 - y)"


class ReLU(Activation):
    """y = max(x, 0)"""

    kind, rule = "relu", "dx = g * (x > 0)"


class LeakyReLU(Activation):
    """y = x if x > 0 else slope * x"""

    kind, rule = "leaky_relu", "dx = g * (1 if x > 0 else slope)"
