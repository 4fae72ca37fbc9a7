"""Tensor.register_post_accumulate_grad_hook: called once per backward after the leaf's .grad
has the new gradient (torch's order and values; skipped without torch), the optimizer-in-
backward pattern, the handle, torch's errors, and a compiled step refusing it."""

import warnings

import numpy as np
import pytest

import cygrad
from cygrad import nn


def _record(lib):
    seen = []
    w = lib.tensor([1.0, 2.0], requires_grad=True)
    b = lib.tensor([0.5], requires_grad=True)
    w.register_post_accumulate_grad_hook(lambda t: seen.append(("w", t.grad.tolist())))
    handle = b.register_post_accumulate_grad_hook(lambda t: seen.append(("b", t.grad.tolist())))
    for _ in range(2):
        ((w * w).sum() + 3 * b.sum()).backward()
    handle.remove()
    ((w * w).sum() + 3 * b.sum()).backward()
    return seen


def test_matches_torch():
    torch = pytest.importorskip("torch")
    assert _record(cygrad) == _record(torch)


def test_optimizer_in_backward():
    cygrad.manual_seed(0)
    model = nn.Linear(3, 1)
    reference = nn.Linear(3, 1)
    reference.load_state_dict(model.state_dict())

    def step(p):
        with cygrad.no_grad():
            p -= 0.1 * p.grad
        p.grad = None

    for p in model.parameters():
        p.register_post_accumulate_grad_hook(step)
    opt = cygrad.optim.SGD(reference.parameters(), lr=0.1)
    x = cygrad.randn(4, 3)
    for _ in range(3):
        model(x).sum().backward()
        opt.zero_grad()
        reference(x).sum().backward()
        opt.step()
    for p, q in zip(model.parameters(), reference.parameters()):
        assert p.grad is None
        assert p.numpy().tobytes() == q.numpy().tobytes()


def test_errors_and_compiled_steps():
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        cygrad.ones(2).register_post_accumulate_grad_hook(lambda t: None)
    x = cygrad.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="non-leaf tensors"):
        (x * 2).register_post_accumulate_grad_hook(lambda t: None)
    model = nn.Linear(2, 1)
    model.weight.register_post_accumulate_grad_hook(lambda t: None)

    def step(data):
        loss = model(data).sum()
        loss.backward()
        return loss

    fn = cygrad.compile(step)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):
            out = fn(cygrad.ones(1, 2))
    assert fn.counts["replays"] == 0
    np.testing.assert_allclose(out.numpy(), model(cygrad.ones(1, 2)).detach().numpy())
