"""A plan: a captured step as one flat Python function, generated from the recorder's events.

Every array the step handled gets a variable; every op's forward and backward becomes a line
calling the op's own method (the same Python and the same kernels as eager, so the same bits),
on an op object reused from call to call: its attributes are reset from a copy of its captured
parameters before each forward. Nothing of the engine's bookkeeping remains: no Tensor per
result, no graph, no read-only leases, no topological sort, no version counters. A gradient
that several consumers send to one tensor is summed in the order backward summed it.

Where each variable comes from:
    a<k>        the k-th argument (a Tensor; x<k> its array), or the array itself
    v<n>        an op's output, or a tensor read live (T<n>: parameters, buffers, constants;
                A<n> the array it had, checked at each call)
    w<n>        a tensor's array read where it is needed (an argument's, a .grad's)
    z<n>        a dense layer's pre-activation (compiler/direct.py)
    d<n>        an array derived from another: a view of it, or an integer copy of an
                argument (class targets, indices: what nn.functional snapshots)
    C<n>        an array parameter kept as it is (by identity)
    g<n>        a gradient
    K, S, G, L, H, OPT<n>   constants: dtypes and numbers, the guards' values, an optimizer's
                param group and list, a .grad object a guard expects, an optimizer
`print(plan.source)` shows the function; `print(plan)` the steps for people.
"""

import collections
import gc
import itertools
import operator
import re
import time

import numpy as np

from .. import _state, random
from .. import backend as B
from ..nn import module
from ..tensor import Tensor, _new, _writable
from .direct import lower
from .native import Native
from .updates import update_lines

_consume = collections.deque(maxlen=0).extend  # runs an iterator to its end

_MISS = object()  # a replay's guard failed: capture again
_UNDECIDED = "not decided before the second call verifies the capture"

# Code objects of recent plans' sources: a plan's source names its own namespace's constants
# (parameters, ops, the guards' shapes), so a capture of the same step on other objects (a fresh
# model of the same structure: a sweep over seeds, widths or learning rates) yields the same
# text, and Python's compile() of a large step (10 ms for the GPT-lecture model's 600 lines)
# runs once. Each plan runs the code in its own namespace.
_CODES = {}
_CODES_KEPT = 16


def _code(source):
    code = _CODES.get(source)
    if code is None:
        code = compile(source, "<cygrad.compile plan>", "exec")
        while len(_CODES) >= _CODES_KEPT:
            _CODES.pop(next(iter(_CODES)), None)
        _CODES[source] = code
    return code


def clear_code_cache():
    """Forget the compiled code of earlier plans (the next capture compiles its source anew:
    what a first compile in a fresh process costs)."""
    _CODES.clear()


_get_data = operator.attrgetter("_data")
_get_rg = operator.attrgetter("_rg")


def _leaf_tensor(array):
    """A leaf Tensor around the array, made as backward makes a gradient: the .grad a replay
    sets, and the results it returns (no graph: backward is done)."""
    t = _new(Tensor)
    t._data, t._grad, t._rg, t._op, t._parents = array, None, False, None, ()
    t._g = t._mark = t._extra = None
    t._used = False
    return t


def _view(base, shape, dtype, offset, strides):
    return np.ndarray(shape, dtype, buffer=base, offset=offset, strides=strides)


def _shape(shape):
    """'32x16' for a shape."""
    return "x".join(map(str, shape)) if shape else "()"


class Step:
    """One line of the plan, for people: what it does, on which shapes, with which kernels.
    shapes: a text, or (inputs, outputs), each a tuple of shapes, written out when shown."""

    __slots__ = ("kind", "name", "_shapes", "kernels", "time", "native")

    def __init__(self, kind, name, shapes="", kernels=()):
        self.kind, self.name, self._shapes, self.kernels = kind, name, shapes, list(kernels)
        self.time = None
        self.native = []  # the native program's instructions it runs, as [label, time]

    @property
    def shapes(self):
        if isinstance(self._shapes, str):
            return self._shapes
        ins, outs = self._shapes
        return f"{' '.join(map(_shape, ins))} -> {' '.join(map(_shape, outs))}"


class Plan:
    """A captured step: `run(leaves)` replays it (returns _MISS when a guard fails)."""

    def __init__(self):
        self.steps = []
        self.signature = []  # compared between two captures
        self.descriptions = []  # the step each signature entry belongs to
        self.live = []  # (tensor, array at capture, requires_grad)
        self.grad_checks = []  # (tensor reference, "none" | "is", object)
        self.leaf_tensors = []
        self.opts = []
        self.source = ""
        self.ns = {}
        self.replay = self.replay_timed = None
        self.capture_seconds = 0.0
        self.replays = 0
        self.timed = 0  # replays still to time: the 2nd, 4th, 8th... (warm ones)
        self.next_timed = 2
        self.call_times = []
        self.guards = ""
        self.status = "captured"
        self.native = None  # the Program running forward and backward (compiler/native.py)
        self.native_why = None  # or why there is none
        self.native_index = {}  # plan step -> the indices of the program's instructions it runs

    def live_tensors(self):
        seen, out = set(), []
        for t in [t for t, _, _ in self.live] + self.leaf_tensors:
            if id(t) not in seen:
                seen.add(id(t))
                out.append(t)
        return out

    def optimizers(self):
        return list(self.opts)

    def ready(self):
        """Compile the generated function (a plan that is only compared never needs it; the
        timed twin is compiled by the first timed replay)."""
        if self.replay is None:
            exec(_code(self.source), self.ns)
            self.replay = self.ns["replay"]
        return self

    def run(self, leaves):
        self.replays += 1
        if self.timed and self.replays == self.next_timed:
            self.timed -= 1
            self.next_timed *= 2
            if self.replay_timed is None:
                exec(_code(self.timed_source), self.ns)
                self.replay_timed = self.ns["replay_timed"]
            stamps = [0.0] * (len(self.steps) + 1)
            start = time.perf_counter()
            out = self.replay_timed(stamps, *leaves)
            end = time.perf_counter()
            if out is not _MISS:
                self._times(stamps, end - start)
        else:
            out = self.replay(*leaves)
        if out is _MISS:
            self.replays -= 1
        return out

    def _times(self, stamps, total):
        spent = self.ns.get("_PT")  # the native program's instructions, each timed in C
        for i, step in enumerate(self.steps):
            dt = stamps[i + 1] - stamps[i]
            if step.native:  # its instructions' time (the program's whole run is stamped
                # around the first native step)
                dt = 0.0
                for entry, j in zip(step.native, self.native_index[i]):
                    dt += spent[j]
                    entry[1] = spent[j] if entry[1] is None else min(entry[1], spent[j])
            step.time = dt if step.time is None else min(step.time, dt)
        self.call_times.append(total)

    # ------------------------------------------------------------------ showing it

    def __str__(self):
        lines = [f"cygrad.compile plan ({self.status}): {len(self.steps)} steps, "
                 f"{sum(len(s.kernels) for s in self.steps)} kernel calls; "
                 f"captured in {self.capture_seconds * 1e3:.1f} ms; {self.replays} replays",
                 f"guards: {self.guards}",
                 (f"native: forward and backward as one program of {len(self.native)} kernel "
                  "calls (csrc/program.pyx)" if self.native is not None else
                  f"native: no ({self.native_why}); the Python replay runs every step")]
        width = max([len(s.name) for s in self.steps] + [4])
        lines.append(f"{'#':>4}  {'step':<{width}}  {'time':>9}  shapes / kernels")
        for i, s in enumerate(self.steps):
            t = "" if s.time is None else f"{s.time * 1e6:7.1f} µs"
            lines.append(f"{i:>4}  {s.name:<{width}}  {t:>9}  {s.shapes}")
            for label, spent in s.native:  # what the native program runs, each timed
                t = "" if spent is None or label.startswith("‖") else f"{spent * 1e6:7.1f} µs"
                lines.append(f"{'':>4}  {'':<{width}}  {t:>9}    {label}")
            for name, shapes in () if s.native else s.kernels:
                args = ", ".join(x if isinstance(x, str) else
                                 ("x".join(map(str, x)) if x else "()") for x in shapes)
                lines.append(f"{'':>4}  {'':<{width}}  {'':>9}    {name}({args})")
        if self.call_times:
            total = min(self.call_times)
            steps = sum(s.time or 0.0 for s in self.steps)
            lines.append(f"replay: {total * 1e6:.1f} µs (best of {len(self.call_times)} timed "
                         f"replays: the 2nd, 4th, 8th...), "
                         f"steps {steps * 1e6:.1f} µs, guards and glue "
                         f"{(total - steps) * 1e6:.1f} µs")
        else:
            lines.append("replay: not timed yet (the 2nd, 4th, 8th... replays are)")
        return "\n".join(lines)

    __repr__ = __str__


class Builder:
    """Turns a recorder's events into a Plan (see the module docstring)."""

    def __init__(self, recorder, leaves, snapshot=None):
        self.rec = recorder
        self.snap = snapshot
        self.plan = Plan()
        self.ns = self.plan.ns
        self.ns.update(_nd=np.ndarray, _asarray=np.asarray, _np=np, _MISS=_MISS,
                       _gradt=_leaf_tensor, _wrap=_leaf_tensor, _writable=_writable,
                       _copyto=np.copyto, _view=_view)
        self.head = []  # the guards and the live reads
        self.body = []
        self.var_of = {}  # id(array) -> variable
        self.owners = {}  # id(owning array) -> [(variable, array)]
        self.ref_of = {}  # id(tensor) -> an expression for the tensor in the replay
        self.gvar = {}  # id(tensor) -> the variable of its gradient while backward runs
        self.op_index = {}
        self.lowered = {}  # id(op) -> its backward as lines (an op replayed as its kernels)
        self.resets = []  # the ops whose state each replay starts afresh as a copy of params
        self.keep = []
        self.inputs = []  # (variable, array) of the arguments
        self.count = 0
        self.problems = []
        self.step_lines = []  # per plan step: its lines
        self.step_native = []  # per plan step: None, or the lines before its kernels (native)
        self.step_calls = []  # per plan step: the native instructions recorded up to its end
        self.native_call = None  # the line calling the program (timed in the timed replay)
        self.nat = Native()
        if snapshot is None:  # (a first capture is only compared: no program is built for it,
            self.nat.fail(_UNDECIDED)  # so its instructions need not be either)
        self.cleared = []  # .grad that fn set to None before backward set it
        self.grad_decided = set()  # refs whose first leaf action decided their .grad check
        self.live_var = {}  # id(tensor) -> (variable of its array read live, that array)
        self.live_names = []  # the variables of plan.live's arrays, in its order
        self.grad_var = {}  # id(tensor) -> the variable its .grad was set to (adopted)
        self.grad_copy = {}  # ref -> (tensor, variable, array) of a .grad set to a copy
        self.updates = []  # (plan step, native form of an optimizer update: updates.py)
        self.leaves = leaves
        self.last_backward = {}
        self.owner = _owners(recorder.events, getattr(snapshot, "owners", None))
        self.plan.owners = self.owner
        self._pending_seed = None
        for i, e in enumerate(recorder.events):
            if e[0] == "backward":
                self.last_backward[id(e[1]._op)] = i
        for k, leaf in enumerate(leaves):
            if isinstance(leaf, Tensor):
                self.ref_of.setdefault(id(leaf), f"a{k}")
                if id(leaf._data) not in self.var_of:
                    self.head.append(f"x{k} = a{k}._data")
                    self._name(leaf._data, f"x{k}")
                    self.inputs.append((f"x{k}", leaf._data))
            elif isinstance(leaf, np.ndarray) and id(leaf) not in self.var_of:
                self._name(leaf, f"a{k}")
                self.inputs.append((f"a{k}", leaf))

    # ------------------------------------------------------------------ names

    def _new(self, prefix):
        self.count += 1
        return f"{prefix}{self.count}"

    def _name(self, array, var):
        self.var_of[id(array)] = var
        self.keep.append(array)
        owner = array if array.base is None else array.base
        self.owners.setdefault(id(owner), []).append((var, array))

    def _const(self, value, prefix="K"):
        name = self._new(prefix)
        self.ns[name] = value
        return name

    def _sig(self, description, *entry):
        self.plan.signature.append(entry)
        self.plan.descriptions.append(description)

    # ------------------------------------------------------------------ values

    def value(self, array, tensor=None, lines=None):
        """The variable holding `array` in the replay (made on first use)."""
        lines = self.body if lines is None else lines
        var = self.var_of.get(id(array))
        if var is not None:
            return var
        if tensor is not None and id(tensor) in self.ref_of:  # an argument or a .grad
            var = self._new("w")
            lines.append(f"{var} = {self.ref_of[id(tensor)]}._data")
            self._name(array, var)
            return var
        derived = self._derive(array, tensor is not None, lines)
        if derived is not None:
            return derived
        if tensor is not None:
            return self._live(tensor, array)
        var = self._const(array, "C")  # an array kept by identity (a buffer, a constant)
        self._name(array, var)
        self._sig(f"array parameter {var}", "pin", array)
        return var

    def _live(self, tensor, array):
        var, ref = self._new("v"), self._new("T")
        self.ns[ref] = tensor
        self.live_names.append(var)  # read with the others at the start (_live_lines)
        self.plan.live.append((tensor, array, tensor._rg))
        self.ref_of[id(tensor)] = ref
        self.live_var[id(tensor)] = (var, array)
        self._name(array, var)
        self._sig(f"tensor {ref} {tuple(array.shape)}", "live", tensor)
        return var

    def _derive(self, a, float_ok, lines):
        """An expression for `a` from a known array: a view of one, or a copy of an argument
        (an integer snapshot of class targets or indices), or None."""
        owner = a if a.base is None else a.base
        for var, s in self.owners.get(id(owner), ()):
            if not s.flags.c_contiguous:
                continue
            offset = a.__array_interface__["data"][0] - s.__array_interface__["data"][0]
            if offset < 0 or offset + _extent(a) > s.nbytes:
                continue
            if offset == 0 and a.dtype == s.dtype and a.size == s.size and a.flags.c_contiguous:
                expr = f"{var}.reshape({a.shape!r})"
            else:
                expr = f"_view({var}, {a.shape!r}, {self._const(a.dtype)}, {offset}, " \
                       f"{a.strides!r})"
            return self._assign(a, expr, lines)
        if a.size < 2 or not a.flags.c_contiguous or (a.dtype.kind not in "iub" and not
                                                       float_ok):
            return None
        if a.dtype.kind in "iub" and a.min() == a.max():
            return None  # one value repeated: a constant as much as a copy
        for var, s in self.inputs:
            if s.size != a.size:
                continue
            try:
                same = np.array(s.reshape(a.shape), dtype=a.dtype)
            except (ValueError, TypeError):
                continue
            if same.tobytes() == a.tobytes():
                return self._assign(a, f"_np.array({var}.reshape({a.shape!r}), "
                                       f"dtype={self._const(a.dtype)})", lines)
        return None

    def _assign(self, array, expr, lines):
        var = self._new("d")
        lines.append(f"{var} = {expr}")
        self._name(array, var)
        self._sig(f"derived {var}", "derived", _strip(expr))
        return var

    def _param(self, value, lines):
        """(expression or None: unchanged, signature) for one op parameter."""
        if isinstance(value, np.ndarray):
            owner = self.owner.get(id(value))
            if owner is not None and id(value) not in self.var_of:  # a buffer's array (a
                ref = self._tensor_ref(owner)  # BatchNorm's running statistics): read live,
                # as the functional read it (copied first if a live graph saved it)
                expr = f"_writable({ref})" if value.flags.writeable else f"{ref}._data"
                return expr, ("owned", ref)
            var = self.value(value, lines=lines)
            if var.startswith("C") and self.ns.get(var) is value:
                return None, ("pin", var)
            return var, ("var", var)
        if isinstance(value, Tensor):
            ref = self.ref_of.get(id(value))
            if ref is None:
                self.value(value._data, value, lines)
                ref = self.ref_of.get(id(value))
            if ref is None:
                self.problems.append("an op parameter is a tensor compile cannot follow")
                return None, ("obj", value)
            return ref, ("ref", ref)
        if isinstance(value, (tuple, list)) and any(isinstance(v, (np.ndarray, Tensor))
                                                    for v in value):
            parts = [self._param(v, lines) for v in value]
            if all(e is None for e, _ in parts):
                return None, tuple(s for _, s in parts)
            exprs = [e if e is not None else self._const(v) for (e, _), v in zip(parts, value)]
            expr = f"({', '.join(exprs)}{',' if len(exprs) == 1 else ''})"
            if isinstance(value, list):
                expr = f"[{expr[1:-1]}]"
            return expr, tuple(s for _, s in parts)
        return None, ("obj", value)

    # ------------------------------------------------------------------ events

    def build(self, out):
        for i, e in enumerate(self.rec.events):
            kind = e[0]
            if kind == "op":
                self._op(i, *e[1:])
            elif kind == "before":
                self._seed(e[1], e[2])
            elif kind == "backward":
                self._backward(i, *e[1:])
            elif kind == "leaf":
                self._leaf(i, e)
            elif kind == "write":
                self._write(i, *e[1:])
            elif kind == "opt":
                self._opt(i, *e[1:5])
        self._grads_at_end()
        result = self._output(out)
        if self.snap is not None:  # (a first capture is only compared with the second: it is
            self._generate(result)  # never replayed, so it needs no code)
        else:
            self.plan.native_why = _UNDECIDED
        self.plan.problems = self.problems
        return self.plan

    def _step(self, event, kind, name, shapes, lines, native=None):
        self.plan.steps.append(Step(kind, name, shapes, self.rec.kernels.get(event, ())))
        self.step_lines.append(lines)
        self.step_native.append(native)
        self.step_calls.append(len(self.nat.calls))
        if native is None and kind not in ("grad",):
            self.nat.boundary(len(self.step_lines) - 1)

    def _op(self, event, op, params, inputs, arrays, out, out_array):
        k = len(self.op_index)
        self.op_index[id(op)] = k
        lines = []
        args = [self.value(a, t, lines) for t, a in zip(inputs, arrays)]
        bound = []
        signature = []
        for key, value in params.items():
            expr, sig = self._param(value, lines)
            signature.append((key, sig))
            if expr is not None:
                bound.append((key, expr))
        o, p, f = f"O{k}", f"P{k}", f"F{k}"
        var = self._new("v")
        prefix = list(lines)  # the arrays it reads, made ready (derived, read from a .grad)
        named = dict(bound)  # the array parameters' variables (bound, or kept as they are)
        for key, value in params.items():
            if isinstance(value, np.ndarray) and id(value) in self.var_of:
                named.setdefault(key, self.var_of[id(value)])
        native = prefix if self.nat.forward(op, params, args, arrays, var, out_array,
                                            named) else None
        direct = None if bound else lower(self, op, params, args, arrays, var)
        if direct is not None:  # its kernel calls, written out (compiler/direct.py)
            lines.extend(direct[0])
            self.lowered[id(op)] = direct[1]
        else:
            if self.snap is not None:  # (only code reads them: a first capture's plan has none,
                # nor need it keep its call's ops alive)
                self.ns[o], self.ns[p], self.ns[f] = op, params, op.forward
                self.ns[f"B{k}"] = op.backward
            if bound:
                items = ", ".join(f"{key!r}: {expr}" for key, expr in bound)
                lines.append(f"{o}.__dict__ = {{**{p}, {items}}}")
            else:  # O.__dict__ = P.copy(), for all such ops at once before the first step
                self.resets.append((op, params))  # (one line, not one per op: Python's
                # compile() of the source is ~10 us a line, a GPT step's ops ~250 lines)
            lines.append(f"{var} = {f}({', '.join(args)})")
            if out_array.ndim == 0:  # (numpy gives a scalar for a 0-d result; apply() too
                # makes it an array: only 0-d outputs can be anything else)
                lines.append(f"if type({var}) is not _nd: {var} = _asarray({var})")
        self._name(out_array, var)
        name = type(op).__name__ + (" [kernels]" if direct is not None else "")
        shapes = (tuple([a.shape for a in arrays]), (out_array.shape,))
        self._sig(f"forward {name}", "op", type(op), tuple(args), var, tuple(signature))
        self._step(event, "forward", name, shapes, lines, native)

    def _seed(self, node, seed):
        if seed is None or id(node) in self.gvar or node._op is None:
            return
        shape, dtype, ones = seed
        if shape != node._data.shape or dtype != node._data.dtype or not ones:
            self.problems.append("backward(gradient=...) with a gradient other than ones")
            return
        var = self._new("g")
        self.gvar[id(node)] = var
        d = self._const(dtype)
        self._pending_seed = (var, f"{var} = _np.empty({shape!r}, {d}); {var}.fill(1)")
        self._sig("seed", "seed", shape, dtype)

    def _backward(self, event, node, g, input_grads, parents):
        op = node._op
        k = self.op_index.get(id(op))
        if k is None:
            self.problems.append(f"backward reached {type(op).__name__}, an op recorded before "
                                 "the compiled step was called (a graph built outside it)")
            return
        lines = []
        seed = self._pending_seed
        is_seed = seed is not None and seed[0] == self.gvar.get(id(node))
        if is_seed:
            lines.append(seed[1])
            self._pending_seed = None
        gv = self.gvar.get(id(node))
        if gv is None:
            self.problems.append("a gradient arrived from outside the recorded backward")
            return
        direct = self.lowered.get(id(op))
        if direct is not None:
            lines.extend(direct(gv))
        elif self.last_backward.get(id(op)) == event:  # its last: the op's state released
            lines.append(f"_r = BR{k}({gv})")  # after it, as eager's backward does
            if self.snap is not None:
                self.ns[f"BR{k}"] = _releasing(op, self.ns[f"P{k}"])
        else:
            lines.append(f"_r = B{k}({gv})")
        call = len(lines) - 1  # its gradients unpacked in the same line when none is a sum
        unpack = ["_"] * len(input_grads)
        sends = []
        outs = [None] * len(input_grads)
        for i, (parent, pg) in enumerate(zip(parents, input_grads)):
            if pg is None or not parent._rg:
                continue
            held = self.gvar.get(id(parent))
            if held is None:
                var = self._new("g")
                self.gvar[id(parent)] = var
                lines.append(f"{var} = _r[{i}]")
                outs[i] = var
                if unpack is not None:
                    unpack[i] = var
            else:
                var = held
                lines.append(f"{var} = {var} + _r[{i}]")
                self.nat.fail("a gradient summed from two consumers")
                unpack = None
            sends.append((i, var))
        if unpack is not None and lines[call].startswith("_r = "):
            lines[call:] = [f"{', '.join(unpack)}, = {lines[call][5:]}"]
        self.nat.backward(op, gv, is_seed, outs)
        del self.gvar[id(node)]  # backward hands each node's sum on once
        name = f"{type(op).__name__} backward" + (" [kernels]" if direct is not None else "")
        shapes = ((g[0],), tuple([pg[0] for pg in input_grads if pg is not None]))
        self._sig(f"backward {name}", "backward", k, gv, tuple(sends))
        self._step(event, "backward", name, shapes, lines, [] if self.nat.ok else None)

    def _tensor_ref(self, tensor):
        """An expression for the tensor object itself (an argument, or one read live)."""
        ref = self.ref_of.get(id(tensor))
        if ref is None:
            self._live(tensor, tensor._data)
            ref = self.ref_of[id(tensor)]
        return ref

    def _leaf(self, event, e):
        _, node, g, held, after, shape = e[:6]
        gv = self.gvar.get(id(node))
        if gv is None:
            self.problems.append("a leaf gradient that is not backward's sum")
            return
        ref = self._tensor_ref(node)
        lines = []
        if held is None:
            if after is not None and id(after._data) == g:  # backward adopted it
                lines.append(f"{ref}._grad = _gradt({gv})")
                self.grad_var[id(node)] = (gv, after._data)
            else:
                lines.append(f"{ref}._grad = _gradt(_np.array({gv}, "
                             f"dtype={self._const(node._data.dtype)}))")
                if after is not None:  # (a native replay hands its own array out instead)
                    self.grad_copy[ref] = (node, gv, after._data)
            action = "set"
        else:
            lines.append(f"_t = _writable({ref}._grad)")
            lines.append(f"_t += {gv}")
            action = "add"
            self.grad_var.pop(id(node), None)  # (the sum may live in a copy: read it live)
            self.grad_copy.pop(ref, None)
        if after is not None:
            self.ref_of[id(after)] = f"{ref}._grad"
        del self.gvar[id(node)]  # a later backward starts this leaf's sum afresh
        if not ref.startswith("a"):
            self.plan.leaf_tensors.append(node)
        self._grad_check(node, ref, held)
        self._sig(f"gradient of {ref}", "leaf", ref, gv)
        self._step(event, "grad", f".grad {action}", f"{ref} {_shape(node._data.shape)}", lines)
        del shape

    def _grad_check(self, node, ref, held):
        """What the tensor's .grad must be when a replay starts, for this capture's leaf
        action to be eager's: the first action on each tensor decides."""
        if ref in self.grad_decided:  # (a later action on it, e.g. a second backward's add)
            return
        self.grad_decided.add(ref)
        if held is not None:
            if self.snap is not None and ref.startswith("a"):
                self.problems.append("gradients accumulate into an argument across calls")
            self.plan.grad_checks.append((ref, "is", held))
            return
        entry = None if self.snap is None else self.snap.grads_in.get(id(node))
        if entry is not None and entry[1] is not None:
            self.cleared.append(ref)  # (a native replay clears it first, as zero_grad did)
            return  # fn itself set the .grad to None before backward (zero_grad): any will do
        self.plan.grad_checks.append((ref, "none", None))

    def _grads_at_end(self):
        """Gradients fn set to None without backward giving them anything (zero_grad after the
        step): the replay clears them too, at the end."""
        if self.snap is None:
            return
        lines = []
        given = {id(e[1]): e for e in self.rec.events if e[0] == "leaf"}
        for key, (t, grad, _) in self.snap.grads_in.items():
            e = given.get(key)
            before = grad if e is None else e[4]
            if before is not None and t._grad is None:
                lines.append(f"{self._tensor_ref(t)}._grad = None")
        if lines:  # (not in the signature: only a second capture knows the entry state)
            self._step(None, "grad", ".grad = None", f"{len(lines)} tensors", lines)

    def _write(self, event, tensor, before, after, src):
        lines = []
        s = self.value(src, lines=lines)
        known = self.var_of.get(id(before))
        ref = self.ref_of.get(id(tensor))
        if ref is None and known is not None and after is before:
            lines.append(f"_copyto({known}, {s}, casting='unsafe')")
            self._sig("write", "write", known, s)
        elif ref is None and known is not None:
            self.problems.append("an in-place write copied an array a graph had saved")
            return
        else:
            if ref is None:
                self._live(tensor, before)
                ref = self.ref_of[id(tensor)]
            lines.append(f"_t = _writable({ref})")
            lines.append(f"_copyto(_t, {s}, casting='unsafe')")
            if after is not before or id(after) not in self.var_of:
                var = self._new("w")
                lines.append(f"{var} = _t")
                self._name(after, var)
            self._sig("write", "write", ref, s)
        self._step(event, "write", "in-place write", ((src.shape,), (after.shape,)), lines)

    def _opt(self, event, opt, args, kwargs, gathered):
        name = self._const(opt, "OPT")
        self.plan.opts.append(opt)
        self._sig(f"{type(opt).__name__}.step()", "opt", opt)
        n = sum(len(g["params"]) for g in opt.param_groups)
        given = {id(t) for t in self.plan.leaf_tensors}
        if all(id(p) in given for tensors in gathered for p in tensors):
            lines = update_lines(self, opt, name, gathered)  # the backend's update, directly
        else:
            lines = [f"{name}.step()"]
        self._step(event, "step", f"{type(opt).__name__}.step()", f"{n} parameters", lines)

    def _native(self, result):
        """Forward and backward as one Program call (compiler/native.py), when every one of
        their steps has instructions: their lines give way to it."""
        nat, plan = self.nat, self.plan
        steps = [i for i, n in enumerate(self.step_native) if n is not None]
        if nat.ok and not steps:
            nat.fail("no forward or backward steps")
        if nat.ok and self.problems:
            nat.fail("the plan has problems")
        defined = set(nat.defined)
        prefix = [line for i in steps for line in self.step_native[i]]
        if nat.ok and defined & _names(prefix):
            nat.fail("an array read before the kernels is made by them")
        if not nat.ok:
            plan.native_why = nat.why
            return
        others = [line for i, lines in enumerate(self.step_lines) if self.step_native[i] is None
                  for line in lines] + self.body + [result]
        try:
            program, bound, outputs = nat.build(_names(others))
        except (ValueError, TypeError, MemoryError) as e:
            plan.native_why = f"the program could not be built ({e})"
            return
        self.ns["_PRG"] = program
        call = f"_PRG.run(({', '.join(bound)}{',' if len(bound) == 1 else ''}))"
        run = [f"{', '.join(outputs)}, = {call}" if outputs else call]
        # the .grad fn's zero_grad dropped, dropped first (as eager): their arrays, held by
        # nothing else, are the program's outputs again (csrc/program.pyx)
        prefix = prefix + [f"{ref}._grad = None" for ref in self.cleared]
        labels = nat.labels()
        for j, with_previous in enumerate(program.paired):  # run at once with the one above
            if with_previous:  # (whose time is the pair's)
                labels[j] = "‖ " + labels[j]
        for n, i in enumerate(steps):
            self.step_lines[i] = prefix + run if n == 0 else []
            self.plan.steps[i].name += " [native]"
            first = self.step_calls[i - 1] if i else 0
            plan.native_index[i] = list(range(first, self.step_calls[i]))
            plan.steps[i].native = [[labels[j], None] for j in plan.native_index[i]]
        plan.native = program
        self.native_call = call
        self.ns["_PT"] = np.zeros(len(program))
        # A gradient eager copied into .grad (backward keeps a copy when something else may
        # hold its array: the count of references decides, and it differs between Python
        # versions) is the program's own output here, never written while held: handed out.
        for i, lines in enumerate(self.step_lines):
            for j, line in enumerate(lines if self.step_native[i] is None else ()):
                m = _COPIED.fullmatch(line)
                if m is None or m.group(1) not in self.grad_copy:
                    continue
                node, gv, array = self.grad_copy[m.group(1)]
                if gv == m.group(2) and gv in outputs and nat.meta[gv][1] == node._data.dtype:
                    lines[j] = f"{m.group(1)}._grad = _gradt({gv})"
                    self.grad_var[id(node)] = (gv, array)

    def _native_updates(self):
        """Optimizer updates as a Program of their own (compiler/updates.py), where each
        parameter is an array read live and each gradient one backward set."""
        writes = [i for i, st in enumerate(self.plan.steps) if st.kind == "write"]
        for index, native in self.updates:
            if any(i < index for i in writes):  # a write may have replaced an array read
                continue
            lines = native(self)
            if lines is not None:
                self.step_lines[index] = lines
                self.plan.steps[index].name += " [native]"

    # ------------------------------------------------------------------ the result

    def _output(self, value):
        if isinstance(value, Tensor):
            ref = self.ref_of.get(id(value))
            if ref is not None and not ref.endswith("._grad") and ref.startswith(("a", "T")):
                self._sig("result", "result", ref)
                return ref
            var = self.value(value._data, value)
            self._sig("result", "result", var)
            return f"_wrap({var})"
        if isinstance(value, tuple):
            items = [self._output(v) for v in value]
            return f"({', '.join(items)}{',' if len(items) == 1 else ''})"
        if isinstance(value, list):
            return f"[{', '.join(self._output(v) for v in value)}]"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{self._const(k)}: {self._output(v)}"
                                   for k, v in value.items()) + "}"
        if isinstance(value, np.ndarray):
            return self.value(value)
        self._sig("result", "result", ("obj", value))
        return self._const(value)

    def _argument_guards(self):
        """Lines checking the modes and the arguments against this capture's (the guard key of
        compiler/__init__.py, as code: a replay starts with them)."""
        local = _state.local
        self.ns.update(_L=local, _B=B, _IV=B._impl_var, _TV=B._threads_var, _LAY=module._layout,
                       _gen=random.generator, _Tensor=Tensor)
        ns = self.ns
        ns["MG"], ns["MI"], ns["MD"] = local.grad_enabled, local.inference, local.default_dtype
        ns["MB"] = B._impl_var.get(B._impl)
        ns["MT"] = B._threads_var.get(B._kernel_threads)
        ns["ML"], ns["MR"] = module._layout[0], random.generator()
        lines = ["if _L.grad_enabled is not MG or _L.inference is not MI or "
                 "_L.default_dtype is not MD: return _MISS",
                 "if _IV.get(_B._impl) is not MB or _TV.get(_B._kernel_threads) != MT or "
                 "_LAY[0] != ML or _gen() is not MR: return _MISS"]
        arrays = []
        for k, a in enumerate(self.leaves):
            if isinstance(a, Tensor):
                d = a._data
                c = self._const((type(a), d.shape, d.dtype, d.strides, a._rg), "S")
                lines.append(f"if a{k}.__class__ is not {c}[0] or a{k}._rg is not {c}[4]: "
                             "return _MISS")
                lines.append(f"_a = a{k}._data")
                lines.append(f"if _a.shape != {c}[1] or _a.dtype != {c}[2] or "
                             f"_a.strides != {c}[3]: return _MISS")
                arrays.append(f"a{k}")
            elif isinstance(a, np.ndarray):
                c = self._const((a.shape, a.dtype, a.strides), "S")
                lines.append(f"if a{k}.__class__ is not _nd or a{k}.shape != {c}[0] or "
                             f"a{k}.dtype != {c}[1] or a{k}.strides != {c}[2]: return _MISS")
                arrays.append(f"a{k}")
            elif a is None or isinstance(a, (bool, int, float, str, bytes)):
                c = self._const(a, "S")
                lines.append(f"if a{k}.__class__ is not {c}.__class__ or a{k} != {c}: "
                             "return _MISS")
            else:
                lines.append(f"if a{k} is not {self._const(a, 'S')}: return _MISS")
        for i, x in enumerate(arrays):  # which arguments are one object, as when captured
            for y in arrays[i + 1:]:
                alias = self.leaves[int(x[1:])] is self.leaves[int(y[1:])]
                lines.append(f"if {x} is {'not ' if alias else ''}{y}: return _MISS")
        return lines

    def _live_lines(self):
        """The live tensors' arrays read in one go (C loops over tuples: a line per tensor made
        the plan's source, and Python's compile() of it, much longer); a replay goes on when
        each is the array (and requires_grad) seen last, or one of the same layout."""
        names = self.live_names
        if not names:
            return []
        live = self.plan.live
        self.ns.update(_LT=tuple(t for t, _, _ in live), _LA=[a for _, a, _ in live],
                       _LR=tuple(rg for _, _, rg in live), _GD=_get_data, _GR=_get_rg,
                       _isnot=operator.is_not, _any=any, _map=map, _tuple=tuple)
        return ["_lv = _tuple(_map(_GD, _LT))",
                "if _any(_map(_isnot, _lv, _LA)) or _any(_map(_isnot, _map(_GR, _LT), _LR)):",
                "    if not _relive(_lv): return _MISS",
                f"{', '.join(names)}, = _lv"]

    def _generate(self, result):
        plan = self.plan
        params = ", ".join(f"a{k}" for k in range(len(self.leaves)))
        checks = []
        given = {id(t) for t in plan.leaf_tensors}
        for opt in plan.opts:  # an optimizer's other parameters: no gradient for step() to use
            for group in opt.param_groups:
                for p in group["params"]:
                    if id(p) in given:
                        continue
                    given.add(id(p))
                    if self.snap is not None and p._grad is not None:
                        self.problems.append("a parameter of the optimizer holds a gradient "
                                             "the step does not compute")
                    checks.append(f"if {self._const(p, 'T')}._grad is not None: return _MISS")
        for ref, kind, obj in plan.grad_checks:
            if kind == "none":
                checks.append(f"if {ref}._grad is not None: return _MISS")
            else:
                checks.append(f"if {ref}._grad is not {self._const(obj, 'H')}: return _MISS")
        head = self._argument_guards() + self.head + self._live_lines() + checks
        if self.resets:  # each op's state afresh (its forward writes to it, backward reads it)
            self.ns.update(_RO=tuple(op for op, _ in self.resets), _consume=_consume,
                           _RP=tuple(params for _, params in self.resets), _setattr=setattr,
                           _repeat=itertools.repeat, _dcopy=dict.copy, _map=map)
            head.append("_consume(_map(_setattr, _RO, _repeat('__dict__'), _map(_dcopy, _RP)))")
        self._native(result)
        self._native_updates()

        def function(name, timed):
            out = [f"def {name}({'_T, ' if timed else ''}{params}):"]
            out += [f"    {line}" for line in head]
            if timed:
                out.append("    _T[0] = _clock()")
            for i, lines in enumerate(self.step_lines):
                if timed and self.native_call is not None:  # each instruction timed
                    lines = [line.replace(self.native_call,
                                          self.native_call[:-1] + ", (), _PT)")
                             for line in lines]
                out += [f"    {line}" for line in lines]
                if timed:
                    out.append(f"    _T[{i + 1}] = _clock()")
            out += [f"    {line}" for line in self.body]  # what the result reads
            out.append(f"    return {result}")
            return "\n".join(out)

        plan.source = function("replay", False)
        plan.timed_source = function("replay_timed", True)
        self.ns["_clock"] = time.perf_counter
        self.ns["_relive"] = _relive(plan)  # (nothing of the builder stays: its events hold
        # every array of the captured step)



def _owners(events, known_owners=None):
    """The tensor owning each float array an op received as a parameter that no recorded step
    made and no op input holds (a module buffer's array, passed by nn.functional: BatchNorm's
    running statistics): found among the tensors referring to it, in one scan of the
    collector's objects (the first capture's answers are reused)."""
    known = set()
    candidates = {}
    for e in events:
        if e[0] != "op":
            continue
        known.update(id(a) for a in e[4])
        known.add(id(e[6]))
        for value in e[2].values():
            for a in (value if isinstance(value, (tuple, list)) else (value,)):
                if isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.base is None:
                    candidates[id(a)] = a
    owners = {}
    for key in list(candidates):
        t = (known_owners or {}).get(key)
        if t is not None and t._data is candidates[key]:
            owners[key] = [t]
            del candidates[key]
    arrays = [a for key, a in candidates.items() if key not in known]
    if not arrays:
        return {key: ts[0] for key, ts in owners.items()}
    for r in gc.get_referrers(*arrays):
        if isinstance(r, Tensor) and id(r._data) in candidates and id(r._data) not in known:
            owners.setdefault(id(r._data), []).append(r)
    return {key: ts[0] for key, ts in owners.items() if len(ts) == 1}


def _releasing(op, params):
    """op.backward, then op's state back to its params (what it saved let go): one call in the
    replay's source instead of two lines (compile() costs ~7 us a line)."""
    backward = op.backward

    def backward_and_release(g):
        out = backward(g)
        op.__dict__ = params
        return out

    return backward_and_release


def _relive(plan):
    def relive(arrays):
        """Some live tensor's array is another object than at capture (its .data was set, or
        it was copied on write), or its requires_grad changed: fine if every such array has
        the shape, dtype and layout seen, and requires_grad is as it was."""
        seen = plan.ns["_LA"]
        for i, array in enumerate(arrays):
            t, old, rg = plan.live[i]
            if t._rg is not rg:
                return False
            if array is not old and (array.shape != old.shape or array.dtype != old.dtype
                                     or array.strides != old.strides):
                return False
        for i, array in enumerate(arrays):
            t, old, rg = plan.live[i]
            plan.live[i] = (t, array, rg)
            seen[i] = array
        return True
    return relive


_NAME = re.compile(r"\b[A-Za-z_]\w*\b")
_COPIED = re.compile(r"(\S+)\._grad = _gradt\(_np\.array\((\w+), dtype=\w+\)\)")


def _names(lines):
    """The identifiers in some lines of code."""
    return {m for line in lines for m in _NAME.findall(line)}


def _extent(a):
    """Bytes from a's first element to just past its last (a view's footprint)."""
    if a.size == 0:
        return 0
    return sum((n - 1) * s for n, s in zip(a.shape, a.strides) if s > 0) + a.itemsize


def _strip(expr):
    """An expression without its constant names (they differ between two captures)."""
    import re

    return re.sub(r"\bK\d+\b", "K", expr)


# ---------------------------------------------------------------------- two captures

def compare(a, b):
    """None when plans a and b (two captures of one step under the same guards) do the same
    thing, else the first difference, in words. The variables a plan names (g12, T3, ...) are
    compared up to a consistent renaming: a capture may number them differently (a gradient
    backward copied in one call and adopted in the other, as reference counts decide, named
    one more array) and still do the same."""
    if len(a.signature) != len(b.signature):
        for i, (x, y) in enumerate(zip(a.descriptions, b.descriptions)):
            if x != y:
                return f"step {i}: {x} the first time, {y} the second"
        return (f"{len(a.signature)} recorded steps the first time, {len(b.signature)} the "
                "second")
    names = ({}, {})
    for i, (x, y) in enumerate(zip(a.signature, b.signature)):
        if not _same(x, y, a.ns, b.ns, names):
            return f"{b.descriptions[i]} (recorded step {i}) differs between the two calls"
    return None


_VARIABLE = re.compile(r"([a-zA-Z]+)(\d+)")


def _same_name(x, y, names):
    """Whether variable names x (of the first plan) and y (of the second) correspond: the
    first pairing of each decides (a one-to-one renaming), or None when they are no variable
    names."""
    mx, my = _VARIABLE.fullmatch(x), _VARIABLE.fullmatch(y)
    if mx is None or my is None or mx.group(1) != my.group(1):
        return None
    forward, backward = names
    if x in forward or y in backward:
        return forward.get(x) == y and backward.get(y) == x
    forward[x], backward[y] = y, x
    return True


def _same(x, y, ns_a, ns_b, names=None):
    if x is y:
        return True
    if type(x) is str and type(y) is str and x == y:  # (most of a signature: names, keys)
        return True
    if isinstance(x, tuple) and isinstance(y, tuple):
        if len(x) != len(y):
            return False
        if len(x) == 2 and x[0] == "pin" and y[0] == "pin" and isinstance(x[1], str):
            return _same(ns_a[x[1]], ns_b[y[1]], ns_a, ns_b, names)
        for u, v in zip(x, y):  # (a loop: all() over a generator costs a frame per item)
            if u is not v and not _same(u, v, ns_a, ns_b, names):
                return False
        return True
    if names is not None and isinstance(x, str) and isinstance(y, str) and x != y:
        same = _same_name(x, y, names)
        if same is not None:
            return same
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return (isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and x.shape == y.shape
                and x.dtype == y.dtype and x.tobytes() == y.tobytes())
    if isinstance(x, Tensor) or isinstance(y, Tensor):  # a tensor made inside fn: its values
        return isinstance(x, Tensor) and isinstance(y, Tensor) and _same(x._data, y._data,
                                                                         ns_a, ns_b, names)
    if isinstance(x, float) and isinstance(y, float) and x != x and y != y:
        return True
    if type(x) is not type(y):
        return False
    try:
        return bool(x == y)
    except (ValueError, TypeError):
        return False
