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

from . import backend
from .nn.layers import Conv2d, Dropout, LeakyReLU, Linear, ReLU, Sigmoid, Tanh

__all__ = ["tied_groups_of", "tied_groups", "effective_width", "weight_layers",
           "SymmetryMonitor"]


# ---------------------------------------------------------------- grouping

def _unit_signatures(weight, bias=None, outgoing=None):
    """One bytes key per unit: equal keys <=> bitwise-equal values (+0.0 and -0.0 count equal)."""
    weight = np.asarray(weight)
    n = weight.shape[0]
    if n == 0:
        return []
    # explicit sizes, not -1: reshape cannot infer a dimension of an empty array
    parts = [weight.reshape(n, weight.size // n)]
    if bias is not None:
        parts.append(np.asarray(bias).reshape(n, 1))
    if outgoing is not None:
        outgoing = np.asarray(outgoing)
        if outgoing.ndim < 2 or outgoing.shape[1] % n:
            raise ValueError(f"outgoing weights of shape {outgoing.shape} do not fit {n} units "
                             f"(expected (next_units, {n}, ...) or (next_units, {n}*k))")
        # (next, n*k) from a flattened conv output: unit i owns columns i*k:(i+1)*k
        k = outgoing.shape[1] // n * int(np.prod(outgoing.shape[2:]))
        per_unit = outgoing.reshape(outgoing.shape[0], n, k).transpose(1, 0, 2)
        parts.append(per_unit.reshape(n, outgoing.shape[0] * k))
    rows = np.concatenate([np.asarray(p, dtype=np.float64) for p in parts], axis=1) + 0.0
    return [row.tobytes() for row in rows]


def tied_groups_of(weight, bias=None, outgoing=None):
    """Partition the units (rows of `weight`) into groups that are bitwise identical.

    weight (units, ...), bias (units,) or None, outgoing: the next layer's weight (next, units,
    ...) or (next, units * k) after a flatten, or None. Returns a list of lists of unit indices,
    ordered by their first unit. Works on plain numpy arrays from any framework.
    """
    groups = {}
    for unit, key in enumerate(_unit_signatures(weight, bias, outgoing)):
        groups.setdefault(key, []).append(unit)
    return sorted(groups.values(), key=lambda g: g[0])


def _arrays(layer):
    if not isinstance(layer, (Linear, Conv2d)):
        raise TypeError(f"expected a Linear or Conv2d layer, got {type(layer).__name__}")
    return layer.weight._data, None if layer.bias is None else layer.bias._data


def tied_groups(layer, next_layer=None):
    """Groups of a Linear or Conv2d layer's units with identical incoming weights and bias (and,
    with next_layer, identical outgoing columns in it)."""
    weight, bias = _arrays(layer)
    outgoing = None if next_layer is None else _arrays(next_layer)[0]
    return tied_groups_of(weight, bias, outgoing)


def effective_width(layer, next_layer=None):
    """How many distinct units the layer has: the number of its tied groups."""
    return len(tied_groups(layer, next_layer))


def weight_layers(model):
    """(name, layer) for every Linear and Conv2d in the model, in forward order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, (Linear, Conv2d))]


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
        self.layers = weight_layers(model)
        if not self.layers:
            raise ValueError("the model has no Linear or Conv2d layer to monitor")
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
        self._watch_activations()
        self.record(initial=True)

    def _watch_activations(self):
        """Wrap each activation module's forward so the monitor sees its last output. An
        activation belongs to the weight layer before it (in module order)."""
        layer_name = None
        weight_layer_names = {id(m): n for n, m in self.layers}
        for _, module in self.model.named_modules():
            if id(module) in weight_layer_names:
                layer_name = weight_layer_names[id(module)]
            elif layer_name is not None and isinstance(module, (Tanh, Sigmoid, ReLU, LeakyReLU)):
                module.forward = self._recording(module.forward, layer_name, type(module))

    def _recording(self, forward, layer_name, kind):
        def forward_and_measure(x):
            y = forward(x)
            self._activations[layer_name] = (y._data, kind)  # measured at the next record()
            return y

        return forward_and_measure

    # ------------------------------------------------------------ recording

    def attach(self, optimizer):
        """Make every optimizer.step() call record() afterwards. Returns the optimizer."""
        step = optimizer.step

        def step_and_record(*args, **kwargs):
            result = step(*args, **kwargs)
            self.record()
            return result

        optimizer.step = step_and_record
        return optimizer

    def _snapshot(self):
        snap = {}
        for k, (name, layer) in enumerate(self.layers):
            nxt = self.layers[k + 1][1] if k + 1 < len(self.layers) else None
            weight, bias = _arrays(layer)
            snap[name] = {
                "weight": weight.copy(),
                "bias": None if bias is None else bias.copy(),
                "groups": tied_groups(layer),
                "tied": tied_groups(layer, nxt) if nxt is not None else tied_groups(layer),
                "outgoing": None if nxt is None else _arrays(nxt)[0].copy(),
                "is_output": nxt is None,
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
                "units": layer.weight.shape[0],
                "groups": now["groups"],
                "tied": now["tied"],
                "max_tied_diff": 0.0,
                "grads": {"weight": _grad_status(layer.weight), "bias": _grad_status(layer.bias)},
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
            rows = now["weight"][group].reshape(len(group), -1).astype(np.float64)
            if now["bias"] is not None:
                rows = np.concatenate([rows, now["bias"][group, None]], axis=1)
            worst = max(worst, float(np.abs(rows - rows[:1]).max()))
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
        outgoing = before["outgoing"]
        n = before["weight"].shape[0]
        per_unit = outgoing.reshape(outgoing.shape[0], n, outgoing[0].size // n)
        columns = per_unit[:, group]
        if not np.array_equal(columns, np.broadcast_to(columns[:, :1], columns.shape)):
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
    """Saturation (tanh, sigmoid) or dead units (ReLU family) of one activation output
    y (batch, units, ...): the checks people use to judge an initialisation."""
    y = np.asarray(y)
    if y.size == 0:
        return {}
    if kind is Tanh:
        return {"saturated": float(np.mean(np.abs(y) > 0.97))}
    if kind is Sigmoid:
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
