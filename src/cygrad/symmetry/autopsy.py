"""Where a split began: the first operation whose output broke a tie.

    rec = OpRecorder(model)
    with rec:                          # one training step, every op recorded in order
        step()
    rec.autopsy("0", [3, 17])          # the first op where units 3 and 17 of layer "0" differ

    first_divergence(step, cygrad.backend.using("cython"), cygrad.backend.using("numpy"))

The recorder is a watcher of the engine (cygrad/_state.py): it sees every op's forward output
and every gradient backward computes, tagged with the module that ran it (forward hooks keep a
stack of the modules entered). A tied group's units are slices along a *unit axis* of the arrays
of their layer (rows of its weight gradient, columns of its output, a block of columns after a
flatten, the head axis of attention weights...); the autopsy walks the step's arrays in the order
the engine made them and names the first whose slices for the group's units differ, with the op,
its rule, the phase (forward, backward, or the optimiser's update when every op kept the tie) and
the distance in units in the last place.
"""

import numpy as np

from .. import _state
from ..tensor import Tensor, Watcher

__all__ = ["OpRecorder", "ulps", "first_divergence", "Divergence"]


def ulps(a, b):
    """The largest distance between a and b in units in the last place (0 where equal)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype or a.dtype.kind != "f":
        raise ValueError(f"ulps compares float arrays of one shape and dtype, got {a.dtype}"
                         f"{a.shape} and {b.dtype}{b.shape}")
    if a.size == 0:
        return 0
    bits = np.int32 if a.dtype == np.float32 else np.int64
    low = int(np.iinfo(bits).min)
    worst = 0
    differ = ~((a == b) | (np.isnan(a) & np.isnan(b)))
    for x, y in zip(a[differ].view(bits).tolist(), b[differ].view(bits).tolist()):
        x = low - x if x < 0 else x  # IEEE bits, ordered like the numbers they encode
        y = low - y if y < 0 else y
        worst = max(worst, abs(x - y))
    return worst


class Event:
    """One thing the engine did: an op's forward or its backward."""

    __slots__ = ("position", "phase", "op", "module", "arrays", "roles")

    def __init__(self, position, phase, op, module, arrays, roles):
        self.position, self.phase, self.op, self.module = position, phase, op, module
        self.arrays, self.roles = arrays, roles  # roles: what each array is ("output", an input)

    def describe(self):
        where = f" of {self.module}" if self.module else ""
        return f"{self.phase}{where} ({self.op.name()}, {self.op.rule})"


class OpRecorder(Watcher):
    """Records every op the engine runs in this thread while active (`with recorder:`), in
    order: forward outputs and backward gradients, and which module each op ran in (given a
    model, through its forward hooks). copy=True keeps copies of the arrays (for comparing
    runs); by default it keeps references, which the step's own arrays are."""

    def __init__(self, model=None, copy=False):
        self.events = []
        self.copy = copy
        self._stack = []
        self._module_of = {}  # id(op) -> module name where it ran forward
        self._tensor_role = {}  # id(tensor) -> (module name, "weight"/"bias"...) of parameters
        self._handles = []
        self._watch = None
        if model is not None:
            self._hook(model)

    def _hook(self, model):
        for name, module in model.named_modules():
            for pname, p in module._parameters.items():
                if p is not None:
                    self._tensor_role[id(p)] = (name, pname)
            if not name or not hasattr(module, "register_forward_pre_hook"):
                continue
            self._handles.append(module.register_forward_pre_hook(
                lambda m, args, name=name: self._stack.append(name)))
            self._handles.append(module.register_forward_hook(
                lambda m, args, out: self._stack.pop() if self._stack else None))

    def close(self):
        """Remove the recorder's module hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self):
        self._watch = _state.watching(self)
        self._watch.__enter__()
        return self

    def __exit__(self, *exc):
        self._watch.__exit__(*exc)
        return False

    def clear(self):
        self.events.clear()
        self._module_of.clear()

    def _keep(self, array):
        return None if array is None else (np.array(array) if self.copy else array)

    # ------------------------------------------------------------ the engine calls these

    def forward(self, op, inputs, out):
        module = self._stack[-1] if self._stack else None
        self._module_of[id(op)] = module
        self.events.append(Event(len(self.events), "forward", op, module,
                                 [self._keep(out._data)], ["output"]))

    def step(self, node, g, input_grads):
        op = node._op
        roles = []
        for parent in node._parents:
            role = self._tensor_role.get(id(parent))
            roles.append(f"grad of {role[0]}.{role[1]}" if role else "grad of an input")
        self.events.append(Event(len(self.events), "backward", op,
                                 self._module_of.get(id(op)),
                                 [self._keep(pg) for pg in input_grads], roles))

    # ------------------------------------------------------------ reading

    def autopsy(self, layer, units, width=None, optimizer=None):
        """The first event of the recorded step whose arrays hold different slices for the
        given units of `layer` (a module name), as a dict: step-independent fields `op`,
        `phase`, `module`, `rule`, `position`, `ulps`, `units` (the pair that first differs)
        and `text`; or, when every op kept the tie, the optimiser's update (`phase`
        "update"). width: the layer's number of units (found from its recorded arrays
        otherwise)."""
        units = list(units)
        first = units[0]
        for event in self.events:
            if event.module is None or not _related(event.module, layer):
                if not any(role.startswith(f"grad of {layer}.") for role in event.roles):
                    continue
            for array, role in zip(event.arrays, event.roles):
                if array is None or array.dtype.kind != "f":
                    continue
                view = _unit_view(array, role, layer, width)
                if view is None:
                    continue
                ref = view[first]
                for other in units[1:]:
                    if not np.array_equal(ref, view[other], equal_nan=True):
                        distance = ulps(ref, view[other])
                        return _finding(event, role, (first, other), distance)
        name = type(optimizer).__name__ if optimizer is not None else "the optimiser"
        return {"op": name, "phase": "update", "module": layer, "rule": "the parameter update",
                "position": len(self.events), "ulps": None, "units": None,
                "text": f"update by {name}: every op of the step kept the units equal"}


def _related(module, layer):
    return module == layer or module.startswith(layer + ".") or layer.startswith(module + ".")


def _unit_view(array, role, layer, width):
    """array seen as (units, rest) along its unit axis for `layer`, or None when it has none
    of the layer's width."""
    if role == f"grad of {layer}.weight" or role == f"grad of {layer}.bias":
        axis = 0
    elif role.startswith("grad of ") and role.endswith(".weight") and array.ndim >= 2:
        axis = 1  # the next layer's weight: how it reads the units (columns)
    elif array.ndim >= 3 and (width is None or array.shape[1] == width):
        axis = 1  # (N, C, ...) channels, (B, H, T, T) heads
    elif array.ndim >= 1:
        axis = array.ndim - 1
    else:
        return None
    n = array.shape[axis]
    if width is not None and n != width:
        if n % width or axis != array.ndim - 1:
            return None
        # units as blocks of the last axis (after a flatten, or heads of a projection)
        moved = np.moveaxis(array, axis, 0).reshape(width, n // width, -1)
        return moved.reshape(width, -1)
    moved = np.moveaxis(array, axis, 0)
    return moved.reshape(moved.shape[0], -1)


def _finding(event, role, pair, distance):
    return {"op": event.op.name(), "phase": event.phase, "module": event.module,
            "rule": event.op.rule, "position": event.position, "ulps": distance,
            "units": pair, "array": role,
            "text": f"{event.describe()}: units {pair[0]} and {pair[1]} first differ here "
                    f"({role}) by {distance} ulp{'s' if distance != 1 else ''}; their inputs "
                    "were equal"}


class Divergence(dict):
    """Where two runs of one step first made different bits (a dict with attribute access)."""

    __getattr__ = dict.get

    def __str__(self):
        return self["text"]


def first_divergence(step, a, b):
    """Run `step` (a callable running one training step from the same starting point each time
    it is called) under the context managers a and b (e.g. cygrad.backend.using("numpy"), a
    thread count), recording every op's output, and return the first op whose output bits
    differ between the two runs (a Divergence: op, phase, position, module, elements,
    max_ulps, text), or None when every bit agrees. What step returns (a model, tensors, an
    array) is compared last, as the "update" phase."""
    runs = []
    for config in (a, b):
        recorder = OpRecorder(copy=True)
        with config, recorder:
            result = step()
        runs.append((recorder.events, _leaves(result)))
    (first, end_a), (second, end_b) = runs
    for x, y in zip(first, second):
        if x.op.name() != y.op.name() or x.phase != y.phase or len(x.arrays) != len(y.arrays):
            return Divergence(op=f"{x.op.name()} / {y.op.name()}", phase=x.phase,
                              position=x.position, module=x.module, elements=None,
                              max_ulps=None, text=f"the runs took different paths at op "
                              f"{x.position}: {x.op.name()} ({x.phase}) against {y.op.name()}")
        for p, q in zip(x.arrays, y.arrays):
            if p is None or q is None or np.array_equal(p, q, equal_nan=p.dtype.kind == "f"):
                continue
            return _divergence(x, p, q)
    if len(first) != len(second):
        return Divergence(op=None, phase="forward", position=min(len(first), len(second)),
                          module=None, elements=None, max_ulps=None,
                          text=f"one run made {len(first)} ops, the other {len(second)}")
    for (name, p), (_, q) in zip(end_a, end_b):
        if not np.array_equal(p, q, equal_nan=True):
            elements = int(np.count_nonzero(p != q))
            return Divergence(op=name, phase="update", position=len(first), module=None,
                              elements=elements, max_ulps=ulps(p, q) if p.dtype.kind == "f"
                              else None, text=f"update: {name} differs in {elements} elements "
                              "after every op agreed")
    return None


def _divergence(event, p, q):
    elements = int(np.count_nonzero(~((p == q) | (np.isnan(p) & np.isnan(q))))) \
        if p.dtype.kind == "f" else int(np.count_nonzero(p != q))
    distance = ulps(p, q) if p.dtype.kind == "f" and p.shape == q.shape else None
    return Divergence(op=event.op.name(), phase=event.phase, position=event.position,
                      module=event.module, rule=event.op.rule, elements=elements,
                      max_ulps=distance,
                      text=f"op {event.position}, {event.describe()}: {elements} element(s) "
                           f"differ, by at most {distance} ulp(s)")


def _leaves(result):
    """(name, array) for what a step returned: a model's parameters, tensors, arrays."""
    if result is None:
        return []
    if hasattr(result, "named_parameters"):
        return [(name, np.array(p._data)) for name, p in result.named_parameters()]
    if isinstance(result, Tensor):
        return [("result", np.array(result._data))]
    if isinstance(result, np.ndarray):
        return [("result", np.array(result))]
    if isinstance(result, (list, tuple)):
        return [(f"{i}.{n}", a) for i, r in enumerate(result) for n, a in _leaves(r)]
    return []
