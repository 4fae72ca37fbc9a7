"""Draw the graph that produced a tensor: Graphviz DOT text with no dependency, SVG or PNG
through Graphviz's `dot` program when it is installed.

    print(cygrad.viz.to_dot(loss, model=model, grads=True))
    cygrad.viz.render(loss, "graph.svg", model=model)

One node per op result (a box: op name, shape) and per leaf (an ellipse: name, shape). Parameters
are filled boxes named from `model.named_parameters()` (or `names`); a parameter reachable under
several names (tied) is drawn once, labelled with every name. With a model, each Linear or
Conv2d weight also lists the layer's groups of tied units (cygrad.symmetry.tied_groups with the
next weight layer), one colour per group. Edges run from an op's inputs to its result. Nodes
carry a `class` (op, leaf, param, tied, output) that SVG output keeps for styling.

The walk is iterative, so graphs of any depth draw without hitting the recursion limit.
"""

import html
import os
import shutil
import subprocess

import numpy as np

from .nn.module import Parameter
from .tensor import Tensor

__all__ = ["to_dot", "render"]

# ColorBrewer's Pastel1 and Pastel2: light enough for black text on top
_GROUP_COLOURS = ("#fbb4ae", "#b3cde3", "#ccebc5", "#decbe4", "#fed9a6", "#ffffcc", "#e5d8bd",
                  "#fddaec", "#b3e2cd", "#fdcdac", "#cbd5e8", "#f4cae4")
_MAX_GROUPS_SHOWN = 12
_MAX_UNITS_SHOWN = 16
_INSTALL_HINT = ("install Graphviz: `apt-get install graphviz` (Debian/Ubuntu), "
                 "`brew install graphviz` (macOS) or `conda install graphviz`; "
                 "or call cygrad.viz.to_dot() and render the text elsewhere")


# ---------------------------------------------------------------------- DOT text

def to_dot(tensor, values=False, grads=False, names=None, model=None, max_values=16):
    """Graphviz DOT text of the graph that produced `tensor`.

    values: show each tensor's data (norm when it has more than max_values elements).
    grads:  show each leaf's .grad likewise ("None" for a leaf that has no gradient yet).
    names:  {tensor: name} for leaves (inputs, targets, parameters).
    model:  a cygrad Module; its parameters are named, tied parameters and tied units shown.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dot draws a cygrad Tensor, got {type(tensor).__name__}")
    known = _names(names, model)
    groups = _unit_groups(model) if model is not None else {}
    order = _graph(tensor)
    ids = {id(t): f"n{i}" for i, t in enumerate(order)}
    lines = ["digraph cygrad {",
             '  node [fontname="Helvetica", fontsize=11];',
             '  edge [color="#555555", arrowsize=0.7];']
    shown = (values, grads, max_values)
    for t in order:
        lines.append(f"  {ids[id(t)]} [{_node_attributes(t, t is tensor, known, groups, shown)}];")
    for t in order:
        for parent in t._parents:
            lines.append(f"  {ids[id(parent)]} -> {ids[id(t)]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _graph(root):
    """Every tensor root was computed from, and root itself: each after all of its inputs."""
    order, seen = [], {id(root)}
    stack = [(root, iter(root._parents))]
    while stack:
        node, parents = stack[-1]
        for parent in parents:
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append((parent, iter(parent._parents)))
                break
        else:
            stack.pop()
            order.append(node)
    return order


def _names(names, model):
    """id(tensor) -> list of its names, model parameters first (all names of a tied one)."""
    known = {}
    if model is not None:
        for name, p in model.named_parameters(remove_duplicate=False):
            known.setdefault(id(p), []).append(name)
    for t, name in (names or {}).items():
        if not isinstance(t, Tensor):
            raise TypeError(f"names maps tensors to names, got a key of type {type(t).__name__}")
        if str(name) not in known.setdefault(id(t), []):
            known[id(t)].append(str(name))
    return known


def _unit_groups(model):
    """id(weight) -> [(layer name, groups of tied units)] for each layer using that weight;
    units are tied when their incoming weights, bias and outgoing weights are all equal."""
    from .symmetry import tied_groups, weight_layers  # symmetry imports nn: import on use

    layers = weight_layers(model)
    found = {}
    for k, (name, layer) in enumerate(layers):
        following = layers[k + 1][1] if k + 1 < len(layers) else None
        try:
            groups = tied_groups(layer, following)
        except ValueError:  # the next weight layer does not read this one's units directly
            groups = tied_groups(layer)
        found.setdefault(id(layer.weight), []).append((name, groups))
    return found


def _node_attributes(t, is_output, known, groups, shown):
    values, grads, max_values = shown
    names = known.get(id(t), [])
    is_param = t._op is None and isinstance(t, Parameter)
    classes = []
    rows = []
    if t._op is not None:
        classes.append("op")
        rows.append(f"<b>{_esc(t._op.kind())}</b>")
        tooltip = f"{t._op.kind()}: {t._op.rule}" if t._op.rule else t._op.kind()
        attributes = {"shape": "box", "style": "rounded"}
    else:
        classes.append("param" if is_param else "leaf")
        if names:
            rows.extend(f"<b>{_esc(n)}</b>" for n in names)
        else:
            rows.append("<b>parameter</b>" if is_param else "tensor")
        tooltip = ", ".join(names) or ("parameter" if is_param else "leaf tensor")
        if is_param:
            attributes = {"shape": "box", "style": "filled", "fillcolor": "#c6dbef"}
        else:
            attributes = {"shape": "ellipse", "style": "filled", "fillcolor": "#f0f0f0"}
        if len(names) > 1:
            classes.append("tied")
            rows.append(f"<i>tied: one parameter, {len(names)} names</i>")
            attributes.update(fillcolor="#fdd49e", peripheries="2")
    rows.append(_esc(_shape_text(t.shape)))
    if values:
        rows.extend(_array_rows("data", t._data, max_values))
    if grads and t._op is None and t.requires_grad:  # intermediates keep no gradient
        rows.extend(_array_rows("grad", None if t.grad is None else t.grad._data, max_values))
    label = "".join(f"<tr><td>{row}</td></tr>" for row in rows)
    layers = groups.get(id(t), [])
    for layer_name, unit_groups in layers:  # a weight shared by layers: one list per layer
        label += _groups_rows(unit_groups, f"{layer_name}: " if len(layers) > 1 else "")
    if is_output:
        classes.append("output")
        attributes["penwidth"] = "2"
    attributes["tooltip"] = f"{tooltip} ({t.dtype.name})"
    attributes["class"] = " ".join(classes)
    text = ", ".join(f'{key}="{_quote(value)}"' for key, value in attributes.items())
    return f'label=<<table border="0" cellborder="0" cellspacing="0">{label}</table>>, {text}'


def _groups_rows(groups, prefix=""):
    """Table rows listing each group of two or more tied units, one colour per group."""
    n_units = sum(len(g) for g in groups)
    tied = [g for g in groups if len(g) > 1]
    prefix = _esc(prefix)
    if not tied:
        return f"<tr><td>{prefix}units: all {n_units} distinct</td></tr>"
    rows = [f"<tr><td><i>{prefix}effective width {len(groups)} of {n_units}</i></td></tr>"]
    for k, group in enumerate(tied[:_MAX_GROUPS_SHOWN]):
        units = ", ".join(map(str, group[:_MAX_UNITS_SHOWN]))
        if len(group) > _MAX_UNITS_SHOWN:
            units += f", ... ({len(group)} units)"
        colour = _GROUP_COLOURS[k % len(_GROUP_COLOURS)]
        rows.append(f'<tr><td bgcolor="{colour}">tied units {units}</td></tr>')
    if len(tied) > _MAX_GROUPS_SHOWN:
        rows.append(f"<tr><td>... {len(tied) - _MAX_GROUPS_SHOWN} more groups</td></tr>")
    return "".join(rows)


def _array_rows(what, array, max_values):
    if array is None:
        return [f"{what}: None"]
    array = np.asarray(array)
    if array.size <= max_values:
        text = np.array2string(array, precision=4, separator=", ", threshold=max_values + 1,
                               max_line_width=60)
        lines = text.split("\n")
        return [_esc(f"{what}: {lines[0]}")] + [_esc(line) for line in lines[1:]]
    norm = float(np.sqrt(np.sum(np.square(array, dtype=np.float64))))
    return [_esc(f"{what}: norm {norm:.4g}")]


def _shape_text(shape):
    return str(tuple(shape))


def _esc(text):
    """Text for inside an HTML-like label: &, < and > escaped."""
    return html.escape(str(text), quote=False)


def _quote(text):
    """Text for inside a double-quoted DOT string."""
    return str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


# ---------------------------------------------------------------------- rendering

def render(tensor, path, format=None, **to_dot_kwargs):
    """Write the graph of `tensor` to path as SVG or PNG (format: from the extension unless
    given) by running Graphviz's `dot`. Returns path. RuntimeError, saying how to install it,
    when `dot` is not on PATH."""
    path = os.fspath(path)
    if format is None:
        format = os.path.splitext(path)[1].lstrip(".").lower()
    if format not in ("svg", "png"):
        raise ValueError(f"render writes svg or png, got format {format!r} (from {path!r}); "
                         "pass format='svg' or 'png', or use to_dot() for the DOT text")
    dot_text = to_dot(tensor, **to_dot_kwargs)
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError(f"Graphviz's `dot` program was not found on PATH; {_INSTALL_HINT}")
    result = subprocess.run([dot, f"-T{format}", "-o", path], input=dot_text.encode("utf-8"),
                            capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"dot failed (exit {result.returncode}): "
                           f"{result.stderr.decode('utf-8', 'replace').strip()}")
    return path
