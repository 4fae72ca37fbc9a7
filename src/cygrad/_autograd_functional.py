"""torch.autograd.functional's first-order functions: jacobian and vjp, by reverse mode (one
backward pass per output element for jacobian). The second-order and forward-mode ones
(hessian, hvp, vhp, jvp) need derivatives of derivatives, which cygrad does not compute: they
raise NotImplementedError naming themselves."""

import numpy as np

from .tensor import Tensor, _wrap

__all__ = ["jacobian", "vjp", "jvp", "hessian", "hvp", "vhp"]


def _as_tuple(x, name, fn):
    single = isinstance(x, Tensor)
    items = (x,) if single else tuple(x)
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(f"The {name} given to {fn} must be either a Tensor or a tuple of "
                            f"Tensors but the value at index {i} has type {type(t).__name__}.")
    return single, items


def _grad_inputs(inputs):
    """Fresh leaves on the inputs' values, requiring grad (the caller's are not touched)."""
    return tuple(t.detach().requires_grad_(True) for t in inputs)


def _run(func, inputs, fn):
    from . import autograd

    with autograd.enable_grad():
        out = func(*inputs)
    single, outputs = _as_tuple(out, "outputs of the user-provided function", fn)
    return out, single, outputs


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False,
             strategy="reverse-mode"):
    """d func(inputs) / d inputs: for a Tensor input and output, a tensor of shape
    output.shape + input.shape; tuples of them give tuples (per output, per input)."""
    from . import autograd

    if create_graph:
        raise NotImplementedError("jacobian(create_graph=True) needs second derivatives, "
                                  "which cygrad does not compute")
    if strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError('Expected strategy to be either "forward-mode" or "reverse-mode".')
    if strategy == "forward-mode":
        raise NotImplementedError("jacobian(strategy='forward-mode') is not supported in "
                                  "cygrad (reverse mode only)")
    single_in, inputs = _as_tuple(inputs, "inputs", "jacobian")
    inputs = _grad_inputs(inputs)
    _, single_out, outputs = _run(func, inputs, "jacobian")
    rows = []
    for k, out in enumerate(outputs):
        flat = out.reshape(-1)
        parts = [np.zeros((flat.shape[0],) + tuple(t.shape), dtype=t._data.dtype)
                 for t in inputs]
        for e in range(flat.shape[0]):
            if not out.requires_grad:
                break
            grads = autograd.grad(flat[e], inputs, retain_graph=True, allow_unused=True)
            for j, g in enumerate(grads):
                if g is not None:
                    parts[j][e] = g._data
                elif strict:
                    raise RuntimeError(f"Output {k} of the user-provided function is "
                                       f"independent of input {j}. This is not allowed in "
                                       "strict mode.")
        if strict and not out.requires_grad:
            raise RuntimeError(f"Output {k} of the user-provided function does not require "
                               "gradients. The outputs must be computed in a differentiable "
                               "manner from the input when running in strict mode.")
        rows.append(tuple(_wrap(p.reshape(tuple(out.shape) + tuple(t.shape)))
                          for p, t in zip(parts, inputs)))
    if single_out and single_in:
        return rows[0][0]
    if single_out:
        return rows[0]
    if single_in:
        return tuple(r[0] for r in rows)
    return tuple(rows)


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T d func / d inputs): the outputs, detached, and the vector-Jacobian
    product for each input (v may be omitted for a one-element output)."""
    from . import autograd

    if create_graph:
        raise NotImplementedError("vjp(create_graph=True) needs second derivatives, which "
                                  "cygrad does not compute")
    single_in, inputs = _as_tuple(inputs, "inputs", "vjp")
    inputs = _grad_inputs(inputs)
    out, single_out, outputs = _run(func, inputs, "vjp")
    if v is None:
        if len(outputs) != 1 or outputs[0].numel() != 1:
            raise RuntimeError("The vector v can only be None if the user-provided function "
                               "returns a single Tensor with a single element.")
        vs = (None,)
    else:
        _, vs = _as_tuple(v, "v", "vjp")
        if len(vs) != len(outputs):
            raise RuntimeError(f"v is a tuple of invalid length: should be {len(outputs)} but "
                               f"got {len(vs)}.")
        for o, w in zip(outputs, vs):
            if tuple(o.shape) != tuple(w.shape):
                raise RuntimeError(f"Mismatch in shape: grad_output[0] has a shape of "
                                   f"{w.shape} and output[0] has a shape of {o.shape}.")
    live = [(o, w) for o, w in zip(outputs, vs) if o.requires_grad]
    if live:
        grads = autograd.grad([o for o, _ in live], inputs,
                              grad_outputs=[w for _, w in live], allow_unused=True)
    else:
        grads = (None,) * len(inputs)
    result = tuple(g if g is not None else _wrap(np.zeros_like(t._data))
                   for g, t in zip(grads, inputs))
    detached = out.detach() if single_out else tuple(o.detach() for o in outputs)
    return detached, (result[0] if single_in else result)


def _second_order(name):
    def unsupported(*args, **kwargs):
        raise NotImplementedError(f"torch.autograd.functional.{name} needs second derivatives "
                                  "or forward mode, which cygrad does not compute")

    unsupported.__name__ = name
    return unsupported


jvp = _second_order("jvp")
hessian = _second_order("hessian")
hvp = _second_order("hvp")
vhp = _second_order("vhp")
