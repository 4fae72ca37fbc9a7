"""See weight symmetry: which units of a layer are tied, how many distinct units a layer really
has, and when (and why) a group of tied units splits.

Layout as in PyTorch: a Linear weight W is (out, in), so row i is unit i's incoming weights and
column j of the *next* layer's weight is how that layer listens to unit j. For Conv2d, row i is
filter i. Two units are *tied* when their incoming rows and biases are equal and their outgoing
columns in the next layer are equal; theory says tied units get identical updates forever, and
cygrad's exact kernels keep that promise bitwise.

    monitor = SymmetryMonitor(model)
    monitor.attach(optimizer)          # records after every optimizer.step()
    ...train...
    print(monitor.report())
"""

import weakref

import numpy as np

from .. import _state, backend, nn
from ..nn.layers import Dropout
from ..nn.module import _layout
from ..tensor import Watcher
from .autopsy import OpRecorder
from .groups import (
    _distinct,
    _group,
    _outgoing,
    _refine,
    _regroup,
    head_modules,
    unit_slices,
    watched_layers,
)

__all__ = ["SymmetryMonitor", "activation_health", "update_ratio"]


def _head_params(layer, what):
    """The key, query and value weights (or biases) of every head of hand-written attention."""
    heads = [layer.get_submodule(name) for name in head_modules(layer)]
    return [getattr(h._modules[q], what) for h in heads for q in ("key", "query", "value")]


def _arrays(layer):
    """(main weight array, bias array or None) of a layer: what the monitor shows and times
    (for hand-written attention: every head's key, query and value weights, one row per
    head)."""
    if head_modules(layer) is not None:
        ws = _head_params(layer, "weight")
        n = len(head_modules(layer))
        return np.stack([w._data for w in ws]).reshape(n, -1), None
    w = getattr(layer, "weight", None)
    if w is None:
        w = layer.in_proj_weight if getattr(layer, "in_proj_weight", None) is not None else \
            layer.q_proj_weight
    b = getattr(layer, "bias", None)
    if b is None:
        b = getattr(layer, "in_proj_bias", None)
    return w._data, None if b is None else b._data


def _weight_param(layer, heads=None):
    """heads: whether the layer is hand-written attention (head_modules), when known."""
    if heads if heads is not None else head_modules(layer) is not None:
        return _head_params(layer, "weight")
    w = getattr(layer, "weight", None)
    return w if w is not None else getattr(layer, "in_proj_weight", None)


def _bias_param(layer, heads=None):
    if heads if heads is not None else head_modules(layer) is not None:
        return None
    b = getattr(layer, "bias", None)
    return b if b is not None else getattr(layer, "in_proj_bias", None)


class _Wrapped:
    """A stand-in handle for a method the monitor wrapped, where the object has no hook API."""

    def __init__(self, obj, name, original):
        self.obj, self.name, self.original = obj, name, original

    def remove(self):
        if self.obj.__dict__.get(self.name) is not None:
            del self.obj.__dict__[self.name]


def _on_forward(module, hook):
    """hook(module, inputs, output) after each forward: a forward hook where the module has
    them."""
    if hasattr(module, "register_forward_hook"):
        return module.register_forward_hook(hook)
    forward = module.forward

    def forward_and_hook(*args):
        out = forward(*args)
        hook(module, args, out)
        return out

    module.forward = forward_and_hook
    return _Wrapped(module, "forward", forward)


def _after_step(optimizer, hook):
    """hook(optimizer, args, kwargs) after each step: a step post-hook where the optimizer has
    them."""
    if hasattr(optimizer, "register_step_post_hook"):
        return optimizer.register_step_post_hook(hook)
    step = optimizer.step

    def step_and_hook(*args, **kwargs):
        result = step(*args, **kwargs)
        hook(optimizer, args, kwargs)
        return result

    optimizer.step = step_and_hook
    return _Wrapped(optimizer, "step", step)


class _WeakWatcher(Watcher):
    """Passes the engine's calls to a recorder while it lives and `on` is true (the monitor
    turns it off for steps in which nothing can split); once its monitor is gone it takes
    itself out of the thread's watchers (a forgotten monitor costs nothing)."""

    def __init__(self, recorder):
        self.ref = weakref.ref(recorder)
        self.on = True

    def _target(self):
        target = self.ref()
        if target is None:
            remaining = tuple(w for w in (_state.local.watch or ()) if w is not self)
            _state.local.watch = remaining or None
        return target

    def gone(self):
        return self.ref() is None

    def forward(self, op, inputs, out):
        target = self._target()  # (also when off: a dropped monitor's watcher leaves)
        if target is not None and self.on:
            target.forward(op, inputs, out)

    def step(self, node, g, input_grads):
        target = self._target()
        if target is not None and self.on:
            target.step(node, g, input_grads)


# ops whose output is random: a split they start is their doing, not rounding's
_RANDOM_OPS = ("Dropout", "AlphaDropout", "FeatureAlphaDropout", "Dropout1d", "Dropout2d",
               "Dropout3d", "SDPAttentionDropout")


def _unit_rows(parts, n, group):
    """For each (array, axis) part: the slices of the group's units, one row each (float64)."""
    for array, axis in parts:
        moved = (array if axis == 0 else np.moveaxis(array, axis, 0)).reshape(n, -1)
        yield moved[group].astype(np.float64)


def _last(layers, k):
    """Whether no layer after layer k reads units of its own (only norms follow it)."""
    return all(type(layer).__name__ in ("LayerNorm", "BatchNorm1d", "BatchNorm2d")
               for _, layer in layers[k + 1:])


def _next_reader(layers, k):
    """The next Linear or Conv layer after layer k (it reads layer k's units), or None (also
    when an attention layer or an embedding reads them first: no columns to compare)."""
    if type(layers[k][1]).__name__ == "MultiheadAttention" or head_modules(layers[k][1]):
        return None  # its heads' outgoing columns are the projection's, part of each head
    for _, layer in layers[k + 1:]:
        kind = type(layer).__name__
        if kind in ("Linear", "Conv1d", "Conv2d"):
            return layer
        if kind in ("MultiheadAttention", "Embedding") or head_modules(layer) is not None:
            return None
    return None


# ---------------------------------------------------------------- the monitor

_PLAIN = tuple(getattr(nn, name) for name in ("Linear", "Conv1d", "Conv2d") if hasattr(nn, name))
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
# whether values all differ: the compiled check when built (columns as _quick_plan makes them)
_ALL_DIFFER = backend.compiled_all_differ or backend.all_differ


def _any(g, sample=True):
    """g.any() for a flat array, answered from its first and last entries, or every 1024th,
    where one of them is non-zero (a gradient that is not zero mostly is non-zero there)."""
    if sample and g.size and (g[0] or g[-1] or (g.size > 8192 and g[::1024].any())):
        return True
    return bool(g.any())


def _quick_status(p):
    """_grad_status(p, norm=False) of one parameter, from its gradient's first and last
    entries where one of them is non-zero."""
    grad = p._grad
    if grad is None:
        return {"status": "none", "norm": None}
    g = grad._data
    if g.size and (g.item(0) or g.item(-1)):
        return {"status": "nonzero", "norm": None}
    return _grad_status(p, False)


def _grad_status(p, norm=True, sample=True):
    if isinstance(p, list):  # the heads of hand-written attention: their weights together
        grads = [q.grad._data for q in p if q.grad is not None]
        if not grads:
            return {"status": "none", "norm": None}
        norm = float(np.sqrt(sum(np.sum(np.square(g, dtype=np.float64)) for g in grads)))
        return {"status": "zero" if norm == 0 else "nonzero", "norm": norm}
    if p is None:
        return None
    if p.grad is None:
        return {"status": "none", "norm": None}
    g = p.grad._data.ravel()
    if not norm:
        return {"status": "nonzero" if _any(g, sample) else "zero", "norm": None}
    # einsum, not np.dot: BLAS's threads make a dot product 40x slower on a busy machine
    norm = float(np.sqrt(np.einsum("i,i->", g, g, dtype=np.float64))) if g.size else 0.0
    if norm == 0 or not np.isfinite(norm):
        if not g.any():
            return {"status": "zero", "norm": 0.0}
        if norm == 0:  # entries so small their squares underflow
            norm = float(np.linalg.norm(g.astype(np.float64)))
    return {"status": "nonzero", "norm": norm}


class SymmetryMonitor:
    """Watches a model's Linear and Conv2d layers step by step.

    `record()` after each optimiser step (or `attach(optimizer)`). Step 0 is recorded at
    construction. Per step and layer it keeps: the effective width (groups of units with
    identical incoming weights and bias), the fully tied groups (incoming and outgoing), the
    largest difference inside groups that were tied before, and each parameter's gradient status
    (absent, exactly zero or non-zero). `watch=[(layer_name, i, j), ...]` also records the
    distance ||W_i - W_j|| of chosen unit pairs. All of that, and every split with its autopsy,
    is exact at every step. (History entries of steps whose units all differ share one list of
    single-unit groups: read the history, do not edit it.)

    The training-health diagnostics read every weight: gradient norms, the update/data ratio
    std(dW)/std(W) (against the weights of the step before) and the activations' health
    (saturated tanh/sigmoid, dead ReLUs). They are measured at every `health_every`-th step:
    steps 0, health_every, 2*health_every, ... (default 100: measuring them costs one to two
    training steps of an MNIST-size MLP); at the other steps they are None (a gradient's norm
    too; its status is kept), and report() shows the last step that has them.
    health_every=1 measures them at every step (as the monitor did before it had the option),
    health=False never.

    What it costs (benchmarks/monitor_overhead.py): where every layer's units all differ, one
    value per unit of every layer (a bias, or a weight column), checked in one call
    (backend.all_differ), shows that they still do; a tied group is compared against itself,
    not hashed. The op recorder of the split autopsy runs only in steps that begin
    with a group of two or more units (a group that does not exist cannot split), and so do the
    forward hooks on activations (which keep nn.Sequential from fusing a Linear with its
    activation: the same bits either way, and the recorder sees the two ops it always saw),
    except that the hooks also run in the steps whose activations are measured. The weights
    are copied only before a measured step.
    """

    # False: take none of the shortcuts (record every op of every step, group every layer the
    # long way, compare every group): the same answers, slowly; tests check that they agree
    _shortcuts = True

    def __init__(self, model, watch=(), health=True, health_every=100):
        self.model = model
        self.health = bool(health)
        if int(health_every) != health_every or health_every < 1:
            raise ValueError(f"health_every must be a positive integer, got {health_every!r}")
        self.health_every = int(health_every)
        self.layers = watched_layers(model)
        if not self.layers:
            raise ValueError("the model has no layer the symmetry tools inspect (Linear, Conv, "
                             "Embedding, LayerNorm, BatchNorm, MultiheadAttention)")
        self.watch = [tuple(w) for w in watch]
        names = {n for n, _ in self.layers}
        for name, *_units in self.watch:
            if name not in names:
                raise ValueError(f"watched layer {name!r} is not one of {sorted(names)}")
        self.history = []
        self.splits = []
        self.first_nonzero_grad = {name: None for name, _ in self.layers}
        self._step = 0
        self._previous = None
        # per layer: the layer reading its units (or None), whether it is the output layer,
        # whether its units are attention heads written by hand
        self._structure = [(_next_reader(self.layers, k), _last(self.layers, k),
                            head_modules(layer) is not None)
                           for k, (_, layer) in enumerate(self.layers)]
        self._activations = {}  # layer name -> (its activation's last output, kind)
        self._alone = {}  # layer name -> [[0], [1], ...]: its groups when its units all differ
        self._cache = [None] * len(self.layers)  # see _layer
        self._out_cache = [None] * len(self.layers)  # see _outgoing_of
        self._quick = None  # see _record_quickly
        self._handles = []  # the optimizers' step hooks
        self._activation_handles = []  # forward hooks on activations, while installed
        self._detached = False
        self._measured_steps = set()  # the steps whose health diagnostics were measured
        # the split autopsy: every op of the step, recorded in this thread (see autopsy.py)
        self.recorder = OpRecorder(model, step_scoped=True)
        self._watcher = _WeakWatcher(self.recorder)
        _state.watching(self._watcher).__enter__()
        self._optimizer = None
        self.record(initial=True)

    def _health_at(self, step):
        """Whether the health diagnostics are measured at this step."""
        return self.health and step % self.health_every == 0

    def _hook_activations(self, on):
        """Install (or remove) the forward hooks that show the monitor each activation's
        output."""
        if on == bool(self._activation_handles) or (on and self._detached):
            return
        layout = _layout[0]
        if on:
            self._watch_activations()
        else:
            for handle in self._activation_handles:
                handle.remove()
            self._activation_handles.clear()
        # hooks change no parameter: what was kept at the count before them still holds
        self._cache = [(_layout[0],) + c[1:] if c is not None and c[0] == layout else c
                       for c in self._cache]
        self._out_cache = [(_layout[0],) + c[1:] if c is not None and c[0] == layout else c
                           for c in self._out_cache]
        if self._quick is not None and self._quick[0] == layout:
            self._quick = (_layout[0],) + self._quick[1:]

    def _watch_activations(self):
        """A forward hook on each activation module that has a health measure (the op table's
        `health`: saturating tanh/sigmoid, dead ReLUs), so the monitor sees its last output. An
        activation belongs to the watched layer before it (in module order)."""
        layer_name = None
        watched = {id(m): n for n, m in self.layers}
        for _, module in self.model.named_modules():
            entry = getattr(type(module), "entry", None)
            if id(module) in watched:
                layer_name = watched[id(module)]
            elif layer_name is not None and entry is not None and entry.health:
                self._activation_handles.append(
                    _on_forward(module, self._measure(layer_name, entry.name)))

    def _measure(self, layer_name, kind):
        def hook(module, inputs, output):
            self._activations[layer_name] = (output._data, kind)  # measured at record()

        return hook

    def detach(self):
        """Remove every hook the monitor attached (activations and optimizers) and stop
        recording ops for the autopsy."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._hook_activations(False)
        self._detached = True
        _state.watching(self._watcher).__exit__(None, None, None)
        self.recorder.clear()

    # ------------------------------------------------------------ recording

    def attach(self, optimizer):
        """Make every optimizer.step() call record() afterwards (an optimizer step hook, which
        detach() removes). Returns the optimizer."""
        self._handles.append(_after_step(optimizer, lambda opt, args, kwargs: self.record()))
        self._optimizer = optimizer
        return optimizer

    def _layer(self, k, layer):
        """((n, parts) of unit_slices, (weight, bias) parameters) of layer k. For a plain
        Linear or Conv they are kept while no module changed (nn.module._layout counts every
        assignment of a parameter, a module or a hook) and each parameter holds the same
        array (the optimisers update them in place)."""
        cached = self._cache[k]
        if cached is not None and cached[0] == _layout[0] and all(
                p._data is data for p, data in cached[1]):
            return cached[2], cached[3]
        layout = _layout[0]
        heads = self._structure[k][2]
        slices = unit_slices(layer)
        params = (_weight_param(layer, heads), _bias_param(layer, heads))
        if type(layer) in _PLAIN:
            self._cache[k] = (layout, [(p, p._data) for p in params if p is not None], slices,
                              params)
        return slices, params

    def _outgoing_of(self, k, reader, n):
        """_outgoing(reader, n) for layer k, kept as _layer keeps its slices (a plain Linear or
        Conv reader whose weight holds the same array)."""
        cached = self._out_cache[k]
        if (cached is not None and cached[0] == _layout[0] and cached[1]._data is cached[2]
                and cached[3] == n):
            return cached[4]
        layout = _layout[0]
        outgoing = _outgoing(reader, n)
        if type(reader) in _PLAIN:
            weight = reader.weight
            self._out_cache[k] = (layout, weight, weight._data, n, outgoing)
        return outgoing

    def _snapshot(self, keep_weights, weights):
        """Every watched layer's groups, and copies of the arrays read after the next step:
        each weight when keep_weights (the update ratio of the next step), the outgoing columns
        of layers with groups (whether they were equal before a split). Each array is copied
        once (a layer's weight serves as its units' rows and as the previous layer's outgoing
        columns); this runs after every step and must stay cheap. weights: whether the entries
        need their layer's weight (else None: the update ratio and `watch` read it)."""
        copies = {}  # id(original array) -> (original, copy)
        shortcuts = self._shortcuts

        def copy(array):
            base = array if array.base is None else array.base
            if id(base) not in copies:
                copies[id(base)] = (base, np.array(base))
            kept = copies[id(base)][1]
            return kept if base is array else kept.reshape(array.shape)

        layers = []  # (name, layer, structure, n, parts, groups or None)
        columns = []  # a column of each layer whose units all differed at the last step
        self._params = []  # (weight, bias) parameters of each layer, for record()
        for k, ((name, layer), structure) in enumerate(zip(self.layers, self._structure)):
            (n, parts), params = self._layer(k, layer)
            self._params.append(params)
            previous = None if self._previous is None else self._previous[name]
            groups = None
            if shortcuts and previous is not None and previous["units"] == n == len(
                    previous["groups"]) and n:
                column = _a_column(n, parts)
                if column is not None:
                    columns.append(column)
                    groups = self._alone[name]  # if the columns below all differ
            layers.append((name, layer, structure, n, parts, groups))
        # The units of those layers still all differ when the values of the columns, all
        # together, do (one call for every layer); else each layer is grouped by itself.
        together = bool(columns) and _all_differ(columns)
        snap = {}
        for k, (name, layer, (reader, is_output, heads), n, parts, groups) in enumerate(layers):
            if groups is None or not together:
                alone = None
                if shortcuts:  # every unit its own group: one list of them serves every step
                    alone = self._alone.get(name)
                    if alone is None or len(alone) != n:
                        alone = self._alone[name] = [[u] for u in range(n)]
                previous = None if self._previous is None else self._previous[name]
                if shortcuts and previous is not None and previous["units"] == n:
                    groups = _regroup(n, parts, previous["groups"], alone=alone)
                else:
                    groups = _group(n, parts, shortcut=shortcuts, alone=alone)
            grouped = len(groups) < n
            # the outgoing columns matter to groups (checked at step 0 for every layer: a
            # next layer that does not fit the units raises)
            outgoing = []
            if reader is not None and (grouped or not shortcuts or self._previous is None):
                outgoing = self._outgoing_of(k, reader, n) if shortcuts else _outgoing(reader, n)
            if grouped:  # the next step changes them: _diagnose reads them after it
                outgoing = [(copy(a), axis) for a, axis in outgoing]
            if outgoing and grouped:
                tied = _refine(n, groups, outgoing) if shortcuts else \
                    _group(n, parts + outgoing, shortcut=False)
            else:
                tied = groups
            weight = _arrays(layer)[0] if weights or keep_weights or not shortcuts else None
            snap[name] = {
                "weight": copy(weight) if keep_weights and not heads else weight,
                "kept": keep_weights,
                "units": n,
                "parts": parts,
                "groups": groups,
                "tied": tied,
                "outgoing": outgoing,
                "is_output": reader is None and is_output,
            }
        return snap

    def _dropout_active(self):
        return any(isinstance(m, Dropout) and m.training and m.p > 0
                   for m in self.model.modules())

    def record(self, initial=False):
        """Take the measurements of the current step (call it after optimizer.step())."""
        if not initial:
            self._step += 1
        step = self._step
        if self._quick is not None:
            entry = self._record_quickly(step)
            if entry is not None:
                return entry
        health = self._health_at(step)
        if health:
            self._measured_steps.add(step)
        snap = self._snapshot(keep_weights=self._health_at(step + 1) or not self._shortcuts,
                              weights=health or self.watch)
        entry = {"step": step, "backend": backend.current(), "layers": {}}
        activations, self._activations = self._activations, {}
        sample = self._shortcuts
        for (name, _), (weight, bias) in zip(self.layers, self._params):
            now = snap[name]
            layer_entry = {
                "effective_width": len(now["groups"]),
                "units": now["units"],
                "groups": now["groups"],
                "tied": now["tied"],
                "max_tied_diff": 0.0,
                "grads": {"weight": _grad_status(weight, health, sample),
                          "bias": _grad_status(bias, health, sample)},
                "saturated": None, "dead": None, "update_ratio": None,
            }
            if name in activations and health:
                layer_entry.update(activation_health(*activations[name]))
            if self._previous is not None:
                before = self._previous[name]
                if health and before["kept"]:
                    layer_entry["update_ratio"] = update_ratio(before["weight"], now["weight"])
                layer_entry["max_tied_diff"] = self._largest_difference(before["tied"], now)
                self._find_splits(step, name, before, now)
            weight_grad = layer_entry["grads"]["weight"]
            if (not initial and weight_grad["status"] == "nonzero"
                    and self.first_nonzero_grad[name] is None):
                self.first_nonzero_grad[name] = step
            entry["layers"][name] = layer_entry
        entry["watch"] = {(n, i, j): float(np.linalg.norm(
            (snap[n]["weight"][i] - snap[n]["weight"][j]).astype(np.float64)))
            for n, i, j in self.watch}
        self.history.append(entry)
        self._previous = snap
        self.recorder.clear()  # the next step's ops start afresh
        # The next step: a split needs a group of two or more units at its start, so the
        # autopsy's recorder runs only then; the activation hooks run then too (the recorder
        # sees the ops it always saw: Linear and activation apart) and where the next step's
        # activations are measured.
        splittable = not self._shortcuts or any(
            len(s["groups"]) < s["units"] for s in snap.values())
        self._watcher.on = splittable
        self._hook_activations(splittable or self._health_at(step + 1))
        self._quick = None if splittable or self.watch else self._quick_plan(snap)
        return entry

    def _quick_plan(self, snap):
        """What _record_quickly needs, when every layer is a plain Linear or Conv whose units
        all differ (else None)."""
        columns, layers = [], []
        for k, (name, _) in enumerate(self.layers):
            cached, now = self._cache[k], snap[name]
            if cached is None or cached[0] != _layout[0] or now["units"] == 0:
                return None
            column = _a_column(now["units"], now["parts"], contiguous=True)
            if column is None or column.dtype not in _FLOATS or not column.flags.aligned:
                return None
            columns.append(column)
            weight, bias = cached[3]
            layers.append((name, now["units"], now["groups"], weight, bias))
        arrays = [pair for cached in self._cache for pair in cached[1]]
        snap = {name: dict(now, weight=None, kept=False, outgoing=[])
                for name, now in snap.items()}
        return _layout[0], arrays, columns, layers, snap

    def _record_quickly(self, step):
        """record() of a step that begins with every unit of every layer distinct (nothing
        could split in it; no op was recorded): when the units still all differ (one column of
        each layer, all checked in one call), the entry is made here, with what record() would
        give: the groups of single units, the gradients' status, and at a measured step the
        health diagnostics. Else (or when a layer's parameters changed) None: record() does it
        all. Right after a training step little of the interpreter's and numpy's state is in the
        CPU's caches: this makes few numpy calls."""
        layout, arrays, columns, layers, snap = self._quick
        if layout != _layout[0] or self.watch:  # (pairs to watch given since: record())
            self._quick = None
            return None
        for p, data in arrays:
            if p._data is not data:
                self._quick = None
                return None
        try:  # one compiled call for every layer (its columns are checked in _quick_plan)
            differ = _ALL_DIFFER(columns)
        except (TypeError, ValueError, BufferError):  # an array changed since
            differ = backend.all_differ(columns)
        if not differ:
            return None  # some value twice (or a NaN): record() groups each layer
        health, keep = self._health_at(step), self._health_at(step + 1)
        before = self._previous
        activations = self._activations
        if activations:
            self._activations = {}
        if health:
            self._measured_steps.add(step)
        entry = {"step": step, "backend": backend.current(), "layers": {}}
        first_nonzero = self.first_nonzero_grad
        for name, n, alone, weight, bias in layers:
            if health:
                status = _grad_status(weight, True)
                bias_status = _grad_status(bias, True)
            else:
                status = _quick_status(weight)
                bias_status = None if bias is None else _quick_status(bias)
            if status["status"] == "nonzero" and first_nonzero[name] is None:
                first_nonzero[name] = step
            entry["layers"][name] = layer_entry = {
                "effective_width": n, "units": n, "groups": alone, "tied": alone,
                "max_tied_diff": 0.0, "grads": {"weight": status, "bias": bias_status},
                "saturated": None, "dead": None, "update_ratio": None,
            }
            if health:
                if name in activations:
                    layer_entry.update(activation_health(*activations[name]))
                if before[name]["kept"]:
                    layer_entry["update_ratio"] = update_ratio(before[name]["weight"],
                                                               weight._data)
        entry["watch"] = {}
        self.history.append(entry)
        if keep:  # the weights of this step, for the next step's update ratio
            snap = {name: dict(now, weight=np.array(weights._data), kept=True)
                    for (name, now), (_, _, _, weights, _) in zip(snap.items(), layers)}
        self._previous = snap
        self._hook_activations(keep)
        return entry

    def _largest_difference(self, groups_before, now):
        """max |value_i - value_j| now, over units i, j that were fully tied before (units
        still in one group of equal values add nothing: their differences are 0, or NaN where
        both hold NaN or the same infinity, which max() passes over)."""
        worst = 0.0
        if self._shortcuts and len(groups_before) == now["units"]:
            return worst  # no two units were tied
        held = _Membership(now["groups"], now["units"]) if self._shortcuts else None
        for group in groups_before:
            if len(group) < 2 or (held is not None and held.together(group)):
                continue
            for rows in _unit_rows(now["parts"], now["units"], group):
                worst = max(worst, float(np.abs(rows - rows[:1]).max(initial=0.0)))
        return worst

    def _find_splits(self, step, name, before, now):
        """Every group of identical units (incoming side) that is no longer one group, and
        every fully tied group whose incoming side held but whose outgoing columns separated
        (that is where rounding in the next layer's update shows first). Each split gets its
        autopsy: the first op of the step whose output broke the tie (op, phase, ulps)."""
        if len(before["groups"]) == before["units"]:
            return  # every unit was a group of its own: nothing left to split
        if self._shortcuts:  # groups that held are passed over without building unit -> group
            groups = _Membership(now["groups"], now["units"])
            tied = _Membership(now["tied"], now["units"])
        else:
            groups = tied = None
        group_of = _owners(now["groups"]) if groups is None else None
        for group in before["groups"]:
            if len(group) < 2 or (groups is not None and groups.together(group)):
                continue
            parts = _partition(group, group_of if groups is None else groups.labels())
            if len(parts) > 1:
                self._split(step, name, group, parts, before, outgoing=False)
        if before["is_output"]:
            return
        tied_of = _owners(now["tied"]) if tied is None else None
        for group in before["tied"]:
            if len(group) < 2 or (tied is not None and tied.together(group)):
                continue
            if groups is not None:
                if not groups.together(group):
                    continue  # a split already reported above
            elif len(_partition(group, group_of)) > 1:
                continue
            parts = _partition(group, tied_of if tied is None else tied.labels())
            if len(parts) > 1:
                self._split(step, name, group, parts, before, outgoing=True)

    def _split(self, step, name, group, parts, before, outgoing):
        finding = self._autopsy(name, group, parts, before)
        if outgoing:
            cause = "outgoing weights of tied units separated: " + self._cause(finding)
        else:
            cause = self._diagnose(group, before, finding)
        text = finding["text"]
        if before["is_output"] and text.endswith("; their inputs were equal"):
            text = text[:-len("their inputs were equal")] + "the loss gives each its own error"
        self.splits.append({"step": step, "layer": name, "units": list(group), "into": parts,
                            "cause": cause, "op": finding["op"], "phase": finding["phase"],
                            "ulps": finding["ulps"], "pair": finding["units"],
                            "autopsy": f"step {step}, {text}"})

    def _autopsy(self, name, group, parts, before):
        """What the recorder saw break the tie: two units from different parts."""
        layer = dict(self.layers)[name]
        k = [n for n, _ in self.layers].index(name)
        reader = _next_reader(self.layers, k)
        reader_name = next((n for n, m in self.layers if m is reader), None)
        heads = head_modules(layer)
        units = [parts[0][0]] + [p[0] for p in parts[1:]]
        kind = type(layer).__name__
        finding = self.recorder.autopsy(
            name, units, width=before["units"], optimizer=self._optimizer, reader=reader_name,
            unit_modules=None if heads is None else [".".join(filter(None, (name, h)))
                                                     for h in heads],
            channels_first=kind in ("Conv1d", "Conv2d", "BatchNorm2d"),
            noun="heads" if heads is not None or kind == "MultiheadAttention" else "units")
        if heads is not None and finding.get("units") is not None:
            finding["units"] = tuple(finding["units"])
        return finding

    def _diagnose(self, group, before, finding):
        """Why a group of units with identical incoming weights separated in this step."""
        if before["is_output"]:
            return "output layer: the loss gives each output unit its own error"
        for rows in _unit_rows(before["outgoing"], before["units"], group):
            if not np.array_equal(rows, np.broadcast_to(rows[:1], rows.shape)):
                return "outgoing weights differed before the step"
        return self._cause(finding)

    def _cause(self, finding):
        """The cause when theory says tied units get identical updates: the op the autopsy
        found (a random op such as dropout, or rounding in any other op); when no op of the
        step broke the tie (the weights were changed outside the step), the state of the
        model says what is left."""
        if finding["phase"] != "update":
            if finding["op"] in _RANDOM_OPS:
                return "dropout was active"
            return f"floating-point rounding ({backend.current()} backend)"
        return self._unexplained()

    def _unexplained(self):
        if self._dropout_active():
            return "dropout was active"
        return f"floating-point rounding ({backend.current()} backend)"

    # ------------------------------------------------------------ reading

    def widths(self, layer_name):
        """Effective width of one layer at every recorded step."""
        return [h["layers"][layer_name]["effective_width"] for h in self.history]

    def report(self, every=None):
        """A readable text table: effective width per layer over steps, splits, the wavefront."""
        names = [n for n, _ in self.layers]
        rows = self.history if every is None else [
            h for h in self.history if h["step"] % every == 0 or h is self.history[-1]]
        header = ["step"] + [f"{n} ({self.history[0]['layers'][n]['units']})" for n in names]
        table = [header] + [[str(h["step"])] + [str(h["layers"][n]["effective_width"])
                                                 for n in names] for h in rows]
        widths = [max(len(r[c]) for r in table) for c in range(len(header))]
        lines = ["effective width per layer (distinct units; layer size in brackets)"]
        lines += ["  " + "  ".join(cell.rjust(w) for cell, w in zip(r, widths)) for r in table]
        if self.splits:
            lines.append(f"splits ({len(self.splits)}):")
            for s in self.splits[:20]:
                units = _short(s["units"])
                lines.append(f"  step {s['step']}: {s['layer']} units {units} split into "
                             f"{len(s['into'])} groups: {s['cause']}")
                lines.append(f"    {s['autopsy']}")
            if len(self.splits) > 20:
                lines.append(f"  ... and {len(self.splits) - 20} more")
        else:
            lines.append("splits: none")
        lines += self._health_lines()
        lines.append("first step with a non-zero weight gradient: " + ", ".join(
            f"{n}: {'never' if s is None else s}" for n, s in self.first_nonzero_grad.items()))
        return "\n".join(lines)

    def _measured(self):
        """The history entries of the steps whose health diagnostics were measured."""
        return [h for h in self.history if h["step"] in self._measured_steps]

    def _health_lines(self):
        """Saturation, dead units and update/data ratio of the last step that measured them."""
        measured = self._measured()
        if not measured:
            return []
        last = measured[-1]
        rows = []
        for name, _ in self.layers:
            e = last["layers"][name]
            if e["saturated"] is None and e["dead"] is None and e["update_ratio"] is None:
                continue
            rows.append(f"  {name}: saturated {_percent(e['saturated'])}, dead "
                        f"{_percent(e['dead'])}, update/data {_ratio(e['update_ratio'])}")
        if not rows:
            return []
        return [f"training health at step {last['step']} (saturated: |tanh| > 0.97 or sigmoid "
                "within 0.03 of 0 or 1; dead: ReLU units zero on the whole batch; update/data: "
                "std(dW) / std(W)):"] + rows

    def plot(self, path, title=None):
        """Write PNG figures: effective width per layer against step, the gradient wavefront
        (layers x steps), and the watched unit distances. Returns the paths written."""
        try:  # a bare Figure, not pyplot: plotting must not switch the user's backend
            from matplotlib.figure import Figure
        except ImportError:
            raise RuntimeError("plotting needs matplotlib: pip install 'cygrad[plot]' "
                               "(or pip install matplotlib)") from None
        import os

        def subplots(*grid, figsize):
            fig = Figure(figsize=figsize)
            return fig, fig.subplots(*grid)

        os.makedirs(path, exist_ok=True)
        steps = [h["step"] for h in self.history]
        written = []
        fig, ax = subplots(figsize=(6, 3.5))
        for name, _ in self.layers:
            ax.step(steps, self.widths(name), where="post", label=name)
        ax.set(xlabel="step", ylabel="effective width", title=title or "effective width")
        ax.legend(fontsize="small")
        written.append(_save(fig, os.path.join(path, "effective_width.png")))
        # The wavefront lives in the first steps: show until a few steps after the last layer
        # woke up (at least 10), not hundreds of all-black columns.
        woke = [s for s in self.first_nonzero_grad.values() if s is not None]
        shown = min(len(self.history) - 1, max(10, 2 * max(woke, default=0)))
        fig, ax = subplots(figsize=(6, 0.6 * len(self.layers) + 1.5))
        picture = [[1.0 if h["layers"][n]["grads"]["weight"]["status"] == "nonzero" else 0.0
                    for h in self.history[1:shown + 1]] for n, _ in self.layers]
        ax.imshow(picture, aspect="auto", cmap="Greys", vmin=0, vmax=1, interpolation="nearest",
                  extent=(0.5, shown + 0.5, len(self.layers) - 0.5, -0.5))
        ax.set_yticks(range(len(self.layers)), [f"layer {n}" for n, _ in self.layers])
        ax.set(xlabel="step", title="non-zero weight gradient (black)")
        written.append(_save(fig, os.path.join(path, "gradient_wavefront.png")))
        if any(h["layers"][n]["update_ratio"] is not None
               for h in self.history for n, _ in self.layers):
            fig, (ax1, ax2) = subplots(1, 2, figsize=(10, 3.5))
            measured = self._measured()  # every health_every-th step
            at = [h["step"] for h in measured]
            for name, _ in self.layers:
                ratios = [h["layers"][name]["update_ratio"] for h in measured]
                ax1.plot(at, [np.nan if r is None or r == 0 else np.log10(r) for r in ratios],
                         label=name, marker="." if self.health_every > 1 else None)
                health = [h["layers"][name]["saturated"] if h["layers"][name]["saturated"]
                          is not None else h["layers"][name]["dead"] for h in measured]
                if any(v is not None for v in health):
                    ax2.plot(at, [np.nan if v is None else v for v in health], label=name,
                             marker="." if self.health_every > 1 else None)
            ax1.set(xlabel="step", ylabel="log10 std(dW)/std(W)", title="update / data ratio")
            ax2.set(xlabel="step", ylabel="fraction", title="saturated (tanh/sigmoid) or "
                                                           "dead (ReLU)")
            ax1.legend(fontsize="small")
            written.append(_save(fig, os.path.join(path, "training_health.png")))
        if self.watch:
            fig, ax = subplots(figsize=(6, 3.5))
            for key in self.watch:
                values = [h["watch"][key] for h in self.history]
                ax.plot(steps, values, label=f"{key[0]}: |W{key[1]} - W{key[2]}|")
            ax.set(xlabel="step", ylabel="distance", yscale="symlog", title="unit distance")
            ax.legend(fontsize="small")
            written.append(_save(fig, os.path.join(path, "unit_distance.png")))
        return written


def activation_health(y, kind):
    """Saturation (tanh, hardtanh, sigmoid) or dead units (ReLU family) of one activation output
    y (batch, units, ...): the checks people use to judge an initialisation. kind: the
    activation's op-table name ("tanh") or its nn module class (nn.Tanh)."""
    y = np.asarray(y)
    kind = getattr(getattr(kind, "entry", None), "name", kind)
    if y.size == 0:
        return {}
    if kind in ("tanh", "hardtanh"):
        return {"saturated": float(np.mean(np.abs(y) > 0.97))}
    if kind in ("sigmoid", "hardsigmoid"):
        return {"saturated": float(np.mean((y < 0.03) | (y > 0.97)))}
    # a unit is dead when it outputs (at most) zero for every sample of the batch (units:
    # axis 1, or each entry of a 1-d output)
    dead = np.all(y <= 0, axis=tuple(a for a in range(y.ndim) if a != 1)) if y.ndim > 1 \
        else y <= 0
    return {"dead": float(np.mean(dead))}


def update_ratio(before, after, scale=None):
    """std(after - before) / std(before): how large a step is relative to the weights (in
    the weights' dtype: a diagnostic the monitor computes at every step). scale: std(before)
    when already known."""
    before, after = np.asarray(before), np.asarray(after)
    if before.dtype.kind != "f" or before.dtype.itemsize < 4:
        before, after = before.astype(np.float64), after.astype(np.float64)
    scale = _std(before) if scale is None else scale
    change = _std(after - before)
    if scale == 0:
        return None if change == 0 else float("inf")
    return change / scale


def _std(x):
    """Standard deviation from the sum and the dot product of x - x[0] (shifting by one
    entry keeps the two terms of the same size, and gives exactly 0 for a constant array)."""
    x = x.ravel()
    if x.size == 0:
        return 0.0
    d = x - x[0]
    mean = float(np.sum(d)) / x.size
    square = float(np.einsum("i,i->", d, d))  # not np.dot: see _grad_status
    return float(np.sqrt(max(square / x.size - mean * mean, 0.0)))


def _percent(value):
    return "-" if value is None else f"{100 * value:.0f}%"


def _ratio(value):
    return "-" if value is None else f"{value:.2e}"


def _owners(groups):
    """unit -> index of its group."""
    return {u: g for g, members in enumerate(groups) for u in members}


def _a_column(n, parts, contiguous=False):
    """One column of a layer's unit rows (its values for every unit): the first of the first
    part that has one, or None. contiguous: rather a part that is one value per unit (a bias:
    n values side by side, where a weight's column takes a cache line each) whose values all
    differ, where there is one."""
    if contiguous:
        for array, axis in parts:
            array = np.asarray(array)
            if (axis == 0 and array.shape == (n,) and array.strides == (array.itemsize,)
                    and _distinct(array)):
                return array
    for array, axis in parts:
        array = np.asarray(array)
        if array.ndim == 2 and axis == 0 and array.shape[1]:
            return array[:, 0]
        rows = (array if axis == 0 else np.moveaxis(array, axis, 0)).reshape(n, -1)
        if rows.shape[1]:
            return rows[:, 0]
    return None


def _all_differ(columns):
    """Whether the values of the columns, all together, all differ (backend.all_differ, for
    float columns)."""
    if all(c.dtype.kind == "f" for c in columns):
        return backend.all_differ(columns)
    return _distinct(np.concatenate(columns))


def _labels(groups, n):
    """unit -> index of its group, as an array (indexable like _owners' dict)."""
    if len(groups) == n:  # every unit a group of its own, in order
        return np.arange(n)
    labels = np.empty(n, np.intp)
    for g, members in enumerate(groups):
        labels[members] = g
    return labels


class _Membership:
    """The groups of one step, asked whether a group of units lies inside one of them: first
    whether it is one of them (a tied group that held), else from unit -> group."""

    def __init__(self, groups, n):
        self.groups, self.n = groups, n
        self._exact = self._labels = None

    def labels(self):
        if self._labels is None:
            self._labels = _labels(self.groups, self.n)
        return self._labels

    def together(self, group):
        if self._exact is None:
            self._exact = {tuple(g) for g in self.groups if len(g) > 1}
        if tuple(group) in self._exact:
            return True
        owners = self.labels()[group]
        return bool(np.all(owners == owners[0]))


def _partition(group, owner):
    """The parts `group` falls into (owner: unit -> group index), ordered by first unit."""
    parts = {}
    for u in group:
        parts.setdefault(owner[u], []).append(u)
    return sorted(parts.values(), key=lambda p: p[0])


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def _short(units, limit=8):
    return str(units) if len(units) <= limit else f"[{units[0]}, {units[1]}, ... {units[-1]}] " \
        f"({len(units)} units)"
