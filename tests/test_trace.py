"""The backward trace: order, numbers and accumulation match a hand computation exactly."""

import subprocess
import sys

import numpy as np
import pytest

import cygrad
from cygrad.demos import traces


def test_a_hand_computed_example():
    # y = sum(h*h + h), h = w * x with w = 2, x = 3: dy/dh = 2h + 1 = 13, dy/dw = 13 * 3 = 39
    w = cygrad.tensor([2.0], dtype="float64", requires_grad=True)
    x = cygrad.tensor([3.0], dtype="float64")
    h = w * x
    y = (h * h + h).sum()
    with cygrad.trace(names={w: "w", x: "x"}) as t:
        y.backward()
    ops = [(s["op"], s["node"]) for s in t.steps]
    assert ops == [("Sum", "t1"), ("Add", "t2"), ("Mul", "t3"), ("Mul", "t4"),
                   ("accumulate", "w")]
    square, product = t.steps[2], t.steps[3]
    assert [i["grad"].tolist() for i in square["inputs"]] == [[6.0], [6.0]]  # g*b, g*a
    # h feeds three uses: h*h twice (through the square) and + h once
    contributions = [(c["from"], c["grad"].tolist()) for c in product["contributions"]]
    assert contributions == [(2, [1.0]), (3, [6.0]), (3, [6.0])]
    assert product["grad"].tolist() == [13.0]
    assert product["rule"] == "da = g * b;  db = g * a"
    assert product["inputs"][0]["grad"].tolist() == [39.0]
    assert product["inputs"][1]["grad"] is None  # x needs no gradient
    leaf = t.steps[4]
    assert leaf["grad_before"] is None and leaf["grad_after"].tolist() == [39.0]
    assert w.grad.tolist() == [39.0]
    text = str(t)
    assert "#4   t4 = Mul(w, x)" in text
    assert "= g (sum of 3 uses): [13.]" in text
    assert "w.grad: none -> [39.]" in text


def test_leaf_accumulation_across_calls_is_shown():
    w = cygrad.tensor([1.0], requires_grad=True)
    (w * 2).sum().backward()
    with cygrad.trace() as t:
        (w * 3).sum().backward()
    leaf = t.steps[-1]
    assert leaf["grad_before"].tolist() == [2.0] and leaf["grad_after"].tolist() == [5.0]


def test_large_arrays_show_shape_and_norm():
    x = cygrad.tensor(np.ones((10, 10)), requires_grad=True)
    with cygrad.trace() as t:
        (x * 2).sum().backward()
    assert "<shape (10, 10), norm 20>" in str(t)


def test_tracing_stops_after_the_block():
    x = cygrad.tensor([1.0], requires_grad=True)
    with cygrad.trace() as t:
        (x * 2).sum().backward()
    (x * 2).sum().backward()
    assert len(t.steps) == 3


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_s1_identities_hold_in_the_trace_bitwise(dtype):
    model, _, _, t = traces.trace_step("constant-init", dtype)
    checks = traces.s1_checks(model, t)
    assert [claim for claim, holds in checks if not holds] == []
    grads = {s["node"]: s["grad_after"] for s in t.steps if s["kind"] == "leaf"}
    assert grads["2.weight"][0, 0] == grads["2.weight"][0, 1]


def test_tied_weight_shows_both_uses_and_their_sum():
    model, _, _, t = traces.trace_step("tying")
    leaf = [s for s in t.steps if s["kind"] == "leaf"][0]
    assert len(leaf["contributions"]) == 2
    total = leaf["contributions"][0]["grad"] + leaf["contributions"][1]["grad"]
    assert np.array_equal(total, leaf["grad"])
    assert np.array_equal(model.weight.grad, total)


@pytest.mark.parametrize("scenario", list(traces.SETUPS))
def test_cli_trace_runs_for_every_scenario(scenario, tmp_path):
    dot = tmp_path / "graph.dot"
    out = subprocess.run([sys.executable, "-m", "cygrad", "trace", scenario, "--dot", str(dot)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "backward trace:" in out.stdout and "rule:" in out.stdout
    assert dot.read_text().startswith("digraph")


def test_cli_trace_rejects_an_unknown_scenario():
    out = subprocess.run([sys.executable, "-m", "cygrad", "trace", "nope"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "unknown scenario" in out.stderr
    assert "Traceback" not in out.stderr
