"""Capture: run a training step eagerly once, watching everything a replay must repeat.

The recorder is a `tensor.Watcher` (the engine calls it at every op's forward, at every step of
backward, at in-place writes and at Python reads of a tensor's values) plus a global optimizer
step hook. It keeps the events in order:

    ("op", op, params, inputs, arrays, out, out_array)   an op ran forward (params: its attributes
                                                           before forward; arrays: its inputs')
    ("before", node, seed)                                 backward is about to run node's op
                                                           (seed: (shape, dtype, all ones) of
                                                           the gradient of a root, else None)
    ("backward", node, g, input_grads, parents)            ...and ran it (g and input_grads as
                                                           (shape, dtype) or None)
    [ "leaf", node, id(g), held, after, shape ]            g went into a leaf's .grad (held: the
                                                           .grad before, after: the .grad made)

No gradient array is kept: backward adopts an array as a leaf's .grad without a copy only when
nothing else holds it, and the recorder must not change what eager does.
    ("write", tensor, before, after, src)                  an in-place write outside autograd
    ("opt", optimizer, args, kwargs, gathered)             optimizer.step(*args, **kwargs) ran
                                                           (gathered: per group, the parameters
                                                           that had a gradient)

and the problems: what makes a replay impossible (a Python read of a value, an in-place op in a
graph, a tensor hook...). A second capture (`checks=` the first one's plan) also snapshots the
state the first one found (parameters, their gradients, optimizer options and state) and checks
that nothing changed it behind the recorder's back.
"""

import sys
import threading
import zlib

import numpy as np

from .. import backend as _backend
from ..optim import optimizer as _optimizer
from ..tensor import Watcher, _parents_of

_BACKEND_GLOBALS = vars(_backend)
try:  # the C profile function that reports the backend's calls (else sys.setprofile's)
    from .._C.program import watch_calls as _watch_calls
except ImportError:  # pragma: no cover - kernels not built
    _watch_calls = None
_KERNELS = frozenset(_backend.__all__) - {"use", "current", "using", "available",
                                          "set_num_threads", "get_num_threads", "has_kernel"}
_OPTIONS_SKIP = ("params", "param_names")


def _options(optimizer):
    """A comparable copy of an optimizer's options (every group's, without the params)."""
    return [{k: v for k, v in group.items() if k not in _OPTIONS_SKIP}
            for group in optimizer.param_groups]


def _describe(array):
    if isinstance(array, np.ndarray):
        return tuple(array.shape)
    if isinstance(array, (list, tuple)) and array and all(isinstance(a, np.ndarray)
                                                         for a in array):
        return f"[{len(array)} arrays]"
    return None


class Recorder(Watcher):
    """Records one eager run of a step (see the module docstring). `checks`: the plan of a
    first capture, whose state this one verifies; `kernels`: also list the backend kernels
    each event ran (through sys.setprofile, when no profiler is active)."""

    def __init__(self, checks=None, kernels=False):
        self.events = []
        self.problems = []
        self.kernels = {}  # event index -> [(kernel name, argument shapes)]
        self._thread = threading.get_ident()
        self._pending = {}
        self._leaf = None
        self._sent = set()  # ids of the tensors backward sent a gradient to
        self._suspended = 0  # inside optimizer.step(): what runs there runs again at replay
        self._checks = checks
        self._snap = None
        self._profile = kernels
        # the kernel listing of an op, or of its backward, whose call looks the same as one
        # listed before (op type, its arrays' shapes, dtypes and strides, its simple
        # parameters: a model's repeated heads and blocks) is copied, not profiled again
        self._listed = {}  # key -> the kernels listed
        self._key_of = {}  # id(op) -> the key of its forward call (None: not comparable)
        self._open = None  # ("copy" | "fill", key) while an op or backward step runs
        self._handles = []
        self.stepped = {}  # optimizer -> options after its step (checked again at the end)

    # ------------------------------------------------------------------ the block

    def __enter__(self):
        if self._checks is not None:
            self._snap = _Snapshot(self._checks)
        self._handles = [_optimizer.register_optimizer_step_pre_hook(self._pre_step),
                         _optimizer.register_optimizer_step_post_hook(self._post_step)]
        if not (self._profile and sys.getprofile() is None):
            self._profile = False
        return self

    def __exit__(self, *exc):
        if self._profile:
            sys.setprofile(None)
        for handle in self._handles:
            handle.remove()
        self._flush()
        if exc[0] is None:
            if self._suspended:
                self.problem("optimizer.step() did not return")
            for opt, options in self.stepped.items():
                if _options(opt) != options:
                    self.problem(f"fn changes {type(opt).__name__}'s options after its step (an "
                                 "lr scheduler stepping inside the compiled step? call "
                                 "scheduler.step() outside it: replays read the options live)")
            if self._snap is not None:
                self._snap.check_end(self)
        return False

    def problem(self, text):
        if text not in self.problems:
            self.problems.append(text)

    def _mine(self):
        return threading.get_ident() == self._thread

    def _flush(self):
        """The leaf event waiting to see which .grad backward made."""
        leaf, self._leaf = self._leaf, None
        if leaf is not None:
            grad = leaf[4] = leaf[1]._grad
            if self._snap is not None:  # the values backward left, for the end's check
                leaf.append(None if grad is None else _kept(grad._data))

    # ------------------------------------------------------------------ the engine's calls

    def begin(self, op, inputs):
        if self._suspended:
            return
        self._flush()
        params, arrays = self._pending[id(op)] = (dict(op.__dict__), [t._data for t in inputs])
        if self._profile:  # (on only while an op or an update runs: a profiler on through
            # the whole step made the second capture 2-3x the eager step)
            key = self._key_of[id(op)] = _call_key(type(op), arrays, params)
            self._start_listing(key)

    def forward(self, op, inputs, out):
        if self._suspended:
            return
        if self._profile:
            sys.setprofile(None)
            self._end_listing()
        params, arrays = self._pending.pop(id(op))
        if "needs" in op.__dict__:
            params["needs"] = op.needs
        for key, value in params.items():
            if callable(value) and not isinstance(value, type) and not hasattr(value, "dtype"):
                self.problem(f"{type(op).__name__} carries a Python callable ({key}): a module "
                             "or tensor hook, which replay cannot run in its place")
        self.events.append(("op", op, params, tuple(inputs), arrays, out, out._data))

    def before(self, node, g):
        if self._suspended:
            return
        self._flush()
        self._hooks(node)
        seed = None
        if id(node) not in self._sent:  # a root: its gradient is backward's seed
            seed = (g.shape, g.dtype, bool((g == 1).all()))
        self.events.append(("before", node, seed))
        if self._profile:
            key = self._key_of.get(id(node._op))
            self._start_listing(None if key is None else (key, _layout(g)))

    def step(self, node, g, input_grads):
        if self._suspended:
            return
        if self._profile:
            sys.setprofile(None)
            self._end_listing()
        parents = tuple(_parents_of(node))
        for parent, pg in zip(parents, input_grads):
            if pg is not None and parent._rg:
                self._sent.add(id(parent))
        self._sent.discard(id(node))
        self.events.append(("backward", node, _meta(g), tuple(map(_meta, input_grads)),
                            parents))

    def leaf(self, node, g):
        if self._suspended:
            return
        self._flush()
        self._hooks(node)
        self._sent.discard(id(node))
        held = node._grad
        if self._snap is not None and held is not None:  # backward adds into it: it must
            entry = self._snap.grads_in.get(id(node))  # hold what it held, or what recorded
            if entry is not None and entry[1] is held and id(held) not in _written(self) \
                    and not _same_bits(held._data, entry[2]):  # writes made
                self.problem("a .grad was changed in place outside any op before backward "
                             "added into it: replay cannot repeat it")
        self._leaf = ["leaf", node, id(g), held, None, g.shape]
        self.events.append(self._leaf)

    def write(self, tensor, before, src, recorded):
        if self._suspended:
            return
        self._flush()
        if recorded:
            self.problem("an in-place op on a tensor in the autograd graph (x.relu_(), x += y, "
                         "inplace=True...): use the out-of-place form inside a compiled step")
            return
        self.events.append(("write", tensor, before, tensor._data, src))

    def graph_backward(self):
        if self._suspended:
            return
        self.problem("backward(create_graph=True) (or autograd.grad(create_graph=True)): "
                     "replay runs first derivatives only")

    def read(self, tensor, how):
        if self._suspended:
            return
        self.problem(f"fn reads a tensor's values in Python ({how}): a replay cannot repeat "
                     "what Python did with them (return the tensor and read it outside the "
                     "compiled step, e.g. step(x, y).item())")

    def _hooks(self, node):
        extra = node._extra
        if extra is not None and (extra.get("hooks") or extra.get("retain")
                                  or extra.get("post_hooks")):
            self.problem("a tensor hook or retain_grad() in the graph: replay cannot run "
                         "Python in backward")
        hooks = None if node._op is None else node._op.__dict__.get("_node_hooks")
        if hooks is not None and (hooks["pre"] or hooks["post"]):
            self.problem("a grad_fn hook in the graph (grad_fn.register_hook / register_prehook, "
                         "a module's register_backward_hook): replay cannot run Python in "
                         "backward")

    # ------------------------------------------------------------------ optimizers

    def _pre_step(self, opt, args, kwargs):
        if not self._mine():
            return
        self._flush()
        if self._snap is not None:
            self._snap.check_before_step(self, opt)
        self._gathered = [[p for p in g["params"] if p._grad is not None]
                          for g in opt.param_groups]
        last = {id(e[1]): e for e in self.events if e[0] == "leaf"}
        if any(e[1]._grad is not e[4] for e in last.values()):
            self.problem("a .grad was replaced between backward and the optimizer step outside "
                         "any op: replay cannot repeat it")
        self._suspended += 1
        if self._profile and self._suspended == 1:
            self._watch()

    def _post_step(self, opt, args, kwargs):
        if not self._mine():
            return
        self._suspended -= 1
        if self._profile and not self._suspended:
            sys.setprofile(None)
        if self._suspended:
            return
        if args or kwargs:
            self.problem(f"{type(opt).__name__}.step() was given arguments (a closure?): "
                         "replay cannot run Python")
        self.events.append(("opt", opt, args, kwargs, self._gathered))
        self.stepped[opt] = _options(opt)
        if self._snap is not None:
            self._snap.after_step(opt)

    # ------------------------------------------------------------------ kernels

    def _start_listing(self, key):
        """An op or a backward step starts (its kernels go to event len(self.events)): copy
        the listing of an earlier call with the same key, else list its calls."""
        if self._open is not None:  # (one inside another: list everything from now on)
            self._listed = None
        if key is not None and self._listed is not None and key in self._listed:
            self._open = ("copy", key)
            return
        self._open = ("fill", key)
        self._watch()

    def _end_listing(self):
        mode, key = self._open
        self._open = None
        if key is None or self._listed is None:
            return
        index = len(self.events)
        if mode == "copy":
            if self._listed[key]:
                self.kernels[index] = list(self._listed[key])
        else:
            self._listed[key] = tuple(self.kernels.get(index, ()))

    def _watch(self):
        """Report the backend's calls to _kernel_frame from now on (until sys.setprofile(None)):
        through the C profile function when the kernels are built."""
        if _watch_calls is not None:
            _watch_calls(self._kernel_frame, _BACKEND_GLOBALS)
        else:
            sys.setprofile(self._kernel_call)

    def _kernel_call(self, frame, event, arg):
        if event == "call" and frame.f_globals is _BACKEND_GLOBALS:
            self._kernel_frame(frame)

    def _kernel_frame(self, frame):
        """A call of a function of cygrad.backend: listed when it is a kernel."""
        code = frame.f_code
        name = code.co_name
        if name not in _KERNELS:
            return
        values = frame.f_locals
        shapes = [_describe(values.get(v)) for v in code.co_varnames[:code.co_argcount]]
        self.kernels.setdefault(len(self.events), []).append(
            (name, tuple(s for s in shapes if s is not None)))


class _Snapshot:
    """The state a first capture's plan found, kept when the second capture starts (a copy of
    each small array, a CRC of each large one: _kept): every tensor it read live (parameters,
    buffers, constants) and its gradient, the optimizers' options and state. The second
    capture checks that only recorded steps changed them."""

    def __init__(self, plan):
        self.values = {}  # id(t) -> (t, its values kept: at entry, or after its update)
        self.grads_in = {}  # id(t) -> (t, its .grad at entry, that grad's values kept)
        for t in plan.live_tensors():
            self.values[id(t)] = (t, _kept(t._data))
            grad = t._grad
            self.grads_in[id(t)] = (t, grad, None if grad is None else _kept(grad._data))
        self.optimizers = {opt: (_options(opt), _state_copy(opt)) for opt in plan.optimizers()}
        self.owners = plan.owners

    def _unexplained(self, written):
        """Tensors whose values changed since they were kept, with no recorded write into them
        (written: _written(recorder))."""
        return [t for t, kept in self.values.values()
                if id(t) not in written and not _same_bits(t._data, kept)]

    def check_before_step(self, recorder, opt):
        if opt in self.optimizers and _options(opt) != self.optimizers[opt][0]:
            recorder.problem(f"fn changes {type(opt).__name__}'s options before its step (an "
                             "lr schedule set inside the compiled step? set it outside: replays "
                             "read the options live)")
        for t in self._unexplained(_written(recorder)):
            recorder.problem(f"a tensor of shape {tuple(t.shape)} was changed in place outside "
                             "any op (numpy writes through .data or ._data?): replay cannot "
                             "repeat it")

    def after_step(self, opt):
        """The parameters the step updated: their new values are the reference from now on."""
        for group in opt.param_groups:
            for p in group["params"]:
                if id(p) in self.values:
                    self.values[id(p)] = (p, _kept(p._data))

    def check_end(self, recorder):
        written = _written(recorder)
        for t in self._unexplained(written):
            recorder.problem(f"a tensor of shape {tuple(t.shape)} was changed in place outside "
                             "any op (numpy writes through .data or ._data?): replay cannot "
                             "repeat it")
        for opt, (_, state) in self.optimizers.items():
            if opt not in recorder.stepped and _state_copy(opt) != state:
                recorder.problem(f"{type(opt).__name__}'s state changed without a step")
        last = {}
        for e in recorder.events:
            if e[0] == "leaf":
                last[id(e[1])] = e
        for key, (t, grad, kept) in self.grads_in.items():
            e = last.get(key)
            now = t._grad
            if e is not None:  # backward made this .grad: nothing else may touch it, but fn
                # may set it to None after the updates (zero_grad at the end: replayed there)
                if now is not e[4] and now is not None:
                    recorder.problem("a .grad was replaced after backward outside any op "
                                     "(zero_grad() after backward?): replay cannot repeat it")
                elif now is not None and id(now) not in written and \
                        not _same_bits(now._data, e[6]):
                    recorder.problem("a .grad was changed in place after backward outside any "
                                     "op (clipping through numpy?): replay cannot repeat it")
            elif now is not None and now is not grad:
                recorder.problem("fn set a .grad outside backward: replay cannot repeat it")
            elif now is not None and id(now) not in written and \
                    not _same_bits(now._data, kept):
                recorder.problem("a .grad was changed in place outside any op: replay cannot "
                                 "repeat it")


def _written(recorder):
    """Tensors recorded steps may change in place: written into, or whose array an op took as a
    parameter (BatchNorm's running statistics, updated by its forward)."""
    out = {id(e[1]) for e in recorder.events if e[0] == "write"}
    params = {id(a) for e in recorder.events if e[0] == "op" for value in e[2].values()
              for a in (value if isinstance(value, (tuple, list)) else (value,))
              if isinstance(a, np.ndarray)}
    if params:
        snap = recorder._snap
        out.update(key for key, (t, _) in snap.values.items() if id(t._data) in params)
    return out


_SIMPLE = (bool, int, float, str, slice, type(None))


def _layout(array):
    """(shape, dtype, strides) of an array, or None: not one."""
    if not isinstance(array, np.ndarray):
        return None
    return array.shape, array.dtype.str, array.strides


def _call_key(cls, arrays, params):
    """What decides the kernels an op calls: its type, its arrays' layouts and its parameters,
    when each is an array or a simple value (else None: the call is listed on its own)."""
    parts = [cls]
    for a in arrays:
        layout = _layout(a)
        if layout is None:
            return None
        parts.append(layout)
    for key, v in params.items():
        if type(v) in _SIMPLE:
            parts.append((key, v))
        elif type(v) is tuple and all(type(x) in _SIMPLE for x in v):
            parts.append((key, v))
        elif isinstance(v, np.ndarray):
            parts.append((key, _layout(v)))
        else:
            return None
    return tuple(parts)


def _meta(array):
    return None if array is None else (array.shape, array.dtype)


def _state_copy(opt):
    """A comparable summary of an optimizer's state: per parameter, each value's bytes."""
    out = []
    for group in opt.param_groups:
        for p in group["params"]:
            s = opt.state.get(p)
            if not s:
                out.append(None)
                continue
            out.append(tuple(sorted((k, _bytes(v)) for k, v in s.items())))
    return out


def _bytes(value):
    data = getattr(value, "_data", value)
    return data.tobytes() if isinstance(data, np.ndarray) else repr(data)


class _Print:
    """A large array's values as a second capture keeps them to check later that nothing
    changed them: its layout and the CRC-32 of its bytes. A copy (what small arrays keep) took
    the heap's free memory that the step's own arrays then found taken: the mnist CNN's
    second capture page-faulted ~1000 times in its kernels (max_pool_backward 0.8 -> 7 ms).
    A CRC-32 catches every change of up to 32 adjacent bits and misses other changes with
    probability 2^-32; a missed write means fn runs as captured, as one the second capture
    could not see."""

    __slots__ = ("layout", "crc")

    def __init__(self, a):
        self.layout = (a.shape, a.dtype.str)
        self.crc = zlib.crc32(memoryview(np.ascontiguousarray(a)).cast("B"))

    def __eq__(self, other):
        return isinstance(other, _Print) and self.layout == other.layout and self.crc == other.crc

    __hash__ = None


def _kept(a):
    """What the snapshot keeps of an array's values: a copy, or a _Print when it is large."""
    return _Print(a) if a.nbytes > _SMALL else a.copy()


def _same_bits(a, kept):
    """Whether array a still holds the values `kept` (_kept) holds, bit for bit."""
    if isinstance(kept, _Print):
        return _Print(a) == kept
    if a.shape != kept.shape or a.dtype != kept.dtype:
        return False
    return a.tobytes() == kept.tobytes()


_SMALL = 1 << 16  # bytes
