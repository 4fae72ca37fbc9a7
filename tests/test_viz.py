"""cygrad.viz: DOT structure (always), rendering through Graphviz (when `dot` is installed) and
the message when it is not."""

import html
import re
import shutil
import sys
from collections import namedtuple

import numpy as np
import pytest

import cygrad
from cygrad import nn, viz
from cygrad.nn import functional as F

Node = namedtuple("Node", ["rows", "attrs"])
NODE = re.compile(r"^\s*(n\d+) \[label=<(<table.*?</table>)>, (.*)\];$")
EDGE = re.compile(r"^\s*(n\d+) -> (n\d+);$")
HAS_DOT = shutil.which("dot") is not None


def parse(dot):
    """({node id: Node(text rows of its label, attributes)}, [(from, to), ...])."""
    assert dot.startswith("digraph cygrad {") and dot.rstrip().endswith("}")
    nodes, edges = {}, []
    for line in dot.splitlines()[1:-1]:
        if m := EDGE.match(line):
            edges.append(m.groups())
        elif m := NODE.match(line):
            cells = re.findall(r"<td[^>]*>(.*?)</td>", m.group(2))
            rows = [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in cells]
            attrs = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3)))
            nodes[m.group(1)] = Node(rows, attrs)
        else:
            assert line.strip().startswith(("node [", "edge [")), line
    return nodes, edges


def by_class(nodes, cls):
    return {k: n for k, n in nodes.items() if cls in n.attrs["class"].split()}


def by_title(nodes, title):
    return [n for n in nodes.values() if n.rows[0] == title]


def mlp(dtype=np.float32):
    cygrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4, dtype=dtype), nn.ReLU(), nn.Linear(4, 2, dtype=dtype))
    x = cygrad.tensor(np.linspace(-1, 1, 15).reshape(5, 3).astype(dtype))
    return model, x


def test_mlp_nodes_edges_and_labels():
    model, x = mlp()
    loss = F.cross_entropy(model(x), [0, 1, 0, 1, 1])
    nodes, edges = parse(viz.to_dot(loss, model=model, names={x: "x"}))
    # Sequential runs the first Linear and its ReLU as one node (ops.layers.LinearActivation)
    assert len(nodes) == 8 and len(edges) == 7
    ops = by_class(nodes, "op")
    assert sorted(n.rows[0] for n in ops.values()) == ["CrossEntropy", "Linear", "LinearRelu"]
    assert {n.rows[1] for n in by_title(nodes, "Linear")} == {"(5, 2)"}
    assert {n.rows[1] for n in by_title(nodes, "LinearRelu")} == {"(5, 4)"}
    params = by_class(nodes, "param")
    assert sorted(n.rows[0] for n in params.values()) == ["0.bias", "0.weight", "2.bias",
                                                           "2.weight"]
    assert by_title(nodes, "0.weight")[0].rows[1] == "(4, 3)"
    assert all(n.attrs["shape"] == "box" and n.attrs["style"] == "filled"
               for n in params.values())
    (leaf,) = by_class(nodes, "leaf").values()
    assert leaf.rows[:2] == ["x", "(5, 3)"] and leaf.attrs["shape"] == "ellipse"
    (out_id,) = by_class(nodes, "output")
    assert nodes[out_id].rows[:2] == ["CrossEntropy", "()"]
    # edges run input -> op: the output has one input and is nobody's input
    assert [a for a, b in edges if b == out_id] and not [b for a, b in edges if a == out_id]
    first_linear = next(k for k, n in ops.items() if n.rows[:2] == ["LinearRelu", "(5, 4)"])
    inputs = sorted(nodes[a].rows[0] for a, b in edges if b == first_linear)
    assert inputs == ["0.bias", "0.weight", "x"]
    assert "dx = dz @ W" in nodes[first_linear].attrs["tooltip"]


def test_unnamed_leaves_and_reuse():
    x = cygrad.tensor([1.0, 2.0], requires_grad=True)
    nodes, edges = parse(viz.to_dot((x * x).sum()))
    assert len(nodes) == 3
    assert len(edges) == 3  # x feeds Mul twice: one edge per use
    (mul,) = [k for k, n in nodes.items() if n.rows[0] == "Mul"]
    assert [b for a, b in edges].count(mul) == 2


def test_conv_net_ops():
    cygrad.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3))
    x = cygrad.tensor(np.zeros((2, 1, 6, 6), np.float32))
    nodes, _ = parse(viz.to_dot(model(x).sum(), model=model))
    shapes = {n.rows[0]: n.rows[1] for n in by_class(nodes, "op").values()}
    assert shapes == {"Conv2d": "(2, 2, 4, 4)", "MaxPool2d": "(2, 2, 2, 2)",
                      "Reshape": "(2, 8)", "Linear": "(2, 3)", "Sum": "()"}
    assert by_title(nodes, "0.weight")[0].rows[1] == "(2, 1, 3, 3)"


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc, self.dec = nn.Linear(4, 4), nn.Linear(4, 4)
        self.dec.weight = self.enc.weight

    def forward(self, x):
        return self.dec(self.enc(x).relu())


def test_tied_parameter_drawn_once_with_both_names():
    cygrad.manual_seed(0)
    model = Tied()
    out = model(cygrad.tensor(np.ones((2, 4), np.float32))).sum()
    nodes, edges = parse(viz.to_dot(out, model=model))
    tied = by_class(nodes, "tied")
    assert len(tied) == 1
    (tid, node), = tied.items()
    assert node.rows[:2] == ["enc.weight", "dec.weight"] and "param" in node.attrs["class"]
    assert node.attrs["peripheries"] == "2"
    assert sum(a == tid for a, _ in edges) == 2  # read by both Linear ops
    assert len(by_class(nodes, "param")) == 3
    # one unit list per layer using the weight
    assert any(r.startswith("enc: ") for r in node.rows)
    assert any(r.startswith("dec: ") for r in node.rows)


def test_tied_unit_groups_listed_one_colour_each():
    model, x = mlp()
    for p in model.parameters():
        nn.init.constant_(p, 0.25)
    model[0].weight.numpy()[1] = -1.0  # units 1 and 3 form a second group, 0 and 2 the first
    model[0].weight.numpy()[3] = -1.0
    nodes, _ = parse(viz.to_dot(model(x).sum(), model=model))
    dot = viz.to_dot(model(x).sum(), model=model)
    first = by_title(nodes, "0.weight")[0]
    assert "effective width 2 of 4" in first.rows
    assert "tied units 0, 2" in first.rows and "tied units 1, 3" in first.rows
    colours = re.findall(r'<td bgcolor="(#[0-9a-f]{6})">tied units', dot)
    assert len(colours) == 3 and len(set(colours[:2])) == 2  # two groups, two colours
    assert "tied units 0, 1" in by_title(nodes, "2.weight")[0].rows  # both output units equal
    model[0].weight.numpy()[:] = np.arange(12, dtype=np.float32).reshape(4, 3)
    nodes, _ = parse(viz.to_dot(model(x).sum(), model=model))
    assert "units: all 4 distinct" in by_title(nodes, "0.weight")[0].rows


def test_values_and_grads_small_and_large():
    model, x = mlp()
    loss = model(x).sum()
    loss.backward()
    nodes, _ = parse(viz.to_dot(loss, model=model, values=True, grads=True, names={x: "x"}))
    bias = by_title(nodes, "2.bias")[0]
    data_row = next(r for r in bias.rows if r.startswith("data: "))
    grad_row = next(r for r in bias.rows if r.startswith("grad: "))
    shown = [float(v) for v in re.findall(r"-?\d+\.\d*(?:e-?\d+)?", data_row)]
    np.testing.assert_allclose(shown, model[2].bias.numpy(), atol=1e-4)
    np.testing.assert_allclose([float(v) for v in re.findall(r"-?\d+\.?\d*", grad_row[6:])],
                               model[2].bias.grad, atol=1e-4)
    x_node = by_title(nodes, "x")[0]
    assert not any(r.startswith("grad") for r in x_node.rows)  # requires no grad
    # 12 elements <= 16: values; an op result of 5*4=20 elements: its norm
    weight = by_title(nodes, "0.weight")[0]
    assert any(r.startswith("data: [[") for r in weight.rows)
    hidden = next(n for n in by_class(nodes, "op").values()
                  if n.rows[:2] == ["LinearRelu", "(5, 4)"])
    norm = float(next(r for r in hidden.rows if r.startswith("data: norm ")).split()[-1])
    expected = np.linalg.norm(np.maximum(model[0](x).numpy(), 0))
    assert norm == pytest.approx(expected, rel=1e-3)
    assert not any(r.startswith("grad") for n in by_class(nodes, "op").values() for r in n.rows)
    # a smaller max_values turns the weight into a norm, data and grad alike
    nodes, _ = parse(viz.to_dot(loss, model=model, values=True, grads=True, max_values=4))
    rows = by_title(nodes, "0.weight")[0].rows
    assert float(next(r for r in rows if r.startswith("grad: norm")).split()[-1]) == \
        pytest.approx(np.linalg.norm(model[0].weight.grad), rel=1e-3)


def test_missing_gradient_is_shown_as_none():
    model, x = mlp()
    nodes, _ = parse(viz.to_dot(model(x).sum(), model=model, grads=True))
    assert "grad: None" in by_title(nodes, "0.weight")[0].rows


def test_labels_are_escaped():
    name = 'a<b>&"c" \\ d'
    x = cygrad.tensor([1.0, 2.0], requires_grad=True)
    dot = viz.to_dot(x.sum(), names={x: name})
    assert "a&lt;b&gt;&amp;" in dot and 'tooltip="a<b>&\\"c\\" \\\\ d (float32)"' in dot
    nodes, _ = parse(dot)
    (leaf,) = by_class(nodes, "leaf").values()
    assert leaf.rows[0] == name and by_class(nodes, "param") == {}
    if HAS_DOT:
        import subprocess
        subprocess.run(["dot", "-Tsvg"], input=dot.encode(), check=True, capture_output=True)


def test_names_must_map_tensors():
    x = cygrad.tensor([1.0], requires_grad=True)
    with pytest.raises(TypeError, match="names maps tensors to names"):
        viz.to_dot(x.sum(), names={"x": x})
    with pytest.raises(TypeError, match="draws a cygrad Tensor"):
        viz.to_dot(np.ones(2))


def test_deep_graph_without_recursion():
    x = cygrad.tensor([0.5], requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y.tanh()
    assert sys.getrecursionlimit() < 10_000
    nodes, edges = parse(viz.to_dot(y))
    assert len(nodes) == 10_001 and len(edges) == 10_000


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed")
@pytest.mark.parametrize("ext", ["svg", "png"])
def test_render(tmp_path, ext):
    model, x = mlp()
    path = tmp_path / f"graph.{ext}"
    assert viz.render(model(x).sum(), path, model=model, values=True) == str(path)
    data = path.read_bytes()
    if ext == "svg":
        text = data.decode()
        assert "<svg" in text and "0.weight" in text and 'class="node param"' in text
    else:
        assert data.startswith(b"\x89PNG")


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed")
def test_render_format_argument_overrides_extension(tmp_path):
    x = cygrad.tensor([1.0], requires_grad=True)
    path = viz.render(x.sum(), tmp_path / "graph.out", format="svg")
    assert "<svg" in open(path).read()


def test_render_rejects_other_formats(tmp_path):
    x = cygrad.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="svg or png"):
        viz.render(x.sum(), tmp_path / "graph.pdf")


def test_render_without_dot_says_how_to_install(tmp_path, monkeypatch):
    x = cygrad.tensor([1.0], requires_grad=True)
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(RuntimeError, match=r"apt-get install graphviz.*brew install graphviz"
                                           r".*conda"):
        viz.render(x.sum(), tmp_path / "graph.svg")
    assert not (tmp_path / "graph.svg").exists()


def test_render_with_empty_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # a folder without dot
    x = cygrad.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="`dot` program was not found"):
        viz.render(x.sum(), tmp_path / "graph.png")
