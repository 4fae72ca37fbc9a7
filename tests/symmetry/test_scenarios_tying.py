"""S7: a parameter used in two places. Its gradient is the sum of its uses (bitwise: the sum of
the gradients of two untied copies), agrees with finite differences, it is listed once by
parameters(), named under both uses by nn.tied_parameters, and one optimizer step moves it once."""

import numpy as np
import pytest
from symmetry_helpers import THREADS, exact

import cygrad
from cygrad import nn, optim, tensor
from cygrad.nn import functional as F


class TiedDecoder(nn.Module):
    """y = z @ W + b with W the encoder's (hidden, features) weight: the transposed use."""

    def __init__(self, weight, dtype):
        super().__init__()
        self.weight = weight
        self.bias = nn.Parameter(np.linspace(-0.1, 0.1, weight.shape[1]).astype(dtype))

    def forward(self, z):
        return z @ self.weight + self.bias


class Autoencoder(nn.Module):
    def __init__(self, features, hidden, dtype, tied=True):
        super().__init__()
        self.encoder = nn.Linear(features, hidden, dtype=dtype)
        weight = self.encoder.weight if tied else nn.Parameter(self.encoder.weight.numpy())
        self.decoder = TiedDecoder(weight, dtype)

    def forward(self, x):
        return self.decoder(self.encoder(x).tanh())


def twice(hidden, dtype, tied=True):
    """One Linear applied twice (tied), or followed by an identical copy of itself."""
    layer = nn.Linear(hidden, hidden, dtype=dtype)
    second = layer
    if not tied:
        second = nn.Linear(hidden, hidden, dtype=dtype)
        second.weight.numpy()[...] = layer.weight.numpy()
        second.bias.numpy()[...] = layer.bias.numpy()
    return nn.Sequential(layer, nn.Tanh(), second)


def backward_mse(model, x):
    loss = F.mse_loss(model(x), x)
    model.zero_grad()
    loss.backward()


def test_tied_parameter_is_listed_once_and_named_under_both_uses():
    model = Autoencoder(5, 3, "float64")
    assert [name for name, _ in model.named_parameters()] == [
        "encoder.weight", "encoder.bias", "decoder.bias"]
    assert len(list(model.parameters())) == 3
    assert nn.tied_parameters(model) == {"encoder.weight": ["encoder.weight", "decoder.weight"]}
    model = twice(4, "float64")
    assert len(list(model.parameters())) == 2
    assert nn.tied_parameters(model) == {"0.weight": ["0.weight", "2.weight"],
                                         "0.bias": ["0.bias", "2.bias"]}
    assert nn.tied_parameters(twice(4, "float64", tied=False)) == {}


def test_gradcheck_of_the_transposed_use():
    rng = np.random.default_rng(0)
    x = tensor(rng.standard_normal((6, 5)), dtype="float64")
    W = tensor(rng.standard_normal((3, 5)) * 0.5, dtype="float64", requires_grad=True)
    b1 = tensor(rng.standard_normal(3), dtype="float64", requires_grad=True)
    b2 = tensor(rng.standard_normal(5), dtype="float64", requires_grad=True)

    def autoencode(W, b1, b2):
        return F.linear(F.linear(x, W, b1).tanh(), W.T, b2)

    assert cygrad.gradcheck(autoencode, W, b1, b2)


def test_gradcheck_of_one_layer_applied_twice():
    rng = np.random.default_rng(1)
    x = tensor(rng.standard_normal((4, 3)), dtype="float64")
    W = tensor(rng.standard_normal((3, 3)) * 0.7, dtype="float64", requires_grad=True)
    b = tensor(rng.standard_normal(3), dtype="float64", requires_grad=True)

    def apply_twice(W, b):
        return F.linear(F.linear(x, W, b).sigmoid(), W, b)

    assert cygrad.gradcheck(apply_twice, W, b)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("shape", [(5, 3), (64, 257)])
def test_autoencoder_gradient_is_the_sum_of_both_uses(shape, dtype, threads):
    features, hidden = shape
    cygrad.manual_seed(3)
    tied = Autoencoder(features, hidden, dtype)
    untied = Autoencoder(features, hidden, dtype, tied=False)
    for p, q in zip(tied.parameters(), [untied.encoder.weight, untied.encoder.bias,
                                         untied.decoder.bias]):
        q.numpy()[...] = p.numpy()
    untied.decoder.weight.numpy()[...] = tied.encoder.weight.numpy()
    x = tensor(np.random.default_rng(0).standard_normal((130, features)), dtype=dtype)
    with exact(threads):
        backward_mse(tied, x)
        backward_mse(untied, x)
    W = tied.encoder.weight
    assert W.grad.dtype == W.numpy().dtype
    assert np.array_equal(W.grad, untied.encoder.weight.grad + untied.decoder.weight.grad)
    assert np.array_equal(tied.decoder.bias.grad, untied.decoder.bias.grad)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("hidden", [3, 257])
def test_layer_applied_twice_gradient_is_the_sum_of_both_uses(hidden, dtype, threads):
    cygrad.manual_seed(4)
    tied, untied = twice(hidden, dtype), twice(hidden, dtype, tied=False)
    untied[0].weight.numpy()[...] = tied[0].weight.numpy()
    untied[0].bias.numpy()[...] = tied[0].bias.numpy()
    untied[2].weight.numpy()[...] = tied[0].weight.numpy()
    untied[2].bias.numpy()[...] = tied[0].bias.numpy()
    x = tensor(np.random.default_rng(1).standard_normal((130, hidden)), dtype=dtype)
    with exact(threads):
        backward_mse(tied, x)
        backward_mse(untied, x)
    for name in ("weight", "bias"):
        total = getattr(untied[0], name).grad + getattr(untied[2], name).grad
        assert np.array_equal(getattr(tied[0], name).grad, total), name


@pytest.mark.parametrize("make", [lambda d: Autoencoder(6, 4, d), lambda d: twice(4, d)],
                         ids=["autoencoder", "twice"])
@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_one_step_updates_a_tied_parameter_once(make, opt_name, dtype):
    cygrad.manual_seed(5)
    model = make(dtype)
    shared = next(iter(model.parameters()))
    x = tensor(np.random.default_rng(2).standard_normal((8, 6 if isinstance(model, Autoencoder)
                                                          else 4)), dtype=dtype)
    lr = 0.1
    opt = optim.SGD(model.parameters(), lr=lr) if opt_name == "sgd" else optim.Adam(
        model.parameters(), lr=lr)
    before = shared.numpy().copy()
    with exact(2):
        backward_mse(model, x)
        grad = shared.grad.numpy().copy()
        opt.step()
    if opt_name == "sgd":
        expected = before - dtype.type(lr) * grad
    else:  # Adam's first step moves every element by lr * g / (|g| + eps') ~ lr * sign(g)
        m, v = (1 - 0.9) * grad.astype(np.float64), (1 - 0.999) * grad.astype(np.float64) ** 2
        step = lr / (1 - 0.9) * m / (np.sqrt(v) / np.sqrt(1 - 0.999) + 1e-8)
        expected = before - step
        assert np.allclose(shared.numpy(), expected, rtol=1e-5, atol=0)
        expected = shared.numpy()  # the exact rounding is optim's business, not this test's
    assert np.array_equal(shared.numpy(), expected)
    # torch's state: Adam's per parameter (the tied one once), none for plain SGD
    assert len(opt.state) == (len(list(model.parameters())) if opt_name == "adam" else 0)
    if isinstance(model, Autoencoder):
        assert model.decoder.weight is model.encoder.weight
    else:
        assert model[2] is model[0]
