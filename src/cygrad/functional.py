"""cygrad.functional: torch.functional's functions (torch offers them at its top level too):
`import torch.functional as F` in a torch program finds them here."""

from . import (  # noqa: F401 (re-exported)
    atleast_1d,
    atleast_2d,
    atleast_3d,
    block_diag,
    broadcast_shapes,
    broadcast_tensors,
    cartesian_prod,
    cdist,
    chain_matmul,
    einsum,
    meshgrid,
    norm,
    split,
    tensordot,
    unique,
    unique_consecutive,
    unravel_index,
)

__all__ = ["atleast_1d", "atleast_2d", "atleast_3d", "broadcast_shapes", "broadcast_tensors",
           "cartesian_prod", "block_diag", "cdist", "chain_matmul", "einsum", "norm", "meshgrid",
           "split", "tensordot", "unique", "unique_consecutive", "unravel_index"]


def __getattr__(name):
    raise AttributeError(f"module 'cygrad.functional' has no attribute '{name}': cygrad does not "
                         f"implement torch.functional.{name}")
