"""Speed of the default (portable) build against a native one on this machine, and their bits.

    python scripts/compare_levels.py [--reps 7] [--no-build-isolation]

Builds two wheels of this tree (the default level, and CYGRAD_NATIVE=1), unpacks each into a
temporary directory and times, in child processes that alternate between the two builds (a
noisy neighbour then slows both alike), on one thread and in CPU time: the exact gemm on
square float32 and float64 products, and a training step of three models (benchmarks/run.py's
tiny, mnist and conv workloads). Prints medians over the repetitions, native / default ratios
and each build's training digest (scripts/digest.py): on a machine with FMA they must be equal.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

HERE = pathlib.Path(__file__).resolve()
ROOT = HERE.parents[1]
LEVELS = {"default": {}, "native": {"CYGRAD_NATIVE": "1"}}


def best_of(fn, inner, rounds=5):
    """Fastest mean CPU time of `inner` calls, over `rounds` rounds (µs). CPU time, not wall
    time: on a shared machine a descheduled process does not count its wait."""
    fn()
    best = float("inf")
    for _ in range(rounds):
        t0 = time.process_time()
        for _ in range(inner):
            fn()
        best = min(best, (time.process_time() - t0) / inner)
    return best * 1e6


def child():
    """Time this process's cygrad (one thread); print the results as JSON."""
    import numpy as np

    import cygrad
    from cygrad import nn, optim
    from cygrad.nn import functional as F

    cygrad.set_num_threads(1)
    out = {}
    rng = np.random.default_rng(0)
    for dtype in ("float32", "float64"):
        for n in (256, 512):
            a, b = (rng.standard_normal((n, n)).astype(dtype) for _ in range(2))
            us = best_of(lambda a=a, b=b: cygrad.backend.gemm(a, b), max(1, 2_000_000 // n**2))
            out[f"gemm {n}^3 {dtype} (GFLOP/s)"] = 2 * n**3 / us / 1e3

    def step_time(model, x, target, loss_fn, inner):
        opt = optim.SGD(model.parameters(), lr=0.01)

        def step():
            loss = loss_fn(model(x), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return best_of(step, inner)

    cygrad.manual_seed(0)
    tiny = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(),
                         nn.Linear(16, 1))
    x = cygrad.tensor(rng.standard_normal((32, 2)).astype("float32"))
    t = cygrad.tensor(rng.standard_normal((32, 1)).astype("float32"))
    out["tiny step (us)"] = step_time(tiny, x, t, F.mse_loss, 400)
    mnist = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                          nn.Linear(128, 10))
    x = cygrad.tensor(rng.standard_normal((64, 784)).astype("float32"))
    y = rng.integers(0, 10, 64)
    out["mnist step (us)"] = step_time(mnist, x, y, F.cross_entropy, 40)
    conv = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 26 * 26, 10))
    x = cygrad.tensor(rng.standard_normal((8, 1, 28, 28)).astype("float32"))
    y = rng.integers(0, 10, 8)
    out["conv step (us)"] = step_time(conv, x, y, F.cross_entropy, 40)
    build = cygrad.show_config(mode="dicts")["build"]
    out["build"] = f"{build['level']} {' '.join(build['level_flags'])}, FMA {build['fma']}, " \
                   f"{build['vector_bits']}-bit vectors"
    print(json.dumps(out))


def build(level, into, isolation):
    env = dict(os.environ, **LEVELS[level])
    wheels = into / "wheel"
    cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels),
           str(ROOT)] + ([] if isolation else ["--no-build-isolation"])
    subprocess.run(cmd, env=env, check=True)
    site = into / "site"
    with zipfile.ZipFile(next(wheels.glob("cygrad-*.whl"))) as whl:
        whl.extractall(site)
    return site


def run_in(site, args):
    env = dict(os.environ, PYTHONPATH=str(site))
    out = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                         check=True, cwd=site)
    return out.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--no-build-isolation", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child()
    with tempfile.TemporaryDirectory() as tmp:
        sites = {level: build(level, pathlib.Path(tmp) / level, not args.no_build_isolation)
                 for level in LEVELS}
        runs = {level: [] for level in LEVELS}
        for _ in range(args.reps):
            for level, site in sites.items():
                runs[level].append(json.loads(run_in(site, [str(HERE), "--child"])))
        digests = {level: run_in(site, [str(ROOT / "scripts" / "digest.py")])
                   for level, site in sites.items()}
    print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} "
          f"{os.getloadavg()[2]:.1f}; medians of {args.reps} alternating runs, one thread")
    for level in LEVELS:
        print(f"  {level}: {runs[level][0]['build']}")
    print(f"{'':28s} {'default':>10s} {'native':>10s} {'native/default':>15s}  "
          "(range of the paired runs' ratios)")
    for key in runs["default"][0]:
        if key == "build":
            continue
        d, n = (statistics.median(r[key] for r in runs[level]) for level in LEVELS)
        pairs = sorted(b[key] / a[key] for a, b in zip(runs["default"], runs["native"]))
        print(f"{key:28s} {d:10.1f} {n:10.1f} {n / d:15.3f}  ({pairs[0]:.2f}-{pairs[-1]:.2f})")
    for level, text in digests.items():
        print(f"digest, {level} build:\n{text.rstrip()}")
    print("same training digest:", "yes" if digests["default"] == digests["native"] else "NO")


if __name__ == "__main__":
    sys.exit(main())
