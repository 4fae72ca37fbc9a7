"""Which units of a layer are tied: the grouping, for every kind of layer cygrad has.

A layer's *units* and what makes two of them the same unit:

    Linear, Conv1d, Conv2d   output features / filters: rows of the weight, entries of the bias
    Embedding                embedding dimensions: columns of the table
    LayerNorm                channels (of the last normalised dim): gain and bias entries
    BatchNorm1d, BatchNorm2d channels: gain, bias and the running statistics
    MultiheadAttention       heads: their query, key and value blocks of in_proj (rows and
                             biases) and their columns of the output projection

Two units are *tied* when every array that defines them holds bitwise-equal slices for both
(+0.0 and -0.0 count equal) and, given the next layer, it listens to both alike (equal
columns of its weight; a block of columns each after a Flatten). Theory says tied units get
identical updates forever; cygrad's exact kernels keep that promise bitwise.
"""

import numpy as np

from .. import nn

__all__ = ["tied_groups_of", "tied_groups", "effective_width", "unit_slices", "KINDS",
           "inspectable", "watched_layers"]


def _kind(layer):
    for name in KINDS:
        cls = getattr(nn, name, None)
        if cls is not None and isinstance(layer, cls):
            return name
    return None


KINDS = ("Linear", "Conv1d", "Conv2d", "Embedding", "LayerNorm", "BatchNorm1d", "BatchNorm2d",
         "MultiheadAttention")


def inspectable(layer):
    """Whether the symmetry tools understand this kind of layer."""
    return _kind(layer) is not None


def _array(p):
    return None if p is None else np.asarray(p._data if hasattr(p, "_data") else p)


def unit_slices(layer):
    """(n_units, [(array, axis)]): the arrays that define the layer's units, each with the
    axis along which unit i is slice i (after the reshapes below)."""
    kind = _kind(layer)
    if kind is None:
        raise TypeError(f"the symmetry tools do not understand a {type(layer).__name__} layer; "
                        f"they inspect {', '.join(KINDS)}")
    if kind in ("Linear", "Conv1d", "Conv2d"):
        w, b = _array(layer.weight), _array(layer.bias)
        parts = [(w.reshape(w.shape[0], -1) if w.shape[0] else w.reshape(0, 0), 0)]
        if b is not None:
            parts.append((b, 0))
        return w.shape[0], parts
    if kind == "Embedding":
        w = _array(layer.weight)
        return w.shape[1], [(w, 1)]
    if kind == "LayerNorm":
        parts = [(_array(p).reshape(-1, _array(p).shape[-1]), 1)
                 for p in (layer.weight, getattr(layer, "bias", None)) if p is not None]
        n = int(layer.normalized_shape[-1])
        return n, parts
    if kind in ("BatchNorm1d", "BatchNorm2d"):
        arrays = [layer.weight, layer.bias, getattr(layer, "running_mean", None),
                  getattr(layer, "running_var", None)]
        return int(layer.num_features), [(_array(a), 0) for a in arrays if a is not None]
    # MultiheadAttention: head h owns rows h*d:(h+1)*d of each of q, k, v in in_proj and
    # columns h*d:(h+1)*d of out_proj
    heads, e = int(layer.num_heads), int(layer.embed_dim)
    d = e // heads
    parts = []
    w = _array(getattr(layer, "in_proj_weight", None))
    if w is not None:
        parts.append((w.reshape(3, heads, d, -1), 1))
    else:  # separate q, k, v projections (kdim/vdim differ from embed_dim)
        for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
            parts.append((_array(getattr(layer, name)).reshape(heads, d, -1), 0))
    b = _array(getattr(layer, "in_proj_bias", None))
    if b is not None:
        parts.append((b.reshape(3, heads, d), 1))
    out = _array(layer.out_proj.weight)
    parts.append((out.reshape(out.shape[0], heads, d), 1))
    return heads, parts


def _outgoing(next_layer, n):
    """[(array, axis)]: how the next layer reads n units (its weight's columns; a block of
    columns each when the units were flattened)."""
    if next_layer is None:
        return []
    kind = _kind(next_layer)
    if kind in ("Linear", "Conv1d", "Conv2d"):
        w = _array(next_layer.weight)
        if w.ndim < 2 or (n and w.shape[1] % n):
            raise ValueError(f"outgoing weights of shape {w.shape} do not fit {n} units "
                             f"(expected (next_units, {n}, ...) or (next_units, {n}*k))")
        k = w.shape[1] // n * int(np.prod(w.shape[2:])) if n else 0
        return [(w.reshape(w.shape[0], n, k), 1)]
    if kind == "LayerNorm":
        return unit_slices(next_layer)[1]
    raise TypeError(f"the outgoing side of units into a {type(next_layer).__name__} is not "
                    "defined; pass a Linear or Conv layer as next_layer")


def _signatures(n, parts):
    """One bytes key per unit: equal keys <=> bitwise-equal values in every part."""
    if n == 0:
        return []
    rows = []
    for array, axis in parts:
        moved = np.moveaxis(np.asarray(array), axis, 0)
        rows.append(moved.reshape(n, -1).astype(np.float64, copy=False))
    keys = np.concatenate(rows, axis=1) + 0.0  # -0.0 + 0.0 == +0.0: signed zeros count equal
    return [row.tobytes() for row in keys]


def _group(keys):
    groups = {}
    for unit, key in enumerate(keys):
        groups.setdefault(key, []).append(unit)
    return sorted(groups.values(), key=lambda g: g[0])


def tied_groups_of(weight, bias=None, outgoing=None):
    """Partition the units (rows of `weight`) into groups that are bitwise identical.

    weight (units, ...), bias (units,) or None, outgoing: the next layer's weight (next, units,
    ...) or (next, units * k) after a flatten, or None. Returns a list of lists of unit
    indices, ordered by their first unit. Works on plain numpy arrays from any framework."""
    weight = np.asarray(weight)
    n = weight.shape[0]
    parts = [(weight.reshape(n, -1) if n else weight.reshape(0, 0), 0)]
    if bias is not None:
        parts.append((np.asarray(bias).reshape(n), 0))
    if outgoing is not None:
        outgoing = np.asarray(outgoing)
        if outgoing.ndim < 2 or (n and outgoing.shape[1] % n):
            raise ValueError(f"outgoing weights of shape {outgoing.shape} do not fit {n} units "
                             f"(expected (next_units, {n}, ...) or (next_units, {n}*k))")
        k = outgoing.shape[1] // n * int(np.prod(outgoing.shape[2:])) if n else 0
        parts.append((outgoing.reshape(outgoing.shape[0], n, k), 1))
    return _group(_signatures(n, parts))


def tied_groups(layer, next_layer=None):
    """Groups of a layer's units (see the module docstring for each kind) with identical
    defining arrays (and, with next_layer, identical outgoing columns in it)."""
    n, parts = unit_slices(layer)
    return _group(_signatures(n, parts + _outgoing(next_layer, n)))


def effective_width(layer, next_layer=None):
    """How many distinct units the layer has: the number of its tied groups (for attention,
    of its heads: a layer whose heads are all tied has effective width 1)."""
    return len(tied_groups(layer, next_layer))


def watched_layers(model):
    """(name, layer) for every layer of a kind the symmetry tools inspect, in module order."""
    return [(name, m) for name, m in model.named_modules() if inspectable(m)]
