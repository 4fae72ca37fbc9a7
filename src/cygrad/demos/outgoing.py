"""S4. Identical incoming weights, different outgoing weights.

Unit j of the first hidden layer gets a copy of unit i's incoming row and bias, so both compute
the same activation on every input. Their updates are (error at the unit) x (input), and the
error at unit i is the next layer's error weighted by column i of the next weight: if columns i
and j are equal too, the two units are tied and stay tied forever (case A); if they differ, the
errors differ and the units separate at the first step (case B).
"""

import numpy as np

from .. import data, nn, optim, tensor
from ..symmetry import SymmetryMonitor
from . import Result, every, mlp, table

CAUSE = "outgoing weights differed before the step"


def unit_gap(model, i, j):
    """max |row_i - row_j| over incoming weights and bias of the first layer, and
    max |column_i - column_j| of the next layer (in float64)."""
    first, second = model[0], model[2]
    rows = np.concatenate([first.weight._data, first.bias._data[:, None]], axis=1)
    rows = rows.astype(np.float64)
    cols = second.weight._data.astype(np.float64)
    return float(np.abs(rows[i] - rows[j]).max()), float(np.abs(cols[:, i] - cols[:, j]).max())


def train(model, X, y, steps, i, j, lr=0.2):
    """Full-batch SGD with momentum on cross-entropy; the monitor and the gaps at every step."""
    monitor = SymmetryMonitor(model)
    opt = monitor.attach(optim.SGD(model.parameters(), lr=lr, momentum=0.9))
    x, gaps = tensor(X), [unit_gap(model, i, j)]
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        gaps.append(unit_gap(model, i, j))
    return monitor, gaps


def run(options):
    steps = 100 if options.steps is None else options.steps
    width = 16 if options.width is None else options.width
    if width < 3:
        raise ValueError(f"the outgoing demo needs a width of at least 3, got {width}")
    dtype, i, j = options.dtype, 0, 1
    sizes = [2, width, width, 2]
    result = Result("S4", "Identical incoming weights, different outgoing weights",
                    f"in a randomly initialised 2-{width}-{width}-2 tanh MLP, copy unit {i}'s "
                    f"incoming row and bias onto unit {j} of the first hidden layer. (A) If their "
                    "outgoing columns in the next layer are equal too, the two units stay tied "
                    "forever while every other unit evolves freely. (B) If the outgoing columns "
                    "differ, they get different updates at step 1 and separate.")
    X, y = data.spirals(200, noise=0.1, seed=options.seed, dtype=dtype)
    base = mlp(sizes, dtype=dtype)
    runs = {}
    for case in ("A", "B"):
        model = mlp(sizes, dtype=dtype)
        model.load_state_dict(base.state_dict())
        model[0].weight._data[j] = model[0].weight._data[i]
        model[0].bias._data[j] = model[0].bias._data[i]
        if case == "A":
            model[2].weight._data[:, j] = model[2].weight._data[:, i]
        runs[case] = (model, *train(model, X, y, steps, i, j))

    layer = runs["A"][1].layers[0][0]
    rows = []
    for step in every(steps):
        row = [step]
        for case in ("A", "B"):
            monitor, gaps = runs[case][1], runs[case][2]
            row += [gaps[step][0], gaps[step][1], monitor.widths(layer)[step]]
        rows.append(row)
    result.add(f"Units {i} and {j} of the first hidden layer (spirals, 200 points, SGD lr 0.2 "
               f"momentum 0.9, {dtype}); row = incoming weights and bias, col = outgoing "
               f"column; width = distinct units of the layer (of {width}):",
               table(["step", "A: max|row i - row j|", "max|col i - col j|", "width",
                      "B: max|row i - row j|", "max|col i - col j|", "width"], rows,
                     [None, ".3g", ".3g", None, ".3g", ".3g", None]))

    a_monitor, a_gaps = runs["A"][1], runs["A"][2]
    a_model = runs["A"][0]
    n = f"every one of {steps} steps"
    result.verdict(f"A: units {i} and {j} stay tied (rows, biases and outgoing columns equal) at "
                   f"{n}", all(g == (0.0, 0.0) for g in a_gaps),
                   "largest gaps: rows {:.3g}, columns {:.3g}".format(
                       *np.max(np.array(a_gaps), axis=0)))
    others = [u for u in range(width) if u not in (i, j)]
    moved = base[0].weight._data[others] != a_model[0].weight._data[others]
    result.verdict(f"A: the layer keeps exactly {width - 1} distinct units at {n}",
                   all(w == width - 1 for w in a_monitor.widths(layer)))
    if steps:
        result.verdict("A: every other unit evolves (its row changed)",
                       bool(moved.any(axis=1).all()),
                       f"{int(moved.any(axis=1).sum())} of {len(others)} changed")
    b_monitor, b_gaps = runs["B"][1], runs["B"][2]
    if steps:
        result.verdict(f"B: units {i} and {j} get different updates at step 1",
                       b_gaps[1][0] > 0, f"max |row i - row j| = {b_gaps[1][0]:.3g}")
        split = [s for s in b_monitor.splits if s["layer"] == layer and i in s["units"]]
        result.verdict(f"B: the monitor sees the split at step 1, cause: {CAUSE}",
                       bool(split) and split[0]["step"] == 1 and split[0]["cause"] == CAUSE,
                       f"step {split[0]['step']}, {split[0]['cause']}" if split else "no split")
    for case in ("A", "B"):
        monitor = runs[case][1]
        lines = ["  " + line.strip() for line in monitor.report().splitlines()
                 if "split" in line]
        result.add(f"Case {case}, the symmetry monitor's splits:", "\n".join(lines))
        if options.plot:
            result.figures += monitor.plot(f"{options.plot}/outgoing-{case}",
                                           title=f"case {case}")
    return result
