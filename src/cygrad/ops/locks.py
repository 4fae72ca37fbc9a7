"""The graph's read-only locks: arrays a live graph saved for backward refuse writes.

An op says which of the caller's arrays its backward reads (`saves`, `saves_output`); `apply`
takes a `Lease` on them, and backward (or dropping the graph) gives it back. While held, an
in-place write raises instead of turning into a silently wrong gradient. The limit: numpy
offers no way to reach the views of an array, so a view made before the lock keeps its write
flag (`cygrad.detect_anomaly()` compares the saved bytes at backward and catches it).

The registry counts, per array, the leases holding it; a view and the array owning its memory
are both locked. numpy lets a view become writable only while its owner is: a view released
while another graph still holds its owner waits on the owner's entry and is made writable when
the owner is (two parameters that are views of one buffer both come back writable, whatever
order their graphs are freed in). Every change to the registry runs under one mutex, so leases
taken and released by several threads at once cannot interleave their check-then-act. A lease
freed by the garbage collector inside a registry operation of its own thread is queued and
released when that operation ends.
"""

import threading

import numpy as np

from .. import backend as _backend


class _Entry:
    """One locked array, the number of leases holding it (0: a view waiting for its owner),
    and the views waiting for it to become writable."""

    __slots__ = ("array", "count", "waiting")

    def __init__(self, array):
        self.array, self.count, self.waiting = array, 1, []


_saved = {}  # id(array) -> _Entry, for the arrays live graphs hold read-only
_mutex = threading.Lock()
_holder = None  # the ident of the thread inside a registry operation
_pending = []  # leases freed (by the garbage collector) while the registry was busy
_get_ident = threading.get_ident


def _owner(array):
    owner = array
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    return owner


def _targets(array):
    """The array and, for a view, the array owning its memory: both must refuse writes (the
    owner also stops views made later, the view itself stops writes through it)."""
    owner = _owner(array)
    return (array,) if owner is array else (array, owner)


def _enter():
    global _holder
    me = _get_ident()
    if _holder == me:
        raise RuntimeError("the graph's lock registry was re-entered from its own thread")
    _mutex.acquire()
    _holder = me


def _leave():
    global _holder
    try:
        while _pending:
            _unlock(_pending.pop())
    finally:
        _holder = None
        _mutex.release()
    _drain()


def _drain():
    """Release queued leases unless another thread is inside the registry (it will)."""
    global _holder
    while _pending and _mutex.acquire(blocking=False):
        _holder = _get_ident()
        try:
            while _pending:
                _unlock(_pending.pop())
        finally:
            _holder = None
            _mutex.release()


def lock(arrays):
    """Make the arrays read-only (and their owners); returns what to hand to `unlock` later.
    Arrays that are read-only for reasons of their own are left alone."""
    held = []
    _enter()
    try:
        for array in arrays:
            # the common case, an array owning its memory, is its only target
            for target in _targets(array) if array.base is not None else (array,):
                entry = _saved.get(id(target))
                if entry is not None:  # held by another graph, or a view waiting for its owner
                    entry.count += 1
                elif target.flags.writeable:
                    target.setflags(False)  # positional: keyword parsing costs more than the call
                    _saved[id(target)] = _Entry(target)
                else:
                    continue
                held.append(target)
    except BaseException:
        _unlock(held)
        raise
    finally:
        _leave()
    return held


def unlock(held):
    _enter()
    try:
        _unlock(held)
    finally:
        _leave()


def _unlock(held):
    for target in reversed(held):  # an owner before its views: numpy needs it writable first
        entry = _saved[id(target)]
        entry.count -= 1
        if entry.count == 0:
            _free(target, entry)


def _free(target, entry):
    """No lease holds target any more: writable again, or waiting for its owner."""
    try:
        target.setflags(True)
    except ValueError:  # a view whose owner another graph still locks: it waits for the owner
        owner = _saved.get(id(_owner(target)))
        if owner is not None and owner.array is not target and owner.count > 0:
            owner.waiting.append(target)
            return
        del _saved[id(target)]  # its owner was made read-only by someone else: it stays so
        return
    del _saved[id(target)]
    for view in entry.waiting:
        waiting = _saved.get(id(view))
        if waiting is not None and waiting.array is view and waiting.count == 0:
            _free(view, waiting)


class Lease:
    """The locks one op holds (`lock` of the arrays it saved); dropping the op (a graph freed
    without backward) unlocks them. The compiled twin (csrc/graph.pyx) replaces it when built."""

    __slots__ = ("held",)

    def __init__(self, arrays):
        self.held = lock(arrays)

    def release(self):
        held, self.held = self.held, ()
        if held:
            unlock(held)

    def __del__(self):
        held = self.held
        if held and _pending is not None:  # None at interpreter shutdown
            self.held = ()
            _pending.append(held)
            if _holder != _get_ident():  # inside a registry operation: released at its end
                _drain()


def locked_count():
    """How many arrays live graphs hold read-only (for tests)."""
    return sum(1 for entry in _saved.values() if entry.count)


PyLease = Lease  # the spec; csrc/graph.pyx compiles the same class when built
Lease = _backend.compiled_lease or PyLease
