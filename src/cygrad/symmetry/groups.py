"""Which units of a layer are tied: the grouping, for every kind of layer cygrad has.

A layer's *units* and what makes two of them the same unit:

    Linear, Conv1d, Conv2d   output features / filters: rows of the weight, entries of the bias
    Embedding                embedding dimensions: columns of the table
    LayerNorm                channels (of the last normalised dim): gain and bias entries
    BatchNorm1d, BatchNorm2d channels: gain, bias and the running statistics
    MultiheadAttention       heads: their query, key and value blocks of in_proj (rows and
                             biases) and their columns of the output projection
    attention written by hand heads: a module with a list of Head modules (each with Linear
                             key, query and value) and a Linear `proj` reading their
                             concatenation (Karpathy's GPT lecture); a head is its key, query
                             and value weights (and biases) and its block of proj's columns

Two units are *tied* when every array that defines them holds bitwise-equal slices for both
(+0.0 and -0.0 count equal) and, given the next layer, it listens to both alike (equal
columns of its weight; a block of columns each after a Flatten). Theory says tied units get
identical updates forever; cygrad's exact kernels keep that promise bitwise.
"""

import numpy as np

from .. import nn

__all__ = ["tied_groups_of", "tied_groups", "effective_width", "unit_slices", "KINDS",
           "inspectable", "watched_layers", "head_modules"]

_QKV = ("key", "query", "value")


def _kind(layer):
    for name in KINDS:
        cls = getattr(nn, name, None)
        if cls is not None and isinstance(layer, cls):
            return name
    if head_modules(layer) is not None:
        return "Heads"
    return None


def head_modules(layer):
    """The names (relative to layer) of its attention heads when it is multi-head attention
    written by hand: a child holding Head modules (a ModuleList, or any module whose children
    are all of one class with Linear key, query and value) and a Linear child `proj` reading
    their concatenation. None for any other module."""
    modules = getattr(layer, "_modules", None)
    proj = None if modules is None else modules.get("proj")
    if not isinstance(proj, nn.Linear):
        return None
    for child_name, child in modules.items():
        heads = list(getattr(child, "_modules", {}).items()) if child is not None else []
        if not heads or len({type(h) for _, h in heads}) != 1:
            continue
        if all(h is not None and all(isinstance(h._modules.get(q), nn.Linear) for q in _QKV)
               for _, h in heads):
            return [f"{child_name}.{name}" for name, _ in heads]
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
                        f"they inspect {', '.join(KINDS)} and attention written as a list of Head "
                        "modules with a proj")
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
    if kind == "Heads":
        heads = [layer.get_submodule(name) for name in head_modules(layer)]
        parts = []
        for q in _QKV:
            parts.append((np.stack([_array(h._modules[q].weight) for h in heads]), 0))
            if heads[0]._modules[q].bias is not None:
                parts.append((np.stack([_array(h._modules[q].bias) for h in heads]), 0))
        out = _array(layer.proj.weight)
        if out.shape[1] % len(heads):
            raise ValueError(f"proj's weight {out.shape} does not read {len(heads)} heads")
        parts.append((out.reshape(out.shape[0], len(heads), -1), 1))
        return len(heads), parts
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


def _rows(n, parts):
    """Each part as (n, -1): unit u's values in row u (views where the layout allows)."""
    return [(np.asarray(array) if axis == 0 else np.moveaxis(np.asarray(array), axis, 0))
            .reshape(n, -1) for array, axis in parts]


def _views(n, parts):
    """Each part with unit u's values at [u] (views: nothing is copied), leaving out parts
    that hold no values."""
    views = []
    for array, axis in parts:
        array = np.asarray(array)
        view = array if axis == 0 else np.moveaxis(array, axis, 0)
        if view.size:
            views.append(view if view.ndim > 1 else view[:, None])
    return views


def _same(rows, unit):
    """For each row of `rows` (k, ...): whether it equals `unit`'s row bitwise, except that
    +0.0 and -0.0 count equal and NaN equals NaN."""
    ref = rows[unit]
    same = rows == ref
    if rows.dtype.kind in "fc":
        nan = np.isnan(ref)
        if nan.any():  # where ref has no NaN, (NaN in rows) & (NaN in ref) adds nothing
            same |= np.isnan(rows) & nan
    return np.all(same, axis=tuple(range(1, same.ndim)))


def _distinct(column):
    """Whether the n values of one column (n >= 1) are n different values (+0.0 and -0.0 count
    equal, as == has them; a column holding a NaN is not decided here: False): then the n
    units are n different units. Few numpy calls: the monitor makes one right after each
    training step, when numpy's code is out of the CPU's caches."""
    ordered = np.sort(column)  # equal values side by side, NaNs last
    last = ordered.item(-1)
    return last == last and bool((ordered[1:] != ordered[:-1]).all())


def _split_exactly(cluster, rows, groups, n):
    """Split `cluster` (sorted unit indices) into groups of units equal in every array of
    `rows` (unit u at [u]; bitwise: _same), appended to `groups`. A cluster that holds (tied
    units) is seen at once: each unit == the next in every array (no NaN, then, and == is
    transitive)."""
    picked = [r if len(cluster) == n else r[cluster] for r in rows]  # all units: no copy
    if all((p[1:] == p[:-1]).all() for p in picked):
        groups.append(cluster.tolist())
        return
    while len(cluster):
        same = np.ones(len(cluster), bool)
        for p in picked:
            same &= _same(p, 0)
        groups.append(cluster[same].tolist())
        cluster = cluster[~same]
        picked = [p[~same] for p in picked]


def _group(n, parts, shortcut=True, alone=None):
    """Units whose values are equal in every part ((array, axis) pairs), in groups ordered by
    their first unit. The monitor needs groups at every step (it calls this where it cannot
    start from the last step's groups: _regroup), so no part is copied: n different values
    in the first column are n different units (for random weights the answer, from n
    values); otherwise the units are sorted by a sample of 16 values of each part (units
    that differ there are different), and whole rows are compared only within the clusters
    the sample cannot tell apart. shortcut=False skips the first-column test (the same
    groups, found the long way: for tests). alone: the list to return when every unit is a
    group of its own (the monitor passes one list for every step, rather than make n new
    lists that its history keeps)."""
    if n == 0:
        return []
    rows = [r for r in _rows(n, parts) if r.shape[1]]
    if not rows:
        return [list(range(n))]
    if shortcut and _distinct(rows[0][:, 0]):  # n different values: n different units
        return [[u] for u in range(n)] if alone is None else alone
    samples = []
    for r in rows:
        picked = r[:, np.unique(np.linspace(0, r.shape[1] - 1, 16).astype(np.intp))]
        if picked.dtype.kind in "fc":
            picked = picked + picked.dtype.type(0)  # -0.0 + 0.0 == +0.0
            picked = np.where(np.isnan(picked), np.nan, picked).astype(picked.dtype)
        samples.append(np.ascontiguousarray(picked).view(np.uint8).reshape(n, -1))
    sample = np.concatenate(samples + [np.zeros((n, -sum(x.shape[1] for x in samples) % 8),
                                                np.uint8)], axis=1).view(np.uint64)
    # one 64-bit hash per unit (wrapping arithmetic: equal samples, equal hashes; units that
    # collide are told apart by the exact comparison below)
    with np.errstate(over="ignore"):
        mix = np.arange(1, 2 * sample.shape[1], 2, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        hashes = (sample * mix).sum(axis=1, dtype=np.uint64)
    order = np.argsort(hashes, kind="stable")
    ordered = hashes[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    if len(starts) == n:
        return [[u] for u in range(n)] if alone is None else alone
    groups = []
    for cluster in np.split(order, starts[1:]):
        _split_exactly(np.sort(cluster), rows, groups, n)
    groups.sort(key=lambda g: g[0])
    return groups


def _regroup(n, parts, previous, alone=None):
    """_group(n, parts) given `previous`, the groups of the same units at an earlier time (the
    monitor's last step): each previous group of two or more units is compared row by row
    against its first unit (does it still hold, or how does it split?), then the first units
    of the pieces are grouped (have pieces merged?). The same groups as _group, without
    hashing a layer whose units are tied: for constant weights, one comparison of each array
    against its first row."""
    if n == 0:
        return []
    if len(previous) == n:  # every unit its own group: nothing to split
        return _group(n, parts, alone=alone)
    views = _views(n, parts)
    if not views:
        return [list(range(n))]
    pieces = []
    for group in previous:
        if len(group) < 2:
            pieces.append(group)
        else:
            _split_exactly(np.sort(np.asarray(group, dtype=np.intp)), views, pieces, n)
    if len(pieces) == n:
        return _group(n, parts, alone=alone)
    if len(pieces) > 1:  # pieces whose first units are equal merge
        firsts = np.array([p[0] for p in pieces], dtype=np.intp)
        merged = _group(len(pieces), [(v[firsts], 0) for v in views])
        if len(merged) < len(pieces):
            pieces = [sorted(u for k in group for u in pieces[k]) for group in merged]
    pieces.sort(key=lambda g: g[0])
    return pieces


def _refine(n, groups, parts):
    """The groups (of _group) split further by the units' values in more parts: _group(n, p +
    parts) when `groups` is _group(n, p), comparing only the new parts, and only inside groups
    of two or more units."""
    views = _views(n, parts)
    if not views or all(len(g) < 2 for g in groups):
        return groups
    refined = []
    for group in groups:
        if len(group) < 2:
            refined.append(group)
        else:
            _split_exactly(np.sort(np.asarray(group, dtype=np.intp)), views, refined, n)
    refined.sort(key=lambda g: g[0])
    return refined


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
    return _group(n, parts)


def tied_groups(layer, next_layer=None):
    """Groups of a layer's units (see the module docstring for each kind) with identical
    defining arrays (and, with next_layer, identical outgoing columns in it)."""
    n, parts = unit_slices(layer)
    return _group(n, parts + _outgoing(next_layer, n))


def effective_width(layer, next_layer=None):
    """How many distinct units the layer has: the number of its tied groups (for attention,
    of its heads: a layer whose heads are all tied has effective width 1)."""
    return len(tied_groups(layer, next_layer))


def watched_layers(model):
    """(name, layer) for every layer of a kind the symmetry tools inspect, in module order;
    the Linear layers inside an attention layer are parts of its heads, not layers of their
    own."""
    found, inside = [], []
    for name, m in model.named_modules():
        if any(prefix == "" or name.startswith(prefix + ".") for prefix in inside):
            continue
        kind = _kind(m)
        if kind is None:
            continue
        found.append((name, m))
        if kind in ("Heads", "MultiheadAttention"):
            inside.append(name)
    return found
