"""graph: the read-only locks of a live autodiff graph, compiled because every recorded op
takes one. No arithmetic: the exactness contract does not reach here.

`Lease(arrays)` makes each array read-only (a view and the array owning its memory both), with a
count per array so that several graphs can hold one array; `release()`, or the lease being
freed with its op (a graph dropped without backward), gives the locks back. Arrays read-only
for reasons of their own are left alone. A view released while another graph still holds its
owner waits on the owner's entry and becomes writable with it (numpy allows a writable view only
under a writable owner). Every registry operation runs under one mutex (threads), and a lease
freed by the garbage collector inside an operation of its own thread is queued until the
operation ends. cygrad/ops/locks.py has the same class in Python (the spec, and what runs when
this module is not built); only one of them is used in a process.
"""

from cpython.dict cimport PyDict_DelItem, PyDict_GetItem, PyDict_SetItem
from cpython.long cimport PyLong_FromVoidPtr
from cpython.pythread cimport (NOWAIT_LOCK, WAIT_LOCK, PyThread_acquire_lock,
                               PyThread_allocate_lock, PyThread_get_thread_ident,
                               PyThread_release_lock, PyThread_type_lock)
from cpython.ref cimport PyObject

import numpy as np

cdef dict _saved = {}  # id(array) -> _Lock
cdef list _pending = []  # held lists of leases freed while the registry was busy
cdef object _ndarray = np.ndarray
cdef PyThread_type_lock _mutex = PyThread_allocate_lock()
cdef unsigned long _holder = 0  # the thread inside a registry operation (0: none)
cdef bint _held = False


cdef class _Lock:
    """One locked array, the number of leases holding it (0: a view waiting for its owner) and
    the views waiting for it to become writable."""
    cdef object array
    cdef Py_ssize_t count
    cdef list waiting


cdef int _enter() except -1:
    global _holder, _held
    cdef unsigned long me = PyThread_get_thread_ident()
    if _held and _holder == me:
        raise RuntimeError("the graph's lock registry was re-entered from its own thread")
    if not PyThread_acquire_lock(_mutex, NOWAIT_LOCK):
        with nogil:  # another thread is inside: wait without holding the GIL it may need
            PyThread_acquire_lock(_mutex, WAIT_LOCK)
    _holder, _held = me, True
    return 0


cdef int _leave() except -1:
    global _held
    try:
        while _pending:
            _unlock(_pending.pop())
    finally:
        _held = False
        PyThread_release_lock(_mutex)
    _drain()
    return 0


cdef int _drain() except -1:
    """Release queued leases unless another thread is inside the registry (it will)."""
    global _holder, _held
    while _pending and PyThread_acquire_lock(_mutex, NOWAIT_LOCK):
        _holder, _held = PyThread_get_thread_ident(), True
        try:
            while _pending:
                _unlock(_pending.pop())
        finally:
            _held = False
            PyThread_release_lock(_mutex)
    return 0


cdef inline object _owner(object array):
    owner = array
    while isinstance(owner.base, _ndarray):
        owner = owner.base
    return owner


cdef int _hold(object target, list held) except -1:
    key = PyLong_FromVoidPtr(<void *>target)  # id(target)
    cdef PyObject *found = PyDict_GetItem(_saved, key)
    cdef _Lock lock
    if found != NULL:  # held by another graph, or a view waiting for its owner
        (<_Lock>found).count += 1
    elif target.flags.writeable:
        target.setflags(False)  # positional: keyword parsing costs more than the call
        lock = _Lock.__new__(_Lock)
        lock.array, lock.count, lock.waiting = target, 1, []
        PyDict_SetItem(_saved, key, lock)
    else:
        return 0
    held.append(target)
    return 0


cdef int _unlock(list held) except -1:
    """Owners before their views (numpy makes a view writable only under a writable owner)."""
    cdef Py_ssize_t i
    cdef PyObject *found
    for i in range(len(held) - 1, -1, -1):
        target = held[i]
        found = PyDict_GetItem(_saved, PyLong_FromVoidPtr(<void *>target))
        if found == NULL:
            continue
        (<_Lock>found).count -= 1
        if (<_Lock>found).count == 0:
            _free(target, <_Lock>found)
    return 0


cdef int _free(object target, _Lock lock) except -1:
    """No lease holds target any more: writable again, or waiting for its owner."""
    cdef PyObject *found
    cdef list waiting = lock.waiting  # a reference of our own: deleting the entry frees `lock`
    key = PyLong_FromVoidPtr(<void *>target)
    try:
        target.setflags(True)
    except ValueError:  # a view whose owner another graph still locks: it waits for the owner
        owner = _owner(target)
        found = PyDict_GetItem(_saved, PyLong_FromVoidPtr(<void *>owner))
        if found != NULL and (<_Lock>found).array is not target and (<_Lock>found).count > 0:
            (<_Lock>found).waiting.append(target)
            return 0
        PyDict_DelItem(_saved, key)  # its owner was made read-only by someone else
        return 0
    PyDict_DelItem(_saved, key)
    for view in waiting:
        found = PyDict_GetItem(_saved, PyLong_FromVoidPtr(<void *>view))
        if found != NULL and (<_Lock>found).array is view and (<_Lock>found).count == 0:
            _free(view, <_Lock>found)
    return 0


cdef class Lease:
    """The locks one op holds on the arrays its backward reads."""

    cdef list held

    def __cinit__(self, arrays):
        cdef list held = []
        self.held = held
        _enter()
        try:
            for array in arrays:
                _hold(array, held)
                if array.base is not None:
                    owner = _owner(array)
                    if owner is not array:
                        _hold(owner, held)
        except BaseException:
            self.held = []
            _unlock(held)
            raise
        finally:
            _leave()

    def release(self):
        held, self.held = self.held, []
        if held:
            _enter()
            try:
                _unlock(held)
            finally:
                _leave()

    def __dealloc__(self):
        if self.held:
            _pending.append(self.held)
            self.held = None
            if not (_held and _holder == PyThread_get_thread_ident()):
                try:
                    _drain()
                except BaseException:  # nothing can be raised from here; the arrays stay
                    pass                # read-only rather than the process failing


def locked_count():
    """How many arrays some live graph holds read-only (for tests)."""
    return sum([1 for lock in _saved.values() if (<_Lock>lock).count])
