"""cygrad.func: torch.func's `functional_call` (a module called with other tensors in place of
its parameters and buffers). The function transforms (vmap, grad, jacrev, jvp, ...) are not
offered: naming one raises."""

from .nn.utils.stateless import _functional_call as functional_call

__all__ = ["functional_call"]


def __getattr__(name):
    raise AttributeError(f"module 'cygrad.func' has no attribute '{name}': cygrad does not "
                         f"implement torch.func.{name}")
