"""F.affine_grid and F.grid_sample (the spatial transformer's pair): values and gradients
(input and grid) against torch for every mode, padding mode and align_corners (skipped without
torch), gradcheck, torch's warning and errors, and the PyTorch tutorial's spatial transformer
network training in step with torch's."""

import warnings

import numpy as np
import pytest

import cygrad
import cygrad.nn.functional as F


def _r(seed):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("align_corners", [False, True])
def test_affine_grid_matches_torch(align_corners):
    torch = pytest.importorskip("torch")
    theta = _r(0).standard_normal((2, 2, 3)) * 0.6
    for size in ((2, 3, 5, 7), (2, 1, 1, 4)):
        got = F.affine_grid(cygrad.tensor(theta), size, align_corners=align_corners)
        want = torch.nn.functional.affine_grid(torch.tensor(theta), size,
                                               align_corners=align_corners)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_matches_torch(mode, padding_mode, align_corners):
    torch = pytest.importorskip("torch")
    r = _r(1)
    x, grid = r.standard_normal((2, 3, 6, 5)), r.uniform(-1.3, 1.3, (2, 4, 7, 2))
    tx, tg = torch.tensor(x, requires_grad=True), torch.tensor(grid, requires_grad=True)
    cx, cg = cygrad.tensor(x, requires_grad=True), cygrad.tensor(grid, requires_grad=True)
    ty = torch.nn.functional.grid_sample(tx, tg, mode, padding_mode, align_corners)
    cy = F.grid_sample(cx, cg, mode, padding_mode, align_corners)
    np.testing.assert_allclose(cy.numpy(), ty.detach().numpy(), rtol=1e-13, atol=1e-14)
    go = r.standard_normal(tuple(ty.shape))
    (ty * torch.tensor(go)).sum().backward()
    (cy * cygrad.tensor(go)).sum().backward()
    np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), rtol=1e-13, atol=1e-14)
    if mode == "bilinear":
        np.testing.assert_allclose(cg.grad.numpy(), tg.grad.numpy(), rtol=1e-12, atol=1e-13)
    else:
        assert cg.grad is None and not tg.grad.numpy().any()


def test_gradcheck():
    r = _r(2)
    x = cygrad.tensor(r.standard_normal((1, 2, 4, 5)), requires_grad=True)
    grid = cygrad.tensor(r.uniform(-0.9, 0.9, (1, 3, 3, 2)), requires_grad=True)
    theta = cygrad.tensor(r.standard_normal((1, 2, 3)) * 0.5, requires_grad=True)
    assert cygrad.gradcheck(lambda x, g: F.grid_sample(x, g, align_corners=False), x, grid)
    assert cygrad.gradcheck(lambda t: F.affine_grid(t, (1, 1, 3, 4), align_corners=True),
                            theta)


def test_warning_and_errors():
    x, grid = cygrad.zeros(1, 1, 3, 3), cygrad.zeros(1, 2, 2, 2)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        F.grid_sample(x, grid)
    assert any("align_corners=False" in str(w.message) for w in seen)
    with pytest.raises(NotImplementedError, match="bicubic"):
        F.grid_sample(x, grid, mode="bicubic", align_corners=False)
    with pytest.raises(NotImplementedError, match="5-D"):
        F.grid_sample(cygrad.zeros(1, 1, 2, 2, 2), cygrad.zeros(1, 1, 1, 1, 3),
                      align_corners=False)
    with pytest.raises(ValueError, match="padding_mode"):
        F.grid_sample(x, grid, padding_mode="wrap", align_corners=False)
    with pytest.raises(ValueError, match="Nx2x3"):
        F.affine_grid(cygrad.zeros(1, 3, 3), (1, 1, 2, 2), align_corners=False)


def _stn(lib):
    """The tutorial's spatial transformer network, smaller: a localisation net regressing
    theta (initialised to the identity), the sampled image, a linear classifier."""
    nn, Fn = lib.nn, lib.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.localization = nn.Sequential(nn.Conv2d(1, 4, 3), nn.MaxPool2d(2), nn.ReLU(True))
            self.fc_loc = nn.Sequential(nn.Linear(4 * 3 * 3, 8), nn.ReLU(True), nn.Linear(8, 6))
            self.head = nn.Linear(64, 3)

        def stn(self, x):
            xs = self.localization(x).reshape(-1, 4 * 3 * 3)
            theta = self.fc_loc(xs).reshape(-1, 2, 3)
            grid = Fn.affine_grid(theta, x.size(), align_corners=False)
            return Fn.grid_sample(x, grid, align_corners=False)

        def forward(self, x):
            return Fn.log_softmax(self.head(self.stn(x).reshape(-1, 64)), dim=1)

    return Net()


def test_the_tutorials_spatial_transformer_trains_in_step_with_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = _stn(torch).double()
    with torch.no_grad():
        theirs.fc_loc[2].weight.mul_(0.1)
        theirs.fc_loc[2].bias.copy_(torch.tensor([1, 0, 0, 0, 1, 0], dtype=torch.float64))
    ours = _stn(cygrad).to(cygrad.float64)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    r = _r(3)
    x, t = r.standard_normal((5, 1, 8, 8)), r.integers(0, 3, 5)
    topt = torch.optim.SGD(theirs.parameters(), lr=0.1)
    copt = cygrad.optim.SGD(ours.parameters(), lr=0.1)
    for _ in range(3):
        losses = []
        for lib, model, opt in ((torch, theirs, topt), (cygrad, ours, copt)):
            opt.zero_grad()
            loss = lib.nn.functional.nll_loss(model(lib.tensor(x)), lib.tensor(t))
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        assert losses[1] == pytest.approx(losses[0], rel=1e-11)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-9, atol=1e-11,
                                   err_msg=name)


def _torch_bmm_is_fused(torch, theta):
    """Whether torch's grid here is (x a + y b) + c rounded as a fused chain or as separate
    products: its bmm goes through the BLAS it was built with, whose path depends on the CPU
    (fused on an AVX-512 Xeon, each product rounded on an AMD EPYC, both seen). Told apart on
    the 28 x 28 grid: the unfused sum, computed here in numpy, is torch's bits or it is not."""
    size = (theta.shape[0], 1, 28, 28)
    eye = np.broadcast_to(np.eye(2, 3, dtype=theta.dtype), theta.shape).copy()
    base = torch.nn.functional.affine_grid(torch.tensor(eye), size, align_corners=False).numpy()
    x, y = base[..., :1], base[..., 1:]
    rows = theta[:, None, None]
    unfused = (x * rows[..., 0] + y * rows[..., 1]) + rows[..., 2]
    theirs = torch.nn.functional.affine_grid(torch.tensor(theta), size,
                                             align_corners=False).numpy()
    return unfused.tobytes() != theirs.tobytes()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_affine_grid_has_torchs_bits(dtype, align_corners):
    """The spatial-transformer tutorial: a grid point one ulp off lands on the other side of a
    pixel and grid_sample's gradient jumps, so training drifts from torch's. torch's linspace
    (rounded once a point), its (steps - 1) / steps scaling and a fused chain over (x, y, 1)
    give its bits (on a build whose products are fused multiply-adds, as torch's here)."""
    torch = pytest.importorskip("torch")
    try:
        from cygrad._C import gemm
    except ImportError:
        pytest.skip("the numpy backend's product rounds each multiply")
    if not gemm.fused_multiply_add or cygrad.backend.current() != "cython":
        pytest.skip("a build without fused multiply-adds rounds each product")
    rng = np.random.default_rng(3)
    theta = (np.eye(2, 3) + 0.1 * rng.standard_normal((3, 2, 3))).astype(dtype)
    if not _torch_bmm_is_fused(torch, theta):
        pytest.skip("torch's batched product rounds each multiply on this CPU (its BLAS takes "
                    "another path here), so its grid is not the fused chain cygrad computes")
    for size in [(3, 1, 28, 28), (3, 2, 7, 13), (3, 1, 1, 5), (3, 1, 64, 33)]:
        ours = F.affine_grid(cygrad.tensor(theta), size, align_corners=align_corners)
        theirs = torch.nn.functional.affine_grid(torch.tensor(theta), size,
                                                 align_corners=align_corners)
        assert ours.numpy().tobytes() == theirs.numpy().tobytes(), size
