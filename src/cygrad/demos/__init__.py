"""The symmetry scenarios S1-S11 (../docs/symmetry.md) as runnable demos.

Each demo is a function `run(options) -> Result` registered under a short name. A Result prints
the claim, the evidence (tables of weights or widths over steps) and verdicts computed from the
run itself — never a canned answer: on the numpy backend a verdict can honestly come out "no".

    python -m cygrad demo --list
    python -m cygrad demo constant-init --steps 20
"""

import importlib
import time
from dataclasses import dataclass, field

import numpy as np

from .. import backend, nn
from ..random import manual_seed

# name -> (scenario, module, one-line summary); modules are imported on first use
SCENARIOS = {
    "constant-init": ("S1", "constant_init", "constant weights: every layer acts as one unit"),
    "zero-init": ("S2", "zero_init", "all-zero weights: only the output bias learns"),
    "wavefront": ("S3", "wavefront", "zero weights, random biases: the gradient moves back "
                                     "one layer per step"),
    "outgoing": ("S4", "outgoing", "identical incoming weights: outgoing weights decide"),
    "filters": ("S5", "filters", "nearly identical conv filters over training"),
    "breakers": ("S6", "breakers", "what breaks symmetry: dropout, random init, BLAS rounding"),
    "tying": ("S7", "tying", "one parameter used twice: its gradient is the sum of its uses"),
    "spirals": ("S8", "spirals", "why a layer learns different features (the main demo)"),
    "heads": ("S9", "heads", "attention heads: tied heads stay tied; dropout splits them"),
    "norms": ("S10", "norms", "LayerNorm, BatchNorm, embeddings, residuals keep ties"),
    "nearly": ("S11", "nearly", "nearly identical units: does their distance grow or shrink?"),
}
DEFAULT = "spirals"


@dataclass
class Options:
    """What the command line can set; None means the demo's own default."""

    backend: str = "cython"
    dtype: str = "float32"
    steps: int | None = None
    width: int | None = None
    plot: str | None = None
    seed: int = 0


@dataclass
class Verdict:
    claim: str
    holds: bool
    detail: str = ""
    exact: bool = True  # exact claims are checked bitwise; observed ones are measurements

    def render(self):
        answer = ("yes, bitwise" if self.exact else "yes") if self.holds else "NO"
        return f"  {self.claim}: {answer}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class Result:
    scenario: str
    title: str
    claim: str
    sections: list = field(default_factory=list)  # (heading, text)
    verdicts: list = field(default_factory=list)
    figures: list = field(default_factory=list)
    seconds: float = 0.0

    def add(self, heading, text):
        self.sections.append((heading, text))

    def verdict(self, claim, holds, detail="", exact=True):
        self.verdicts.append(Verdict(claim, bool(holds), detail, exact))

    @property
    def ok(self):
        return all(v.holds for v in self.verdicts)

    def render(self):
        lines = [f"{self.scenario}. {self.title}", "", "Claim: " + self.claim, ""]
        for heading, text in self.sections:
            lines += [heading, text, ""]
        lines.append("Verdict:")
        lines += [v.render() for v in self.verdicts]
        for path in self.figures:
            lines.append(f"figure: {path}")
        lines.append(f"(ran in {self.seconds:.1f} s)")
        return "\n".join(lines)


def run(name, options=None):
    """Run the demo called `name` with `options`; returns its Result."""
    options = options or Options()
    scenario, module_name, _ = SCENARIOS[name]
    module = importlib.import_module(f"{__name__}.{module_name}")
    manual_seed(options.seed)
    start = time.perf_counter()
    with backend.using(options.backend):
        result = module.run(options)
    result.seconds = time.perf_counter() - start
    return result


# ---------------------------------------------------------------- shared helpers for demos

def table(header, rows, formats=None):
    """Right-aligned text columns. formats: one format spec per column (or None)."""
    formats = formats or [None] * len(header)
    cells = [list(map(str, header))] + [
        [format(v, f) if f and not isinstance(v, str) else str(v) for v, f in zip(row, formats)]
        for row in rows]
    widths = [max(len(r[c]) for r in cells) for c in range(len(header))]
    return "\n".join("  " + "  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells)


def mlp(sizes, activation=nn.Tanh, bias=True, dtype="float32"):
    """Linear layers of the given sizes with `activation` between them (none after the last)."""
    layers = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out, bias=bias, dtype=dtype))
        if k < len(sizes) - 2 and activation is not None:
            layers.append(activation())
    return nn.Sequential(*layers)


def set_constant(model, weight, bias=0.0):
    """Every Linear weight to `weight` (a number, or a callable layer -> number), biases to
    `bias`: constant per layer, as in S1's generalisation."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.constant_(m.weight, weight(m) if callable(weight) else weight)
            if m.bias is not None:
                nn.init.constant_(m.bias, bias(m) if callable(bias) else bias)
    return model


def accuracy(logits, y):
    return float((np.asarray(logits._data).argmax(axis=1) == y).mean())


def every(steps, count=10):
    """About `count` evenly spaced steps from 0 to steps, always including the last."""
    stride = max(1, steps // count)
    return sorted(set(range(0, steps + 1, stride)) | {steps})
