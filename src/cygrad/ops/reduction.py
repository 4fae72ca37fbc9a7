"""Reductions over axes, and the row-wise softmax family."""

import numpy as np

from . import Op


def _normalise_axis(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for an array of {ndim} dimensions")
    return tuple(sorted(a % max(ndim, 1) for a in axes))


def _expand(g, axes, keepdims):
    """Put the reduced axes back as size-1 axes so g broadcasts against the input."""
    return g if keepdims else np.expand_dims(g, axes)


class Sum(Op):
    """y = x.sum(axis)"""

    rule = "dx = g broadcast to x.shape"

    def forward(self, x):
        self.shape = x.shape
        self.axes = _normalise_axis(self.axis, x.ndim)
        return np.asarray(x.sum(axis=self.axes, keepdims=self.keepdims))

    def backward(self, g):
        return (np.broadcast_to(_expand(g, self.axes, self.keepdims), self.shape),)


class Mean(Op):
    """y = x.mean(axis)"""

    rule = "dx = g / n broadcast to x.shape (n = elements averaged)"

    def forward(self, x):
        self.shape, self.dtype = x.shape, x.dtype
        self.axes = _normalise_axis(self.axis, x.ndim)
        self.count = int(np.prod([x.shape[a] for a in self.axes]))
        return np.asarray(x.mean(axis=self.axes, keepdims=self.keepdims))

    def backward(self, g):
        g = _expand(g, self.axes, self.keepdims) / self.dtype.type(max(self.count, 1))
        return (np.broadcast_to(g, self.shape),)


class Max(Op):
    """y = x.max(axis); ties share the gradient equally (so tied units stay tied)."""

    rule = "dx = g * (x == max) / (number of maxima)"
    saves, saves_output = (0,), True

    def forward(self, x):
        self.x = x
        self.axes = _normalise_axis(self.axis, x.ndim)
        if any(x.shape[a] == 0 for a in self.axes):
            raise ValueError(f"max over an empty axis of an array of shape {x.shape}")
        self.y = x.max(axis=self.axes, keepdims=True)
        return self.y if self.keepdims else np.squeeze(self.y, self.axes)

    def backward(self, g):
        mask = (self.x == self.y).astype(self.x.dtype)
        mask /= mask.sum(axis=self.axes, keepdims=True)
        return (mask * _expand(g, self.axes, self.keepdims),)


class Softmax(Op):
    """y = exp(x - max) / sum(exp(x - max)) along axis"""

    rule = "dx = y * (g - sum(g * y, axis))"
    saves_output = True

    def forward(self, x):
        e = np.exp(x - x.max(axis=self.axis, keepdims=True))
        self.y = e / e.sum(axis=self.axis, keepdims=True)
        return self.y

    def backward(self, g):
        y = self.y
        return (y * (g - (g * y).sum(axis=self.axis, keepdims=True)),)


class LogSoftmax(Op):
    """y = x - max - log(sum(exp(x - max))) along axis"""

    rule = "dx = g - exp(y) * sum(g, axis)"
    saves_output = True

    def forward(self, x):
        shifted = x - x.max(axis=self.axis, keepdims=True)
        self.y = shifted - np.log(np.exp(shifted).sum(axis=self.axis, keepdims=True))
        return self.y

    def backward(self, g):
        return (g - np.exp(self.y) * g.sum(axis=self.axis, keepdims=True),)
