"""S5. Nearly identical conv filters.

Filter j starts as filter i plus noise of size eps (same bias). Whether the two filters drift
apart depends on what the next layer does with their feature maps: with its own random weights
for each map, the filters get different gradients from the first step whatever eps is; with
equal weights for both maps (equal columns), only the eps difference itself can push them
apart, and at eps = 0 they are tied and stay tied, as in S4.
"""

import os

import numpy as np

from .. import data, nn, optim, tensor
from ..symmetry import SymmetryMonitor
from . import Result, every, table

EPSILONS = (1e-3, 1e-5, 1e-8, 0.0)
SIZE = 8  # image side; a 3x3 filter gives 6x6 feature maps
MIN_STEPS = 20  # fewer cannot show separation reliably (eps = 1e-3 starts 2e-3 apart)


def conv_net(channels, dtype):
    return nn.Sequential(nn.Conv2d(1, channels, 3, dtype=dtype), nn.ReLU(), nn.Flatten(),
                         nn.Linear(channels * (SIZE - 2) ** 2, 3, dtype=dtype))


def train(model, X, y, steps, i, j, lr=0.05):
    """Full-batch SGD with momentum on cross-entropy; returns the monitor watching (i, j)."""
    monitor = SymmetryMonitor(model, watch=[("0", i, j)])
    opt = monitor.attach(optim.SGD(model.parameters(), lr=lr, momentum=0.9))
    x = tensor(X)
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return monitor


def tied_at_every_step(monitor, i, j):
    """Were filters i and j fully tied (weights, bias and outgoing columns) at every step?"""
    return all(any(i in g and j in g for g in h["layers"]["0"]["tied"]) for h in monitor.history)


def run(options):
    steps = 60 if options.steps is None else options.steps
    channels = 4 if options.width is None else options.width
    if channels < 2:
        raise ValueError(f"the filters demo needs at least 2 filters (--width), got {channels}")
    dtype, i, j = options.dtype, 0, 1
    result = Result("S5", "Nearly identical conv filters",
                    f"in Conv2d(1, {channels}, 3) -> ReLU -> Flatten -> Linear(., 3), let filter "
                    f"{j} start as filter {i} plus noise of size eps. With the next layer random "
                    "the two filters separate; with the next layer's columns for both filters "
                    "equal, they stay close, and at eps = 0 they stay exactly tied.")
    X, y = data.bars_and_crosses(90, size=SIZE, seed=options.seed, dtype=dtype)
    base = conv_net(channels, dtype)
    noise = np.random.default_rng(options.seed).standard_normal(base[0].weight.shape[1:])
    k = (SIZE - 2) ** 2  # columns of the Linear layer that read one feature map
    runs = {}
    for case in ("random", "equal"):
        for eps in EPSILONS:
            model = conv_net(channels, dtype)
            model.load_state_dict(base.state_dict())
            w = model[0].weight._data
            w[j] = w[i].astype(np.float64) + eps * noise  # rounded once to dtype
            model[0].bias._data[j] = model[0].bias._data[i]
            if case == "equal":
                out = model[3].weight._data
                out[:, j * k:(j + 1) * k] = out[:, i * k:(i + 1) * k]
            runs[case, eps] = train(model, X, y, steps, i, j)

    def distances(case, eps):
        return [h["watch"][("0", i, j)] for h in runs[case, eps].history]

    rows = [[step] + [distances(case, eps)[step] for case in ("random", "equal")
                      for eps in EPSILONS] for step in every(steps)]
    header = ["step"] + [f"{label}: {eps:g}" if eps == EPSILONS[0] else f"{eps:g}"
                         for label in ("random next", "equal columns") for eps in EPSILONS]
    result.add(f"||W{i} - W{j}|| over training, per eps (bars and crosses, 90 images "
               f"{SIZE}x{SIZE}, SGD lr 0.05 momentum 0.9, {dtype}); left: next layer random, "
               f"right: next layer's columns for filters {i} and {j} equal:",
               table(header, rows, [None] + [".2e"] * (2 * len(EPSILONS))))

    if steps < MIN_STEPS:
        result.add("Separation:", f"  {steps} steps are too few to judge whether the filters "
                   f"separate; run {MIN_STEPS} or more.")
    else:
        final = {key: distances(*key)[-1] for key in runs}
        random_final = [final["random", eps] for eps in EPSILONS]
        spread = max(random_final) / min(random_final)
        result.verdict("next layer random: the filters separate, to about the same distance "
                       "whatever eps was (final distances within a factor 2)",
                       min(random_final) > 0 and spread <= 2,
                       f"final {min(random_final):.3g} to {max(random_final):.3g}", exact=False)
        closer = [final["equal", eps] < 0.1 * final["random", eps] for eps in EPSILONS]
        result.verdict("equal columns: every pair ends at least 10x closer than with the next "
                       "layer random", all(closer),
                       ", ".join(f"eps {eps:g}: {final['equal', eps]:.2e}" for eps in EPSILONS),
                       exact=False)
    result.verdict(f"equal columns, eps = 0: filters {i} and {j} stay exactly tied (weights, "
                   f"bias, outgoing columns) at every one of {steps} steps",
                   tied_at_every_step(runs["equal", 0.0], i, j))
    if options.plot:
        result.figures.append(plot(distances, steps, f"{options.plot}/filters", i, j))
    return result


def plot(distances, steps, path, i, j):
    from matplotlib.figure import Figure  # not pyplot: leave the user's backend alone

    os.makedirs(path, exist_ok=True)
    fig = Figure(figsize=(10, 3.8))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, case, title in zip(axes, ("random", "equal"),
                               ("next layer random", "next layer's columns equal")):
        for eps in EPSILONS:
            ax.plot(range(steps + 1), distances(case, eps), label=f"eps = {eps:g}")
        ax.set(xlabel="step", title=title, yscale="symlog")
        ax.set_yscale("symlog", linthresh=1e-9)
    axes[0].set_ylabel(f"||W{i} - W{j}||")
    axes[1].legend(fontsize="small")
    fig.tight_layout()
    name = os.path.join(path, "filter_distance.png")
    fig.savefig(name, dpi=100)
    return name
