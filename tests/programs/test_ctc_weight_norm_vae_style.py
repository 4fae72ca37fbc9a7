"""A small speech-style model written once for torch and cygrad: a weight-normed Conv1d
(nn.utils.parametrizations.weight_norm), a spectral-normed Linear, log_softmax over the
classes, F.ctc_loss against padded label sequences, plus a VAE-style Gaussian posterior whose
KL to a standard normal (torch.distributions.kl_divergence over an Independent Normal) is
added in; Adam steps. From the same weights, cygrad's losses and parameters track torch's."""

import numpy as np
import pytest

import cygrad


def build(lib):
    nn = lib.nn
    P = nn.utils.parametrizations

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = P.weight_norm(nn.Conv1d(4, 8, 3, padding=1))
            self.head = P.spectral_norm(nn.Linear(8, 5))
            self.mu = nn.Linear(8, 2)
            self.log_sigma = nn.Linear(8, 2)

        def forward(self, x):
            h = lib.tanh(self.conv(x)).transpose(1, 2)  # (N, T, 8)
            log_probs = self.head(h).log_softmax(-1).transpose(0, 1)  # (T, N, C)
            pooled = h.mean(1)
            posterior = lib.distributions.Independent(
                lib.distributions.Normal(self.mu(pooled), self.log_sigma(pooled).exp()), 1)
            return log_probs, posterior

    return Model().double()


def test_training_tracks_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 10))
    targets = np.array([[1, 2, 2, 3], [4, 1, 0, 0], [3, 3, 1, 0]])
    target_lengths, input_lengths = [4, 2, 3], [10, 9, 10]
    torch.manual_seed(0)
    theirs = build(torch)
    ours = build(cygrad)
    ours.load_state_dict({k: v.detach().numpy().copy()
                          for k, v in theirs.state_dict().items()})
    assert list(ours.state_dict()) == list(theirs.state_dict())
    runs = {}
    for lib, model in ((torch, theirs), (cygrad, ours)):
        opt = lib.optim.Adam(model.parameters(), lr=0.01)
        prior = lib.distributions.Independent(
            lib.distributions.Normal(lib.zeros(3, 2, dtype=lib.float64),
                                     lib.ones(3, 2, dtype=lib.float64)), 1)
        losses = []
        for _ in range(6):
            opt.zero_grad()
            log_probs, posterior = model(lib.tensor(x))
            loss = lib.nn.functional.ctc_loss(log_probs, lib.tensor(targets),
                                              lib.tensor(input_lengths),
                                              lib.tensor(target_lengths))
            loss = loss + 0.1 * lib.distributions.kl_divergence(posterior, prior).mean()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        runs[lib.__name__] = (losses, {k: v.detach().numpy().copy()
                                       for k, v in model.state_dict().items()})
    np.testing.assert_allclose(runs["cygrad"][0], runs["torch"][0], rtol=1e-9)
    for key, value in runs["torch"][1].items():
        np.testing.assert_allclose(runs["cygrad"][1][key], value, rtol=1e-7, atol=1e-10,
                                   err_msg=key)
