"""The index of the op table: every torch name cygrad offers and where it is exposed.

    @export("sum", method=True)              # cygrad.sum and Tensor.sum
    def reduce_sum(input, dim=None, keepdim=False, *, dtype=None): ...

A function exported as a method takes the tensor as its first argument, so `x.sum(1)` and
`cygrad.sum(x, 1)` are one function. `install` (run once by cygrad/__init__.py) puts the
methods on Tensor; cygrad, cygrad.nn.functional and cygrad.nn read FUNCTIONS, FUNCTIONAL and
MODULES. Nothing here knows any op: the ops register themselves when their modules load.
"""

import functools
import inspect

FUNCTIONS = {}  # cygrad.<name>
METHODS = {}  # Tensor.<name>
FUNCTIONAL = {}  # cygrad.nn.functional.<name>
MODULES = {}  # cygrad.nn.<Name>: activation modules made from elementwise entries
ENTRIES = {}  # elementwise entries by name (elementwise.py): tests, the bridge, the monitor


def export(*names, method=False, methods=(), function=True, functional=False):
    """Register fn under torch's names: `names` as cygrad functions (the first is its name),
    as a Tensor method (method=True: the first name; `methods`: more names), as an
    nn.functional function (functional=True, or a name)."""

    def register(fn):
        name = names[0] if names else fn.__name__
        fn.__name__ = fn.__qualname__ = name
        fn = _numpy_aliases(fn)
        if function:
            for n in names or (name,):
                FUNCTIONS[n] = fn
        if method:
            METHODS[name] = fn
        for m in methods:
            METHODS[m] = fn
        if functional:
            FUNCTIONAL[functional if isinstance(functional, str) else name] = fn
        return fn

    return register


def _numpy_aliases(fn):
    """fn taking torch's numpy-style keyword aliases, axis= for dim and keepdims= for keepdim,
    as torch's argument parser does for every `dim` (fn itself when it has no dim or takes
    **kwargs)."""
    params = inspect.signature(fn).parameters
    if "dim" not in params or any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return fn

    @functools.wraps(fn)
    def aliased(*args, **kwargs):
        if "axis" in kwargs:
            kwargs["dim"] = kwargs.pop("axis")
        if "keepdims" in kwargs:
            kwargs["keepdim"] = kwargs.pop("keepdims")
        return fn(*args, **kwargs)

    return aliased


def install(cls):
    """Put every registered method on the Tensor class (explicit methods of the class win)."""
    for name, fn in METHODS.items():
        if name not in cls.__dict__:
            setattr(cls, name, fn)
