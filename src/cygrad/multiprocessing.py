"""torch.multiprocessing: Python's multiprocessing with torch's sharing-strategy calls (the
ones training scripts make before their DataLoaders start).

cygrad's tensors are not moved to shared memory (`Tensor.share_memory_` and
`Module.share_memory` raise NotImplementedError: a process training a model shared that way
would train a copy), and `spawn` / `start_processes` are not built (they mostly start
DistributedDataParallel workers, not built either): both raise, naming themselves. Processes
that Python's multiprocessing starts from a program under `python -m cygrad run` import cygrad
as torch, whatever the start method (fork, spawn, forkserver: see cygrad/_spawn)."""

import multiprocessing
import sys
from multiprocessing import *  # noqa: F403 (torch.multiprocessing re-exports it all)

_STRATEGIES = {"file_descriptor", "file_system"} if sys.platform != "darwin" else {"file_system"}
_strategy = "file_descriptor" if sys.platform != "darwin" else "file_system"

__all__ = ["set_sharing_strategy", "get_sharing_strategy", "get_all_sharing_strategies",
           *multiprocessing.__all__]


def set_sharing_strategy(new_strategy):
    """Record the strategy (torch's names; cygrad shares no tensor memory between processes)."""
    global _strategy
    if new_strategy not in _STRATEGIES:
        raise AssertionError(f"{new_strategy!r} is not a sharing strategy: "
                             f"{sorted(_STRATEGIES)}")
    _strategy = new_strategy


def get_sharing_strategy():
    return _strategy


def get_all_sharing_strategies():
    return set(_STRATEGIES)


def spawn(fn, args=(), nprocs=1, join=True, daemon=False, start_method="spawn"):
    raise NotImplementedError("cygrad does not implement torch.multiprocessing.spawn (its "
                              "processes would import torch, not cygrad); use "
                              "multiprocessing.Process with the fork start method")


def start_processes(fn, args=(), nprocs=1, join=True, daemon=False, start_method="spawn"):
    raise NotImplementedError("cygrad does not implement torch.multiprocessing.start_processes "
                              "(its processes would import torch, not cygrad)")
