"""Programs written for PyTorch, run on cygrad unedited through `cygrad.as_torch` (`import
torch` gives cygrad): the arithmetic of micrograd's test against torch, both ways."""

import subprocess
import sys
import textwrap

import pytest

from helpers import run_program

PROGRAM = textwrap.dedent("""
    import torch

    x = torch.Tensor([-4.0]).double()
    x.requires_grad = True
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    y.backward()
    print(repr(y.data.item()), repr(x.grad.item()))

    a = torch.Tensor([-4.0]).double()
    b = torch.Tensor([2.0]).double()
    a.requires_grad = True
    b.requires_grad = True
    c = a + b
    d = a * b + b**3
    c = c + c + 1
    c = c + 1 + c + (-a)
    d = d + d * 2 + (b + a).relu()
    d = d + 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g = g + 10.0 / f
    g.backward()
    print(repr(g.data.item()), repr(a.grad.item()), repr(b.grad.item()))
    print(torch.__name__)
""")


def run(program, on_cygrad):
    return run_program(program, on_cygrad)


def test_runs_unedited_on_cygrad():
    lines = run(PROGRAM, on_cygrad=True)
    assert lines[-1] == "cygrad"
    y, xg = map(float, lines[0].split())
    assert (y, xg) == (-20.0, 46.0)  # micrograd's test values, worked by hand there


def test_gives_torchs_numbers():
    pytest.importorskip("torch")
    ours, theirs = run(PROGRAM, on_cygrad=True), run(PROGRAM, on_cygrad=False)
    assert theirs[-1] == "torch"
    assert ours[:-1] == theirs[:-1]  # float64: the very same digits


def test_a_missing_torch_module_is_named():
    out = subprocess.run([sys.executable, "-c", "import cygrad.as_torch; "
                          "cygrad.as_torch.install(); import torch.fx"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "torch.fx" in out.stderr


def test_every_alias_imports_and_a_program_using_them_matches_torch():
    """Each torch module name cygrad answers imports; a program importing from several of them
    (torch.func, torch.distributions, torch.nn.utils.parametrizations, torch.cuda.amp) prints
    torch's numbers."""
    import importlib.util

    from cygrad.as_torch import ALIASES

    optional = ("torch.utils.tensorboard",)  # needs the tensorboard package, as torch's does
    names = " ".join(n for n in ALIASES if importlib.util.find_spec("tensorboard")
                     or not n.startswith(optional))
    code = ("import importlib\n"
            f"for name in {names!r}.split():\n"
            "    importlib.import_module(name)\n"
            f"print('all', len({names!r}.split()))\n")
    assert run(code, on_cygrad=True) == [f"all {len(names.split())}"]
    program = """
import torch
import torch.nn as nn
from torch.func import functional_call
from torch.nn.utils.parametrizations import weight_norm
from torch.distributions import Normal, kl_divergence
from torch.cuda.amp import GradScaler
m = weight_norm(nn.Linear(3, 2).double())
with torch.no_grad():
    for i, p in enumerate(m.parameters()):
        p.copy_(torch.arange(p.numel(), dtype=torch.float64).reshape(p.shape) * 0.1 + i)
x = torch.arange(12, dtype=torch.float64).reshape(4, 3) / 7
print(repr(float(m(x).sum())))
print(repr(float(functional_call(m, {k: v * 2 for k, v in m.named_parameters()}, (x,)).sum())))
print(repr(float(kl_divergence(Normal(torch.zeros(2, dtype=torch.float64), 1.0),
                               Normal(torch.ones(2, dtype=torch.float64), 2.0)).sum())))
print(GradScaler.__name__)
"""
    pytest.importorskip("torch")
    ours, theirs = run(program, on_cygrad=True), run(program, on_cygrad=False)
    assert ours[-1] == theirs[-1] == "GradScaler"
    for a, b in zip(ours[:-1], theirs[:-1], strict=True):
        assert abs(float(a) - float(b)) <= 1e-12 * max(1.0, abs(float(b)))


NAMES = textwrap.dedent("""
    import torch

    x = torch.tensor([1., 2.], dtype=torch.float64)
    print(repr(x), x.dtype, x.shape, x.type(), torch.FloatTensor, [torch.int64])
    print(x.type() == 'torch.DoubleTensor', str(x.dtype) == 'torch.float64')
    print(torch.zeros(2, 3).size(), torch.tensor([1, 2]).dtype, torch.tensor([True]).dtype)
""")


def test_a_program_run_as_torch_prints_torchs_names():
    """Under `python -m cygrad run` shapes, dtypes and type names read torch.*, as the program
    prints and compares them under torch; imported as cygrad they read cygrad.*."""
    ours = run_program(NAMES, True)
    assert ours[1] == "True True"
    assert "cygrad" not in "\n".join(ours)
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        assert ours == run_program(NAMES, False)
    plain = run_program(NAMES.replace("import torch", "import cygrad as torch"), False)
    assert plain[1] == "False False"
    assert plain[::2] == [line.replace("torch.", "cygrad.") for line in ours[::2]]
