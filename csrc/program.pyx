"""A captured step's kernel calls replayed from C: cygrad.compile's native tier.

A Program is a list of instructions (program.h: an exec function of a kernel family, the slots
of its operands, its sizes) and a table of slots, each an array:

    internal  made here at build, used by the instructions alone (a layer's pre-activation, a
              gradient passed down): never seen outside, its address fixed for good;
    output    made here, handed out after each run (a .grad, a loss): reused by the next run
              only when nothing else holds it any more (its reference count says so), else
              replaced by a new array, so no one ever sees an array they hold change;
    bound     an argument of each run (a parameter's array, the input batch, the targets),
              checked then: exact dtype, shape, C-contiguous and aligned, and writable when
              the slot was made writable (an optimizer's parameters), or ValueError.

A run may also pass up to 8 numbers (an optimizer's options, read afresh each step): every
instruction sees them (program.h's `s`), and a float64 array `times` that receives each
instruction's duration in seconds (a monotonic clock read before and after it: what a compiled
step's plan shows per kernel).

run() holds the GIL from the first kernel to the last (a kernel may release it inside, as its
eager entry point does: the gemm), keeps a buffer of every bound and output array for the
whole run, and refuses to be entered again while it runs (another thread calling the same
compiled step during a gemm): RuntimeError. Each exec function is the eager entry point's own
internal C on the same operands, so a replay has eager's bits; which operands an instruction
writes is stated when it is added and must be internal or output slots.
"""

from cpython.buffer cimport (PyBUF_C_CONTIGUOUS, PyBUF_FORMAT, PyBUF_WRITABLE, PyBuffer_Release,
                             PyObject_GetBuffer)
from cpython.list cimport PyList_GET_ITEM
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid
from cpython.ref cimport PyObject
from libc.stdint cimport uintptr_t
from libc.stdlib cimport calloc, free, realloc
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from arrays cimport CG_EXEC_CAPSULE, CG_EXEC_PAIR_CAPSULE, cg_instr

import numpy as np

cdef extern from "Python.h":
    Py_ssize_t _refcount "Py_REFCNT"(PyObject *o)

ctypedef int (*cg_exec)(cg_instr *) except -1
ctypedef int (*cg_exec_pair)(cg_instr *, cg_instr *) except -1

cdef enum:
    INTERNAL = 0
    OUTPUT = 1
    BOUND = 2

# a slot's element kind: F32 = 1, F64 = 2 (arrays.pxd), INTP = 3
_KINDS = {np.dtype(np.float32): 1, np.dtype(np.float64): 2, np.dtype(np.intp): 3}


cdef int _kind(Py_buffer *v) noexcept:
    if v.format == NULL or v.format[0] == 0 or v.format[1] != 0:
        return 0
    if v.format[0] == b'f' and v.itemsize == 4:
        return 1
    if v.format[0] == b'd' and v.itemsize == 8:
        return 2
    if v.format[0] in b"lqn" and v.itemsize == sizeof(Py_ssize_t):
        return 3
    return 0


cdef class Program:
    """See the module docstring. Built by cygrad/compiler/native.py."""

    cdef cg_instr *ins
    cdef Py_ssize_t n_ins
    cdef list arrays  # per slot: its array (None for a bound slot)
    cdef list shapes  # per slot: its shape (a tuple)
    cdef list dtypes
    cdef int *kinds  # per slot: INTERNAL, OUTPUT or BOUND
    cdef int *elems  # per slot: 1, 2, 3 (see _KINDS)
    cdef int *writable  # per slot: a bound slot's instructions write it
    cdef double scalars[8]
    cdef char **ptr
    cdef Py_buffer *held  # the internal slots' buffers, held for the program's life
    cdef Py_buffer *views  # this run's bound and output buffers
    cdef Py_ssize_t n_slots, n_bound
    cdef list bound  # slot of each run() argument, in order
    cdef list outputs  # slot of each value run() returns, in order
    cdef bint busy
    cdef public list names  # per instruction: its kernel's name (for people)
    cdef list capsules
    cdef list written  # per instruction: the slots it writes

    def __cinit__(self):
        self.ins = NULL
        self.kinds = self.elems = self.writable = NULL
        self.ptr = NULL
        self.held = self.views = NULL
        self.n_ins = self.n_slots = self.n_bound = 0
        self.arrays, self.shapes, self.dtypes = [], [], []
        self.bound, self.outputs, self.names, self.capsules = [], [], [], []
        self.written = []
        self.busy = False

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self.held != NULL:
            for i in range(self.n_slots):
                if self.kinds[i] == INTERNAL and self.ptr[i] != NULL:
                    PyBuffer_Release(&self.held[i])
        free(self.held)
        free(self.views)
        free(self.ins)
        free(self.kinds)
        free(self.elems)
        free(self.writable)
        free(self.ptr)

    def slot(self, shape, dtype, role, bint writable=False):
        """A new slot of this shape and dtype (float32, float64, or intp for a bound slot);
        role "internal", "output" or "bound" (`writable`: each run's array must be, and
        instructions may write it). Returns its index."""
        dtype = np.dtype(dtype)
        if dtype not in _KINDS or (_KINDS[dtype] == 3 and role != "bound"):
            raise TypeError(f"a program slot holds float32, float64 or (bound) intp, not {dtype}")
        codes = {"internal": INTERNAL, "output": OUTPUT, "bound": BOUND}
        if role not in codes:
            raise ValueError(f"unknown slot role {role!r}")
        shape = tuple(int(s) for s in shape)
        if any(s < 0 for s in shape):
            raise ValueError(f"negative size in shape {shape}")
        cdef Py_ssize_t i = self.n_slots
        cdef void *grown
        grown = realloc(self.kinds, (i + 1) * sizeof(int))
        if grown != NULL:
            self.kinds = <int *>grown
            grown = realloc(self.elems, (i + 1) * sizeof(int))
        if grown != NULL:
            self.elems = <int *>grown
            grown = realloc(self.ptr, (i + 1) * sizeof(char *))
        if grown != NULL:
            self.ptr = <char **>grown
            grown = realloc(self.writable, (i + 1) * sizeof(int))
        if grown != NULL:
            self.writable = <int *>grown
            grown = realloc(self.held, (i + 1) * sizeof(Py_buffer))
        if grown == NULL:
            raise MemoryError("program: cannot grow the slot table")
        self.held = <Py_buffer *>grown
        if self.busy:
            raise RuntimeError("program: a slot added while it runs")
        free(self.views)  # sized at the next run
        self.views = NULL
        self.kinds[i], self.elems[i], self.ptr[i] = codes[role], _KINDS[dtype], NULL
        self.writable[i] = writable and role == "bound"
        self.n_slots += 1
        self.shapes.append(shape)
        self.dtypes.append(dtype)
        if role == "bound":
            self.arrays.append(None)
            self.bound.append(i)
            self.n_bound += 1
            return i
        array = np.zeros(shape, dtype)
        self.arrays.append(array)
        if role == "internal":
            PyObject_GetBuffer(array, &self.held[i], PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE)
            self.ptr[i] = <char *>self.held[i].buf
        else:
            self.outputs.append(i)
        return i

    def add(self, name, capsule, dtype, int threads, int code, slots, sizes, double x,
            writes, pair=None):
        """Append an instruction: the exec function in `capsule` (a family's EXEC entry), its
        operands' slots (-1: none), sizes, parameter; `writes`: the operands it writes, which
        must be internal or output slots of the instruction's dtype; `pair`: the kernel's pair
        exec function (EXEC_PAIR), which lets pair() run it at once with another."""
        if not PyCapsule_IsValid(capsule, CG_EXEC_CAPSULE):
            raise TypeError(f"{name}: not an exec capsule")
        if pair is not None and not PyCapsule_IsValid(pair, CG_EXEC_PAIR_CAPSULE):
            raise TypeError(f"{name}: not a pair exec capsule")
        slots, sizes = list(slots), list(sizes)
        if len(slots) > 6 or len(sizes) > 6:
            raise ValueError(f"{name}: at most 6 operands and 6 sizes")
        for s in slots:
            if not -1 <= s < self.n_slots:
                raise ValueError(f"{name}: no slot {s}")
        for w in writes:
            s = slots[w]
            if s < 0 or (self.kinds[s] == BOUND and not self.writable[s]) \
                    or self.dtypes[s] != np.dtype(dtype):
                raise ValueError(f"{name}: operand {w} (slot {s}) is not a slot it may write")
        cdef cg_instr *grown = <cg_instr *>realloc(self.ins, (self.n_ins + 1) * sizeof(cg_instr))
        if grown == NULL:
            raise MemoryError("program: cannot grow the instruction list")
        self.ins = grown
        cdef cg_instr *ins = &self.ins[self.n_ins]
        cdef int i
        ins.run = PyCapsule_GetPointer(capsule, CG_EXEC_CAPSULE)
        ins.kind = _KINDS[np.dtype(dtype)]
        ins.threads, ins.code, ins.x = threads, code, x
        ins.s = self.scalars
        ins.pair = NULL if pair is None else \
            <cg_exec_pair>PyCapsule_GetPointer(pair, CG_EXEC_PAIR_CAPSULE)
        ins.with_next = 0
        for i in range(6):
            ins.slot[i] = slots[i] if i < len(slots) else -1
            ins.p[i] = NULL
            ins.n[i] = sizes[i] if i < len(sizes) else 0
        self.n_ins += 1
        self.names.append(name)
        self.capsules.append((capsule, pair))
        self.written.append({slots[w] for w in writes})

    def pair(self, Py_ssize_t i):
        """Run instruction i and i + 1 at once from now on, each on a thread of its own,
        through their kernel's pair exec function: both must have the same one, be in no
        other pair, and neither may read or write a slot the other writes."""
        if not 0 <= i < self.n_ins - 1:
            raise ValueError(f"program: no instructions {i} and {i + 1} to pair")
        cdef cg_instr *a = &self.ins[i]
        cdef cg_instr *b = &self.ins[i + 1]
        if a.pair == NULL or a.pair != b.pair:
            raise ValueError(f"program: instructions {i} and {i + 1} have no pair form in common")
        if a.with_next or b.with_next or (i > 0 and self.ins[i - 1].with_next):
            raise ValueError(f"program: instruction {i} or {i + 1} is paired already")
        used_a = {a.slot[j] for j in range(6) if a.slot[j] >= 0}
        used_b = {b.slot[j] for j in range(6) if b.slot[j] >= 0}
        if self.written[i] & used_b or self.written[i + 1] & used_a:
            raise ValueError(f"program: instructions {i} and {i + 1} depend on each other")
        a.with_next = 1

    @property
    def paired(self):
        """Per instruction: whether it runs at once with the one before (pair())."""
        return [i > 0 and self.ins[i - 1].with_next == 1 for i in range(self.n_ins)]

    def __len__(self):
        return self.n_ins

    @property
    def slots(self):
        """(role, shape, dtype) of each slot."""
        roles = ("internal", "output", "bound")
        return [(roles[self.kinds[i]], self.shapes[i], self.dtypes[i])
                for i in range(self.n_slots)]

    def run(self, tuple args, tuple scalars=(), times=None):
        """Run every instruction, the bound slots given by args (in the order they were made)
        and `scalars` (up to 8 numbers) as their `s`; returns the output slots' arrays, in the
        order they were made. `times`: a writable float64 array of len(self) elements or
        more, which gets each instruction's duration in seconds."""
        cdef double[::1] spent = None
        cdef timespec t0, t1
        if times is not None:
            spent = times
            if spent.shape[0] < self.n_ins:
                raise ValueError(f"program: times holds {spent.shape[0]} durations, "
                                 f"{self.n_ins} instructions")
        if self.busy:
            raise RuntimeError("this compiled step is running in another thread: a captured "
                               "step replays in one thread at a time")
        if len(args) != self.n_bound:
            raise TypeError(f"program: {self.n_bound} arrays expected, got {len(args)}")
        if len(scalars) > 8:
            raise TypeError(f"program: at most 8 scalars, got {len(scalars)}")
        cdef Py_ssize_t n_views = self.n_bound + len(self.outputs), count = 0, i, j, s
        cdef Py_buffer *v
        cdef PyObject *item
        cdef cg_instr *ins
        if self.views == NULL and n_views:
            self.views = <Py_buffer *>calloc(n_views, sizeof(Py_buffer))
            if self.views == NULL:
                raise MemoryError("program: cannot allocate its buffer table")
        for i in range(len(scalars)):
            self.scalars[i] = scalars[i]
        self.busy = True
        try:
            for i in range(self.n_bound):
                s = self.bound[i]
                v = &self.views[count]
                PyObject_GetBuffer(args[i], v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT
                                   | (PyBUF_WRITABLE if self.writable[s] else 0))
                count += 1
                if _kind(v) != self.elems[s] or v.ndim != len(self.shapes[s]) \
                        or (<uintptr_t>v.buf) % <uintptr_t>v.itemsize:
                    raise ValueError(f"program: argument {i} is not an aligned "
                                     f"{self.dtypes[s]} array")
                for j in range(v.ndim):
                    if v.shape[j] != self.shapes[s][j]:
                        raise ValueError(f"program: argument {i} has shape "
                                         f"{tuple([v.shape[k] for k in range(v.ndim)])}, "
                                         f"expected {self.shapes[s]}")
                self.ptr[s] = <char *>v.buf
            for s in self.outputs:
                item = PyList_GET_ITEM(self.arrays, s)
                if _refcount(item) != 1:  # held outside since the last run: a new one
                    self.arrays[s] = np.empty(self.shapes[s], self.dtypes[s])
                v = &self.views[count]
                PyObject_GetBuffer(self.arrays[s], v, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE)
                count += 1
                self.ptr[s] = <char *>v.buf
            for i in range(self.n_ins):
                ins = &self.ins[i]
                for j in range(6):
                    ins.p[j] = self.ptr[ins.slot[j]] if ins.slot[j] >= 0 else NULL
            i = 0
            while i < self.n_ins:  # (a pair's time is its first instruction's, the second 0)
                ins = &self.ins[i]
                if spent is not None:
                    clock_gettime(CLOCK_MONOTONIC, &t0)
                if ins.with_next:
                    (<cg_exec_pair>ins.pair)(ins, ins + 1)
                else:
                    (<cg_exec>ins.run)(ins)
                if spent is not None:
                    clock_gettime(CLOCK_MONOTONIC, &t1)
                    spent[i] = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec)
                    if ins.with_next:
                        spent[i + 1] = 0.0
                i += 2 if ins.with_next else 1
            return tuple([self.arrays[s] for s in self.outputs])
        finally:
            for i in range(count):
                PyBuffer_Release(&self.views[i])
            self.busy = False


# ---------------------------------------------------------------- the capture's kernel listing
# A capture lists the backend kernels each op ran (cygrad.compile's plan, printed) by watching
# the Python calls an op makes. sys.setprofile with a Python function made every call and
# return inside the op a Python call (~4-5 ms of a GPT step's capture); this profile function
# is C, and calls the handler only for a call of a function of the watched module.

cdef extern from *:
    """
    #include <frameobject.h>
    static PyObject *cg_watched_globals = NULL; /* the module whose functions are reported */

    static int cg_kernel_profile(PyObject *handler, PyFrameObject *frame, int what,
                                 PyObject *arg)
    {
        PyObject *globals, *r;
        (void)arg;
        if (what != PyTrace_CALL || cg_watched_globals == NULL)
            return 0;
    #if PY_VERSION_HEX >= 0x030B0000
        globals = PyFrame_GetGlobals(frame); /* a new reference */
        Py_XDECREF(globals); /* (the frame holds it) */
    #else
        globals = frame->f_globals;
    #endif
        if (globals != cg_watched_globals)
            return 0;
        r = PyObject_CallOneArg(handler, (PyObject *)frame);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
        return 0;
    }

    static void cg_watch(PyObject *handler, PyObject *globals)
    {
        if (handler == Py_None) {
            PyEval_SetProfile(NULL, NULL);
            return;
        }
        if (globals != cg_watched_globals) {
            Py_INCREF(globals); /* kept for good: a module's dict */
            cg_watched_globals = globals;
        }
        PyEval_SetProfile(cg_kernel_profile, handler);
    }
    """
    void cg_watch(object handler, object globals)


def watch_calls(handler, dict module_globals=None):
    """Call handler(frame) at each call of a Python function defined in the module whose
    globals are `module_globals`, in this thread, until watch_calls(None); as
    sys.setprofile(handler) would see them (sys.getprofile() returns handler meanwhile), at a
    fraction of the cost: the profile function is C and sees every other call go by."""
    if handler is not None and module_globals is None:
        raise TypeError("watch_calls: module_globals is needed with a handler")
    cg_watch(handler, module_globals)
