"""nn.utils.rnn (PackedSequence, pack/pad utilities) and the recurrent layers on packed batches:
torch's values, lengths, orders, gradients and errors; gradchecks; and exactness: a sequence's
outputs and final state have the same bits alone as inside a packed batch of any others."""

import numpy as np
import pytest

import cygrad
from cygrad import nn
from cygrad.nn.utils import rnn as R

RNG = np.random.default_rng
TOLERANCE = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def _torch():
    return pytest.importorskip("torch")


def _close(c, t, dtype, what):
    c, t = c.detach().numpy(), t.detach().numpy()
    assert c.shape == t.shape and c.dtype == t.dtype, (what, c.shape, t.shape, c.dtype, t.dtype)
    scale = max(1.0, float(np.abs(t).max(initial=0)))
    assert np.abs(c.astype(np.float64) - t).max(initial=0) <= TOLERANCE[dtype] * scale, what


# ---------------------------------------------------------------------- the utilities

@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths,enforce_sorted", [([5, 3, 3, 1], True), ([3, 5, 1, 3], False),
                                                    ([2, 2, 2, 2], True), ([1, 4, 2, 4], False)])
def test_pack_and_pad_match_torch(batch_first, lengths, enforce_sorted):
    torch = _torch()
    x = RNG(0).standard_normal((4, 5, 3) if batch_first else (5, 4, 3))
    tx, cx = torch.tensor(x, requires_grad=True), cygrad.tensor(x, requires_grad=True)
    tp = torch.nn.utils.rnn.pack_padded_sequence(tx, lengths, batch_first, enforce_sorted)
    cp = R.pack_padded_sequence(cx, lengths, batch_first, enforce_sorted)
    assert isinstance(cp, R.PackedSequence) and isinstance(cp, tuple)
    assert np.array_equal(cp.data.numpy(), tp.data.detach().numpy())
    assert cp.batch_sizes.dtype == cygrad.int64
    assert cp.batch_sizes.tolist() == tp.batch_sizes.tolist()
    for ours, theirs in ((cp.sorted_indices, tp.sorted_indices),
                         (cp.unsorted_indices, tp.unsorted_indices)):
        assert (ours is None) == (theirs is None)
        assert ours is None or ours.tolist() == theirs.tolist()
    for total in (None, 7):
        t_pad, t_len = torch.nn.utils.rnn.pad_packed_sequence(tp, batch_first, -1.5, total)
        c_pad, c_len = R.pad_packed_sequence(cp, batch_first, -1.5, total)
        assert np.array_equal(c_pad.numpy(), t_pad.detach().numpy())
        assert c_len.tolist() == t_len.tolist() and c_len.dtype == cygrad.int64
    g = RNG(1).standard_normal(tuple(t_pad.shape))
    (t_pad * torch.tensor(g)).sum().backward()
    (c_pad * cygrad.tensor(g)).sum().backward()
    assert np.array_equal(cx.grad.numpy(), tx.grad.numpy())  # gathers: exact


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_sequence_and_the_list_forms_match_torch(batch_first, side):
    torch = _torch()
    rng = RNG(2)
    arrays = [rng.standard_normal((n, 2, 3)) for n in (2, 5, 3)]
    t_seqs = [torch.tensor(a, requires_grad=True) for a in arrays]
    c_seqs = [cygrad.tensor(a, requires_grad=True) for a in arrays]
    tp = torch.nn.utils.rnn.pad_sequence(t_seqs, batch_first, 9.0, side)
    cp = R.pad_sequence(c_seqs, batch_first, 9.0, side)
    assert np.array_equal(cp.detach().numpy(), tp.detach().numpy())
    tp.sum().backward()
    cp.sum().backward()
    for c, t in zip(c_seqs, t_seqs):
        assert np.array_equal(c.grad.numpy(), t.grad.numpy())
    ints = [np.arange(n) for n in (3, 1, 2)]
    assert R.pad_sequence([cygrad.tensor(a) for a in ints]).tolist() == \
        torch.nn.utils.rnn.pad_sequence([torch.tensor(a) for a in ints]).tolist()
    tk = torch.nn.utils.rnn.pack_sequence(t_seqs, enforce_sorted=False)
    ck = R.pack_sequence(c_seqs, enforce_sorted=False)
    assert np.array_equal(ck.data.detach().numpy(), tk.data.detach().numpy())
    assert ck.sorted_indices.tolist() == tk.sorted_indices.tolist()
    for c, t in zip(R.unpack_sequence(ck), torch.nn.utils.rnn.unpack_sequence(tk)):
        assert np.array_equal(c.detach().numpy(), t.detach().numpy())
    lengths = [2, 5, 3]
    padded = R.pad_sequence(c_seqs, batch_first)
    for c, a in zip(R.unpad_sequence(padded, cygrad.tensor(lengths), batch_first), arrays):
        assert np.array_equal(c.detach().numpy(), a)
    perm = cygrad.tensor([2, 0, 3, 1])
    assert R.invert_permutation(perm).tolist() == \
        torch.nn.utils.rnn.invert_permutation(torch.tensor([2, 0, 3, 1])).tolist()
    assert R.invert_permutation(None) is None


def test_packing_gradcheck():
    x = cygrad.tensor(RNG(3).standard_normal((4, 3, 2)), requires_grad=True)

    def fn(x):
        packed = R.pack_padded_sequence(x, [2, 4, 1], enforce_sorted=False)
        return R.pad_packed_sequence(packed, padding_value=0.5)[0]

    assert cygrad.gradcheck(fn, x)


@pytest.mark.parametrize("call", [
    lambda m, x: m.nn.utils.rnn.pack_padded_sequence(x, [2, 3, 1]),  # not sorted
    lambda m, x: m.nn.utils.rnn.pack_padded_sequence(x, [3, 2]),  # lengths vs batch
    lambda m, x: m.nn.utils.rnn.pack_padded_sequence(x, [3, 2, 0]),
    lambda m, x: m.nn.utils.rnn.pack_padded_sequence(x, m.tensor([[3, 2, 1]])),
    lambda m, x: m.nn.utils.rnn.pack_padded_sequence(x[:0], [1, 1, 1]),
    lambda m, x: m.nn.utils.rnn.pad_packed_sequence(
        m.nn.utils.rnn.pack_padded_sequence(x, [3, 2, 1]), total_length=2),
    lambda m, x: m.nn.utils.rnn.pad_sequence([]),
    lambda m, x: m.nn.utils.rnn.pad_sequence([x[0]], padding_side="middle"),
    lambda m, x: m.nn.utils.rnn.PackedSequence(x),
    lambda m, x: m.nn.LSTM(2, 3)(m.nn.utils.rnn.PackedSequence(
        x.float(), m.nn.utils.rnn.pack_padded_sequence(x, [3, 2, 1]).batch_sizes)),  # 3-D
])
def test_errors_are_torchs(call):
    torch = _torch()
    x = RNG(4).standard_normal((4, 3, 2))
    with pytest.raises(Exception) as theirs:
        call(torch, torch.tensor(x))
    with pytest.raises(Exception) as ours:
        call(cygrad, cygrad.tensor(x))
    assert type(ours.value) is type(theirs.value), (ours.value, theirs.value)
    if "LSTM" not in str(call.__code__.co_names):  # (torch's own text there is a broadcast
        assert str(ours.value) == str(theirs.value)  # error from inside; cygrad names the dim)


def test_lengths_beyond_the_input_are_refused():
    """torch reads past the input there; cygrad says so."""
    with pytest.raises(RuntimeError, match="exceeds the input's 4 steps"):
        R.pack_padded_sequence(cygrad.zeros(4, 3, 2), [5, 2, 1])


# ---------------------------------------------------------------------- recurrent layers

MODULES = [("RNN", {}), ("RNN", {"nonlinearity": "relu", "num_layers": 2}),
           ("LSTM", {"num_layers": 2, "bidirectional": True}), ("GRU", {"bidirectional": True}),
           ("LSTM", {"proj_size": 2, "bidirectional": True}), ("GRU", {"bias": False})]


@pytest.mark.parametrize("kind,kwargs", MODULES,
                         ids=["rnn", "rnn-relu-2", "lstm-2-bi", "gru-bi", "lstm-proj-bi",
                              "gru-nobias"])
@pytest.mark.parametrize("given", [False, True])
def test_packed_batches_match_torch(kind, kwargs, given, dtype):
    torch = _torch()
    tdt = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[dtype]
    theirs = getattr(torch.nn, kind)(3, 4, dtype=tdt, **kwargs)
    ours = getattr(nn, kind)(3, 4, dtype=dtype, **kwargs)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    rng = RNG(5)
    x = rng.standard_normal((6, 4, 3)).astype(dtype)
    lengths = [4, 6, 1, 4]
    tx, cx = torch.tensor(x, requires_grad=True), cygrad.tensor(x, requires_grad=True)
    t_args, c_args = [], []
    t_states, c_states = [], []
    if given:
        states = (2 if kwargs.get("bidirectional") else 1) * kwargs.get("num_layers", 1)
        sizes = [kwargs.get("proj_size") or 4, 4] if kind == "LSTM" else [4]
        arrays = [rng.standard_normal((states, 4, s)).astype(dtype) for s in sizes]
        t_states = [torch.tensor(a, requires_grad=True) for a in arrays]
        c_states = [cygrad.tensor(a, requires_grad=True) for a in arrays]
        t_args = [tuple(t_states) if kind == "LSTM" else t_states[0]]
        c_args = [tuple(c_states) if kind == "LSTM" else c_states[0]]
    t_out, t_h = theirs(torch.nn.utils.rnn.pack_padded_sequence(tx, lengths,
                                                                enforce_sorted=False), *t_args)
    c_out, c_h = ours(R.pack_padded_sequence(cx, lengths, enforce_sorted=False), *c_args)
    assert isinstance(c_out, R.PackedSequence)
    assert c_out.batch_sizes.tolist() == t_out.batch_sizes.tolist()
    assert c_out.sorted_indices.tolist() == t_out.sorted_indices.tolist()
    _close(c_out.data, t_out.data, dtype, "packed output")
    t_hs = list(t_h) if isinstance(t_h, tuple) else [t_h]
    c_hs = list(c_h) if isinstance(c_h, tuple) else [c_h]
    for i, (c, t) in enumerate(zip(c_hs, t_hs)):
        _close(c, t, dtype, f"final state {i}")
    t_pad = torch.nn.utils.rnn.pad_packed_sequence(t_out, batch_first=True)[0]
    c_pad = R.pad_packed_sequence(c_out, batch_first=True)[0]
    grads = [rng.standard_normal(tuple(t.shape)).astype(dtype) for t in [t_pad] + t_hs]
    torch.autograd.backward([t_pad] + t_hs, [torch.tensor(g) for g in grads])
    cygrad.autograd.backward([c_pad] + c_hs, [cygrad.tensor(g) for g in grads])
    _close(cx.grad, tx.grad, dtype, "gradient of the input")
    for i, (c, t) in enumerate(zip(c_states, t_states)):
        _close(c.grad, t.grad, dtype, f"gradient of hx[{i}]")
    for (name, t), (_, c) in zip(theirs.named_parameters(), ours.named_parameters()):
        _close(c.grad, t.grad, dtype, f"gradient of {name}")


def test_packed_dropout_between_layers_draws_torchs_masks():
    torch = _torch()
    theirs = torch.nn.GRU(3, 4, num_layers=2, dropout=0.5, dtype=torch.float64)
    ours = nn.GRU(3, 4, num_layers=2, dropout=0.5, dtype=cygrad.float64)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = RNG(6).standard_normal((5, 3, 3))
    torch.manual_seed(11)
    t_out, _ = theirs(torch.nn.utils.rnn.pack_padded_sequence(torch.tensor(x), [5, 3, 2]))
    cygrad.manual_seed(11)
    c_out, _ = ours(R.pack_padded_sequence(cygrad.tensor(x), [5, 3, 2]))
    _close(c_out.data, t_out.data, np.dtype(np.float64), "output with dropout")


def test_packed_gradcheck():
    cygrad.manual_seed(0)
    module = nn.LSTM(2, 2, bidirectional=True, dtype=cygrad.float64)
    names = [n for n, _ in module.named_parameters()]
    x = cygrad.tensor(RNG(7).standard_normal((3, 2, 2)), requires_grad=True)
    params = [cygrad.tensor(p.numpy(), requires_grad=True) for p in module.parameters()]

    def fn(x, *params):
        for name, p in zip(names, params):
            module._parameters[name] = p
        out, (h, c) = module(R.pack_padded_sequence(x, [1, 3], enforce_sorted=False))
        return cygrad.cat([out.data.flatten(), h.flatten(), c.flatten()])

    try:
        assert cygrad.gradcheck(fn, x, *params)
    finally:
        for name, p in zip(names, params):
            module._parameters[name] = nn.Parameter(p.detach())


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("threads", [1, 2])
def test_a_sequence_has_the_same_bits_alone_as_in_a_packed_batch(kind, threads, dtype,
                                                                  parallel_small):
    if "cython" not in cygrad.backend.available():
        pytest.skip("the exact backend is not built")
    cygrad.backend.use("cython")
    cygrad.set_num_threads(threads)
    cygrad.manual_seed(1)
    module = getattr(nn, kind)(3, 5, num_layers=2, bidirectional=True, dtype=dtype)
    rng = RNG(8)
    lengths = [3, 7, 5, 1, 7]
    seqs = [cygrad.tensor(rng.standard_normal((n, 3)).astype(dtype)) for n in lengths]
    out, h = module(R.pack_sequence(seqs, enforce_sorted=False))
    h = h[0] if kind == "LSTM" else h
    padded, _ = R.pad_packed_sequence(out, batch_first=True)
    for i, s in enumerate(seqs):
        alone, h_alone = module(s.unsqueeze(1))
        h_alone = h_alone[0] if kind == "LSTM" else h_alone
        assert np.array_equal(padded[i, :lengths[i]].numpy(), alone[:, 0].numpy()), i
        assert np.array_equal(h[:, i].numpy(), h_alone[:, 0].numpy()), i
