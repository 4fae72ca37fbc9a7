"""One source of randomness for everything cygrad draws (initialisers, dropout, data order).

`cygrad.manual_seed(seed)` resets it: the same seed builds a bitwise-identical model.
"""

import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed):
    """Reset cygrad's random generator; returns it."""
    global _generator
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def generator():
    """The generator in use (a numpy Generator)."""
    return _generator
