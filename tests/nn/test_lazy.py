"""The lazy layers (LazyConv1d-3d, LazyConvTranspose1d-3d, LazyBatchNorm1d-3d,
LazyInstanceNorm1d-3d): the reprs before and after the first call, the initial values drawn
from the same seed (torch's draws), outputs, state dicts, the class they become, an optimizer
made before the first call stepping the same Parameter objects, and torch's errors."""

import numpy as np
import pytest

import cygrad
from cygrad import nn

CASES = [
    ("LazyConv1d", (4, 2), {}, (3, 7)),  # unbatched
    ("LazyConv1d", (4, 3), {"groups": 2, "stride": 2}, (2, 6, 9)),
    ("LazyConv2d", (4, 3), {"padding": 1}, (2, 3, 6, 6)),
    ("LazyConv3d", (2, 2), {"bias": False}, (1, 3, 4, 4, 4)),
    ("LazyConvTranspose1d", (4, 3), {"stride": 2}, (2, 5, 6)),
    ("LazyConvTranspose2d", (4, 3, 2), {"output_padding": 1}, (2, 6, 5, 5)),
    ("LazyConvTranspose3d", (2, 2), {}, (1, 3, 3, 3, 3)),
    ("LazyBatchNorm1d", (), {}, (5, 3)),
    ("LazyBatchNorm2d", (), {"momentum": None}, (2, 3, 4, 4)),
    ("LazyBatchNorm3d", (), {"affine": False}, (2, 3, 2, 2, 2)),
    ("LazyInstanceNorm1d", (), {}, (2, 3, 5)),
    ("LazyInstanceNorm2d", (), {"track_running_stats": False}, (2, 3, 4, 4)),
    ("LazyInstanceNorm3d", (), {"affine": False}, (2, 3, 2, 2, 2)),
]


@pytest.mark.parametrize("name, args, kwargs, shape", CASES)
def test_matches_torch(name, args, kwargs, shape):
    torch = pytest.importorskip("torch")
    torch.manual_seed(3)
    cygrad.manual_seed(3)
    t = getattr(torch.nn, name)(*args, **kwargs).double()
    c = getattr(nn, name)(*args, **kwargs).double()
    assert repr(c) == repr(t)
    assert c.has_uninitialized_params()
    x = np.random.default_rng(0).standard_normal(shape)
    ty, cy = t(torch.tensor(x)), c(cygrad.tensor(x))
    assert repr(c) == repr(t) and type(c).__name__ == type(t).__name__ == name[4:]
    assert type(c) is getattr(nn, name[4:])
    np.testing.assert_allclose(cy.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-13)
    assert list(c.state_dict()) == list(t.state_dict())
    for (key, v), cv in zip(t.state_dict().items(), c.state_dict().values()):
        np.testing.assert_allclose(cv.numpy(), v.numpy(), rtol=1e-12, err_msg=key)


def test_optimizer_made_before_the_first_call_steps_the_parameters():
    cygrad.manual_seed(0)
    model = nn.Sequential(nn.LazyConv2d(4, 3), nn.LazyBatchNorm2d(), nn.ReLU(), nn.Flatten(),
                          nn.LazyLinear(2))
    opt = cygrad.optim.SGD(model.parameters(), lr=0.1)
    x = cygrad.randn(2, 3, 5, 5)
    model(x).sum().backward()
    before = [p.detach().numpy().copy() for p in model.parameters()]
    opt.step()
    stepped = [not np.array_equal(b, p.numpy()) for b, p in zip(before, model.parameters())
               if np.abs(p.grad.numpy()).max() > 1e-6]  # (the conv's bias: none, BN follows)
    assert len(stepped) >= 5 and all(stepped)
    assert tuple(model[0].weight.shape) == (4, 3, 3, 3) and model[1].num_features == 4


def test_no_draws_before_the_first_call_and_errors():
    cygrad.manual_seed(1)
    first = cygrad.rand(3).numpy()
    cygrad.manual_seed(1)
    lazy = nn.LazyConv2d(4, 3, groups=2)
    np.testing.assert_array_equal(cygrad.rand(3).numpy(), first)
    with pytest.raises(RuntimeError, match=r"Expected 3D \(unbatched\) or 4D \(batched\) input "
                                           "to LazyConv2d"):
        lazy(cygrad.zeros(5, 5))
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        lazy(cygrad.zeros(1, 3, 5, 5))
