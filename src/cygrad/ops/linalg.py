"""Products: matmul (1-D, 2-D and batched N-D with broadcasting on both sides), mm, bmm, mv,
dot, outer, einsum. Every float product runs through the backend's exact gemm, so each output
element is one fixed multiply-add chain: identical rows give identical results at any batch
size, position and thread count.
"""

import math

import numpy as np

from .. import backend as B
from ..tensor import Tensor, _wrap, apply
from . import Op, higher, registry
from .registry import export


class MatMul(Op):
    """C = A @ B, A (..., n, k), B (..., k, m), batch dims broadcast"""

    rule = "dA = g @ B.T;  dB = A.T @ g  (summed over broadcast batch dims)"
    saves = (0, 1)
    node = "MmBackward0"  # torch's grad_fn of two matrices (forward names a batch's)

    def forward(self, a, b):
        self.a, self.b = a, b
        if a.ndim == 2 and b.ndim == 2:
            return B.gemm(a, b)
        if self.node == "MmBackward0":  # torch's matmul of a batch: a bmm, then an unsafe
            self.node = "UnsafeViewBackward0"  # view (bmm's own name is given by bmm)
        n, k, m = a.shape[-2], a.shape[-1], b.shape[-1]
        batch = a.shape[:-2]
        if batch != b.shape[:-2]:
            batch = np.broadcast_shapes(batch, b.shape[:-2])
        self.batch = batch
        count = math.prod(batch)  # (explicit sizes: -1 is ambiguous for empty arrays)
        if b.ndim == 2 and a.shape[:-2] == batch:  # rows of every sample against one matrix
            return B.gemm(a.reshape(count * n, k), b).reshape(batch + (n, m))
        a3, b3 = _batched(a, batch, count), _batched(b, batch, count)
        return B.batched_gemm(a3, b3).reshape(batch + (n, m))  # one exact gemm per matrix

    def backward(self, g):
        a, b = self.a, self.b
        needs = self.needs
        if a.ndim == 2 and b.ndim == 2:
            da = B.gemm(g, b, trans_b=True) if needs[0] else None
            db = B.gemm(a, g, trans_a=True) if needs[1] else None
            return da, db
        n, k, m = a.shape[-2], a.shape[-1], b.shape[-1]
        batch = self.batch
        count = math.prod(batch)
        if b.ndim == 2 and a.shape[:-2] == batch:
            rows_a, rows_g = a.reshape(count * n, k), g.reshape(count * n, m)
            da = B.gemm(rows_g, b, trans_b=True).reshape(a.shape) if needs[0] else None
            db = B.gemm(rows_a, rows_g, trans_a=True) if needs[1] else None
            return da, db
        a3, b3 = _batched(a, batch, count), _batched(b, batch, count)
        g3 = g.reshape(count, n, m)
        da = db = None
        if needs[0]:
            da = B.batched_gemm(g3, b3, False, True)
            da = B.sum_to_shape(da.reshape(batch + (n, k)), a.shape)
        if needs[1]:
            db = B.batched_gemm(a3, g3, True, False)
            db = B.sum_to_shape(db.reshape(batch + (k, m)), b.shape)
        return da, db

    def vjp(self, g, inputs, output):
        a, b = inputs
        da = higher.sum_to(g @ b.transpose(-1, -2), a.shape) if self.needs[0] else None
        db = higher.sum_to(a.transpose(-1, -2) @ g, b.shape) if self.needs[1] else None
        return da, db


def _batched(a, batch, count):
    """a's matrices as (count, rows, columns), broadcast to the batch dims `batch` (a view,
    or a copy when a's layout needs one)."""
    if a.shape[:-2] != batch:
        a = np.broadcast_to(a, batch + a.shape[-2:])
    return a.reshape((count,) + a.shape[-2:])


def _is_sparse(x):
    """A sparse COO tensor (cygrad/sparse.py): mm and matmul hand it to sparse.mm."""
    return type(x).__name__ == "SparseTensor" and type(x).__module__ == "cygrad.sparse"


def _check_pair(a, b, where):
    for name, t in (("input", a), ("other", b)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{where}(): argument '{name}' must be Tensor, not "
                            f"{type(t).__name__}")
    if a._data.dtype != b._data.dtype:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {a.dtype.name} "
                           f"!= {b.dtype.name}")


def _product(a, b, node=None):
    """a @ b for operands of at least 2 dims (after matmul's 1-D promotion); node: torch's
    grad_fn name where it is not MatMul's own (bmm's)."""
    sa, sb = a._data.shape, b._data.shape
    if sa[-1] != sb[-2]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied "
                           f"({'x'.join(map(str, sa[-2:]))} and {'x'.join(map(str, sb[-2:]))})")
    try:
        np.broadcast_shapes(sa[:-2], sb[:-2])
    except ValueError:
        raise RuntimeError(f"The size of tensor a must match the size of tensor b at a "
                           f"non-singleton batch dimension: shapes {list(sa)} and "
                           f"{list(sb)}") from None
    if a._data.dtype.kind not in "f":  # integers: numpy's product is exact anyway
        return _wrap(np.matmul(a._data, b._data))
    if node is None:  # (MatMul names itself: mm's node, or matmul's view of a batch)
        return apply(MatMul, a, b)
    return apply(MatMul, a, b, node=node)


# torch's grad_fn of matmul with a vector operand (by the operands' dims): dot, mv, a squeezed
# mm, else (a batch) an unsafe view (cygrad's last node there is the squeeze of the product of
# a row or column: named so)
_VECTOR_NODES = {(1, 1): "DotBackward0", (2, 1): "MvBackward0", (1, 2): "SqueezeBackward4"}


@export("matmul", method=True)
def matmul(input, other, *, out=None):
    """input @ other: 1-D operands become a row (left) or a column (right), removed after;
    batch dims broadcast."""
    if (type(input) is not Tensor or type(other) is not Tensor) and \
            (_is_sparse(input) or _is_sparse(other)):  # (the dense case pays two type checks)
        from .. import sparse

        return sparse.mm(input, other)
    _check_pair(input, other, "matmul")
    a, b = input, other
    if a._data.ndim == 0 or b._data.ndim == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are "
                           f"{a._data.ndim}D and {b._data.ndim}D")
    squeeze = []
    if a._data.ndim == 1:
        a = a.unsqueeze(0)
        squeeze.append(-2)
    if b._data.ndim == 1:
        b = b.unsqueeze(1)
        squeeze.append(-1)
    result = _product(a, b)
    for d in sorted(squeeze):
        result = result.squeeze(d)
    if squeeze and result._op is not None:  # torch's dot, mv, squeezed mm or batched view
        result._op.node = _VECTOR_NODES.get((input._data.ndim, other._data.ndim),
                                            "UnsafeViewBackward0")
    if out is not None:
        return out._write(result)
    return result


Tensor.__matmul__ = lambda self, other: matmul(self, other) if isinstance(other, Tensor) \
    else NotImplemented
Tensor.__rmatmul__ = lambda self, other: matmul(_wrap(np.asarray(other)), self) \
    if isinstance(other, np.ndarray) else NotImplemented


@export("mm", method=True)
def mm(input, mat2):
    if (type(input) is not Tensor or type(mat2) is not Tensor) and \
            (_is_sparse(input) or _is_sparse(mat2)):
        from .. import sparse

        return sparse.mm(input, mat2)
    _check_pair(input, mat2, "mm")
    if input._data.ndim != 2 or mat2._data.ndim != 2:
        raise RuntimeError(f"mm: expected 2-D tensors, got {input._data.ndim}-D and "
                           f"{mat2._data.ndim}-D")
    return _product(input, mat2)


@export("bmm", method=True)
def bmm(input, mat2):
    """Batched product of (b, n, k) and (b, k, m) (no broadcasting, as torch.bmm)."""
    _check_pair(input, mat2, "bmm")
    if input._data.ndim != 3 or mat2._data.ndim != 3:
        raise RuntimeError(f"batch1 must be a 3D tensor (got {input._data.ndim}-D and "
                           f"{mat2._data.ndim}-D)")
    if input._data.shape[0] != mat2._data.shape[0]:
        raise RuntimeError(f"batch1 and batch2 must have same number of batches, got "
                           f"{input._data.shape[0]} and {mat2._data.shape[0]}")
    return _product(input, mat2, "BmmBackward0")


@export("mv", method=True)
def mv(input, vec):
    _check_pair(input, vec, "mv")
    if input._data.ndim == 0:
        raise IndexError("Dimension specified as 0 but tensor has no dimensions")
    if input._data.ndim != 2 or vec._data.ndim != 1:
        raise RuntimeError("vector + matrix @ vector expected, got "
                           f"{input._data.ndim}, {vec._data.ndim}")
    return matmul(input, vec)


@export("dot", method=True)
def dot(input, tensor):
    """The inner product of two 1-D tensors of one dtype."""
    other = tensor
    _check_pair(input, other, "dot")
    if input._data.ndim != 1 or other._data.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input._data.ndim}D and "
                           f"{other._data.ndim}D tensors")
    if input._data.shape != other._data.shape:
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{input._data.shape[0]}]"
                           f" and src [{other._data.shape[0]}] to have the same number of "
                           "elements, but got {0} and {1} elements respectively".format(
                               input._data.shape[0], other._data.shape[0]))
    return matmul(input, other)


@export("inner", method=True)
def inner(input, other, *, out=None):
    """sum_k input[..., k] * other[..., k]: shape input.shape[:-1] + other.shape[:-1] (a 0-d
    operand multiplies the other)."""
    _check_pair(input, other, "inner")
    if input._data.ndim == 0 or other._data.ndim == 0:
        return input * other
    sa, sb = input._data.shape, other._data.shape
    if sa[-1] != sb[-1]:
        raise RuntimeError(f"inner() the last dimension must match on both input tensors but "
                           f"got shapes {list(sa)} and {list(sb)}")
    result = matmul(input.reshape(math.prod(sa[:-1]), sa[-1]),
                    other.reshape(math.prod(sb[:-1]), sb[-1]).mT)
    result = result.reshape(sa[:-1] + sb[:-1])
    return out._write(result) if out is not None else result


@export("trace", method=True)
def trace(input):
    """The sum of the main diagonal of a matrix (integers sum in int64, as torch.sum)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"trace(): argument 'input' must be Tensor, not {type(input).__name__}")
    if input._data.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim "
                           f"{input._data.ndim}")
    if input._data.dtype.kind == "b":
        raise NotImplementedError("\"trace\" not implemented for 'Bool'")
    return input.diagonal().sum()


@export("outer", "ger", method=True, methods=("ger",))
def outer(input, vec2):
    """input[i] * vec2[j] for 1-D tensors (elementwise products: exact; dtypes promote)."""
    for name, t in (("self", input), ("vec2", vec2)):
        if not isinstance(t, Tensor):
            raise TypeError(f"outer(): argument '{name}' must be Tensor, not "
                            f"{type(t).__name__}")
        if t._data.ndim != 1:
            raise RuntimeError(f"outer: Expected 1-D argument {name}, but got "
                               f"{t._data.ndim}-D")
    return input.reshape(-1, 1) * vec2.reshape(1, -1)


_LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # torch's label order


def _sublist(arg):
    """A sublist-format subscript list ([0, 1], Ellipsis, ...) as equation text."""
    text = ""
    for n in arg:
        if n is Ellipsis:
            text += "..."
        elif isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 52:
            text += _LABELS[n]
        else:
            raise ValueError("einsum(): subscript in subscript list is not within the valid "
                             "range [0, 52)")
    return text


def _einsum_args(args):
    """(equation, operands) from torch.einsum's two forms: (equation, *operands) (or one
    list of operands), and (op0, sublist0, op1, sublist1, ..., [output sublist])."""
    if len(args) < 2:
        raise ValueError("einsum(): must specify the equation string and at least one operand, "
                         "or at least one operand and its subscripts list")
    if isinstance(args[0], Tensor):
        output = args[-1] if len(args) % 2 else None  # (an odd count: the output list last)
        pairs = args[:-1] if len(args) % 2 else args
        operands, subs = list(pairs[0::2]), list(pairs[1::2])
        if len(subs) != len(operands) or not all(isinstance(t, Tensor) for t in operands):
            raise TypeError("einsum(): the sublist format takes tensors and subscript lists "
                            "in turn, then optionally the output's list")
        equation = ",".join(_sublist(x) for x in subs)
        if output is not None:
            equation += "->" + _sublist(output)
        return equation, operands
    equation, operands = args[0], list(args[1:])
    if not isinstance(equation, str):
        raise TypeError(f"einsum(): argument 'equation' must be str, not "
                        f"{type(equation).__name__}")
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = list(operands[0])
    for i, t in enumerate(operands):
        if not isinstance(t, Tensor):
            raise TypeError(f"einsum(): argument 'operands' must be tuple of Tensors, not "
                            f"{type(t).__name__} (operand {i})")
    return equation, operands


def _einsum_side(text, offset, where):
    """A side of the equation as labels (0-51) with None for an ellipsis; spaces ignored."""
    labels, i = [], 0
    while i < len(text):
        c = text[i]
        if c == ".":
            if None in labels:
                raise RuntimeError(f"einsum(): found '.' for {where} for which an ellipsis was "
                                   "already found" if where != "output" else
                                   "einsum(): found '.' for output but an ellipsis (...) was "
                                   "already found")
            if text[i:i + 3] != "...":
                raise RuntimeError(f"einsum(): found '.' for {where} that is not part of any "
                                   "ellipsis" + (" (...)" if where == "output" else ""))
            labels.append(None)
            i += 3
            continue
        if c != " ":
            if c not in _LABELS:
                raise RuntimeError(f"einsum(): invalid subscript given at index {offset + i} in "
                                   "the equation string, subscripts must be in [a-zA-Z]")
            labels.append(_LABELS.index(c))
        i += 1
    return labels


def _contract(a, la, b, lb, keep):
    """The product of two operands with labels la, lb (each label once per operand, equal
    sizes): labels in `keep` stay (those in both are batch dims), the others are summed; the
    result's labels are batch + a's own + b's own. One batched exact gemm."""
    for which in (0, 1):  # sum away what appears in one operand only and is not kept
        t, lt, other = (a, la, lb) if which == 0 else (b, lb, la)
        lone = tuple(i for i, c in enumerate(lt) if c not in other and c not in keep)
        if lone:
            t, lt = t.sum(lone), [c for c in lt if c in other or c in keep]
            a, la = (t, lt) if which == 0 else (a, la)
            b, lb = (t, lt) if which == 1 else (b, lb)
    batch = [c for c in la if c in lb and c in keep]
    contracted = [c for c in la if c in lb and c not in keep]
    left = [c for c in la if c not in lb]
    right = [c for c in lb if c not in la]
    size = dict(zip(la, a._data.shape))
    size.update(zip(lb, b._data.shape))
    nb, nl, nc, nr = ([size[c] for c in group] for group in (batch, left, contracted, right))
    a3 = a.permute(*[la.index(c) for c in batch + left + contracted]).reshape(
        math.prod(nb), math.prod(nl), math.prod(nc))
    b3 = b.permute(*[lb.index(c) for c in batch + contracted + right]).reshape(
        math.prod(nb), math.prod(nc), math.prod(nr))
    return matmul(a3, b3).reshape(tuple(nb + nl + nr)), batch + left + right


@export("einsum")
def einsum(*args):
    """torch.einsum: Einstein summation over any number of operands, in either of torch's
    forms, with '...' (broadcast, right-aligned, as torch), repeated subscripts within an
    operand (its diagonal), size-1 dimensions broadcast, and the implicit output (the
    ellipsis dims, then the subscripts seen once, A-Z before a-z). Operands are contracted
    left to right (torch's order without opt_einsum), each pair as one batched exact gemm, so
    each output element is a fixed chain of multiply-adds; a single operand is summed and
    permuted."""
    equation, operands = _einsum_args(args)
    arrow = equation.find("->")
    lhs = equation if arrow < 0 else equation[:arrow]
    parts = lhs.split(",")
    if len(parts) > len(operands):
        raise RuntimeError("einsum(): fewer operands were provided than specified in the "
                           "equation")
    if len(parts) < len(operands):
        raise RuntimeError("einsum(): more operands were provided than specified in the "
                           "equation")
    specs, offset = [], 0
    for i, part in enumerate(parts):
        specs.append(_einsum_side(part, offset, f"operand {i}"))
        offset += len(part) + 1
    ell = 0  # the ellipsis' dims: the most any operand's covers
    for i, (spec, t) in enumerate(zip(specs, operands)):
        named, ndim = len(spec) - (None in spec), t._data.ndim
        if None in spec:
            if named > ndim:
                raise RuntimeError(f"einsum(): the number of subscripts in the equation ({named})"
                                   f" is more than the number of dimensions ({ndim}) for operand"
                                   f" {i}")
            ell = max(ell, ndim - named)
        elif named != ndim:
            raise RuntimeError(f"einsum(): the number of subscripts in the equation ({named}) "
                               f"does not match the number of dimensions ({ndim}) for operand "
                               f"{i} and no ellipsis was given")
    # labels per dim: an ellipsis' dims are 52 + j, right-aligned to the widest
    full = []
    for spec, t in zip(specs, operands):
        labels = []
        for c in spec:
            if c is None:
                k = t._data.ndim - (len(spec) - 1)
                labels += [52 + ell - k + j for j in range(k)]
            else:
                labels.append(c)
        full.append(labels)
    counts = {}
    for labels in full:
        for c in labels:
            counts[c] = counts.get(c, 0) + 1
    if arrow < 0:
        out = list(range(52, 52 + ell)) + sorted(c for c in counts if c < 52 and
                                                 counts[c] == 1)
    else:
        out = []
        for c in _einsum_side(equation[arrow + 2:], arrow + 2, "output"):
            if c is None:
                out += list(range(52, 52 + ell))
                continue
            if c in out or c not in counts:
                raise RuntimeError(f"einsum(): output subscript {_LABELS[c]} " + (
                    "appears more than once in the output" if c in out else
                    "does not appear in the equation for any input operand"))
            out.append(c)
    # repeated subscripts within an operand: its diagonal; sizes: equal, or 1 (broadcast)
    size = {}
    for i, (labels, t) in enumerate(zip(full, operands)):
        for c in list(dict.fromkeys(labels)):
            where = [d for d, x in enumerate(labels) if x == c]
            while len(where) > 1:
                d0, d1 = where[0], where[1]
                n0, n1 = t._data.shape[d0], t._data.shape[d1]
                if n0 != n1:
                    raise RuntimeError(f"einsum(): subscript {_LABELS[c]} is repeated for "
                                       f"operand {i} but the sizes don't match, {n1} != {n0}")
                t = t.diagonal(0, d0, d1)  # (the diagonal becomes the last dim)
                labels = [x for d, x in enumerate(labels) if d not in (d0, d1)] + [c]
                where = [d for d, x in enumerate(labels) if x == c]
        full[i], operands[i] = labels, t
        for c, n in zip(labels, t._data.shape):
            if size.get(c, 1) != 1 and n != 1 and n != size[c]:
                name = _LABELS[c] if c < 52 else "..."
                raise RuntimeError(f"einsum(): subscript {name} has size {n} for operand {i} "
                                   f"which does not broadcast with previously seen size "
                                   f"{size[c]}")
            if n != 1 or c not in size:
                size[c] = n
    for i, (labels, t) in enumerate(zip(full, operands)):  # size-1 dims broadcast
        shape = tuple(size[c] for c in labels)
        if shape != t._data.shape:
            operands[i] = t.expand(*shape)
    x, lx = operands[0], full[0]
    for i in range(1, len(operands)):
        keep = set(out).union(*full[i + 1:])
        x, lx = _contract(x, lx, operands[i], full[i], keep)
    summed = tuple(d for d, c in enumerate(lx) if c not in out)
    if summed:
        x, lx = x.sum(summed), [c for c in lx if c in out]
    return x.permute(*[lx.index(c) for c in out]) if out else x


# ---------------------------------------------------------------------- composites
# Made of the products above and elementwise ops: their gradients and bits are those ops'.

def _where(condition, input, other):
    return registry.FUNCTIONS["where"](condition, input, other)


def _scaled_sum(input, product, beta, alpha, where):
    """beta * input + alpha * product (torch's addmm family: with beta == 0 input is not read,
    so its NaN and inf do not propagate; it must still broadcast to the product)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{where}(): argument 'input' must be Tensor, not "
                        f"{type(input).__name__}")
    shape = product._data.shape
    lead = len(shape) - input._data.ndim
    if lead < 0 or any(s not in (1, t) for s, t in zip(input._data.shape, shape[lead:])):
        raise RuntimeError(f"The expanded size of the tensor must match the existing size: "
                           f"{where} of input {list(input.shape)} and a product of "
                           f"{list(shape)}")
    if alpha != 1:
        product = product * alpha
    if beta == 0:  # the product's values, input in the graph with a zero gradient (as torch)
        return _where(_wrap(np.zeros(shape, np.bool_)), input, product)
    return (input if beta == 1 else input * beta) + product


def _no_out_dtype(out_dtype, where):
    if out_dtype is not None:
        raise NotImplementedError(f"{where} with out_dtype: torch runs it on CUDA only, "
                                  "cygrad not at all")


@export("addmm", method=True)
def addmm(input, mat1, mat2, out_dtype=None, *, beta=1, alpha=1):
    """beta * input + alpha * (mat1 @ mat2), 2-D matrices."""
    _no_out_dtype(out_dtype, "addmm")
    for name, t in (("mat1", mat1), ("mat2", mat2)):
        if isinstance(t, Tensor) and t._data.ndim != 2:
            raise RuntimeError(f"{name} must be a matrix, got {t._data.ndim}-D tensor")
    return _scaled_sum(input, mm(mat1, mat2), beta, alpha, "addmm")


@export("addmv", method=True)
def addmv(input, mat, vec, *, beta=1, alpha=1):
    """beta * input + alpha * (mat @ vec)."""
    return _scaled_sum(input, mv(mat, vec), beta, alpha, "addmv")


@export("baddbmm", method=True)
def baddbmm(input, batch1, batch2, out_dtype=None, *, beta=1, alpha=1):
    """beta * input + alpha * bmm(batch1, batch2)."""
    _no_out_dtype(out_dtype, "baddbmm")
    return _scaled_sum(input, bmm(batch1, batch2), beta, alpha, "baddbmm")


@export("addbmm", method=True)
def addbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """beta * input + alpha * (the sum over the batch of bmm(batch1, batch2))."""
    return _scaled_sum(input, bmm(batch1, batch2).sum(0), beta, alpha, "addbmm")


@export("kron", method=True)
def kron(input, other):
    """The Kronecker product: out[i * b + j] = input[i] * other[j] in every dim (the fewer
    dims of one operand padded with leading 1s); elementwise products, exact."""
    for name, t in (("input", input), ("other", other)):
        if not isinstance(t, Tensor):
            raise TypeError(f"kron(): argument '{name}' must be Tensor, not "
                            f"{type(t).__name__}")
    n = max(input._data.ndim, other._data.ndim)
    a = (1,) * (n - input._data.ndim) + input._data.shape
    b = (1,) * (n - other._data.ndim) + other._data.shape
    left = input.reshape(tuple(x for s in a for x in (s, 1)))
    right = other.reshape(tuple(x for s in b for x in (1, s)))
    return (left * right).reshape(tuple(x * y for x, y in zip(a, b)))


@export("tensordot")
def tensordot(a, b, dims=2, out=None):
    """Contract a's dims dims[0] with b's dims[1] (an int n: a's last n with b's first n):
    both laid out as matrices, one exact product, reshaped back."""
    if isinstance(dims, int):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        da = list(range(a._data.ndim - dims, a._data.ndim))
        db = list(range(dims))
    else:
        da, db = ([d] if isinstance(d, int) else list(d) for d in dims)
        if isinstance(dims, Tensor):
            raise TypeError("tensordot: dims as a tensor is not supported; pass lists")
    if len(da) != len(db):
        raise RuntimeError(f"both dimension lists should have same length, got {len(da)} and "
                           f"{len(db)}")
    da = [d % a._data.ndim if a._data.ndim else d for d in da]
    db = [d % b._data.ndim if b._data.ndim else d for d in db]
    for x, y in zip(da, db):
        if a._data.shape[x] != b._data.shape[y]:
            raise RuntimeError(f"contracted dimensions need to match, but first has size "
                               f"{a._data.shape[x]} in dim {x} and second has size "
                               f"{b._data.shape[y]} in dim {y}")
    free_a = [d for d in range(a._data.ndim) if d not in da]
    free_b = [d for d in range(b._data.ndim) if d not in db]
    k = math.prod(a._data.shape[d] for d in da)
    left = a.permute(free_a + da).reshape(-1, k) if a._data.ndim else a.reshape(1, 1)
    right = b.permute(db + free_b).reshape(k, -1) if b._data.ndim else b.reshape(1, 1)
    shape = [a._data.shape[d] for d in free_a] + [b._data.shape[d] for d in free_b]
    result = matmul(left, right).reshape(shape)
    return result if out is None else out._write(result)


@export("dist", method=True)
def dist(input, other, p=2):
    """The p-norm of input - other (broadcast)."""
    return (input - other).norm(p)


@export("cdist")
def cdist(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary"):
    """The p-norm distance between each row of x1 (..., P, M) and each row of x2 (..., R, M):
    (..., P, R), from the differences directly (torch may use a product form for p = 2 on
    large inputs: equal to rounding)."""
    for name, t in (("x1", x1), ("x2", x2)):
        if t._data.ndim < 2:
            raise RuntimeError(f"cdist only supports at least 2D tensors, {name} got: "
                               f"{t._data.ndim}D")
    if x1._data.shape[-1] != x2._data.shape[-1]:
        raise RuntimeError(f"X1 and X2 must have the same number of columns. X1: "
                           f"{x1._data.shape[-1]} X2: {x2._data.shape[-1]}")
    if p < 0:
        raise RuntimeError(f"cdist only supports non-negative p values, got {p}")
    return (x1.unsqueeze(-2) - x2.unsqueeze(-3)).norm(p, dim=-1)
