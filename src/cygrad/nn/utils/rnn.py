"""torch.nn.utils.rnn: PackedSequence, pack_padded_sequence, pad_packed_sequence, pad_sequence,
unpad_sequence, pack_sequence, unpack_sequence, invert_permutation.

A PackedSequence holds the steps of a batch of sequences of different lengths, longest first,
time-major: `data` (sum of lengths, *) is step 0 of every sequence, then step 1 of those that
have one, ...; `batch_sizes[t]` (int64) is how many sequences have a step t. Packing and
unpacking are row gathers (index_select: their gradients are exact scatter-adds, each row
receiving at most one contribution), and the recurrent layers run a packed batch step by step
on the rows still going (cygrad/nn/rnn.py).
"""

from collections import namedtuple
from collections.abc import Iterable

import numpy as np

from ... import dtypes
from ...tensor import Tensor, _wrap

__all__ = ["PackedSequence", "invert_permutation", "pack_padded_sequence", "pad_packed_sequence",
           "pad_sequence", "unpad_sequence", "pack_sequence", "unpack_sequence"]

_Fields = namedtuple("PackedSequence_", ["data", "batch_sizes", "sorted_indices",
                                         "unsorted_indices"])


def _long(values):
    return _wrap(np.asarray(values, dtype=np.int64))


def invert_permutation(permutation):
    """The inverse of a 1-D int64 permutation (None stays None)."""
    if permutation is None:
        return None
    p = np.asarray(permutation._data if isinstance(permutation, Tensor) else permutation)
    out = np.empty_like(p)
    out[p] = np.arange(p.size, dtype=p.dtype)
    return _wrap(out)


class PackedSequence(_Fields):
    """(data, batch_sizes, sorted_indices, unsorted_indices): made by pack_padded_sequence and
    pack_sequence, taken by the recurrent layers. unsorted_indices defaults to the inverse of
    sorted_indices; `PackedSequence((data, batch_sizes))` is accepted too, as in torch."""

    __slots__ = ()

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        if batch_sizes is None:
            if not (isinstance(data, (list, tuple)) and len(data) == 2):
                raise AssertionError("Expected data to be a list or tuple of length 2")
            data, batch_sizes = data
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def _with_data(self, data):
        return type(self)(data, self.batch_sizes, self.sorted_indices, self.unsorted_indices)

    def to(self, *args, **kwargs):
        data = self.data.to(*args, **kwargs)
        return self if data is self.data else self._with_data(data)

    def cpu(self, *args, **kwargs):
        return self

    def double(self):
        return self.to(dtype=dtypes.float64)

    def float(self):
        return self.to(dtype=dtypes.float32)

    def long(self):
        return self.to(dtype=dtypes.int64)

    def int(self):
        return self.to(dtype=dtypes.int32)

    @property
    def is_cuda(self):
        return False

    def is_pinned(self):
        return False


def _lengths(lengths):
    if isinstance(lengths, Tensor):
        if lengths.dim() != 1:
            raise RuntimeError(f"'lengths' argument should be a 1D CPU int64 tensor, but got "
                               f"{lengths.dim()}D cpu Long tensor")
        return lengths._data.astype(np.int64)
    out = np.asarray(lengths, dtype=np.int64)
    if out.ndim != 1:
        raise RuntimeError(f"'lengths' argument should be a 1D CPU int64 tensor, but got "
                           f"{out.ndim}D cpu Long tensor")
    return out


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    """Pack a padded batch (T, B, *) ((B, T, *) with batch_first) of sequences of the given
    lengths. With enforce_sorted (default) the lengths must be in decreasing order; otherwise
    the batch is sorted (stably, longest first) and the permutation kept in the result."""
    lengths = _lengths(lengths)
    sorted_indices = None
    if not enforce_sorted:
        order = np.argsort(-lengths, kind="stable")
        lengths = lengths[order]
        sorted_indices = _long(order)
        input = input.index_select(0 if batch_first else 1, sorted_indices)
    if input.numel() == 0:
        raise RuntimeError("Cannot pack empty tensors.")
    shape = tuple(input.shape)
    if input.dim() < 2:
        raise RuntimeError(f"pack_padded_sequence: input of {input.dim()} dims; expected "
                           "(T, B, *) or (B, T, *) with batch_first")
    batch, steps = (shape[0], shape[1]) if batch_first else (shape[1], shape[0])
    if lengths.shape[0] != batch:
        raise RuntimeError(f"Expected `len(lengths)` to be equal to batch_size, but got "
                           f"{lengths.shape[0]} (batch_size={batch})")
    if lengths[-1] <= 0:
        raise RuntimeError("Length of all samples has to be greater than 0, but found an "
                           "element in 'lengths' that is <= 0")
    if np.any(lengths[1:] > lengths[:-1]):
        raise RuntimeError("`lengths` array must be sorted in decreasing order when "
                           "`enforce_sorted` is True. You can pass `enforce_sorted=False` to "
                           "pack_padded_sequence and/or pack_sequence to sidestep this "
                           "requirement if you do not need ONNX exportability.")
    if lengths[0] > steps:  # (torch reads past the input here)
        raise RuntimeError(f"pack_padded_sequence: the longest length {int(lengths[0])} "
                           f"exceeds the input's {steps} steps")
    sizes = (lengths[None, :] > np.arange(int(lengths[0]))[:, None]).sum(1)
    t = np.repeat(np.arange(sizes.size), sizes)
    b = np.concatenate([np.arange(s) for s in sizes])
    rows = b * steps + t if batch_first else t * batch + b
    data = input.reshape((batch * steps,) + shape[2:]).index_select(0, _long(rows))
    return PackedSequence(data, _long(sizes), sorted_indices, None)


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """(padded (T, B, *) or (B, T, *), lengths (B,) int64), in the batch's original order:
    the inverse of pack_padded_sequence; T = total_length when given."""
    sizes = np.asarray(sequence.batch_sizes._data, dtype=np.int64)
    steps = sizes.size
    if total_length is not None:
        if total_length < steps:
            raise ValueError(f"Expected total_length to be at least the length of the longest "
                             f"sequence in input, but got total_length={total_length} and max "
                             f"sequence length being {steps}")
        steps = int(total_length)
    data = sequence.data
    batch = int(sizes[0])
    total = int(sizes.sum())
    rows = np.full((steps, batch), total, dtype=np.int64)  # `total`: the padding row
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    for t, (start, size) in enumerate(zip(starts, sizes)):
        rows[t, :size] = start + np.arange(size)
    if batch_first:
        rows = rows.T
    feature = tuple(data.shape[1:])
    pad = data.new_full((1,) + feature, padding_value)
    from ...ops.shape import cat

    padded = cat([data, pad], 0).index_select(0, _long(rows.reshape(-1)))
    padded = padded.reshape(rows.shape + feature)
    lengths = (sizes[None, :] > np.arange(batch)[:, None]).sum(1)
    if sequence.unsorted_indices is not None:
        order = sequence.unsorted_indices
        padded = padded.index_select(0 if batch_first else 1, order)
        lengths = lengths[np.asarray(order._data)]
    return padded, _long(lengths)


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stack sequences (L_i, *) into (L_max, B, *) ((B, L_max, *) with batch_first), each
    padded with padding_value on the right (or the left)."""
    if isinstance(sequences, Tensor):
        sequences = sequences.unbind(0)
    if not isinstance(sequences, Iterable):
        raise RuntimeError(f"pad_sequence: Expected iterable for input sequences, but got arg "
                           f"of type: {type(sequences)}")
    sequences = tuple(sequences)
    if not sequences:
        raise RuntimeError("received an empty list of sequences")
    if padding_side not in ("left", "right"):
        raise RuntimeError(f"Expected padding_side to be one of left or right, but got "
                           f"{padding_side}.")
    from ...ops.shape import cat, stack

    longest = max(int(s.shape[0]) for s in sequences)
    padded = []
    for s in sequences:
        missing = longest - int(s.shape[0])
        if missing:
            fill = s.new_full((missing,) + tuple(s.shape[1:]), padding_value)
            s = cat([s, fill] if padding_side == "right" else [fill, s], 0)
        padded.append(s)
    return stack(padded, 0 if batch_first else 1)


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    """The list of sequences pad_sequence stacked: each one's first `length` steps."""
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    lengths = _lengths(lengths)
    return [seq[:int(n)] for seq, n in zip(padded_sequences.unbind(0), lengths, strict=True)]


def pack_sequence(sequences, enforce_sorted=True):
    """pack_padded_sequence(pad_sequence(sequences), their lengths)."""
    lengths = [int(s.shape[0]) for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences):
    """The list of sequences a PackedSequence holds, in their original order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
