"""A torch-style training loop on cygrad: DataLoader over a TensorDataset, Adadelta with
StepLR, gradient clipping, zero_grad / backward / step; in float64 it follows torch's run of the
same code from the same weights step for step (to rounding)."""

import numpy as np
import pytest

import cygrad
import cygrad.utils.data  # noqa: F401  (cygrad.utils is not imported by cygrad itself yet)
from cygrad import nn
from cygrad.nn import functional as F
from cygrad.optim import lr_scheduler


def train(lib, model, X, y, F_, data, sched, epochs=3):
    """The loop as pytorch/examples' mnist writes it, for either library."""
    loader = data.DataLoader(data.TensorDataset(X, y), batch_size=16, shuffle=False)
    opt = lib.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = sched.StepLR(opt, step_size=1, gamma=0.7)
    losses = []
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            loss = F_.cross_entropy(model(xb), yb)
            loss.backward()
            lib.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
            losses.append(loss.item())
        scheduler.step()
    return losses, opt.param_groups[0]["lr"]


def test_adadelta_steplr_dataloader_loop_follows_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(),
                                 torch.nn.Linear(16, 3)).double()
    ours = cygrad.interop.from_torch(theirs)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4))
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)
    mine, lr = train(cygrad, ours, cygrad.tensor(X), y, F, cygrad.utils.data, lr_scheduler)
    torchs, torch_lr = train(torch, theirs, torch.tensor(X), torch.tensor(y),
                             torch.nn.functional, torch.utils.data, torch.optim.lr_scheduler)
    assert lr == torch_lr == 1.0 * 0.7 ** 3
    np.testing.assert_allclose(mine, torchs, rtol=1e-9)
    assert mine[-1] < mine[0]


def test_module_parameters_feed_every_optimiser():
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))
    X = cygrad.tensor(np.random.default_rng(1).standard_normal((8, 3)).astype(np.float32))
    for make in (lambda p: cygrad.optim.RMSprop(p, lr=0.01, centered=True),
                 lambda p: cygrad.optim.Adagrad(p), lambda p: cygrad.optim.AdamW(p)):
        opt = make(model.parameters())
        first = None
        for _ in range(20):
            opt.zero_grad()
            loss = (model(X) ** 2).mean()
            loss.backward()
            opt.step()
            first = loss.item() if first is None else first
        assert loss.item() < first
