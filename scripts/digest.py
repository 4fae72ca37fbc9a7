"""The training digest: a sha256 of two small seeded models' parameters after a few training
steps, in float32 and in float64, on the exact (cython) backend.

    python scripts/digest.py            # this build's digests
    python scripts/digest.py --check    # compare them with the record (scripts/digest.json)
    python scripts/digest.py --update   # record this build's digests

The claim it checks (README, "Building"): every build whose multiply-add chains are fused (FMA)
gives the same digest, whatever the compiler (gcc, clang), the build level (the default
x86-64-v3, native, aarch64), OpenMP or not, the Python version or the thread count. Builds
without FMA (CYGRAD_PORTABLE=1 on x86-64) round each product and each sum apart: they share
another digest. The record holds one digest per kind; --check compares this build's kind.

What it depends on: cygrad's kernels, its generator (cygrad.manual_seed) and its initialisers,
and the summation order of its reductions. Any intended change to those changes the digest:
run --update on an FMA build and on a build without FMA (CYGRAD_PORTABLE=1), and commit
scripts/digest.json. The inputs come from numpy's PCG64 through exact arithmetic only (no sin,
exp or normal draws), so numpy's own SIMD paths cannot move them.
"""

import argparse
import contextlib
import hashlib
import importlib
import json
import pathlib
import sys

import numpy as np

import cygrad
from cygrad import nn, optim
from cygrad.nn import functional as F

RECORD = pathlib.Path(__file__).with_name("digest.json")
SEED = 2026
STEPS = 12


def inputs(shape, dtype, seed):
    """Uniform numbers in [-1, 1) from numpy's PCG64: the same bits on every platform."""
    return (np.random.Generator(np.random.PCG64(seed)).random(shape) * 2 - 1).astype(dtype)


def mlp_run(dtype):
    """8-32-32-4 MLP (tanh, sigmoid), cross-entropy, Adam: gemm in all three layouts, fused
    bias and activations, log-softmax, column sums, the Adam kernel."""
    cygrad.manual_seed(SEED)
    model = nn.Sequential(nn.Linear(8, 32, dtype=dtype), nn.Tanh(),
                          nn.Linear(32, 32, dtype=dtype), nn.Sigmoid(),
                          nn.Linear(32, 4, dtype=dtype))
    x = inputs((64, 8), dtype, SEED)
    y = (x[:, 0] > 0).astype(np.int64) * 2 + (x[:, 1] * x[:, 2] > 0)
    opt = optim.Adam(model.parameters(), lr=0.01)
    for _ in range(STEPS):
        loss = F.cross_entropy(model(cygrad.tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def conv_run(dtype):
    """Conv2d 1->4 3x3 (padding 1), ReLU, Linear, MSE, SGD with momentum: im2col/col2im,
    channel sums, relu, the SGD kernel."""
    cygrad.manual_seed(SEED + 1)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, dtype=dtype), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 8 * 8, 2, dtype=dtype))
    x = inputs((16, 1, 8, 8), dtype, SEED + 1)
    target = np.stack([x[:, 0, 2, 3] * x[:, 0, 5, 1], (x[:, 0, 4, 4] > 0) * 1.0], axis=1)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(STEPS):
        loss = F.mse_loss(model(cygrad.tensor(x)), cygrad.tensor(target.astype(dtype)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def digest(dtype):
    """sha256 over both models' parameters (name, shape, bytes) after training."""
    h = hashlib.sha256()
    for model in (mlp_run(dtype), conv_run(dtype)):
        for name, p in model.named_parameters():
            data = np.ascontiguousarray(p.detach().numpy())
            h.update(f"{name} {data.dtype} {data.shape}\n".encode())
            h.update(data.tobytes())
    return h.hexdigest()


def build_kind():
    """"fma" or "no-fma": which digest this build must give (its build record says)."""
    config = cygrad.show_config(mode="dicts")["build"]
    if config is None or config.get("fma") is None:
        sys.exit("digest: this cygrad has no build record (cygrad/_C/build_config.json); "
                 "build it with `pip install .`")
    return "fma" if config["fma"] else "no-fma"


# The kernels wake a second thread only for work of about 100 us, more than these models
# have: on two threads the digest lowers those thresholds (where they exist) to one element.
THRESHOLDS = {"cygrad.backend.cython_backend": ("_CHEAP", "_COSTLY"),
              "cygrad._C.elementwise": ("cheap_serial_below", "costly_serial_below"),
              "cygrad._C.reduce": ("serial_below",), "cygrad._C.gemm": ("serial_macs",)}


@contextlib.contextmanager
def parallel_everything():
    saved = []
    for module_name, names in THRESHOLDS.items():
        module = importlib.import_module(module_name)
        for name in names:
            if hasattr(module, name):
                saved.append((module, name, getattr(module, name)))
                setattr(module, name, 1)
    try:
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


def measure():
    """{dtype: digest}, after checking that 1 and 2 threads (every kernel's parallel path)
    give the same bits."""
    if "cython" not in cygrad.backend.available():
        sys.exit("digest: the compiled kernels are missing (see the warning above)")
    result = {}
    for dtype in ("float32", "float64"):
        cygrad.set_num_threads(1)
        by_threads = {1: digest(dtype)}
        cygrad.set_num_threads(2)
        with parallel_everything():
            by_threads[2] = digest(dtype)
        if by_threads[1] != by_threads[2]:
            sys.exit(f"digest: {dtype} differs between 1 and 2 threads: {by_threads}")
        result[dtype] = by_threads[1]
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the record")
    parser.add_argument("--update", action="store_true", help="record this build's digests")
    args = parser.parse_args(argv)
    kind, now = build_kind(), measure()
    for dtype, value in now.items():
        print(f"{kind} {dtype}: {value}")
    record = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    if args.update:
        record[kind] = now
        build = cygrad.show_config(mode="dicts")["build"]
        record.setdefault("recorded with", {})[kind] = (
            f"{build['compiler']}, level {build['level']}, Python {build['python']}, "
            f"numpy {np.__version__}, cygrad {cygrad.__version__}")
        RECORD.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        print(f"recorded in {RECORD}")
        return 0
    if args.check:
        if kind not in record:
            print(f"digest: no {kind} digest recorded in {RECORD}; run --update on such a build")
            return 1
        if record[kind] != now:
            print(f"digest: this {kind} build's digests differ from the record {record[kind]}.\n"
                  "If a change to the kernels, the generator, the initialisers or a summation "
                  "order meant to change the bits, refresh the record: python scripts/digest.py "
                  "--update (on an FMA build and on one with CYGRAD_PORTABLE=1).")
            return 1
        print(f"digest: the same bits as recorded for {kind} builds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
