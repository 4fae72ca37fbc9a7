"""Watch backprop happen: a record of every step `backward()` takes.

    with cygrad.trace(model) as t:
        loss.backward()
    print(t)          # a numbered table: op, rule, gradient in, gradients out
    t.steps           # the same as plain records

Each step is one node of the graph, in the order backward visits it: the op, its output shape,
the gradient arriving at its output, the rule it applies (the formula of cygrad/ops/), and the
gradient it sends to each input. Where a node feeds several consumers (a tied weight, a reused
activation), its step lists every contribution and their sum. Leaves show what is added to
their `.grad`.
"""

import contextlib

import numpy as np

from . import _state
from .tensor import Watcher

__all__ = ["trace", "Trace"]


@contextlib.contextmanager
def trace(model=None, names=None, full_values=16):
    """Record the backward passes run inside the block. `model` (or `names`, a dict
    tensor -> name) names the parameters; arrays with at most `full_values` elements are shown
    in full, larger ones by shape and norm."""
    t = Trace(model=model, names=names, full_values=full_values)
    with _state.watching(t):
        yield t


class Trace(Watcher):
    """The recorded backward steps (see `trace`)."""

    def __init__(self, model=None, names=None, full_values=16):
        self.steps = []
        self.full_values = full_values
        self._labels = {}
        self._keep = []  # labelled tensors stay alive, so their ids stay unique
        self._contributions = {}
        self._counts = {"t": 0, "x": 0}
        if model is not None:
            for name, p in model.named_parameters():
                self._name(p, name)
        for tensor, name in (names or {}).items():
            self._name(tensor, name)

    def _name(self, tensor, name):
        self._labels[id(tensor)] = name
        self._keep.append(tensor)

    def label(self, tensor):
        """The name shown for a tensor: its parameter name, or t1, t2 ... (op results) and
        x1, x2 ... (other leaves) in the order backward meets them."""
        key = id(tensor)
        if key not in self._labels:
            kind = "t" if tensor._op is not None else "x"
            self._counts[kind] += 1
            self._name(tensor, f"{kind}{self._counts[kind]}")
        return self._labels[key]

    # ------------------------------------------------------------ hooks called by backward

    def _arrivals(self, node, g):
        contributions = self._contributions.pop(id(node), None)
        if contributions is None:  # the root: the gradient backward started from
            return [{"from": None, "grad": np.array(g)}]
        return contributions

    def step(self, node, g, input_grads):
        index = len(self.steps) + 1
        record = {"index": index, "kind": "op", "node": self.label(node), "op": node._op.kind(),
                  "rule": node._op.rule, "shape": node.shape, "grad": np.array(g),
                  "contributions": self._arrivals(node, g), "inputs": []}
        for parent, pg in zip(node._parents, input_grads):
            sends = pg is not None and parent.requires_grad
            record["inputs"].append({"node": self.label(parent), "shape": parent.shape,
                                     "grad": np.array(pg) if sends else None})
            if sends:
                self._contributions.setdefault(id(parent), []).append(
                    {"from": index, "grad": np.array(pg)})
        self.steps.append(record)

    def leaf(self, node, g):
        before = None if node.grad is None else node.grad._data.copy()
        self.steps.append({
            "index": len(self.steps) + 1, "kind": "leaf", "node": self.label(node),
            "op": "accumulate", "rule": "leaf.grad += g", "shape": node.shape,
            "grad": np.array(g), "contributions": self._arrivals(node, g),
            "grad_before": before, "grad_after": np.array(g) if before is None else before + g,
        })

    # ------------------------------------------------------------ reading

    def show(self, array):
        if array is None:
            return "none"
        array = np.asarray(array)
        if array.size <= self.full_values:
            text = np.array2string(array, precision=6, separator=", ", suppress_small=False)
            return " ".join(text.split())
        norm = float(np.sqrt(np.sum(np.square(array, dtype=np.float64))))
        return f"<shape {array.shape}, norm {norm:.6g}>"

    def __str__(self):
        lines = [f"backward trace: {len(self.steps)} steps"]
        for s in self.steps:
            if s["kind"] == "leaf":
                lines.append(f"#{s['index']:<3} {s['node']} {tuple(s['shape'])}: leaf, "
                             f"{s['rule']}")
            else:
                inputs = ", ".join(i["node"] for i in s["inputs"])
                lines.append(f"#{s['index']:<3} {s['node']} = {s['op']}({inputs}) "
                             f"{tuple(s['shape'])}")
                lines.append(f"     rule: {s['rule']}")
            if len(s["contributions"]) > 1:
                for c in s["contributions"]:
                    lines.append(f"     + from #{c['from']}: {self.show(c['grad'])}")
                lines.append(f"     = g (sum of {len(s['contributions'])} uses): "
                             f"{self.show(s['grad'])}")
            else:
                lines.append(f"     g = {self.show(s['grad'])}")
            if s["kind"] == "leaf":
                lines.append(f"     {s['node']}.grad: {self.show(s['grad_before'])} -> "
                             f"{self.show(s['grad_after'])}")
            for i in s.get("inputs", ()):
                if i["grad"] is not None:
                    lines.append(f"     -> d{i['node']} = {self.show(i['grad'])}")
        return "\n".join(lines)

    def __repr__(self):
        return f"<Trace of {len(self.steps)} backward steps>"
