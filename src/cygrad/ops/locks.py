"""The graph's read-only locks: arrays a live graph saved for backward refuse writes.

An op says which of the caller's arrays its backward reads (`saves`, `saves_output`); `apply`
takes a `Lease` on them, and backward (or dropping the graph) gives it back. While held, an
in-place write raises instead of turning into a silently wrong gradient. The limit: numpy
offers no way to reach the views of an array, so a view made before the lock keeps its write
flag (`cygrad.detect_anomaly()` compares the saved bytes at backward and catches it).
"""

import numpy as np

from .. import backend as _backend

# Arrays that live graphs read in backward, made read-only meanwhile:
# id(array) -> [array, number of graphs using it]
_saved = {}


def _targets(array):
    """The array and, for a view, the array owning its memory: both must refuse writes (the
    owner also stops views made later, the view itself stops writes through it)."""
    owner = array
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    return (array,) if owner is array else (array, owner)


def lock(arrays):
    """Make the arrays read-only (and their owners); returns what to hand to `unlock` later.
    Arrays that are read-only for reasons of their own are left alone."""
    held = []
    for array in arrays:
        # the common case, an array owning its memory, is its only target
        for target in _targets(array) if array.base is not None else (array,):
            entry = _saved.get(id(target))
            if entry is not None:
                entry[1] += 1
            elif target.flags.writeable:
                target.setflags(False)  # positional: keyword parsing costs more than the call
                _saved[id(target)] = [target, 1]
            else:
                continue
            held.append(target)
    return held


def unlock(held):
    for target in reversed(held):  # an owner before its views: numpy needs it writable first
        entry = _saved[id(target)]
        entry[1] -= 1
        if entry[1] == 0:
            del _saved[id(target)]
            try:
                target.setflags(True)
            except ValueError:  # a view whose owner another graph still locks: it stays
                pass            # read-only, like any view made of a read-only array


class Lease:
    """The locks one op holds (`lock` of the arrays it saved); dropping the op (a graph freed
    without backward) unlocks them. The compiled twin (csrc/graph.pyx) replaces it when built."""

    __slots__ = ("held",)

    def __init__(self, arrays):
        self.held = lock(arrays)

    def release(self):
        held, self.held = self.held, ()
        unlock(held)

    def __del__(self):
        if self.held and unlock is not None:  # unlock is None at interpreter shutdown
            unlock(self.held)


PyLease = Lease  # the spec; csrc/graph.pyx compiles the same class when built
Lease = _backend.compiled_lease or PyLease
