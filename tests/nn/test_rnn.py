"""RNN, LSTM, GRU and their cells: torch's values and gradients with torch's weights (every
configuration, both dtypes), torch's initial weights and dropout masks from the same seed,
gradchecks, torch's errors, and exactness: tied hidden units stay bitwise tied, forward and
backward, at 1 and 2 threads."""

import math
import warnings

import numpy as np
import pytest

import cygrad
from cygrad import nn

RNG = np.random.default_rng
TOLERANCE = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}
GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}

# (class, extra constructor arguments)
MODULES = [("RNN", {}), ("RNN", {"nonlinearity": "relu"}), ("LSTM", {}), ("GRU", {})]
MODULE_IDS = ["rnn-tanh", "rnn-relu", "lstm", "gru"]
CELLS = [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu"}), ("LSTMCell", {}),
         ("GRUCell", {})]
CELL_IDS = ["rnncell-tanh", "rnncell-relu", "lstmcell", "grucell"]

# (constructor arguments, batched input, hx given)
CONFIGS = {
    "batched": ({}, True, False),
    "batched-hx": ({}, True, True),
    "batch_first-hx": ({"batch_first": True}, True, True),
    "layers2-bidirectional-hx": ({"num_layers": 2, "bidirectional": True}, True, True),
    "layers2-nobias": ({"num_layers": 2, "bias": False}, True, False),
    "bidirectional-batch_first-nobias-hx": ({"bidirectional": True, "batch_first": True,
                                             "bias": False}, True, True),
    "unbatched-layers2-hx": ({"num_layers": 2}, False, True),
    "unbatched-bidirectional-batch_first": ({"bidirectional": True, "batch_first": True},
                                            False, False),
}
CELL_CONFIGS = {
    "batched": ({}, True, False),
    "batched-hx": ({}, True, True),
    "unbatched": ({}, False, False),
    "unbatched-hx": ({}, False, True),
    "nobias-hx": ({"bias": False}, True, True),
}


def _torch():
    return pytest.importorskip("torch")


def _torch_dtype(torch, dtype):
    return {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[dtype]


def _assert_close(c, t, dtype, what):
    """c (cygrad) and t (torch) tensors: same shape, values within the dtype's tolerance
    relative to the result's scale."""
    c_np, t_np = c.detach().numpy(), t.detach().numpy()
    assert c_np.shape == t_np.shape, f"{what}: shape {c_np.shape} != torch's {t_np.shape}"
    assert c_np.dtype == t_np.dtype, f"{what}: dtype {c_np.dtype} != torch's {t_np.dtype}"
    scale = max(1.0, float(np.abs(t_np).max(initial=0)))
    worst = float(np.abs(c_np.astype(np.float64) - t_np).max(initial=0))
    assert worst <= TOLERANCE[dtype] * scale, f"{what}: differs from torch by {worst:.3g}"


def _pair(torch, kind, dtype, *args, **kwargs):
    """torch's module and cygrad's with torch's weights (copied through load_state_dict)."""
    theirs = getattr(torch.nn, kind)(*args, dtype=_torch_dtype(torch, dtype), **kwargs)
    ours = getattr(nn, kind)(*args, dtype=dtype, **kwargs)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return theirs, ours


def _outputs(result):
    """The tensors of a module's result, flat: (output, h_n) or (output, (h_n, c_n)) or a
    cell's h or (h, c)."""
    if isinstance(result, tuple):
        return [t for r in result for t in _outputs(r)]
    return [result]


def _compare_with_torch(torch, kind, dtype, args, kwargs, x, hx, seed=0):
    """Run both modules on x (and hx: an array, a tuple of arrays, or None), then backward a
    random gradient of every output; compare outputs and the gradients of x, hx and every
    parameter."""
    theirs, ours = _pair(torch, kind, dtype, *args, **kwargs)
    tx, cx = torch.tensor(x, requires_grad=True), cygrad.tensor(x, requires_grad=True)
    states = [] if hx is None else list(hx) if isinstance(hx, tuple) else [hx]
    th = [torch.tensor(h, requires_grad=True) for h in states]
    ch = [cygrad.tensor(h, requires_grad=True) for h in states]
    pack = (lambda hs: tuple(hs)) if isinstance(hx, tuple) else (lambda hs: hs[0])
    t_out = _outputs(theirs(tx, pack(th)) if states else theirs(tx))
    c_out = _outputs(ours(cx, pack(ch)) if states else ours(cx))
    assert len(c_out) == len(t_out)
    for i, (c, t) in enumerate(zip(c_out, t_out)):
        _assert_close(c, t, dtype, f"output {i}")
    rng = RNG(seed)
    grads = [rng.standard_normal(tuple(t.shape)).astype(dtype) for t in t_out]
    torch.autograd.backward(t_out, [torch.tensor(g) for g in grads])
    cygrad.autograd.backward(c_out, [cygrad.tensor(g) for g in grads])
    _assert_close(cx.grad, tx.grad, dtype, "gradient of the input")
    for i, (c, t) in enumerate(zip(ch, th)):
        _assert_close(c.grad, t.grad, dtype, f"gradient of hx[{i}]")
    ours_named = dict(ours.named_parameters())
    assert list(ours_named) == [name for name, _ in theirs.named_parameters()]
    for name, t in theirs.named_parameters():
        _assert_close(ours_named[name].grad, t.grad, dtype, f"gradient of {name}")


# ---------------------------------------------------------------------- against torch

@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("kind, extra", MODULES, ids=MODULE_IDS)
def test_sequence_module_matches_torch(kind, extra, config, dtype):
    torch = _torch()
    kwargs, batched, given = CONFIGS[config]
    kwargs = {**kwargs, **extra}
    input_size, hidden, length, batch = 3, 5, 4, 2
    rng = RNG(1)
    if not batched:
        shape = (length, input_size)
    elif kwargs.get("batch_first"):
        shape = (batch, length, input_size)
    else:
        shape = (length, batch, input_size)
    x = rng.standard_normal(shape).astype(dtype)
    hx = None
    if given:
        states = (2 if kwargs.get("bidirectional") else 1) * kwargs.get("num_layers", 1)
        h_shape = (states, batch, hidden) if batched else (states, hidden)
        hx = tuple(rng.standard_normal(h_shape).astype(dtype) for _ in range(2))
        hx = hx if kind == "LSTM" else hx[0]
    _compare_with_torch(torch, kind, dtype, (input_size, hidden), kwargs, x, hx)


@pytest.mark.parametrize("config", list(CELL_CONFIGS))
@pytest.mark.parametrize("kind, extra", CELLS, ids=CELL_IDS)
def test_cell_matches_torch(kind, extra, config, dtype):
    torch = _torch()
    kwargs, batched, given = CELL_CONFIGS[config]
    kwargs = {**kwargs, **extra}
    rng = RNG(2)
    x = rng.standard_normal((3, 4) if batched else (4,)).astype(dtype)
    hx = None
    if given:
        hx = tuple(rng.standard_normal((3, 6) if batched else (6,)).astype(dtype)
                   for _ in range(2))
        hx = hx if kind == "LSTMCell" else hx[0]
    _compare_with_torch(torch, kind, dtype, (4, 6), kwargs, x, hx)


def test_longer_sequence_deeper_stack_matches_torch(backend):
    torch = _torch()
    x = RNG(3).standard_normal((12, 3, 4))
    for kind in ("LSTM", "GRU"):
        _compare_with_torch(torch, kind, np.dtype(np.float64), (4, 7),
                            {"num_layers": 3, "bidirectional": True}, x, None)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_empty_batch_gives_torchs_shapes(kind):
    torch = _torch()
    theirs, ours = _pair(torch, kind, np.dtype(np.float32), 3, 4, 2, bidirectional=True)
    t_out = _outputs(theirs(torch.zeros(5, 0, 3)))
    c_out = _outputs(ours(cygrad.zeros(5, 0, 3)))
    assert [tuple(c.shape) for c in c_out] == [tuple(t.shape) for t in t_out]


# ---------------------------------------------------------------------- torch's weights

@pytest.mark.parametrize("kind, kwargs", [
    ("RNN", {}), ("RNN", {"nonlinearity": "relu", "num_layers": 2, "bias": False}),
    ("LSTM", {}), ("LSTM", {"num_layers": 3, "bidirectional": True}),
    ("GRU", {"num_layers": 2, "bidirectional": True, "bias": False}),
    ("RNNCell", {}), ("LSTMCell", {}), ("GRUCell", {"bias": False}),
])
def test_same_seed_gives_torchs_initial_weights(kind, kwargs, dtype):
    torch = _torch()
    torch.manual_seed(7)
    theirs = getattr(torch.nn, kind)(5, 6, dtype=_torch_dtype(torch, dtype), **kwargs)
    cygrad.manual_seed(7)
    ours = getattr(nn, kind)(5, 6, dtype=dtype, **kwargs)
    t_named, c_named = list(theirs.named_parameters()), list(ours.named_parameters())
    assert [n for n, _ in c_named] == [n for n, _ in t_named]
    for (name, t), (_, c) in zip(t_named, c_named):
        assert tuple(c.shape) == tuple(t.shape), name
        assert c.dtype == dtype, name
        assert np.array_equal(c.numpy(), t.detach().numpy()), f"{name}: not torch's draws"
    assert cygrad.rand(3).numpy().tolist() == torch.rand(3).numpy().tolist()  # still in step


def test_parameter_layout_is_torchs():
    torch = _torch()
    theirs, ours = torch.nn.LSTM(3, 4, 2, bidirectional=True), nn.LSTM(3, 4, 2,
                                                                      bidirectional=True)
    assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert ours._flat_weights_names == theirs._flat_weights_names
    assert [[p.shape for p in ps] for ps in ours.all_weights] == \
        [[p.shape for p in ps] for ps in theirs.all_weights]
    assert all(p is ours.get_parameter(n) for ps, ns in zip(ours.all_weights, ours._all_weights)
               for p, n in zip(ps, ns))
    assert ours.flatten_parameters() is None
    gru = nn.GRU(3, 4, bias=False)
    assert [n for n, _ in gru.named_parameters()] == ["weight_ih_l0", "weight_hh_l0"]
    assert gru.bias is False and gru.mode == "GRU" and nn.RNN(3, 4).mode == "RNN_TANH"
    cell = nn.LSTMCell(3, 4, bias=False)
    assert cell.bias_ih is None and cell.bias_hh is None and cell.weight_ih.shape == (16, 3)


@pytest.mark.parametrize("module", [
    lambda m: m.nn.LSTM(10, 20, 2, bias=False, batch_first=True, dropout=0.5,
                        bidirectional=True),
    lambda m: m.nn.RNN(10, 20, nonlinearity="relu"), lambda m: m.nn.GRU(3, 4),
    lambda m: m.nn.RNN(3, 4, 3, "relu", False), lambda m: m.nn.RNNCell(3, 4, nonlinearity="relu"),
    lambda m: m.nn.LSTMCell(3, 4, bias=False), lambda m: m.nn.GRUCell(3, 4),
])
def test_repr_is_torchs(module):
    torch = _torch()
    assert repr(module(cygrad)) == repr(module(torch))


def test_dtype_conversion_and_default_dtype():
    lstm = nn.LSTM(3, 4).double()
    assert all(p.dtype == cygrad.float64 for p in lstm.parameters())
    out, (h, c) = lstm(cygrad.zeros(2, 1, 3, dtype=cygrad.float64))
    assert out.dtype == h.dtype == c.dtype == cygrad.float64
    cygrad.set_default_dtype(cygrad.float64)
    assert nn.GRUCell(3, 4).weight_ih.dtype == cygrad.float64


# ---------------------------------------------------------------------- dropout

@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_dropout_between_layers_draws_torchs_masks(kind, dtype):
    torch = _torch()
    theirs, ours = _pair(torch, kind, dtype, 3, 5, 3, dropout=0.4, bidirectional=True)
    x = RNG(4).standard_normal((6, 2, 3)).astype(dtype)
    tx, cx = torch.tensor(x, requires_grad=True), cygrad.tensor(x, requires_grad=True)
    torch.manual_seed(11)
    cygrad.manual_seed(11)
    t_out, c_out = _outputs(theirs(tx)), _outputs(ours(cx))
    for i, (c, t) in enumerate(zip(c_out, t_out)):
        _assert_close(c, t, dtype, f"output {i}")
    t_out[0].sum().backward()
    c_out[0].sum().backward()
    _assert_close(cx.grad, tx.grad, dtype, "gradient of the input")
    for name, t in theirs.named_parameters():
        _assert_close(ours.get_parameter(name).grad, t.grad, dtype, f"gradient of {name}")
    assert cygrad.rand(2).numpy().tolist() == torch.rand(2).numpy().tolist()


def test_dropout_only_while_training_and_not_after_the_last_layer():
    x = cygrad.tensor(RNG(5).standard_normal((4, 2, 3)))
    plain = nn.LSTM(3, 5, 2, dtype=cygrad.float64)
    dropped = nn.LSTM(3, 5, 2, dropout=0.5, dtype=cygrad.float64)
    dropped.load_state_dict(plain.state_dict())
    assert not np.array_equal(dropped(x)[0].numpy(), plain(x)[0].numpy())
    dropped.eval()
    assert np.array_equal(dropped(x)[0].numpy(), plain(x)[0].numpy())
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        single = nn.GRU(3, 5, dropout=0.5, dtype=cygrad.float64)
    reference = nn.GRU(3, 5, dtype=cygrad.float64)
    reference.load_state_dict(single.state_dict())
    assert single.training and np.array_equal(single(x)[0].numpy(), reference(x)[0].numpy())


def _program(torch):
    """A torch program, run with torch or with cygrad in its place: an LSTM with dropout and a
    linear head trained for three SGD steps."""
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 8, num_layers=2, batch_first=True, dropout=0.25)
    head = torch.nn.Linear(8, 1)
    params = list(lstm.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=0.1)
    x, y = torch.randn(4, 6, 3), torch.randn(4, 1)
    losses = []
    for _ in range(3):
        out, (h, c) = lstm(x)
        loss = ((head(out[:, -1]) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, [p.detach().numpy().copy() for p in params]


def test_torch_program_runs_with_cygrad_in_its_place():
    torch = _torch()
    t_losses, t_params = _program(torch)
    c_losses, c_params = _program(cygrad)
    np.testing.assert_allclose(c_losses, t_losses, rtol=1e-5)
    for c, t in zip(c_params, t_params):
        np.testing.assert_allclose(c, t, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------------- gradcheck

def _functional_call(module, values, *args):
    """module(*args) with its parameters replaced by values {name: tensor} for this call."""
    saved = dict(module._parameters)
    module._parameters.update(values)
    try:
        return module(*args)
    finally:
        module._parameters.update(saved)


@pytest.mark.parametrize("kind, kwargs", [
    ("LSTM", {"num_layers": 2, "bidirectional": True}), ("GRU", {"num_layers": 2}),
    ("GRU", {"bidirectional": True, "bias": False}),
    ("RNN", {"nonlinearity": "relu", "num_layers": 2}),
])
def test_gradcheck(kind, kwargs):
    cygrad.manual_seed(0)
    module = getattr(nn, kind)(2, 2, dtype=cygrad.float64, **kwargs)
    names = [n for n, _ in module.named_parameters()]
    states = (2 if kwargs.get("bidirectional") else 1) * kwargs.get("num_layers", 1)
    rng = RNG(6)
    x = cygrad.tensor(rng.standard_normal((3, 2, 2)), requires_grad=True)
    h0 = cygrad.tensor(rng.standard_normal((states, 2, 2)), requires_grad=True)
    c0 = cygrad.tensor(rng.standard_normal((states, 2, 2)), requires_grad=True)
    params = [cygrad.tensor(p.numpy(), requires_grad=True) for p in module.parameters()]

    def fn(x, h0, c0, *params):
        hx = (h0, c0) if kind == "LSTM" else h0
        outs = _outputs(_functional_call(module, dict(zip(names, params)), x, hx))
        return cygrad.cat([o.flatten() for o in outs])

    assert cygrad.gradcheck(fn, x, h0, c0, *params)


@pytest.mark.parametrize("kind", ["LSTMCell", "GRUCell", "RNNCell"])
def test_cell_gradcheck(kind):
    cygrad.manual_seed(1)
    cell = getattr(nn, kind)(3, 2, dtype=cygrad.float64)
    names = [n for n, _ in cell.named_parameters()]
    rng = RNG(7)
    x = cygrad.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    h = cygrad.tensor(rng.standard_normal((2, 2)), requires_grad=True)
    c = cygrad.tensor(rng.standard_normal((2, 2)), requires_grad=True)
    params = [cygrad.tensor(p.numpy(), requires_grad=True) for p in cell.parameters()]

    def fn(x, h, c, *params):
        hx = (h, c) if kind == "LSTMCell" else h
        outs = _outputs(_functional_call(cell, dict(zip(names, params)), x, hx))
        return cygrad.cat([o.flatten() for o in outs])

    assert cygrad.gradcheck(fn, x, h, c, *params)


# ---------------------------------------------------------------------- exactness

@pytest.fixture
def parallel_paths(monkeypatch):
    """The cython backend, with small arrays sent down the kernels' parallel paths."""
    if "cython" not in cygrad.backend.available():
        pytest.skip("the exact backend is not built")
    from cygrad._C import elementwise, gemm, reduce

    monkeypatch.setattr(gemm, "serial_macs", 0)
    monkeypatch.setattr(elementwise, "cheap_serial_below", 1)
    monkeypatch.setattr(elementwise, "costly_serial_below", 1)
    monkeypatch.setattr(reduce, "serial_below", 1)
    cygrad.backend.use("cython")


def _tie(array, hidden, j, k, blocks, rows=True, column_blocks=0):
    """Make units j and k identical in array: rows (in each of `blocks` gate blocks) and, for
    `column_blocks` > 0, columns j, k of each block of `hidden` columns."""
    if rows:
        for b in range(blocks):
            array[b * hidden + k] = array[b * hidden + j]
    for b in range(column_blocks):
        array[..., b * hidden + k] = array[..., b * hidden + j]


def _run_tied(kind, dtype, num_layers, threads, hidden=6, j=1, k=4):
    cygrad.set_num_threads(threads)
    cygrad.manual_seed(3)
    module = getattr(nn, kind)(3, hidden, num_layers, bidirectional=True, dtype=dtype)
    blocks = GATES[kind]
    for name, p in module.named_parameters():
        a = p.numpy()
        columns = 1 if name.startswith("weight_hh") else (
            2 if name.startswith("weight_ih") and not name.startswith("weight_ih_l0") else 0)
        _tie(a, hidden, j, k, blocks, column_blocks=columns)
    rng = RNG(8)
    states = 2 * num_layers
    x = cygrad.tensor(rng.standard_normal((7, 5, 3)).astype(dtype), requires_grad=True)
    hx = []
    for _ in range(2 if kind == "LSTM" else 1):
        h = rng.standard_normal((states, 5, hidden)).astype(dtype)
        _tie(h, hidden, j, k, 0, rows=False, column_blocks=1)
        hx.append(cygrad.tensor(h, requires_grad=True))
    outs = _outputs(module(x, tuple(hx) if kind == "LSTM" else hx[0]))
    grads = []
    for o, blocks_out in zip(outs, [2, 1, 1]):
        g = rng.standard_normal(tuple(o.shape)).astype(dtype)
        _tie(g, hidden, j, k, 0, rows=False, column_blocks=blocks_out)
        grads.append(cygrad.tensor(g))
    cygrad.autograd.backward(outs, grads)
    result = {f"output {i}": o.numpy() for i, o in enumerate(outs)}
    result.update({f"grad hx[{i}]": h.grad.numpy() for i, h in enumerate(hx)})
    result["grad input"] = x.grad.numpy()
    result.update({f"grad {n}": p.grad.numpy() for n, p in module.named_parameters()})
    return result


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_tied_units_stay_bitwise_tied(kind, num_layers, dtype, parallel_paths):
    """Hidden units j and k identical (their rows in every gate block of the weights and
    biases, their weight_hh columns and their initial states): h[..., j] and h[..., k] are
    bitwise equal at every step and in both directions, and so are their parameter gradients
    (rows, and weight_hh columns); the thread count changes no bit."""
    hidden, j, k, blocks = 6, 1, 4, GATES[kind]
    runs = [_run_tied(kind, dtype, num_layers, threads) for threads in (1, 2)]
    for run in runs:
        out = run["output 0"]  # (L, N, 2 * hidden): every step of the last layer
        for d in range(2):
            assert np.array_equal(out[..., d * hidden + j], out[..., d * hidden + k])
            assert not np.array_equal(out[..., d * hidden + j], out[..., d * hidden])
        for name, value in run.items():
            if name.startswith(("output 1", "output 2", "grad hx")):  # h_n, c_n and theirs
                assert np.array_equal(value[..., j], value[..., k]), name
            if name.startswith("grad weight") or name.startswith("grad bias"):
                for b in range(blocks):
                    assert np.array_equal(value[b * hidden + j], value[b * hidden + k]), name
            if name.startswith("grad weight_hh"):
                assert np.array_equal(value[:, j], value[:, k]), name
    for name in runs[0]:
        assert np.array_equal(runs[0][name], runs[1][name]), f"{name}: threads change bits"


# ---------------------------------------------------------------------- errors

ERRORS = [
    ("input size", True, lambda m: m.nn.LSTM(10, 20)(m.zeros(5, 3, 7))),
    ("gru input size", True, lambda m: m.nn.GRU(10, 20)(m.zeros(5, 3, 7))),
    ("4-D input", True, lambda m: m.nn.LSTM(10, 20)(m.zeros(5, 3, 10, 1))),
    ("1-D input", True, lambda m: m.nn.GRU(10, 20)(m.zeros(10))),
    ("rnn 4-D input", True, lambda m: m.nn.RNN(10, 20)(m.zeros(5, 3, 10, 1))),
    ("input dtype", False, lambda m: m.nn.LSTM(10, 20)(m.zeros(5, 3, 10, dtype=m.float64))),
    ("integer input", False, lambda m: m.nn.GRU(10, 20)(m.zeros(5, 3, 10, dtype=m.int64))),
    ("h size", True, lambda m: m.nn.LSTM(10, 20)(m.zeros(5, 3, 10),
                                                 (m.zeros(1, 3, 19), m.zeros(1, 3, 20)))),
    ("c size", True, lambda m: m.nn.LSTM(10, 20)(m.zeros(5, 3, 10),
                                                 (m.zeros(1, 3, 20), m.zeros(1, 2, 20)))),
    ("hx 2-D, batched", True, lambda m: m.nn.LSTM(10, 20)(m.zeros(5, 3, 10),
                                                          (m.zeros(3, 20), m.zeros(1, 3, 20)))),
    ("hx 3-D, unbatched", True, lambda m: m.nn.LSTM(10, 20)(
        m.zeros(5, 10), (m.zeros(1, 3, 20), m.zeros(1, 3, 20)))),
    ("unbatched h size", True, lambda m: m.nn.LSTM(10, 20)(m.zeros(5, 10),
                                                           (m.zeros(1, 19), m.zeros(1, 20)))),
    ("lstm hx a tensor", False, lambda m: m.nn.LSTM(10, 20)(m.zeros(5, 3, 10),
                                                            m.zeros(1, 3, 20))),
    ("lstm three states", True, lambda m: m.nn.LSTM(10, 20)(m.zeros(2, 3, 10),
                                                            (m.zeros(1, 3, 20),) * 3)),
    ("gru h size", True, lambda m: m.nn.GRU(10, 20)(m.zeros(5, 3, 10), m.zeros(1, 3, 19))),
    ("rnn h layers", True, lambda m: m.nn.RNN(10, 20)(m.zeros(5, 3, 10), m.zeros(2, 3, 20))),
    ("gru hx 2-D, batched", True, lambda m: m.nn.GRU(10, 20)(m.zeros(5, 3, 10),
                                                             m.zeros(3, 20))),
    ("gru hx 3-D, unbatched", True, lambda m: m.nn.GRU(10, 20)(m.zeros(5, 10),
                                                               m.zeros(1, 3, 20))),
    ("gru hx a tuple", False, lambda m: m.nn.GRU(10, 20)(m.zeros(5, 3, 10),
                                                         (m.zeros(1, 3, 20),))),
    ("gru hx dtype", False, lambda m: m.nn.GRU(10, 20)(m.zeros(5, 3, 10),
                                                       m.zeros(1, 3, 20, dtype=m.float64))),
    ("lstm hx dtype", False, lambda m: m.nn.LSTM(10, 20)(
        m.zeros(5, 3, 10), (m.zeros(1, 3, 20, dtype=m.float64), m.zeros(1, 3, 20)))),
    ("empty sequence", True, lambda m: m.nn.GRU(10, 20)(m.zeros(0, 3, 10))),
    ("empty sequence, batch_first", True,
     lambda m: m.nn.LSTM(10, 20, batch_first=True)(m.zeros(3, 0, 10))),
    ("unknown nonlinearity", True, lambda m: m.nn.RNN(10, 20, nonlinearity="sigmoid")),
    ("rnn proj_size", True, lambda m: m.nn.RNN(10, 20, proj_size=0)),
    ("gru proj_size", True, lambda m: m.nn.GRU(10, 20, proj_size=2)),
    ("proj_size >= hidden_size", True, lambda m: m.nn.LSTM(10, 20, proj_size=20)),
    ("negative proj_size", True, lambda m: m.nn.LSTM(10, 20, proj_size=-1)),
    ("dropout > 1", True, lambda m: m.nn.LSTM(10, 20, dropout=1.5)),
    ("dropout a bool", True, lambda m: m.nn.GRU(10, 20, dropout=True)),
    ("dropout a str", True, lambda m: m.nn.RNN(10, 20, dropout="0.5")),
    ("dropout nan", True, lambda m: m.nn.LSTM(10, 20, dropout=math.nan)),
    ("bias an int", True, lambda m: m.nn.LSTM(10, 20, bias=1)),
    ("batch_first an int", True, lambda m: m.nn.GRU(10, 20, batch_first=1)),
    ("input_size a float", True, lambda m: m.nn.LSTM(10.0, 20)),
    ("hidden_size a float", True, lambda m: m.nn.RNN(10, 20.0)),
    ("input_size 0", True, lambda m: m.nn.LSTM(0, 20)),
    ("hidden_size 0", True, lambda m: m.nn.GRU(10, 0)),
    ("num_layers 0", True, lambda m: m.nn.LSTM(10, 20, 0)),
    ("num_layers a float", True, lambda m: m.nn.LSTM(10, 20, 2.0)),
    ("unknown argument", False, lambda m: m.nn.LSTM(10, 20, foo=1)),
    ("integer dtype", False, lambda m: m.nn.LSTM(10, 20, dtype=m.int64)),
    ("cell input size", True, lambda m: m.nn.LSTMCell(10, 20)(m.zeros(3, 7))),
    ("cell 3-D input", True, lambda m: m.nn.LSTMCell(10, 20)(m.zeros(3, 7, 1))),
    ("cell 0-D input", True, lambda m: m.nn.RNNCell(3, 4)(m.zeros(()))),
    ("cell hx 3-D", True, lambda m: m.nn.LSTMCell(10, 20)(
        m.zeros(3, 10), (m.zeros(3, 20, 1), m.zeros(3, 20)))),
    ("cell h size", True, lambda m: m.nn.LSTMCell(10, 20)(
        m.zeros(3, 10), (m.zeros(3, 19), m.zeros(3, 20)))),
    ("cell c batch", True, lambda m: m.nn.LSTMCell(10, 20)(
        m.zeros(3, 10), (m.zeros(3, 20), m.zeros(2, 20)))),
    ("cell 1-D hx, batched", True, lambda m: m.nn.GRUCell(10, 20)(m.zeros(3, 10),
                                                                  m.zeros(20))),
    ("cell 1-D hx of the batch size", False, lambda m: m.nn.RNNCell(3, 4)(m.zeros(4, 3),
                                                                          m.zeros(4))),
    ("cell 2-D hx, unbatched", True, lambda m: m.nn.GRUCell(10, 20)(m.zeros(10),
                                                                    m.zeros(1, 20))),
    ("gru cell hidden 3-D", True, lambda m: m.nn.GRUCell(10, 20)(m.zeros(3, 10),
                                                                 m.zeros(3, 20, 1))),
    ("cell input dtype", False, lambda m: m.nn.GRUCell(10, 20)(m.zeros(3, 10,
                                                                       dtype=m.float64))),
    ("cell hx dtype", False, lambda m: m.nn.LSTMCell(10, 20)(
        m.zeros(3, 10), (m.zeros(3, 20, dtype=m.float64), m.zeros(3, 20)))),
    ("lstm cell three states", True, lambda m: m.nn.LSTMCell(10, 20)(
        m.zeros(3, 10), (m.zeros(3, 20),) * 3)),
    ("lstm cell hx a tensor", True, lambda m: m.nn.LSTMCell(10, 20)(m.zeros(3, 10),
                                                                    m.zeros(3, 20))),
    ("cell nonlinearity", True, lambda m: m.nn.RNNCell(10, 20, nonlinearity="foo")(
        m.zeros(3, 10))),
    ("cell negative size", False, lambda m: m.nn.GRUCell(3, -1)),
    ("cell size a float", False, lambda m: m.nn.RNNCell(10.0, 20)),
]


@pytest.mark.parametrize("same_message, fn", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors_are_torchs(same_message, fn):
    """torch's exception type; where the text names nothing library-specific, its text."""
    torch = _torch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Exception) as theirs:
            fn(torch)
        with pytest.raises(Exception) as ours:
            fn(cygrad)
    kind = next(k for k in (IndexError, ValueError, TypeError, NotImplementedError,
                            RuntimeError, AttributeError) if isinstance(theirs.value, k))
    assert isinstance(ours.value, kind), f"{ours.value!r}, torch raises {theirs.value!r}"
    if same_message:
        assert str(ours.value) == str(theirs.value)


def test_input_size_error_text():
    with pytest.raises(RuntimeError, match="input.size\\(-1\\) must be equal to input_size. "
                                           "Expected 10, got 7"):
        nn.LSTM(10, 20)(cygrad.zeros(5, 3, 7))


@pytest.mark.parametrize("config", ["batched", "batched-hx", "layers2-bidirectional-hx",
                                    "bidirectional-batch_first-nobias-hx",
                                    "unbatched-layers2-hx"])
def test_lstm_projection_matches_torch(config, dtype):
    torch = _torch()
    kwargs, batched, given = CONFIGS[config]
    kwargs = {**kwargs, "proj_size": 3}
    input_size, hidden, length, batch = 4, 5, 3, 2
    rng = RNG(8)
    shape = ((batch, length, input_size) if kwargs.get("batch_first") else
             (length, batch, input_size)) if batched else (length, input_size)
    x = rng.standard_normal(shape).astype(dtype)
    hx = None
    if given:
        states = (2 if kwargs.get("bidirectional") else 1) * kwargs.get("num_layers", 1)
        lead = (states, batch) if batched else (states,)
        hx = (rng.standard_normal(lead + (3,)).astype(dtype),
              rng.standard_normal(lead + (hidden,)).astype(dtype))
    _compare_with_torch(torch, "LSTM", dtype, (input_size, hidden), kwargs, x, hx)


def test_lstm_projection_layout_init_gradcheck_and_errors():
    torch = _torch()
    torch.manual_seed(4)
    theirs = torch.nn.LSTM(3, 5, 2, bidirectional=True, proj_size=2)
    cygrad.manual_seed(4)
    ours = nn.LSTM(3, 5, 2, bidirectional=True, proj_size=2)
    assert repr(ours) == repr(theirs)
    assert ours._flat_weights_names == theirs._flat_weights_names
    for (name, t), (cname, c) in zip(theirs.named_parameters(), ours.named_parameters()):
        assert cname == name and np.array_equal(c.numpy(), t.detach().numpy()), name
    out, (h, c) = ours(cygrad.zeros(4, 3, 3))
    assert out.shape == (4, 3, 4) and h.shape == (4, 3, 2) and c.shape == (4, 3, 5)
    for bad in ((cygrad.zeros(4, 3, 5), cygrad.zeros(4, 3, 5)),  # h with H, not proj_size
                (cygrad.zeros(4, 3, 2), cygrad.zeros(4, 3, 2))):  # c with proj_size
        t_bad = tuple(torch.zeros(*b.shape) for b in bad)
        with pytest.raises(RuntimeError) as theirs_err:
            theirs(torch.zeros(4, 3, 3), t_bad)
        with pytest.raises(RuntimeError) as ours_err:
            ours(cygrad.zeros(4, 3, 3), bad)
        assert str(ours_err.value) == str(theirs_err.value)
    cygrad.manual_seed(2)
    module = nn.LSTM(2, 3, proj_size=2, dtype=cygrad.float64)
    names = [n for n, _ in module.named_parameters()]
    rng = RNG(9)
    x = cygrad.tensor(rng.standard_normal((3, 2, 2)), requires_grad=True)
    h0 = cygrad.tensor(rng.standard_normal((1, 2, 2)), requires_grad=True)
    c0 = cygrad.tensor(rng.standard_normal((1, 2, 3)), requires_grad=True)
    params = [cygrad.tensor(p.numpy(), requires_grad=True) for p in module.parameters()]

    def fn(x, h0, c0, *params):
        outs = _outputs(_functional_call(module, dict(zip(names, params)), x, (h0, c0)))
        return cygrad.cat([o.flatten() for o in outs])

    assert cygrad.gradcheck(fn, x, h0, c0, *params)


def test_other_devices_are_refused():
    assert nn.LSTM(3, 4, device="cpu").weight_ih_l0.shape == (16, 3)
    with pytest.raises(RuntimeError, match="CPU only"):
        nn.GRU(3, 4, device="cuda")
    with pytest.raises(RuntimeError, match="CPU only"):
        nn.GRUCell(3, 4, device="cuda")


def test_base_classes_are_torchs():
    """nn.RNNBase and nn.RNNCellBase: the bases an init loop checks with isinstance."""
    torch = pytest.importorskip("torch")
    for lib in (cygrad.nn, torch.nn):
        assert isinstance(lib.LSTM(2, 3), lib.RNNBase) and isinstance(lib.GRU(2, 3),
                                                                      lib.RNNBase)
        assert isinstance(lib.GRUCell(2, 3), lib.RNNCellBase)
        assert not isinstance(lib.LSTMCell(2, 3), lib.RNNBase)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
def test_a_layer_projects_its_inputs_at_once_with_the_bits_of_its_cell(mode):
    """The layer multiplies every step's input by W_ih in one product (torch's layers do
    too); each output has the bits of the cell run step by step (an element's chain does not
    depend on the rows beside it)."""
    cygrad.manual_seed(0)
    layer = getattr(cygrad.nn, mode)(5, 7)
    cell = getattr(cygrad.nn, mode + "Cell")(5, 7)
    with cygrad.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(getattr(layer, name + "_l0"))
    x = cygrad.tensor(np.random.default_rng(2).normal(size=(6, 3, 5)).astype(np.float32))
    y, _ = layer(x)
    state = None
    for t in range(6):
        state = cell(x[t], state)
        h = state[0] if mode == "LSTM" else state
        assert np.array_equal(y[t].detach().numpy(), h.detach().numpy())
