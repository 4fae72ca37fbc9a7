"""cygrad.distributed: torch.distributed's names a single-process program imports (nanoGPT's
train.py imports init_process_group and DDP, and calls them only under torchrun).

There are no process groups: `is_available()` is False (cygrad has no distributed backend),
`is_initialized()` False, `init_process_group` raises NotImplementedError; the collectives and
the group queries raise torch's ValueError for a program that never initialised a group."""

import os

__all__ = ["is_available", "is_initialized", "is_torchelastic_launched", "init_process_group",
           "destroy_process_group", "get_rank", "get_world_size", "get_backend", "barrier",
           "all_reduce", "all_gather", "broadcast", "reduce", "gather", "scatter",
           "reduce_scatter", "new_group", "ReduceOp", "is_nccl_available", "is_gloo_available",
           "is_mpi_available"]

_NOT_INITIALIZED = ("Default process group has not been initialized, please make sure to call "
                    "init_process_group.")


def is_available():
    """False: cygrad has no distributed backend (torch's CPU builds answer True)."""
    return False


def is_initialized():
    return False


def is_torchelastic_launched():
    """Whether the process was started by torchrun (its TORCHELASTIC_RUN_ID is set), as torch."""
    return os.getenv("TORCHELASTIC_RUN_ID") is not None


def is_nccl_available():
    return False


def is_gloo_available():
    return False


def is_mpi_available():
    return False


def init_process_group(*args, **kwargs):
    raise NotImplementedError("cygrad does not implement torch.distributed.init_process_group: "
                              "there are no process groups (run the program as one process)")


def destroy_process_group(group=None):
    raise AssertionError("Process group cannot be None")


def _uninitialized(*args, **kwargs):
    raise ValueError(_NOT_INITIALIZED)


get_rank = get_world_size = get_backend = barrier = new_group = _uninitialized
all_reduce = all_gather = broadcast = reduce = gather = scatter = reduce_scatter = _uninitialized


class ReduceOp:
    """The reduction names collectives take (there are no collectives to take them)."""

    SUM, AVG, PRODUCT, MIN, MAX = "sum", "avg", "product", "min", "max"


class optim:  # noqa: N801  (torch.distributed.optim, a namespace: as_torch makes it a module)
    """torch.distributed.optim: its names import (llm.c's train_gpt2.py imports
    ZeroRedundancyOptimizer at the top and builds it only under torchrun); building one raises
    torch's ValueError for a program that never initialised a process group (cygrad has none
    to shard the optimizer's state over)."""

    class ZeroRedundancyOptimizer:
        def __init__(self, *args, **kwargs):
            raise ValueError(_NOT_INITIALIZED)
