"""Products: matmul (1-D, 2-D and batched N-D with broadcasting on both sides), mm, bmm, mv,
dot, outer, einsum. Every float product runs through the backend's exact gemm, so each output
element is one fixed multiply-add chain: identical rows give identical results at any batch
size, position and thread count.
"""

import math

import numpy as np

from .. import backend as B
from ..tensor import Tensor, _wrap, apply
from . import Op, registry
from .registry import export


class MatMul(Op):
    """C = A @ B, A (..., n, k), B (..., k, m), batch dims broadcast"""

    rule = "dA = g @ B.T;  dB = A.T @ g  (summed over broadcast batch dims)"
    saves = (0, 1)

    def forward(self, a, b):
        self.a, self.b = a, b
        if a.ndim == 2 and b.ndim == 2:
            return B.gemm(a, b)
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


def _batched(a, batch, count):
    """a's matrices as (count, rows, columns), broadcast to the batch dims `batch` (a view,
    or a copy when a's layout needs one)."""
    if a.shape[:-2] != batch:
        a = np.broadcast_to(a, batch + a.shape[-2:])
    return a.reshape((count,) + a.shape[-2:])


def _check_pair(a, b, where):
    for name, t in (("input", a), ("other", b)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{where}(): argument '{name}' must be Tensor, not "
                            f"{type(t).__name__}")
    if a._data.dtype != b._data.dtype:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {a.dtype.name} "
                           f"!= {b.dtype.name}")


def _product(a, b):
    """a @ b for operands of at least 2 dims (after matmul's 1-D promotion)."""
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
    return apply(MatMul, a, b)


@export("matmul", method=True)
def matmul(input, other, *, out=None):
    """input @ other: 1-D operands become a row (left) or a column (right), removed after;
    batch dims broadcast."""
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
    if out is not None:
        return out._write(result)
    return result


Tensor.__matmul__ = lambda self, other: matmul(self, other) if isinstance(other, Tensor) \
    else NotImplemented
Tensor.__rmatmul__ = lambda self, other: matmul(_wrap(np.asarray(other)), self) \
    if isinstance(other, np.ndarray) else NotImplemented


@export("mm", method=True)
def mm(input, mat2):
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
    return _product(input, mat2)


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


@export("einsum")
def einsum(equation, *operands):
    """Einstein summation for one or two operands, as products and sums of the exact kernels
    (operands may also come as one list). Repeated indices within an operand (diagonals) are
    not supported."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    eq = equation.replace(" ", "")
    if "..." in eq:
        raise NotImplementedError("einsum with '...' is not supported")
    if "->" in eq:
        inputs, output = eq.split("->")
    else:
        inputs = eq
        letters = inputs.replace(",", "")
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    specs = inputs.split(",")
    for c in output:
        if c not in inputs:
            raise RuntimeError(f"einsum(): output subscript {c} does not appear in the equation "
                               f"for any input operand")
        if output.count(c) > 1:
            raise RuntimeError(f"einsum(): output subscript {c} appears more than once in the "
                               f"output")
    if len(specs) != len(operands):
        raise RuntimeError(f"einsum(): {len(specs)} operand subscripts for {len(operands)} "
                           "operands")
    for spec, t in zip(specs, operands):
        if len(set(spec)) != len(spec):
            raise NotImplementedError(f"einsum(): repeated index in '{spec}' (a diagonal) is not "
                                      "supported")
        if len(spec) != t._data.ndim:
            raise RuntimeError(f"einsum(): the number of subscripts in the equation "
                               f"({len(spec)}) does not match the number of dimensions "
                               f"({t._data.ndim}) for operand {specs.index(spec)}")
    if len(operands) == 1:
        (spec,), (x,) = specs, operands
        summed = tuple(i for i, c in enumerate(spec) if c not in output)
        if summed:
            x = x.sum(summed)
            spec = "".join(c for c in spec if c in output)
        return x.permute(*[spec.index(c) for c in output]) if output else x
    if len(operands) != 2:
        raise NotImplementedError("einsum() supports one or two operands")
    (sa, sb), (a, b) = specs, operands
    # sum away indices that appear in one operand only and not in the output
    for which in (0, 1):
        spec, other = (sa, sb) if which == 0 else (sb, sa)
        lone = tuple(i for i, c in enumerate(spec) if c not in other and c not in output)
        if lone:
            t = (a, b)[which].sum(lone)
            spec = "".join(c for c in spec if c in other or c in output)
            if which == 0:
                a, sa = t, spec
            else:
                b, sb = t, spec
    batch = [c for c in sa if c in sb and c in output]
    contracted = [c for c in sa if c in sb and c not in output]
    left = [c for c in sa if c not in sb]
    right = [c for c in sb if c not in sa]
    size = {c: a._data.shape[i] for i, c in enumerate(sa)}
    size.update({c: b._data.shape[i] for i, c in enumerate(sb)})
    for c in sa:
        if c in sb and a._data.shape[sa.index(c)] != b._data.shape[sb.index(c)]:
            raise RuntimeError(f"einsum(): operands do not broadcast with remapped shapes for "
                               f"subscript '{c}'")
    prod = 1
    nb, nl, nc, nr = ([size[c] for c in group] for group in (batch, left, contracted, right))
    for s in nc:
        prod *= s
    a3 = a.permute(*[sa.index(c) for c in batch + left + contracted]).reshape(
        int(np.prod(nb)), int(np.prod(nl)), prod)
    b3 = b.permute(*[sb.index(c) for c in batch + contracted + right]).reshape(
        int(np.prod(nb)), prod, int(np.prod(nr)))
    result = matmul(a3, b3).reshape(tuple(nb + nl + nr))
    order = batch + left + right
    return result.permute(*[order.index(c) for c in output]) if output else result


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
