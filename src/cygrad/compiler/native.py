"""The native tier: a plan's forward and backward as one call into C (csrc/program.pyx).

When every op of a captured step's forward and backward is one the kernel families can replay
as instructions — the dense layers (`ops.layers.Linear` on 2-D inputs, `LinearActivation` with
its kernel), `MSE` and `CrossEntropy` (mean or sum, their backward from the `backward()` seed)
— the plan builds a `Program` at capture and its replay runs those steps as one
`program.run(arrays)`: the same internal C functions their eager entry points call, on the
same operands (so the same bits; tests/test_compile.py checks), without a Python call, an
argument check or an allocation per kernel. Any other op, an in-place write, a gradient summed
from two consumers, a seed other than ones, an operand that is not a C-contiguous aligned
array: the whole plan stays the Python replay (compiler/plan.py), and `plan.native` says why.

What the program holds (csrc/program.pyx): the arrays made inside the step (internal: never
seen outside; outputs: the .grad arrays, a returned loss, reused by the next replay only when
nothing holds them any more), and, per replay, the arrays read live (parameters, the input
batch, the targets), checked in C against the captured dtype and shape.
"""

import numpy as np

from .. import backend as B
from ..ops.layers import Linear, LinearActivation
from ..ops.losses import MSE, CrossEntropy

_REDUCTION = {"mean": 1, "sum": 2}
# Two independent products of at least this many multiply-adds each run at once, a thread each
# (Native._pairs): the MNIST-size step's 64x128 @ 128x256 and 128x64 @ 64x256 (2.1M each).
PAIR_MACS = 1 << 18


def _families():
    impl = B._backends.get("cython")
    if impl is None or B._impl_var.get(B._impl) is not impl:
        return None
    try:
        from .._C import elementwise, gemm, loss, optim, program, reduce
    except ImportError:  # an older build without the program family
        return None
    ex = {}
    for family in (gemm, elementwise, reduce, loss, optim):
        ex.update(family.EXEC)
    return program, ex, elementwise, dict(getattr(gemm, "EXEC_PAIR", {}))


class Native:
    """The native form of a plan's forward and backward, built beside the Python lines."""

    def __init__(self):
        families = _families()
        self.why = None if families is not None else "the cython backend is not in use"
        if families is not None:
            self.program_module, self.exec, self.elementwise, self.pair_exec = families
        self.calls = []  # (kernel, dtype, threads, code, operand vars, sizes, x, writes)
        self.meta = {}  # var -> (shape, dtype) of every array it names
        self.defined = []  # vars the program writes, in order
        self.bound = []  # vars it reads that something else made, in order of first use
        self.saved = {}  # id(op) -> what its backward reads (vars and facts)
        self.temp = 0
        self.started = self.closed = False  # a native step seen; a step of another kind since

    @property
    def ok(self):
        return self.why is None

    def fail(self, why):
        if self.why is None:
            self.why = why

    def boundary(self, step):
        """Plan step `step` is neither native nor a .grad assignment (an optimizer step, an
        in-place write): the program runs every native step at once, so none may follow."""
        if self.started:
            self.closed = True

    def _open(self):
        if self.closed:
            self.fail("an optimizer step or an in-place write between two ops")
        self.started = True
        return self.ok

    # ---------------------------------------------------------------- variables

    def _tmp(self, shape, dtype):
        self.temp += 1
        var = f"_n{self.temp}"
        self._write(var, shape, dtype)
        return var

    def _read(self, var, array):
        """var (holding array at capture) as an operand: known, or bound per replay."""
        if var in self.meta:
            return True
        if not isinstance(array, np.ndarray) or array.dtype not in (np.float32, np.float64,
                                                                     np.intp):
            self.fail(f"{var} is not a float32, float64 or intp array")
            return False
        if not (array.flags.c_contiguous and array.flags.aligned) or array.dtype.byteorder \
                not in "=|":
            self.fail(f"{var} is not a C-contiguous aligned array")
            return False
        self.meta[var] = (tuple(array.shape), array.dtype)
        self.bound.append(var)
        return True

    def _write(self, var, shape, dtype):
        if var in self.meta and var not in self.defined:
            self.fail(f"{var} is written in place")
            return
        self.meta[var] = (tuple(shape), np.dtype(dtype))
        if var not in self.defined:
            self.defined.append(var)

    def _call(self, kernel, dtype, threads, code, operands, sizes, x=0.0, writes=()):
        self.calls.append((kernel, np.dtype(dtype), threads, code, list(operands), list(sizes),
                           float(x), tuple(writes)))

    # ---------------------------------------------------------------- forward

    def forward(self, op, params, args, arrays, out, out_array, named):
        """Record op's forward as instructions writing `out`; False (and why) if it has none."""
        if not self.ok or not self._open():
            return False
        for var, a in zip(args, arrays):
            if not self._read(var, a):
                return False
        nt = B._threads_var.get(B._kernel_threads)
        dtype = out_array.dtype
        if any(a.dtype != dtype for a in arrays[:3] if a.dtype.kind == "f"):
            return self._no(op, "mixed dtypes")
        if type(op) is Linear and params.get("in_shape") is None and arrays[0].ndim == 2 \
                and not named:
            x, w = args[:2]
            m, k = arrays[0].shape
            n = arrays[1].shape[0]
            if arrays[1].shape != (n, k) or out_array.shape != (m, n):
                return self._no(op, "shapes")
            self._write(out, (m, n), dtype)
            self._call("gemm", dtype, nt, 2, [x, w, out], [m, n, k, k, k], writes=(2,))
            if len(args) == 3:
                if arrays[2].shape != (n,):
                    return self._no(op, "bias shape")
                self._call("bias_add", dtype, nt, 0, [out, args[2], out], [m, n], writes=(2,))
            self.saved[id(op)] = ("linear", args, (m, n, k), dtype, params.get("needs", ()))
            return True
        if isinstance(op, LinearActivation) and len(args) == 3 and not named \
                and arrays[0].ndim == 2 and B.has_kernel(op.entry.kernel, arrays[0]):
            e = op.entry
            x, w, b = args
            m, k = arrays[0].shape
            n = arrays[1].shape[0]
            if arrays[1].shape != (n, k) or arrays[2].shape != (n,) or out_array.shape != (m, n):
                return self._no(op, "shapes")
            try:
                code = self.elementwise.activation_code(e.kernel)
                slope = float(params.get(e.kernel_param, 0.0))
            except (ValueError, TypeError):
                return self._no(op, "its activation")
            z = self._tmp((m, n), dtype)
            self._write(z, (m, n), dtype)
            self._write(out, (m, n), dtype)
            self._call("gemm", dtype, nt, 2, [x, w, z], [m, n, k, k, k], writes=(2,))
            self._call("bias_activation", dtype, nt, code, [z, b, out], [m, n], slope, (0, 2))
            saved = z if "x" in e.saves else out
            self.saved[id(op)] = ("linear_activation", args, (m, n, k), dtype,
                                  params.get("needs", ()), saved, code, slope)
            return True
        reduction = _REDUCTION.get(params.get("reduction"))
        if type(op) is MSE and reduction and not named and len(args) == 2 \
                and arrays[0].shape == arrays[1].shape and arrays[0].size > 0:
            size = arrays[0].size
            diff, squares = self._tmp(arrays[0].shape, dtype), self._tmp(arrays[0].shape, dtype)
            for var in (diff, squares):
                self._write(var, arrays[0].shape, dtype)
            self._write(out, (), dtype)
            self._call("mse", dtype, nt, reduction, [args[0], args[1], diff, squares, out],
                       [size], writes=(2, 3, 4))
            self.saved[id(op)] = ("mse", args, size, dtype, params.get("needs", ()), diff,
                                  reduction)
            return True
        if type(op) is CrossEntropy and reduction and len(args) == 1 \
                and set(params) <= {"targets", "reduction", "needs"} \
                and list(named) == ["targets"] and arrays[0].ndim == 2 \
                and arrays[0].shape[0] > 0:
            targets = params["targets"]
            tvar = named["targets"]
            if not (isinstance(targets, np.ndarray) and targets.dtype == np.intp
                    and targets.shape == (arrays[0].shape[0],)):
                return self._no(op, "its targets")
            if not self._read(tvar, targets):
                return False
            n, c = arrays[0].shape
            threads = nt if n * c >= (1 << 16) else 1  # cython_backend's choice (_COSTLY)
            logp, losses = self._tmp((n, c), dtype), self._tmp((n,), dtype)
            self._write(logp, (n, c), dtype)
            self._write(losses, (n,), dtype)
            self._write(out, (), dtype)
            self._call("cross_entropy", dtype, threads, reduction,
                       [args[0], tvar, logp, losses, out], [n, c], writes=(2, 3, 4))
            self.saved[id(op)] = ("cross_entropy", args, (n, c), dtype, (True,), logp,
                                  reduction, tvar, threads)
            return True
        return self._no(op, "no instructions")

    def _no(self, op, what):
        self.fail(f"{type(op).__name__} ({what})")
        return False

    # ---------------------------------------------------------------- backward

    def backward(self, op, g, is_seed, outs):
        """Record op's backward from gradient variable g; outs[i]: the variable input i's
        gradient goes to (None: not wanted)."""
        if not self.ok or not self._open():
            return
        saved = self.saved.get(id(op))
        if saved is None:
            return self.fail(f"{type(op).__name__} backward")
        kind, args, dims, dtype, needs = saved[:5]
        nt = B._threads_var.get(B._kernel_threads)
        if kind in ("mse", "cross_entropy"):
            if not is_seed:
                return self.fail(f"{type(op).__name__} backward from a gradient other than "
                                 "backward()'s seed")
        elif g not in self.meta:
            return self.fail("a gradient from outside the program")

        def target(i, shape):
            var = outs[i] if i < len(outs) else None
            if var is None:
                var = self._tmp(shape, dtype)
            self._write(var, shape, dtype)
            return var

        if kind == "mse":
            diff, reduction = saved[5], saved[6]
            shape = self.meta[diff][0]
            dx = target(0, shape)
            dt = target(1, shape) if len(outs) > 1 and outs[1] is not None else None
            self._call("mse_backward", dtype, nt, reduction, [diff, dx, dt or -1], [dims],
                       writes=(1, 2) if dt else (1,))
            return
        if kind == "cross_entropy":
            logp, reduction, tvar, threads = saved[5:9]
            dx = target(0, dims)
            self._call("cross_entropy_backward", dtype, threads, reduction, [logp, tvar, dx],
                       list(dims), writes=(2,))
            return
        m, n, k = dims
        x, w = args[:2]
        if kind == "linear_activation":
            saved_var, code, slope = saved[5:8]
            dz = self._tmp((m, n), dtype)
            self._write(dz, (m, n), dtype)
            db = target(2, (n,)) if needs[2] else self._tmp((n,), dtype)
            self._write(db, (n,), dtype)
            self._call("activation_backward_bias", dtype, nt, code, [g, saved_var, dz, db],
                       [m, n], slope, writes=(2, 3))
            g = dz
        if needs and needs[0]:
            self._call("gemm", dtype, nt, 0, [g, w, target(0, (m, k))], [m, k, n, n, k],
                       writes=(2,))
        if len(needs) > 1 and needs[1]:
            self._call("gemm", dtype, nt, 1, [g, x, target(1, (n, k))], [n, k, m, n, k],
                       writes=(2,))
        if kind == "linear" and len(needs) > 2 and needs[2]:
            self._call("column_sum", dtype, nt, 0, [g, target(2, (n,))], [m, n], writes=(1,))

    # ---------------------------------------------------------------- the program

    def labels(self):
        """Each instruction for people, as the plan lists a step's kernels: its kernel and
        the shapes of the operands it reads ("gemm(64x784, 256x784)"): those it does not
        write, and those it writes in place (an earlier instruction used them)."""
        out, used = [], set()
        for kernel, _, _, _, operands, _, _, writes in self.calls:
            reads = [v for i, v in enumerate(operands)
                     if v not in (-1, None) and (i not in writes or v in used)]
            out.append(f"{kernel}(" + ", ".join("x".join(map(str, self.meta[v][0])) or "()"
                                                for v in reads) + ")")
            used.update(v for v in operands if v not in (-1, None))
        return out

    def build(self, outputs):
        """The Program, with `outputs` (defined vars read by the lines around it) as its output
        slots; returns (program, bound vars in run()'s order, output vars in its order)."""
        outputs = [v for v in self.defined if v in set(outputs)]
        program = self.program_module.Program()
        slots = {}
        for var in self.bound:
            shape, dtype = self.meta[var]
            slots[var] = program.slot(shape, dtype, "bound")
        for var in self.defined:
            shape, dtype = self.meta[var]
            slots[var] = program.slot(shape, dtype, "output" if var in outputs else "internal")
        for kernel, dtype, threads, code, operands, sizes, x, writes in self.calls:
            _check(kernel, dtype, code, [None if v in (-1, None) else self.meta[v]
                                         for v in operands], sizes)
            program.add(kernel, self.exec[kernel], dtype, threads, code,
                        [-1 if v == -1 or v is None else slots[v] for v in operands], sizes, x,
                        writes, self.pair_exec.get(kernel))
        i = 0
        while i + 1 < len(self.calls):
            if self._pairs(self.calls[i], self.calls[i + 1]):
                program.pair(i)
                i += 1
            i += 1
        return program, list(self.bound), outputs

    def _pairs(self, first, second):
        """Run two adjacent products at once, each whole on a thread of its own (a layer's
        dX = g @ W and dW = g.T @ x: the same multiply-adds)? When they are independent, the
        step has two threads or more, and each has PAIR_MACS multiply-adds or more, neither
        more than twice the other's: two halves of each, one product after the other, lost
        more to the threads' start and join (csrc/README.md: 29.2 + 26.4 -> 36.7 µs)."""
        if first[0] != "gemm" or second[0] != "gemm" or first[1] != second[1] \
                or min(first[2], second[2]) < 2 or "gemm" not in self.pair_exec:
            return False
        macs = [s[5][0] * s[5][1] * s[5][2] for s in (first, second)]
        if min(macs) < PAIR_MACS or 2 * min(macs) < max(macs):
            return False
        reads = [set(s[4]) - {-1, None} for s in (first, second)]
        writes = [{s[4][w] for w in s[7]} for s in (first, second)]
        return not (writes[0] & reads[1] or writes[1] & reads[0])


def _check(kernel, dtype, code, operands, sizes):
    """An instruction's sizes against its operands' (shape, dtype): the C trusts them, so a
    mismatch here (a bug of this module) raises instead of reaching it."""
    shapes = [None if o is None else o[0] for o in operands]
    for i, o in enumerate(operands):
        if o is not None and o[1] != dtype and not (kernel.startswith("cross_entropy")
                                                    and i == 1 and o[1] == np.intp):
            raise ValueError(f"{kernel}: operand {i} is {o[1]}, the instruction {dtype}")
    s = shapes
    if kernel == "gemm":
        m, n, k, ac, bc = sizes
        ok = (s[0] == ((k, m) if code & 1 else (m, k)) and s[1] == ((n, k) if code & 2 else (k, n))
              and s[2] == (m, n) and ac == s[0][1] and bc == s[1][1])
    elif kernel in ("bias_add", "bias_activation"):
        m, n = sizes
        ok = s[0] == s[2] == (m, n) and s[1] == (n,)
    elif kernel == "activation_backward_bias":
        m, n = sizes
        ok = s[0] == s[1] == s[2] == (m, n) and s[3] == (n,)
    elif kernel == "column_sum":
        m, n = sizes
        ok = s[0] == (m, n) and s[1] == (n,)
    elif kernel == "mse":
        ok = s[0] == s[1] == s[2] == s[3] and int(np.prod(s[0])) == sizes[0] and s[4] == ()
    elif kernel == "mse_backward":
        ok = s[0] == s[1] and s[2] in (None, s[0]) and int(np.prod(s[0])) == sizes[0]
    elif kernel == "cross_entropy":
        n, c = sizes
        ok = s[0] == s[2] == (n, c) and s[1] == s[3] == (n,) and s[4] == ()
    elif kernel == "cross_entropy_backward":
        n, c = sizes
        ok = s[0] == s[2] == (n, c) and s[1] == (n,)
    else:
        raise ValueError(f"no instruction {kernel!r}")
    if not ok:
        raise ValueError(f"{kernel}: sizes {sizes} do not fit operands {shapes}")


def sgd_program(pairs, momentum):
    """A Program of SGD's update (csrc/optim.pyx `_exec_sgd`, one instruction a parameter) for
    (parameter array, gradient array) pairs as captured; bound per run: the parameters
    (written), the gradients, and with momentum the buffers (written); scalars lr, momentum,
    dampening, nesterov, weight_decay, maximize. None where the kernels cannot take them."""
    families = _families()
    if families is None:
        return None
    program_module, ex, _, _ = families
    for a, g in pairs:
        if a.dtype not in (np.float32, np.float64) or g.dtype != a.dtype or g.shape != a.shape \
                or not all(x.flags.c_contiguous and x.flags.aligned for x in (a, g)):
            return None
    program = program_module.Program()
    nt = B._threads_var.get(B._kernel_threads)
    params = [program.slot(a.shape, a.dtype, "bound", True) for a, _ in pairs]
    grads = [program.slot(g.shape, g.dtype, "bound") for _, g in pairs]
    bufs = [program.slot(a.shape, a.dtype, "bound", True) if momentum else -1 for a, _ in pairs]
    for (a, _), p, g, b in zip(pairs, params, grads, bufs):
        program.add("sgd", ex["sgd"], a.dtype, nt, 0, [p, g, b], [a.size], 0.0,
                    (0, 2) if momentum else (0,))
    return program
