"""Every differentiable operation: forward and backward side by side, one class each.

An op works on numpy arrays only (the autodiff bookkeeping lives in cygrad/tensor.py):
`forward(*arrays)` returns the output array and saves what backward needs; `backward(g)` takes
the gradient of the output and returns one gradient per input (None where an input needs none).
`rule` is the backward formula in words, shown by traces and docs. All heavy numerics go
through `cygrad.backend`, so switching backend switches every kernel below.

An op says which of the caller's arrays its backward reads: `saves` (input positions) and
`saves_output`. While the graph lives those arrays are read-only (see `lock`), so an in-place
write raises instead of turning into a silently wrong gradient; arrays an op makes for itself
(masks, im2col patches) are private and need no lock. The limit: numpy offers no way to reach the
views of an array, so a view made before the lock keeps its write flag and can still write
(`cygrad.detect_anomaly()` compares the saved bytes at backward and catches it).

    arithmetic.py  add sub mul div neg pow matmul          (broadcasting)
    reduction.py   sum mean max softmax log_softmax
    shape.py       reshape transpose getitem
    activation.py  exp log tanh sigmoid relu leaky_relu
    layers.py      linear conv2d max_pool2d avg_pool2d dropout
    losses.py      cross_entropy (fused log-softmax + NLL), mse, bce_with_logits
"""

import numpy as np

from .. import backend as _backend

# Arrays that live graphs read in backward, made read-only meanwhile:
# id(array) -> [array, number of graphs using it]
_saved = {}


def _targets(array):
    """The array and, for a view, the array owning its memory: both must refuse writes (the
    owner also stops views made later, the view itself stops writes through it)."""
    owner = array
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    return (array,) if owner is array else (array, owner)


def lock(arrays):
    """Make the arrays read-only (and their owners); returns what to hand to `unlock` later.
    Arrays that are read-only for reasons of their own are left alone."""
    held = []
    for array in arrays:
        # the common case, an array owning its memory, is its only target
        for target in _targets(array) if array.base is not None else (array,):
            entry = _saved.get(id(target))
            if entry is not None:
                entry[1] += 1
            elif target.flags.writeable:
                target.setflags(False)  # positional: keyword parsing costs more than the call
                _saved[id(target)] = [target, 1]
            else:
                continue
            held.append(target)
    return held


def unlock(held):
    for target in reversed(held):  # an owner before its views: numpy needs it writable first
        entry = _saved[id(target)]
        entry[1] -= 1
        if entry[1] == 0:
            del _saved[id(target)]
            try:
                target.setflags(True)
            except ValueError:  # a view whose owner another graph still locks: it stays
                pass            # read-only, like any view made of a read-only array


class Lease:
    """The locks one op holds (`lock` of the arrays it saved); dropping the op (a graph freed
    without backward) unlocks them. The compiled twin (csrc/graph.pyx) replaces it when built."""

    __slots__ = ("held",)

    def __init__(self, arrays):
        self.held = lock(arrays)

    def release(self):
        held, self.held = self.held, ()
        unlock(held)

    def __del__(self):
        if self.held and unlock is not None:  # unlock is None at interpreter shutdown
            unlock(self.held)


PyLease = Lease  # the spec; csrc/graph.pyx compiles the same class when built
Lease = _backend.compiled_lease or PyLease


class Op:
    """Base of every op. Parameters arrive as attributes (set by `apply` before forward);
    `needs` (set before backward) says which inputs want a gradient.

    `release()` (run by backward, or implicitly when the graph is dropped) frees what the op
    saved and lets the arrays it read be written again.
    """

    rule = ""
    saves = ()  # positions of the inputs whose arrays backward reads
    saves_output = False  # backward reads the output array
    needs = ()
    released = False
    lease = None

    def __init__(self, **params):
        self.__dict__.update(params)

    @property
    def name(self):
        return type(self).__name__

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, g):
        raise NotImplementedError

    def release(self):
        """Drop the arrays saved for backward; a second backward through this op is an error."""
        state = self.__dict__
        state.clear()  # the lease with the rest: freeing it gives its locks back
        state["released"] = True
