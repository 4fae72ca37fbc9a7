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
        flat = x._data.reshape(-1)  # a view: writing it perturbs x
        for i in range(flat.size):
            original = flat[i]
            flat[i] = original + eps
            plus = objective()
            flat[i] = original - eps
            minus = objective()
            flat[i] = original
            numeric.reshape(-1)[i] = (plus - minus) / (2 * eps)
        bad = ~np.isclose(analytic, numeric, atol=atol, rtol=rtol)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise GradcheckError(
                f"gradient of input {index} (shape {x.shape}) differs at index {where}: "
                f"finite differences expected {numeric[where]!r}, backward gave "
                f"{analytic[where]!r} ({int(bad.sum())} of {bad.size} elements differ)")
    return True
