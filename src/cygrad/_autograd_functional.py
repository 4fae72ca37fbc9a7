"""torch.autograd.functional: jacobian and vjp by reverse mode (one backward pass per output
element for jacobian), and the second-order and forward-mode ones (hessian, hvp, vhp, jvp)
by backward with create_graph=True (cygrad/ops/higher.py), as torch computes them: jvp by
torch's double-backward trick (the vjp's derivative with respect to v)."""

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


def _grad_inputs(inputs, create_graph=False):
    """Leaves on the inputs' values, requiring grad (the caller's are not touched); with
    create_graph an input that requires grad stays connected to its graph (a view of it, as
    torch's _grad_preprocess)."""
    return tuple(t.view_as(t) if create_graph and t.requires_grad
                 else t.detach().requires_grad_(True) for t in inputs)


def _run(func, inputs, fn):
    from . import autograd

    with autograd.enable_grad():
        out = func(*inputs)
    single, outputs = _as_tuple(out, "outputs of the user-provided function", fn)
    return out, single, outputs


def _post(x, create_graph):
    """Results as torch's _grad_postprocess: detached unless create_graph."""
    if isinstance(x, tuple):
        return tuple(_post(t, create_graph) for t in x)
    return x if create_graph or x is None else x.detach()


def _vectors(v, against, fn, inputs=False):
    """v as a tuple matching `against` (the outputs, or with inputs=True the inputs); None
    allowed for a single one-element tensor."""
    if v is None:
        if len(against) != 1 or against[0].numel() != 1:
            raise RuntimeError("The vector v can only be None if the input to the user-provided "
                               "function is a single Tensor with a single element." if inputs
                               else "The vector v can only be None if the user-provided "
                               "function returns a single Tensor with a single element.")
        return (None,)
    _, vs = _as_tuple(v, "v", fn)
    if len(vs) != len(against):
        raise RuntimeError(f"v is a tuple of invalid length: should be {len(against)} but "
                           f"got {len(vs)}.")
    for k, (o, w) in enumerate(zip(against, vs)):
        if tuple(o.shape) != tuple(w.shape):
            raise RuntimeError(f"Mismatch in shape: v[{k}] has a shape of {w.shape} and the "
                               f"input has a shape of {o.shape}." if inputs else
                               f"Mismatch in shape: grad_output[{k}] has a shape of {w.shape} "
                               f"and output[{k}] has a shape of {o.shape}.")
    return vs


def _grads(outputs, inputs, vs, create_graph, strict, what="outputs"):
    """v^T d outputs / d inputs, zeros where an input is not used (strict: an error)."""
    from . import autograd

    live = [(o, w) for o, w in zip(outputs, vs) if o.requires_grad]
    if live:
        grads = autograd.grad([o for o, _ in live], inputs, grad_outputs=[w for _, w in live],
                              allow_unused=True, create_graph=create_graph, retain_graph=True)
    else:
        grads = (None,) * len(inputs)
    result = []
    for j, (g, t) in enumerate(zip(grads, inputs)):
        if g is None:
            if strict:
                raise RuntimeError(f"The {what} of the user-provided function are independent "
                                   f"of input {j}. This is not allowed in strict mode.")
            g = _wrap(np.zeros_like(t._data))
        result.append(g)
    return tuple(result)


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False,
             strategy="reverse-mode"):
    """d func(inputs) / d inputs: for a Tensor input and output, a tensor of shape
    output.shape + input.shape; tuples of them give tuples (per output, per input)."""
    if strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError('Expected strategy to be either "forward-mode" or "reverse-mode".')
    if strategy == "forward-mode":
        raise NotImplementedError("jacobian(strategy='forward-mode') is not supported in "
                                  "cygrad (reverse mode only)")
    single_in, inputs = _as_tuple(inputs, "inputs", "jacobian")
    inputs = _grad_inputs(inputs, create_graph)
    _, single_out, outputs = _run(func, inputs, "jacobian")
    if create_graph:
        rows = _jacobian_graph(outputs, inputs, strict)
    else:
        rows = _jacobian_rows(outputs, inputs, strict)
    if single_out and single_in:
        return rows[0][0]
    if single_out:
        return rows[0]
    if single_in:
        return tuple(r[0] for r in rows)
    return tuple(rows)


def _jacobian_graph(outputs, inputs, strict):
    """jacobian's rows as recorded Tensors (create_graph=True): one backward with a graph per
    output element, stacked."""
    from . import autograd, stack

    rows = []
    for k, out in enumerate(outputs):
        if strict and not out.requires_grad:
            raise RuntimeError(f"Output {k} of the user-provided function does not require "
                               "gradients. The outputs must be computed in a differentiable "
                               "manner from the input when running in strict mode.")
        flat = out.reshape(-1)
        parts = [[] for _ in inputs]
        for e in range(flat.shape[0]):
            grads = autograd.grad(flat[e], inputs, retain_graph=True, create_graph=True,
                                  allow_unused=True) if out.requires_grad else (None,) * len(inputs)
            for j, g in enumerate(grads):
                if g is None:
                    if strict:
                        raise RuntimeError(f"Output {k} of the user-provided function is "
                                           f"independent of input {j}. This is not allowed in "
                                           "strict mode.")
                    g = _wrap(np.zeros_like(inputs[j]._data))
                parts[j].append(g)
        rows.append(tuple(
            (stack(p) if p else _wrap(np.zeros((0,) + tuple(t.shape), t._data.dtype))).reshape(
                tuple(out.shape) + tuple(t.shape)) for p, t in zip(parts, inputs)))
    return rows


def _jacobian_rows(outputs, inputs, strict):
    from . import autograd

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
    return rows


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T d func / d inputs): the outputs and the vector-Jacobian product for
    each input (v may be omitted for a one-element output); detached unless create_graph."""
    single_in, inputs = _as_tuple(inputs, "inputs", "vjp")
    inputs = _grad_inputs(inputs, create_graph)
    out, single_out, outputs = _run(func, inputs, "vjp")
    vs = _vectors(v, outputs, "vjp")
    result = _grads(outputs, inputs, vs, create_graph, strict)
    return _post(out if single_out else tuple(outputs), create_graph), \
        _post(result[0] if single_in else result, create_graph)


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), d func / d inputs . v): the Jacobian-vector product, by torch's
    double-backward trick (the vjp with a placeholder u, differentiated with respect to u)."""
    from . import autograd

    single_in, inputs = _as_tuple(inputs, "inputs", "jvp")
    inputs = _grad_inputs(inputs, create_graph)
    vs = _vectors(v, inputs, "jvp", inputs=True)
    out, single_out, outputs = _run(func, inputs, "jvp")
    with autograd.enable_grad():
        us = tuple(_wrap(np.zeros_like(o._data)).requires_grad_(True) for o in outputs)
        back = _grads(outputs, inputs, us, True, strict)
        live = [(b, w) for b, w in zip(back, vs) if b.requires_grad]
        if live:
            result = autograd.grad([b for b, _ in live], us, grad_outputs=[w for _, w in live],
                                   allow_unused=True, create_graph=create_graph)
        else:
            result = (None,) * len(us)
    result = tuple(_wrap(np.zeros_like(o._data)) if r is None else r
                   for r, o in zip(result, outputs))
    return _post(out if single_out else tuple(outputs), create_graph), \
        _post(result[0] if single_out else result, create_graph)


def _scalar_function(func, fn):
    def scalar(*args):
        out = func(*args)
        single, outputs = _as_tuple(out, "outputs of the user-provided function", fn)
        if len(outputs) != 1 or outputs[0].numel() != 1:
            raise RuntimeError(f"The function given to {fn} should return a single Tensor with "
                               "a single element.")
        return outputs[0].reshape(())
    return scalar


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False,
            outer_jacobian_strategy="reverse-mode"):
    """The Hessian of a scalar func: the jacobian of its gradient (shape input.shape * 2 for
    one input; a tuple of tuples for several)."""
    if outer_jacobian_strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError('Expected strategy to be either "forward-mode" or "reverse-mode".')
    scalar = _scalar_function(func, "hessian")
    single_in, items = _as_tuple(inputs, "inputs", "hessian")

    def gradient(*args):
        return jacobian(scalar, args, create_graph=True, strict=strict)

    result = jacobian(gradient, items, create_graph=create_graph, strict=strict)
    if single_in:
        return result[0][0] if isinstance(result[0], tuple) else result[0]
    return result


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T H): a scalar func's vector-Hessian product."""
    return _second(func, inputs, v, create_graph, strict, "vhp")


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), H v): a scalar func's Hessian-vector product (torch's double-backward
    form: the vhp of a placeholder, differentiated with respect to it)."""
    return _second(func, inputs, v, create_graph, strict, "hvp")


def _second(func, inputs, v, create_graph, strict, fn):
    from . import autograd

    single_in, inputs = _as_tuple(inputs, "inputs", fn)
    inputs = _grad_inputs(inputs, create_graph)
    vs = _vectors(v, inputs, fn, inputs=True)
    out, single_out, outputs = _run(func, inputs, fn)
    if len(outputs) != 1 or outputs[0].numel() != 1:
        raise RuntimeError(f"The function given to {fn} should return a single Tensor with a "
                           "single element.")
    with autograd.enable_grad():
        jac = _grads(outputs, inputs, (None,), True, strict)
        if fn == "vhp":
            result = _grads(jac, inputs, vs, create_graph, strict, "gradients")
        else:
            us = tuple(_wrap(np.zeros_like(t._data)).requires_grad_(True) for t in inputs)
            back = _grads(jac, inputs, us, True, strict, "gradients")
            result = _grads(back, us, vs, create_graph, strict, "gradients")
    return _post(out, create_graph), _post(result[0] if single_in else result, create_graph)
