"""Sparse COO tensors (torch.sparse_coo_tensor, Tensor.to_sparse, torch.sparse): the part a
graph network's program uses. A sparse matrix holds its nonzeros as indices (int64, sparse_dim
x nnz) and values (nnz), and multiplies dense matrices from either side, with the dense
operand's gradient; `to_dense()` gives the rest of torch's ops.

    adj = torch.sparse_coo_tensor(edges.T, torch.ones(E), (V, V))
    h = torch.spmm(adj, x @ w)          # dense result; x and w get gradients

Exactness: a product's element (i, j) is one chain over row i's nonzeros in column order,
acc = acc + v * d (the same sequence wherever the row is, whatever the other rows hold), as
torch's CPU kernel runs it (its bits can differ by the fused multiply-add it may use).

What is built, and what differs from torch: sparse tensors here are not `Tensor` instances
(isinstance(s, torch.Tensor) is False); they are 2-D or 1-D with scalar values (no hybrid
dims), their values take no gradient, and any op not listed below raises TypeError naming
`to_dense()`. Built: sparse_coo_tensor, Tensor.to_sparse / to_sparse_coo, to_dense, coalesce,
is_coalesced, indices / values (and _indices, _values, _nnz), sparse_dim, dense_dim, shape,
size, dim, dtype, device, layout, to / cpu / float / double, t / transpose, neg, * and / by
a number, + with a dense (dense result) or a sparse tensor, sparse @ dense and dense @ sparse
(mm, matmul, spmm, sparse.mm), sum().
"""

import numbers

import numpy as np

from . import dtypes
from .ops import Op
from .tensor import CPU, Size, Tensor, _wrap, apply, check_device

__all__ = ["mm", "sum", "spmm"]

sparse_coo = "sparse_coo"  # torch.sparse_coo (the layout); cygrad.strided is the dense one


class SparseTensor:
    """A sparse COO tensor (see the module docstring)."""

    __array_priority__ = 1000  # a numpy array meeting one defers to its operators

    def __init__(self, indices, values, size, coalesced):
        self._ind = indices  # int64 (sparse_dim, nnz)
        self._val = values  # (nnz,) array
        self._size = tuple(size)
        self._coalesced = coalesced

    # ---- what it is
    is_sparse = True
    is_cuda = is_mps = is_xpu = is_meta = is_quantized = is_nested = is_sparse_csr = False
    is_cpu = True
    layout = sparse_coo
    requires_grad = False
    grad = grad_fn = None

    @property
    def shape(self):
        return Size(self._size)

    def size(self, dim=None):
        return self.shape if dim is None else self._size[dim]

    def dim(self):
        return len(self._size)

    ndim = property(dim)

    @property
    def dtype(self):
        return dtypes.as_dtype(self._val.dtype)

    @property
    def device(self):
        return CPU

    def sparse_dim(self):
        return len(self._size)

    def dense_dim(self):
        return 0

    def _nnz(self):
        return self._val.shape[0]

    def is_coalesced(self):
        return self._coalesced

    def _indices(self):
        return _wrap(self._ind.copy())

    def _values(self):
        return _wrap(self._val.copy())

    def indices(self):
        if not self._coalesced:
            raise RuntimeError("Cannot get indices on an uncoalesced tensor, please call "
                               ".coalesce() first")
        return self._indices()

    def values(self):
        if not self._coalesced:
            raise RuntimeError("Cannot get values on an uncoalesced tensor, please call "
                               ".coalesce() first")
        return self._values()

    # ---- conversions
    def coalesce(self):
        """Indices sorted (row-major), duplicates summed."""
        if self._coalesced:
            return self
        ind, val = _coalesced(self._ind, self._val, self._size)
        return SparseTensor(ind, val, self._size, True)

    def to_dense(self, dtype=None, *, masked_grad=None):
        dense = np.zeros(self._size, self._val.dtype if dtype is None
                         else dtypes.as_dtype(dtype).numpy)
        s = self.coalesce()
        dense[tuple(s._ind)] = s._val
        return _wrap(dense)

    def to_sparse(self, *args, **kwargs):
        return self

    to_sparse_coo = to_sparse

    def to(self, *args, **kwargs):
        """.to(device) (the CPU) and .to(dtype) (the values cast), as a Tensor's."""
        dtype, device = kwargs.pop("dtype", None), kwargs.pop("device", None)
        for a in args:
            if isinstance(a, (Tensor, SparseTensor)):
                dtype = a.dtype
            elif isinstance(a, str) or type(a).__name__ == "device":
                device = a
            else:
                dtype = a
        check_device(device)
        if dtype is None:
            return self
        return self._with(self._val.astype(dtypes.as_dtype(dtype).numpy))

    def cpu(self):
        return self

    def float(self):
        return self.to(dtypes.float32)

    def double(self):
        return self.to(dtypes.float64)

    def long(self):
        return self.to(dtypes.int64)

    def type(self, dtype):
        return self.to(dtype)

    def detach(self):
        return self

    def _with(self, values):
        return SparseTensor(self._ind, values, self._size, self._coalesced)

    def t(self):
        if self.dim() != 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 sparse and 0 dense dimensions, "
                               f"but self is {self.dim()}D")
        return SparseTensor(self._ind[::-1].copy(), self._val, self._size[::-1], False)

    def transpose(self, dim0, dim1):
        if sorted((dim0 % max(self.dim(), 1), dim1 % max(self.dim(), 1))) == [0, 1]:
            return self.t()
        return self

    # ---- arithmetic
    def __neg__(self):
        return self._with(-self._val)

    def __mul__(self, other):
        if isinstance(other, numbers.Number):  # the values times it, promoted as a Tensor's
            return self._with((_wrap(self._val) * other)._data)
        raise TypeError("a sparse tensor multiplies a number here; call to_dense() for "
                        f"elementwise products with {type(other).__name__}")

    __rmul__ = __mul__

    def __truediv__(self, other):
        if isinstance(other, numbers.Number):
            return self._with((_wrap(self._val) / other)._data)
        raise TypeError("a sparse tensor divides by a number here; call to_dense() first")

    def __add__(self, other):
        if isinstance(other, SparseTensor):
            if other._size != self._size:
                raise RuntimeError(f"add: expected sizes to match, got {self._size} and "
                                   f"{other._size}")
            kind = np.result_type(self._val, other._val)
            ind = np.concatenate([self._ind, other._ind], axis=1)
            val = np.concatenate([self._val.astype(kind), other._val.astype(kind)])
            if self._coalesced and other._coalesced:  # merged, as torch's
                return SparseTensor(*_coalesced(ind, val, self._size), self._size, True)
            return SparseTensor(ind, val, self._size, False)
        if isinstance(other, Tensor):  # dense + sparse: a dense tensor, as torch
            if tuple(other.shape) != self._size:
                raise RuntimeError(f"The size of tensor a ({tuple(other.shape)}) must match "
                                   f"the size of tensor b ({self._size})")
            return other + self.to_dense()
        return NotImplemented

    __radd__ = __add__

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return (-self) + other

    def __matmul__(self, other):
        return mm(self, other)

    def __rmatmul__(self, other):
        return mm(other, self)

    def mm(self, other):
        return mm(self, other)

    matmul = mm

    def sum(self, dim=None, keepdim=False, dtype=None):
        if dim is not None:
            raise NotImplementedError("sum(dim=...) of a sparse tensor is not built: call "
                                      "to_dense() first")
        return self.to_dense(dtype).sum()

    def __len__(self):
        return self._size[0]

    def __array__(self, *args, **kwargs):
        raise TypeError("this op does not take a sparse tensor in cygrad: call to_dense() "
                        "first")

    def __getattr__(self, name):
        raise AttributeError(f"sparse tensors in cygrad do not have '{name}' (only a COO "
                             "matrix's methods are built): call to_dense() first")

    def __repr__(self):
        from ._format import tensor_repr

        ind = tensor_repr(_wrap(self._ind)).replace("\n", "\n" + " " * 15)
        val = tensor_repr(_wrap(self._val))
        if ", dtype=" in val:  # the dtype goes on the size line, as torch prints it
            val = val[:val.rindex(", dtype=")] + ")"
        val = val.replace("\n", "\n" + " " * 14)
        extra = "" if self._val.dtype == dtypes.get_default_dtype().numpy or \
            self._val.dtype == np.int64 else f", dtype={self.dtype}"
        return (f"tensor(indices={ind},\n       values={val},\n       size={self._size}, "
                f"nnz={self._nnz()}{extra}, layout=cygrad.sparse_coo)")


def _coalesced(ind, val, size):
    """Indices sorted row-major and duplicates summed."""
    if ind.shape[1] == 0:
        return ind.copy(), val.copy()
    flat = np.ravel_multi_index(tuple(ind), size)
    order = np.argsort(flat, kind="stable")
    flat, val = flat[order], val[order]
    keep = np.concatenate([[True], flat[1:] != flat[:-1]])
    starts = np.flatnonzero(keep)
    summed = np.add.reduceat(val, starts) if len(starts) < len(flat) else val.copy()
    return np.array(np.unravel_index(flat[starts], size), dtype=np.int64), summed


def sparse_coo_tensor(indices, values, size=None, *, dtype=None, device=None,
                      pin_memory=False, requires_grad=False, check_invariants=None,
                      is_coalesced=None):
    """torch.sparse_coo_tensor: a sparse tensor of `values` at `indices` (sparse_dim x nnz),
    the size inferred from the indices when not given. Duplicates are kept until coalesce()
    (to_dense and products sum them)."""
    check_device(device)
    if requires_grad:
        raise NotImplementedError("sparse tensors whose values require grad are not built in "
                                  "cygrad (the dense operand of a product gets its gradient)")
    ind = np.asarray(indices._data if isinstance(indices, Tensor) else indices)
    if ind.dtype.kind not in "iu" and ind.size:
        raise RuntimeError(f"indices must be an int64 tensor, got {ind.dtype}")
    ind = ind.astype(np.int64).reshape(ind.shape if ind.ndim == 2 else (-1, 0))
    if isinstance(values, Tensor):
        val = values._data
    else:  # as torch.tensor(values) infers its dtype
        from .ops.factories import tensor

        val = tensor(values)._data
    if dtype is not None:
        val = val.astype(dtypes.as_dtype(dtype).numpy)
    if val.ndim != 1:
        raise NotImplementedError(f"hybrid sparse tensors (values of {val.ndim} dims) are not "
                                  "built in cygrad: values must be 1-D")
    if ind.shape[1] != val.shape[0]:
        raise RuntimeError(f"indices and values must have same nnz, but got nnz from indices: "
                           f"{ind.shape[1]}, nnz from values: {val.shape[0]}")
    if size is None:
        size = tuple(int(m) + 1 for m in ind.max(axis=1)) if ind.shape[1] else (0,) * len(ind)
    size = tuple(int(s) for s in size)
    if len(size) != ind.shape[0]:
        raise RuntimeError(f"number of dimensions must be sparse_dim ({ind.shape[0]}) + "
                           f"dense_dim (0), but got {len(size)}")
    if len(size) not in (1, 2):
        raise NotImplementedError(f"cygrad builds 1-D and 2-D sparse tensors, got size {size}")
    for d, s in enumerate(size):
        if ind.shape[1] and (ind[d].min() < 0 or ind[d].max() >= s):
            bad = int(ind[d].max()) if ind[d].max() >= s else int(ind[d].min())
            raise RuntimeError(f"size is inconsistent with indices: for dim {d}, size is {s} "
                               f"but found index {bad}")
    coalesced = bool(is_coalesced) if is_coalesced is not None else ind.shape[1] <= 1
    return SparseTensor(ind.copy(), val.copy(), size, coalesced)


def to_sparse(input, sparse_dim=None):
    """Tensor.to_sparse(): the nonzeros of a dense 1-D or 2-D tensor, coalesced."""
    data = input._data
    if sparse_dim not in (None, data.ndim):
        raise NotImplementedError("to_sparse(sparse_dim) with dense dims is not built")
    if data.ndim not in (1, 2):
        raise NotImplementedError(f"cygrad builds 1-D and 2-D sparse tensors, got "
                                  f"{data.ndim}-D")
    ind = np.array(np.nonzero(data), dtype=np.int64)
    return SparseTensor(ind, data[tuple(ind)].copy(), data.shape, True)


class SparseMM(Op):
    """y = S @ d for a sparse S (a parameter: it takes no gradient) and a dense d"""

    rule = "dd = S.T @ g"

    def forward(self, d):
        return _spmm(self.sparse, d)

    def backward(self, g):
        return (_spmm(self.sparse.t(), g),)


def _spmm(s, d):
    """S @ d, each output row one chain over its nonzeros in column order (module docstring)."""
    s = s.coalesce()
    rows, cols = s._ind
    kind = np.result_type(s._val.dtype, d.dtype)
    out = np.zeros((s._size[0],) + d.shape[1:], kind)
    if rows.size == 0:
        return out
    vals = s._val.astype(kind)
    d = d.astype(kind, copy=False)
    starts = np.searchsorted(rows, rows, side="left")
    rank = np.arange(rows.size) - starts  # position of each nonzero within its row
    expand = (slice(None),) + (None,) * (d.ndim - 1)
    for step in range(int(rank.max()) + 1):
        at = np.flatnonzero(rank == step)  # one nonzero of each row that has this many
        r = rows[at]
        out[r] = out[r] + vals[at][expand] * d[cols[at]]
    return out


def mm(mat1, mat2):
    """torch.sparse.mm / torch.spmm / torch.mm with a sparse operand: sparse @ dense and dense @
    sparse give dense results; sparse @ sparse a sparse one."""
    if isinstance(mat1, SparseTensor) and isinstance(mat2, SparseTensor):
        return to_sparse(mm(mat1, mat2.to_dense()))
    if isinstance(mat1, SparseTensor):
        if not isinstance(mat2, Tensor):
            raise TypeError(f"mm(): argument 'mat2' must be Tensor, not {type(mat2).__name__}")
        if mat1.dim() != 2 or mat2._data.ndim not in (1, 2):
            raise RuntimeError(f"mm: expected a 2-D sparse matrix and a 1-D or 2-D tensor, got "
                               f"{mat1.dim()}-D and {mat2._data.ndim}-D")
        if mat1._size[1] != mat2._data.shape[0]:
            raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({mat1._size[0]}x"
                               f"{mat1._size[1]} and {'x'.join(map(str, mat2._data.shape))})")
        _check_dtypes(mat1, mat2)
        return apply(SparseMM, mat2, sparse=mat1)
    if isinstance(mat2, SparseTensor):  # d @ S = (S.T @ d.T).T
        if not isinstance(mat1, Tensor):
            raise TypeError(f"mm(): argument 'input' must be Tensor, not {type(mat1).__name__}")
        if mat1._data.ndim != 2 or mat2.dim() != 2:
            raise RuntimeError(f"mm: expected 2-D matrices, got {mat1._data.ndim}-D and "
                               f"{mat2.dim()}-D")
        if mat1._data.shape[1] != mat2._size[0]:
            raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ("
                               f"{'x'.join(map(str, mat1._data.shape))} and {mat2._size[0]}x"
                               f"{mat2._size[1]})")
        _check_dtypes(mat2, mat1)
        return mm(mat2.t(), mat1.t()).t()
    from .ops.linalg import mm as dense_mm

    return dense_mm(mat1, mat2)


def _check_dtypes(s, d):
    if s._val.dtype != d._data.dtype:
        raise RuntimeError(f"expected mat1 and mat2 to have the same dtype, but got: "
                           f"{s.dtype.name} != {d.dtype.name}")


spmm = mm


def sum(input, dim=None, dtype=None):  # noqa: A001  (torch.sparse.sum)
    """torch.sparse.sum(input): the sum of every value, a dense 0-d tensor."""
    if isinstance(input, SparseTensor):
        return input.sum(dim, dtype=dtype)
    return input.sum() if dim is None else input.sum(dim)
