"""cygrad.compile: capture a training step once, replay it without the per-op Python.

    step = cygrad.compile(train_step)        # or @cygrad.compile above its def
    for x, y in batches:
        loss = step(x, y)                    # the same bits as train_step(x, y)
    print(step.plan)                         # what was captured, step by step, timed

How: the first call runs `fn` eagerly under a recorder (a `tensor.Watcher`, plus an optimizer
step hook) that sees every op's forward, every step of backward, every leaf gradient, every
in-place write and every `optimizer.step()`. That becomes a plan: one generated Python function
calling each op's own forward and backward on the arrays directly, then `optimizer.step()`
(compiler/plan.py). The second call with the same guards captures again and compares the two
records step by step, including every array an op was handed as a parameter: what differs
between two calls (a value computed in Python from the data, a branch taken differently) shows
up here, and fn then runs eagerly from then on, with a warning. From the third call on, the
plan replays. Replays run the same ops, kernels and optimizer code in the same order as eager,
with dropout masks drawn from the same generator: parameters after N replayed steps are
bitwise those of N eager steps. When every op of the forward and backward has kernel
instructions (dense layers, mse_loss, cross_entropy: compiler/native.py), those steps replay
as one call into C (csrc/program.pyx: the kernels' own C functions on arrays made once; an
array handed out, a .grad or the loss, is reused only when nothing holds it any more);
`plan.native` is that program, or None with `plan.native_why` naming what kept it in Python.
Printed, a native step lists the program's instructions it runs, each timed in C (the timed
replays pass the program an array for the durations). At two threads or more a dense layer's
two gradient products run at once, a thread each (compiler/native.py `_pairs`; marked `‖`).

What is guarded (checked at every call; a change captures again, twice):
- the arguments' structure, and per tensor (or numpy array) argument its shape, dtype, strides
  and requires_grad; other arguments by value (numbers, strings) or identity (objects); which
  arguments are the same object;
- grad mode, inference mode, the default dtype, the backend, the thread count and the calling
  thread's random generator;
- every module's layout (`nn.Module` counts attribute changes: train()/eval(), a parameter or
  submodule replaced, a hook added) — any module's, so a change anywhere captures again;
- every tensor the step read that was not an argument (parameters, buffers, constants): the same
  requires_grad, and an array of the same shape, dtype and strides (its values are read live);
- whether each parameter's .grad is None where backward's first write into it depends on it.
Optimizer options (lr, betas, ...) are read live by `optimizer.step()`, so lr schedulers
stepping outside the compiled function keep working.

What makes fn run eagerly instead (with a CompileWarning naming the reason; `fullgraph=True`
raises CompileError instead, after the call that found it has completed eagerly):
- Python reading a tensor's values while capturing: `.item()`, `bool()`, `float()`, `int()`,
  `.tolist()`, `.numpy()`, `np.asarray(t)`, printing — a branch on data may follow;
- two captures that differ (see above); an in-place op on a tensor in the autograd graph; a
  tensor hook or retain_grad(); a module backward hook (full, or the deprecated one: a grad_fn
  hook, as grad_fn.register_hook); `optimizer.step(closure)`; a graph made
  before the call; options changed inside fn (a scheduler's step); state changed in place
  outside any op (numpy writes through `.data`), when the second capture can see it (it
  compares arrays over 64 KiB by a CRC-32 of their bytes: a change escapes with
  probability 2^-32);
- while any Watcher is active in the thread (a SymmetryMonitor until its detach(), whatever
  model it watches; cygrad.trace; the split autopsy's recorder) or anomaly detection is on,
  calls run eagerly, so the watcher sees every op: a monitored compiled step records exactly
  what an eager one records.

What is not guarded (documented limits): Python side effects of fn (appending to a list,
counters, printing) happen at the two capturing calls only; values fn computes from data in
Python without reading a tensor (a numpy array argument turned into a tensor by its own code)
are caught only if the first two calls see different data; an integer array an op receives as
a parameter (class targets, indices) is followed when it equals a copy of an argument, else it
is a constant — if the first two calls pass the same targets, later different ones would be
missed. A branch nn.functional takes on the data itself is the captured one: cross_entropy's
fused kernel assumes targets in range and no ignore_index, so a replay given such targets
raises (the kernel checks them) where eager would take its other path; `step.__wrapped__(...)`
runs such a call eagerly. An exception from a replay may leave the .grad of parameters set and
the generator advanced (optimizer updates come after forward and backward). The
results a replay returns are new leaf tensors without a graph.
"""

import gc
import threading
import time
import warnings

import numpy as np

from .. import _state
from .. import backend as _backend
from .. import random as _random
from ..nn import module as _module
from ..nn.module import Module as _Module
from ..tensor import Tensor
from .capture import Recorder
from .plan import _MISS, Builder, clear_code_cache, compare

__all__ = ["compile", "CompiledStep", "CompileError", "CompileWarning", "clear_code_cache"]


class CompileError(RuntimeError):
    """A compiled step cannot be replayed (fullgraph=True)."""


class CompileWarning(UserWarning):
    """A compiled step runs eagerly: the message says why."""


def compile(model=None, *, fullgraph=False, dynamic=None, backend=None, mode=None,
            options=None, name=None, disable=False, recompile_limit=None,
            isolate_recompiles=False, shapes_spec=None, profile=6):
    """Capture `model` (a training step: forward, loss, backward, optimizer step; any
    callable) once and replay it from the third call on (torch.compile's signature; see the
    module docstring for what is guarded). Usable as a decorator, with or without arguments.

    fullgraph: raise CompileError where fn cannot be replayed, instead of running it eagerly
    with a warning. profile: time each step of `profile` replays, the 2nd, 4th, 8th... after
    capture (`print(step.plan)` shows the best of them; 0: none).
    disable: return fn unchanged. dynamic, backend, mode, options, name, recompile_limit,
    isolate_recompiles, shapes_spec: accepted for torch's signature and ignored (a new shape
    always captures again)."""
    if backend not in (None, "inductor", "eager", "cygrad"):
        raise ValueError(f"cygrad.compile has one backend (its replay), not {backend!r}")

    def wrap(f):
        if disable:
            return f
        if isinstance(f, _Module):
            return OptimizedModule(f)
        return CompiledStep(f, fullgraph=fullgraph, profile=profile)

    return wrap if model is None else wrap(model)


def _in_a_graph(out, depth=0):
    """Whether fn's result holds a tensor of a graph backward has not run through yet (a
    step's loss, returned after its backward, has run: its op is released)."""
    if isinstance(out, Tensor):
        return out._op is not None and not out._op.passed
    if depth < 4 and isinstance(out, (tuple, list)):
        return any(_in_a_graph(v, depth + 1) for v in out)
    if depth < 4 and isinstance(out, dict):
        return any(_in_a_graph(v, depth + 1) for v in out.values())
    return False


class OptimizedModule(_Module):
    """torch.compile(module)'s result: a module holding the original as `_orig_mod` (its
    state dict's keys under "_orig_mod.", as torch's), called as it, its other attributes
    (methods, config) read from it. cygrad.compile captures whole training steps (forward,
    loss, backward, optimizer step): a module's forward alone runs eagerly here, so its
    outputs take part in autograd as any module's (a replayed forward would hand back tensors
    without the graph the caller's backward needs)."""

    def __init__(self, mod):
        super().__init__()
        self._orig_mod = mod

    def forward(self, *args, **kwargs):
        return self._orig_mod(*args, **kwargs)

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            modules = self.__dict__.get("_modules")
            if modules is None or "_orig_mod" not in modules:
                raise
            return getattr(modules["_orig_mod"], name)


class _Entry:
    """The plans of one guard key: the first capture waiting for its check, the verified
    ones, or the reason it runs eagerly."""

    __slots__ = ("first", "plans", "eager", "retried")

    def __init__(self):
        self.first, self.plans, self.eager, self.retried = None, [], None, False


class CompiledStep:
    """A compiled training step (cygrad.compile): call it as fn; `plan` shows the last plan."""

    def __init__(self, fn, fullgraph=False, profile=6):
        self.fn = fn
        self.fullgraph = bool(fullgraph)
        self.profile = int(profile)
        self._entries = {}
        self._lock = threading.RLock()
        self._last = None
        self._recent = None  # the plan that replayed last: tried first (it checks its guards)
        self.counts = {"captures": 0, "replays": 0, "eager": 0}
        self.__wrapped__ = fn
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__name__ = getattr(fn, "__name__", "step")

    def __repr__(self):
        return f"<cygrad.compile of {self.__name__}: {self.counts}>"

    @property
    def plan(self):
        """The plan of the last call (a Plan: print it), or None before the first capture."""
        return self._last

    def reset(self):
        """Forget every plan: the next call captures again."""
        with self._lock:
            self._entries.clear()
            self._last = self._recent = None

    # ------------------------------------------------------------------ calls

    def __call__(self, *args, **kwargs):
        local = _state.local
        if (local.watch is not None and _state.live_watchers() is not None) or local.anomaly:
            # watchers see every op: run eagerly
            self.counts["eager"] += 1
            return self.fn(*args, **kwargs)
        leaves = args if not kwargs else args + tuple(kwargs.values())
        with self._lock:
            plan = self._recent  # the plan that replayed last (its guards are its first lines)
            if plan is not None and plan.nargs == len(args) and \
                    plan.kwnames == (tuple(kwargs) if kwargs else ()):
                if plan.timed:
                    out = self._replay(plan, leaves)
                else:
                    try:
                        out = plan.replay(*leaves)
                    except Exception as exc:
                        self._note(exc)
                        raise
                    if out is not _MISS:
                        plan.replays += 1
                if out is not _MISS:
                    self.counts["replays"] += 1
                    return out
        key = _key(leaves, args, kwargs)
        if key is None:  # arguments compile does not follow (nested containers...)
            leaves = None
        with self._lock:
            entry = self._entries.get(key) if leaves is not None else None
            if entry is not None:
                if entry.eager is not None:
                    self.counts["eager"] += 1
                    return self.fn(*args, **kwargs)
                for plan in entry.plans:
                    out = self._replay(plan, leaves)
                    if out is not _MISS:
                        self.counts["replays"] += 1
                        self._last = self._recent = plan
                        return out
            if leaves is None:
                self._give_up(None, "arguments other than tensors, numpy arrays, numbers, "
                                    "strings and objects (a nested container?)")
                self.counts["eager"] += 1
                return self.fn(*args, **kwargs)
            if entry is None:
                entry = self._entries[key] = _Entry()
            return self._capture(entry, leaves, args, kwargs)

    def _replay(self, plan, leaves):
        try:
            return plan.run(leaves)
        except Exception as exc:
            self._note(exc)
            raise

    def _note(self, exc):
        """Say where an exception from a replay comes from (Python >= 3.11)."""
        if hasattr(exc, "add_note"):
            exc.add_note(f"(raised by a replay of cygrad.compile's plan of {self.__name__}: "
                         "the plan may not hold for these inputs, e.g. class targets out of "
                         "range or equal to ignore_index where the capture saw none; "
                         f"{self.__name__}.__wrapped__(...) runs the step eagerly)")

    def _capture(self, entry, leaves, args, kwargs):
        start = time.perf_counter()
        collecting = gc.isenabled()
        if collecting:  # a capture allocates ~10^4 objects, none of them garbage: the cyclic
            gc.disable()  # collector's passes over them cost 3-5 ms of a GPT step's capture
        try:
            out, plan, reason = self._record(entry, leaves, args, kwargs)
            if plan is not None:  # the time of the call, the plan's code compiled
                plan.capture_seconds += time.perf_counter() - start
        finally:
            if collecting:
                gc.enable()
        if reason is not None:
            self._give_up(plan, reason)
        return out

    def _record(self, entry, leaves, args, kwargs):
        """Run fn under a Recorder; (its result, the plan built, why it runs eagerly or None)."""
        first = entry.first
        recorder = Recorder(checks=first, kernels=first is not None)
        with _state.watching(recorder), recorder:
            out = self.fn(*args, **kwargs)
        self.counts["captures"] += 1
        reason = "; ".join(recorder.problems) or None
        if reason is None and _in_a_graph(out):
            reason = ("fn returns a tensor of an autograd graph (a forward whose backward runs "
                      "outside fn): a replay would return it without its graph; compile the "
                      "whole step, backward included")
        plan = None
        if reason is None:
            builder = Builder(recorder, leaves, recorder._snap)
            plan = builder.build(out)
            reason = "; ".join(plan.problems) or None
        if reason is None and first is not None:
            reason = compare(first, plan)
            if reason is not None and not entry.retried:  # a first call may differ (state
                entry.retried = True  # made lazily, .grad still None): check once more
                reason, first = None, None
            elif reason is not None:
                reason = ("two calls recorded different steps: " + reason + " (fn's Python "
                          "depends on something the guards do not see: the data, a counter)")
        if plan is not None:
            plan.nargs, plan.kwnames = len(args), tuple(kwargs)
            plan.guards = _describe_key(leaves)
            self._last = plan
        if reason is not None:
            entry.first, entry.eager = None, reason
            if plan is not None:
                plan.status = "eager: " + reason
            return out, plan, reason
        if first is None:
            entry.first = plan
            plan.status = "captured once (the next call checks it)"
        else:
            entry.first, entry.retried = None, False
            plan.status = "verified"
            plan.ready().timed = self.profile
            plan.capture_seconds = first.capture_seconds  # (this call's time is added on)
            entry.plans.insert(0, plan)
            del entry.plans[8:]
        return out, plan, None

    def _give_up(self, plan, reason):
        text = f"cygrad.compile: {self.__name__} runs eagerly: {reason}"
        if self.fullgraph:
            raise CompileError(text)
        warnings.warn(text, CompileWarning, stacklevel=4)


# ---------------------------------------------------------------------- guards

def _key(leaves, args, kwargs):
    """Everything a plan depends on that is cheap to read at each call, as one hashable value
    (None: arguments compile does not follow)."""
    local = _state.local
    parts = [local.grad_enabled, local.inference, local.default_dtype,
             _backend._impl_var.get(_backend._impl),
             _backend._threads_var.get(_backend._kernel_threads),
             _random.generator(), len(args), tuple(kwargs)]
    # (the module layout is a guard of each plan, read after its capture ran: a step that
    # calls model.train() changes it at every call, the same way)
    for a in leaves:
        if isinstance(a, Tensor):
            d = a._data
            parts.append((d.shape, d.dtype, d.strides, a._rg))
        elif isinstance(a, np.ndarray):
            parts.append(("array", a.shape, a.dtype, a.strides))
        elif a is None or isinstance(a, (bool, int, float, str, bytes)):
            parts.append((type(a), a))
        elif isinstance(a, (tuple, list, dict, set)):
            return None
        else:
            parts.append(("object", id(a)))
    if len(leaves) > 1 and len({id(a) for a in leaves}) != len(leaves):
        parts.append(tuple(next(i for i, b in enumerate(leaves) if b is a) for a in leaves))
    return tuple(parts)


def _describe_key(leaves):
    items = []
    for a in leaves:
        if isinstance(a, Tensor):
            items.append(f"Tensor{tuple(a._data.shape)} {a._data.dtype}")
        elif isinstance(a, np.ndarray):
            items.append(f"ndarray{a.shape} {a.dtype}")
        else:
            items.append(repr(a) if len(repr(a)) < 30 else type(a).__name__)
    local = _state.local
    return (f"args ({', '.join(items)}); grad {'on' if local.grad_enabled else 'off'}, "
            f"backend {_backend.current()}, {_backend.get_num_threads()} threads, default "
            f"dtype {local.default_dtype}, module layout #{_module._layout[0]}; each live "
            "tensor's array, requires_grad and .grad state")
