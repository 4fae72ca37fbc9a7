"""What the symmetry monitor costs: one training step of an MNIST-size MLP (784-256-128-10,
ReLU, float32, batch 64, cross-entropy, SGD with momentum) with and without a SymmetryMonitor
attached (its step hook records every step: tied groups of each layer, gradient status,
update ratios, and the op recorder of the split autopsy), measured in the same run, the two
alternating in rounds. Not a test: prints the fastest and the median step of each and their
ratio (the target: at most 1.10), with the load average.

    python benchmarks/monitor_overhead.py [--backend numpy] [--rounds 7] [--steps 30]
"""

import argparse
import os
import time

import numpy as np

import cygrad
from cygrad import nn, optim
from cygrad.symmetry import SymmetryMonitor


def setup(monitored, seed=0):
    cygrad.manual_seed(seed)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                          nn.Linear(128, 10))
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    monitor = None
    if monitored:
        monitor = SymmetryMonitor(model)
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
    parser.add_argument("--backend", default="cython")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args(argv)
    cygrad.backend.use(args.backend)
    runs = {False: setup(False), True: setup(True)}
    times = {False: [], True: []}
    for model, opt, _, x, y in runs.values():
        steps(model, opt, x, y, 3)  # warm up
    for r in range(args.rounds):
        order = (False, True) if r % 2 == 0 else (True, False)
        for monitored in order:
            model, opt, _, x, y = runs[monitored]
            times[monitored].append(steps(model, opt, x, y, args.steps))
    monitor = runs[True][2]
    assert len(monitor.history) == 1 + 3 + args.rounds * args.steps  # it recorded every step
    load = os.getloadavg()
    print(f"MNIST-size MLP step (784-256-128-10 ReLU, float32, batch 64, SGD momentum), "
          f"{args.backend} backend, {args.rounds} rounds of {args.steps} steps")
    for monitored in (False, True):
        t = np.array(times[monitored]) * 1e3
        print(f"  {'with monitor' if monitored else 'without':>12}: fastest {t.min():.3f} ms, "
              f"median {np.median(t):.3f} ms")
    fastest = min(times[True]) / min(times[False])
    median = float(np.median(times[True]) / np.median(times[False]))
    print(f"  ratio with/without: fastest {fastest:.3f}, median {median:.3f} (target <= 1.10)")
    print(f"  load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
