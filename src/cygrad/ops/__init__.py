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
    layers.py      linear dropout
    conv.py        conv1d conv2d, max/avg/adaptive pools (1-D and 2-D)
    losses.py      cross_entropy (fused log-softmax + NLL), mse, bce_with_logits
"""

from .locks import Lease, PyLease, lock, unlock  # noqa: F401  (re-exported)


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
