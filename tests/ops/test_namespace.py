"""No torch name in cygrad means something else: every public name of `cygrad` and every Tensor
method that torch also has is checked against torch 2.13 (the same kind of object; callables
accept torch's arguments: the same positional order and names, torch's keyword-only arguments),
and torch names cygrad lacks raise an AttributeError saying cygrad lacks them.

torch's signatures come from its operator schemas (`torch._C._jit_get_schemas_for_operator`,
the declarations its Python bindings are generated from) or, for functions written in Python,
from `inspect.signature`. Departures kept on purpose are listed in KNOWN with the reason.
"""

import inspect
import types

import numpy as np
import pytest
from torchdiff import diff, need_torch

import cygrad

# torch arguments cygrad accepts and ignores or does not take (CPU only, no memory formats)
IGNORED_KEYWORDS = {"out", "layout", "device", "pin_memory", "memory_format"}

# name -> why its signature departs from torch's (each still checked to depart: a fixed one
# must leave this list)
KNOWN = {
    "cygrad.mm": "mm(input, mat2, out_dtype) (CUDA only in torch) is not offered",
    "cygrad.bmm": "bmm(input, mat2, out_dtype) (CUDA only in torch) is not offered",
    "Tensor.mm": "mm(mat2, out_dtype) (CUDA only in torch) is not offered",
    "Tensor.bmm": "bmm(mat2, out_dtype) (CUDA only in torch) is not offered",
    "Tensor.expand": "expand's internal `implicit` flag is not taken",
    "cygrad.hsplit": "torch's documented hsplit(input, indices_or_sections): its schema "
                     "overloads name the second argument indices / sections",
    "cygrad.vsplit": "as hsplit",
    "cygrad.dsplit": "as hsplit",
    "cygrad.isin": "torch's documented isin(elements, test_elements): its scalar overloads "
                   "say element / test_element",
}


# TorchScript's overloads on Python values (tensor.int, select.t ...): not Python signatures
SCRIPT_OVERLOADS = {"t", "int", "float", "complex", "bool", "str"}


def _split_args(text):
    depth, parts, cur = 0, [], ""
    for ch in text:
        depth += {"(": 1, "[": 1, "<": 1, ")": -1, "]": -1, ">": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [p.strip() for p in parts + [cur] if p.strip()]


def torch_overloads(torch, name, method):
    """[(overload, positional names, keyword-only names)] of torch.name / Tensor.name."""
    fn = getattr(torch.Tensor if method else torch, name)
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        sig = None
    if sig is not None:
        params = list(sig.parameters.values())
        if any(p.kind == p.VAR_POSITIONAL for p in params):
            return []  # (*args: nothing to compare by name)
        pos = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if method and pos[:1] == ["self"]:
            pos = pos[1:]
        return [("python", pos, [p.name for p in params if p.kind == p.KEYWORD_ONLY])]
    out = []
    for schema in torch._C._jit_get_schemas_for_operator("aten::" + name):
        text = str(schema)
        head, rest = text.split("(", 1)
        depth, i = 1, 0
        while depth:
            depth += {"(": 1, ")": -1}.get(rest[i], 0)
            i += 1
        args = rest[:i - 1]
        if "!" in args or "Dimname" in args or "str " in args:
            continue  # out= variants, named tensors, string overloads
        pos, kw, star = [], [], False
        for a in _split_args(args):
            if a == "*":
                star = True
                continue
            typ, n = a.split("=")[0].rsplit(" ", 1)
            (kw if star else pos).append((n, typ))
        names = [n for n, _ in pos + kw]
        if head.split(".")[-1] in SCRIPT_OVERLOADS or all(len(n) == 1 for n in names) or not any(
                "Tensor" in t or "Scalar" in t or "[]" in t for _, t in pos + kw):
            continue  # TorchScript's builtins on Python numbers and lists
        if method:
            if not any(n == "self" for n, _ in pos):
                continue
            pos = [(n, t) for n, t in pos if n != "self"]
        else:
            pos = [("input" if n == "self" else n, t) for n, t in pos]
        out.append((head.split("::")[1], [n for n, _ in pos], [n for n, _ in kw]))
    return out


def departures(torch, fn, name, method):
    """How cygrad's fn fails to take torch's arguments (an empty list: compatible)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return ["no inspectable signature"]
    params = list(sig.parameters.values())
    if method:
        params = params[1:]
    var_pos = any(p.kind == p.VAR_POSITIONAL for p in params)
    var_kw = any(p.kind == p.VAR_KEYWORD for p in params)
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY,
                                                       p.POSITIONAL_OR_KEYWORD)]
    names = {p.name for p in params if p.kind != p.POSITIONAL_ONLY}
    problems = []
    for overload, pos, kw in torch_overloads(torch, name, method):
        for i, n in enumerate(pos):
            if i >= len(positional):
                if not var_pos:
                    problems.append(f"{overload}: torch takes {len(pos)} positional arguments, "
                                    f"cygrad {len(positional)}")
                break
            if positional[i] != n and n not in names and not var_kw:
                problems.append(f"{overload}: argument {i} is {n!r} in torch, "
                                f"{positional[i]!r} in cygrad")
        for n in kw:
            if n not in names and not var_kw and n not in IGNORED_KEYWORDS:
                problems.append(f"{overload}: keyword {n!r} missing")
    return sorted(set(problems))


def shared_names(torch):
    """(label, cygrad object, torch object, method?) for every public name both have."""
    out = []
    for label, c_owner, t_owner, method in (("cygrad", cygrad, torch, False),
                                            ("Tensor", cygrad.Tensor, torch.Tensor, True)):
        for name in sorted(dir(c_owner)):
            if name.startswith("_") or not hasattr(t_owner, name):
                continue
            out.append((f"{label}.{name}", getattr(c_owner, name), getattr(t_owner, name),
                        method))
    return out


def test_signatures_take_torchs_arguments():
    torch = need_torch()
    found = {}
    for label, c, t, method in shared_names(torch):
        if not callable(t) or isinstance(t, (type, types.ModuleType)) or not callable(c) or \
                isinstance(c, type):
            continue
        problems = departures(torch, c, label.split(".")[1], method)
        if problems and problems != ["no inspectable signature"]:
            found[label] = problems
    unexpected = {k: v for k, v in found.items() if k not in KNOWN}
    assert not unexpected, f"signatures that depart from torch's: {unexpected}"
    fixed = sorted(set(KNOWN) - set(found))
    assert not fixed, f"no longer departing (remove from KNOWN): {fixed}"


def test_same_kind_of_object_as_torch():
    torch = need_torch()
    for label, c, t, _ in shared_names(torch):
        if isinstance(t, types.ModuleType):
            assert isinstance(c, types.ModuleType), f"{label}: torch's is a module"
        elif isinstance(t, torch.dtype):
            assert isinstance(c, cygrad.dtype) and c.name == str(t).removeprefix("torch."), \
                f"{label}: torch's is the dtype {t}"
        elif isinstance(t, type):
            assert isinstance(c, type) or callable(c), f"{label}: torch's is a class"
        elif callable(t):
            assert callable(c), f"{label}: torch's is callable, cygrad's {type(c).__name__}"
        elif isinstance(t, (bool, int, float, str)):
            assert type(c) is type(t) or label in ("cygrad.strided",), \
                f"{label}: torch's is a {type(t).__name__}, cygrad's a {type(c).__name__}"


def torch_function_names(torch):
    return sorted(n for n in dir(torch) if not n.startswith("_") and n.islower() and
                  callable(getattr(torch, n)) and not isinstance(getattr(torch, n), type))


def test_missing_torch_names_say_cygrad_lacks_them():
    torch = need_torch()
    missing = [n for n in torch_function_names(torch) if not hasattr(cygrad, n)]
    assert len(missing) > 50  # (cygrad offers a subset: the check below must have work)
    for name in missing:
        with pytest.raises(AttributeError, match=f"cygrad does not implement torch.{name}"):
            getattr(cygrad, name)
    x = cygrad.ones(2)
    missing = [n for n in dir(torch.Tensor) if not n.startswith("_") and
               not hasattr(cygrad.Tensor, n)]
    assert len(missing) > 50
    for name in missing:  # Python's own message (Tensor has no __getattr__: see tensor.py)
        with pytest.raises(AttributeError, match=f"'Tensor' object has no attribute '{name}'"):
            getattr(x, name)


def test_trace_is_torchs_for_tensors_and_the_tracer_otherwise():
    a = np.arange(12.0).reshape(3, 4)
    diff(lambda m, t: m.trace(t), a, gradcheck=True)
    diff(lambda m, t: t.trace(), a.T.copy())
    diff(lambda m, t: m.trace(t), np.arange(6, dtype=np.int32).reshape(2, 3))
    diff(lambda m, t: m.trace(t), np.arange(3.0))
    diff(lambda m, t: m.trace(t), np.ones((2, 2), bool))
    with cygrad.trace() as recorded:
        w = cygrad.ones(2, requires_grad=True)
        (w * 2).sum().backward()
    assert "backward trace" in str(recorded)


@pytest.mark.parametrize("call", [
    lambda m, x: m.pow(x, exponent=2), lambda m, x: x.pow(exponent=3),
    lambda m, x: x.clone().pow_(exponent=2), lambda m, x: m.dot(x[0], tensor=x[1]),
    lambda m, x: x[0].dot(tensor=x[1]), lambda m, x: m.swapaxes(x, axis0=0, axis1=1),
    lambda m, x: x.swapaxes(axis0=1, axis1=0), lambda m, x: x.split(split_size=1),
    lambda m, x: m.split(x, split_size_or_sections=[1, 1], dim=1),
    lambda m, x: m.norm(x, 2, 1, False, None, m.float64), lambda m, x: x.norm(2, 1, False,
                                                                            m.float64),
    lambda m, x: str(m.promote_types(type1=m.int32, type2=m.float32)).split(".")[1],
    lambda m, x: m.inner(x, x), lambda m, x: m.outer(x[0], x[1]),
    # torch's argument parser takes numpy's axis= for dim= and keepdims= for keepdim=
    lambda m, x: m.cat([x, x], axis=1), lambda m, x: m.stack([x, x], axis=-1),
    lambda m, x: x.softmax(axis=0), lambda m, x: m.argmax(x, axis=1, keepdims=True),
    lambda m, x: x.sort(axis=0), lambda m, x: x.gather(axis=1, index=m.tensor([[1], [0]])),
    lambda m, x: x[:1].squeeze(axis=0), lambda m, x: x.cumsum(axis=1),
    lambda m, x: x.max(axis=0, keepdims=True), lambda m, x: x.sum(axis=(0, 1), keepdims=True),
    lambda m, x: x.unbind(axis=1), lambda m, x: x.index_select(axis=0, index=m.tensor([1])),
])
def test_keyword_forms_as_torch(call):
    diff(call, np.arange(4.0).reshape(2, 2) + 1)
