"""cygrad: a small, fast, honest reverse-mode autodiff engine with exact Cython kernels.

    import cygrad
    x = cygrad.tensor([[1.0, 2.0]], requires_grad=True)
    y = (x @ x.T).tanh().sum()
    y.backward()
    x.grad
"""

from . import backend, data, interop, ops, optim, viz
from ._config import show_config as show_config  # re-exported
from .backend import get_num_threads, set_num_threads
from .gradcheck import GradcheckError, gradcheck
from .random import manual_seed
from .serialization import load, save
from .tensor import (
    Tensor,
    detect_anomaly,
    get_default_dtype,
    is_grad_enabled,
    matmul,
    no_grad,
    set_default_dtype,
    tensor,
)
from .trace import trace

__version__ = "0.1.0"

float32 = "float32"
float64 = "float64"

__all__ = [
    "Tensor", "tensor", "no_grad", "is_grad_enabled", "set_default_dtype", "get_default_dtype",
    "matmul", "gradcheck", "GradcheckError", "manual_seed", "set_num_threads",
    "get_num_threads", "backend", "ops", "float32", "float64", "save", "load", "data", "optim",
    "trace", "detect_anomaly", "viz", "interop",
]
