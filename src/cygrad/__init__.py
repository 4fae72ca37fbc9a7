"""cygrad: a small, fast, honest reverse-mode autodiff engine with exact Cython kernels, and
PyTorch's API: `import cygrad as torch` runs PyTorch programs that use what cygrad offers.

    import cygrad as torch
    x = torch.tensor([[1.0, 2.0]], requires_grad=True)
    y = (x @ x.T).tanh().sum()
    y.backward()
    x.grad
"""

import warnings as _warnings

from . import _state, backend, dtypes

# numpy's floating-point warnings (overflow, invalid value...) raised by cygrad's own array
# code: torch computes inf and nan silently. Only warnings attributed to cygrad's modules.
_warnings.filterwarnings("ignore", r"(overflow|invalid value|divide by zero|underflow) "
                         r"encountered in", RuntimeWarning, r"cygrad(\.|$)")

# The op table: importing these registers every op (cygrad/ops/__init__.py has the layout).
from .ops import (
    compat,
    decompositions,
    elementwise,
    extras,
    factories,
    layers,
    losses,
    random_ops,  # noqa: F401  (rand, randn, ..., the in-place random fills)
    reduction,
    registry,
    shape,
)
from .ops import linalg as _products  # noqa: F401  (matmul, einsum...: cygrad.linalg is torch's)
from .tensor import Size, Tensor, apply, device  # noqa: F401  (apply: for ops of your own)

Tensor.__module__ = Size.__module__ = __name__  # <class 'cygrad.Tensor'>, as torch.Tensor prints

registry.install(Tensor)
globals().update({name: fn for name, fn in registry.FUNCTIONS.items()
                  if not name.startswith("_")})
_weight_norm = registry.FUNCTIONS["_weight_norm"]  # torch's one private name programs call

from . import accelerator, amp, autograd, backends, compiler, cuda, data, distributed, distributions, func, interop, jit, linalg, nn, onnx, optim, random, sparse, special, testing, viz  # noqa: E402, I001, E501
from .amp import autocast  # noqa: E402
from ._config import show_config  # noqa: E402
from ._legacy import (  # noqa: E402  (torch's typed tensor classes)
    BoolTensor,
    ByteTensor,
    CharTensor,
    DoubleTensor,
    FloatTensor,
    IntTensor,
    LongTensor,
    ShortTensor,
)

# nn.functional functions torch also has at its top level, under the same signature
for _name in ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "cosine_similarity", "pairwise_distance", "pixel_shuffle",
              "pixel_unshuffle", "bilinear", "channel_shuffle", "adaptive_avg_pool1d",
              "avg_pool1d", "pdist", "hardshrink", "prelu", "rms_norm"):
    globals()[_name] = getattr(nn.functional, _name)
del _name
from ._format import set_printoptions  # noqa: E402
from .autograd import (  # noqa: E402  # noqa: E402
    detect_anomaly,
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_detect_anomaly,
    set_grad_enabled,
)
from .backend import get_num_threads, set_num_threads  # noqa: E402
from .compiler import compile  # noqa: E402, A001
from .dtypes import (  # noqa: E402
    can_cast,
    finfo,
    get_default_dtype,
    iinfo,
    promote_types,
    result_type,
    set_default_dtype,
)
from .gradcheck import GradcheckError, gradcheck  # noqa: E402
from .random import manual_seed  # noqa: E402
from .serialization import load, save  # noqa: E402
from .trace import trace as _trace_tool  # noqa: E402

__version__ = "0.1.0"

# dtypes under torch's names (these shadow builtins in this module only, as in torch)
dtype = dtypes.dtype
float32, float64 = dtypes.float32, dtypes.float64
int64, int32, int16, int8, uint8 = dtypes.int64, dtypes.int32, dtypes.int16, dtypes.int8, \
    dtypes.uint8
bool = dtypes.bool_  # noqa: A001
float, double, long, int, short = dtypes.float32, dtypes.float64, dtypes.int64, dtypes.int32, \
    dtypes.int16  # noqa: A001
cfloat = cdouble = half = float16 = bfloat16 = None  # named so that using one says why
del cfloat, cdouble, half, float16, bfloat16
strided = "strided"  # the dense layout
from .sparse import sparse_coo, sparse_coo_tensor, spmm  # noqa: E402, I001

contiguous_format = preserve_format = "contiguous_format"


def trace(input=None, *args, **kwargs):
    """torch.trace(input) for a Tensor: the sum of a matrix's diagonal. Called with anything
    else (a model, names=..., or nothing) it is cygrad's backward tracer (cygrad/trace.py):
    `with cygrad.trace(model) as t: ...`."""
    if isinstance(input, Tensor):
        return registry.FUNCTIONS["trace"](input, *args, **kwargs)
    return _trace_tool(input, *args, **kwargs)


def is_storage(obj):
    return False


def __getattr__(name):
    """A torch name cygrad does not offer: say so plainly."""
    unsupported = dtypes.UNSUPPORTED.get(name)
    if unsupported is not None:  # a name a program may hold (nanoGPT's dtype table); making a
        return unsupported  # tensor of it raises TypeError naming it
    raise AttributeError(f"module 'cygrad' has no attribute '{name}': cygrad does not implement "
                         f"torch.{name}")


# torch's top-level in-place forms: torch.sin_(x) is x.sin_(), torch.selu_(x) F.selu_(x)
_INPLACE_METHODS = (
    "abs_", "acos_", "acosh_", "arccos_", "arccosh_", "arcsin_", "arcsinh_", "arctan_",
    "arctanh_", "asin_", "asinh_", "atan_", "atanh_", "ceil_", "clamp_", "clamp_max_",
    "clamp_min_", "clip_", "cos_", "cosh_", "deg2rad_", "detach_", "erf_", "erfc_", "exp2_",
    "exp_", "expm1_", "fill_", "fix_", "floor_", "frac_", "gcd_", "index_put_", "lcm_", "ldexp_",
    "log10_", "log1p_", "log2_", "log_", "logit_", "nan_to_num_", "neg_", "negative_",
    "rad2deg_", "reciprocal_", "relu_", "round_", "rsqrt_", "sigmoid_", "sin_", "sinc_",
    "sinh_", "sqrt_", "square_", "tan_", "tanh_", "trunc_", "xlogy_", "zero_")


def _inplace_function(name):
    import inspect

    method = getattr(Tensor, name)

    def function(input, *args, **kwargs):
        return getattr(input, name)(*args, **kwargs)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"torch.{name}(input, ...): input.{name}(...), in place."
    try:
        sig = inspect.signature(method)
        first, *rest = sig.parameters.values()
        function.__signature__ = sig.replace(parameters=[first.replace(name="input"), *rest])
    except (TypeError, ValueError):  # a method without a readable signature: (input, ...)
        pass
    return function


for _name in _INPLACE_METHODS:
    globals()[_name] = _inplace_function(_name)
selu_, rrelu_ = nn.functional.selu_, nn.functional.rrelu_
del _name


def _named_where_reached():
    """The op table's frontends are made inside factories (their __qualname__ says so) or live
    in a module that does not hold them under their name: each is named after where a program
    reaches it (cygrad.relu, cygrad.nn.functional.gelu ...), so that pickle finds it (a whole
    TransformerEncoderLayer holds F.relu as its activation; torch.save pickles it)."""
    import sys
    import types

    for module in (sys.modules[__name__], nn.functional, special, linalg):
        for name, value in list(vars(module).items()):
            if name.startswith("_") or not isinstance(value, types.FunctionType):
                continue
            home = sys.modules.get(value.__module__)
            if "." in value.__qualname__ or getattr(home, value.__qualname__, None) is not value:
                value.__module__, value.__qualname__ = module.__name__, name


_named_where_reached()

# torch.functional (made of the functions above), torch.multiprocessing, torch.profiler,
# torch.version
from . import functional, multiprocessing, profiler, version  # noqa: E402, F401
