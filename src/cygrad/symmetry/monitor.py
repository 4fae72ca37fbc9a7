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

import numpy as np

from .. import backend
from ..nn.layers import Dropout
from .groups import _outgoing, tied_groups, unit_slices, watched_layers

__all__ = ["SymmetryMonitor", "activation_health", "update_ratio"]


def _arrays(layer):
    """(main weight array, bias array or None) of a layer: what the monitor shows and times."""
    w = getattr(layer, "weight", None)
    if w is None:
        w = layer.in_proj_weight if getattr(layer, "in_proj_weight", None) is not None else \
            layer.q_proj_weight
    b = getattr(layer, "bias", None)
    if b is None:
        b = getattr(layer, "in_proj_bias", None)
    return w._data, None if b is None else b._data


def _weight_param(layer):
    w = getattr(layer, "weight", None)
    return w if w is not None else getattr(layer, "in_proj_weight", None)


def _bias_param(layer):
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


def _unit_rows(parts, n, group):
    """For each (array, axis) part: the slices of the group's units, one row each (float64)."""
    for array, axis in parts:
        moved = np.moveaxis(array, axis, 0).reshape(n, -1)
        yield moved[group].astype(np.float64)


def _next_reader(layers, k):
    """The next Linear or Conv layer after layer k (it reads layer k's units), or None."""
    for _, layer in layers[k + 1:]:
        if type(layer).__name__ in ("Linear", "Conv1d", "Conv2d"):
            return layer
    return None


# ---------------------------------------------------------------- the monitor

def _grad_status(p):
    if p is None:
        return None
    if p.grad is None:
        return {"status": "none", "norm": None}
    norm = float(np.sqrt(np.sum(np.square(p.grad._data, dtype=np.float64))))
    return {"status": "zero" if norm == 0 else "nonzero", "norm": norm}


class SymmetryMonitor:
    """Watches a model's Linear and Conv2d layers step by step.

    `record()` after each optimiser step (or `attach(optimizer)`). Step 0 is recorded at
    construction. Per step and layer it keeps: the effective width (groups of units with
    identical incoming weights and bias), the fully tied groups (incoming and outgoing), the
    largest difference inside groups that were tied before, and each parameter's gradient status
    (absent, exactly zero or non-zero, with its norm). `watch=[(layer_name, i, j), ...]` also
    records the distance ||W_i - W_j|| of chosen unit pairs.
    """

    def __init__(self, model, watch=()):
        self.model = model
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
        self._activations = {}  # layer name -> diagnostics of its activation's last output
        self._handles = []
        self._watch_activations()
        self.record(initial=True)

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
                self._handles.append(_on_forward(module, self._measure(layer_name, entry.name)))

    def _measure(self, layer_name, kind):
        def hook(module, inputs, output):
            self._activations[layer_name] = (output._data, kind)  # measured at record()

        return hook

    def detach(self):
        """Remove every hook the monitor attached (activations and optimizers)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    # ------------------------------------------------------------ recording

    def attach(self, optimizer):
        """Make every optimizer.step() call record() afterwards (an optimizer step hook, which
        detach() removes). Returns the optimizer."""
        self._handles.append(_after_step(optimizer, lambda opt, args, kwargs: self.record()))
        return optimizer

    def _snapshot(self):
        snap = {}
        for k, (name, layer) in enumerate(self.layers):
            reader = _next_reader(self.layers, k)
            n, parts = unit_slices(layer)
            outgoing = _outgoing(reader, n) if reader is not None else []
            snap[name] = {
                "weight": _arrays(layer)[0].copy(),
                "units": n,
                "parts": [(np.array(a), axis) for a, axis in parts],
                "groups": tied_groups(layer),
                "tied": tied_groups(layer, reader) if reader is not None else tied_groups(layer),
                "outgoing": [(np.array(a), axis) for a, axis in outgoing],
                "is_output": reader is None,
            }
        return snap

    def _dropout_active(self):
        return any(isinstance(m, Dropout) and m.training and m.p > 0
                   for m in self.model.modules())

    def record(self, initial=False):
        """Take the measurements of the current step (call it after optimizer.step())."""
        if not initial:
            self._step += 1
        step, snap = self._step, self._snapshot()
        entry = {"step": step, "backend": backend.current(), "layers": {}}
        for name, layer in self.layers:
            now = snap[name]
            layer_entry = {
                "effective_width": len(now["groups"]),
                "units": now["units"],
                "groups": now["groups"],
                "tied": now["tied"],
                "max_tied_diff": 0.0,
                "grads": {"weight": _grad_status(_weight_param(layer)),
                          "bias": _grad_status(_bias_param(layer))},
                "saturated": None, "dead": None, "update_ratio": None,
            }
            if name in self._activations:
                layer_entry.update(activation_health(*self._activations.pop(name)))
            if self._previous is not None:
                before = self._previous[name]
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
        return entry

    @staticmethod
    def _largest_difference(groups_before, now):
        """max |value_i - value_j| now, over units i, j that were fully tied before."""
        worst = 0.0
        for group in groups_before:
            if len(group) < 2:
                continue
            for rows in _unit_rows(now["parts"], now["units"], group):
                worst = max(worst, float(np.abs(rows - rows[:1]).max(initial=0.0)))
        return worst

    def _find_splits(self, step, name, before, now):
        """Every group of identical units (incoming side) that is no longer one group, and
        every fully tied group whose incoming side held but whose outgoing columns separated
        (that is where rounding in the next layer's update shows first)."""
        group_of = _owners(now["groups"])
        for group in before["groups"]:
            parts = _partition(group, group_of)
            if len(parts) > 1:
                self.splits.append({"step": step, "layer": name, "units": list(group),
                                    "into": parts, "cause": self._diagnose(group, before)})
        if before["is_output"]:
            return
        tied_of = _owners(now["tied"])
        for group in before["tied"]:
            if len(group) < 2 or len(_partition(group, group_of)) > 1:
                continue  # a single unit, or a split already reported above
            parts = _partition(group, tied_of)
            if len(parts) > 1:
                self.splits.append({
                    "step": step, "layer": name, "units": list(group), "into": parts,
                    "cause": "outgoing weights of tied units separated: " + self._unexplained(),
                })

    def _diagnose(self, group, before):
        """Why a group of units with identical incoming weights separated in this step."""
        if before["is_output"]:
            return "output layer: the loss gives each output unit its own error"
        for rows in _unit_rows(before["outgoing"], before["units"], group):
            if not np.array_equal(rows, np.broadcast_to(rows[:1], rows.shape)):
                return "outgoing weights differed before the step"
        return self._unexplained()

    def _unexplained(self):
        """The cause when theory says tied units get identical updates."""
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
            if len(self.splits) > 20:
                lines.append(f"  ... and {len(self.splits) - 20} more")
        else:
            lines.append("splits: none")
        lines += self._health_lines()
        lines.append("first step with a non-zero weight gradient: " + ", ".join(
            f"{n}: {'never' if s is None else s}" for n, s in self.first_nonzero_grad.items()))
        return "\n".join(lines)

    def _health_lines(self):
        """Saturation, dead units and update/data ratio of the last recorded step."""
        last = self.history[-1]
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
            for name, _ in self.layers:
                ratios = [h["layers"][name]["update_ratio"] for h in self.history[1:]]
                ax1.plot(steps[1:], [np.nan if r is None or r == 0 else np.log10(r)
                                     for r in ratios], label=name)
                health = [h["layers"][name]["saturated"] if h["layers"][name]["saturated"]
                          is not None else h["layers"][name]["dead"] for h in self.history]
                if any(v is not None for v in health):
                    ax2.plot(steps, [np.nan if v is None else v for v in health], label=name)
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
    # a unit is dead when it outputs (at most) zero for every sample of the batch
    per_unit = np.moveaxis(y, 1, 0).reshape(y.shape[1], -1) if y.ndim > 1 else y[:, None]
    return {"dead": float(np.mean(np.all(per_unit <= 0, axis=1)))}


def update_ratio(before, after):
    """std(after - before) / std(before): how large a step is relative to the weights."""
    scale = float(np.std(np.asarray(before, dtype=np.float64)))
    change = float(np.std(np.asarray(after, dtype=np.float64) - before))
    if scale == 0:
        return None if change == 0 else float("inf")
    return change / scale


def _percent(value):
    return "-" if value is None else f"{100 * value:.0f}%"


def _ratio(value):
    return "-" if value is None else f"{value:.2e}"


def _owners(groups):
    """unit -> index of its group."""
    return {u: g for g, members in enumerate(groups) for u in members}


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
