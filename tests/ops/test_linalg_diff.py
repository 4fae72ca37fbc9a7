"""Products against PyTorch (tests/ops/torchdiff.py): matmul over every pairing of 1-D, 2-D
and batched operands with broadcasting, mm, bmm, mv, dot, inner, outer/ger, einsum (both
forms, '...', diagonals, broadcasting, n operands); shape and dtype mismatches raise torch's
exception types; gradients and gradcheck."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torchdiff import diff, run_gradcheck

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)
FLOATS = [np.float64, np.float32]


def values(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(-5, 6, shape).astype(dtype)


@st.composite
def operand_pair(draw):
    """Shapes for a @ b: 0-d to 4-d, contracted sizes usually matching, batch dims usually
    broadcastable (size 0 and 1 included)."""
    n, k, m = (draw(st.integers(0, 3)) for _ in range(3))
    na, nb = draw(st.integers(0, 4)), draw(st.integers(0, 4))
    batch = [draw(st.integers(0, 3)) for _ in range(2)]
    a = tuple(draw(st.sampled_from([1, s])) for s in batch)[:max(na - 2, 0)] + (n, k)[-na:] \
        if na else ()
    b = tuple(draw(st.sampled_from([1, s])) for s in batch)[:max(nb - 2, 0)] + (k, m)[-nb:] \
        if nb else ()
    if draw(st.integers(0, 5)) == 0 and b:  # a mismatch now and then
        b = b[:-2] + (k + 1,) + b[-1:] if len(b) >= 2 else (k + 1,)
    return a[-na:] if na else (), b[-nb:] if nb else ()


PAIR_OPS = {
    "matmul": lambda m, a, b: m.matmul(a, b),
    "operator": lambda m, a, b: a @ b,
    "mm": lambda m, a, b: a.mm(b),
    "bmm": lambda m, a, b: m.bmm(a, b),
    "mv": lambda m, a, b: a.mv(b),
    "dot": lambda m, a, b: m.dot(a, b),
    "inner": lambda m, a, b: m.inner(a, b),
    "inner_method": lambda m, a, b: a.inner(b.mT if b.dim() == 2 else b),
    "outer": lambda m, a, b: m.outer(a, b),
    "ger": lambda m, a, b: a.ger(b),
}


@pytest.mark.parametrize("name", sorted(PAIR_OPS))
@SETTINGS
@given(shapes=operand_pair(), dtype=st.sampled_from(FLOATS + [np.int64]),
       kinds=st.sampled_from(["cc", "tc", "ct", "ss"]), seed=st.integers(0, 99))
def test_products(name, shapes, dtype, kinds, seed):
    sa, sb = shapes
    a, b = values(sa, dtype, seed), values(sb, dtype, seed + 1)
    diff(PAIR_OPS[name], a, b, kinds=[k if s else "c" for k, s in zip(kinds, shapes)])


def test_mixed_dtypes_and_non_tensors_raise_as_torch():
    a32, a64 = values((2, 3), np.float32), values((3, 2), np.float64)
    for name in sorted(PAIR_OPS):
        diff(PAIR_OPS[name], a32, a64)
        diff(PAIR_OPS[name], values((3,), np.int64), values((3,), np.float32))
    diff(lambda m, a: m.matmul(a, [[1.0], [2.0], [3.0]]), a32)
    diff(lambda m, a: a.mm(2.0), a32)


EINSUMS = [("ij,jk->ik", (2, 3), (3, 4)), ("ij,jk", (2, 3), (3, 4)), ("bij,bjk->bik", (2, 2, 3),
           (2, 3, 1)), ("i,i->", (3,), (3,)), ("i,j->ij", (2,), (3,)), ("ij,ij->i", (2, 3),
           (2, 3)), ("ij->ji", (2, 3), None), ("ij->", (2, 3), None), ("ij->j", (2, 3), None),
           ("bhqd,bhkd->bhqk", (2, 2, 3, 4), (2, 2, 5, 4)), ("ij,kj->ik", (2, 3), (4, 3)),
           ("ik,kj->ij", (2, 0), (0, 3)), ("ij,jk->ik", (2, 3), (4, 4)),
           ("ij,jk->ikl", (2, 3), (3, 4)), ("abc,cd->abd", (2, 3, 4), (4, 2)),
           ("ij,j->i", (3, 4), (4,)), ("i,ij->j", (3,), (3, 2))]


@pytest.mark.parametrize("equation,sa,sb", EINSUMS)
@pytest.mark.parametrize("dtype", FLOATS)
def test_einsum(equation, sa, sb, dtype):
    arrays = [values(s, dtype, i) for i, s in enumerate((sa, sb)) if s is not None]
    diff(lambda m, *ts: m.einsum(equation, *ts), *arrays)
    diff(lambda m, *ts: m.einsum(equation, list(ts)), *arrays)
    if dtype == np.float64:
        try:
            import torch
            torch.einsum(equation, *[torch.from_numpy(a) for a in arrays])
        except RuntimeError:
            return
        run_gradcheck(lambda m, *ts: m.einsum(equation, *ts), arrays)


EINSUMS_N = [
    ("...ij,...jk->...ik", [(2, 3, 4), (4, 5)]), ("...ij,...jk", [(5, 2, 3, 4), (2, 4, 5)]),
    ("i...->...", [(3, 4, 5)]), ("...", [(2, 3)]), ("..., ...", [(2, 3), (3,)]),
    ("ab...,b->a...", [(2, 3, 4), (3,)]), ("ij->j...", [(2, 3)]),
    ("...i,...i", [(2, 1, 3), (4, 3)]), ("...i,...->...", [(3, 4), (5, 3)]),
    ("ii->i", [(3, 3)]), ("ii", [(3, 3)]), ("iji->j", [(3, 2, 3)]), ("ii,i->i", [(3, 3), (3,)]),
    ("i,i->i", [(3,), (1,)]), ("ij,jk", [(2, 1), (3, 4)]), ("Aa,aB->AB", [(2, 3), (3, 4)]),
    ("abc,cd,de->abe", [(2, 3, 4), (4, 5), (5, 6)]), ("i,j,k", [(2,), (3,), (4,)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]), ("i,i,i->", [(4,), (4,), (4,)]),
    ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]), (" i j , j k -> i k ", [(2, 3), (3, 4)]),
    # torch's errors
    ("ii->", [(3, 4)]), ("ij,ij->", [(2, 3), (3, 2)]), ("iij", [(2, 3, 4)]), ("i->ii", [(3,)]),
    ("a.b", [(2, 3)]), ("...a...", [(2, 3)]), ("i,j", [(2,)]), ("i", [(2,), (3,)]),
    ("ij->k", [(2, 3)]), ("i1", [(2, 2)]), ("ij", [(2,)]), ("...ij", [(2,)]),
    ("ij->i..", [(2, 3)])]


@pytest.mark.parametrize("equation,shapes", EINSUMS_N)
@pytest.mark.parametrize("dtype", FLOATS)
def test_einsum_ellipsis_diagonals_broadcast_and_n_operands(equation, shapes, dtype):
    """'...' (right-aligned broadcast), repeated subscripts (diagonals), size-1 dimensions,
    three operands, the implicit output, spaces; torch's error for each malformed equation."""
    arrays = [values(s, dtype, i) for i, s in enumerate(shapes)]
    diff(lambda m, *ts: m.einsum(equation, *ts), *arrays)
    if dtype == np.float64:
        try:
            import torch
            torch.einsum(equation, *[torch.from_numpy(a) for a in arrays])
        except RuntimeError:
            return
        except ImportError:
            pass
        run_gradcheck(lambda m, *ts: m.einsum(equation, *ts), arrays)


@pytest.mark.parametrize("equation,shapes,batched", [
    ("...ij,jk->...ik", [(5, 3, 4), (4, 6)], 0),
    ("bij,bjk,bk->bi", [(4, 2, 3), (4, 3, 5), (4, 5)], None),
    ("bii,bi->bi", [(4, 3, 3), (4, 3)], None)])
def test_einsum_a_sample_alone_gives_its_bits_in_the_batch(equation, shapes, batched):
    """Each output element is the same chain of multiply-adds whether its sample is computed
    alone or inside the batch (the leading dim; every operand's with batched=None)."""
    import cygrad
    arrays = [values(s, np.float32, i) for i, s in enumerate(shapes)]
    whole = cygrad.einsum(equation, *[cygrad.tensor(a) for a in arrays]).numpy()
    for i in (0, 2):
        part = [a[i:i + 1] if batched is None or j == batched else a
                for j, a in enumerate(arrays)]
        alone = cygrad.einsum(equation, *[cygrad.tensor(a) for a in part]).numpy()
        assert np.array_equal(alone[0], whole[i])


@pytest.mark.parametrize("dtype", FLOATS)
def test_einsum_sublist_format(dtype):
    """torch.einsum(op0, [0, 1], op1, [1, 2], [0, 2]) and with Ellipsis; a subscript out of
    [0, 52) or too few arguments: torch's ValueError."""
    a, b = values((2, 3), dtype, 1), values((3, 4), dtype, 2)
    diff(lambda m, x, y: m.einsum(x, [0, 1], y, [1, 2], [0, 2]), a, b)
    diff(lambda m, x, y: m.einsum(x, [Ellipsis, 1], y, [1, 2]), a, b)
    diff(lambda m, x, y: m.einsum(x, [Ellipsis, 27], y, [27, 51], [51, Ellipsis]), a, b)
    diff(lambda m, x: m.einsum(x, [0, 52]), a)
    diff(lambda m, x: m.einsum(x), a)


@pytest.mark.parametrize("sa,sb", [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 2)),
                                   ((2, 3), (3, 4)), ((2, 2, 3), (3, 4)), ((3,), (2, 3, 4)),
                                   ((1, 2, 3), (4, 3, 2))])
def test_matmul_gradcheck(sa, sb):
    run_gradcheck(lambda m, a, b: a @ b, [values(sa, np.float64, 1), values(sb, np.float64, 2)])
    run_gradcheck(lambda m, a, b: m.inner(a, b.mT if b.dim() > 1 else b),
                  [values(sa, np.float64, 1), values(sb, np.float64, 2)])
