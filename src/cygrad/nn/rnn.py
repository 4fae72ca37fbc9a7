"""nn.RNN, nn.LSTM, nn.GRU and their cells, with torch's arguments, parameter names and layout,
init, shapes, errors and repr.

Every step is composed from cygrad's differentiable ops (F.linear, sigmoid, tanh, relu, chunk,
cat, stack, unbind, F.dropout): the gradients are those ops' exact ones, and hidden units whose
rows (in every gate block of weight_ih, weight_hh and the biases), weight_hh columns and initial
states are equal stay bitwise equal, as do their gradients, at any thread count.

The gates are torch's: LSTM (i, f, g, o), c' = f * c + i * g, h' = o * tanh(c'); GRU (r, z, n),
n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (h - n) * z + n; RNN h' = act(W_ih x + b_ih +
W_hh h + b_hh). Each step projects its own input (x_t @ W_ih.T) and a layer reads the step
outputs of the layer below as they are, so nothing slices a whole sequence's projection; the only
per-step slices are of the input sequence (and hx): when the input requires grad, each slice's
gradient reaches the engine as its window alone (ops.SliceGrad), added into one buffer of the
input's size, so backward stays O(L * N * H_in) (it was O(L^2 * N * H_in) with a whole
zero-padded gradient a slice). Dropout between layers draws torch's mask over
the (L, N, D * H) layer output, in torch's order, so the same seed drops the same elements.

An LSTM with proj_size > 0 projects each step's h by weight_hr (proj_size, H), no bias, as
torch does: h_t = (o * tanh(c_t)) W_hr^T, so h (and the output) has proj_size features while c
keeps H.

A PackedSequence input (nn.utils.rnn) runs step by step on the rows still going: at step t the
first batch_sizes[t] sequences (longest first). Forward, a sequence's final state is the state
after its last step (the rows that end are set aside as the batch shrinks); in reverse, a
sequence starts from its initial state at its own last step (rows join as the batch grows).
hx is taken, and h_n given, in the batch's original order (torch's permute_hidden); dropout
between layers draws its mask over the packed (total steps, D * H) output, as torch does.
"""

import math
import numbers
import warnings

import numpy as np

from .. import dtypes
from ..ops.shape import cat, stack
from ..tensor import Tensor, check_device
from . import functional as F
from . import init
from .module import Module, Parameter
from .utils.rnn import PackedSequence

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _param_dtype(dtype):
    """The numpy dtype of the parameters: the default float dtype unless given; torch refuses
    any other with RuntimeError (its parameters must be able to require grad)."""
    d = dtypes.get_default_dtype() if dtype is None else dtypes.as_dtype(dtype)
    if not d.is_floating_point:
        raise RuntimeError(f"Only Tensors of floating point dtype can require gradients: "
                           f"recurrent layer parameters must be float32 or float64, got {d}")
    return d.numpy


def _uniform_init(module, hidden_size):
    """torch's reset_parameters: every parameter ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)),
    drawn in parameter order."""
    stdv = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0
    for weight in module.parameters():
        init.uniform_(weight, -stdv, stdv)


# ---------------------------------------------------------------------- one step

# Each step from its input's projection xp = F.linear(x, w_ih, b_ih): a layer over a whole
# sequence projects every step's input in one product (the same bits as step by step: an
# element's chain does not depend on the rows beside it), as torch's layers do; the cells and
# packed sequences project step by step (the *_step forms).

def _rnn_tanh_from(xp, h, w_hh, b_hh):
    return (F.linear(h, w_hh, b_hh) + xp).tanh()


def _rnn_relu_from(xp, h, w_hh, b_hh):
    return (F.linear(h, w_hh, b_hh) + xp).relu()


def _lstm_from(xp, state, w_hh, b_hh, w_hr=None):
    h, c = state
    i, f, g, o = (F.linear(h, w_hh, b_hh) + xp).chunk(4, 1)
    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
    h = o.sigmoid() * c.tanh()
    return (h if w_hr is None else F.linear(h, w_hr)), c


def _gru_from(xp, h, w_hh, b_hh):
    i_r, i_z, i_n = xp.chunk(3, 1)
    h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, 1)
    r = (h_r + i_r).sigmoid()
    z = (h_z + i_z).sigmoid()
    n = (i_n + h_n * r).tanh()
    return (h - n) * z + n


def _stepper(from_projection):
    def step(x, state, w_ih, w_hh, b_ih, b_hh, *rest):
        return from_projection(F.linear(x, w_ih, b_ih), state, w_hh, b_hh, *rest)

    return step


_FROM = {"RNN_TANH": _rnn_tanh_from, "RNN_RELU": _rnn_relu_from, "LSTM": _lstm_from,
         "GRU": _gru_from}
_rnn_tanh_step, _rnn_relu_step, _lstm_step, _gru_step = (
    _stepper(_FROM[mode]) for mode in ("RNN_TANH", "RNN_RELU", "LSTM", "GRU"))


_STEPS = {"RNN_TANH": _rnn_tanh_step, "RNN_RELU": _rnn_relu_step, "LSTM": _lstm_step,
          "GRU": _gru_step}


def _check_bool(value, name):
    if not isinstance(value, bool):
        raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")


def _check_size(value, name):
    if not isinstance(value, int):
        raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be greater than zero")


# ---------------------------------------------------------------------- the sequence modules

class RNNBase(Module):
    """The multi-layer recurrent modules' common part (torch's nn.RNNBase): parameters
    weight_ih_l{k}{_reverse} (G*H, in), weight_hh_l{k}{_reverse} (G*H, H), bias_ih_l{k}...,
    bias_hh_l{k}... (G*H,), G = 4 (LSTM), 3 (GRU) or 1 (RNN), registered layer by layer and
    direction by direction; all ~ U(-1/sqrt(H), 1/sqrt(H)) in that order. An LSTM with
    proj_size P > 0 also has weight_hr_l{k}{_reverse} (P, H), and weight_hh (G*H, P)."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, proj_size=0, device=None,
                 dtype=None):
        super().__init__()
        check_device(device)
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        if (not isinstance(dropout, numbers.Number) or isinstance(dropout, bool)
                or not 0 <= dropout <= 1):
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             "probability of an element being zeroed")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                          "non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", stacklevel=3)
        _check_bool(bias, "bias")
        _check_bool(batch_first, "batch_first")
        _check_size(input_size, "input_size")
        _check_size(hidden_size, "hidden_size")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if not isinstance(num_layers, int):
            raise TypeError(f"'{type(num_layers).__name__}' object cannot be interpreted as an "
                            "integer")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable "
                             "projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if proj_size > 0 and mode != "LSTM":  # (torch's message)
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if mode not in _GATES:
            raise ValueError("Unrecognized RNN mode: " + mode)
        gate_size = _GATES[mode] * hidden_size
        dt = _param_dtype(dtype)
        directions = 2 if bidirectional else 1
        real_hidden_size = proj_size if proj_size > 0 else hidden_size
        self._flat_weights_names = []
        self._all_weights = []
        for layer in range(num_layers):
            layer_input_size = input_size if layer == 0 else real_hidden_size * directions
            for direction in range(directions):
                suffix = "_reverse" if direction == 1 else ""
                shapes = [("weight_ih", (gate_size, layer_input_size)),
                          ("weight_hh", (gate_size, real_hidden_size))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                if proj_size > 0:
                    shapes.append(("weight_hr", (proj_size, hidden_size)))
                names = []
                for name, shape in shapes:
                    names.append(f"{name}_l{layer}{suffix}")
                    setattr(self, names[-1], Parameter(np.empty(shape, dt)))
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    def reset_parameters(self):
        _uniform_init(self, self.hidden_size)

    def flatten_parameters(self):
        """A no-op, as torch's is off cuDNN: cygrad's parameters need no flat buffer."""

    @property
    def _flat_weights(self):
        return [getattr(self, name) for name in self._flat_weights_names]

    @property
    def all_weights(self):
        """The parameters, one list per (layer, direction): [w_ih, w_hh(, b_ih, b_hh)]."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    # ------------------------------------------------------------------ checks (torch's)

    def check_input(self, input, batch_sizes):
        weight = self._parameters["weight_ih_l0"]
        if input.dtype != weight.dtype:
            raise ValueError(f"RNN input dtype ({input.dtype}) does not match weight dtype "
                             f"({weight.dtype}). Convert input: input.to({weight.dtype}), or "
                             f"convert model: model.to({input.dtype})")
        expected = 2 if batch_sizes is not None else 3
        if input.dim() != expected:
            raise RuntimeError(f"input must have {expected} dimensions, got {input.dim()}")
        if self.input_size != input.size(-1):
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected "
                               f"{self.input_size}, got {input.size(-1)}")

    def get_expected_hidden_size(self, input, batch_sizes):
        mini_batch = _mini_batch(self, input, batch_sizes)
        directions = 2 if self.bidirectional else 1
        return (self.num_layers * directions, mini_batch,
                self.proj_size if self.proj_size > 0 else self.hidden_size)

    def check_hidden_size(self, hx, expected_hidden_size,
                          msg="Expected hidden size {}, got {}"):
        if tuple(hx.size()) != tuple(expected_hidden_size):
            raise RuntimeError(msg.format(expected_hidden_size, list(hx.size())))

    def check_forward_args(self, input, hidden, batch_sizes):
        self.check_input(input, batch_sizes)
        self.check_hidden_size(hidden, self.get_expected_hidden_size(input, batch_sizes))

    def permute_hidden(self, hx, permutation):
        """hx with its batch (dim 1) in the given order (a packed batch's sorting)."""
        if permutation is None:
            return hx
        return hx.index_select(1, permutation)

    # ------------------------------------------------------------------ running

    def _batched(self, input, hx, lstm):
        """(input as (L, N, H_in) or (N, L, H_in), hx batched, is_batched), with torch's
        checks of dimensions."""
        name = "RNN" if self.mode.startswith("RNN") else self.mode
        if input.dim() not in (2, 3):
            raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.dim()}D "
                             + ("tensor instead" if name == "RNN" else "instead"))
        batched = input.dim() == 3
        if not batched:
            input = input.unsqueeze(0 if self.batch_first else 1)
        if hx is None:
            return input, None, batched
        want = 3 if batched else 2
        kind = "batched 3-D" if batched else "unbatched 2-D"
        if lstm:
            if hx[0].dim() != want or hx[1].dim() != want:
                raise RuntimeError(f"For {kind} input, hx and cx should also be {want}-D but got "
                                   f"({hx[0].dim()}-D, {hx[1].dim()}-D) tensors")
            if len(hx) != 2:
                raise RuntimeError("lstm expects two hidden states")
            hx = tuple(hx) if batched else (hx[0].unsqueeze(1), hx[1].unsqueeze(1))
        else:
            if hx.dim() != want:
                raise RuntimeError(f"For {kind} input, hx should also be {want}-D but got "
                                   f"{hx.dim()}-D tensor")
            hx = hx if batched else hx.unsqueeze(1)
        return input, hx, batched

    def _run(self, input, initial, sizes=None):
        """The layers over a batched input, or a packed one's data (sizes: its batch sizes);
        initial: one state per (layer, direction), each (N, H) or, for the LSTM, an (h, c)
        pair. Returns (output, final states)."""
        if sizes is None:
            steps = (input.transpose(0, 1) if self.batch_first else input).unbind(0)
        else:
            steps = input.split(sizes, 0)
        if not steps:
            raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
        for state in initial:
            for s in state if isinstance(state, tuple) else (state,):
                if s.dtype != input.dtype:
                    raise RuntimeError(f"{type(self).__name__}: hx has dtype {s.dtype} but "
                                       f"input has dtype {input.dtype}; they must match")
        step, from_projection = _STEPS[self.mode], _FROM[self.mode]
        lstm = self.mode == "LSTM"
        used = 5 if self.proj_size > 0 else 4  # [w_ih, w_hh, b_ih, b_hh(, w_hr)]
        directions = 2 if self.bidirectional else 1
        p = self._parameters
        finals = []
        for layer, names in enumerate(self._layer_names()):
            outputs = []
            sequence = None  # the layer's input, (L, N, features), for the projections
            if sizes is None:
                sequence = stack(steps, 0) if layer else \
                    (input.transpose(0, 1) if self.batch_first else input)
            for direction in range(directions):
                weights = [p[name] if name else None for name in names[direction][:used]]
                state = initial[layer * directions + direction]
                if sizes is not None:
                    hs, state = _packed_direction(step, steps, state, weights, sizes,
                                                  direction, lstm)
                    outputs.append(hs)
                    finals.append(state)
                    continue
                hs = []
                projections = F.linear(sequence, weights[0], weights[2]).unbind(0)
                for xp in (projections if direction == 0 else reversed(projections)):
                    state = from_projection(xp, state, weights[1], weights[3], *weights[4:])
                    hs.append(state[0] if lstm else state)
                if direction == 1:
                    hs.reverse()
                outputs.append(hs)
                finals.append(state)
            steps = outputs[0] if directions == 1 else [cat(pair, -1) for pair in
                                                        zip(*outputs)]
            if self.dropout and self.training and layer < self.num_layers - 1:
                # torch's mask, drawn over the whole (L, N, D * H) layer output (a packed
                # sequence's: over its (total steps, D * H) data)
                if sizes is None:
                    shape = (len(steps),) + tuple(steps[0].shape)
                    noise = F.dropout(steps[0].new_ones(shape), self.dropout, True).unbind(0)
                else:
                    shape = (sum(sizes),) + tuple(steps[0].shape[1:])
                    noise = F.dropout(steps[0].new_ones(shape), self.dropout, True).split(
                        sizes, 0)
                steps = [s * m for s, m in zip(steps, noise)]
        if sizes is not None:
            return cat(steps, 0), finals
        output = stack(steps, 0)
        return (output.transpose(0, 1) if self.batch_first else output), finals

    def _layer_names(self):
        """Per layer, per direction: the names of [w_ih, w_hh, b_ih, b_hh, w_hr] (None where
        absent: the biases without bias, w_hr without a projection)."""
        directions = 2 if self.bidirectional else 1
        for layer in range(self.num_layers):
            out = []
            for names in self._all_weights[layer * directions:(layer + 1) * directions]:
                biases = names[2:4] if self.bias else [None, None]
                out.append(names[:2] + biases + [names[-1] if self.proj_size > 0 else None])
            yield out

    def _forward_hidden(self, input, hx):
        """RNN's and GRU's forward: one hidden state."""
        if isinstance(input, PackedSequence):
            data, batch_sizes, sorted_indices, unsorted_indices = input
            if hx is None:
                hx = _packed_zeros(self, data, batch_sizes, self.hidden_size)
            else:
                hx = self.permute_hidden(hx, sorted_indices)
            self.check_forward_args(data, hx, batch_sizes)
            output, finals = self._run(data, hx.unbind(0), _sizes(batch_sizes))
            h_n = self.permute_hidden(stack(finals, 0), unsorted_indices)
            return input._replace(data=output), h_n
        input, hx, batched = self._batched(input, hx, lstm=False)
        if hx is None:
            hx = self._zeros(input)
        self.check_forward_args(input, hx, None)
        output, finals = self._run(input, hx.unbind(0))
        h_n = stack(finals, 0)
        if not batched:
            return output.squeeze(0 if self.batch_first else 1), h_n.squeeze(1)
        return output, h_n

    def _zeros(self, input, size=None):
        directions = 2 if self.bidirectional else 1
        batch = input.size(0) if self.batch_first else input.size(1)
        return input.new_zeros((self.num_layers * directions, batch,
                                self.hidden_size if size is None else size))


def _mini_batch(module, input, batch_sizes):
    if batch_sizes is not None:
        return int(batch_sizes[0])
    return input.size(0) if module.batch_first else input.size(1)


def _sizes(batch_sizes):
    return [int(b) for b in np.asarray(batch_sizes._data if isinstance(batch_sizes, Tensor)
                                       else batch_sizes)]


def _packed_zeros(module, data, batch_sizes, size):
    directions = 2 if module.bidirectional else 1
    return data.new_zeros((module.num_layers * directions, int(batch_sizes[0]), size))


def _rows(state, start, stop, lstm):
    if lstm:
        return tuple(s[start:stop] for s in state)
    return state[start:stop]


def _join(parts, lstm):
    if lstm:
        return tuple(cat([p[i] for p in parts], 0) for i in range(2))
    return cat(parts, 0)


def _packed_direction(step, steps, state, weights, sizes, direction, lstm):
    """One direction of one layer over a packed batch: (per-step outputs in time order, final
    state of every sequence, rows in the packed order). Forward, the rows that end at a step
    are set aside before it; in reverse, a sequence starts from its initial state at its last
    step, joining the rows already running."""
    hs = []
    if direction == 0:
        done = []
        for t, x in enumerate(steps):
            rows = sizes[t]
            running = (state[0] if lstm else state).shape[0]
            if rows < running:
                done.append(_rows(state, rows, running, lstm))
                state = _rows(state, 0, rows, lstm)
            state = step(x, state, *weights)
            hs.append(state[0] if lstm else state)
        return hs, (_join([state] + done[::-1], lstm) if done else state)
    initial = state
    state = _rows(initial, 0, sizes[-1], lstm)
    for t in range(len(steps) - 1, -1, -1):
        rows = sizes[t]
        running = (state[0] if lstm else state).shape[0]
        if rows > running:
            state = _join([state, _rows(initial, running, rows, lstm)], lstm)
        state = step(steps[t], state, *weights)
        hs.append(state[0] if lstm else state)
    hs.reverse()
    return hs, state


def _init_kwargs(cls, kwargs):
    """torch's RNN and GRU refuse proj_size by name (even 0)."""
    if "proj_size" in kwargs:
        raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
    if kwargs:
        raise TypeError(f"{cls.__name__}.__init__() got an unexpected keyword argument "
                        f"'{next(iter(kwargs))}'")


class RNN(RNNBase):
    """Elman RNN: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act tanh or relu, over
    num_layers layers (dropout between them while training), one or two directions.
    forward(input, hx=None) -> (output, h_n): input (L, N, H_in), (N, L, H_in) with
    batch_first, or unbatched (L, H_in); hx and h_n (D * num_layers, N, H) or
    (D * num_layers, H); output (L, N, D * H) (both directions side by side)."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None,
                 **kwargs):
        _init_kwargs(RNN, kwargs)
        if nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or "
                             "'relu'.")
        super().__init__(mode, input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        return self._forward_hidden(input, hx)


class LSTM(RNNBase):
    """Long short-term memory: gates (i, f, g, o) = chunks of x_t W_ih^T + b_ih + h W_hh^T +
    b_hh; c_t = sigmoid(f) * c + sigmoid(i) * tanh(g), h_t = sigmoid(o) * tanh(c_t).
    forward(input, hx=None) -> (output, (h_n, c_n)); hx = (h_0, c_0), shapes as RNN's. With
    proj_size P > 0, h_t = (sigmoid(o) * tanh(c_t)) W_hr^T: h_0, h_n and the output have P
    features (c_0, c_n keep H)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, device, dtype)

    def get_expected_cell_size(self, input, batch_sizes):
        mini_batch = _mini_batch(self, input, batch_sizes)
        directions = 2 if self.bidirectional else 1
        return (self.num_layers * directions, mini_batch, self.hidden_size)

    def check_forward_args(self, input, hidden, batch_sizes):
        self.check_input(input, batch_sizes)
        self.check_hidden_size(hidden[0], self.get_expected_hidden_size(input, batch_sizes),
                               "Expected hidden[0] size {}, got {}")
        self.check_hidden_size(hidden[1], self.get_expected_cell_size(input, batch_sizes),
                               "Expected hidden[1] size {}, got {}")

    def permute_hidden(self, hx, permutation):
        if permutation is None:
            return hx
        return tuple(h.index_select(1, permutation) for h in hx)

    def forward(self, input, hx=None):
        if isinstance(input, PackedSequence):
            data, batch_sizes, sorted_indices, unsorted_indices = input
            if hx is None:
                c = _packed_zeros(self, data, batch_sizes, self.hidden_size)
                h = _packed_zeros(self, data, batch_sizes, self.proj_size) if \
                    self.proj_size > 0 else c
                hx = (h, c)
            else:
                hx = self.permute_hidden(hx, sorted_indices)
            self.check_forward_args(data, hx, batch_sizes)
            output, finals = self._run(data, list(zip(hx[0].unbind(0), hx[1].unbind(0))),
                                       _sizes(batch_sizes))
            h_n = stack([h for h, _ in finals], 0)
            c_n = stack([c for _, c in finals], 0)
            return input._replace(data=output), self.permute_hidden((h_n, c_n),
                                                                    unsorted_indices)
        input, hx, batched = self._batched(input, hx, lstm=True)
        if hx is None:
            zeros = self._zeros(input)
            hx = (self._zeros(input, self.proj_size) if self.proj_size > 0 else zeros, zeros)
        self.check_forward_args(input, hx, None)
        output, finals = self._run(input, list(zip(hx[0].unbind(0), hx[1].unbind(0))))
        h_n = stack([h for h, _ in finals], 0)
        c_n = stack([c for _, c in finals], 0)
        if not batched:
            return output.squeeze(0 if self.batch_first else 1), (h_n.squeeze(1),
                                                                  c_n.squeeze(1))
        return output, (h_n, c_n)


class GRU(RNNBase):
    """Gated recurrent unit: gates (r, z, n) in weight_ih/weight_hh order; r, z =
    sigmoid(x W_i^T + b_i + h W_h^T + b_h), n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn)),
    h_t = (1 - z) * n + z * h (computed as (h - n) * z + n, as torch). forward(input, hx=None)
    -> (output, h_n), shapes as RNN's."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None, **kwargs):
        _init_kwargs(GRU, kwargs)
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        return self._forward_hidden(input, hx)


# ---------------------------------------------------------------------- the cells

class RNNCellBase(Module):
    """One step's parameters: weight_ih (G*H, in), weight_hh (G*H, H), bias_ih and bias_hh
    (G*H,) or None; all ~ U(-1/sqrt(H), 1/sqrt(H)) in that order (torch's nn.RNNCellBase)."""

    _name = "RNNCell"

    def __init__(self, input_size, hidden_size, bias, num_chunks, device=None, dtype=None):
        super().__init__()
        check_device(device)
        for name, size in (("input_size", input_size), ("hidden_size", hidden_size)):
            if isinstance(size, bool) or not isinstance(size, numbers.Integral):
                raise TypeError(f"{type(self).__name__}: {name} must be an int, got "
                                f"{type(size).__name__}")
            if size < 0:
                raise RuntimeError(f"Trying to create tensor with negative dimension {size}: "
                                   f"{name} must be >= 0")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        dt = _param_dtype(dtype)
        self.weight_ih = Parameter(np.empty((num_chunks * hidden_size, input_size), dt))
        self.weight_hh = Parameter(np.empty((num_chunks * hidden_size, hidden_size), dt))
        if bias:
            self.bias_ih = Parameter(np.empty(num_chunks * hidden_size, dt))
            self.bias_hh = Parameter(np.empty(num_chunks * hidden_size, dt))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        nonlinearity = self.__dict__.get("nonlinearity", "tanh")
        if nonlinearity != "tanh":
            s += f", nonlinearity={nonlinearity}"
        return s

    def reset_parameters(self):
        _uniform_init(self, self.hidden_size)

    def _input(self, input, hx, what):
        """(input as (N, H_in), is_batched), after torch's dimension checks; hx: the hidden
        tensors given (or ()), `what` names them in the error."""
        if input.dim() not in (1, 2):
            raise ValueError(f"{self._name}: Expected input to be 1D or 2D, got {input.dim()}D "
                             "instead")
        for i, h in enumerate(hx):
            if h.dim() not in (1, 2):
                raise ValueError(f"{self._name}: Expected {what.format(i)} to be 1D or 2D, got "
                                 f"{h.dim()}D instead")
        batched = input.dim() == 2
        return (input if batched else input.unsqueeze(0)), batched

    def _check(self, input, hx):
        """torch's checks of one step's tensors (input (N, H_in), each of hx (N, H))."""
        if input.size(1) != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {input.size(1)} expected "
                               f"{self.input_size}")
        for i, h in enumerate(hx):
            if input.size(0) != h.size(0):
                raise RuntimeError(f"Input batch size {input.size(0)} doesn't match hidden{i} "
                                   f"batch size {h.size(0)}")
            if h.size(1) != self.hidden_size:
                raise RuntimeError(f"hidden{i} has inconsistent hidden_size: got {h.size(1)}, "
                                   f"expected {self.hidden_size}")
        weight = self._parameters["weight_ih"]
        for t in (input, *hx):
            if t.dtype != weight.dtype:
                raise RuntimeError(f"{self._name}: expected {weight.dtype} inputs (the "
                                   f"parameters' dtype), got {t.dtype}")

    def _weights(self):
        p = self._parameters
        return p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"]


class RNNCell(RNNCellBase):
    """h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh), act tanh or relu. forward(input, hx=None):
    input (N, H_in) or (H_in,), hx (N, H) or (H,), zeros by default -> h'."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None,
                 dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=1, device=device,
                         dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        input, batched = self._input(input, () if hx is None else (hx,), "hidden")
        if hx is None:
            hx = input.new_zeros((input.size(0), self.hidden_size))
        elif not batched:
            hx = hx.unsqueeze(0)
        if self.nonlinearity == "tanh":
            step = _rnn_tanh_step
        elif self.nonlinearity == "relu":
            step = _rnn_relu_step
        else:
            raise RuntimeError(f"Unknown nonlinearity: {self.nonlinearity}")
        self._check(input, (hx,))
        h = step(input, hx, *self._weights())
        return h if batched else h.squeeze(0)


class LSTMCell(RNNCellBase):
    """One LSTM step: forward(input, hx=None) with hx = (h, c) -> (h', c'); shapes as
    RNNCell's; gates (i, f, g, o) as LSTM's."""

    _name = "LSTMCell"

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=4, device=device,
                         dtype=dtype)

    def forward(self, input, hx=None):
        input, batched = self._input(input, () if hx is None else hx, "hx[{}]")
        if hx is None:
            zeros = input.new_zeros((input.size(0), self.hidden_size))
            hx = (zeros, zeros)
        else:
            if isinstance(hx, Tensor):
                raise TypeError("lstm_cell(): argument 'hx' (position 2) must be tuple of "
                                "Tensors, not Tensor")
            if len(hx) != 2:
                raise RuntimeError("lstm_cell expects two hidden states")
            hx = tuple(hx) if batched else (hx[0].unsqueeze(0), hx[1].unsqueeze(0))
        self._check(input, hx)
        h, c = _lstm_step(input, hx, *self._weights())
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    """One GRU step: forward(input, hx=None) -> h'; shapes as RNNCell's; gates (r, z, n) as
    GRU's."""

    _name = "GRUCell"

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=3, device=device,
                         dtype=dtype)

    def forward(self, input, hx=None):
        input, batched = self._input(input, () if hx is None else (hx,), "hidden")
        if hx is None:
            hx = input.new_zeros((input.size(0), self.hidden_size))
        elif not batched:
            hx = hx.unsqueeze(0)
        self._check(input, (hx,))
        h = _gru_step(input, hx, *self._weights())
        return h if batched else h.squeeze(0)
