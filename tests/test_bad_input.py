"""Bad input: every case raises a clear exception whose message names what is wrong, in this
process and in a fresh one (where a crash inside a kernel would show as a dead process rather
than a failed assertion).

Each case is one snippet. `test_in_process` runs it under pytest.raises; `test_in_subprocess`
runs the same snippet with `sys.executable -c`, which must exit normally after printing the
exception's type. Subprocesses are batched per group of cases (one interpreter start each) and a
process that dies reports the case it was running.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cygrad
from cygrad import nn, optim  # noqa: F401  (used by the snippets)
from cygrad.nn import functional as F  # noqa: F401

PRELUDE = """\
import numpy as np
import cygrad
from cygrad import nn, optim
from cygrad.nn import functional as F
"""

T32 = "cygrad.tensor(np.ones({}, np.float32))"
LINEAR_STATE = '{"weight": np.zeros((3, 2), np.float32), "bias": np.zeros(3, np.float32)}'

# id: (group, snippet, exception type, regex its message must match)
CASES = {
    # ------------------------------------------------------------ what a tensor may hold
    "int-array-requires-grad": ("dtype", "cygrad.tensor(np.arange(3, dtype=np.int32), "
                                "requires_grad=True)", RuntimeError,
                                r"only Tensors of floating point dtype can require gradients"),
    "int-parameter": ("dtype", "nn.Parameter(np.arange(3))", RuntimeError, r"floating point"),
    "int-inplace-float": ("dtype", "cygrad.tensor([1, 2]).add_(1.5)", RuntimeError,
                          r"result type Float can't be cast to the desired output type Long"),
    "complex-array": ("dtype", "cygrad.tensor(np.ones(2, complex))", TypeError,
                      r"no dtype for numpy arrays of complex128"),
    "complex-list": ("dtype", "cygrad.tensor([1 + 2j, 3])", TypeError, r"dtype complex128"),
    "complex-to-float": ("dtype", "cygrad.tensor(np.ones(2, complex), dtype='float32')",
                         TypeError, r"cannot make a tensor of cygrad.float32 from data of numpy "
                         r"dtype complex128"),
    "object-array": ("dtype", "cygrad.tensor(np.array([1.0, 'a'], dtype=object))", TypeError,
                     r"no dtype for numpy arrays of object"),
    "object-list": ("dtype", "cygrad.tensor([1.0, None])", TypeError, r"dtype object"),
    "float16": ("dtype", "cygrad.tensor(np.ones(2, np.float16))", TypeError,
                r"no dtype for numpy arrays of float16"),
    # ------------------------------------------------------------ shapes
    "matmul-inner": ("shapes", f"{T32.format('(2, 3)')} @ {T32.format('(4, 5)')}", RuntimeError,
                     r"mat1 and mat2 shapes cannot be multiplied \(2x3 and 4x5\)"),
    "matmul-0d": ("shapes", f"{T32.format('()')} @ {T32.format(3)}", RuntimeError,
                  r"both arguments to matmul need to be at least 1D, but they are 0D and 1D"),
    "broadcast": ("shapes", f"{T32.format('(2, 3)')} + {T32.format(4)}", RuntimeError,
                  r"size of tensor a \(3\) must match the size of tensor b \(4\) at "
                  r"non-singleton dimension 1"),
    "broadcast-array": ("shapes", f"{T32.format('(2, 3)')} * np.ones((3, 2), np.float32)",
                        RuntimeError, r"size of tensor a \(3\) must match the size of tensor b "
                        r"\(2\) at non-singleton dimension 1"),
    "linear-features": ("shapes", "nn.Linear(3, 2)(" + T32.format("(4, 2)") + ")", RuntimeError,
                        r"input of shape \(4, 2\) does not fit weight of shape \(2, 3\)"),
    "backward-grad-shape": ("shapes", "(cygrad.tensor(np.ones(3), requires_grad=True) * 2)"
                            ".backward(np.ones(4))", RuntimeError,
                            r"grad_output has a shape of \(4,\) and output has a shape of "
                            r"\(3,\)"),
    # ------------------------------------------------------------ loss targets (torch's errors)
    "cross-entropy-target-length": (
        "losses", f"F.cross_entropy({T32.format('(4, 3)')}, np.zeros(5, int))", ValueError,
        r"Expected input batch_size \(4\) to match target batch_size \(5\)"),
    "cross-entropy-target-2d": (
        "losses", f"nn.CrossEntropyLoss()({T32.format('(4, 3)')}, np.zeros((4, 1), int))",
        RuntimeError, r"0D or 1D target tensor expected, multi-target not supported"),
    "cross-entropy-logits-3d": (
        "losses", f"F.cross_entropy({T32.format('(4, 3, 2)')}, np.zeros(4, int))", RuntimeError,
        r"Expected target size \[4, 2\], got \[4\]"),
    "cross-entropy-float-targets": (
        "losses", f"F.cross_entropy({T32.format('(4, 3)')}, np.zeros(4))", RuntimeError,
        r"expected target dtype to be Long or Byte, but got float64"),
    "cross-entropy-class-too-large": (
        "losses", f"F.cross_entropy({T32.format('(4, 3)')}, [0, 1, 3, 0])", IndexError,
        r"Target 3 is out of bounds"),
    "cross-entropy-class-negative": (
        "losses", f"nn.CrossEntropyLoss()({T32.format('(4, 3)')}, [0, -1, 2, 0])", IndexError,
        r"Target -1 is out of bounds"),
    "nll-weight-dtype": (
        "losses", f"F.nll_loss({T32.format('(4, 3)')}, np.zeros(4, int), "
        "cygrad.tensor(np.ones(3)))", RuntimeError,
        r"expected scalar type Float but found Double"),
    "bce-range": ("losses", f"F.binary_cross_entropy({T32.format(3)} * 2, {T32.format(3)})",
                  RuntimeError, r"all elements of input should be between 0 and 1"),
    "mse-shape": ("losses", f"F.mse_loss({T32.format('(4, 3)')}, np.ones((4, 2)))", RuntimeError,
                  r"size of tensor a \(3\) must match the size of tensor b \(2\) at "
                  r"non-singleton dimension 1"),
    "mse-module-shape": ("losses", f"nn.MSELoss()({T32.format('(4, 3)')}, {T32.format(4)})",
                         RuntimeError, r"size of tensor a \(3\) must match the size of tensor "
                         r"b \(4\)"),
    # ------------------------------------------------------------ convolution and pooling
    "conv-rank": ("conv", f"nn.Conv2d(3, 4, 3)({T32.format('(8, 8)')})", RuntimeError,
                  r"Expected 3D \(unbatched\) or 4D \(batched\) input to conv2d, but got "
                  r"input of size: \[8, 8\]"),
    "conv-channels": ("conv", f"nn.Conv2d(3, 4, 3)({T32.format('(2, 1, 8, 8)')})", RuntimeError,
                      r"expected input\[2, 1, 8, 8\] to have 3 channels, but got 1 channels"),
    "conv-kernel-too-large": ("conv", f"nn.Conv2d(1, 4, 5)({T32.format('(2, 1, 3, 3)')})",
                              RuntimeError, r"padded input size per channel: \(3 x 3\). Kernel "
                              r"size: \(5 x 5\)"),
    "conv-kernel-too-large-padded": (
        "conv", f"nn.Conv2d(1, 4, 5, padding=1)({T32.format('(2, 1, 2, 2)')})", RuntimeError,
        r"padded input size per channel: \(4 x 4\). Kernel size: \(5 x 5\)"),
    "pool-kernel-too-large": ("conv", f"nn.MaxPool2d(4)({T32.format('(1, 1, 3, 3)')})",
                              RuntimeError, r"max_pool2d: Given input size: \(1x3x3\). "
                              r"Calculated output size: \(1x0x0\). Output size is too small"),
    "conv-stride-0": ("conv", "nn.Conv2d(1, 1, 3, stride=0)", RuntimeError,
                      r"non-positive stride is not supported"),
    "conv2d-stride-0": ("conv", f"F.conv2d({T32.format('(1, 1, 4, 4)')}, "
                        f"{T32.format('(1, 1, 3, 3)')}, stride=0)", RuntimeError,
                        r"non-positive stride is not supported"),
    "maxpool-stride-0": ("conv", "nn.MaxPool2d(2, stride=0)", RuntimeError,
                         r"MaxPool2d: stride should be greater than zero, but got \(0, 0\)"),
    "avgpool-stride-0": ("conv", f"F.avg_pool2d({T32.format('(1, 1, 4, 4)')}, 2, stride=0)",
                         RuntimeError, r"stride should be greater than zero"),
    "conv-negative-padding": ("conv", "nn.Conv2d(1, 1, 3, padding=-1)", RuntimeError,
                              r"negative padding is not supported"),
    "conv-no-output-channels": ("conv", f"F.conv2d({T32.format('(1, 1, 4, 4)')}, "
                                f"{T32.format('(0, 1, 3, 3)')})", RuntimeError,
                                r"expected weight to be at least 1 at dimension 0"),
    "conv-padding-too-large": ("conv", f"F.conv2d({T32.format('(1, 1, 4, 4)')}, "
                               f"{T32.format('(1, 1, 3, 3)')}, padding=2**40)", RuntimeError,
                               r"too large"),
    "conv2d-negative-padding": ("conv", f"F.conv2d({T32.format('(1, 1, 4, 4)')}, "
                                f"{T32.format('(1, 1, 3, 3)')}, padding=-1)", RuntimeError,
                                r"negative padding is not supported"),
    "pool-pad-over-half": ("conv", f"F.max_pool2d({T32.format('(1, 1, 4, 4)')}, 3, padding=2)",
                           RuntimeError, r"pad should be at most half of effective kernel size, "
                           r"but got pad=2, kernel_size=3 and dilation=1"),
    "conv-groups": ("conv", "nn.Conv2d(3, 4, 3, groups=2)", ValueError,
                    r"in_channels must be divisible by groups"),
    # ------------------------------------------------------------ dropout
    "dropout-above-1-module": ("layers", "nn.Dropout(1.5)", ValueError,
                               r"dropout probability has to be between 0 and 1, but got 1.5"),
    "dropout-negative": ("layers", "nn.Dropout(-0.1)", ValueError,
                         r"between 0 and 1, but got -0.1"),
    "dropout-above-1": ("layers", f"F.dropout({T32.format(3)}, p=1.5)", ValueError,
                        r"dropout probability .* got 1.5"),
    "dropout-nan": ("layers", "nn.Dropout(float('nan'))", ValueError, r"got nan"),
    # ------------------------------------------------------------ optimisers
    "sgd-negative-lr": ("optim", "optim.SGD(nn.Linear(2, 2).parameters(), lr=-0.1)",
                        ValueError, r"Invalid learning rate: -0.1"),
    "adam-negative-lr": ("optim", "optim.Adam(nn.Linear(2, 2).parameters(), lr=-1e-3)",
                         ValueError, r"Invalid learning rate: -0.001"),
    "adadelta-rho-above-1": ("optim", "optim.Adadelta(nn.Linear(2, 2).parameters(), rho=1.5)",
                             ValueError, r"Invalid rho value: 1.5"),
    "sgd-momentum-negative": ("optim", "optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1, "
                              "momentum=-0.5)", ValueError, r"Invalid momentum value: -0.5"),
    "adam-beta1-1": ("optim", "optim.Adam(nn.Linear(2, 2).parameters(), betas=(1.0, 0.999))",
                     ValueError, r"Invalid beta parameter at index 0: 1.0"),
    "adam-beta2-negative": ("optim", "optim.Adam(nn.Linear(2, 2).parameters(), "
                            "betas=(0.9, -0.1))", ValueError,
                            r"Invalid beta parameter at index 1: -0.1"),
    "adamw-beta2-above-1": ("optim", "optim.AdamW(nn.Linear(2, 2).parameters(), "
                            "betas=(0.9, 1.5))", ValueError,
                            r"Invalid beta parameter at index 1: 1.5"),
    "sgd-nan-lr": ("optim", "optim.SGD(nn.Linear(2, 2).parameters(), lr=float('nan'))",
                   ValueError, r"Invalid learning rate: nan"),
    "sgd-string-lr": ("optim", "optim.SGD(nn.Linear(2, 2).parameters(), lr='0.1')",
                      (TypeError, ValueError), r"(learning rate|lr)"),
    "adam-one-beta": ("optim", "optim.Adam(nn.Linear(2, 2).parameters(), betas=(0.9,))",
                      (TypeError, ValueError), r"beta"),
    # ------------------------------------------------------------ load_state_dict (torch's)
    "state-missing-key": ("state", 'nn.Linear(2, 3).load_state_dict({"weight": '
                          'np.zeros((3, 2), np.float32)})', RuntimeError,
                          r'loading state_dict for Linear:\s+Missing key\(s\) in state_dict: '
                          r'"bias"'),
    "state-unexpected-key": ("state", f"nn.Linear(2, 3).load_state_dict({{**{LINEAR_STATE}, "
                             "'extra': np.zeros(1)})", RuntimeError,
                             r'Unexpected key\(s\) in state_dict: "extra"'),
    "state-wrong-shape": ("state", "nn.Linear(2, 3).load_state_dict({'weight': "
                          "np.zeros((2, 3), np.float32), 'bias': np.zeros(3, np.float32)})",
                          RuntimeError, r"size mismatch for weight: copying a param with shape "
                          r"cygrad.Size\(\[2, 3\]\) from checkpoint, the shape in current "
                          r"model is cygrad.Size\(\[3, 2\]\)"),
    "state-not-a-tensor": ("state", "nn.Linear(2, 3).load_state_dict({'weight': 'abc', "
                           "'bias': np.zeros(3, np.float32)})", RuntimeError,
                           r'While copying the parameter named "weight", expected cygrad.Tensor '
                           r"or Tensor-like object from checkpoint but received <class 'str'>"),
    "state-not-a-mapping": ("state", "nn.Linear(2, 3).load_state_dict([1])", TypeError,
                            r"Expected state_dict to be dict-like, got <class 'list'>"),
    # ------------------------------------------------------------ backward
    "backward-non-scalar": ("backward", "(cygrad.tensor(np.ones(3), requires_grad=True) * 2)"
                            ".backward()", RuntimeError,
                            r"grad can be implicitly created only for scalar outputs \(got an "
                            r"output of shape \(3,\)\)"),
    "backward-no-grad": ("backward", f"{T32.format(3)}.sum().backward()", RuntimeError,
                         r"does not require grad"),
    # ------------------------------------------------------------ float32 with float64
    "bool-sub": ("mixed", "cygrad.tensor([True]) - cygrad.tensor([False])", RuntimeError,
                 r"Subtraction, the `-` operator, with a bool tensor is not supported"),
    "mixed-matmul": ("mixed", f"{T32.format('(2, 2)')} @ cygrad.tensor(np.ones((2, 2)))",
                     RuntimeError, r"expected m1 and m2 to have the same dtype, but got: "
                     r"float32 != float64"),
    "mixed-linear": ("mixed", f"nn.Linear(2, 2, dtype='float64')({T32.format('(1, 2)')})",
                     RuntimeError, r"input has dtype (cygrad.)?float32 but weight has dtype "
                     r"(cygrad.)?float64"),
    "mixed-conv": ("mixed", f"nn.Conv2d(1, 1, 2, dtype='float64')({T32.format('(1, 1, 3, 3)')})",
                   RuntimeError, r"input has dtype (cygrad.)?float32 but weight has dtype "
                   r"(cygrad.)?float64"),
}

# Library bugs: the case is right, the library's message is not (yet). Reported with a repro.
BUGS = {}  # case name -> reason, for a case the library still gets wrong (xfail, strict)


def params():
    return [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=BUGS[name]))
            if name in BUGS else name for name in CASES]


@pytest.mark.parametrize("name", params())
def test_in_process(name):
    _, snippet, error, match = CASES[name]
    namespace = {}
    exec(PRELUDE, namespace)
    with pytest.raises(error, match=match):
        exec(compile(snippet, f"<case {name}>", "exec"), namespace)


# ---------------------------------------------------------------------- in a fresh process

RUNNER = PRELUDE + """
import sys
for name, snippet in CASES:
    print("start", name, flush=True)
    try:
        exec(snippet, {"np": np, "cygrad": cygrad, "nn": nn, "optim": optim, "F": F})
    except Exception as e:
        print("raised", name, " ".join(c.__name__ for c in type(e).__mro__), flush=True)
        print("message", name, str(e).replace("\\n", " "), flush=True)
    else:
        print("no-exception", name, flush=True)
"""

_results = {}


def _run_group(group):
    """Run every case of a group in one fresh interpreter: {name: (types, message) or None}."""
    if group not in _results:
        cases = [(n, c[1]) for n, c in CASES.items() if c[0] == group]
        src = str(Path(cygrad.__file__).resolve().parents[1])  # the cygrad these tests import
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
        proc = subprocess.run([sys.executable, "-c", f"CASES = {cases!r}\n{RUNNER}"],
                              capture_output=True, text=True, timeout=120, env=env)
        outcome, last = {}, None
        for line in proc.stdout.splitlines():
            kind, name, *rest = line.split(" ", 2)
            if kind == "start":
                last = name
            elif kind == "raised":
                outcome[name] = [rest[0].split(), None]
            elif kind == "message":
                outcome[name][1] = rest[0] if rest else ""
            elif kind == "no-exception":
                outcome[name] = None
        _results[group] = (proc.returncode, proc.stderr, last, outcome)
    return _results[group]


@pytest.mark.parametrize("name", params())
def test_in_subprocess(name):
    group, _, error, match = CASES[name]
    returncode, stderr, last, outcome = _run_group(group)
    assert name in outcome or returncode == 0, (
        f"the process died (returncode {returncode}) while running case {last!r}:\n{stderr}")
    assert returncode == 0, f"returncode {returncode}:\n{stderr}"
    assert outcome[name] is not None, f"{name}: no exception raised"
    types, message = outcome[name]
    expected = error if isinstance(error, tuple) else (error,)
    assert any(e.__name__ in types for e in expected), f"{name}: raised {types[0]}"
    assert re.search(match, message), f"{name}: message {message!r} does not match {match!r}"


def test_cases_table():
    """The cases table itself: one group per case, snippets that compile, unique ids."""
    groups = {c[0] for c in CASES.values()}
    assert groups == {"dtype", "shapes", "losses", "conv", "layers", "optim", "state",
                      "backward", "mixed"}
    for name, (_, snippet, _, _) in CASES.items():
        compile(snippet, name, "exec")
    assert set(BUGS) <= set(CASES)
    assert np.ones(1).dtype == np.float64  # the snippets rely on numpy's float64 default
