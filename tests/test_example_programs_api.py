"""Names pytorch/examples' programs use that cygrad lacked (tried 2026-12-04: gat, dcgan,
word_language_model): factories' size= keyword, `import torch.backends.cudnn`, Tensor.is_xpu
and the other device/layout questions, torch.onnx, torch.nn.modules' layout, and log(0)
without numpy's warning. Each against torch where it is installed."""

import multiprocessing
import subprocess
import sys
import warnings

import numpy as np
import pytest

import cygrad
import cygrad.nn as nn
from cygrad.nn import modules
from helpers import run_program


def run(program, on_cygrad):
    return run_program(program, on_cygrad)


@pytest.mark.parametrize("name", ["zeros", "ones", "empty", "rand", "randn"])
def test_factories_take_size_as_a_keyword(name):
    f = getattr(cygrad, name)
    assert f(size=(2, 3)).shape == (2, 3) == f(2, 3).shape == f(size=[2, 3]).shape
    assert f(size=()).shape == ()
    with pytest.raises(TypeError, match="multiple values for argument 'size'"):
        f(2, size=(3,))
    with pytest.raises(TypeError, match="size"):
        f()


def test_factories_size_keyword_draws_as_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(3)
    cygrad.manual_seed(3)
    np.testing.assert_array_equal(cygrad.randn(size=(4, 5)).numpy(),
                                  torch.randn(size=(4, 5)).numpy())
    np.testing.assert_array_equal(cygrad.rand(size=(3,), dtype=cygrad.float64).numpy(),
                                  torch.rand(size=(3,), dtype=torch.float64).numpy())


def test_device_and_layout_questions():
    t = cygrad.zeros(3)
    for name in ["is_xpu", "is_xla", "is_ipu", "is_mtia", "is_maia", "is_vulkan", "is_mkldnn",
                 "is_sparse_csr", "is_nested", "is_cuda", "is_mps", "is_sparse", "is_meta"]:
        assert getattr(t, name) is False, name
    assert not (t.is_conj() or t.is_neg() or t.is_shared() or t.is_distributed())
    assert t.is_set_to(t) and t.view(3).is_set_to(t)
    assert not t.is_set_to(t.clone()) and not t[:2].is_set_to(t) and not t[1:].is_set_to(t)
    with pytest.raises(RuntimeError, match="sparse coordinate"):
        t.is_coalesced()


def test_device_questions_as_torch():
    torch = pytest.importorskip("torch")
    t, c = torch.zeros(3), cygrad.zeros(3)
    for name in [n for n in dir(t) if n.startswith("is_")]:
        value = getattr(t, name)
        if isinstance(value, bool):
            assert getattr(c, name) == value, name
    assert c.view(3).is_set_to(c) == t.view(3).is_set_to(t)
    assert c[1:].is_set_to(c) == t[1:].is_set_to(t)


def test_onnx():
    assert cygrad.onnx.is_in_onnx_export() is False
    with pytest.raises(NotImplementedError, match="onnx"):
        cygrad.onnx.export(nn.Linear(2, 2), cygrad.ones(1, 2), "m.onnx")


def test_nn_modules_layout():
    """torch.nn.modules.<file>.<Class> names the class cygrad.nn has (one class, two names)."""
    assert modules.linear.Linear is nn.Linear and modules.Linear is nn.Linear
    assert modules.module.Module is nn.Module
    assert type(nn.MultiheadAttention(4, 2).out_proj) is \
        modules.linear.NonDynamicallyQuantizableLinear
    assert modules.utils._pair(3) == (3, 3) and modules.utils._pair((1, 2)) == (1, 2)
    assert modules.utils._triple(1) == (1, 1, 1)
    import cygrad.nn.modules.rnn as rnn  # importable as a file of its own

    assert rnn.LSTM is nn.LSTM


def test_nn_modules_layout_is_torchs():
    torch = pytest.importorskip("torch")
    for sub, names in modules.LAYOUT.items():
        theirs = getattr(torch.nn.modules, sub)
        for name in names.split():
            assert getattr(theirs, name).__name__ == name, (sub, name)
            assert getattr(getattr(modules, sub), name).__name__ == name


def test_example_imports_under_as_torch():
    """dcgan's `import torch.backends.cudnn as cudnn`, word_language_model's `import torch.onnx`
    and its safe_globals list of torch.nn.modules classes."""
    program = """
import torch
import torch.backends.cudnn as cudnn
import torch.onnx
from torch.nn.modules.module import Module
from torch.nn.modules.utils import _pair
cudnn.benchmark = True
print(cudnn.benchmark, torch.backends.cudnn.benchmark, torch.backends.cudnn.is_available())
print(torch.onnx.is_in_onnx_export(), _pair(2), Module.__name__)
with torch.serialization.safe_globals([torch.nn.modules.dropout.Dropout,
                                       torch.nn.modules.linear.Linear,
                                       torch.nn.modules.linear.NonDynamicallyQuantizableLinear,
                                       torch.nn.modules.transformer.TransformerEncoder]):
    print(torch.nn.modules.linear.Linear in torch.serialization.get_safe_globals())
print(torch.zeros(size=(2, 3)).shape, torch.zeros(1).is_xpu)
"""
    ours = run(program, on_cygrad=True)
    assert ours[0].split()[:2] == ["True", "True"]
    assert ours[1:3] == ["False (2, 2) Module", "True"]
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    theirs = run(program, on_cygrad=False)
    assert theirs == ours  # run as torch, shapes print as torch.Size


@pytest.mark.parametrize("expr", ["cygrad.log(cygrad.zeros(2))", "cygrad.log(-cygrad.ones(2))",
                                  "cygrad.sqrt(-cygrad.ones(2))", "cygrad.zeros(2).reciprocal()",
                                  "cygrad.exp(cygrad.full((2,), 1000.0))",
                                  "cygrad.asin(cygrad.full((2,), 2.0))",
                                  "cygrad.log2(cygrad.zeros(2, dtype=cygrad.float64))"])
def test_poles_and_domain_edges_are_silent(expr):
    """torch gives inf and NaN at poles, domains' edges and overflows without a warning
    (word_language_model's mask is log(tril(ones)))."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = eval(expr)
    assert not np.isfinite(y.numpy()).any()


def test_log_of_zero_backward_is_silent():
    x = cygrad.zeros(2, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cygrad.log(x).sum().backward()
    assert np.isinf(x.grad.numpy()).all()


def test_cygrad_run_imports_the_programs_own_modules(tmp_path):
    """word_language_model's main.py imports its data.py and model.py: `python -m cygrad run
    path/main.py` from another folder finds them, as `python path/main.py` does."""
    folder = tmp_path / "program"
    folder.mkdir()
    (folder / "model_part.py").write_text("WIDTH = 7\n")
    (folder / "main.py").write_text("import os\nimport model_part\nimport torch\n"
                                    "print(model_part.WIDTH, os.path.isabs(__file__), "
                                    "torch.__name__)\n")
    out = subprocess.run([sys.executable, "-m", "cygrad", "run", "program/main.py"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["7", "True", "cygrad"]


@pytest.mark.parametrize("method", ["spawn", "forkserver", "fork"])
def test_cygrad_run_child_processes_import_cygrad_as_torch(tmp_path, method):
    """A process that multiprocessing starts by spawn or forkserver is a fresh interpreter:
    its `import torch` gives cygrad too (before: the real torch, or ModuleNotFoundError), and
    a state dict sent to it loads there."""
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    (tmp_path / "main.py").write_text(
        "import multiprocessing as mp\nimport torch\nimport torch.nn as nn\n\n"
        "def work(q, state):\n    m = nn.Linear(3, 2)\n    m.load_state_dict(state)\n"
        "    q.put((torch.__name__, m(torch.ones(1, 3)).detach().tolist()))\n\n"
        "if __name__ == '__main__':\n    torch.manual_seed(0)\n    model = nn.Linear(3, 2)\n"
        f"    ctx = mp.get_context({method!r})\n    q = ctx.Queue()\n"
        "    p = ctx.Process(target=work, args=(q, model.state_dict()))\n    p.start()\n"
        "    name, out = q.get(timeout=60)\n    p.join()\n"
        "    print(name, out == model(torch.ones(1, 3)).detach().tolist(), p.exitcode)\n")
    out = subprocess.run([sys.executable, "-m", "cygrad", "run", "main.py"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["cygrad", "True", "0"]
