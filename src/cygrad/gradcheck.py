"""gradcheck: compare an op's analytic gradient with central finite differences in float64."""

import numpy as np

from .autograd import no_grad
from .ops.factories import tensor
from .tensor import Tensor, _wrap


class GradcheckError(AssertionError, RuntimeError):
    """The analytic and numerical gradients disagree (a RuntimeError too, as torch's
    torch.autograd.gradcheck.GradcheckError)."""


def gradcheck(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Check the gradients of fn(*inputs) with respect to every input that requires grad.

    Inputs are copied to float64 first. A non-scalar output is reduced with fixed random weights,
    so every output element is checked. Raises GradcheckError naming the input index, the
    element and both values on a mismatch; returns True otherwise.
    """
    xs = [tensor(x._data, dtype=np.float64, requires_grad=x.requires_grad)
          if isinstance(x, Tensor) and x.is_floating_point() else x for x in inputs]
    out = fn(*xs)
    weights = np.random.default_rng(seed).standard_normal(out.shape)
    (out * _wrap(weights)).sum().backward()

    def objective():
        with no_grad():
            return float((fn(*xs)._data * weights).sum())

    for index, x in enumerate(xs):
        if not isinstance(x, Tensor) or not x.requires_grad:
            continue
        analytic = x.grad._data if x.grad is not None else np.zeros_like(x._data)
        numeric = np.zeros_like(x._data)
        for i in range(x._data.size):
            original = x._data.reshape(-1)[i]
            _put(x, i, original + eps)
            plus = objective()
            _put(x, i, original - eps)
            minus = objective()
            _put(x, i, original)
            numeric.reshape(-1)[i] = (plus - minus) / (2 * eps)
        bad = ~np.isclose(analytic, numeric, atol=atol, rtol=rtol)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise GradcheckError(
                f"gradient of input {index} (shape {x.shape}) differs at index {where}: "
                f"finite differences expected {numeric[where]!r}, backward gave "
                f"{analytic[where]!r} ({int(bad.sum())} of {bad.size} elements differ)")
    return True


def _put(x, i, value):
    """x's element i (row-major) set to value, in x's own array (a graph still alive may
    have locked the array it saved: the write then goes to a copy that x takes)."""
    x._writable_data().reshape(-1)[i] = value


def gradgradcheck(fn, *inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Check second derivatives: gradcheck of the map (inputs, v) -> v . d fn(inputs) / d inputs
    (backward with create_graph=True), as torch.autograd.gradgradcheck. v is grad_outputs (one
    tensor per output of fn), else fixed random values; it requires grad too, so the check
    covers the derivative with respect to it as well."""
    from .autograd import grad

    xs = [tensor(x._data, dtype=np.float64, requires_grad=x.requires_grad)
          if isinstance(x, Tensor) and x.is_floating_point() else x for x in inputs]
    wanted = [i for i, x in enumerate(xs) if isinstance(x, Tensor) and x.requires_grad]
    outs = fn(*xs)
    single = isinstance(outs, Tensor)
    outs = (outs,) if single else tuple(outs)
    if grad_outputs is None:
        rng = np.random.default_rng(seed)
        vs = [tensor(rng.standard_normal(o.shape), requires_grad=True) for o in outs]
    else:
        given = (grad_outputs,) if isinstance(grad_outputs, Tensor) else tuple(grad_outputs)
        vs = [tensor(v._data, dtype=np.float64, requires_grad=v.requires_grad) for v in given]
    count = len(xs)

    def first_derivatives(*args):
        from . import cat, zeros_like
        from .autograd import enable_grad

        xs_, vs_ = list(args[:count]), list(args[count:])
        with enable_grad():  # (gradcheck's finite differences run under no_grad)
            o = fn(*xs_)
            o = (o,) if isinstance(o, Tensor) else tuple(o)
            keep = [k for k, t in enumerate(o) if t.requires_grad]
            gs = grad([o[k] for k in keep], [xs_[i] for i in wanted], [vs_[k] for k in keep],
                      create_graph=True, allow_unused=True)

        return cat([(zeros_like(xs_[i]) if d is None else d).reshape(-1)
                    for i, d in zip(wanted, gs)])

    return gradcheck(first_derivatives, *xs, *vs, eps=eps, atol=atol, rtol=rtol, seed=seed)
