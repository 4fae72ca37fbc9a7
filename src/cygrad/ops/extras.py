"""torch functions made of cygrad's other ops (so their gradients and bits are those ops'):
shape helpers (ravel, hsplit/vsplit/dsplit, dstack, diag_embed, diagflat, block_diag,
cartesian_prod, take), statistics (cov, corrcoef, aminmax, msort, kthvalue), integration
(trapezoid, trapz, cumulative_trapezoid), searching (searchsorted, bucketize, isin; no
gradient), products (vdot, chain_matmul) and torch's older names for linalg functions
(pinverse, cholesky, svd, qr, matrix_exp, vander).
"""

import itertools

import numpy as np

from .._return_types import return_type
from ..tensor import Tensor, _dim, _wrap
from . import registry
from .registry import export


def _f(name):
    return registry.FUNCTIONS[name]


def _tensor_arg(x, where, name="input"):
    if not isinstance(x, Tensor):
        raise TypeError(f"{where}(): argument '{name}' (position 1) must be Tensor, not "
                        f"{type(x).__name__}")


# ---------------------------------------------------------------------- shape

@export("ravel", method=True)
def ravel(input):
    """input flattened to 1-D (a view when it can be)."""
    return input.reshape(-1)


def _split_dim(input, sections, dim, where, least):
    _tensor_arg(input, where)
    if input.dim() < least:
        raise RuntimeError(f"torch.{where} requires a tensor with at least {least} dimension, "
                           f"but got a tensor with {input.dim()} dimensions!")
    if isinstance(sections, int) and input.shape[dim] % sections:
        raise RuntimeError(f"torch.{where} attempted to split along dimension {dim}, but the "
                           f"size of the dimension {input.shape[dim]} is not divisible by the "
                           f"split_size {sections}!")
    return input.tensor_split(sections, dim)


@export("hsplit", method=True)
def hsplit(input, indices_or_sections):
    """tensor_split along dim 1 (dim 0 for 1-D input); sections must divide the size."""
    return _split_dim(input, indices_or_sections, 1 if input.dim() > 1 else 0, "hsplit", 1)


@export("vsplit", method=True)
def vsplit(input, indices_or_sections):
    """tensor_split along dim 0 of an at least 2-D input."""
    return _split_dim(input, indices_or_sections, 0, "vsplit", 2)


@export("dsplit", method=True)
def dsplit(input, indices_or_sections):
    """tensor_split along dim 2 of an at least 3-D input."""
    return _split_dim(input, indices_or_sections, 2, "dsplit", 3)


@export("dstack")
def dstack(tensors, *, out=None):
    """The tensors made at least 3-D, concatenated along dim 2."""
    result = _f("cat")([_f("atleast_3d")(t) for t in tensors], 2)
    return result if out is None else out._write(result)


@export("diag_embed", method=True)
def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    """Matrices whose diagonal (offset, in dims dim1, dim2 of the result) holds input's last
    dim."""
    n = input.shape[-1] + abs(offset)
    nd = input.dim() + 1
    d1, d2 = _dim(dim1, nd), _dim(dim2, nd)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    eye = np.eye(n, k=offset, dtype=bool)
    rows, cols = np.nonzero(eye)
    # result[..., i, j] = input[..., position of (i, j) on the diagonal] where eye, else 0
    place = np.zeros((n, n), np.int64)
    place[rows, cols] = np.arange(len(rows))
    spread = input.index_select(-1, _wrap(place.reshape(-1))).reshape(
        tuple(input.shape[:-1]) + (n, n))
    result = _f("where")(_wrap(eye), spread, _wrap(np.zeros((), input._data.dtype)))
    perm, rest = [], iter(range(nd - 2))  # the two new (last) dims go to d1 and d2
    for i in range(nd):
        perm.append(nd - 2 if i == d1 else nd - 1 if i == d2 else next(rest))
    return result.permute(*perm)


@export("diagflat", method=True)
def diagflat(input, offset=0):
    """A square matrix with input's elements (flattened) on its offset diagonal."""
    return diag_embed(input.reshape(-1), offset)


@export("block_diag")
def block_diag(*tensors):
    """The tensors (0-D, 1-D or 2-D) as the blocks of a block-diagonal matrix."""
    blocks = []
    for i, t in enumerate(tensors):
        if t.dim() > 2:
            raise RuntimeError(f"torch.block_diag: Input tensors must have 2 or fewer "
                               f"dimensions. Input {i} has {t.dim()} dimensions")
        blocks.append(t.reshape(1, -1) if t.dim() < 2 else t)
    if not blocks:
        return _wrap(np.zeros((1, 0), np.float32))
    common = blocks[0].dtype
    for b in blocks[1:]:
        common = _promote(common, b.dtype)
    blocks = [b if b.dtype == common else b.to(common) for b in blocks]
    dtype = blocks[0]._data.dtype
    cols = sum(b.shape[1] for b in blocks)
    rows, at = [], 0
    for b in blocks:
        left = _wrap(np.zeros((b.shape[0], at), dtype))
        right = _wrap(np.zeros((b.shape[0], cols - at - b.shape[1]), dtype))
        rows.append(_f("cat")([left, b, right], 1))
        at += b.shape[1]
    return _f("cat")(rows, 0)


def _promote(a, b):
    from .. import dtypes

    return dtypes.promote_types(a, b)


@export("cartesian_prod")
def cartesian_prod(*tensors):
    """Every combination of the 1-D tensors' elements, as rows (one tensor: itself)."""
    for t in tensors:
        if t.dim() != 1:
            raise RuntimeError(f"Expect a 1D vector, but got shape {list(t.shape)}")
    if len(tensors) == 1:
        return tensors[0]
    grids = _f("meshgrid")(*tensors, indexing="ij")
    return _f("stack")([g.reshape(-1) for g in grids], 1)


@export("combinations")
def combinations(input, r=2, with_replacement=False):
    """The r-element combinations of a 1-D tensor's elements, as rows (itertools' order)."""
    if input.dim() != 1:
        raise RuntimeError(f"Expect a 1D vector, but got shape {list(input.shape)}")
    if r < 0:
        raise RuntimeError(f"Expect a non-negative number, but got {r}")
    if r == 0:
        return input.narrow(0, 0, 0)  # (empty, still a function of input: torch's)
    pick = itertools.combinations_with_replacement if with_replacement else \
        itertools.combinations
    idx = np.array(list(pick(range(input.shape[0]), r)), np.int64).reshape(-1, r)
    if idx.shape[0] == 0:
        return input.narrow(0, 0, 0).reshape(0, r)
    return input.index_select(0, _wrap(idx.reshape(-1))).reshape(idx.shape)


@export("take", method=True)
def take(input, index):
    """input's elements at the flat indices of index (negative from the end), index's shape."""
    flat = input.reshape(-1)
    idx = index._data.astype(np.int64)
    n = flat.shape[0]
    bad = (idx >= n) | (idx < -n)
    if np.any(bad):
        raise IndexError(f"out of range: tried to access index {int(idx[bad][0])} on a tensor "
                         f"of {n} elements.")
    return flat.index_select(0, _wrap(np.where(idx < 0, idx + n, idx).reshape(-1))).reshape(
        idx.shape)


# ---------------------------------------------------------------------- statistics

@export("cov", method=True)
def cov(input, *, correction=1, fweights=None, aweights=None):
    """The covariance of input's rows (variables; columns are observations), as torch.cov
    (correction, integer frequency weights, observation weights)."""
    if input.dim() > 2:
        raise RuntimeError(f"cov(): expected input to have two or fewer dimensions but got "
                           f"an input with {input.dim()} dimensions")
    x = input.reshape(1, -1) if input.dim() < 2 else input
    if not x.is_floating_point():
        x = x.float()
    n = x.shape[1]
    w = None
    if fweights is not None:
        w = fweights
    if aweights is not None:
        w = aweights if w is None else w * aweights
    if w is None:
        total = n
        mean = x.mean(1, keepdim=True)
        norm = total - correction
    else:
        w = w.to(x.dtype) if hasattr(w, "to") else w
        total = w.sum()
        mean = (x * w).sum(1, keepdim=True) / total
        if correction == 0:
            norm = total
        elif aweights is None:
            norm = total - correction
        else:
            norm = total - correction * (w * aweights).sum() / total
    xm = x - mean
    xw = xm if w is None else xm * w
    c = xw @ xm.mT
    if isinstance(norm, (int, float)):
        c = c / max(norm, 0)
    else:
        c = c / norm.clamp(min=0)
    return c.squeeze() if input.dim() < 2 else c


@export("corrcoef", method=True)
def corrcoef(input):
    """Pearson correlation coefficients of input's rows (clipped to [-1, 1])."""
    c = cov(input)
    if c.dim() == 0:
        return c / c
    d = c.diagonal()
    std = d.sqrt()
    return (c / std.unsqueeze(1) / std.unsqueeze(0)).clamp(-1, 1)


aminmax_result = return_type("aminmax", ["min", "max"])


@export("aminmax", method=True)
def aminmax(input, *, dim=None, keepdim=False):
    """(amin, amax) over dim (all elements by default)."""
    if dim is None:
        if input.numel() == 0:
            raise RuntimeError("aminmax(): cannot compute aminmax over an empty dimension as "
                               "the operation has no identity.")
        x = input.reshape(-1) if not keepdim else input
        if keepdim:
            dims = tuple(range(input.dim()))
            return aminmax_result(input.amin(dims, keepdim=True), input.amax(dims, keepdim=True))
        return aminmax_result(x.amin(), x.amax())
    return aminmax_result(input.amin(dim, keepdim=keepdim), input.amax(dim, keepdim=keepdim))


@export("msort", method=True)
def msort(input):
    """input sorted along dim 0 (the values of sort(input, 0))."""
    return input.sort(0).values


kthvalue_result = return_type("kthvalue", ["values", "indices"])


@export("kthvalue", method=True)
def kthvalue(input, k, dim=-1, keepdim=False):
    """The k-th smallest element along dim (1-based k) and its index."""
    nd = max(input.dim(), 1)
    d = _dim(dim, nd)
    size = input.shape[d] if input.dim() else 1
    if not 1 <= k <= size:
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {d}")
    x = input if input.dim() else input.reshape(1)
    values, indices = x.sort(d, stable=True)
    v, i = values.narrow(d, k - 1, 1), indices.narrow(d, k - 1, 1)
    if not keepdim:
        v, i = v.squeeze(d), i.squeeze(d)
    if input.dim() == 0:
        v, i = v.reshape(()), i.reshape(())
    return kthvalue_result(v, i)


# ---------------------------------------------------------------------- integration

def _spacing(y, x, dx, dim, where):
    if x is not None and dx is not None:
        raise TypeError(f"{where}() received an invalid combination of arguments: x and dx")
    d = _dim(dim, y.dim())
    if x is None:
        return None, (1.0 if dx is None else dx), d
    if x.dim() == 1:
        shape = [1] * y.dim()
        shape[d] = -1
        x = x.reshape(shape)
    return _f("diff")(x, dim=d if x.dim() == y.dim() else -1), None, d


@export("trapezoid")
def trapezoid(y, x=None, *, dx=None, dim=-1):
    """The trapezoid rule along dim: sum((y[1:] + y[:-1]) / 2 * spacing)."""
    spacing, step, d = _spacing(y, x, dx, dim, "trapezoid")
    n = y.shape[d]
    if n == 0:
        return y.sum(d)
    mid = (y.narrow(d, 1, n - 1) + y.narrow(d, 0, n - 1)) / 2
    return (mid * spacing).sum(d) if spacing is not None else mid.sum(d) * step


@export("trapz")
def trapz(y, x=None, *, dx=None, dim=-1):
    """torch.trapz: trapezoid."""
    return trapezoid(y, x, dx=dx, dim=dim)


@export("cumulative_trapezoid")
def cumulative_trapezoid(y, x=None, *, dx=None, dim=-1):
    """The running trapezoid rule along dim (one element fewer than y there)."""
    spacing, step, d = _spacing(y, x, dx, dim, "cumulative_trapezoid")
    n = y.shape[d]
    if n == 0:
        return y
    mid = (y.narrow(d, 1, n - 1) + y.narrow(d, 0, n - 1)) / 2
    return (mid * spacing).cumsum(d) if spacing is not None else (mid * step).cumsum(d)


# ---------------------------------------------------------------------- searching

@export("searchsorted")
def searchsorted(sorted_sequence, input, *, out_int32=False, right=False, side=None,
                 sorter=None):
    """Indices where input's values would be inserted to keep each innermost row of
    sorted_sequence sorted (left or right of equal values). No gradient."""
    if side is not None:
        if side not in ("left", "right"):
            raise RuntimeError(f"torch.searchsorted(): side can only be 'left' or 'right' but "
                               f"got {side}")
        if right and side == "left":
            raise RuntimeError("torch.searchsorted(): side and right can't be set to opposites,"
                               " got side of left while right was True")
        right = side == "right"
    seq = sorted_sequence._data
    if sorter is not None:
        seq = np.take_along_axis(seq, sorter._data, -1)
    values = input._data if isinstance(input, Tensor) else np.asarray(input)
    how = "right" if right else "left"
    if seq.ndim == 1:
        out = np.searchsorted(seq, values, side=how)
    else:
        if seq.shape[:-1] != values.shape[:-1]:
            raise RuntimeError(f"torch.searchsorted(): boundaries tensor should be 1 dimension "
                               f"or the first N-1 dimensions of boundaries tensor and input "
                               f"value tensor must match, but we got boundaries tensor "
                               f"{list(seq.shape)} and input value tensor {list(values.shape)}")
        flat_s = seq.reshape(-1, seq.shape[-1])
        flat_v = values.reshape(-1, values.shape[-1])
        out = np.stack([np.searchsorted(a, v, side=how) for a, v in zip(flat_s, flat_v)]) \
            .reshape(values.shape) if flat_s.shape[0] else np.zeros(values.shape, np.int64)
    return _wrap(np.asarray(out, np.int32 if out_int32 else np.int64))


@export("bucketize")
def bucketize(input, boundaries, *, out_int32=False, right=False):
    """The bucket of each of input's values among 1-D boundaries (searchsorted's index)."""
    if boundaries.dim() != 1:
        raise RuntimeError(f"boundaries tensor must be 1 dimension, but got dim("
                           f"{boundaries.dim()})")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


@export("isin")
def isin(elements, test_elements, *, assume_unique=False, invert=False):
    """Whether each of elements is among test_elements (a bool tensor of elements' shape)."""
    e = elements._data if isinstance(elements, Tensor) else np.asarray(elements)
    t = test_elements._data if isinstance(test_elements, Tensor) else np.asarray(test_elements)
    return _wrap(np.isin(e, t, invert=invert))


# ---------------------------------------------------------------------- products

@export("vdot", method=True)
def vdot(input, other):
    """The dot product of two 1-D tensors (real: no conjugate)."""
    return _f("dot")(input, other)


@export("chain_matmul")
def chain_matmul(*matrices):
    """The product of the 2-D matrices (linalg.multi_dot's order)."""
    from ..linalg import multi_dot

    if len(matrices) == 1:
        return matrices[0]
    return multi_dot(matrices)


# ---------------------------------------------------------------------- older linalg names

@export("pinverse", method=True)
def pinverse(input, rcond=1e-15):
    """linalg.pinv with rtol = rcond."""
    from ..linalg import pinv

    return pinv(input, rtol=rcond)


@export("cholesky", method=True)
def cholesky(input, upper=False):
    """linalg.cholesky (torch.cholesky)."""
    from ..linalg import cholesky as _cholesky

    return _cholesky(input, upper=upper)


svd_result = return_type("svd", ["U", "S", "V"])
qr_result = return_type("qr", ["Q", "R"])


@export("svd", method=True)
def svd(input, some=True, compute_uv=True):
    """(U, S, V) with input = U diag(S) V^T (V, not linalg.svd's Vh); some: the thin form.
    compute_uv=False: U and V are square zeros (torch's)."""
    from ..linalg import svd as _svd

    if not compute_uv:
        from ..linalg import svdvals

        s = svdvals(input)
        m, n = input.shape[-2:]
        u = _wrap(np.zeros(tuple(input.shape[:-2]) + (m, m), input._data.dtype))
        v = _wrap(np.zeros(tuple(input.shape[:-2]) + (n, n), input._data.dtype))
        return svd_result(u, s, v)
    u, s, vh = _svd(input, full_matrices=not some)
    return svd_result(u, s, vh.mT)


@export("qr", method=True)
def qr(input, some=True):
    """linalg.qr with mode 'reduced' (some) or 'complete'."""
    from ..linalg import qr as _qr

    q, r = _qr(input, "reduced" if some else "complete")
    return qr_result(q, r)


@export("matrix_exp", method=True)
def matrix_exp(input):
    """linalg.matrix_exp."""
    from ..linalg import matrix_exp as _matrix_exp

    return _matrix_exp(input)


@export("vander")
def vander(x, N=None, increasing=False):
    """The Vandermonde matrix of a 1-D x: columns x^(N-1) ... x^0, or increasing powers."""
    if x.dim() != 1:
        raise RuntimeError("x must be a one-dimensional tensor.")
    count = x.shape[0] if N is None else N
    if count < 0:
        raise RuntimeError("N must be non-negative.")
    if count == 0:
        return _wrap(np.zeros((x.shape[0], 0), x._data.dtype if x.is_floating_point()
                              else np.int64))
    result = powers(x, count)
    return result if increasing else result.flip(-1)


def powers(x, count):
    """x^0, x^1, ..., x^(count-1) along a new last dim (each a product with the one before:
    torch's order); count >= 1."""
    cols = [_f("ones_like")(x)]
    for _ in range(1, count):
        cols.append(cols[-1] * x)
    return _f("stack")(cols, -1)

