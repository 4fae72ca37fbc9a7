"""Every differentiable operation: forward and backward side by side, one class each.

An op works on numpy arrays only (the autodiff bookkeeping lives in cygrad/tensor.py):
`forward(*arrays)` returns the output array and saves what backward needs; `backward(g)` takes
the gradient of the output and returns one gradient per input (None where an input needs none).
`rule` is the backward formula in words, shown by traces and docs. All heavy numerics go
through `cygrad.backend`, so switching backend switches every kernel below.

    arithmetic.py  add sub mul div neg pow matmul          (broadcasting)
    reduction.py   sum mean max softmax log_softmax
    shape.py       reshape transpose getitem
    activation.py  exp log tanh sigmoid relu leaky_relu
    layers.py      linear conv2d max_pool2d avg_pool2d dropout
    losses.py      cross_entropy (fused log-softmax + NLL)
"""


class Op:
    """Base of every op. `needs` (set before backward) says which inputs want a gradient."""

    rule = ""
    needs = ()

    def __init__(self, **params):
        for name, value in params.items():
            setattr(self, name, value)

    @property
    def name(self):
        return type(self).__name__

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, g):
        raise NotImplementedError
