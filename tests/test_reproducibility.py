"""The same seed gives bitwise-identical parameters after 200 training steps: in separate
processes, and with 1 or 2 threads.

Each run is a fresh interpreter (`sys.executable -c TRAIN kind threads seed path`) that seeds
cygrad, builds the model, trains 200 steps on mini-batches shuffled by cygrad.data.batches and
writes the parameters with cygrad.save; the test compares the files' arrays bit for bit. Layer
sizes are chosen so that the kernels really split work over two threads (products of at least
2**20 multiply-adds, elementwise arrays of at least 2**15 elements).
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cygrad

TRAIN = """
import sys
import numpy as np
import cygrad
from cygrad import nn
from cygrad.nn import functional as F

kind, threads, seed, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
cygrad.set_num_threads(threads)
cygrad.manual_seed(seed)
if kind == "mlp":
    X, y = cygrad.data.blobs(1024, n_classes=4, n_features=32, seed=1)
    model = nn.Sequential(nn.Linear(32, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 256),
                          nn.Tanh(), nn.Dropout(0.1), nn.Linear(256, 4))
    opt = cygrad.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    batch_size = 128
else:
    X, y = cygrad.data.bars_and_crosses(256, size=12, seed=1)
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Dropout(0.2), nn.Linear(16 * 6 * 6, 3))
    opt = cygrad.optim.Adam(model.parameters(), lr=1e-3)
    batch_size = 64
initial = {k: v.clone() for k, v in model.state_dict().items()}  # it shares memory
step = 0
while step < 200:
    for xb, yb in cygrad.data.batches(X, y, batch_size):  # shuffled by cygrad's generator
        opt.zero_grad()
        F.cross_entropy(model(cygrad.tensor(xb)), yb).backward()
        opt.step()
        step += 1
        if step == 200:
            break
assert cygrad.get_num_threads() == threads
cygrad.save({"initial": initial, "final": model.state_dict()}, path)
"""

STEPS = 200


def train(kind, threads, seed, path):
    src = str(Path(cygrad.__file__).resolve().parents[1])  # the cygrad these tests import
    env = {k: v for k, v in os.environ.items() if k != "CYGRAD_NUM_THREADS"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    # OpenMP threads that spin while they wait cost many times the work on a shared 2-core
    # machine; sleeping changes the speed only, never the bits.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    proc = subprocess.run([sys.executable, "-c", TRAIN, kind, str(threads), str(seed),
                           str(path)], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    return cygrad.load(path)


def assert_bitwise_equal(a, b, what):
    assert list(a) == list(b), what
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, (what, name)
        assert np.asarray(a[name]).tobytes() == np.asarray(b[name]).tobytes(), \
            f"{what}: {name} differs"


@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_same_seed_same_bits_across_processes_and_threads(tmp_path, kind):
    first = train(kind, 1, 7, tmp_path / "first.npz")
    second = train(kind, 1, 7, tmp_path / "second.npz")
    two_threads = train(kind, 2, 7, tmp_path / "two_threads.npz")
    assert_bitwise_equal(first["final"], second["final"], "two processes, one thread")
    assert_bitwise_equal(first["final"], two_threads["final"], "one thread against two")
    assert_bitwise_equal(first["initial"], two_threads["initial"], "initialisation")
    # the runs did train, and the seed matters
    for name, value in first["final"].items():
        assert not np.array_equal(value, first["initial"][name]), f"{name} did not change"
    other = train(kind, 1, 8, tmp_path / "other.npz")
    assert any(np.asarray(other["final"][n]).tobytes() != np.asarray(v).tobytes()
               for n, v in first["final"].items())
