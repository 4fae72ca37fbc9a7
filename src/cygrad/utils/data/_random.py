"""The random draws of data loading, through cygrad.random: torch's generator (mt19937, its
seeding and its randperm) once cygrad.random offers it, so `cygrad.manual_seed(s)` then gives
torch's shuffling order for the same seed. These few functions are the only place
cygrad.utils.data touches the generator.

Until then (cygrad.random being a numpy Generator) the draws come from that generator: the
same seed gives the same order run after run, but not torch's.
"""

import numpy as np

from ... import random as _random

__all__ = ["draw_seed", "new_generator", "randint", "randperm", "check_generator", "default"]

_TORCH_LIKE = hasattr(_random, "randperm") and hasattr(_random, "draw_seed")


def check_generator(generator):
    """generator is None or a generator these functions accept: TypeError otherwise."""
    if generator is None:
        return
    kind = getattr(_random, "Generator", None) if _TORCH_LIKE else np.random.Generator
    if kind is not None and not isinstance(generator, kind):
        raise TypeError(f"generator must be a cygrad.Generator, got {type(generator).__name__}")


def default():
    """The calling thread's generator (what `cygrad.manual_seed` and unseeded draws use)."""
    return _random.generator()


def draw_seed(generator=None):
    """A seed from the generator (the default one when None), as torch's
    int(torch.empty((), dtype=torch.int64).random_(generator=generator).item())."""
    if _TORCH_LIKE:
        return int(_random.draw_seed(generator))
    g = _random.generator() if generator is None else generator
    return int(g.integers(0, 2**63))


def new_generator(seed):
    """A fresh generator seeded with seed (torch.Generator().manual_seed(seed))."""
    if _TORCH_LIKE:
        return _random.Generator().manual_seed(seed)
    return np.random.default_rng(seed)


def randperm(n, generator=None):
    """A random permutation of range(n) as a list (torch.randperm(n, generator=g).tolist())."""
    if _TORCH_LIKE:
        return _random.randperm(n, generator=generator).tolist()
    g = _random.generator() if generator is None else generator
    return g.permutation(n).tolist()


def randint(high, size, generator=None):
    """size draws from range(high) as a list (torch.randint(high=high, size=(size,),
    dtype=torch.int64, generator=g).tolist())."""
    if _TORCH_LIKE:
        return _random.randint(0, high, (size,), generator=generator).tolist()
    g = _random.generator() if generator is None else generator
    return g.integers(0, high, size).tolist()
