"""nn.functional's transformer layers: embedding, layer_norm, batch_norm,
scaled_dot_product_attention and multi_head_attention_forward, with torch's signatures, defaults
and errors (re-exported by cygrad.nn.functional).

Arguments are checked here, before any op runs; the ops (cygrad/ops/sparse.py, norms.py,
attention.py) hold the math.
"""

import math
import numbers
import warnings

import numpy as np

from .. import random as _random
from ..ops import attention as A
from ..ops import layers as L
from ..ops import norms as N
from ..ops import sparse as S
from ..tensor import Tensor, _wrap, _writable, apply

__all__ = ["embedding", "layer_norm", "batch_norm", "scaled_dot_product_attention",
           "multi_head_attention_forward"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _tensor(x, what, where):
    if not isinstance(x, Tensor):
        raise TypeError(f"{where}(): argument '{what}' must be Tensor, not {type(x).__name__}")


def _same_dtype(where, x, **others):
    for name, t in others.items():
        if t is None:
            continue
        _tensor(t, name, where)
        if t._data.dtype != x._data.dtype:
            raise RuntimeError(f"{where}: expected {name} to have the input's dtype "
                               f"{x.dtype}, but got {t.dtype}")


# ---------------------------------------------------------------------- embedding

def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """weight's rows at the integer indices of `input` (any shape): input.shape + (d,).

    padding_idx: that row gets no gradient. max_norm: rows looked up whose norm_type-norm
    exceeds it are first scaled in place to that norm (torch's renorm; weight changes). The
    table's gradient adds each position's gradient into its row in ascending position (exact:
    identical embedding dimensions get identical gradients)."""
    _tensor(input, "input", "embedding")
    _tensor(weight, "weight", "embedding")
    idx = input._data
    if idx.dtype not in (np.int64, np.int32):
        raise RuntimeError(f"Expected tensor for argument #1 'indices' to have one of the "
                           f"following scalar types: Long, Int; but got {_torch_type(input)} "
                           "instead (while checking arguments for embedding)")
    if weight._data.ndim != 2:
        raise RuntimeError(f"'weight' must be 2-D, got a {weight._data.ndim}-D weight of shape "
                           f"{tuple(weight.shape)}")
    num = weight._data.shape[0]
    if padding_idx is not None:
        if padding_idx > 0:
            if padding_idx >= num:
                raise AssertionError("Padding_idx must be within num_embeddings")
        elif padding_idx < 0:
            if padding_idx < -num:
                raise AssertionError("Padding_idx must be within num_embeddings")
            padding_idx = num + padding_idx
    if sparse:
        raise NotImplementedError("embedding(sparse=True): cygrad has no sparse tensors; its "
                                  "table gradients are dense (sparse=False)")
    if idx.size and (idx.min() < 0 or idx.max() >= num):
        raise IndexError("index out of range in self")
    if max_norm is not None:
        S.renorm_rows(_writable(weight), idx, max_norm, norm_type)
    flat = np.ascontiguousarray(idx.reshape(-1), dtype=np.intp)
    return apply(S.Embedding, weight, indices=idx, flat=flat,
                 padding_idx=-1 if padding_idx is None else int(padding_idx),
                 scale_grad_by_freq=bool(scale_grad_by_freq))


def _torch_type(t):
    names = {"float32": "Float", "float64": "Double", "int16": "Short", "int8": "Char",
             "uint8": "Byte", "bool": "Bool"}
    return f"torch.{names.get(t.dtype.name, t.dtype.name)}Tensor"


# ---------------------------------------------------------------------- normalisation

def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """(x - mean) / sqrt(var + eps) * weight + bias over the last len(normalized_shape) dims
    (var biased), statistics by exact sums."""
    _tensor(input, "input", "layer_norm")
    shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else \
        tuple(normalized_shape)
    x = input._data
    if len(shape) == 0 or x.shape[x.ndim - len(shape):] != shape or x.ndim < len(shape):
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape "
                           f"[*, {', '.join(map(str, shape))}], but got input of size"
                           f"{list(input.shape)}")
    if x.dtype not in _FLOATS:
        raise RuntimeError(f"\"LayerNormKernelImpl\" not implemented for '{_scalar(input)}'")
    _same_dtype("layer_norm", input, weight=weight, bias=bias)
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != shape:
            raise RuntimeError(f"Expected {name} to be of same shape as normalized_shape, but "
                               f"got {name} of shape {list(t.shape)} and normalized_shape = "
                               f"{list(shape)}")
    affine = [t for t in (weight, bias) if t is not None]
    return apply(N.LayerNorm, input, *affine, dims=len(shape), eps=float(eps),
                 has_w=weight is not None, has_b=bias is not None)


def _scalar(t):
    return {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int",
            "bool": "Bool"}.get(t.dtype.name, t.dtype.name)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Per channel (dim 1): (x - mean) / sqrt(var + eps) * weight + bias. Training: the batch's
    statistics over every dim but 1 (var biased), and running_mean/running_var, when given,
    become (1 - momentum) * running + momentum * batch (var unbiased), in place. Not training:
    the running statistics."""
    _tensor(input, "input", "batch_norm")
    x = input._data
    if x.dtype not in _FLOATS:
        raise RuntimeError(f"\"batch_norm\" not implemented for '{_scalar(input)}'")
    if x.ndim < 2:
        raise ValueError(f"batch_norm expects an input of at least 2 dims (N, C, ...), got "
                         f"shape {tuple(input.shape)}")
    c = x.shape[1]
    _same_dtype("batch_norm", input, weight=weight, bias=bias)
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None:
            _tensor(t, name, "batch_norm")
            if t._data.shape != (c,):
                raise RuntimeError(f"{name} should contain {c} elements not {t._data.size}")
    if training:
        size = x.size // c if c else 0
        if size == 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input "
                             f"size {list(input.shape)}")
    elif running_mean is None or running_var is None:
        raise RuntimeError("running_mean and running_var must be defined in evaluation mode")
    if (running_mean is None) != (running_var is None):
        raise RuntimeError("running_mean and running_var must be both given or both None")
    rm = None if running_mean is None else _writable(running_mean)
    rv = None if running_var is None else _writable(running_var)
    affine = [t for t in (weight, bias) if t is not None]
    return apply(N.BatchNorm, input, *affine, use_batch=bool(training), running_mean=rm,
                 running_var=rv, momentum=float(momentum) if training and rm is not None
                 else 0.0, eps=float(eps), has_w=weight is not None, has_b=bias is not None)


# ---------------------------------------------------------------------- attention

def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False):
    """softmax(query @ key^T * scale + mask) @ value, scale = 1/sqrt(E) by default.

    query (..., L, E), key (..., S, E), value (..., S, Ev); attn_mask bool (True: take part)
    or float (added), broadcasting to (..., L, S); is_causal: query i attends to keys j <= i
    (not together with attn_mask, as torch); dropout_p: dropout on the weights (cygrad's generator);
    enable_gqa: key/value heads (dim -3) shared by groups of query heads. A query row that
    attends to nothing gives zeros."""
    where = "scaled_dot_product_attention"
    for name, t in (("query", query), ("key", key), ("value", value)):
        _tensor(t, name, where)
    q, k, v = query._data, key._data, value._data
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise RuntimeError(f"Expected query, key, and value to all be  at least 2 dimensional, "
                           f"but got query.dim: {q.ndim} key.dim: {k.ndim} and value.dim: "
                           f"{v.ndim} instead.")
    if not (q.dtype == k.dtype == v.dtype) or q.dtype not in _FLOATS:
        raise RuntimeError(f"Expected query, key, and value to have the same dtype, but got "
                           f"query.dtype: {query.dtype} key.dtype: {key.dtype} and value.dtype:"
                           f" {value.dtype} instead.")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise RuntimeError(f"scaled_dot_product_attention: query {list(query.shape)}, key "
                           f"{list(key.shape)} and value {list(value.shape)} do not fit "
                           "(query and key need one embedding size, key and value one length)")
    if enable_gqa and q.ndim >= 3 and k.shape[-3] != q.shape[-3]:
        hq, hk = q.shape[-3], k.shape[-3]
        if hk == 0 or hq % hk or v.shape[-3] != hk:
            raise RuntimeError(f"scaled_dot_product_attention: enable_gqa needs the query heads "
                               f"({hq}) to be a multiple of the key and value heads ({hk}, "
                               f"{v.shape[-3]})")
        key, value = _repeat_heads(key, hq // hk), _repeat_heads(value, hq // hk)
        k, v = key._data, value._data
    try:
        batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
        if attn_mask is not None:
            _tensor(attn_mask, "attn_mask", where)
            full = np.broadcast_shapes(batch + (q.shape[-2], k.shape[-2]), attn_mask.shape)
            batch = full[:-2]
    except ValueError:
        raise RuntimeError(f"scaled_dot_product_attention: the batch dims of query "
                           f"{list(query.shape)}, key {list(key.shape)}, value "
                           f"{list(value.shape)}"
                           + ("" if attn_mask is None else f" and attn_mask "
                              f"{list(attn_mask.shape)}") + " do not broadcast") from None
    if attn_mask is not None and full[-2:] != (q.shape[-2], k.shape[-2]):
        raise RuntimeError(f"scaled_dot_product_attention: attn_mask of shape "
                           f"{list(attn_mask.shape)} does not broadcast to (L, S) = "
                           f"{(q.shape[-2], k.shape[-2])}")
    if is_causal and attn_mask is not None:
        raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be set "
                           "when is_causal=True")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    p = _attention_dropout(dropout_p)
    bool_mask, float_mask = None, None
    if attn_mask is not None:
        if attn_mask._data.dtype == np.bool_:
            bool_mask = attn_mask._data
        elif attn_mask._data.dtype in _FLOATS:
            float_mask = attn_mask if attn_mask._data.dtype == q.dtype else \
                attn_mask.type(query.dtype)
        else:
            raise RuntimeError(f"scaled_dot_product_attention: attn_mask must be bool or float, "
                               f"got {attn_mask.dtype}")
    params = dict(scale=scale, causal=bool(is_causal), bool_mask=bool_mask, batch=batch)
    extra = () if float_mask is None else (float_mask,)
    if p == 0:  # torch's grad_fn: its CPU flash kernel's on 4-D operands, else a view of bmm's
        params["node"] = "ScaledDotProductFlashAttentionForCpuBackward0" if q.ndim == 4 else \
            "UnsafeViewBackward0"
        return apply(A.Attention, query, key, value, *extra, **params)
    weights = apply(A.AttentionWeights, query, key, *extra, **params)
    if p == 1:  # every weight dropped: zeros, and zero gradients, as torch
        return (weights * 0.0) @ value
    weights = apply(L.Dropout, weights, p=p, generator=_random.generator())
    return weights @ value


def _attention_dropout(p):
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p!r}")
    return float(p)


def _repeat_heads(t, times):
    """(..., H, S, E) -> (..., H * times, S, E), each head repeated `times` times in place
    (torch's repeat_interleave on dim -3)."""
    shape = tuple(t.shape)
    grown = t.unsqueeze(-3).expand(*shape[:-2], times, *shape[-2:])
    return grown.reshape(*shape[:-3], shape[-3] * times, *shape[-2:])


def _canonical_mask(mask, name, dtype, other=None, other_name=""):
    """A bool mask (True: masked out) as a float one with -inf there; a float mask as it is.
    other: a second mask whose dtype should match (torch warns that mixing is deprecated)."""
    if mask is None:
        return None
    _tensor(mask, name, "multi_head_attention_forward")
    m = mask._data
    if m.dtype != np.bool_ and m.dtype not in _FLOATS:
        raise AssertionError(f"only bool and floating types of {name} are supported")
    if isinstance(other, Tensor) and other._data.dtype != m.dtype:
        warnings.warn(f"Support for mismatched {name} and {other_name} is deprecated. Use same "
                      "type for both instead.", stacklevel=3)
    if m.dtype == np.bool_:
        return _wrap(np.where(m, dtype.type(-np.inf), dtype.type(0)))
    return mask


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads,
                                 in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn,
                                 dropout_p, out_proj_weight, out_proj_bias, training=True,
                                 key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None,
                                 k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights=True, is_causal=False):
    """torch's multi-head attention (sequence-first: query (L, N, E), key and value (S, N, .);
    unbatched (L, E) too). Returns (output (L, N, E), weights (N, L, S) averaged over heads,
    (N, heads, L, S) with average_attn_weights=False, or None with need_weights=False).

    Masks: key_padding_mask (N, S), attn_mask (L, S) or (N * heads, L, S); bool True means
    "masked out" (-inf), float masks are added. is_causal is a hint that attn_mask is causal
    (an attn_mask is required, as in torch)."""
    from . import functional as F

    if static_k is not None or static_v is not None:
        raise NotImplementedError("multi_head_attention_forward: static_k/static_v are not "
                                  "supported")
    batched = _mha_shapes(query, key, value, key_padding_mask, attn_mask, num_heads)
    if not batched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    tgt_len, bsz, embed_dim = query.shape
    src_len = key.shape[0]
    dtype = query._data.dtype
    key_padding_mask = _canonical_mask(key_padding_mask, "key_padding_mask", dtype, attn_mask,
                                       "attn_mask")
    if is_causal and attn_mask is None:
        raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the "
                           "Transformer module method `generate_square_subsequent_mask` to "
                           "create this mask.")
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None  # the hint alone: SDPA's causal path
    else:
        attn_mask = _canonical_mask(attn_mask, "attn_mask", dtype)
        if key_padding_mask is not None:
            is_causal = False
    if embed_dim != embed_dim_to_check:
        raise AssertionError(f"was expecting embedding dimension of {embed_dim_to_check}, but "
                             f"got {embed_dim}")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise AssertionError(f"embed_dim {embed_dim} not divisible by num_heads {num_heads}")
    if use_separate_proj_weight:
        if tuple(key.shape[:2]) != tuple(value.shape[:2]):
            raise AssertionError(f"key's sequence and batch dims {tuple(key.shape[:2])} do not "
                                 f"match value's {tuple(value.shape[:2])}")
        if q_proj_weight is None or k_proj_weight is None or v_proj_weight is None:
            raise AssertionError("use_separate_proj_weight is True but q_proj_weight, "
                                 "k_proj_weight or v_proj_weight is None")
        b = (None, None, None) if in_proj_bias is None else in_proj_bias.chunk(3)
        q = F.linear(query, q_proj_weight, b[0])
        k = F.linear(key, k_proj_weight, b[1])
        v = F.linear(value, v_proj_weight, b[2])
    else:
        if tuple(key.shape) != tuple(value.shape):
            raise AssertionError(f"key shape {tuple(key.shape)} does not match value shape "
                                 f"{tuple(value.shape)}")
        if in_proj_weight is None:
            raise AssertionError("use_separate_proj_weight is False but in_proj_weight is None")
        q, k, v = _in_projection_packed(F, query, key, value, in_proj_weight, in_proj_bias)
    if attn_mask is not None:
        if attn_mask.ndim == 2:
            if tuple(attn_mask.shape) != (tgt_len, src_len):
                raise RuntimeError(f"The shape of the 2D attn_mask is {attn_mask.shape}, but "
                                   f"should be {(tgt_len, src_len)}.")
            attn_mask = attn_mask.unsqueeze(0)
        elif attn_mask.ndim == 3:
            if tuple(attn_mask.shape) != (bsz * num_heads, tgt_len, src_len):
                raise RuntimeError(f"The shape of the 3D attn_mask is {attn_mask.shape}, but "
                                   f"should be {(bsz * num_heads, tgt_len, src_len)}.")
        else:
            raise RuntimeError(f"attn_mask's dimension {attn_mask.ndim} is not supported")
    if bias_k is not None and bias_v is not None:
        k = _cat([k, bias_k.expand(1, bsz, embed_dim)], 0)
        v = _cat([v, bias_v.expand(1, bsz, embed_dim)], 0)
        attn_mask = _pad_column(attn_mask)
        key_padding_mask = _pad_column(key_padding_mask)
    elif bias_k is not None or bias_v is not None:
        raise AssertionError("bias_k and bias_v must both be given or both be None")
    q = q.reshape(tgt_len, bsz * num_heads, head_dim).transpose(0, 1)
    k = k.reshape(k.shape[0], bsz * num_heads, head_dim).transpose(0, 1)
    v = v.reshape(v.shape[0], bsz * num_heads, head_dim).transpose(0, 1)
    if add_zero_attn:
        zeros = _wrap(np.zeros((bsz * num_heads, 1, head_dim), dtype))
        k, v = _cat([k, zeros], 1), _cat([v, zeros], 1)
        attn_mask = _pad_column(attn_mask)
        key_padding_mask = _pad_column(key_padding_mask)
    src_len = k.shape[1]
    if key_padding_mask is not None:
        if tuple(key_padding_mask.shape) != (bsz, src_len):
            raise AssertionError(f"expecting key_padding_mask shape of {(bsz, src_len)}, but "
                                 f"got {tuple(key_padding_mask.shape)}")
        kpm = key_padding_mask.reshape(bsz, 1, 1, src_len).expand(bsz, num_heads, 1, src_len)
        kpm = kpm.reshape(bsz * num_heads, 1, src_len)
        attn_mask = kpm if attn_mask is None else attn_mask + kpm
    p = dropout_p if training else 0.0
    if need_weights:
        w = apply(A.AttentionWeights, q, k, *(() if attn_mask is None else (attn_mask,)),
                  scale=1.0 / math.sqrt(head_dim), causal=False, bool_mask=None,
                  batch=(bsz * num_heads,))
        if p > 0:
            w = F.dropout(w, p, True)
        out = w @ v
        out = out.transpose(0, 1).reshape(tgt_len * bsz, embed_dim)
        out = F.linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, embed_dim)
        w = w.reshape(bsz, num_heads, tgt_len, src_len)
        if average_attn_weights:
            w = w.mean(1)
        if not batched:
            out, w = out.squeeze(1), w.squeeze(0)
        return out, w
    if attn_mask is not None:
        if attn_mask.shape[0] == 1 and attn_mask.ndim == 3:
            attn_mask = attn_mask.unsqueeze(0)
        else:
            attn_mask = attn_mask.reshape(bsz, num_heads, -1, src_len)
    q = q.reshape(bsz, num_heads, tgt_len, head_dim)
    k = k.reshape(bsz, num_heads, src_len, head_dim)
    v = v.reshape(bsz, num_heads, src_len, head_dim)
    out = scaled_dot_product_attention(q, k, v, attn_mask, p, is_causal)
    out = out.permute(2, 0, 1, 3).reshape(bsz * tgt_len, embed_dim)
    out = F.linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, embed_dim)
    return (out if batched else out.squeeze(1)), None


def _cat(tensors, dim):
    from .. import cat

    return cat(tensors, dim)


def _pad_column(mask):
    """A float mask with one more column of zeros at the end (the extra key)."""
    if mask is None:
        return None
    zeros = _wrap(np.zeros(tuple(mask.shape[:-1]) + (1,), mask._data.dtype))
    return _cat([mask, zeros], -1)


def _in_projection_packed(F, q, k, v, w, b):
    """q, k, v projected by the three (E, E) blocks of w (3E, E) and of b (3E,)."""
    e = q.shape[-1]
    if k is v and q is k:  # self-attention: one product, then its three blocks
        proj = F.linear(q, w, b)
        return proj[..., :e], proj[..., e:2 * e], proj[..., 2 * e:]
    ws = w.chunk(3)
    bs = (None, None, None) if b is None else b.chunk(3)
    if k is v:
        kv = F.linear(k, _cat([ws[1], ws[2]], 0), None if b is None else _cat([bs[1], bs[2]], 0))
        return F.linear(q, ws[0], bs[0]), kv[..., :e], kv[..., e:]
    return F.linear(q, ws[0], bs[0]), F.linear(k, ws[1], bs[1]), F.linear(v, ws[2], bs[2])


def _mha_shapes(query, key, value, key_padding_mask, attn_mask, num_heads):
    """torch's checks of the input ranks; True for batched (3-D) input."""
    for name, t in (("query", query), ("key", key), ("value", value)):
        _tensor(t, name, "multi_head_attention_forward")
    if query.ndim == 3:
        if key.ndim != 3 or value.ndim != 3:
            raise AssertionError(f"For batched (3-D) `query`, expected `key` and `value` to be "
                                 f"3-D but found {key.ndim}-D and {value.ndim}-D tensors "
                                 "respectively")
        if key_padding_mask is not None and key_padding_mask.ndim != 2:
            raise AssertionError(f"For batched (3-D) `query`, expected `key_padding_mask` to be "
                                 f"`None` or 2-D but found {key_padding_mask.ndim}-D tensor "
                                 "instead")
        if attn_mask is not None and attn_mask.ndim not in (2, 3):
            raise AssertionError(f"For batched (3-D) `query`, expected `attn_mask` to be `None`,"
                                 f" 2-D or 3-D but found {attn_mask.ndim}-D tensor instead")
        return True
    if query.ndim == 2:
        if key.ndim != 2 or value.ndim != 2:
            raise AssertionError(f"For unbatched (2-D) `query`, expected `key` and `value` to be "
                                 f"2-D but found {key.ndim}-D and {value.ndim}-D tensors "
                                 "respectively")
        if key_padding_mask is not None and key_padding_mask.ndim != 1:
            raise AssertionError(f"For unbatched (2-D) `query`, expected `key_padding_mask` to "
                                 f"be `None` or 1-D but found {key_padding_mask.ndim}-D tensor "
                                 "instead")
        if attn_mask is not None:
            if attn_mask.ndim not in (2, 3):
                raise AssertionError(f"For unbatched (2-D) `query`, expected `attn_mask` to be "
                                     f"`None`, 2-D or 3-D but found {attn_mask.ndim}-D tensor "
                                     "instead")
            if attn_mask.ndim == 3 and tuple(attn_mask.shape) != (num_heads, query.shape[0],
                                                                  key.shape[0]):
                raise AssertionError(f"Expected `attn_mask` shape to be "
                                     f"{(num_heads, query.shape[0], key.shape[0])} but got "
                                     f"{tuple(attn_mask.shape)}")
        return False
    raise AssertionError(f"query should be unbatched 2D or batched 3D tensor but received "
                         f"{query.ndim}-D query tensor")
