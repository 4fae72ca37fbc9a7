"""Tied parameters (S7): one Parameter in several places is listed once, updated once per step,
and its gradient is the sum over its uses (checked against finite differences)."""

import numpy as np
import pytest

import cygrad
from cygrad import nn, optim
from cygrad.nn import functional as F


class TiedAutoencoder(nn.Module):
    """x -> tanh(W x + b) -> W.T h + c: the decoder reuses the encoder's weight transposed."""

    def __init__(self, n_in, n_hidden, dtype=None):
        super().__init__()
        self.encoder = nn.Linear(n_in, n_hidden, dtype=dtype)
        self.decoder_bias = nn.Parameter(np.zeros(n_in, dtype=self.encoder.weight.dtype))

    def forward(self, x):
        return F.linear(self.encoder(x).tanh(), self.encoder.weight.T, self.decoder_bias)


def low_rank_data(n=256, n_in=10, rank=3, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return (0.15 * rng.standard_normal((n, rank)) @ rng.standard_normal((rank, n_in))).astype(dtype)


def square_pair():
    """Two square layers sharing one weight (decoder.weight = encoder.weight)."""
    encoder, decoder = nn.Linear(4, 4, dtype="float64"), nn.Linear(4, 4, dtype="float64")
    decoder.weight = encoder.weight
    return nn.Sequential(encoder, nn.Tanh(), decoder)


# ---------------------------------------------------------------------- bookkeeping

def test_tied_weight_is_listed_once_with_all_its_names():
    model = square_pair()
    params = list(model.parameters())
    assert len(params) == 3 and params[0] is model[2].weight
    assert nn.tied_parameters(model) == {"0.weight": ["0.weight", "2.weight"]}
    assert nn.tied_parameters(TiedAutoencoder(5, 2)) == {}  # used twice, named once


def test_tied_weight_is_updated_once_per_step(backend):
    model = square_pair()
    x = cygrad.tensor(np.random.default_rng(0).standard_normal((6, 4)))
    before = model[0].weight.numpy().copy()
    opt = optim.SGD(model.parameters(), lr=0.1)
    model(x).sum().backward()
    grad = model[0].weight.grad.numpy().copy()
    opt.step()
    np.testing.assert_array_equal(model[0].weight.numpy(), before - 0.1 * grad)
    assert model[2].weight.numpy() is model[0].weight.numpy()


# ---------------------------------------------------------------------- gradient = sum over uses

def test_assigned_tie_gradcheck_and_sum_over_uses(backend):
    model = square_pair()
    enc, dec = model[0], model[2]
    x = cygrad.tensor(np.random.default_rng(1).standard_normal((5, 4)))

    def fn(w, b1, b2):
        return F.linear(F.linear(x, w, b1).tanh(), w, b2)

    cygrad.gradcheck(fn, enc.weight, enc.bias, dec.bias)
    model(x).sum().backward()
    tied = enc.weight.grad
    # the same network with the two uses untied: one copy of W per use
    w1, w2 = (cygrad.tensor(enc.weight.numpy(), requires_grad=True) for _ in range(2))
    F.linear(F.linear(x, w1, enc.bias).tanh(), w2, dec.bias).sum().backward()
    np.testing.assert_array_equal(tied, w1.grad + w2.grad)


def test_transposed_tie_gradcheck_and_sum_over_uses(backend, dtype):
    cygrad.manual_seed(0)
    ae = TiedAutoencoder(6, 3, dtype="float64")
    x = cygrad.tensor(low_rank_data(8, 6, dtype=np.float64))
    target = low_rank_data(8, 6, dtype=np.float64, seed=1)

    def loss_fn(w, b, c):
        return F.mse_loss(F.linear(F.linear(x, w, b).tanh(), w.T, c), target)

    cygrad.gradcheck(loss_fn, ae.encoder.weight, ae.encoder.bias, ae.decoder_bias)

    ae = TiedAutoencoder(6, 3, dtype=dtype)
    x = cygrad.tensor(x.numpy(), dtype=dtype)
    F.mse_loss(ae(x), target).backward()
    tied = ae.encoder.weight.grad
    assert tied.dtype == dtype
    w = ae.encoder.weight.numpy()
    w_enc, w_dec = (cygrad.tensor(w, requires_grad=True) for _ in range(2))
    hidden = F.linear(x, w_enc, ae.encoder.bias).tanh()
    F.mse_loss(F.linear(hidden, w_dec.T, ae.decoder_bias), target).backward()
    np.testing.assert_array_equal(tied, w_enc.grad + w_dec.grad)


def test_layer_applied_twice_gradcheck(backend):
    layer = nn.Linear(3, 3, dtype="float64")
    model = nn.Sequential(layer, nn.Sigmoid(), layer)
    assert len(list(model.parameters())) == 2
    x = cygrad.tensor(np.random.default_rng(2).standard_normal((4, 3)))
    cygrad.gradcheck(lambda w, b: F.linear(F.linear(x, w, b).sigmoid(), w, b),
                     layer.weight, layer.bias)


# ---------------------------------------------------------------------- training

def test_tied_autoencoder_trains(backend):
    cygrad.manual_seed(0)
    X = low_rank_data()
    ae = TiedAutoencoder(10, 3)
    opt = optim.Adam(ae.parameters(), lr=0.02)
    x = cygrad.tensor(X)
    losses = []
    for _ in range(150):
        loss = F.mse_loss(ae(x), X)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0], losses[::15]
    assert losses[-1] < 0.05 * float(np.mean(X ** 2))  # reconstructs, not just shrinks
    assert ae.encoder.weight.grad is not None and len(opt.param_groups[0]["params"]) == 3


@pytest.mark.parametrize("threads", [1, 2])
def test_tied_update_keeps_symmetric_units_tied(threads):
    """Exactness through a transposed tie: two hidden units with equal rows stay equal."""
    if "cython" not in cygrad.backend.available():
        pytest.skip("the exact backend is not built")
    cygrad.backend.use("cython")
    cygrad.set_num_threads(threads)
    cygrad.manual_seed(0)
    ae = TiedAutoencoder(10, 4)
    w = ae.encoder.weight.numpy()
    w[3], ae.encoder.bias.numpy()[3] = w[1], ae.encoder.bias.numpy()[1]
    X = low_rank_data()
    opt = optim.SGD(ae.parameters(), lr=0.5)
    for _ in range(5):
        opt.zero_grad()
        F.mse_loss(ae(cygrad.tensor(X)), X).backward()
        opt.step()
    assert np.array_equal(w[1], w[3]) and not np.array_equal(w[0], w[1])
