"""cygrad's performance targets, measured in one run against numpy by hand, numpy's BLAS,
PyTorch (CPU) and, where it is installed, JAX (jit), at 1 and 2 threads; cygrad eager and
cygrad.compile ("compiled": the same step captured once and replayed).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run.py
    python benchmarks/run.py --quick            # fewer repetitions, shorter memory run

Every ratio is cygrad's time over an anchor system's time measured in this same run
(interleaved: each repetition times every system once, in turn, so a noisy neighbour hits all
alike); the anchor numbers of ../shared/docs/anchors.md are printed beside them for scale.
Tables show medians and the interquartile range (IQR) over repetitions. Results go to
benchmarks/results/latest.json and latest.md.

Workloads (float32):
  tiny   2-16-16-1 MLP, tanh, MSE, SGD, batch 32
  mnist  784-256-128-10 MLP, ReLU, cross-entropy, SGD, batch 64
  conv   8x1x28x28 -> Conv2d 1->8 3x3 -> ReLU -> flatten -> Linear 10, cross-entropy, SGD
  cnn    pytorch/examples' mnist CNN, batch 64: Conv2d(1, 32, 3), ReLU, Conv2d(32, 64, 3), ReLU,
         max_pool2d(2), Dropout(0.25), flatten, Linear(9216, 128), ReLU, Dropout(0.5),
         Linear(128, 10); PyTorch: log_softmax + nll_loss, cygrad: cross_entropy on the logits
         (the same function); SGD
  gpt    the GPT lecture's model (vocab 65, n_embd 64, 4 heads of 16, 2 layers, block 32,
         dropout 0.2), batch 16, cross-entropy, AdamW(lr 3e-4); one builder writes it for both
         libraries (heads by add_module where the lecture has ModuleList), torch's weights copied
  op     a recorded 4x4 `a + b` (both require grad): the per-op overhead
  gemm   the exact gemm (kernel call, preallocated output) against np.matmul and torch.matmul
  memory peak memory of the mnist step per system (fresh process each); cygrad's RSS over
         10,000 steps
A step is zero_grad, forward, loss, backward and the optimiser update in every system.
"compiled" is cygrad.compile of the cygrad step, on its own copy of the model (its first two
calls capture, in the warm-up); JAX (tiny, mnist and conv) is a jit-compiled step of the same
arithmetic, on one XLA thread (XLA_FLAGS as below, unless set already: every JAX target is a
one-thread one). The JAX columns are skipped, with a note, when jax is not installed.
"""

import argparse
import contextlib
import datetime
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))
ENV_KEYS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
            "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
ENV_AT_START = {k: os.environ[k] for k in ENV_KEYS if k in os.environ}  # before any import

import numpy as np  # noqa: E402

# PyTorch first, so that the OpenMP runtime the process shares starts with PyTorch's defaults
# (importing cygrad first would set OMP_WAIT_POLICY=PASSIVE for both: see the README).
try:
    if os.environ.get("CYGRAD_BENCH_NO_TORCH"):  # a memory worker of another system
        raise ImportError
    import torch
except ImportError:  # PyTorch is optional: its columns are skipped with a note
    torch = None

import cygrad  # noqa: E402, I001
import cygrad.nn.functional as F  # noqa: E402
from cygrad import nn, optim  # noqa: E402

try:
    if os.environ.get("CYGRAD_BENCH_NO_TORCH"):
        raise ImportError
    # XLA's CPU backend runs on its own thread pool, which --threads does not reach: one thread,
    # as cygrad's and PyTorch's in the one-thread rows the targets compare (read at jax import)
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                                       "intra_op_parallelism_threads=1")
    import jax
    import jax.numpy as jnp
except ImportError:  # JAX is optional too: its columns and targets are skipped
    jax = jnp = None

try:
    from threadpoolctl import threadpool_info, threadpool_limits
except ImportError:
    threadpool_info = threadpool_limits = None

RESULTS = os.path.join(ROOT, "benchmarks", "results")
LR = 0.01

# The anchors (µs, one thread) from ../shared/docs/anchors.md: printed for scale only.
ANCHORS = {("tiny", "torch"): 169.0, ("tiny", "numpy"): 29.5, ("mnist", "torch"): 851.0,
           ("mnist", "numpy"): 751.0, ("conv", "torch"): 554.0, ("conv", "numpy"): 359.0,
           ("op", "torch"): 1.6, ("tiny", "jax"): 39.0, ("mnist", "jax"): 745.0}

# (target id, workload, anchor system, bound on cygrad / anchor, what it says[, the cygrad
# system measured: "cygrad" (eager) unless given])
TARGETS = [
    ("2a", "tiny", "torch", 1 / 3, "tiny MLP step at most 1/3 of PyTorch's time"),
    ("2b", "tiny", "numpy", 1.5, "tiny MLP step within 1.5x of numpy by hand"),
    ("3", "mnist", "torch", 0.9, "MNIST-size MLP step at most 0.9x PyTorch's time"),
    ("4", "conv", "torch", 0.7, "conv net step at most 0.7x PyTorch's time"),
    ("5", "op", "torch", 1.0, "per-op overhead of a recorded 4x4 a + b no more than PyTorch's"),
    ("12", "cnn", "torch", 0.7, "pytorch/examples mnist CNN step at most 0.7x PyTorch's time"),
    ("12b", "gpt", "torch", 0.8, "GPT-lecture model step (AdamW) at most 0.8x PyTorch's time"),
    ("15a", "tiny", "jax", 0.5, "tiny MLP step compiled at most 0.5x JAX jit's time",
     "compiled"),
    ("15b", "mnist", "jax", 0.9, "MNIST-size MLP step compiled at most 0.9x JAX jit's time",
     "compiled"),
    ("15c", "conv", "jax", 0.7, "conv net step at most 0.7x JAX jit's time"),
    ("15d", "conv", "torch", 0.6, "conv net step at most 0.6x PyTorch's time"),
]


# ---------------------------------------------------------------------- timing

def sample(fn, calls):
    t = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t) / calls


def calls_for(fn, seconds):
    """Calls making one sample of about `seconds` (at least one), after a warm-up."""
    for _ in range(3):
        fn()
    return max(1, int(seconds / max(sample(fn, 3), 1e-9)))


def interleaved(systems, reps, seconds, settle=0.0):
    """{name: [seconds per call, one per repetition]}, the systems timed in turn. With several
    threads each sample waits `settle` seconds first (the previous system's idle threads may
    still be spinning: OpenBLAS's spin ~0.1 s after a call) and warms up with two calls."""
    calls = {name: calls_for(fn, seconds) for name, fn in systems.items()}
    times = {name: [] for name in systems}
    for _ in range(reps):
        for name, fn in systems.items():
            if settle:
                time.sleep(settle)
                fn()
                fn()
            times[name].append(sample(fn, calls[name]))
    return times


def stats(ts):
    q1, med, q3 = np.percentile(ts, [25, 50, 75])
    return {"median": float(med), "q1": float(q1), "q3": float(q3), "iqr": float(q3 - q1),
            "min": float(min(ts)), "n": len(ts)}


@contextlib.contextmanager
def threads(n):
    """n threads for cygrad's kernels, PyTorch's intra-op pool and numpy's BLAS."""
    cygrad.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)
    limits = (threadpool_limits(limits=n, user_api="blas") if threadpool_limits is not None
              else contextlib.nullcontext())
    with limits:
        yield


# ---------------------------------------------------------------------- workloads

def layer_params(sizes, rng):
    """(W, b) float32 per layer with PyTorch's default init bounds, shared by every system."""
    out = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        k = 1 / np.sqrt(fan_in)
        out.append((rng.uniform(-k, k, (fan_out, fan_in)).astype(np.float32),
                    rng.uniform(-k, k, fan_out).astype(np.float32)))
    return out


def cygrad_mlp(params, act):
    layers = []
    for i, (w, b) in enumerate(params):
        lin = nn.Linear(w.shape[1], w.shape[0])
        lin.load_state_dict({"weight": w, "bias": b})
        layers.append(lin)
        if i < len(params) - 1:
            layers.append(act())
    return nn.Sequential(*layers)


def torch_mlp(params, act):
    layers = []
    for i, (w, b) in enumerate(params):
        lin = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if i < len(params) - 1:
            layers.append(act())
    return torch.nn.Sequential(*layers)


def cygrad_step(model, loss_fn, x, t):
    opt = optim.SGD(model.parameters(), lr=LR)

    def step():
        opt.zero_grad()
        loss_fn(model(x), t).backward()
        opt.step()
    return step


def torch_step(model, loss_fn, x, t):
    opt = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        opt.zero_grad()
        loss_fn(model(x), t).backward()
        opt.step()
    return step


def numpy_mlp_step(params, x, t, act, loss):
    """Plain numpy: forward, backward and SGD by hand (act 'tanh' or 'relu', loss 'mse' or
    'ce'), the weights updated in place."""
    params = [(w.copy(), b.copy()) for w, b in params]
    lr = np.float32(LR)
    n = np.float32(x.shape[0])
    onehot = None
    if loss == "ce":
        onehot = np.zeros((x.shape[0], params[-1][0].shape[0]), np.float32)
        onehot[np.arange(x.shape[0]), t] = 1

    def step():
        hs = [x]
        for i, (w, b) in enumerate(params):
            z = hs[-1] @ w.T + b
            if i < len(params) - 1:
                z = np.tanh(z) if act == "tanh" else np.maximum(z, 0)
            hs.append(z)
        out = hs[-1]
        if loss == "mse":
            d = out - t
            float((d * d).mean())
            g = d * (np.float32(2) / np.float32(d.size))
        else:
            e = np.exp(out - out.max(axis=1, keepdims=True))
            s = e.sum(axis=1, keepdims=True)
            p = e / s
            float(-(np.log(p[np.arange(len(t)), t])).mean())
            g = (p - onehot) / n
        for i in range(len(params) - 1, -1, -1):
            w, b = params[i]
            dw, db = g.T @ hs[i], g.sum(axis=0)
            if i > 0:
                g = g @ w
                h = hs[i]
                g = g * (1 - h * h) if act == "tanh" else g * (h > 0)
            w -= lr * dw
            b -= lr * db
    return step


def jax_mlp_step(params, x, t, act, loss):
    """The same MLP step in JAX, jit-compiled: forward, loss, gradients and the SGD update in
    one XLA computation (parameters passed in and returned, as JAX programs do)."""
    state = [[(jnp.asarray(w), jnp.asarray(b)) for w, b in params]]
    xj, tj = jnp.asarray(x), jnp.asarray(t)

    def loss_fn(ps):
        h = xj
        for i, (w, b) in enumerate(ps):
            h = h @ w.T + b
            if i < len(ps) - 1:
                h = jnp.tanh(h) if act == "tanh" else jax.nn.relu(h)
        if loss == "mse":
            return jnp.mean((h - tj) ** 2)
        logp = jax.nn.log_softmax(h, axis=1)
        return -jnp.mean(jnp.take_along_axis(logp, tj[:, None], axis=1))

    @jax.jit
    def update(ps):
        value, grads = jax.value_and_grad(loss_fn)(ps)
        return jax.tree_util.tree_map(lambda p, g: p - LR * g, ps, grads), value

    def step():
        state[0], value = update(state[0])
        value.block_until_ready()
    return step


def kernels_mlp_step(params, x, t, act, loss):
    """The MLP step as its kernel calls alone, in a plain function: the backend implementation
    functions a compiled step calls (the same kernels, in the same order), plus the loss's few
    numpy operations. No framework: the floor under a replay, whose time subtracted from the
    compiled step's, per kernel call, is the replay's overhead per kernel."""
    from cygrad import backend as B

    impl, nt = B._impl_var.get(B._impl), B._threads_var.get(B._kernel_threads)
    params = [(w.copy(), b.copy()) for w, b in params]
    flat = [a for wb in params for a in wb]
    targets = None if loss == "mse" else np.ascontiguousarray(t, np.intp)
    n = x.shape[0]

    def step():
        hs, outs = [x], []
        for i, (w, b) in enumerate(params):
            z = impl.gemm(hs[-1], w, False, True, nt)
            if i < len(params) - 1:
                hs.append(impl.bias_activation(act, z, b, 0.0, nt))
            else:
                impl.bias_add(z, b, z, nt)
                outs.append(z)
        out = outs[0]
        if loss == "mse":
            diff = out - t
            float(np.add.reduce(diff * diff, None)) / diff.size
            g = np.float32(2.0 / diff.size) * diff
        else:
            losses, logp = impl.log_softmax_nll(out, targets, nt)
            float(losses.sum(dtype=losses.dtype)) / n
            g = impl.log_softmax_nll_backward(logp, targets, np.full(n, 1.0 / n, np.float32), nt)
        grads = []
        for i in range(len(params) - 1, -1, -1):
            w, b = params[i]
            if i == len(params) - 1:
                db = impl.column_sum(g, nt)
            else:
                g, db = impl.activation_backward_bias(act, g, hs[i + 1], 0.0, nt)
            grads[:0] = [impl.gemm(g, hs[i], True, False, nt), db]
            if i > 0:
                g = impl.gemm(g, w, False, False, nt)
        impl.sgd_update(flat, grads, LR, 0.0, 0.0, False, 0.0, None, None, False)
    return step


def tiny():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 2)).astype(np.float32)
    y = rng.standard_normal((32, 1)).astype(np.float32)
    params = layer_params([2, 16, 16, 1], rng)
    systems = {"cygrad": cygrad_step(cygrad_mlp(params, nn.Tanh), F.mse_loss,
                                     cygrad.tensor(x), cygrad.tensor(y)),
               "compiled": cygrad.compile(cygrad_step(cygrad_mlp(params, nn.Tanh), F.mse_loss,
                                                      cygrad.tensor(x), cygrad.tensor(y))),
               "kernels": kernels_mlp_step(params, x, y, "tanh", "mse"),
               "numpy": numpy_mlp_step(params, x, y, "tanh", "mse")}
    if torch is not None:
        systems["torch"] = torch_step(torch_mlp(params, torch.nn.Tanh),
                                      torch.nn.functional.mse_loss, torch.from_numpy(x),
                                      torch.from_numpy(y))
    if jax is not None:
        systems["jax"] = jax_mlp_step(params, x, y, "tanh", "mse")
    return systems


def mnist_data():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 784)).astype(np.float32)
    t = rng.integers(0, 10, 64)
    return x, t, layer_params([784, 256, 128, 10], rng)


def mnist(only=None):
    x, t, params = mnist_data()
    systems = {}
    if only in (None, "cygrad"):
        systems["cygrad"] = cygrad_step(cygrad_mlp(params, nn.ReLU), F.cross_entropy,
                                        cygrad.tensor(x), t)
    if only in (None, "compiled"):
        systems["compiled"] = cygrad.compile(cygrad_step(cygrad_mlp(params, nn.ReLU),
                                                         F.cross_entropy, cygrad.tensor(x), t))
    if only is None:
        systems["kernels"] = kernels_mlp_step(params, x, t, "relu", "ce")
    if only in (None, "numpy"):
        systems["numpy"] = numpy_mlp_step(params, x, t, "relu", "ce")
    if torch is not None and only in (None, "torch"):
        systems["torch"] = torch_step(torch_mlp(params, torch.nn.ReLU),
                                      torch.nn.functional.cross_entropy, torch.from_numpy(x),
                                      torch.from_numpy(t))
    if jax is not None and only is None:
        systems["jax"] = jax_mlp_step(params, x, t, "relu", "ce")
    return systems


def numpy_conv_step(wc, bc, wl, bl, x, t):
    """The conv net in plain numpy: im2col by sliding windows, matmuls, by-hand backward."""
    wc, bc, wl, bl = wc.copy(), bc.copy(), wl.copy(), bl.copy()
    n, o = x.shape[0], wc.shape[0]
    lr = np.float32(LR)
    onehot = np.zeros((n, 10), np.float32)
    onehot[np.arange(n), t] = 1

    def step():
        cols = np.lib.stride_tricks.sliding_window_view(x[:, 0], (3, 3), axis=(1, 2))
        cols = np.ascontiguousarray(cols).reshape(n * 26 * 26, 9)  # (N*OH*OW, 9)
        z = (cols @ wc.reshape(o, 9).T + bc).reshape(n, 26 * 26, o)  # (N, P, O)
        h = np.maximum(z, 0)
        flat = h.transpose(0, 2, 1).reshape(n, -1)  # (N, O*P), channel-major like Flatten
        out = flat @ wl.T + bl
        e = np.exp(out - out.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        float(-(np.log(p[np.arange(n), t])).mean())
        g = (p - onehot) / np.float32(n)
        dwl, dbl = g.T @ flat, g.sum(axis=0)
        gh = (g @ wl).reshape(n, o, -1).transpose(0, 2, 1) * (z > 0)  # (N, P, O)
        gz = gh.reshape(-1, o)
        dwc, dbc = gz.T @ cols, gz.sum(axis=0)
        for param, grad in ((wl, dwl), (bl, dbl), (wc, dwc.reshape(wc.shape)), (bc, dbc)):
            param -= lr * grad
    return step


def jax_conv_step(wc, bc, wl, bl, x, t):
    """The conv net's step in JAX, jit-compiled (lax.conv_general_dilated, NCHW/OIHW, no
    padding; ReLU, flatten, linear; cross-entropy; SGD), parameters in and out."""
    state = [tuple(jnp.asarray(a) for a in (wc, bc, wl, bl))]
    xj, tj = jnp.asarray(x), jnp.asarray(t)

    def loss_fn(ps):
        wc, bc, wl, bl = ps
        h = jax.lax.conv_general_dilated(xj, wc, (1, 1), "VALID") + bc[None, :, None, None]
        h = jax.nn.relu(h).reshape(xj.shape[0], -1)
        logp = jax.nn.log_softmax(h @ wl.T + bl, axis=1)
        return -jnp.mean(jnp.take_along_axis(logp, tj[:, None], axis=1))

    @jax.jit
    def update(ps):
        value, grads = jax.value_and_grad(loss_fn)(ps)
        return jax.tree_util.tree_map(lambda p, g: p - LR * g, ps, grads), value

    def step():
        state[0], value = update(state[0])
        value.block_until_ready()
    return step


def conv():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 1, 28, 28)).astype(np.float32)
    t = rng.integers(0, 10, 8)
    wc = rng.uniform(-1 / 3, 1 / 3, (8, 1, 3, 3)).astype(np.float32)
    bc = rng.uniform(-1 / 3, 1 / 3, 8).astype(np.float32)
    k = 1 / np.sqrt(8 * 26 * 26)
    wl = rng.uniform(-k, k, (10, 8 * 26 * 26)).astype(np.float32)
    bl = rng.uniform(-k, k, 10).astype(np.float32)
    models = []
    for _ in range(2):
        model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Flatten(),
                              nn.Linear(8 * 26 * 26, 10))
        model.load_state_dict({"0.weight": wc, "0.bias": bc, "3.weight": wl, "3.bias": bl})
        models.append(model)
    systems = {"cygrad": cygrad_step(models[0], F.cross_entropy, cygrad.tensor(x), t),
               "compiled": cygrad.compile(cygrad_step(models[1], F.cross_entropy,
                                                      cygrad.tensor(x), t)),
               "numpy": numpy_conv_step(wc, bc, wl, bl, x, t)}
    if torch is not None:
        tm = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                 torch.nn.Linear(8 * 26 * 26, 10))
        with torch.no_grad():
            for p, v in zip(tm.parameters(), (wc, bc, wl, bl)):
                p.copy_(torch.from_numpy(v))
        systems["torch"] = torch_step(tm, torch.nn.functional.cross_entropy,
                                      torch.from_numpy(x), torch.from_numpy(t))
    if jax is not None:
        systems["jax"] = jax_conv_step(wc, bc, wl, bl, x, t)
    return systems


def cnn_params(rng):
    """The mnist CNN's parameters with PyTorch's default init bounds (float32)."""
    shapes = {"conv1": (32, 1, 3, 3), "conv2": (64, 32, 3, 3), "fc1": (128, 9216),
              "fc2": (10, 128)}
    params = {}
    for name, shape in shapes.items():
        k = 1 / np.sqrt(np.prod(shape[1:]))
        params[name + ".weight"] = rng.uniform(-k, k, shape).astype(np.float32)
        params[name + ".bias"] = rng.uniform(-k, k, shape[0]).astype(np.float32)
    return params


class CygradCNN(nn.Module):
    """pytorch/examples' mnist Net, written as there."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = x.reshape(x.shape[0], -1)  # torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return self.fc2(x)  # the logits: cross_entropy = log_softmax + nll_loss


def torch_cnn():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(1, 32, 3, 1)
            self.conv2 = torch.nn.Conv2d(32, 64, 3, 1)
            self.dropout1 = torch.nn.Dropout(0.25)
            self.dropout2 = torch.nn.Dropout(0.5)
            self.fc1 = torch.nn.Linear(9216, 128)
            self.fc2 = torch.nn.Linear(128, 10)

        def forward(self, x):
            tf = torch.nn.functional
            x = tf.relu(self.conv1(x))
            x = tf.relu(self.conv2(x))
            x = tf.max_pool2d(x, 2)
            x = self.dropout1(x)
            x = torch.flatten(x, 1)
            x = tf.relu(self.fc1(x))
            x = self.dropout2(x)
            return tf.log_softmax(self.fc2(x), dim=1)

    return Net()


def cnn():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    t = rng.integers(0, 10, 64)
    params = cnn_params(rng)
    model, twin = CygradCNN(), CygradCNN()
    model.load_state_dict(params)
    twin.load_state_dict(params)
    systems = {"cygrad": cygrad_step(model, F.cross_entropy, cygrad.tensor(x), t),
               "compiled": cygrad.compile(cygrad_step(twin, F.cross_entropy, cygrad.tensor(x),
                                                      t))}
    if torch is not None:
        tm = torch_cnn()
        tm.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
        systems["torch"] = torch_step(tm, torch.nn.functional.nll_loss, torch.from_numpy(x),
                                      torch.from_numpy(t))
    return systems


def op():
    """A recorded 4x4 float32 a + b; the result (and its graph node) dropped at once."""
    rng = np.random.default_rng(3)
    a_np, b_np = rng.standard_normal((2, 4, 4)).astype(np.float32)
    a, b = cygrad.tensor(a_np, requires_grad=True), cygrad.tensor(b_np, requires_grad=True)
    systems = {"cygrad": lambda: a + b, "numpy": lambda: a_np + b_np}
    if torch is not None:
        ta = torch.from_numpy(a_np).requires_grad_()
        tb = torch.from_numpy(b_np).requires_grad_()
        systems["torch"] = lambda: ta + tb
    return systems


GPT = {"vocab": 65, "n_embd": 64, "n_head": 4, "n_layer": 2, "block": 32, "batch": 16,
       "dropout": 0.2}


def gpt_model(lib):
    """Karpathy's GPT lecture model written against `lib` (cygrad or torch), as there."""
    tnn, tf = lib.nn, lib.nn.functional
    d, nh, block, p = GPT["n_embd"], GPT["n_head"], GPT["block"], GPT["dropout"]

    class Head(tnn.Module):
        def __init__(self, hs):
            super().__init__()
            self.key = tnn.Linear(d, hs, bias=False)
            self.query = tnn.Linear(d, hs, bias=False)
            self.value = tnn.Linear(d, hs, bias=False)
            self.register_buffer("tril", lib.tril(lib.ones(block, block)))
            self.dropout = tnn.Dropout(p)

        def forward(self, x):
            _, T, _ = x.shape
            k, q = self.key(x), self.query(x)
            wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5
            wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
            wei = self.dropout(tf.softmax(wei, dim=-1))
            return wei @ self.value(x)

    class MultiHeadAttention(tnn.Module):
        def __init__(self):
            super().__init__()
            for i in range(nh):
                self.add_module(f"h{i}", Head(d // nh))
            self.proj = tnn.Linear(d, d)
            self.dropout = tnn.Dropout(p)

        def forward(self, x):
            out = lib.cat([getattr(self, f"h{i}")(x) for i in range(nh)], dim=-1)
            return self.dropout(self.proj(out))

    class Block(tnn.Module):
        def __init__(self):
            super().__init__()
            self.sa = MultiHeadAttention()
            self.ffwd = tnn.Sequential(tnn.Linear(d, 4 * d), tnn.ReLU(), tnn.Linear(4 * d, d),
                                       tnn.Dropout(p))
            self.ln1, self.ln2 = tnn.LayerNorm(d), tnn.LayerNorm(d)

        def forward(self, x):
            x = x + self.sa(self.ln1(x))
            return x + self.ffwd(self.ln2(x))

    class GPTLanguageModel(tnn.Module):
        def __init__(self):
            super().__init__()
            self.token_embedding_table = tnn.Embedding(GPT["vocab"], d)
            self.position_embedding_table = tnn.Embedding(block, d)
            self.blocks = tnn.Sequential(*[Block() for _ in range(GPT["n_layer"])])
            self.ln_f = tnn.LayerNorm(d)
            self.lm_head = tnn.Linear(d, GPT["vocab"])

        def forward(self, idx, targets):
            B, T = idx.shape
            x = self.token_embedding_table(idx) + self.position_embedding_table(lib.arange(T))
            logits = self.lm_head(self.ln_f(self.blocks(x)))
            return tf.cross_entropy(logits.view(B * T, -1), targets.view(B * T))

    return GPTLanguageModel()


def adamw_step(opt, model, x, t):
    def step():
        opt.zero_grad()
        model(x, t).backward()
        opt.step()
    return step


def gpt():
    rng = np.random.default_rng(5)
    idx = rng.integers(0, GPT["vocab"], (GPT["batch"], GPT["block"] + 1))
    x, t = np.ascontiguousarray(idx[:, :-1]), np.ascontiguousarray(idx[:, 1:])
    model, twin = gpt_model(cygrad), gpt_model(cygrad)
    systems = {"cygrad": adamw_step(optim.AdamW(model.parameters(), lr=3e-4), model,
                                    cygrad.tensor(x), cygrad.tensor(t)),
               "compiled": cygrad.compile(adamw_step(optim.AdamW(twin.parameters(), lr=3e-4),
                                                     twin, cygrad.tensor(x), cygrad.tensor(t)))}
    if torch is not None:
        tm = gpt_model(torch)
        with cygrad.no_grad():  # the same weights in all
            for p, q, r in zip(model.parameters(), tm.parameters(), twin.parameters()):
                p.copy_(cygrad.tensor(q.detach().numpy()))
                r.copy_(cygrad.tensor(q.detach().numpy()))
        systems["torch"] = adamw_step(torch.optim.AdamW(tm.parameters(), lr=3e-4), tm,
                                      torch.from_numpy(x), torch.from_numpy(t))
    return systems


WORKLOADS = {"tiny": tiny, "mnist": mnist, "conv": conv, "cnn": cnn, "gpt": gpt, "op": op}


# ---------------------------------------------------------------------- gemm

GEMM_SHAPES = [(f"{n}x{n}x{n}", n, n, n, False, False) for n in (256, 512, 1024, 2048)] + [
    ("fwd X@W 64x784@784x256", 64, 256, 784, False, False),
    ("dW X.T@G 784x64@64x256", 784, 256, 64, True, False),
    ("dX G@W.T 64x256@256x784", 64, 784, 256, False, True)]


GEMM_ORDER = {s[0]: i for i, s in enumerate(GEMM_SHAPES)}


def gemm_systems(m, n, k, ta, tb, dtype, nt):
    """The product (m x k) @ (k x n), transposes as flags, in each system; outputs preallocated."""
    from cygrad._C import gemm as kernel

    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    oa, ob = (a.T if ta else a), (b.T if tb else b)
    c, out = np.empty((m, n), dtype), np.empty((m, n), dtype)
    systems = {"cygrad": lambda: kernel.gemm(a, b, c, ta, tb, nt),
               "numpy": lambda: np.matmul(oa, ob, out=out)}
    if torch is not None:
        toa, tob = torch.from_numpy(oa), torch.from_numpy(ob)
        tout = torch.from_numpy(np.empty((m, n), dtype))
        systems["torch"] = lambda: torch.matmul(toa, tob, out=tout)
    return systems


def scaling(rounds, calls):
    """The compiled MNIST-size step alone (no other system between its samples, nothing
    asleep before them), one thread and two in turn: `rounds` samples of `calls` steps each
    per thread count, after 50 warm steps at each. A ratio of cygrad to itself (target 15g):
    the systems' rotation above sleeps 0.2 s before each two-thread sample (the system before
    may still be spinning), which the one-thread samples do not, and hands the caches to PyTorch
    and JAX in between."""
    step = mnist("compiled")["compiled"]
    times = {1: [], 2: []}
    for nt in (1, 2):
        with threads(nt):
            for _ in range(50):
                step()
    for _ in range(rounds):
        for nt in (1, 2):
            with threads(nt):
                for _ in range(10):
                    step()
                times[nt].append(sample(step, calls))
    return {nt: stats(ts) for nt, ts in times.items()}


def replay(rounds, calls):
    """The replay's overhead per kernel call (target 15f) measured on its own, one thread: a
    compiled step and the same kernels called by hand (kernels_mlp_step) alone, in turn,
    `rounds` pairs of samples of `calls` steps each after 50 warm steps of both; per pair the
    difference, and its median over the pairs per kernel call. The systems' rotation above has
    numpy, PyTorch and JAX run between the two systems' samples (each finds the caches
    another's), and its difference of two medians carries both medians' noise: 20-60 µs IQRs
    on 650 µs, over 18 kernel calls."""
    out = {}
    with threads(1):
        for workload in ("tiny", "mnist"):
            systems = WORKLOADS[workload]()
            pair = {"compiled": systems["compiled"], "kernels": systems["kernels"]}
            del systems
            for fn in pair.values():
                for _ in range(50):
                    fn()
            plan = pair["compiled"].plan
            kernels = sum(len(s.kernels) for s in plan.steps)
            times = {name: [] for name in pair}
            for r in range(rounds):
                for name in (("compiled", "kernels") if r % 2 == 0 else ("kernels", "compiled")):
                    times[name].append(sample(pair[name], calls))
            diffs = [(a - b) / kernels for a, b in zip(times["compiled"], times["kernels"])]
            out[workload] = {"kernels": kernels, "per_kernel": stats(diffs),
                             "compiled": stats(times["compiled"]),
                             "by_hand": stats(times["kernels"])}
    return out


def gemm_rows(thread_counts, reps, seconds, quick):
    rows = []
    shapes = [s for s in GEMM_SHAPES if not (quick and s[1] == 2048)]
    for dtype in (np.float32, np.float64):
        for nt in thread_counts:
            with threads(nt):
                for name, m, n, k, ta, tb in shapes:
                    systems = gemm_systems(m, n, k, ta, tb, dtype, nt)
                    times = interleaved(systems, reps, seconds, settle=0.2 if nt > 1 else 0.0)
                    row = {"shape": name, "dtype": np.dtype(dtype).name, "threads": nt}
                    for sys_name, ts in times.items():
                        row[sys_name] = 2.0 * m * n * k / statistics.median(ts) / 1e9
                    row["cygrad/numpy"] = row["cygrad"] / row["numpy"]
                    rows.append(row)
                    print(f"  gemm {name:26s} {row['dtype']:7s} {nt}t  " + "  ".join(
                        f"{s} {row[s]:6.1f}" for s in systems) + " GFLOP/s", flush=True)
    return rows


def peak_gflops(dtype, reps):
    """The measured arithmetic peak of one core in dtype, GFLOP/s: the best of `reps` timed runs
    of the kernels' FMA loop (cygrad._C.gemm.fma_peak: 12 register-held multiply-add chains,
    no memory traffic), each of about 0.1 s."""
    from cygrad._C import gemm as kernel

    kernel.fma_peak(dtype, 10_000)  # warm up (and wake the core's vector units)
    flops = kernel.fma_peak(dtype, 1)[0]
    links = max(1, int(0.1 * 50e9 / flops))  # ~0.1 s at 50 GFLOP/s
    best = 0.0
    for _ in range(reps):
        start = time.perf_counter()
        done, _ = kernel.fma_peak(dtype, links)
        best = max(best, done / (time.perf_counter() - start) / 1e9)
    return best


GEMM_NAMES = {"cygrad": "cygrad", "numpy": "numpy (OpenBLAS)", "torch": "PyTorch"}


def plot_gemm(report, path):
    """GFLOP/s against size (the square products, one thread) per dtype, each system a line,
    with the measured peak of one core as a dashed line: a PNG at path (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dtypes = [d for d in ("float32", "float64")
              if any(r["dtype"] == d and r["threads"] == 1 for r in report.get("gemm", []))]
    if not dtypes:
        raise ValueError("no one-thread gemm rows to plot: run the gemm part with --threads 1")
    fig, axes = plt.subplots(1, len(dtypes), figsize=(5.5 * len(dtypes), 4), squeeze=False)
    for ax, dtype in zip(axes[0], dtypes):
        rows = [r for r in report["gemm"] if r["dtype"] == dtype and r["threads"] == 1
                and r["shape"].count("x") == 2 and len(set(r["shape"].split("x"))) == 1]
        sizes = [int(r["shape"].split("x")[0]) for r in rows]
        for system in ("cygrad", "numpy", "torch"):
            if all(system in r for r in rows):
                ax.plot(sizes, [r[system] for r in rows], marker="o", label=GEMM_NAMES[system])
        peak = report.get("peak", {}).get(dtype)
        if peak:
            ax.axhline(peak, color="black", linestyle="--", linewidth=1,
                       label=f"peak of one core ({peak:.0f})")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.set_ylim(bottom=0)
        ax.set_xlabel("n (n x n x n product)")
        ax.set_ylabel("GFLOP/s")
        ax.set_title(f"gemm {dtype}, one thread")
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------- memory

def _status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # kB -> bytes
    return None


def memory_worker(system, steps, checkpoints):
    """Run in a fresh process: RSS once the model and data exist (before the first step), the
    peak RSS while the steps run (VmHWM reset to the current RSS first, Linux >= 4.0), and RSS
    at checkpoints. Peak minus before = the memory the training steps take, allocator
    retention included."""
    if torch is not None:
        torch.set_num_threads(1)
    cygrad.set_num_threads(1)
    step = mnist(system)[system]
    gc.collect()
    baseline = _status("VmRSS")
    reset = False
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak RSS to the current RSS
        reset = True
    except OSError:
        pass
    rss = []
    for i in range(1, steps + 1):
        step()
        if i in checkpoints:
            rss.append((i, _status("VmRSS")))
    out = {"system": system, "baseline_rss": baseline, "peak_rss": _status("VmHWM"),
           "peak_reset": reset, "rss": rss}
    if system != "torch":  # numpy reports its arrays to tracemalloc; PyTorch's are invisible
        import tracemalloc

        tracemalloc.start()
        for _ in range(3):
            step()
        between, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(10):
            step()
        out["traced_between_steps"] = between
        out["traced_peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return out


def memory(quick):
    steps = 2000 if quick else 10_000
    out = {}
    systems = ["cygrad", "numpy"] + (["torch"] if torch is not None else [])
    for system in systems:
        n = steps if system == "cygrad" else 300
        marks = sorted({min(n, m) for m in (100, 300, 1000, n // 2, n)})
        env = dict(os.environ)
        if system != "torch":
            env["CYGRAD_BENCH_NO_TORCH"] = "1"
        res = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-worker",
                              system, "--steps", str(n), "--marks", ",".join(map(str, marks))],
                             capture_output=True, text=True, check=True, env=env)
        out[system] = json.loads(res.stdout.strip().splitlines()[-1])
    for r in out.values():
        r["peak_over_baseline"] = r["peak_rss"] - r["baseline_rss"]
    c = out["cygrad"]["rss"]
    start = next(v for i, v in c if i >= min(1000, c[-1][0]))
    out["cygrad_growth"] = {"from_step": next(i for i, v in c if i >= min(1000, c[-1][0])),
                            "to_step": c[-1][0], "bytes": c[-1][1] - start}
    return out


COMPILES = 5  # fresh compiles timed per workload: one took 4 to 21 ms on a shared host


def compile_info(workload):
    """The two capturing calls of a fresh cygrad.compile of the workload's step (a new model
    each time, the code cache cleared: a cold compile), COMPILES times, each beside the first
    two calls of a fresh model's eager step (what those two calls would cost without compile:
    a first call makes optimizer state, caches): the median time of the pair, the median of
    (capturing pair - eager pair), every sample, and the plan's size."""
    samples, eager, net = [], [], []
    for _ in range(COMPILES):
        systems = WORKLOADS[workload]()
        fresh, step = systems["cygrad"], systems["compiled"]
        start = time.perf_counter()
        fresh()
        fresh()
        eager.append((time.perf_counter() - start) * 1e3)
        if hasattr(cygrad.compiler, "clear_code_cache"):  # the timed runs before compiled
            cygrad.compiler.clear_code_cache()  # the same source
        start = time.perf_counter()  # the two calls whole (everything compile adds: the
        step()  # recording, both plans, their comparison, compiling the replay's code, and
        step()  # any garbage collection they set off)
        samples.append((time.perf_counter() - start) * 1e3)
        net.append(samples[-1] - eager[-1])
        plan = step.plan
    return {"capture_ms": float(np.median(samples)), "samples_ms": samples,
            "eager_pair_ms": eager, "net_ms": float(np.median(net)),
            "steps": len(plan.steps), "kernels": sum(len(s.kernels) for s in plan.steps),
            "status": plan.status}


# ---------------------------------------------------------------------- report

def machine_info():
    info = {"date": datetime.datetime.now().isoformat(timespec="minutes"),
            "python": platform.python_version(), "numpy": np.__version__,
            "torch": torch.__version__ if torch is not None else None,
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "command": " ".join([os.path.basename(sys.executable)] + sys.argv)}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if threadpool_info is not None:
        info["blas"] = [{k: d.get(k) for k in ("internal_api", "version", "architecture")}
                        for d in threadpool_info() if d.get("user_api") == "blas"]
    info["env"] = ENV_AT_START
    return info


def load():
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def evaluate(steps):
    """One entry per target and thread count: ratio of medians, anchor, verdict."""
    out = []
    for tid, workload, anchor, bound, text, *system in TARGETS:
        ours = system[0] if system else "cygrad"
        for nt, res in sorted(steps.get(workload, {}).items()):
            if anchor not in res or ours not in res:
                missing = anchor if anchor not in res else ours
                out.append({"target": tid, "threads": nt, "text": text, "met": None,
                            "note": f"{missing} not installed: not measured"})
                continue
            ratio = res[ours]["median"] / res[anchor]["median"]
            # the ratio's spread: worst and best pairing of the quartiles
            hi = res[ours]["q3"] / res[anchor]["q1"]
            lo = res[ours]["q1"] / res[anchor]["q3"]
            out.append({"target": tid, "threads": nt, "text": text, "anchor_system": anchor,
                        "anchor_doc_us": ANCHORS.get((workload, anchor)), "system": ours,
                        "cygrad_us": res[ours]["median"] * 1e6,
                        "anchor_us": res[anchor]["median"] * 1e6, "ratio": ratio,
                        "ratio_iqr": [lo, hi], "bound": bound, "met": ratio <= bound})
    return out


def compile_targets(report):
    """The targets of cygrad.compile's issue that are not one ratio of two systems: capture
    time, replay overhead per kernel, the 2-thread MNIST step, the gemm against OpenBLAS."""
    out = []
    compiled = report.get("compile", {})
    if compiled:
        # the two capturing calls run the step eagerly, twice: the compile time is what they
        # take beyond the first two eager calls of a fresh model, measured beside each compile
        net = {w: c["net_ms"] for w, c in compiled.items() if "net_ms" in c}
        out.append({"target": "15e", "text": "compile time of a step at most 20 ms (the two "
                    "capturing calls beyond a fresh model's first two eager calls; the median "
                    f"of {COMPILES} fresh compiles)",
                    "met": bool(net) and max(net.values()) <= 20,
                    "detail": ", ".join(f"{w} {net[w]:.1f} ms ({c['capture_ms']:.1f} ms in all)"
                                        for w, c in compiled.items() if w in net)})
    per_kernel = []
    for w in ("tiny", "mnist"):
        res, c = report["steps"].get(w, {}).get(1, {}), compiled.get(w)
        if c and c["kernels"] and "compiled" in res and "kernels" in res:
            per_kernel.append((w, (res["compiled"]["median"] - res["kernels"]["median"])
                               / c["kernels"] * 1e6))
    paired = report.get("replay", {})
    if paired:  # the paired measurement decides; the rotation's medians are shown beside it
        out.append({"target": "15f", "text": "replay overhead per kernel call at most 0.3 µs "
                    "(one thread)",
                    "met": all(r["per_kernel"]["median"] * 1e6 <= 0.3 for r in paired.values()),
                    "detail": "the compiled step and its kernels by hand alone, in turn, the "
                              "median per kernel call of the pairs' differences: " + ", ".join(
                                  f"{w} {r['per_kernel']['median'] * 1e6:+.2f} µs [IQR "
                                  f"{r['per_kernel']['iqr'] * 1e6:.2f}] ({r['kernels']} calls, "
                                  f"{r['per_kernel']['n']} pairs)" for w, r in paired.items())
                              + ("; in the systems' rotation above, (compiled − kernels by "
                                 "hand) / kernel calls: " + ", ".join(
                                     f"{w} {v:+.2f} µs" for w, v in per_kernel)
                                 if per_kernel else "")})
    elif per_kernel:
        out.append({"target": "15f", "text": "replay overhead per kernel call at most 0.3 µs "
                    "(one thread)", "met": all(v <= 0.3 for _, v in per_kernel),
                    "detail": "(compiled − kernels by hand) / kernel calls: " + ", ".join(
                        f"{w} {v:+.2f} µs" for w, v in per_kernel)})
    mnist = report["steps"].get("mnist", {})
    alone = {int(nt): r for nt, r in report.get("scaling", {}).items()}
    if 1 in alone and 2 in alone:
        ratio = alone[2]["median"] / alone[1]["median"]
        rotation = ""
        if 1 in mnist and 2 in mnist and "compiled" in mnist[1] and "compiled" in mnist[2]:
            rotation = (f"; in the systems' rotation above "
                        f"{mnist[2]['compiled']['median'] * 1e6:.1f} µs / "
                        f"{mnist[1]['compiled']['median'] * 1e6:.1f} µs = "
                        f"{mnist[2]['compiled']['median'] / mnist[1]['compiled']['median']:.3f}")
        out.append({"target": "15g", "text": "MNIST-size step compiled, 2 threads at most 0.65x "
                    "its one-thread time (bound stated for an idle machine)", "met": ratio <= 0.65,
                    "detail": f"the step alone, 1 and 2 threads in turn ({alone[1]['n']} samples "
                              f"each): {alone[2]['median'] * 1e6:.1f} µs [IQR "
                              f"{alone[2]['iqr'] * 1e6:.1f}] / {alone[1]['median'] * 1e6:.1f} µs "
                              f"[IQR {alone[1]['iqr'] * 1e6:.1f}] = {ratio:.3f}{rotation}"})
    rows = [r for r in report.get("gemm", []) if r["shape"].count("x") == 2
            and r["shape"].split("x")[0] == r["shape"].split("x")[1]]
    if rows:
        worst = min(rows, key=lambda r: r["cygrad"] / r["numpy"])
        out.append({"target": "15h", "text": "gemm at least 1.0x OpenBLAS at 256-2048, both "
                    "dtypes", "met": all(r["cygrad"] >= r["numpy"] for r in rows),
                    "detail": f"lowest cygrad / numpy {worst['cygrad'] / worst['numpy']:.2f} "
                              f"({worst['shape']} {worst['dtype']} {worst['threads']}t) over "
                              f"{len(rows)} rows"})
    return out


NAMES = {"cygrad": "cygrad", "compiled": "cygrad.compile", "kernels": "cygrad kernels by hand",
         "numpy": "numpy by hand", "torch": "PyTorch", "jax": "JAX jit"}
COLUMNS = ("cygrad", "compiled", "kernels", "numpy", "torch", "jax")


def markdown(report):
    lines = [f"# cygrad benchmarks — {report['machine']['date']}", "",
             f"Machine: {report['machine']['cpu']}, {report['machine']['cores']} cores; "
             f"Python {report['machine']['python']}, numpy {report['machine']['numpy']}, "
             f"PyTorch {report['machine']['torch'] or 'not installed'}. "
             f"Load average at start / end: {fmt_load(report['load_start'])} / "
             f"{fmt_load(report['load_end'])}. Command: `{report['machine']['command']}`.", ""]
    if report.get("loads"):
        lines += ["Load average (1, 5, 15 min) before / after each part: " + "; ".join(
            f"{part} {fmt_load(v[0])} / {fmt_load(v[1])}" for part, v in report["loads"].items())
            + ".", ""]
    env = report["machine"]["env"] or "none of " + ", ".join(ENV_KEYS)
    lines += [f"Environment at start: {env}. PyTorch is imported first: the process's one "
              "OpenMP runtime starts with its defaults.", ""]
    lines += ["## Training steps and per-op overhead (µs, median [IQR])", "",
              "| workload | threads | " + " | ".join(NAMES[c] for c in COLUMNS)
              + " | compiled / eager |", "|---|---|" + "---|" * (len(COLUMNS) + 1)]
    for workload, per in report["steps"].items():
        for nt, res in sorted(per.items()):
            cells = [f"{res[s]['median'] * 1e6:.1f} [{res[s]['iqr'] * 1e6:.1f}]" if s in res
                     else "—" for s in COLUMNS]
            ratio = (f"{res['compiled']['median'] / res['cygrad']['median']:.2f}"
                     if "compiled" in res else "—")
            lines.append(f"| {workload} | {nt} | " + " | ".join(cells) + f" | {ratio} |")
    lines += ["", "numpy's column for `op` is a plain numpy `a + b` (no graph), for scale. "
              "JAX: " + (f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}."
                         if jax is not None else "not installed."), ""]
    if report.get("compile"):
        lines += ["cygrad.compile, time of the two capturing calls (the check and the "
                  "replay's code included; the median of fresh compiles, every sample in "
                  "brackets), and of a fresh model's first two eager calls beside each: "
                  + "; ".join(f"{w} {c['capture_ms']:.1f} ms "
                              + (f"[{', '.join(f'{x:.1f}' for x in c['samples_ms'])}] "
                                 if c.get("samples_ms") else "")
                              + (f"against [{', '.join(f'{x:.1f}' for x in c['eager_pair_ms'])}]"
                                 f" ms eager " if c.get("eager_pair_ms") else "")
                              + f"({c['steps']} plan steps, {c['kernels']} kernel calls)"
                              for w, c in report["compile"].items()) + ".", ""]
        overheads = []
        for workload, per in report["steps"].items():
            c = report["compile"].get(workload)
            for nt, res in sorted(per.items()):
                if c and "kernels" in res and "compiled" in res and c["kernels"]:
                    extra = res["compiled"]["median"] - res["kernels"]["median"]
                    overheads.append(f"{workload} {nt}t {extra / c['kernels'] * 1e6:.2f} µs")
        if overheads:
            lines += ["Replay overhead per kernel call, (compiled − kernels by hand) / kernel "
                      "calls: " + "; ".join(overheads) + ".", ""]
    lines += ["",
              "## Targets (ratio of medians in this run; IQR range of the ratio)", "",
              "| target | threads | ratio | bound | anchor in this run | anchor in anchors.md "
              "| met |",
              "|---|---|---|---|---|---|---|"]
    for t in report["targets"]:
        if t["met"] is None:
            lines.append(f"| {t['target']} {t['text']} | {t['threads']} | — | — | — | — | "
                         f"{t['note']} |")
            continue
        lines.append(
            f"| {t['target']} {t['text']} ({NAMES[t['system']]}) | {t['threads']} | "
            f"{t['ratio']:.3f} "
            f"[{t['ratio_iqr'][0]:.3f}–{t['ratio_iqr'][1]:.3f}] | {t['bound']:.3g} | "
            f"{NAMES[t['anchor_system']]} {t['anchor_us']:.1f} µs | "
            f"{t['anchor_doc_us']} µs | {'yes' if t['met'] else '**no**'} |")
    mem = report.get("memory")
    if mem:
        lines += ["", "## Memory, MNIST-size step (1 thread, fresh process per system)", "",
                  "| system | RSS before the first step | peak while stepping "
                  "| taken by the steps |",
                  "|---|---|---|---|"]
        for s in ("cygrad", "numpy", "torch"):
            if s in mem:
                r = mem[s]
                lines.append(f"| {NAMES[s]} | {r['baseline_rss'] / 2**20:.1f} MiB | "
                             f"{r['peak_rss'] / 2**20:.1f} MiB | "
                             f"{r['peak_over_baseline'] / 2**20:.2f} MiB |")
        traced = [f"{NAMES[s]} {mem[s]['traced_peak'] / 2**20:.2f} MiB at peak "
                  f"({mem[s]['traced_between_steps'] / 2**20:.2f} MiB between steps)"
                  for s in ("cygrad", "numpy") if "traced_peak" in mem.get(s, {})]
        if traced:
            lines += ["", "Live Python and numpy memory (tracemalloc, which does not see "
                      "PyTorch's tensors): " + "; ".join(traced) + "."]
        g = mem["cygrad_growth"]
        marks = ", ".join(f"{i}: {v / 2**20:.1f}" for i, v in mem["cygrad"]["rss"])
        lines += ["", f"cygrad RSS from step {g['from_step']} to step {g['to_step']}: "
                  f"{g['bytes'] / 2**20:+.2f} MiB (RSS at steps {marks} MiB)."]
        for t in report["memory_targets"]:
            lines.append(f"- {t['text']}: {'yes' if t['met'] else '**no**'} ({t['detail']})")
    if report.get("compile_targets"):
        lines += ["", "## cygrad.compile's other targets", ""]
        for t in report["compile_targets"]:
            lines.append(f"- {t['target']} {t['text']}: {'yes' if t['met'] else '**no**'} "
                         f"({t['detail']})")
    if report.get("gemm"):
        lines += gemm_table(report)
    return "\n".join(lines) + "\n"


def gemm_table(report):
    """The markdown lines of the gemm rows, with the measured peak where there is one."""
    peak = report.get("peak", {})
    lines = ["", "## gemm (GFLOP/s, median; cygrad = the exact kernel, output preallocated)", ""]
    if peak:
        lines += ["Measured peak of one core (12 register-held FMA chains, no memory traffic): "
                  + ", ".join(f"{d} {v:.1f} GFLOP/s" for d, v in peak.items())
                  + "; `cygrad / peak` is a one-thread row's share of it.", ""]
    lines += ["| shape | dtype | threads | cygrad | numpy (OpenBLAS) | PyTorch | cygrad / numpy | "
              "cygrad / peak |", "|---|---|---|---|---|---|---|---|"]
    for r in report["gemm"]:
        share = (f"{r['cygrad'] / peak[r['dtype']]:.2f}"
                 if r["threads"] == 1 and r["dtype"] in peak else "—")
        lines.append(f"| {r['shape']} | {r['dtype']} | {r['threads']} | {r['cygrad']:.1f} | "
                     f"{r['numpy']:.1f} | {r.get('torch', float('nan')):.1f} | "
                     f"{r['cygrad'] / r['numpy']:.2f} | {share} |")
    return lines


def fmt_load(values):
    return "n/a" if values is None else ", ".join(f"{v:.2f}" for v in values)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer repetitions, shorter runs")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--only", default="tiny,mnist,conv,cnn,gpt,op,memory,gemm",
                   help="comma-separated parts to run")
    p.add_argument("--reps", type=int, default=None, help="repetitions per system")
    p.add_argument("--out", default=RESULTS, help="directory for latest.json / latest.md")
    p.add_argument("--merge", action="store_true",
                   help="update the parts measured now in an existing latest.json (re-run a part "
                        "that a busy machine spoiled)")
    p.add_argument("--plot", metavar="PNG",
                   help="also draw GFLOP/s against size (gemm part, one thread) with the peak "
                        "line into PNG (needs matplotlib)")
    p.add_argument("--memory-worker", help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, default=10_000, help=argparse.SUPPRESS)
    p.add_argument("--marks", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            p.error("--plot needs matplotlib: pip install matplotlib")
        if "gemm" not in args.only.split(",") and not args.merge:
            p.error("--plot draws the gemm part's rows: add gemm to --only (or --merge into "
                    "results that have them)")
    if args.memory_worker:
        marks = {int(m) for m in args.marks.split(",") if m}
        print(json.dumps(memory_worker(args.memory_worker, args.steps, marks)))
        return 0

    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if key in os.environ:
            print(f"warning: {key}={os.environ[key]} is set and may slow numpy's OpenBLAS; "
                  "run `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run.py`",
                  file=sys.stderr)
    if torch is None:
        print("note: PyTorch is not installed: its columns and the targets against it are "
              "skipped", file=sys.stderr)
    if jax is None:
        print("note: JAX is not installed: its columns and the targets against it (15a, 15b) "
              "are skipped", file=sys.stderr)
    if threadpool_limits is None:
        print("note: threadpoolctl is not installed: numpy's BLAS keeps its own thread count",
              file=sys.stderr)
    parts = args.only.split(",")
    thread_counts = [int(t) for t in args.threads.split(",")]
    reps = args.reps or (7 if args.quick else 21)
    seconds = 0.02 if args.quick else 0.05
    report = {"machine": machine_info(), "load_start": load(), "reps": reps,
              "sample_seconds": seconds, "steps": {}, "loads": {}}
    previous = os.path.join(args.out, "latest.json")
    if args.merge and os.path.exists(previous):
        with open(previous) as f:
            old = json.load(f)
        report["steps"] = {w: {int(nt): r for nt, r in per.items()}
                           for w, per in old.get("steps", {}).items()}
        for key in ("memory", "memory_targets", "gemm", "peak", "loads", "compile", "scaling",
                    "replay"):
            if key in old:
                report[key] = old[key]
    if report["load_start"] and report["load_start"][0] > 0.5:
        print(f"warning: load average {report['load_start'][0]:.2f}: other work shares the "
              "cores; re-run when it is lower for cleaner numbers", file=sys.stderr)
    print(f"# {report['machine']['cpu']}, {report['machine']['cores']} cores; numpy "
          f"{np.__version__}; torch {report['machine']['torch']}; load {fmt_load(load())}")

    for workload in [w for w in WORKLOADS if w in parts]:
        report["steps"].setdefault(workload, {})
        before = load()
        for nt in thread_counts:
            gc.collect()
            with threads(nt):
                times = interleaved(WORKLOADS[workload](), reps, seconds,
                                    settle=0.2 if nt > 1 else 0.0)
            res = {name: stats(ts) for name, ts in times.items()}
            report["steps"][workload][nt] = res
            compiled = None if "compiled" not in res else compile_info(workload)
            if compiled is not None:
                report.setdefault("compile", {})[workload] = compiled
            print(f"{workload:6s} {nt}t  " + "  ".join(
                f"{name} {r['median'] * 1e6:8.1f} µs [IQR {r['iqr'] * 1e6:.1f}]"
                for name, r in res.items()), flush=True)
        report["loads"][workload] = [before, load()]
    report["targets"] = evaluate(report["steps"])

    if "memory" in parts and sys.platform.startswith("linux"):
        print("memory: MNIST-size step, fresh processes ...", flush=True)
        before = load()
        mem = report["memory"] = memory(args.quick)
        report["loads"]["memory"] = [before, load()]
        growth = mem["cygrad_growth"]
        report["memory_targets"] = []
        if "torch" in mem:
            ok = mem["cygrad"]["peak_over_baseline"] <= mem["torch"]["peak_over_baseline"]
            report["memory_targets"].append({
                "target": "6a", "text": "6 peak memory of the MNIST-size step no more than "
                "PyTorch's", "met": ok,
                "detail": f"peak RSS over the RSS before the first step: cygrad "
                          f"{mem['cygrad']['peak_over_baseline'] / 2**20:.2f} MiB, PyTorch "
                          f"{mem['torch']['peak_over_baseline'] / 2**20:.2f} MiB; whole "
                          f"process peak: cygrad {mem['cygrad']['peak_rss'] / 2**20:.0f} MiB, "
                          f"PyTorch {mem['torch']['peak_rss'] / 2**20:.0f} MiB"})
        report["memory_targets"].append({
            "target": "6b", "text": f"6 no growth over {growth['to_step']:,} steps", "met":
            growth["bytes"] < 2**20,
            "detail": f"RSS {growth['bytes'] / 2**20:+.2f} MiB from step {growth['from_step']} "
                      f"to {growth['to_step']} (bound: under 1 MiB)"})

    if "gemm" in parts:
        print("gemm: GFLOP/s ...", flush=True)
        before = load()
        rows = gemm_rows(thread_counts, max(3, reps // 3), seconds, args.quick)
        fresh = {(r["shape"], r["dtype"], r["threads"]) for r in rows}
        kept = [r for r in report.get("gemm", [])
                if (r["shape"], r["dtype"], r["threads"]) not in fresh]
        report["gemm"] = sorted(kept + rows, key=lambda r: (r["dtype"], r["threads"],
                                                            GEMM_ORDER[r["shape"]]))
        report["peak"] = {np.dtype(d).name: peak_gflops(d, 5) for d in (np.float32, np.float64)}
        print("  peak of one core (FMA loop): " + ", ".join(
            f"{d} {v:.1f}" for d, v in report["peak"].items()) + " GFLOP/s", flush=True)
        report["loads"]["gemm " + ",".join(map(str, thread_counts))] = [before, load()]

    if "mnist" in parts and {1, 2} <= set(thread_counts):
        print("scaling: the compiled MNIST-size step alone, 1 and 2 threads in turn ...",
              flush=True)
        before = load()
        report["scaling"] = scaling(5 if args.quick else 15, 100 if args.quick else 300)
        report["loads"]["scaling"] = [before, load()]
        print("  " + "  ".join(f"{nt}t {r['median'] * 1e6:.1f} µs [IQR {r['iqr'] * 1e6:.1f}]"
                               for nt, r in report["scaling"].items()), flush=True)

    if "mnist" in parts and "tiny" in parts and 1 in thread_counts:
        print("replay: the compiled steps and their kernels by hand alone, in turn ...",
              flush=True)
        before = load()
        report["replay"] = replay(10 if args.quick else 40, 100 if args.quick else 200)
        report["loads"]["replay"] = [before, load()]
        print("  " + "  ".join(f"{w} {r['per_kernel']['median'] * 1e6:+.2f} µs a kernel "
                               f"[IQR {r['per_kernel']['iqr'] * 1e6:.2f}]"
                               for w, r in report["replay"].items()), flush=True)

    report["compile_targets"] = compile_targets(report)
    report["load_end"] = load()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "latest.json"), "w") as f:
        json.dump(report, f, indent=1, default=str)
    text = markdown(report)
    with open(os.path.join(args.out, "latest.md"), "w") as f:
        f.write(text)
    if args.plot:
        print(f"wrote {plot_gemm(report, args.plot)}")

    print("\ntargets (ratio = cygrad / anchor system, medians of this run):")
    for t in report["targets"]:
        if t["met"] is None:
            print(f"  [{t['target']}] {t['text']} ({t['threads']}t): {t['note']}")
            continue
        print(f"  [{t['target']}] {t['text']} ({t['threads']}t): {t['ratio']:.3f} "
              f"(bound {t['bound']:.3g}; anchor {NAMES[t['anchor_system']]} "
              f"{t['anchor_us']:.1f} µs here, {t['anchor_doc_us']} µs in anchors.md) -> "
              f"{'MET' if t['met'] else 'NOT MET'}")
    for t in report.get("memory_targets", []) + report["compile_targets"]:
        print(f"  [{t['target']}] {t['text']}: {'MET' if t['met'] else 'NOT MET'} "
              f"({t['detail']})")
    print(f"\nwrote {os.path.join(args.out, 'latest.json')} and latest.md "
          f"(load at end {fmt_load(report['load_end'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
