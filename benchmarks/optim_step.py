"""Time one optimiser step on MNIST-size parameters (784-256-128-10 MLP, float32, 235,146
numbers in six arrays) and on a tiny MLP's (2-16-16-1): the optimiser alone, gradients already
in place. Not a test: prints the fastest and the median of several repeats, in microseconds,
for each optimiser configuration (the fastest is the least disturbed by other work).

    python benchmarks/optim_step.py [--backend numpy] [--repeat 7] [--number 200]
"""

import argparse
import os
import time

import numpy as np

import cygrad
from cygrad import optim

MNIST = [(256, 784), (256,), (128, 256), (128,), (10, 128), (10,)]
TINY = [(16, 2), (16,), (16, 16), (16,), (1, 16), (1,)]

CONFIGS = [
    ("SGD", dict(lr=0.01)),
    ("SGD", dict(lr=0.01, momentum=0.9)),
    ("SGD", dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)),
    ("Adam", dict(lr=1e-3)),
    ("AdamW", dict(lr=1e-3)),
    ("Adam", dict(lr=1e-3, amsgrad=True)),
    ("RMSprop", dict(lr=1e-3)),
    ("RMSprop", dict(lr=1e-3, momentum=0.9, centered=True)),
    ("Adagrad", dict(lr=1e-2)),
    ("Adadelta", dict(lr=1.0)),
]


def time_config(name, kwargs, repeat, number, shapes):
    cls = getattr(optim, name, None)
    if cls is None:
        return None
    try:
        rng = np.random.default_rng(0)
        params = [cygrad.tensor(rng.standard_normal(s).astype(np.float32) * 0.01,
                                requires_grad=True) for s in shapes]
        opt = cls(params, **kwargs)
    except TypeError:  # an option this version does not have
        return None
    for p in params:
        g = rng.standard_normal(p.shape).astype(np.float32) * 1e-3
        try:  # the gradient's native type: an array on older cygrad, a Tensor on newer
            p.grad = g
        except TypeError:
            p.grad = cygrad.tensor(g)
    opt.step()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            opt.step()
        times.append((time.perf_counter() - start) / number)
    return min(times) * 1e6, float(np.median(times)) * 1e6


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="cython")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=200)
    args = parser.parse_args()
    cygrad.backend.use(args.backend)
    print(f"backend {args.backend}, load average {os.getloadavg()[0]:.2f}")
    for size, shapes, number in (("MNIST", MNIST, args.number), ("tiny", TINY, args.number * 10)):
        print(f"{size}-size parameters: fastest / median of {args.repeat} x {number} steps")
        for name, kwargs in CONFIGS:
            us = time_config(name, kwargs, args.repeat, number, shapes)
            label = f"{name}({', '.join(f'{k}={v}' for k, v in kwargs.items())})"
            text = "n/a" if us is None else f"{us[0]:8.1f} / {us[1]:8.1f} us"
            print(f"  {label:62s} {text}")


if __name__ == "__main__":
    main()
