"""Stress test: train one model from three threads while other threads toggle every mode.

    python scripts/stress_threads.py [--seconds 30]

Three trainer threads run forward, backward and optimiser steps on one shared MLP (hogwild, as
three torch threads would) and on models of their own; two more threads keep switching grad
mode (`no_grad`, `set_grad_enabled`), anomaly mode, the backend (`backend.using("numpy")`), the
kernel thread count and the default dtype, each in its own thread. Checked: no crash, no
exception, every parameter finite, and each trainer sees its own thread's modes (grad on, the
cython backend, float32 by default) at every step, whatever the togglers do. Prints one line of
counts and exits 1 on any failure.
"""

import argparse
import sys
import threading
import time

import numpy as np

import cygrad
from cygrad import nn, optim
from cygrad.nn import functional as F


def main(seconds):
    cygrad.manual_seed(0)
    shared = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 4))
    shared_opt = optim.SGD(shared.parameters(), lr=1e-3, momentum=0.9)
    stop = time.perf_counter() + seconds
    errors, steps, toggles = [], [0, 0, 0], [0, 0]

    def trainer(i):
        try:
            rng = np.random.default_rng(i)
            own = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
            own_opt = optim.Adam(own.parameters(), lr=1e-3)
            while time.perf_counter() < stop:
                x = cygrad.tensor(rng.standard_normal((16, 8)).astype(np.float32))
                y = cygrad.tensor(rng.integers(0, 4, 16))
                for model, opt in ((shared, shared_opt), (own, own_opt)):
                    if not cygrad.is_grad_enabled():
                        raise AssertionError(f"trainer {i}: grad mode off in this thread")
                    if cygrad.backend.current() != "cython":
                        raise AssertionError(f"trainer {i}: backend {cygrad.backend.current()}")
                    if cygrad.get_default_dtype() != cygrad.float32:
                        raise AssertionError(f"trainer {i}: default dtype changed")
                    loss = F.cross_entropy(model(x), y)
                    if not loss.requires_grad:
                        raise AssertionError(f"trainer {i}: the loss was not recorded")
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                steps[i] += 1
        except BaseException as e:  # noqa: BLE001 (reported below)
            errors.append(f"trainer {i}: {type(e).__name__}: {e}")

    def toggler(i):
        try:
            while time.perf_counter() < stop:
                with cygrad.no_grad(), cygrad.backend.using("numpy"):
                    cygrad.set_num_threads(1 + toggles[i] % 2)
                    cygrad.set_default_dtype(cygrad.float64)
                    with cygrad.autograd.set_detect_anomaly(True):
                        cygrad.set_grad_enabled(toggles[i] % 2 == 0)
                        time.sleep(0.0005)
                    cygrad.set_default_dtype(cygrad.float32)
                toggles[i] += 1
        except BaseException as e:  # noqa: BLE001
            errors.append(f"toggler {i}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=trainer, args=(i,)) for i in range(3)]
    threads += [threading.Thread(target=toggler, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    finite = all(np.isfinite(p.detach().numpy()).all() for p in shared.parameters())
    print(f"stress: {seconds} s, trainer steps {steps}, toggles {toggles}, "
          f"parameters finite {finite}, errors {len(errors)}")
    for e in errors[:10]:
        print("  " + e)
    return 0 if finite and not errors and min(steps) > 0 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    sys.exit(main(parser.parse_args().seconds))
