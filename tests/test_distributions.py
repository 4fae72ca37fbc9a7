"""cygrad.distributions (Categorical, Normal, Bernoulli, Uniform): log_prob, entropy, cdf,
moments and gradients against torch.distributions (skipped without torch), sampling laws and
reproducibility under manual_seed, rsample's reparametrised gradient, argument and support
checks, and pytorch/examples' REINFORCE update (a Categorical policy) in step with torch's."""

import numpy as np
import pytest

import cygrad
from cygrad import distributions as D


def _r(seed):
    return np.random.default_rng(seed)


def _both(make, method, *values):
    torch = pytest.importorskip("torch")
    out = []
    for lib in (cygrad, torch):
        params, dist = make(lib)
        args = [lib.tensor(v) for v in values]
        result = getattr(dist, method)(*args)
        result.sum().backward()
        out.append((result.detach().numpy(),
                    [None if p.grad is None else p.grad.numpy() for p in params]))
    (got, ggot), (want, gwant) = out
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    for a, b in zip(ggot, gwant, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


LOGITS = _r(0).standard_normal((4, 5))


def _categorical(use_probs):
    def make(lib):
        raw = lib.tensor(np.exp(LOGITS) if use_probs else LOGITS, requires_grad=True)
        dist = (lib.distributions.Categorical(probs=raw) if use_probs
                else lib.distributions.Categorical(logits=raw))
        return [raw], dist
    return make


@pytest.mark.parametrize("use_probs", [False, True])
def test_categorical_matches_torch(use_probs):
    _both(_categorical(use_probs), "log_prob", np.array([0, 3, 4, 1]))
    _both(_categorical(use_probs), "entropy")
    torch = pytest.importorskip("torch")
    ours = _categorical(use_probs)(cygrad)[1]
    theirs = _categorical(use_probs)(torch)[1]
    np.testing.assert_allclose(ours.probs.detach().numpy(), theirs.probs.detach().numpy(),
                               rtol=1e-14)
    np.testing.assert_allclose(ours.logits.detach().numpy(), theirs.logits.detach().numpy(),
                               rtol=1e-13, atol=1e-14)
    assert tuple(ours.batch_shape) == (4,) and tuple(ours.param_shape) == (4, 5)


def _normal(lib):
    loc = lib.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    scale = lib.tensor(np.array([1.5, 0.3, 0.8]), requires_grad=True)
    return [loc, scale], lib.distributions.Normal(loc, scale)


def test_normal_bernoulli_uniform_match_torch():
    x = np.array([0.2, -0.9, 2.5])
    _both(_normal, "log_prob", x)
    _both(_normal, "entropy")
    _both(_normal, "cdf", x)

    def bern(lib):
        logits = lib.tensor(np.array([0.3, -2.0, 1.1]), requires_grad=True)
        return [logits], lib.distributions.Bernoulli(logits=logits)

    _both(bern, "log_prob", np.array([1.0, 0.0, 1.0]))
    _both(bern, "entropy")

    def unif(lib):
        low = lib.tensor(np.array([0.0, -1.0]), requires_grad=True)
        high = lib.tensor(np.array([2.0, 3.0]), requires_grad=True)
        return [low, high], lib.distributions.Uniform(low, high)

    _both(unif, "log_prob", np.array([0.5, 2.0]))
    _both(unif, "entropy")


def test_sampling_laws_and_reproducibility():
    cygrad.manual_seed(0)
    cat = D.Categorical(logits=cygrad.tensor(LOGITS))
    s = cat.sample((4000,))
    assert tuple(s.shape) == (4000, 4) and s.dtype == cygrad.int64
    freq = np.stack([np.bincount(s.numpy()[:, i], minlength=5) / 4000 for i in range(4)])
    np.testing.assert_allclose(freq, cat.probs.numpy(), atol=0.03)
    normal = D.Normal(cygrad.tensor([1.0, -2.0]), cygrad.tensor([0.5, 2.0]))
    draws = normal.sample((20000,)).numpy()
    np.testing.assert_allclose(draws.mean(0), [1.0, -2.0], atol=0.05)
    np.testing.assert_allclose(draws.std(0), [0.5, 2.0], rtol=0.03)
    cygrad.manual_seed(7)
    a = D.Bernoulli(probs=cygrad.tensor([0.2, 0.9])).sample((5,)).numpy()
    cygrad.manual_seed(7)
    assert np.array_equal(D.Bernoulli(probs=cygrad.tensor([0.2, 0.9])).sample((5,)).numpy(), a)
    u = D.Uniform(-1.0, 3.0).sample((5000,)).numpy()
    assert u.min() >= -1.0 and u.max() < 3.0 and abs(u.mean() - 1.0) < 0.1


def test_rsample_is_reparametrised():
    loc = cygrad.tensor([0.5, -1.0], requires_grad=True)
    scale = cygrad.tensor([2.0, 0.5], requires_grad=True)
    cygrad.manual_seed(1)
    z = D.Normal(loc, scale).rsample((3,))
    z.sum().backward()
    assert loc.grad.tolist() == [3.0, 3.0]
    cygrad.manual_seed(1)
    eps = (D.Normal(loc, scale).rsample((3,)).detach() - loc.detach()) / scale.detach()
    np.testing.assert_allclose(scale.grad.numpy(), eps.sum(0).numpy(), rtol=1e-6)
    assert not D.Normal(loc, scale).sample().requires_grad


def test_checks():
    with pytest.raises(ValueError, match="Either `probs` or `logits`"):
        D.Categorical()
    with pytest.raises(ValueError, match="scale to be positive"):
        D.Normal(0.0, -1.0)
    with pytest.raises(ValueError, match="within the support"):
        D.Uniform(0.0, 1.0).log_prob(cygrad.tensor([2.0]))
    with pytest.raises(ValueError, match="within the support"):
        D.Categorical(logits=cygrad.zeros(3)).log_prob(cygrad.tensor(3))
    assert D.Normal(0.0, -1.0, validate_args=False).scale.item() == -1.0


def _policy(lib):
    nn = lib.nn

    class Policy(nn.Module):
        def __init__(self):
            super().__init__()
            self.affine1 = nn.Linear(4, 16)
            self.affine2 = nn.Linear(16, 2)

        def forward(self, x):
            return lib.nn.functional.softmax(self.affine2(lib.relu(self.affine1(x))), dim=1)

    return Policy()


def test_reinforce_update_tracks_torch():
    """pytorch/examples/reinforcement_learning/reinforce.py's finish_episode, on recorded
    states and actions (the environment and the draws aside): -log_prob * return."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = _policy(torch).double()
    ours = _policy(cygrad).to(cygrad.float64)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    r = _r(4)
    states, actions = r.standard_normal((6, 4)), r.integers(0, 2, 6)
    rewards = r.standard_normal(6)
    returns = np.array([sum(rewards[j] * 0.99 ** (j - i) for j in range(i, 6))
                        for i in range(6)])
    returns = (returns - returns.mean()) / (returns.std(ddof=1) + 1e-9)
    losses = []
    for lib, model in ((torch, theirs), (cygrad, ours)):
        opt = lib.optim.Adam(model.parameters(), lr=1e-2)
        probs = model(lib.tensor(states))
        m = lib.distributions.Categorical(probs)
        loss = (-m.log_prob(lib.tensor(actions)) * lib.tensor(returns)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[1] == pytest.approx(losses[0], rel=1e-12)
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-10, atol=1e-12)
