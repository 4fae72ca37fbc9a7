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

import weakref

import numpy as np

from .. import _state
from ..tensor import Tensor, Watcher

__all__ = ["OpRecorder", "ulps", "first_divergence", "first_divergence_torch", "Divergence"]


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
    """One thing the engine did: an op's forward or its backward. Each of its arrays has a
    role ("output", "grad of 0.weight", "grad of an input") and a tag: the module whose output
    (or whose output's gradient) it is, found from the data flow (see OpRecorder)."""

    __slots__ = ("position", "phase", "op", "module", "arrays", "roles", "tags")

    def __init__(self, position, phase, op, module, arrays, roles, tags):
        self.position, self.phase, self.op, self.module = position, phase, op, module
        self.arrays, self.roles, self.tags = arrays, roles, tags

    def describe(self, role=None):
        where = f" of layer {self.module}" if self.module else ""
        return f"{self.phase}{where} ({self.op.kind()}{_clause(self.op.rule, role)})"


def _clause(rule, role):
    """The part of a backward rule that made the array `role` ("dW = g.T @ x" for a weight's
    gradient), or nothing for a forward output."""
    if not rule or role is None or role == "output":
        return ""
    want = "dW" if role.endswith(".weight") else "db" if role.endswith(".bias") else "dx"
    for part in rule.split(";"):
        part = part.strip()
        if part.startswith(want):
            return ", " + part
    return ", " + rule.split(";")[0].strip()


def _common(tags):
    """The innermost module holding every tag (dotted prefix), or None."""
    tags = [t for t in tags if t is not None]
    if not tags:
        return None
    parts = tags[0].split(".")
    for t in tags[1:]:
        other = t.split(".")
        n = 0
        while n < min(len(parts), len(other)) and parts[n] == other[n]:
            n += 1
        parts = parts[:n]
    return ".".join(parts) or None


class OpRecorder(Watcher):
    """Records every op the engine runs in this thread while active (`with recorder:`), in
    order: forward outputs and backward gradients, each tagged with the module it belongs to.

    The tag comes from the data flow, not from names or hooks: an op with a parameter of the
    model among its inputs belongs to that parameter's module (a Linear, also when Sequential
    fuses it with its activation); any other op belongs to the innermost module holding all
    its inputs' tags (tanh after layer 0 belongs to layer 0; q @ k.T of head 2 to head 2;
    the concatenation of every head to the attention layer). A gradient has the tag of the
    tensor it is the gradient of. copy=True keeps copies of the arrays (for comparing runs);
    by default it keeps references, which are the step's own arrays (given a model, only ops
    that its parameters flow into are kept; without one, every op). step_scoped=True forgets
    the previous step's events when a forward follows a backward (the monitor's mode: one
    step's events at a time)."""

    def __init__(self, model=None, copy=False, step_scoped=False):
        self.events = []
        self.copy = copy
        self.step_scoped = step_scoped
        self._tags = {}  # id(tensor) -> (tag, weakref to it): ids of freed tensors are reused
        # id(parameter) -> (module name, parameter name, weakref to it, its gradient's role)
        self._params = {}
        self._watch = None
        self._backward_seen = False
        if model is not None:
            for name, module in model.named_modules():
                for pname, p in module._parameters.items():
                    if p is not None:
                        self._params.setdefault(id(p), (name, pname, weakref.ref(p),
                                                        f"grad of {name}.{pname}"))

    def close(self):
        """Kept for callers of the hook-based recorder: nothing to remove now."""

    def __enter__(self):
        self._watch = _state.watching(self)
        self._watch.__enter__()
        return self

    def __exit__(self, *exc):
        self._watch.__exit__(*exc)
        return False

    def clear(self):
        self.events.clear()
        self._tags.clear()
        self._backward_seen = False

    def _keep(self, array):
        return None if array is None else (np.array(array) if self.copy else array)

    def _param(self, t):
        """(module name, parameter name) when t is one of the model's parameters (checked by
        identity: a freed parameter's id may be reused by another tensor)."""
        entry = self._params.get(id(t))
        return entry if entry is not None and entry[2]() is t else None

    def _tag_of(self, t):
        param = self._param(t)
        if param is not None:
            return param[0]
        entry = self._tags.get(id(t))
        return None if entry is None or entry[1]() is not t else entry[0]

    # ------------------------------------------------------------ the engine calls these

    def forward(self, op, inputs, out):
        if self._backward_seen and self.step_scoped:
            self.clear()
        params = [self._param(t) for t in inputs]
        owners = [p[0] for p in params if p is not None]
        tags = [self._tag_of(t) if p is None else p[0] for t, p in zip(inputs, params)]
        if self._params and not owners and all(t is None for t in tags):
            return  # not the model's computation (given a model, only its ops are kept)
        tag = owners[0] if owners else _common(tags)
        self._tags[id(out)] = (tag, weakref.ref(out))  # never keeps the step's tensors alive
        self.events.append(Event(len(self.events), "forward", op, tag,
                                 [self._keep(out._data)], ["output"], [tag]))

    def step(self, node, g, input_grads):
        parents = node._parents
        params = [self._param(parent) for parent in parents]
        tag = self._tag_of(node)
        if self._params and tag is None and all(p is None for p in params):
            return  # not the model's computation
        self._backward_seen = True
        roles, tags = [], []
        for parent, param in zip(parents, params):
            if param is not None:
                roles.append(param[3])  # "grad of <module>.<parameter>"
                tags.append(param[0])
            else:
                roles.append("grad of an input")
                tags.append(self._tag_of(parent))
        # a parameter's gradient is read from its .grad when the autopsy runs (holding the
        # array here would make the engine copy it into .grad instead of adopting it)
        arrays = [weakref.ref(parent) if (pg is not None and not self.copy and param is not None)
                  else self._keep(pg) for parent, param, pg in zip(parents, params, input_grads)]
        self.events.append(Event(len(self.events), "backward", node._op, tag, arrays, roles,
                                 tags))

    # ------------------------------------------------------------ reading

    def autopsy(self, layer, units, width=None, optimizer=None, reader=None, unit_modules=None,
                channels_first=None, noun="units"):
        """The first array of the recorded step whose slices for the given units of `layer`
        (a module name) differ, as a dict: `op`, `phase`, `module`, `rule`, `position`,
        `ulps`, `units` (the pair that first differs), `array` and `text`; or, when every op
        kept the tie, the optimiser's update (phase "update").

        width: the layer's number of units; reader: the module reading the units (its weight
        gradient's columns are compared too); unit_modules: for a layer whose units are
        submodules (attention heads written as a list of Head modules), each unit's module
        name: the ops of unit u are compared with the same ops of the group's first unit.
        channels_first: units along axis 1 of arrays of 3 or more dims (conv channels); False:
        along the last axis below 4 dims (features, a sequence's channels); None: axis 1 when
        it has the layer's width. noun: what the text calls the units ("heads")."""
        units = list(units)
        first = units[0]
        found = None  # (position, finding)
        for event in self.events:
            if found is not None and event.position >= found[0]:
                break
            for array, role, tag in zip(event.arrays, event.roles, event.tags):
                array = _resolve(array)
                if array is None or array.dtype.kind != "f":
                    continue
                view = _unit_view(array, role, tag, layer, width, reader, unit_modules,
                                  channels_first)
                if view is None:
                    continue
                for other in units[1:]:
                    if not np.array_equal(view[first], view[other], equal_nan=True):
                        found = (event.position,
                                 _finding(event, role, (first, other),
                                          ulps(view[first], view[other]), noun))
                        break
                if found is not None:
                    break
        if unit_modules is not None:
            paired = self._paired(units, unit_modules, noun)
            if paired is not None and (found is None or paired[0] < found[0]):
                found = paired
        if found is not None:
            return found[1]
        name = type(optimizer).__name__ if optimizer is not None else "the optimiser"
        return {"op": name, "phase": "update", "module": layer, "rule": "the parameter update",
                "position": len(self.events), "ulps": None, "units": None, "array": None,
                "text": f"update by {name}: every op of the step kept the {noun} equal"}

    def _paired(self, units, unit_modules, noun):
        """The first op of a unit whose arrays differ from the same op of the group's first
        unit (units that are submodules: each runs its own ops), as (position, finding)."""
        def inside(tag, u):
            prefix = unit_modules[u]
            return tag is not None and (tag == prefix or tag.startswith(prefix + "."))

        sequences = {u: [e for e in self.events if inside(e.module, u)] for u in units}
        best = None
        reference = sequences[units[0]]
        for other in units[1:]:
            for a, b in zip(reference, sequences[other]):
                position = max(a.position, b.position)
                if best is not None and position >= best[0]:
                    break
                if a.op.kind() != b.op.kind() or len(a.arrays) != len(b.arrays):
                    break
                for p, q, role in zip(a.arrays, b.arrays, a.roles):
                    p, q = _resolve(p), _resolve(q)
                    if p is None or q is None or p.dtype.kind != "f" or p.shape != q.shape:
                        continue
                    if not np.array_equal(p, q, equal_nan=True):
                        later = b if b.position >= a.position else a
                        best = (position, _finding(later, role, (units[0], other), ulps(p, q),
                                                   noun))
                        break
                if best is not None and best[0] == position:
                    break
        return best


def _resolve(array):
    """An event's array; for a parameter, its gradient as it is now."""
    if isinstance(array, weakref.ref):
        param = array()
        grad = None if param is None else param.grad
        return None if grad is None else grad._data
    return array


def _inside(tag, layer):
    return tag is not None and (tag == layer or tag.startswith(layer + "."))


def _unit_view(array, role, tag, layer, width, reader, unit_modules, channels_first=None):
    """array seen as (units, rest) along its unit axis for `layer`, or None when it is not
    one of the layer's arrays (or has no axis of the layer's width)."""
    if role in (f"grad of {layer}.weight", f"grad of {layer}.bias"):
        axis = 0
    elif reader is not None and role == f"grad of {reader}.weight" and array.ndim >= 2:
        axis = 1  # the next layer's weight: how it reads the units (columns)
    elif role.startswith("grad of ") and role != "grad of an input":
        return None  # another parameter's gradient: no unit axis of this layer
    elif not _inside(tag, layer) or (reader is not None and _inside(tag, reader)):
        return None  # not the layer's array, or made after the reader mixed the units
    elif unit_modules is not None and any(_inside(tag, m) for m in unit_modules):
        return None  # one unit's own array: compared op by op with its twin (_paired)
    elif array.ndim >= 3 and (channels_first or array.ndim >= 4 or (
            channels_first is None and (width is None or array.shape[1] == width))):
        axis = 1  # (N, C, ...) channels, (B, H, T, T) heads
    elif array.ndim >= 1:
        axis = array.ndim - 1
    else:
        return None
    n = array.shape[axis]
    if width is not None and n != width:
        if not n or n % width or axis != array.ndim - 1:
            return None
        # units as blocks of the last axis (after a flatten, or heads of a projection)
        moved = np.moveaxis(array, axis, 0).reshape(width, n // width, -1)
        return moved.reshape(width, -1)
    moved = np.moveaxis(array, axis, 0)
    return moved.reshape(moved.shape[0], -1)


def _finding(event, role, pair, distance, noun="units"):
    plural = "s" if distance != 1 else ""
    return {"op": event.op.kind(), "phase": event.phase, "module": event.module,
            "rule": event.op.rule, "position": event.position, "ulps": distance,
            "units": pair, "array": role,
            "text": f"{event.describe(role)}: {noun} {pair[0]} and {pair[1]} first differ here "
                    f"({'its output' if role == 'output' else 'the ' + role}) by {distance} "
                    f"ulp{plural}; their inputs were equal"}


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
        if x.op.kind() != y.op.kind() or x.phase != y.phase or len(x.arrays) != len(y.arrays):
            return Divergence(op=f"{x.op.kind()} / {y.op.kind()}", phase=x.phase,
                              position=x.position, module=x.module, elements=None,
                              max_ulps=None, text=f"the runs took different paths at op "
                              f"{x.position}: {x.op.kind()} ({x.phase}) against {y.op.kind()}")
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
    return Divergence(op=event.op.kind(), phase=event.phase, position=event.position,
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


def first_divergence_torch(model, x, target, loss="mse_loss", optimizer="SGD",
                           torch_model=None, **optimizer_args):
    """One training step of a Sequential model in cygrad and in PyTorch (the same weights,
    through cygrad.interop.to_torch, or `torch_model`), compared where the two correspond: the
    output of each layer in order (forward), the loss, then going back the gradient of each
    layer's output and of its parameters (backward), then the parameters after the
    optimiser's step (update). Returns None when every bit agrees, else a Divergence (op: the
    layer's class, module: its name, phase, position in that order, elements, max_ulps).

    The correspondence is by layer, not by kernel: cygrad runs each layer on its own here
    (without Sequential's fusion of Linear and activation, which gives the same bits) and
    torch's layers may run several kernels. Needs torch; the model's parameters are left as
    they were (the step runs on copies)."""
    import copy

    import torch

    from .. import optim, tensor
    from ..interop import to_torch
    from ..nn import functional as F

    ours = copy.deepcopy(model)
    theirs = to_torch(ours) if torch_model is None else torch_model
    layers = list(ours._modules.items())
    torch_layers = list(theirs._modules.values())
    if len(layers) != len(torch_layers):
        raise ValueError(f"the two models have {len(layers)} and {len(torch_layers)} layers")
    xs = np.asarray(x._data if isinstance(x, Tensor) else x)
    ts = np.asarray(target._data if isinstance(target, Tensor) else target)

    # cygrad, layer by layer, keeping each layer's output's gradient
    h, outs = tensor(xs), []
    for _, layer in layers:
        h = layer(h)
        h.retain_grad()
        outs.append(h)
    ours_opt = getattr(optim, optimizer)(ours.parameters(), **optimizer_args)
    loss_ours = getattr(F, loss)(h, tensor(ts))
    loss_ours.backward()
    # torch, the same
    th, touts = torch.from_numpy(xs.copy()), []
    for layer in torch_layers:
        th = layer(th)
        th.retain_grad()
        touts.append(th)
    theirs_opt = getattr(torch.optim, optimizer)(theirs.parameters(), **optimizer_args)
    loss_theirs = getattr(torch.nn.functional, loss)(th, torch.from_numpy(ts.copy()))
    loss_theirs.backward()

    def arr(t):
        return None if t is None else (t.detach().numpy() if hasattr(t, "detach") and not
                                       isinstance(t, Tensor) else np.asarray(t._data))

    pairs = []  # (phase, module name, class, what, ours, theirs)
    for (name, layer), o, to in zip(layers, outs, touts):
        pairs.append(("forward", name, type(layer).__name__, "output", arr(o), arr(to)))
    pairs.append(("forward", None, loss, "loss", arr(loss_ours), arr(loss_theirs)))
    for (name, layer), tl, o, to in reversed(list(zip(layers, torch_layers, outs, touts))):
        pairs.append(("backward", name, type(layer).__name__, "grad of output", arr(o.grad),
                      arr(to.grad)))
        for pname, p in layer._parameters.items():
            if p is not None:
                tp = getattr(tl, pname)
                pairs.append(("backward", name, type(layer).__name__, f"grad of {pname}",
                              arr(p.grad), arr(tp.grad)))
    ours_opt.step()
    theirs_opt.step()
    for (name, layer), tl in zip(layers, torch_layers):
        for pname, p in layer._parameters.items():
            if p is not None:
                pairs.append(("update", name, type(layer).__name__, pname, arr(p),
                              arr(getattr(tl, pname))))
    for position, (phase, name, kind, what, a, b) in enumerate(pairs):
        if a is None or b is None or (a.shape == b.shape and a.dtype == b.dtype and
                                      np.array_equal(a, b, equal_nan=True)):
            continue
        if a.shape != b.shape or a.dtype != b.dtype:
            return Divergence(op=kind, phase=phase, position=position, module=name,
                              elements=None, max_ulps=None,
                              text=f"{phase} of layer {name} ({kind}): {what} is {a.dtype}"
                                   f"{a.shape} in cygrad, {b.dtype}{b.shape} in torch")
        elements = int(np.count_nonzero(~((a == b) | (np.isnan(a) & np.isnan(b)))))
        distance = ulps(a, b) if a.dtype.kind == "f" else None
        where = f" of layer {name}" if name is not None else ""
        return Divergence(op=kind, phase=phase, position=position, module=name,
                          elements=elements, max_ulps=distance,
                          text=f"{phase}{where} ({kind}, {what}): {elements} element(s) differ "
                               f"between cygrad and torch, by at most {distance} ulp(s)")
    return None
