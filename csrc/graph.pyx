"""graph: the read-only locks of a live autodiff graph, compiled because every recorded op
takes one. No arithmetic: the exactness contract does not reach here.

`Lease(arrays)` makes each array read-only (a view and the array owning its memory both), with a
count per array so that several graphs can hold one array; `release()`, or the lease being
freed with its op (a graph dropped without backward), gives the locks back. Arrays read-only
for reasons of their own are left alone. cygrad/ops/__init__.py has the same class in Python
(the spec, and what runs when this module is not built); only one of them is used in a process.
"""

from cpython.dict cimport PyDict_DelItem, PyDict_GetItem, PyDict_SetItem
from cpython.long cimport PyLong_FromVoidPtr
from cpython.ref cimport PyObject

import numpy as np

cdef dict _saved = {}  # id(array) -> _Lock
cdef object _ndarray = np.ndarray


cdef class _Lock:
    """One locked array and the number of leases holding it."""
    cdef object array
    cdef Py_ssize_t count


cdef int _hold(object target, list held) except -1:
    key = PyLong_FromVoidPtr(<void *>target)  # id(target)
    cdef PyObject *found = PyDict_GetItem(_saved, key)
    cdef _Lock lock
    if found != NULL:
        (<_Lock>found).count += 1
    elif target.flags.writeable:
        target.setflags(False)  # positional: keyword parsing costs more than the call
        lock = _Lock.__new__(_Lock)
        lock.array, lock.count = target, 1
        PyDict_SetItem(_saved, key, lock)
    else:
        return 0
    held.append(target)
    return 0


cdef void _unlock(list held) noexcept:
    """Owners before their views (numpy makes a view writable only under a writable owner)."""
    cdef Py_ssize_t i
    cdef PyObject *found
    for i in range(len(held) - 1, -1, -1):
        target = held[i]
        key = PyLong_FromVoidPtr(<void *>target)
        found = PyDict_GetItem(_saved, key)
        if found == NULL:
            continue
        (<_Lock>found).count -= 1
        if (<_Lock>found).count == 0:
            PyDict_DelItem(_saved, key)
            try:
                target.setflags(True)
            except ValueError:  # a view whose owner another graph still locks: it stays
                pass            # read-only, like any view made of a read-only array


cdef class Lease:
    """The locks one op holds on the arrays its backward reads."""

    cdef list held

    def __cinit__(self, arrays):
        self.held = []
        for array in arrays:
            _hold(array, self.held)
            if array.base is not None:
                owner = array
                while isinstance(owner.base, _ndarray):
                    owner = owner.base
                if owner is not array:
                    _hold(owner, self.held)

    def release(self):
        held, self.held = self.held, []
        _unlock(held)

    def __dealloc__(self):
        if self.held:
            _unlock(self.held)


def locked_count():
    """How many arrays some live graph holds read-only (for tests)."""
    return len(_saved)
