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
    losses.py      cross_entropy (fused log-softmax + NLL), mse, bce_with_logits
"""


import numpy as np

# Arrays that a live graph saved for backward, made read-only while it lives, so an in-place
# write can never turn into a silently wrong gradient: id(owner) -> [owner array, graphs using it]
_saved = {}


def _owner(array):
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def lock(arrays):
    """Make the arrays (through the arrays owning their memory) read-only; returns the owners
    to hand to `unlock` later. Arrays read-only for reasons of their own are left alone."""
    owners = []
    for array in arrays:
        owner = _owner(array)
        entry = _saved.get(id(owner))
        if entry is not None:
            entry[1] += 1
        elif owner.flags.writeable:
            owner.flags.writeable = False
            _saved[id(owner)] = [owner, 1]
        else:
            continue
        owners.append(owner)
    return owners


def unlock(owners):
    for owner in owners:
        entry = _saved.get(id(owner))
        if entry is not None:
            entry[1] -= 1
            if entry[1] == 0:
                del _saved[id(owner)]
                owner.flags.writeable = True


class Op:
    """Base of every op. `needs` (set before backward) says which inputs want a gradient.

    While an op is part of a live graph its inputs and output are read-only; `release()` (run
    by backward, or when the graph is dropped) frees what it saved and makes them writable.
    """

    rule = ""
    needs = ()
    released = False
    _locked = ()

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

    def release(self):
        """Drop the arrays saved for backward; a second backward through this op is an error."""
        unlock(self._locked)
        self.__dict__.clear()
        self.released = True

    def __del__(self):
        if self._locked and unlock is not None:  # unlock is None at interpreter shutdown
            unlock(self._locked)
