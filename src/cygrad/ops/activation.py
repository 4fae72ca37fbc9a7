"""Elementwise functions. tanh, sigmoid, relu and leaky_relu run through the backend's kernels."""

import numpy as np

from .. import backend as B
from . import Op


class Exp(Op):
    """y = exp(x)"""

    rule = "dx = g * y"
    saves_output = True

    def forward(self, x):
        self.y = np.exp(x)
        return self.y

    def backward(self, g):
        return (g * self.y,)


class Log(Op):
    """y = log(x)"""

    rule = "dx = g / x"
    saves = (0,)

    def forward(self, x):
        self.x = x
        return np.log(x)

    def backward(self, g):
        return (g / self.x,)


class Activation(Op):
    """y = act(x) through the backend kernel; subclasses name the activation.

    Fused after a Linear (nn.functional's fused path): `bias` is the layer's bias, added to x
    in place and activated in one kernel pass; `linear` is the Linear op, handed the bias
    gradient that backward sums in the same pass as dx.
    """

    kind = ""
    slope = 0.01
    bias = None
    linear = None

    def forward(self, x):
        self.x = x
        if self.bias is None:
            self.y = B.activation_forward(self.kind, x, self.slope)
        else:
            self.y = B.bias_activation(self.kind, x, self.bias, self.slope)
        return self.y

    def backward(self, g):
        if self.linear is None:
            return (B.activation_backward(self.kind, g, self.x, self.y, self.slope),)
        saved = self.x if self.kind == "leaky_relu" else self.y
        dx, db = B.activation_backward_bias(self.kind, g, saved, self.slope)
        self.linear.bias_grad = (dx, db)
        return (dx,)


class Tanh(Activation):
    """y = tanh(x)"""

    kind, rule = "tanh", "dx = g * (1 - y**2)"
    saves_output = True


class Sigmoid(Activation):
    """y = 1 / (1 + exp(-x))"""

    kind, rule = "sigmoid", "dx = g * y * (1 - y)"
    saves_output = True


class ReLU(Activation):
    """y = max(x, 0)"""

    kind, rule = "relu", "dx = g * (x > 0)"
    saves_output = True  # y > 0 exactly where x > 0


class LeakyReLU(Activation):
    """y = x if x > 0 else slope * x"""

    kind, rule = "leaky_relu", "dx = g * (1 if x > 0 else slope)"
    saves = (0,)
