"""S6. What breaks symmetry: BLAS rounding, dropout, random initialisation.

(a) The same constant-initialised MLP trained on both backends. Theory keeps its units tied;
cython's exact kernels run every output element through the same operations and keep that
promise bitwise. OpenBLAS computes most of a product in blocks with vector kernels and the
leftover rows or columns with other code, so units at different positions can round
differently and separate (a 33-unit layer here splits 32/1). Whether that happens depends on
width, dtype and batch: it is measured, not assumed.
(b) Dropout gives tied units different masks. (c) Random weights leave no two units equal.
(d) When PyTorch is installed: the same network (weights copied bitwise through cygrad.interop)
trained by torch.optim.SGD, its tied groups computed by cygrad.symmetry.tied_groups_of on its
arrays after every step, and the first layer where torch's step and cygrad's first differ in
bits (first_divergence_torch).
"""

import numpy as np

from .. import backend, data, nn, optim, tensor
from ..symmetry import SymmetryMonitor, first_divergence_torch, tied_groups_of
from . import Result, every, set_constant, table

ROUNDING = "floating-point rounding (numpy backend)"
DROPOUT = "dropout was active"
SWEEP = (16, 32, 33, 64, 65, 100)


def learning_rate(width):
    """0.3, scaled down as 10/width for wider layers: the step a unit's input takes grows with
    the width of the layer below, and plain SGD at 0.3 diverges from width 64 on."""
    return min(0.3, 10.0 / width)


def make_mlp(width, dtype, dropout=0.0, constant=True):
    """2-w-w-1 tanh MLP, optionally with Dropout(p) after each hidden activation. Constant
    init: weights 0.3 in the first layer and 1/in_features after, biases 0.1."""
    layers = [nn.Linear(2, width, dtype=dtype), nn.Tanh()]
    layers += [nn.Dropout(dropout)] if dropout else []
    layers += [nn.Linear(width, width, dtype=dtype), nn.Tanh()]
    layers += [nn.Dropout(dropout)] if dropout else []
    model = nn.Sequential(*layers, nn.Linear(width, 1, dtype=dtype))
    if constant:
        set_constant(model, lambda m: 0.3 if m.in_features == 2 else 1.0 / m.in_features, 0.1)
    return model


def train(model, X, t, steps, on, lr):
    """Full-batch SGD on the squared error, on backend `on`; returns monitor and losses."""
    with backend.using(on):
        monitor = SymmetryMonitor(model)
        opt = monitor.attach(optim.SGD(model.parameters(), lr=lr))
        x, losses = tensor(X), []
        for _ in range(steps):
            loss = nn.functional.mse_loss(model(x), t)
            losses.append(loss.item())
            opt.zero_grad()
            loss.backward()
            opt.step()
    return monitor, losses


def train_torch(model, X, t, steps, lr):
    """The same network and steps in PyTorch; returns per step (widths, tied counts) of the
    hidden layers as strings like the monitor's, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    from ..interop import to_torch

    tm = to_torch(model)
    opt = torch.optim.SGD(tm.parameters(), lr=lr)
    x, target = torch.from_numpy(np.array(X)), torch.from_numpy(np.array(t.numpy()))
    linears = [m for m in tm if isinstance(m, torch.nn.Linear)]

    def measure():
        ws = [(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in linears]
        widths = [len(tied_groups_of(w, b)) for w, b in ws[:-1]]
        tied = [len(tied_groups_of(w, b, nxt[0])) for (w, b), nxt in zip(ws[:-1], ws[1:])]
        return "/".join(map(str, widths)), "/".join(map(str, tied)), max(tied)

    history = [measure()]
    for _ in range(steps):
        loss = torch.nn.functional.mse_loss(tm(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(measure())
    return torch.__version__, history


def hidden(monitor):
    return [n for n, _ in monitor.layers][:-1]


def widths(monitor, step):
    return "/".join(str(monitor.widths(n)[step]) for n in hidden(monitor))


def tied_counts(monitor, step):
    """Fully tied groups (incoming and outgoing weights equal) per hidden layer."""
    return "/".join(str(len(monitor.history[step]["layers"][n]["tied"]))
                    for n in hidden(monitor))


def first_difference(monitor):
    """First step at which some tied units differ in any weight (incoming or outgoing)."""
    return next((h["step"] for h in monitor.history
                 if any(len(h["layers"][n]["tied"]) > 1 for n in hidden(monitor))), None)


def _parts(into):
    sizes = sorted((len(p) for p in into), reverse=True)
    if sizes[0] == 1:
        return f"{len(sizes)} groups (every unit on its own)"
    return f"{len(sizes)} groups of " + "/".join(map(str, sizes[:6])) + (
        "/..." if len(sizes) > 6 else "")


def split_lines(monitor, limit=6):
    lines = [f"  step {s['step']}: layer {s['layer']}, {len(s['units'])} units split into "
             f"{_parts(s['into'])}: {s['cause']}\n    {s['autopsy']}" for s in monitor.splits]
    more = [f"  ... and {len(lines) - limit} more"] if len(lines) > limit else []
    return "\n".join(lines[:limit] + more) or "  none"


def run(options):
    dtype = options.dtype
    width = 33 if options.width is None else options.width
    steps = 20 if options.steps is None else options.steps
    batch = 32
    if width < 2:
        raise ValueError(f"the breakers demo needs a width of at least 2, got {width}")
    result = Result("S6", "What breaks symmetry",
                    "tied units stay tied under exact arithmetic; on a BLAS backend they may "
                    "separate by floating-point rounding alone. Dropout with p > 0 gives tied "
                    "units different masks: they separate at step 1. With random weights no two "
                    "units are equal from step 0.")
    X, y = data.spirals(batch, noise=0.1, seed=options.seed, dtype=dtype)
    t = tensor(y.reshape(-1, 1).astype(dtype))
    lr = learning_rate(width)
    runs = {
        "cython": train(make_mlp(width, dtype), X, t, steps, "cython", lr),
        "numpy": train(make_mlp(width, dtype), X, t, steps, "numpy", lr),
        "dropout": train(make_mlp(width, dtype, dropout=0.2), X, t, steps, "cython", lr),
        "random": train(make_mlp(width, dtype, constant=False), X, t, steps, options.backend,
                        lr),
    }
    c, npy, drop, rand = (runs[k][0] for k in ("cython", "numpy", "dropout", "random"))
    torch_run = train_torch(make_mlp(width, dtype), X, t, steps, lr)
    shown = sorted(set(every(steps)) | set(range(min(steps, 6) + 1)))
    rows = [[s, widths(c, s), tied_counts(c, s), widths(npy, s), tied_counts(npy, s),
             widths(drop, s), widths(rand, s)] for s in shown]
    torch_columns = []
    if torch_run is not None:
        torch_columns = ["torch: width", "tied"]
        for row, s in zip(rows, shown):
            row += list(torch_run[1][s][:2])
    result.add(f"2-{width}-{width}-1 tanh MLP, constant init (0.3, then 1/fan-in; biases 0.1), "
               f"{batch} spirals points, squared error, SGD lr {lr:.3g}, {dtype}. width = distinct "
               "units per hidden layer, tied = groups of units with equal incoming and outgoing "
               f"weights (1 = all {width} tied):",
               table(["step", "cython: width", "tied", "numpy: width", "tied",
                      "dropout 0.2 (cython): width", f"random init ({options.backend}): width"]
                     + torch_columns, rows))

    # (a) rounding
    n = f"every one of {steps} steps"
    broken = first_difference(c)
    result.verdict(f"cython: all {width} units of each hidden layer stay tied at {n}",
                   broken is None and c.splits == [],
                   "" if broken is None else f"tied units first differed at step {broken}")
    result.add("numpy backend, splits seen by the symmetry monitor:", split_lines(npy))
    first = first_difference(npy)
    rounding = [s for s in npy.splits if s["cause"] == ROUNDING]
    if first is None:
        finding = (f"  no split: OpenBLAS rounded all {width} units alike for {steps} steps at "
                   f"width {width}, {dtype}, batch {batch}; see the sweep below for other "
                   "widths.")
    else:
        finding = (f"  tied units first differed at step {first} on numpy, while cython kept "
                   "them tied" + (f"; first split caused by rounding at step "
                                  f"{rounding[0]['step']} (layer {rounding[0]['layer']})"
                                  if rounding else "") + ".")
    result.add("Finding:", finding)
    if torch_run is not None:
        version, history = torch_run
        first_torch = next((s for s, h in enumerate(history) if h[2] > 1), None)
        where = first_divergence_torch(make_mlp(width, dtype), X, t, lr=lr)
        result.add(f"PyTorch {version} (the same network and SGD steps, tied groups by "
                   "tied_groups_of on its arrays):",
                   ("  tied units stayed tied in torch for every step" if first_torch is None
                    else f"  tied units first differed at step {first_torch} in torch, while "
                    "cython kept them tied")
                   + "\n  first bits where torch's step 1 and cygrad's differ: "
                   + ("none" if where is None else where.text))
    losses = np.array(runs["cython"][1]) - np.array(runs["numpy"][1])
    if steps:
        result.add("Loss, cython minus numpy:", f"  max |difference| over {steps} steps: "
                   f"{np.abs(losses).max():.3g} (the two backends agree to rounding)")

    # where does OpenBLAS split? a sweep over widths, same dtype and batch
    sweep = []
    for w in SWEEP:
        monitors = {on: train(make_mlp(w, dtype), X, t, steps, on, learning_rate(w))
                    for on in ("cython", "numpy")}
        m, loss = monitors["numpy"]
        first_w = first_difference(m)
        rounding_w = next((s["step"] for s in m.splits if s["cause"] == ROUNDING), None)
        finite = bool(np.isfinite(loss).all())
        exact = first_difference(monitors["cython"][0]) is None
        sweep.append([w, f"{learning_rate(w):.3g}", "yes" if exact else "NO",
                      "never" if first_w is None else first_w,
                      "never" if rounding_w is None else rounding_w, widths(m, steps),
                      "yes" if finite else "no (diverged)"])
        if torch_run is not None:
            history = train_torch(make_mlp(w, dtype), X, t, steps, learning_rate(w))[1]
            first_t = next((s for s, h in enumerate(history) if h[2] > 1), None)
            sweep[-1].append("never" if first_t is None else first_t)
    result.add(f"Where OpenBLAS rounding separates units ({dtype}, batch {batch}, {steps} "
               "steps; 'first differ' = first step with unequal weights among tied units):",
               table(["width", "lr", "cython tied throughout", "numpy: first differ",
                      "first rounding split", "final width", "loss finite"]
                     + (["torch: first differ"] if torch_run is not None else []), sweep))
    split = [row[0] for row in sweep if row[3] != "never"]
    result.add("Sweep finding:", f"  on numpy, tied units came apart at widths {split}"
               if split else f"  on numpy, no width of the sweep split in {steps} steps")
    result.verdict(f"cython keeps every unit tied at every width of the sweep {SWEEP}",
                   all(row[2] == "yes" for row in sweep))

    # (b) dropout, (c) random init
    first_split = drop.splits[0] if drop.splits else None
    result.add("Dropout run, splits seen by the symmetry monitor:", split_lines(drop))
    if steps:
        result.verdict("dropout p = 0.2 (cython): tied units separate at step 1, cause: "
                       + DROPOUT, first_split is not None and first_split["step"] == 1
                       and first_split["cause"] == DROPOUT,
                       "no split" if first_split is None else
                       f"first split at step {first_split['step']}: {first_split['cause']}")
    result.verdict(f"random init: all {width} units of each hidden layer distinct at step 0 and "
                   f"at {n}", all(min(rand.widths(name)) == width for name in hidden(rand)))
    if options.plot:
        for label in ("cython", "numpy", "dropout"):
            result.figures += runs[label][0].plot(f"{options.plot}/breakers-{label}",
                                                  title=f"constant init, {label}")
    return result
