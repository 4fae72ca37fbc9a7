"""Grad mode and the autograd functions, with torch.autograd's names.

    with cygrad.no_grad(): ...           # records nothing (also a decorator)
    cygrad.autograd.grad(loss, [w, b])   # gradients returned, .grad untouched

Modes are per thread (cygrad/_state.py): a context manager changes the calling thread only
and restores what that thread had before.
"""

import functools

from . import _autograd_functional as functional  # noqa: F401  (torch.autograd.functional)
from . import _function as function  # noqa: F401  (torch.autograd.function)
from . import _state, profiler  # noqa: F401  (profiler: torch.autograd.profiler)
from ._function import Function, FunctionCtx, once_differentiable
from .tensor import AnomalyWatcher, Tensor, _backward, _backward_graph, _tensor_list

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled",
           "is_inference_mode_enabled", "detect_anomaly", "set_detect_anomaly",
           "is_anomaly_enabled", "grad", "backward", "Function", "FunctionCtx",
           "once_differentiable", "Variable", "gradcheck", "gradgradcheck"]


class _Mode:
    """A thread-local setting as a context manager and a decorator (torch's style): each
    `with` pushes the thread's previous value and restores it on exit."""

    name = ""
    value = None

    def __init__(self):
        self._tokens = []

    def __enter__(self):
        self._tokens.append(_state.swap(self.name, self.value))
        return self

    def __exit__(self, *exc):
        _state.restore(self.name, self._tokens.pop())
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            with type(self)(*self._args()):
                return fn(*args, **kwargs)

        return run

    def _args(self):
        return ()

    def clone(self):
        return type(self)(*self._args())


class no_grad(_Mode):
    """Inside this block (or decorated function) ops record no graph: for evaluation and
    for updates of parameters."""

    name, value = "grad_enabled", False

    def __new__(cls, fn=None):
        self = super().__new__(cls)
        if callable(fn) and not isinstance(fn, bool):  # used as @no_grad without parentheses
            self.__init__()
            return self(fn)
        return self

    def __init__(self, fn=None):
        super().__init__()


class enable_grad(no_grad):
    """Inside this block ops record again (inside a no_grad block, say)."""

    value = True


class set_grad_enabled(_Mode):
    """set_grad_enabled(False) switches recording off for the calling thread, at once (as a
    function) or for a block (as a context manager, restoring the previous mode)."""

    name = "grad_enabled"

    def __init__(self, mode):
        super().__init__()
        self.value = bool(mode)
        self._outer = _state.swap(self.name, self.value)  # effective at once, as in torch

    def __enter__(self):
        self._tokens.append(self._outer)
        self._outer = None
        return self

    def _args(self):
        return (self.value,)


class inference_mode(_Mode):
    """As no_grad (cygrad has no separate inference tensors); inference_mode(False) records."""

    name = "grad_enabled"

    def __new__(cls, mode=True):
        self = super().__new__(cls)
        if callable(mode) and not isinstance(mode, bool):
            self.__init__()
            return self(mode)
        return self

    def __init__(self, mode=True):
        super().__init__()
        self.mode = bool(mode) if not callable(mode) else True
        self.value = not self.mode

    def __enter__(self):
        token = _state.swap("inference", self.mode)
        super().__enter__()
        self._tokens.append(token)
        return self

    def __exit__(self, *exc):
        _state.restore("inference", self._tokens.pop())
        return super().__exit__(*exc)

    def _args(self):
        return (self.mode,)


def is_grad_enabled():
    return _state.local.grad_enabled


def is_inference_mode_enabled():
    return _state.local.inference


class detect_anomaly(_Mode):
    """Inside this block every op checks its forward output and backward gradients and raises
    FloatingPointError at the first NaN or Inf, naming the op. Ops recorded inside it also keep
    a copy of the bytes their backward reads, and backward raises RuntimeError if those changed
    (a write through a numpy view made before the graph saved the array, which the read-only
    lock cannot reach)."""

    name = "anomaly"

    def __init__(self, check_nan=True):
        super().__init__()
        self.value = bool(check_nan)
        self._watches = []

    def __enter__(self):
        super().__enter__()
        watch = _state.watching(AnomalyWatcher()) if self.value else None
        if watch is not None:
            watch.__enter__()
        self._watches.append(watch)
        return self

    def __exit__(self, *exc):
        watch = self._watches.pop()
        if watch is not None:
            watch.__exit__(*exc)
        return super().__exit__(*exc)

    def _args(self):
        return (self.value,)


def set_detect_anomaly(mode, check_nan=True):
    """Switch anomaly detection on or off: the process default from the main thread, else the
    calling thread's (also usable as a context manager, as in torch)."""
    return _SetAnomaly(bool(mode) and bool(check_nan))


class _SetAnomaly(_Mode):
    name = "anomaly"

    def __init__(self, value):
        super().__init__()
        self.value = value
        self._previous = (_state.local.anomaly, _state.local.watch)
        _set_anomaly(value)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _state.set_default("anomaly", self._previous[0])
        _state.set_default("watch", self._previous[1])
        return False


def _set_anomaly(value):
    """The anomaly flag and an AnomalyWatcher among the watchers, or neither."""
    others = tuple(w for w in (_state.local.watch or ()) if not isinstance(w, AnomalyWatcher))
    _state.set_default("anomaly", value)
    _state.set_default("watch", (others + (AnomalyWatcher(),)) if value else (others or None))


def is_anomaly_enabled():
    return _state.local.anomaly


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         only_inputs=True, allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """The gradients of outputs with respect to inputs, returned as a tuple (nothing is
    accumulated into .grad). An input that outputs do not depend on raises unless
    allow_unused=True (then its gradient is None, or zeros with materialize_grads=True)."""
    if is_grads_batched:
        raise NotImplementedError("grad(is_grads_batched=True) is not supported")
    outputs = _tensor_list(outputs, "outputs")
    single = isinstance(inputs, Tensor)
    inputs = _tensor_list(inputs, "inputs")
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    for t in inputs:
        if not t._rg:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    capture = {id(t): None for t in inputs}
    if create_graph:  # gradients with a graph (retain_graph defaults to create_graph)
        _backward_graph(outputs, list(grad_outputs), retain_graph is not False,
                        capture=capture)
    else:
        _backward(outputs, list(grad_outputs), bool(retain_graph), capture=capture)
    import numpy as np

    from .tensor import _wrap

    result = []
    for t in inputs:
        g = capture[id(t)]
        if g is None:
            if materialize_grads:
                result.append(_wrap(np.zeros_like(t._data)))
                continue
            if not allow_unused:
                raise RuntimeError("One of the differentiated Tensors appears to not have been "
                                   "used in the graph. Set allow_unused=True if this is the "
                                   "desired behavior.")
            result.append(None)
        elif create_graph:
            result.append(g if g._data.dtype == t._data.dtype else g.to(t.dtype))
        else:
            result.append(_wrap(np.array(g, dtype=t._data.dtype)))
    return tuple(result) if not single or len(result) != 1 else tuple(result)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate the gradients of tensors (with grad_tensors) into the leaves' .grad."""
    tensors = _tensor_list(tensors, "tensors")
    if grad_tensors is None:
        grad_tensors = [None] * len(tensors)
    elif isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors]
    only = None if inputs is None else _tensor_list(inputs, "inputs")
    if create_graph:
        _backward_graph(tensors, list(grad_tensors), retain_graph is not False, only=only)
        return
    _backward(tensors, list(grad_tensors), bool(retain_graph), only=only)


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True,
              nondet_tol=0.0, check_undefined_grad=True, check_grad_dtypes=False,
              check_batched_grad=False, check_batched_forward_grad=False,
              check_forward_ad=False, check_backward_ad=True, fast_mode=False, masked=None):
    """torch.autograd.gradcheck: func's gradients with respect to the inputs that require
    grad against central differences (cygrad.gradcheck: the inputs copied to float64 first,
    every output element checked). True, or GradcheckError (False without raise_exception).
    The forward-mode and batched checks are not offered (NotImplementedError)."""
    from .gradcheck import GradcheckError
    from .gradcheck import gradcheck as check

    if check_batched_grad or check_batched_forward_grad or check_forward_ad:
        raise NotImplementedError("gradcheck: cygrad has no forward-mode AD or vmap: "
                                  "check_forward_ad, check_batched_grad and "
                                  "check_batched_forward_grad are not supported")
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    if not check_backward_ad:
        return True
    try:
        return check(func, *inputs, eps=eps, atol=atol, rtol=rtol)
    except GradcheckError:
        if raise_exception:
            raise
        return False


def gradgradcheck(func, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3,
                  gen_non_contig_grad_outputs=False, raise_exception=True, nondet_tol=0.0,
                  check_undefined_grad=True, check_grad_dtypes=False, check_batched_grad=False,
                  check_fwd_over_rev=False, check_rev_over_rev=True, fast_mode=False,
                  masked=False):
    """torch.autograd.gradgradcheck: func's second derivatives (backward with
    create_graph=True) against central differences of its first (cygrad.gradcheck's
    gradgradcheck: inputs and grad_outputs copied to float64). True, or GradcheckError (False
    without raise_exception). Forward-over-reverse and batched checks are not offered."""
    from .gradcheck import GradcheckError
    from .gradcheck import gradgradcheck as check

    if check_batched_grad or check_fwd_over_rev:
        raise NotImplementedError("gradgradcheck: cygrad has no forward-mode AD or vmap: "
                                  "check_fwd_over_rev and check_batched_grad are not supported")
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    if not check_rev_over_rev:
        return True
    try:
        return check(func, *inputs, grad_outputs=grad_outputs, eps=eps, atol=atol, rtol=rtol)
    except GradcheckError:
        if raise_exception:
            raise
        return False


def Variable(data, requires_grad=False, volatile=False):  # noqa: N802  (torch's legacy name)
    """torch's legacy wrapper: a tensor on data's values, requiring grad as asked (Variable and
    Tensor have been one type since torch 0.4)."""
    if not isinstance(data, Tensor):
        raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__}")
    return data.detach().requires_grad_(bool(requires_grad))
