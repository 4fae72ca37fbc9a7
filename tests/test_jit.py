"""cygrad.jit: torch.jit's decorators return what they are given (no TorchScript compiler:
the code runs as Python, with the same results); archives raise."""

import pytest

import cygrad
from cygrad import jit


def test_script_and_trace_return_their_argument():
    @jit.script
    def fused_gelu(x):
        return x * 0.5 * (1.0 + cygrad.erf(x / 1.41421))

    x = cygrad.tensor([0.5, -1.0])
    assert fused_gelu(x).tolist() == (x * 0.5 * (1.0 + cygrad.erf(x / 1.41421))).tolist()
    model = cygrad.nn.Linear(2, 3)
    assert jit.script(model) is model and jit.trace(model, x) is model
    assert jit.ignore(len) is len and jit.ignore(drop=True)(len) is len
    assert not jit.is_scripting() and not jit.is_tracing()
    assert jit.annotate(list, [1]) == [1]


def test_archives_raise():
    with pytest.raises(NotImplementedError, match="TorchScript archives"):
        jit.save(cygrad.nn.Linear(2, 2), "model.pt")
    with pytest.raises(NotImplementedError, match="TorchScript archives"):
        jit.load("model.pt")
