"""Ops a replay runs as their kernel calls: the dense layers.

A plan calls most ops' own forward and backward. For the dense layers — `ops.layers.Linear` on
2-D inputs and `LinearActivation` (a Linear fused with its activation) — it writes out the
kernel calls those methods make, with the same arguments in the same order, straight to the
backend's implementation (the module `cygrad.backend` dispatches to, and the thread count it
passes: both are guards of the plan). What this skips is Python only: the op method, the
`has_kernel` lookup, the backend wrappers' argument checks (the guards already fixed every
shape and dtype). Each function below mirrors the method named in its docstring; the bitwise
tests of tests/test_compile.py compare the result with eager.
"""

from .. import backend as B
from ..ops.layers import Linear, LinearActivation


def lower(builder, op, params, args, arrays, out):
    """(forward lines, backward function) for op, or None: the op runs its own methods.
    args: the variables of its inputs; out: the variable its output goes to."""
    if params.get("in_shape") is not None or any(a.ndim != 2 for a in arrays[:1]):
        return None
    if type(op) is Linear:
        return _linear(builder, params, args, out)
    if isinstance(op, LinearActivation) and len(args) == 3:
        return _linear_activation(builder, op, params, args, arrays, out)
    return None


def _kernels(builder):
    """Names for the backend implementation's functions and the thread count."""
    ns = builder.ns
    if "_KG" not in ns:
        impl = B._impl_var.get(B._impl)  # (the numpy twin has no fused kernels: None)
        ns.update(_KG=impl.gemm, _KBA=impl.bias_add,
                  _KBACT=getattr(impl, "bias_activation", None),
                  _KABB=getattr(impl, "activation_backward_bias", None),
                  _KCS=impl.column_sum, _NT=B._threads_var.get(B._kernel_threads))
    return ns


def _linear(builder, params, args, out):
    """ops.layers.Linear.forward / backward for a 2-D x."""
    _kernels(builder)
    x, w = args[0], args[1]
    lines = [f"{out} = _KG({x}, {w}, False, True, _NT)"]
    if len(args) == 3:
        lines.append(f"_KBA({out}, {args[2]}, {out}, _NT)")  # in place: a fresh gemm output
    needs = params.get("needs", ())

    def backward(g):
        parts = [f"_KG({g}, {w}, False, False, _NT)" if needs[0] else "None",
                 f"_KG({g}, {x}, True, False, _NT)" if needs[1] else "None"]
        if len(needs) == 3:
            parts.append(f"_KCS({g}, _NT)" if needs[2] else "None")
        return [f"_r = ({', '.join(parts)})"]

    return lines, backward if needs else None


def _linear_activation(builder, op, params, args, arrays, out):
    """ops.layers.LinearActivation.forward / backward, where the backend has the kernel."""
    e = op.entry
    probe = arrays[0]
    if not B.has_kernel(e.kernel, probe):
        return None
    _kernels(builder)
    x, w, b = args
    param = builder._const(params.get(e.kernel_param, 0.0), "K")
    kernel = builder._const(e.kernel, "K")
    z = builder._new("z")
    lines = [f"{z} = _KG({x}, {w}, False, True, _NT)",
             f"{out} = _KBACT({kernel}, {z}, {b}, {param}, _NT)"]
    saved = z if "x" in e.saves else out
    needs = params.get("needs", ())

    def backward(g):
        lines = [f"_dz, _db = _KABB({kernel}, {g}, {saved}, {param}, _NT)"]
        parts = [f"_KG(_dz, {w}, False, False, _NT)" if needs[0] else "None",
                 f"_KG(_dz, {x}, True, False, _NT)" if needs[1] else "None",
                 "_db" if needs[2] else "None"]
        lines.append(f"_r = ({', '.join(parts)})")
        return lines

    return lines, backward if needs else None
