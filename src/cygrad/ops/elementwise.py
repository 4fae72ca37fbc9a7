"""Elementwise ops, one entry each: the table HIPS autograd and tinygrad keep, for cygrad.

An entry states an op once: its torch name, its numpy twin (`forward`), its backward (`grad`,
numpy too), the rule in words, what backward reads, the Cython kernel that computes it where
one exists (csrc/elementwise.pyx, float32/float64), and how it meets integer input. From the
entry come the op class, `cygrad.<name>`, `Tensor.<name>` and `Tensor.<name>_`, the
nn.functional function and nn module where named, Linear's fused forms (`fusable`), the
PyTorch bridge and the tests (tests/ops/test_elementwise_table.py walks this table).

Backward formulas follow torch's derivatives.yaml term by term, so gradients agree with torch's
to the last bit where numpy rounds as ATen does. Twins take and return numpy arrays; `x` is the
input, `y` the output, `g` the output's gradient; parameters arrive as keywords.

Adding an elementwise op: one `unary(...)` line below, its kernel in csrc/elementwise.pyx if it
needs one (else the twin runs on both backends: numpy's ufuncs compute each element on its
own), and its test domain in the entry.
"""

import math
import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np

from .. import backend as B
from .. import dtypes
from ..tensor import Tensor, _local, _wrap, apply, apply_unrecorded
from . import Op, higher, registry

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# ---------------------------------------------------------------------- unary ops

@dataclass(frozen=True, eq=False)
class Unary:
    """One elementwise op y = f(x); see the module docstring."""

    name: str
    forward: object  # numpy twin: y = forward(x, **params)
    grad: object  # dx = grad(g, x, y, **params); None: no gradient flows (a step function)
    rule: str
    saves: str = "x"  # what backward reads: "x", "y", "xy" or ""
    kernel: str = None  # csrc/elementwise.pyx kernel (float32/float64 on the cython backend)
    kernel_param: str = None  # the parameter the kernel takes as its one float
    fusable: bool = False  # the kernel has the bias-fused forms a Linear runs
    params: tuple = ()  # ((name, default), ...): keyword parameters, in torch's order
    ints: str = "float"  # integer input: "float" (computed in the default float dtype),
    #                      "keep" (computed in its own dtype), "error" (torch refuses it)
    bools: str = None  # bool input, where it differs from integers: "keep", "int64", "error"
    module: str = None  # nn.<module> running it
    functional: bool = False  # also nn.functional.<name>
    exposed: str = "torch"  # where torch has it: "torch" (torch.f, Tensor.f and Tensor.f_),
    #                         "function" (torch.f, no method), "functional" (F.f only)
    aliases: tuple = ()
    leading: tuple = ()  # params torch's function takes before the input (polygamma's n)
    domain: tuple = (-2.0, 2.0)  # where the tests draw inputs (away from kinks and poles)
    health: str = None  # what the symmetry monitor measures after it: "saturating" or "dead"
    extra: dict = field(default_factory=dict)


class UnaryOp(Op):
    """y = f(x), elementwise; a subclass per entry sets `entry`."""

    entry = None

    def forward(self, x):
        e = self.entry
        params = self.__dict__
        if e.kernel is not None and B.has_kernel(e.kernel, x):
            y = B.activation_forward(e.kernel, x, params.get(e.kernel_param, 0.0))
        else:
            y = e.forward(x, **{k: params[k] for k in e.param_names if k in params})
        if e.saves:
            if "x" in e.saves:
                self.x = x
            if "y" in e.saves:
                self.y = y
        return y

    def backward(self, g):
        e = self.entry
        params = self.__dict__
        x, y = params.get("x"), params.get("y")
        if e.kernel is not None and B.has_kernel(e.kernel, g):
            saved = x if e.saves == "x" else y
            return (B.activation_backward(e.kernel, g, saved, params.get(e.kernel_param, 0.0)),)
        extra = {k: v for k, v in params.items() if k in e.param_names}
        return (e.grad(g, x, y, **extra),)

    def vjp(self, g, inputs, output):
        """backward(create_graph=True): the entry's own formula, on Tensors (ops/higher.py)."""
        e = self.entry
        extra = {k: v for k, v in self.__dict__.items() if k in e.param_names}
        return (higher.traced(e.grad, g, inputs[0], output, name=self.name(), **extra),)


def _camel(name):
    return "".join(part.capitalize() for part in name.split("_"))


def _sinc_slope(x, y):
    """d sinc(x) / dx = (cos(pi x) - sinc(x)) / x, and its limit 0 at x = 0 (torch's)."""
    zero = x == 0
    safe = np.where(zero, np.ones_like(x), x)
    return np.where(zero, np.zeros_like(x), (np.cos(_t(x, math.pi) * x) - y) / safe)


def _quiet(f):
    """f with numpy's floating-point warnings off (torch gives inf and NaN silently)."""
    if f is None:
        return None

    def quiet(*args, **kwargs):
        with np.errstate(all="ignore"):
            return f(*args, **kwargs)

    return quiet


def unary(name, forward, grad, rule, quiet=False, **spec):
    """Declare an elementwise op: the entry, its op class and its frontends. quiet: an op whose
    numpy twin can warn (a pole, a domain's edge, an overflow) runs with the warnings off."""
    if quiet:
        forward, grad = _quiet(forward), _quiet(grad)
    entry = Unary(name, forward, grad, rule, **spec)
    object.__setattr__(entry, "param_names", tuple(p for p, _ in entry.params))
    differentiable = grad is not None
    op = type(_camel(name), (UnaryOp,), {
        "entry": entry, "rule": rule, "__doc__": f"y = {name}(x); {rule}",
        "zero_grad": grad is _zeros,  # a step function: its gradient a constant 0
        "saves": (0,) if "x" in entry.saves else (),
        "saves_output": "y" in entry.saves, "__module__": __name__,
        "saves_nothing": not entry.saves})
    object.__setattr__(entry, "op", op)
    defaults = dict(entry.params)

    def function(input, *args, out=None, **kwargs):
        if out is not None:
            return out._write(function(input, *args, **kwargs))
        if name in _TAKES_INPLACE and (kwargs or len(args) > len(entry.param_names)):
            if len(args) > len(entry.param_names):  # F.leaky_relu(x, 0.2, True)
                kwargs["inplace"], args = args[len(entry.param_names)], \
                    args[:len(entry.param_names)]
            if kwargs.pop("inplace", False):  # F.relu(x, inplace=True) writes x, as torch's
                return inplace(input, *args, **kwargs)
        params = _bind(entry, defaults, args, kwargs)
        x = _input(input, entry)
        if not differentiable:
            return _wrap(_plain(op, x._data, params))
        return apply(op, x, **params) if params else apply(op, x)

    function.__doc__ = f"{name}(input{_signature(entry)}): elementwise, as torch.{name}. " \
                       f"Backward: {rule}."

    def inplace(self, *args, **kwargs):
        if entry.ints == "float" and self._data.dtype not in _FLOATS:
            raise RuntimeError(f"result type Float can't be cast to the desired output type "
                               f"{dtypes.SCALAR_NAMES[self.dtype.name]}")
        return self._write(function(self._inplace_input(), *args, **kwargs))

    inplace.__doc__ = f"In place: self = {name}(self)."
    object.__setattr__(entry, "function", function)
    object.__setattr__(entry, "inplace", inplace)
    as_method = entry.exposed == "torch"
    if entry.leading:  # torch.polygamma(n, input), but input.polygamma(n)
        registry.export(name, method=as_method, function=False)(function)
        registry.export(name)(_leading_first(entry, function))
    else:
        registry.export(name, *entry.aliases, method=as_method, methods=entry.aliases
                        if as_method else (), function=entry.exposed != "functional",
                        functional=entry.functional)(function)
    if as_method:
        registry.export(name + "_", method=True, function=False)(inplace)
        for alias in entry.aliases:
            registry.METHODS[alias + "_"] = inplace
    if entry.functional and name in _FUNCTIONAL_INPLACE:
        registry.FUNCTIONAL[name + "_"] = inplace
    registry.ENTRIES[name] = entry
    if entry.module:
        registry.MODULES[entry.module] = entry
    return entry


_FUNCTIONAL_INPLACE = ("relu", "leaky_relu", "elu", "hardtanh", "selu")  # F.relu_ ...
# the entries whose nn.functional form takes `inplace` in torch (F.relu(x, inplace=True))
_TAKES_INPLACE = {"relu", "relu6", "leaky_relu", "hardtanh", "elu", "selu", "celu", "silu",
                  "mish", "hardsigmoid", "hardswish"}


def _plain(op_class, x, params):
    op = op_class.__new__(op_class)
    op.__dict__ = dict(params)
    return op.forward(x)


def _leading_first(entry, function):
    """torch's function form of an entry with leading parameters: fn(n, input, ...)."""
    count = len(entry.leading)

    def leading_first(*args, out=None, **kwargs):
        values = list(args[:count])
        for p in entry.leading[len(values):]:
            if p not in kwargs:
                raise TypeError(f"{entry.name}() missing required argument '{p}'")
            values.append(kwargs.pop(p))
        rest = args[count:]
        if not rest and "input" not in kwargs:
            raise TypeError(f"{entry.name}() missing required argument 'input'")
        x = rest[0] if rest else kwargs.pop("input")
        return function(x, *values, *rest[1:], out=out, **kwargs)

    leading_first.__doc__ = f"{entry.name}({', '.join(entry.leading)}, input): as " \
                            f"torch.{entry.name}; {function.__doc__}"
    return leading_first


def _signature(entry):
    return "".join(f", {p}={d!r}" for p, d in entry.params)


def _bind(entry, defaults, args, kwargs):
    """The op's parameters from positional and keyword arguments, defaults filled in."""
    if not args and not kwargs:
        return dict(defaults) if defaults else {}
    names = entry.param_names
    if len(args) > len(names):
        raise TypeError(f"{entry.name}() takes {len(names) + 1} positional arguments but "
                        f"{len(args) + 1} were given")
    params = dict(defaults)
    params.update(zip(names, args))
    for k, v in kwargs.items():
        if k not in defaults:
            raise TypeError(f"{entry.name}() got an unexpected keyword argument '{k}'")
        params[k] = v
    check = entry.extra.get("check")
    if check is not None:
        check(params)
    return params


def _input(x, entry):
    """x as a Tensor the op computes on: integers and bools per the entry's rules."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{entry.name}(): argument 'input' must be Tensor, not "
                        f"{type(x).__name__}")
    if x._data.dtype in _FLOATS:
        return x
    rule = entry.ints
    if x._data.dtype == np.bool_:
        rule = entry.bools or ("error" if rule == "keep" else rule)
    if rule == "keep":
        return x
    if rule == "int64":
        return x.type(dtypes.int64)
    if rule == "error":
        raise NotImplementedError(f"\"{entry.name}_cpu\" not implemented for "
                                  f"'{dtypes.SCALAR_NAMES[x.dtype.name]}'")
    return x.type(dtypes.get_default_dtype())


def _t(x, v):
    """A Python number as x's dtype (numpy would keep a float32 array float32 anyway, but
    0-d arrays and numpy scalars need it spelled out)."""
    return x.dtype.type(v)


def _zeros(g, x, y, **params):
    return np.zeros_like(g)


def _z(a):
    """A zero of a's dtype (where torch writes a literal 0: never -0.0 or NaN from _z(g))."""
    return a.dtype.type(0)


# ---- the table ------------------------------------------------------------------------------
# Gradients as torch's derivatives.yaml writes them (grad, self, result -> g, x, y).

unary("abs", np.abs, lambda g, x, y: g * np.sign(x), "dx = g * sign(x)", ints="keep",
      domain=(0.1, 2.0), aliases=("absolute",))
unary("neg", np.negative, lambda g, x, y: -g, "dx = -g", saves="", ints="keep",
      aliases=("negative",))
unary("exp", np.exp, lambda g, x, y: g * y, "dx = g * y", saves="y", quiet=True)
unary("exp2", np.exp2, lambda g, x, y: g * (y * _t(g, math.log(2.0))), "dx = g * y * ln 2",
      saves="y", quiet=True)
unary("expm1", np.expm1, lambda g, x, y: g * (y + 1), "dx = g * (y + 1)", saves="y", quiet=True)
unary("log", np.log, lambda g, x, y: g / x, "dx = g / x", domain=(0.1, 3.0), quiet=True)
unary("log2", np.log2, lambda g, x, y: g / (x * _t(x, 0.6931471805599453)),
      "dx = g / (x ln 2)", domain=(0.1, 3.0), quiet=True)
unary("log10", np.log10, lambda g, x, y: g / (x * _t(x, 2.302585092994046)),
      "dx = g / (x ln 10)", domain=(0.1, 3.0), quiet=True)
unary("log1p", np.log1p, lambda g, x, y: g / (x + 1), "dx = g / (x + 1)", domain=(-0.5, 3.0),
      quiet=True)
unary("sqrt", np.sqrt, lambda g, x, y: g / (2 * y), "dx = g / (2 y)", saves="y",
      domain=(0.1, 3.0), quiet=True)
unary("rsqrt", lambda x: 1 / np.sqrt(x), lambda g, x, y: _t(g, -0.5) * g * (y * y * y),
      "dx = -g y**3 / 2", saves="y", domain=(0.1, 3.0), quiet=True)
unary("reciprocal", lambda x: 1 / x, lambda g, x, y: -g * (y * y), "dx = -g y**2", saves="y",
      domain=(0.5, 3.0), quiet=True)
unary("square", np.square, lambda g, x, y: g * (2 * x), "dx = g * 2x", ints="keep",
      bools="int64")
unary("sin", np.sin, lambda g, x, y: g * np.cos(x), "dx = g cos(x)")
unary("cos", np.cos, lambda g, x, y: g * -np.sin(x), "dx = -g sin(x)")
unary("tan", np.tan, lambda g, x, y: g * (1 + y * y), "dx = g (1 + y**2)", saves="y",
      domain=(-1.2, 1.2), quiet=True)
unary("asin", np.arcsin, lambda g, x, y: g / np.sqrt(1 - x * x), "dx = g / sqrt(1 - x**2)",
      domain=(-0.9, 0.9), aliases=("arcsin",), quiet=True)
unary("acos", np.arccos, lambda g, x, y: g * -(1 / np.sqrt(1 - x * x)),
      "dx = -g / sqrt(1 - x**2)", domain=(-0.9, 0.9), aliases=("arccos",), quiet=True)
unary("atan", np.arctan, lambda g, x, y: g / (x * x + 1), "dx = g / (1 + x**2)",
      aliases=("arctan",))
unary("asinh", np.arcsinh, lambda g, x, y: g / np.sqrt(x * x + 1), "dx = g / sqrt(x**2 + 1)",
      aliases=("arcsinh",))
unary("acosh", np.arccosh, lambda g, x, y: g / np.sqrt(x * x - 1), "dx = g / sqrt(x**2 - 1)",
      domain=(1.2, 3.0), aliases=("arccosh",), quiet=True)
unary("atanh", np.arctanh, lambda g, x, y: g / (1 - x * x), "dx = g / (1 - x**2)",
      domain=(-0.9, 0.9), aliases=("arctanh",), quiet=True)
unary("sinh", np.sinh, lambda g, x, y: g * np.cosh(x), "dx = g cosh(x)", quiet=True)
unary("cosh", np.cosh, lambda g, x, y: g * np.sinh(x), "dx = g sinh(x)", quiet=True)
unary("tanh", np.tanh, lambda g, x, y: g * (1 - y * y), "dx = g * (1 - y**2)", saves="y",
      kernel="tanh", fusable=True, module="Tanh", functional=True, health="saturating")
unary("sigmoid", lambda x: 1 / (1 + np.exp(-x)), lambda g, x, y: g * (1 - y) * y,
      "dx = g * (1 - y) * y", saves="y", kernel="sigmoid", fusable=True, module="Sigmoid",
      functional=True, health="saturating")
unary("relu", lambda x: np.maximum(x, _z(x)),
      lambda g, x, y: np.where(y <= 0, _z(g), g), "dx = g * (y > 0)", saves="y",
      kernel="relu", fusable=True, ints="keep", module="ReLU", functional=True,
      health="dead", domain=(-2.0, 2.0))
unary("leaky_relu", lambda x, negative_slope: np.where(x > 0, x, x * _t(x, negative_slope)),
      lambda g, x, y, negative_slope: np.where(x > 0, g, g * _t(g, negative_slope)),
      "dx = g if x > 0 else g * negative_slope", kernel="leaky_relu",
      kernel_param="negative_slope", fusable=True, params=(("negative_slope", 0.01),),
      module="LeakyReLU", functional=True, exposed="functional", health="dead", ints="error")
unary("relu6", lambda x: np.clip(x, 0, 6).astype(x.dtype, copy=False),
      lambda g, x, y: np.where((x > 0) & (x < 6), g, _z(g)), "dx = g * (0 < x < 6)",
      module="ReLU6", functional=True, exposed="functional", ints="keep", health="dead")
unary("hardtanh", lambda x, min_val, max_val: np.clip(x, min_val, max_val).astype(x.dtype),
      lambda g, x, y, min_val, max_val: np.where((x > min_val) & (x < max_val), g, _z(g)),
      "dx = g * (min_val < x < max_val)", params=(("min_val", -1.0), ("max_val", 1.0)),
      module="Hardtanh", functional=True, exposed="functional", health="saturating", ints="keep")
unary("elu", lambda x, alpha: np.where(x > 0, x, _t(x, alpha) * np.expm1(x)),
      lambda g, x, y, alpha: np.where(x > 0, g, g * _t(g, alpha) * np.exp(x)),
      "dx = g if x > 0 else g * alpha * exp(x)", params=(("alpha", 1.0),), module="ELU",
      functional=True, exposed="functional", ints="error")
unary("selu", lambda x: _t(x, 1.0507009873554804934193349852946) * np.where(
          x > 0, x, _t(x, 1.6732632423543772848170429916717) * np.expm1(x)),
      lambda g, x, y: g * _t(g, 1.0507009873554804934193349852946) * np.where(
          x > 0, 1, _t(x, 1.6732632423543772848170429916717) * np.exp(x)),
      "dx = g * scale * (1 if x > 0 else alpha * exp(x))", module="SELU", functional=True,
      exposed="function", ints="error")
unary("gelu", lambda x, approximate: _gelu(x, approximate),
      lambda g, x, y, approximate: _gelu_grad(g, x, approximate),
      "dx = g * (Phi(x) + x phi(x))  (tanh form with approximate='tanh')",
      params=(("approximate", "none"),), kernel="gelu", kernel_param="approximate",
      module="GELU", functional=True, exposed="functional",
      extra={"check": lambda p: _check_choice("approximate", p["approximate"],
                                               ("none", "tanh"))}, ints="error")
unary("silu", lambda x: x / (1 + np.exp(-x)),
      lambda g, x, y: _silu_grad(g, x), "dx = g * s * (1 + x (1 - s)), s = sigmoid(x)",
      kernel="silu", module="SiLU", functional=True, exposed="functional", ints="error")
unary("mish", lambda x: x * np.tanh(np.logaddexp(x, 0).astype(x.dtype)),
      lambda g, x, y: _mish_grad(g, x), "dx = g * (tanh(sp) + x sigmoid(x) (1 - tanh(sp)**2))",
      module="Mish", functional=True, exposed="functional", ints="error")
unary("softplus", lambda x, beta, threshold: _softplus(x, beta, threshold),
      lambda g, x, y, beta, threshold: _softplus_grad(g, x, beta, threshold),
      "dx = g * sigmoid(beta x)  (g where beta x > threshold)",
      params=(("beta", 1.0), ("threshold", 20.0)), module="Softplus", functional=True,
      exposed="functional", ints="error")
unary("logsigmoid", lambda x: -np.logaddexp(-x, 0).astype(x.dtype),
      lambda g, x, y: g * (1 / (1 + np.exp(x))), "dx = g * sigmoid(-x)", module="LogSigmoid",
      functional=True, exposed="functional", ints="error")
unary("softsign", lambda x: x / (1 + np.abs(x)), lambda g, x, y: g / ((1 + np.abs(x)) ** 2),
      "dx = g / (1 + |x|)**2", module="Softsign", functional=True, exposed="functional",
      bools="error")
unary("hardsigmoid", lambda x: np.clip(x + 3, 0, 6) / _t(x, 6),
      lambda g, x, y: np.where((x > -3) & (x < 3), g * _t(g, _SIXTH), _z(g)),
      "dx = g / 6 on (-3, 3)",
      module="Hardsigmoid", functional=True, exposed="functional", ints="error")
unary("hardswish", lambda x: x * (np.clip(x + 3, 0, 6) / 6),
      lambda g, x, y: np.where(x <= -3, _z(g), np.where(x < 3, g * ((x / 3) + 0.5), g)),
      "dx = g * (x/3 + 1/2) on (-3, 3) (0 from -3 down, g from 3 up: torch's)",
      module="Hardswish", functional=True, exposed="functional", ints="error")
unary("erf", lambda x: _erf(x), lambda g, x, y: g * (_t(g, 2 / math.sqrt(math.pi)) *
                                                  np.exp(-(x * x))),
      "dx = g * 2/sqrt(pi) * exp(-x**2)", kernel="erf")
unary("sinc", np.sinc, lambda g, x, y: g * _sinc_slope(x, y),
      "dx = g * (cos(pi x) - y) / x  (0 at x = 0)", saves="xy")
unary("erfc", lambda x: _erfc(x), lambda g, x, y: g * (_t(g, -2 / math.sqrt(math.pi)) *
      np.exp(-(x * x))), "dx = -g * 2/sqrt(pi) * exp(-x**2)")
unary("erfinv", lambda x: _erfinv(x), lambda g, x, y: g * (_t(g, math.sqrt(math.pi) / 2) *
      np.exp(y * y)), "dx = g * sqrt(pi)/2 * exp(y**2)", saves="y", domain=(-0.9, 0.9))
unary("lgamma", lambda x: _lgamma(x), lambda g, x, y: g * _polygamma01(x, 0),
      "dx = g * digamma(x)", domain=(0.3, 4.0))
unary("digamma", lambda x: _polygamma01(x, 0), lambda g, x, y: g * _polygamma01(x, 1),
      "dx = g * polygamma(1, x)", domain=(0.3, 4.0))
unary("polygamma", lambda x, n: _polygamma(x, n), lambda g, x, y, n: g * _polygamma(x, n + 1),
      "dx = g * polygamma(n + 1, x)", params=(("n", 1),), leading=("n",), domain=(0.3, 4.0),
      extra={"check": lambda p: _polygamma_order(p["n"])})
unary("deg2rad", lambda x: x * _t(x, math.pi / 180), lambda g, x, y: g * _t(g, math.pi / 180),
      "dx = g * pi / 180", saves="")
unary("rad2deg", lambda x: x * _t(x, 180 / math.pi), lambda g, x, y: g * _t(g, 180 / math.pi),
      "dx = g * 180 / pi", saves="")
unary("logit", lambda x, eps: _logit(x, eps), lambda g, x, y, eps: _logit_grad(g, x, eps),
      "dx = g / (x (1 - x)) (0 outside [eps, 1 - eps] when eps is given)",
      params=(("eps", None),), domain=(0.1, 0.9))
unary("sign", lambda x: _sign(x), _zeros, "dx = 0", saves="", ints="keep", bools="keep")
unary("sgn", lambda x: _sign(x), _zeros, "dx = 0", saves="", ints="keep", bools="keep")
unary("floor", np.floor, _zeros, "dx = 0", saves="", ints="keep")
unary("ceil", np.ceil, _zeros, "dx = 0", saves="", ints="keep")
unary("trunc", np.trunc, _zeros, "dx = 0", saves="", ints="keep", aliases=("fix",))
unary("frac", lambda x: x - np.trunc(x), lambda g, x, y: g, "dx = g", saves="", ints="error")
unary("round", lambda x, decimals: _round(x, decimals), _zeros, "dx = 0", saves="",
      ints="keep", params=(("decimals", 0),))


def _sign(x):
    return x.copy() if x.dtype == np.bool_ else np.sign(x)


# torch's hardsigmoid backward multiplies by one_sixth = 1.0f / 6.0f, a float even for doubles
_SIXTH = float(np.float32(1) / np.float32(6))


def _check_choice(name, value, choices):
    if value not in choices:
        raise RuntimeError(f"{name} argument must be one of {choices}, got {value!r}")


def _round(x, decimals):
    if decimals == 0:
        return np.round(x)
    return np.round(x, decimals).astype(x.dtype, copy=False)


_ERF = np.frompyfunc(math.erf, 1, 1)


_ERFC = np.frompyfunc(math.erfc, 1, 1)


def _erfc(x):
    """erfc elementwise (math.erfc in double, rounded once: accurate where 1 - erf is not)."""
    return _ERFC(x.astype(np.float64)).astype(x.dtype)


def _erfinv(y):
    """The inverse of erf elementwise, in double and rounded once: Giles' single-precision
    approximation of erfinv(|y|), then Newton steps on math.erf (|y| <= 1/2) or on
    log(math.erfc) (beyond: against log(1 - |y|), 1 - |y| exact there), the sign restored;
    +-inf at +-1, NaN beyond."""
    v = y.astype(np.float64)
    with np.errstate(all="ignore"):
        w = -np.log((1 - v) * (1 + v))
        central = w < 5
        t = np.where(central, w - 2.5, np.sqrt(w) - 3)
        cs = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
              -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
        ct = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
              -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)
        pa, pb = np.full_like(v, cs[0]), np.full_like(v, ct[0])
        for a, b in zip(cs[1:], ct[1:]):
            pa, pb = pa * t + a, pb * t + b
        a = np.abs(v)
        x = np.where(central, pa, pb) * a
        inside, tail = a < 1, a > 0.5
        for _ in range(6):  # on erf near 0; near +-1 on log erfc against log(1 - |y|), exact
            slope = 2 / math.sqrt(math.pi) * np.exp(-x * x)
            c = _ERFC(x).astype(np.float64)
            step = np.where(tail, (np.log(1 - a) - np.log(c)) * c / slope,
                            (_ERF(x).astype(np.float64) - a) / slope)
            x = np.where(inside & np.isfinite(step), x - step, x)
        x = np.copysign(x, v)
        x = np.where(v == 1, np.inf, np.where(v == -1, -np.inf, x))
        x = np.where(np.abs(v) > 1, np.nan, x)
    return x.astype(y.dtype)


def _lgamma_at(v):
    """math.lgamma, with torch's inf at the poles (0 and the negative integers)."""
    try:
        return math.lgamma(v)
    except ValueError:
        return math.inf


_LGAMMA = np.frompyfunc(_lgamma_at, 1, 1)


def _lgamma(x):
    """log|Gamma(x)| elementwise (math.lgamma in double, rounded once)."""
    return _LGAMMA(x.astype(np.float64)).astype(np.float64).astype(x.dtype)


# the asymptotic series' coefficients: digamma's B_2k / 2k and trigamma's B_2k
_PSI_SERIES = (1 / 12, -1 / 120, 1 / 252, -1 / 240, 1 / 132, -691 / 32760, 1 / 12)
_PSI1_SERIES = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6)


def _shifted(x, deriv):
    """digamma (deriv 0) or trigamma (deriv 1) for x >= 1 in double: the recurrence up to
    x >= 10, then the asymptotic series (within a few ulps)."""
    acc = np.zeros_like(x)
    x = x.copy()
    small = x < 10
    while small.any():
        acc = np.where(small, acc - (1 / x if deriv == 0 else -1 / (x * x)), acc)
        x = np.where(small, x + 1, x)
        small = x < 10
    inv2 = 1 / (x * x)
    if deriv == 0:
        series = sum(c * inv2 ** (k + 1) for k, c in enumerate(_PSI_SERIES))
        return acc + np.log(x) - 0.5 / x - series
    series = sum(c * inv2 ** k / x for k, c in enumerate(_PSI1_SERIES, start=1))
    return acc + 1 / x + 0.5 * inv2 + series


def _polygamma01(x, deriv):
    """digamma or trigamma elementwise, computed in double and rounded once: the reflection
    formula below 1 (psi(x) = psi(1 - x) - pi / tan(pi x); psi1(x) = pi^2 / sin^2(pi x) -
    psi1(1 - x)); torch's values at the poles (digamma: -inf at 0, NaN at the negative
    integers; trigamma: inf). On a traced tensor (lgamma's gradient differentiated again)
    digamma is the table's own op."""
    if isinstance(x, higher.Traced):
        return higher.call("digamma", x) if deriv == 0 else higher.call("polygamma", 1, x)
    v = x.astype(np.float64)
    with np.errstate(all="ignore"):
        low = v < 1
        mirrored = np.where(low, 1 - v, v)
        out = _shifted(mirrored, deriv)
        if deriv == 0:
            out = np.where(low, out - np.pi / np.tan(np.pi * v), out)
            out = np.where(v == 0, -np.inf, out)
            out = np.where((v < 0) & (v == np.floor(v)), np.nan, out)
        else:
            out = np.where(low, (np.pi / np.sin(np.pi * v)) ** 2 - out, out)
            out = np.where((v <= 0) & (v == np.floor(v)), np.inf, out)
    return out.astype(x.dtype)


def _polygamma_order(n):
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"polygamma(): argument 'n' must be int, not {type(n).__name__}")
    if n < 0:
        raise RuntimeError("polygamma(n, x) does not support negative n.")


# Bernoulli numbers B_2k / (2k)! for Euler-Maclaurin's tail of the Hurwitz zeta function
_ZETA_TAIL = tuple(float(b) / math.factorial(2 * k) for k, b in enumerate(
    (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510,
     43867 / 798, -174611 / 330, 854513 / 138, -236364091 / 2730), start=1))


def _hurwitz_zeta(s, q):
    """zeta(s, q) = sum_{i >= 0} (q + i)^-s for an integer s >= 2, elementwise in double: the
    terms up to q + i >= s + 10 summed, then Euler-Maclaurin's tail (12 terms: under an ulp of
    double there). Poles (q a non-positive integer): inf."""
    total = np.zeros_like(q)
    w = q.copy()
    near = w < s + 10
    while near.any():
        total = np.where(near, total + np.power(w, -float(s)), total)
        w = np.where(near, w + 1, w)
        near = w < s + 10
    power = np.power(w, -float(s))
    tail = w * power / (s - 1) + 0.5 * power
    rising, inv = float(s), 1 / w
    term = power * inv
    for k, c in enumerate(_ZETA_TAIL):
        tail = tail + c * rising * term
        rising *= (s + 2 * k + 1) * (s + 2 * k + 2)
        term = term * inv * inv
    out = total + tail
    return np.where((q <= 0) & (q == np.floor(q)), np.inf, out)


def _polygamma(x, n):
    """The n-th derivative of digamma elementwise, in double and rounded once: digamma and
    trigamma as their ops compute them, else (-1)^(n+1) n! zeta(n + 1, x). On a traced tensor
    (its gradient differentiated again) the op itself."""
    if isinstance(x, higher.Traced):
        return higher.call("polygamma", n, x)
    if n <= 1:
        return _polygamma01(x, n)
    v = x.astype(np.float64)
    with np.errstate(all="ignore"):
        factorial = float(math.factorial(n)) if n <= 170 else math.inf
        out = (1.0 if n % 2 else -1.0) * factorial * _hurwitz_zeta(n + 1, v)
    return out.astype(x.dtype)


def _logit(x, eps):
    """log(x / (1 - x)), x clamped to [eps, 1 - eps] first when eps is given (torch.logit)."""
    if eps is not None:
        x = np.clip(x, _t(x, eps), _t(x, 1 - eps)).astype(x.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(x / (1 - x))


def _logit_grad(g, x, eps):
    """torch's logit_backward: g / (x (1 - x)); with eps, 0 outside [eps, 1 - eps]."""
    with np.errstate(divide="ignore", invalid="ignore"):
        d = g / (x * (1 - x))
    if eps is None:
        return d
    return np.where((x < eps) | (x > 1 - eps), _z(g), d)


def _erf(x):
    """erf elementwise (math.erf in double, rounded once: numpy has no erf)."""
    return _ERF(x.astype(np.float64)).astype(x.dtype)


def _gelu(x, approximate):
    if approximate == "tanh":
        k, c = _t(x, math.sqrt(2 / math.pi)), _t(x, 0.044715)
        return _t(x, 0.5) * x * (1 + np.tanh(k * (x + c * x * x * x)))
    return x * _t(x, 0.5) * (1 + _erf(x * _t(x, 1 / math.sqrt(2))))


def _gelu_grad(g, x, approximate):
    if approximate == "tanh":
        k, c = _t(x, math.sqrt(2 / math.pi)), _t(x, 0.044715)
        inner = k * (x + c * x * x * x)
        t = np.tanh(inner)
        left, right = _t(x, 0.5) * x, 1 + t
        left_d, right_d = _t(x, 0.5) * right, left * ((1 - t * t) * (k * (1 + 3 * c * x * x)))
        return g * (left_d + right_d)
    cdf = _t(x, 0.5) * (1 + _erf(x * _t(x, 1 / math.sqrt(2))))
    pdf = np.exp(_t(x, -0.5) * x * x) * _t(x, 1 / math.sqrt(2 * math.pi))
    return g * (cdf + x * pdf)


def _silu_grad(g, x):
    s = 1 / (1 + np.exp(-x))
    return g * s * (1 + x * (1 - s))


def _mish_grad(g, x):
    s = 1 / (1 + np.exp(-x))
    t = np.tanh(np.logaddexp(x, 0).astype(x.dtype))
    return g * (t + x * s * (1 - t * t))


def _softplus(x, beta, threshold):
    bx = x * _t(x, beta)
    return np.where(bx > threshold, x, np.log1p(np.exp(bx)) / _t(x, beta))


def _softplus_grad(g, x, beta, threshold):
    z = np.exp(x * _t(x, beta))
    return np.where(x * _t(x, beta) > threshold, g, g * z / (z + 1))


# ---------------------------------------------------------------------- binary ops

@dataclass(frozen=True, eq=False)
class Binary:
    """One elementwise op z = f(a, b) with broadcasting; gradients are summed back to each
    operand's shape."""

    name: str
    forward: object  # numpy twin: z = forward(a, b)
    grad_a: object  # da = grad_a(g, a, b, z); None: none flows
    grad_b: object
    rule: str
    saves: str = "ab"  # what backward reads: any of "a", "b", "z"
    result: str = "promote"  # "promote": torch's result_type; "float": integers divide into
    #                          the default float dtype; "floating": float result types only
    #                          (NotImplementedError otherwise, as torch); "bool": a comparison;
    #                          "integral": bitwise, bool and integer operands only
    aliases: tuple = ()
    dunders: tuple = ()  # (operator, reflected operator)
    domain: tuple = (-2.0, 2.0)
    scalars: bool = True  # `other` may be a Python number (torch.atan2, maximum... refuse one)
    bools: bool = True  # bool tensors allowed (torch refuses them in sub)
    # torch's grad_fn names where they are not the op's (Camel name + "Backward0"): of two
    # tensors, of a tensor and a number, of a number and a tensor (pow: PowBackward1, 0, 2)
    nodes: tuple = (None, None, None)


class BinaryOp(Op):
    """z = f(a, b), broadcasting; a subclass per entry sets `entry`."""

    entry = None

    def forward(self, a, b):
        e = self.entry
        self.shapes = a.shape, b.shape
        z = e.forward(a, b)
        if "a" in e.saves:
            self.a = a
        if "b" in e.saves:
            self.b = b
        if "z" in e.saves:
            self.z = z
        return z

    def backward(self, g):
        e, needs, state = self.entry, self.needs, self.__dict__
        a, b, z = state.get("a"), state.get("b"), state.get("z")
        da = db = None
        if needs[0] and e.grad_a is not None:
            da = B.sum_to_shape(e.grad_a(g, a, b, z), self.shapes[0])
        if needs[1] and e.grad_b is not None:
            db = B.sum_to_shape(e.grad_b(g, a, b, z), self.shapes[1])
        return da, db

    def vjp(self, g, inputs, output):
        """backward(create_graph=True): the entry's own formulas, on Tensors (ops/higher.py)."""
        e, needs = self.entry, self.needs
        a, b = inputs
        grads = []
        for i, formula in enumerate((e.grad_a, e.grad_b)):
            if not needs[i] or formula is None:
                grads.append(None)
                continue
            d = higher.traced(formula, g, a, b, output, name=self.name())
            grads.append(higher.sum_to(d, self.shapes[i]))
        return tuple(grads)


def binary(name, forward, grad_a, grad_b, rule, **spec):
    entry = Binary(name, forward, grad_a, grad_b, rule, **spec)
    op = type(_camel(name), (BinaryOp,), {
        "entry": entry, "rule": rule, "__doc__": f"z = {name}(a, b); {rule}",
        "saves": tuple(i for i, k in enumerate("ab") if k in entry.saves),
        "saves_output": "z" in entry.saves, "__module__": __name__, "node": entry.nodes[0],
        "saves_nothing": not entry.saves})
    object.__setattr__(entry, "op", op)

    def function(input, other, *, out=None):
        result = _binary(entry, input, other)
        return result if out is None else out._write(result)

    function.__doc__ = f"{name}(input, other, *, out=None): elementwise with broadcasting, as " \
                       f"torch.{name}. Backward: {rule}."
    object.__setattr__(entry, "function", function)

    def inplace(self, other):
        return self._write(_binary(entry, self._inplace_input(), other))

    registry.export(name, *entry.aliases, method=True, methods=entry.aliases)(function)
    registry.export(name + "_", method=True, function=False)(inplace)
    for alias in entry.aliases:
        registry.METHODS[alias + "_"] = inplace
    registry.ENTRIES[name] = entry
    if entry.dunders:
        forward_name, reflected = entry.dunders

        def operator(self, other):
            if not _is_operand(other):
                return NotImplemented  # Python then says which types it could not combine
            return _binary(entry, self, other)

        commutes = forward_name in ("__add__", "__mul__")  # torch: __radd__ is __add__, the
        divides = forward_name == "__truediv__"

        def reflected_operator(self, other):  # tensor first (its graph's next_functions order)
            if not _is_operand(other):
                return NotImplemented
            if divides and not isinstance(other, (Tensor, np.ndarray)):  # torch's __rdiv__:
                return registry.METHODS["reciprocal"](self) * other  # 1/x, then times the number
            return _binary(entry, self, other) if commutes else _binary(entry, other, self)

        def inplace_operator(self, other):
            if not _is_operand(other):
                return NotImplemented
            return inplace(self, other)

        registry.METHODS[forward_name] = operator
        if reflected:
            registry.METHODS[reflected] = reflected_operator
        registry.METHODS["__i" + forward_name[2:]] = inplace_operator
    return entry


def _is_operand(x):
    return isinstance(x, (Tensor, bool, int, float, np.bool_, np.number, np.ndarray))


def _binary(entry, a, b):
    """Promote, broadcast-check and record one binary op (the operators' path). The usual
    cases first: two float tensors of one dtype, and a float tensor with a Python int or float
    (a 'wrapped number': the tensor's dtype, as torch.result_type gives), which the general
    path below would bring to the same op on the same arrays."""
    if isinstance(a, Tensor):
        da = a._data
        if isinstance(b, Tensor):
            db = b._data
            if da.dtype is db.dtype and da.dtype in _FLOATS and entry.result != "bool":
                if da.shape != db.shape:
                    _check_broadcast(da.shape, db.shape)
                return apply(entry.op, a, b)
        elif (type(b) is float or type(b) is int) and da.dtype in _FLOATS and entry.scalars \
                and entry.result in _SCALAR_FAST:
            out = apply(entry.op, a, _wrap(np.asarray(b, da.dtype)))
            if entry.nodes[1] is not None and out._op is not None:  # (no call: a hot path)
                out._op.node = entry.nodes[1]
            return out
    elif (type(a) is float or type(a) is int) and isinstance(b, Tensor) and entry.scalars \
            and entry.result in _SCALAR_FAST and b._data.dtype in _FLOATS:
        out = apply(entry.op, _wrap(np.asarray(a, b._data.dtype)), b)
        if entry.nodes[2] is not None and out._op is not None:
            out._op.node = entry.nodes[2]
        return out
    return _binary_general(entry, a, b)


def _named(out, node):
    """out, its node named as torch names the call's (node None: the op's own name)."""
    if node is not None and out._op is not None:
        out._op.node = node
    return out


# results where a float tensor with a number keeps its dtype
_SCALAR_FAST = ("promote", "float", "floating")


def _binary_general(entry, a, b):
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{entry.name}(): expected a Tensor operand, got "
                        f"{type(a).__name__} and {type(b).__name__}")
    if not entry.scalars and not (isinstance(a, Tensor) and isinstance(b, Tensor)):
        raise TypeError(f"{entry.name}(): argument 'other' must be Tensor, not "
                        f"{type(b if isinstance(a, Tensor) else a).__name__}")
    if not entry.bools and any(isinstance(t, Tensor) and t._data.dtype == np.bool_ or
                               isinstance(t, (bool, np.bool_)) for t in (a, b)):
        raise RuntimeError("Subtraction, the `-` operator, with a bool tensor is not supported. "
                           "If you are trying to invert a mask, use the `~` or `logical_not()` "
                           "operator instead.")
    if entry.name == "pow" and isinstance(b, int) and b < 0 and isinstance(a, Tensor) and \
            not a.is_floating_point():
        raise RuntimeError("Integers to negative integer powers are not allowed.")
    a, b = _operand(a), _operand(b)
    common = dtypes.result_type(a, b)
    if entry.result == "float" and not common.is_floating_point:
        common = dtypes.get_default_dtype()
    elif entry.result == "integral" and common.is_floating_point:
        raise RuntimeError(f"\"{entry.name}_cpu\" not implemented for '{common.name}'")
    elif entry.result == "floating" and not common.is_floating_point:
        raise NotImplementedError(f"\"{entry.name}_cpu\" not implemented for "
                                  f"'{dtypes.SCALAR_NAMES[common.name]}'")
    a, b = _as(a, common), _as(b, common)
    if a._data.shape != b._data.shape:
        _check_broadcast(a._data.shape, b._data.shape)
    if entry.result == "bool" or not common.is_floating_point:  # no gradient to record
        if _local.watch is not None:  # but an op to show (a compiled step replays it)
            return apply_unrecorded(entry.op, a, b)
        return _wrap(np.asarray(entry.forward(a._data, b._data)))
    return apply(entry.op, a, b)


def _operand(x):
    """A Python number stays one (it takes part in promotion as a 'wrapped number'); an
    array-like becomes a tensor."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (bool, int, float, np.bool_, np.number)):
        return x
    if isinstance(x, np.ndarray):
        return _wrap(np.array(x))
    from .factories import tensor

    return tensor(x)


def _as(x, dtype):
    if isinstance(x, Tensor):
        return x if x._data.dtype == dtype.numpy else x.type(dtype)
    return _wrap(np.asarray(x, dtype=dtype.numpy))


def _check_broadcast(sa, sb):
    """torch's error for shapes that do not broadcast (compared here: numpy's broadcast_shapes
    costs microseconds a call, on every broadcasting op)."""
    n = max(len(sa), len(sb))
    for i in range(1, min(len(sa), len(sb)) + 1):
        x, y = sa[-i], sb[-i]
        if x != y and x != 1 and y != 1:
            raise RuntimeError(f"The size of tensor a ({x}) must match the size of tensor b "
                               f"({y}) at non-singleton dimension {n - i}")


def _fdiv(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.true_divide(a, b)


def _pow(a, b):
    """a ** b; a scalar exponent takes torch's special forms (x*x for 2, x*x*x for 3,
    1/(x*x) for -2, sqrt, 1/sqrt, 1/x), whose roundings differ from pow's."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if a.dtype.kind in "iub" and b.dtype.kind in "iub":
            return _int_pow(a, b)
        if b.ndim == 0 and a.dtype.kind == "f":
            e = float(b)
            if e == 2.0:
                return a * a
            if e == 3.0:
                return a * a * a
            if e == -2.0:
                return 1 / (a * a)
            if e == 0.5:
                return np.sqrt(a)
            if e == -0.5:
                return 1 / np.sqrt(a)
            if e == -1.0:
                return 1 / a
            if e == 1.0:
                return a.copy()
            if e == 0.0:
                return np.ones_like(a)
        return np.power(a, b)


def _int_pow(a, b):
    """Integer powers as torch computes them: a negative exponent gives 0, except for bases 1
    and -1."""
    if a.dtype == np.bool_ and b.dtype == np.bool_:
        if b.ndim == 0:  # a Python bool exponent: torch's x ** 1 and x ** 0
            return a.copy() if b else np.ones_like(a)
        raise NotImplementedError("\"pow\" not implemented for 'Bool'")
    neg = b < 0
    if not neg.any():
        return np.power(a, b)
    magnitude = np.where(neg, -b, b)
    odd = magnitude % 2 == 1
    small = np.where(a == 1, 1, np.where(a == -1, np.where(odd, -1, 1), 0))
    return np.where(neg, small, np.power(a, np.where(neg, 0, b))).astype(
        np.result_type(a, b))


def _integer_division(fn, name):
    """fn for floats; for integers torch refuses a zero divisor, and bool pairs."""
    def divide(a, b):
        if a.dtype.kind in "iub" and b.dtype.kind in "iub":
            if a.dtype == np.bool_ and b.dtype == np.bool_:
                raise NotImplementedError(f"\"{name}_cpu\" not implemented for 'Bool'")
            if (b == 0).any():
                raise RuntimeError("ZeroDivisionError")
        with np.errstate(divide="ignore", invalid="ignore"):
            return fn(a, b)
    return divide


def _pow_grad_a(g, a, b, z):
    # torch: where(exponent == 0, 0, grad * (exponent * pow(self, exponent - 1)))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b == 0, _z(g), g * (b * _pow(a, b - 1)))


def _pow_grad_b(g, a, b, z):
    # torch: grad * where((self == 0) & (exponent >= 0), 0, result * log(self))
    with np.errstate(divide="ignore", invalid="ignore"):
        return g * np.where((a == 0) & (b >= 0), _z(z), z * np.log(a))


def _no_derivative(g, a, b, z):
    raise RuntimeError("the derivative for 'floor_divide' is not implemented.")


def _copysign_grad(g, a, z):
    """torch's copysign_tensor_self_backward: g * z / a, 0 where a = 0."""
    zero = a == 0
    return np.where(zero, _z(g), g * (z / np.where(zero, np.ones_like(a), a)))


def _xlogy(a, b):
    """a * log(b), 0 where a = 0 (unless b is NaN), as torch.xlogy."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a * np.log(b)
    return np.where((a == 0) & ~np.isnan(b), np.zeros_like(out), out)


def _xlogy_grad(g, a, b):
    """torch: xlogy(g, b), 0 where a = 0 and b <= 0."""
    return np.where((a == 0) & (b <= 0), _z(g), _xlogy(g, b)).astype(g.dtype)


def _tie_half(g, a, b, win):
    """maximum/minimum: the winner gets g, a tie splits it in halves (torch's rule)."""
    return np.where(a == b, g / 2, np.where(win, g, _z(g)))


binary("add", np.add, lambda g, a, b, z: g, lambda g, a, b, z: g, "da = g;  db = g",
       saves="", dunders=("__add__", "__radd__"))
binary("sub", np.subtract, lambda g, a, b, z: g, lambda g, a, b, z: -g, "da = g;  db = -g",
       saves="", dunders=("__sub__", "__rsub__"), aliases=("subtract",), bools=False,
       nodes=(None, None, "RsubBackward1"))
binary("mul", np.multiply, lambda g, a, b, z: g * b, lambda g, a, b, z: g * a,
       "da = g * b;  db = g * a", dunders=("__mul__", "__rmul__"), aliases=("multiply",))
binary("div", _fdiv, lambda g, a, b, z: g / b, lambda g, a, b, z: -g * ((a / b) / b),
       "da = g / b;  db = -g * ((a / b) / b)", result="float",
       dunders=("__truediv__", "__rtruediv__"), aliases=("divide", "true_divide"),
       domain=(0.5, 2.0))
binary("pow", _pow, _pow_grad_a, _pow_grad_b,
       "da = g * b * a**(b - 1) (0 where b == 0);  db = g * z * log(a)",
       saves="abz", dunders=("__pow__", "__rpow__"), domain=(0.5, 2.0),
       nodes=("PowBackward1", "PowBackward0", "PowBackward2"))


@registry.export("pow", method=True)
def _pow_function(input, exponent, *, out=None):
    """pow(input, exponent): torch names the second argument exponent."""
    result = _binary(registry.ENTRIES["pow"], input, exponent)
    return result if out is None else out._write(result)


@registry.export("pow_", method=True, function=False)
def _pow_inplace(self, exponent):
    return self._write(_binary(registry.ENTRIES["pow"], self._inplace_input(), exponent))


binary("maximum", np.maximum, lambda g, a, b, z: _tie_half(g, a, b, a > b),
       lambda g, a, b, z: _tie_half(g, a, b, b > a), "the larger operand gets g (a tie: g/2 each)",
       scalars=False)
binary("minimum", np.minimum, lambda g, a, b, z: _tie_half(g, a, b, a < b),
       lambda g, a, b, z: _tie_half(g, a, b, b < a),
       "the smaller operand gets g (a tie: g/2 each)", scalars=False)
binary("atan2", np.arctan2, lambda g, a, b, z: g * b * (1 / (a * a + b * b)),
       lambda g, a, b, z: g * -a * (1 / (a * a + b * b)),
       "da = g * b / (a**2 + b**2);  db = -g * a / (a**2 + b**2)", result="float",
       aliases=("arctan2",), scalars=False)
binary("hypot", np.hypot, lambda g, a, b, z: g * (a / z), lambda g, a, b, z: g * (b / z),
       "da = g * a / z;  db = g * b / z", saves="abz", scalars=False, domain=(0.5, 2.0),
       result="floating")
binary("logaddexp", np.logaddexp, lambda g, a, b, z: g / (1 + np.exp(b - a)),
       lambda g, a, b, z: g / (1 + np.exp(a - b)),
       "da = g / (1 + exp(b - a));  db = g / (1 + exp(a - b))", scalars=False,
       result="floating")
binary("logaddexp2", np.logaddexp2, lambda g, a, b, z: g / (1 + np.exp2(b - a)),
       lambda g, a, b, z: g / (1 + np.exp2(a - b)),
       "da = g / (1 + 2**(b - a));  db = g / (1 + 2**(a - b))", scalars=False,
       result="floating")
binary("copysign", np.copysign, lambda g, a, b, z: _copysign_grad(g, a, z),
       lambda g, a, b, z: np.zeros_like(g), "da = g * z / a (0 where a = 0);  db = 0",
       saves="az", result="float", domain=(0.5, 2.0))
binary("fmax", np.fmax, lambda g, a, b, z: np.where((a >= b) | np.isnan(b), g, _z(g)),
       lambda g, a, b, z: np.where((a >= b) | np.isnan(b), _z(g), g),
       "the larger operand (a at a tie, the one not NaN) gets g", scalars=False)
binary("fmin", np.fmin, lambda g, a, b, z: np.where((a <= b) | np.isnan(b), g, _z(g)),
       lambda g, a, b, z: np.where((a <= b) | np.isnan(b), _z(g), g),
       "the smaller operand (a at a tie, the one not NaN) gets g", scalars=False)
binary("xlogy", lambda a, b: _xlogy(a, b), lambda g, a, b, z: _xlogy_grad(g, a, b),
       lambda g, a, b, z: g * a / b, "da = xlogy(g, b) (0 where a = 0 and b <= 0);  db = g a / b",
       result="float", domain=(0.5, 2.0))
binary("fmod", _integer_division(np.fmod, "fmod"), lambda g, a, b, z: g,
       lambda g, a, b, z: -g * np.trunc(a / b), "da = g;  db = -g * trunc(a / b)",
       domain=(0.5, 2.0))
binary("remainder", _integer_division(np.remainder, "remainder"), lambda g, a, b, z: g,
       lambda g, a, b, z: -g * np.floor(a / b), "da = g;  db = -g * floor(a / b)",
       dunders=("__mod__", "__rmod__"), domain=(0.5, 2.0))
binary("floor_divide", _integer_division(np.floor_divide, "div_floor"), _no_derivative,
       _no_derivative, "not differentiable", saves="", dunders=("__floordiv__", "__rfloordiv__"),
       domain=(0.5, 2.0))
binary("eq", np.equal, None, None, "no gradient", saves="", result="bool",
       dunders=("__eq__", None))
binary("ne", np.not_equal, None, None, "no gradient", saves="", result="bool",
       dunders=("__ne__", None), aliases=("not_equal",))
binary("lt", np.less, None, None, "no gradient", saves="", result="bool",
       dunders=("__lt__", None), aliases=("less",))
binary("le", np.less_equal, None, None, "no gradient", saves="", result="bool",
       dunders=("__le__", None), aliases=("less_equal",))
binary("gt", np.greater, None, None, "no gradient", saves="", result="bool",
       dunders=("__gt__", None), aliases=("greater",))
binary("ge", np.greater_equal, None, None, "no gradient", saves="", result="bool",
       dunders=("__ge__", None), aliases=("greater_equal",))
binary("logical_and", np.logical_and, None, None, "no gradient", saves="", result="bool",
       scalars=False)
binary("logical_or", np.logical_or, None, None, "no gradient", saves="", result="bool",
       scalars=False)
binary("logical_xor", np.logical_xor, None, None, "no gradient", saves="", result="bool",
       scalars=False)
binary("bitwise_and", np.bitwise_and, None, None, "no gradient", saves="", result="integral",
       dunders=("__and__", "__rand__"))
binary("bitwise_or", np.bitwise_or, None, None, "no gradient", saves="", result="integral",
       dunders=("__or__", "__ror__"))
binary("bitwise_xor", np.bitwise_xor, None, None, "no gradient", saves="", result="integral",
       dunders=("__xor__", "__rxor__"))


# ---------------------------------------------------------------------- by hand

class Clamp(Op):
    """y = min(max(x, min), max) with min and max numbers (None: no bound)"""
    node = "ClampBackward1"  # torch's (clamp_min / clamp_max: their own, set per call)

    rule = "dx = g where min <= x <= max, else 0"
    saves = (0,)

    def forward(self, x):
        self.x = x
        y = x
        if self.min is not None:
            y = np.maximum(y, x.dtype.type(self.min))
        if self.max is not None:
            y = np.minimum(y, x.dtype.type(self.max))
        return y if y is not x else x.copy()

    def backward(self, g):
        x, keep = self.x, True
        if self.min is not None:
            keep = keep & (x >= self.min)
        if self.max is not None:
            keep = keep & (x <= self.max)
        return (np.where(keep, g, _z(g)),)

    def vjp(self, g, inputs, output):
        x, keep = self.x, True
        if self.min is not None:
            keep = keep & (x >= self.min)
        if self.max is not None:
            keep = keep & (x <= self.max)
        return (higher.where_const(keep, g),)


@registry.export("clamp", "clip", method=True, methods=("clip",))
def clamp(input, min=None, max=None):
    """Values limited to [min, max] (numbers or tensors; either may be None)."""
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = input
        if min is not None:
            out = registry.FUNCTIONS["maximum"](out, min)
        if max is not None:
            out = registry.FUNCTIONS["minimum"](out, max)
        return out
    x = input
    if not x.is_floating_point() and (isinstance(min, float) or isinstance(max, float)):
        x = x.type(dtypes.get_default_dtype())
    if not x.is_floating_point():
        return _wrap(np.clip(x._data, min, max))
    return apply(Clamp, x, min=min, max=max)


def _clamp_(self, min=None, max=None):
    return self._write(clamp(self._inplace_input(), min, max))


registry.METHODS["clamp_"] = registry.METHODS["clip_"] = _clamp_
registry.export("clamp_min", method=True)(
    lambda input, min: _named(clamp(input, min=min), "ClampMinBackward0"))
registry.export("clamp_max", method=True)(
    lambda input, max: _named(clamp(input, max=max), "ClampMaxBackward0"))
registry.METHODS["clamp_min_"] = lambda self, min: _clamp_(self, min=min)
registry.METHODS["clamp_max_"] = lambda self, max: _clamp_(self, max=max)


def _predicate(name, fn, doc):
    def predicate(input):
        return _wrap(np.asarray(fn(input._data)))

    predicate.__doc__ = doc
    return registry.export(name, method=True)(predicate)


_predicate("isnan", np.isnan, "Where the elements are NaN (bool).")
_predicate("isinf", np.isinf, "Where the elements are infinite (bool).")
_predicate("isposinf", np.isposinf, "Where the elements are +inf (bool).")
_predicate("isneginf", np.isneginf, "Where the elements are -inf (bool).")
_predicate("isfinite", np.isfinite, "Where the elements are finite (bool).")
_predicate("logical_not", np.logical_not, "not x, elementwise (bool).")
_predicate("signbit", np.signbit, "Where the sign bit is set (bool).")


@registry.export("bitwise_not", method=True)
def bitwise_not(input):
    """~x for integer and bool tensors (on bool: logical not)."""
    if input.is_floating_point():
        raise RuntimeError("bitwise_not is only supported for integer and boolean tensors")
    return _wrap(np.invert(input._data))


registry.METHODS["__invert__"] = bitwise_not
registry.METHODS["__neg__"] = registry.FUNCTIONS["neg"]
registry.METHODS["__abs__"] = registry.FUNCTIONS["abs"]
registry.METHODS["__pos__"] = lambda self: self


@registry.export("isclose", method=True)
def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return _wrap(np.isclose(input._data, np.asarray(other), rtol, atol, equal_nan))


@registry.export("allclose", method=True)
def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Whether all elements are close: |input - other| <= atol + rtol * |other|."""
    return bool(np.allclose(input._data, np.asarray(other), rtol, atol, equal_nan))


@registry.export("equal", method=True)
def equal(input, other):
    """Whether both have the same shape and elements."""
    return input._data.shape == other._data.shape and bool(np.array_equal(input._data,
                                                                           other._data))


@registry.export("nan_to_num", method=True)
def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    mask = ~np.isfinite(input._data)
    y = np.nan_to_num(input._data, nan=nan, posinf=posinf, neginf=neginf)
    return registry.FUNCTIONS["where"](_wrap(mask), _wrap(y), input)


@registry.export("lerp", method=True)
def lerp(input, end, weight):
    """input + weight * (end - input)."""
    return input + weight * (end - input)


@registry.export("addcmul", method=True)
def addcmul(input, tensor1, tensor2, *, value=1):
    return input + value * (tensor1 * tensor2)


@registry.export("addcdiv", method=True)
def addcdiv(input, tensor1, tensor2, *, value=1):
    return input + value * (tensor1 / tensor2)


_WARNED_OVERLOADS = set()


def _legacy_alpha(name, other, rest, alpha):
    """torch's deprecated overload name(Number alpha, Tensor other): (other, alpha), warned
    once a process as torch warns."""
    if not rest:
        return other, alpha
    if len(rest) > 1 or not isinstance(other, numbers.Number) or not isinstance(rest[0], Tensor):
        raise TypeError(f"{name}() takes (Tensor other, *, Number alpha=1), got "
                        f"{len(rest) + 2} positional arguments")
    if name not in _WARNED_OVERLOADS:
        _WARNED_OVERLOADS.add(name)
        warnings.warn(f"This overload of {name} is deprecated:\n\t{name}(Number alpha, Tensor "
                      f"other)\nConsider using one of the following signatures instead:\n\t"
                      f"{name}(Tensor other, *, Number alpha = 1)", UserWarning, stacklevel=3)
    return rest[0], other


@registry.export("add", method=True)
def add(input, other, *rest, alpha=1, out=None):
    """input + alpha * other (broadcast; dtypes promote)."""
    other, alpha = _legacy_alpha("add", other, rest, alpha)
    result = _binary(registry.ENTRIES["add"], input, other if alpha == 1 else other * alpha)
    return out._write(result) if out is not None else result


@registry.export("sub", "subtract", method=True, methods=("subtract",))
def sub(input, other, *rest, alpha=1, out=None):
    """input - alpha * other (broadcast; dtypes promote)."""
    other, alpha = _legacy_alpha("sub", other, rest, alpha)
    result = _binary(registry.ENTRIES["sub"], input, other if alpha == 1 else other * alpha)
    return out._write(result) if out is not None else result


@registry.export("div", "divide", "true_divide", method=True, methods=("divide", "true_divide"))
def div(input, other, *, rounding_mode=None, out=None):
    """input / other; rounding_mode "trunc" or "floor" rounds the quotient (no gradient)."""
    result = _binary(registry.ENTRIES["div"], input, other)
    if rounding_mode == "trunc":
        result = _wrap(np.trunc(result._data).astype(result._data.dtype))
    elif rounding_mode == "floor":
        result = _binary(registry.ENTRIES["floor_divide"], input, other)
    elif rounding_mode is not None:
        raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' "
                           f"but found '{rounding_mode}'")
    if rounding_mode is not None and isinstance(input, Tensor) and not input.is_floating_point():
        result = _wrap(result._data.astype(dtypes.result_type(input, other).numpy))
    return out._write(result) if out is not None else result


def _inplace_alpha(fn, name):
    def inplace(self, other, *rest, alpha=1):
        other, alpha = _legacy_alpha(name, other, rest, alpha)
        return self._write(fn(self._inplace_input(), other, alpha=alpha))
    return inplace


registry.METHODS["add_"] = _inplace_alpha(add, "add_")
registry.METHODS["sub_"] = registry.METHODS["subtract_"] = _inplace_alpha(sub, "sub_")
registry.METHODS["div_"] = registry.METHODS["divide_"] = registry.METHODS["true_divide_"] = \
    lambda self, other, *, rounding_mode=None: self._write(
        div(self._inplace_input(), other, rounding_mode=rounding_mode))
