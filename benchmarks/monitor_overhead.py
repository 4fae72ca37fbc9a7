"""What the symmetry monitor costs: one training step of an MNIST-size MLP (784-256-128-10,
ReLU, float32, batch 64, cross-entropy, SGD with momentum) with and without a SymmetryMonitor
attached, measured in the same run, the configurations alternating in rounds. The monitor's
step hook records every step: the tied groups of each layer, gradient status, splits and their
autopsies (the op recorder runs in steps that begin with a group of two or more units), and the
health diagnostics (gradient norms, update ratios, activation health) at every 100th step by
default; health_every=1 measures them at every step, health=False never. Not a test: prints the
fastest and the median step of each and their ratios to the unmonitored step (the target for
the default monitor on the random initialisation: a ratio of at most 1.10), the ratio of the
means (which spreads the steps that measure the health diagnostics over all) and the paired
median: the median over rounds of each round's ratio to the unmonitored round beside it, which
cancels the machine's slow drifts (the figure the target is read from), with the load average.

--init random (default): PyTorch's initialisation, every unit of a layer distinct. --init
constant: every weight of a layer one constant (1/fan_in) and every bias 0, so each hidden layer
is one group of tied units from start to end (and the output layer's units split at step 1):
the monitor then compares every tied group and records every op of every step.

    python benchmarks/monitor_overhead.py [--init constant] [--backend numpy] [--rounds 7]
                                          [--steps 30]
"""

import argparse
import os
import time

import numpy as np

import cygrad
from cygrad import nn, optim
from cygrad.symmetry import SymmetryMonitor

CONFIGS = {"without": None, "with monitor": {}, "health_every=1": {"health_every": 1},
           "health=False": {"health": False}}


def setup(monitored, seed=0, init="random"):
    cygrad.manual_seed(seed)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                          nn.Linear(128, 10))
    if init == "constant":
        for layer in model:
            if isinstance(layer, nn.Linear):
                nn.init.constant_(layer.weight, 1.0 / layer.in_features)
                nn.init.constant_(layer.bias, 0.0)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    monitor = None
    if monitored is not None:
        monitor = SymmetryMonitor(model, **monitored)
        monitor.attach(opt)
    rng = np.random.default_rng(seed)
    x = cygrad.tensor(rng.standard_normal((64, 784)).astype(np.float32))
    y = cygrad.tensor(rng.integers(0, 10, 64))
    return model, opt, monitor, x, y


def steps(model, opt, x, y, count):
    """Seconds per step over `count` steps."""
    start = time.perf_counter()
    for _ in range(count):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.perf_counter() - start) / count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", choices=("random", "constant"), default="random")
    parser.add_argument("--backend", default="cython")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args(argv)
    cygrad.backend.use(args.backend)
    runs = {name: setup(config, init=args.init) for name, config in CONFIGS.items()}
    times = {name: [] for name in CONFIGS}
    for model, opt, _, x, y in runs.values():
        steps(model, opt, x, y, 3)  # warm up
    names = list(CONFIGS)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            model, opt, _, x, y = runs[name]
            times[name].append(steps(model, opt, x, y, args.steps))
    for name in names[1:]:  # each monitor recorded every step
        assert len(runs[name][2].history) == 1 + 3 + args.rounds * args.steps
    load = os.getloadavg()
    print(f"MNIST-size MLP step (784-256-128-10 ReLU, float32, batch 64, SGD momentum), "
          f"{args.init} init, {args.backend} backend, {args.rounds} rounds of {args.steps} "
          "steps")
    base = times["without"]
    for name in names:
        t = np.array(times[name]) * 1e3
        ratio = "" if name == "without" else (
            f"; ratio fastest {min(times[name]) / min(base):.3f}, median "
            f"{np.median(times[name]) / np.median(base):.3f}, mean "
            f"{np.mean(times[name]) / np.mean(base):.3f}, paired median "
            f"{np.median(np.array(times[name]) / np.array(base)):.3f}"
            + (" (target <= 1.10)" if name == "with monitor" else ""))
        print(f"  {name:>14}: fastest {t.min():.3f} ms, median {np.median(t):.3f} ms{ratio}")
    print(f"  load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
