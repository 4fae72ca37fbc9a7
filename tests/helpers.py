"""check_op: the one-line op test. Forward against numpy, backward by gradcheck (float64),
on every backend and dtype, and against PyTorch where it is installed."""

import numpy as np

import cygrad

try:
    import torch
except ImportError:  # PyTorch is an optional cross-check
    torch = None

BACKENDS = [b for b in ("cython", "numpy") if b in cygrad.backend.available()]
TOLERANCE = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-12}


def random_inputs(shapes, dtype, seed=0, positive=False, low=-2.0, high=2.0):
    rng = np.random.default_rng(seed)
    arrays = []
    for shape in shapes:
        a = rng.uniform(0.5, 2.0, shape) if positive else rng.uniform(low, high, shape)
        arrays.append(a.astype(dtype))
    return arrays


def check_op(fn, reference, *shapes, torch_fn=None, positive=False, low=-2.0, high=2.0,
             atol=1e-5, rtol=1e-3):
    """fn maps cygrad tensors to a tensor; reference maps numpy arrays to the expected array;
    torch_fn (optional) maps torch tensors to a torch tensor."""
    for dtype in (np.dtype(np.float32), np.dtype(np.float64)):
        arrays = random_inputs(shapes, dtype, positive=positive, low=low, high=high)
        expected = np.asarray(reference(*arrays))
        for name in BACKENDS:
            with cygrad.backend.using(name):
                xs = [cygrad.tensor(a, requires_grad=True) for a in arrays]
                out = fn(*xs)
                assert out.dtype == dtype, f"{name}: {dtype} in, {out.dtype} out"
                tol = TOLERANCE[dtype] * max(1.0, float(np.abs(expected).max(initial=0)))
                np.testing.assert_allclose(out.numpy(), expected, rtol=tol * 10, atol=tol,
                                           err_msg=f"forward on {name}, {dtype}")
                out.sum().backward()
                for i, x in enumerate(xs):
                    assert x.grad is not None and x.grad.dtype == dtype, (
                        f"input {i}: gradient missing or of the wrong dtype on {name}")
                    assert x.grad.shape == x.shape
                cygrad.gradcheck(fn, *[cygrad.tensor(a, dtype=np.float64, requires_grad=True)
                                       for a in arrays], atol=atol, rtol=rtol)
    if torch is not None and torch_fn is not None:
        arrays = random_inputs(shapes, np.float64, positive=positive, low=low, high=high)
        xs = [cygrad.tensor(a, requires_grad=True) for a in arrays]
        ts = [torch.tensor(a, requires_grad=True) for a in arrays]
        out, tout = fn(*xs), torch_fn(*ts)
        np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
        out.sum().backward()
        tout.sum().backward()
        for x, t in zip(xs, ts):
            np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=1e-9, atol=1e-12)


def run_program(program, on_cygrad, *python_args):
    """A program's printed lines, run in a fresh interpreter: with `import torch` giving
    cygrad (on_cygrad, as `python -m cygrad run`) or torch itself."""
    import subprocess
    import sys

    code = ("import cygrad.as_torch; cygrad.as_torch.install()\n" if on_cygrad else "") + program
    out = subprocess.run([sys.executable, *python_args, "-c", code], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def compiled_mse_step(model, opt, x, y):
    """A cygrad.compile'd training step of model on (x, y): MSE loss, backward, opt.step();
    returns the loss (detached)."""
    import cygrad

    @cygrad.compile
    def step():
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        return loss.detach()

    return step
