"""nn.utils.parametrize, nn.utils.parametrizations (weight_norm, spectral_norm), the older
hook-based nn.utils.weight_norm / spectral_norm, batch-norm folding and the Module state-dict
hooks: names, values and gradients against torch (skipped without it), gradcheck of the
weight-norm functions, torch's errors, a parametrized layer inside a compiled step (bitwise
equal to eager) and the exactness contract (tied units of a weight-normed layer stay tied)."""

import copy
import pickle
import warnings

import numpy as np
import pytest

import cygrad
from cygrad import nn
from cygrad.nn.utils import parametrizations as P
from cygrad.nn.utils import parametrize


def _rand(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def _t(a, grad=False):
    return cygrad.tensor(np.asarray(a), requires_grad=grad)


def _copy_from_torch(model, tmodel):
    """Every entry of tmodel's state dict into model's (same names), as float64."""
    state = {k: cygrad.tensor(v.detach().numpy().copy()) for k, v in tmodel.state_dict().items()}
    model.load_state_dict(state)


LAYERS = [
    ("Linear", (5, 4), (3, 5)),
    ("Conv2d", (3, 4, 3), (2, 3, 6, 6)),
    ("ConvTranspose2d", (3, 4, 3), (2, 3, 5, 5)),
    ("Conv1d", (2, 3, 2), (2, 2, 7)),
]


def _pair(torch, kind, args):
    tm = getattr(torch.nn, kind)(*args).double()
    m = getattr(nn, kind)(*args).double()
    return m, tm


# ---------------------------------------------------------------------- weight_norm

@pytest.mark.parametrize("kind, args, xshape", LAYERS)
@pytest.mark.parametrize("dim", [0, 1, None])
def test_weight_norm_matches_torch(kind, args, xshape, dim):
    torch = pytest.importorskip("torch")
    m, tm = _pair(torch, kind, args)
    torch.nn.utils.parametrizations.weight_norm(tm, dim=dim)
    P.weight_norm(m, dim=dim)
    assert list(m.state_dict()) == list(tm.state_dict())
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert type(m).__name__ == type(tm).__name__ == f"Parametrized{kind}"
    _copy_from_torch(m, tm)
    x = _rand(xshape, 1)
    out, tout = m(_t(x)), tm(torch.tensor(x))
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(m.weight.numpy(), tm.weight.detach().numpy(), rtol=1e-12)
    (out * out).sum().backward()
    (tout * tout).sum().backward()
    for (name, p), (_, tp) in zip(m.named_parameters(), tm.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=name)


def test_weight_norm_keeps_the_weight_and_its_norms():
    torch = pytest.importorskip("torch")
    w = _rand((4, 3, 2), 2)
    for dim in (0, 1, 2, -1, None):
        g = cygrad.norm_except_dim(_t(w), 2, -1 if dim is None else dim)
        tg = torch.norm_except_dim(torch.tensor(w), 2, -1 if dim is None else dim)
        assert tuple(g.shape) == tuple(tg.shape)
        np.testing.assert_allclose(g.numpy(), tg.numpy(), rtol=1e-13)
        m = nn.Conv1d(3, 4, 2).double()
        m.weight.data = _t(w)
        P.weight_norm(m, dim=dim)
        np.testing.assert_allclose(m.weight.numpy(), w, rtol=1e-13, atol=1e-15)


def test_weight_norm_functions_gradcheck():
    v, g = _t(_rand((3, 4), 3), True), _t(np.abs(_rand((3, 1), 4)) + 0.5, True)
    assert cygrad.gradcheck(lambda v, g: cygrad._weight_norm(v, g, 0), v, g)
    g1 = _t(np.abs(_rand((1, 4), 5)) + 0.5, True)
    assert cygrad.gradcheck(lambda v, g: cygrad._weight_norm(v, g, 1), v, g1)
    g0 = _t(np.array(1.7), True)
    assert cygrad.gradcheck(lambda v, g: cygrad._weight_norm(v, g, -1), v, g0)
    x = _t(_rand((2, 3, 4), 6), True)
    assert cygrad.gradcheck(lambda x: cygrad.norm_except_dim(x, 2, 1), x)


def test_legacy_weight_norm_state_dict_loads_into_the_parametrization():
    torch = pytest.importorskip("torch")
    tm = torch.nn.Linear(4, 3).double()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.nn.utils.weight_norm(tm)
    m = P.weight_norm(nn.Linear(4, 3).double())
    _copy_from_torch(m, tm)  # weight_g / weight_v -> parametrizations.weight.original0 / 1
    np.testing.assert_allclose(m.weight.numpy(), tm.weight.detach().numpy(), rtol=1e-13)


# ---------------------------------------------------------------------- spectral_norm

@pytest.mark.parametrize("kind, args, xshape", LAYERS)
def test_spectral_norm_matches_torch(kind, args, xshape):
    torch = pytest.importorskip("torch")
    m, tm = _pair(torch, kind, args)
    torch.nn.utils.parametrizations.spectral_norm(tm, n_power_iterations=2)
    P.spectral_norm(m, n_power_iterations=2)
    assert list(m.state_dict()) == list(tm.state_dict())
    _copy_from_torch(m, tm)  # u and v included: the power method then runs the same steps
    x = _rand(xshape, 1)
    for _ in range(3):
        out, tout = m(_t(x)), tm(torch.tensor(x))
        np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
        for name in ("_u", "_v"):
            np.testing.assert_allclose(getattr(m.parametrizations.weight[0], name).numpy(),
                                       getattr(tm.parametrizations.weight[0], name).numpy(),
                                       rtol=1e-10, atol=1e-12)
        (out * out).sum().backward()
        (tout * tout).sum().backward()
        np.testing.assert_allclose(m.parametrizations.weight.original.grad.numpy(),
                                   tm.parametrizations.weight.original.grad.numpy(),
                                   rtol=1e-9, atol=1e-12)
    u = m.parametrizations.weight[0]._u.numpy().copy()
    m.eval()
    m(_t(x))
    np.testing.assert_array_equal(m.parametrizations.weight[0]._u.numpy(), u)  # eval: no step


def test_spectral_norm_divides_by_the_largest_singular_value():
    cygrad.manual_seed(0)
    m = P.spectral_norm(nn.Linear(6, 4).double(), n_power_iterations=1)
    for _ in range(30):  # power-method steps, one a training-mode read
        w = m.weight
    sigma = np.linalg.svd(m.parametrizations.weight.original.numpy(), compute_uv=False)[0]
    np.testing.assert_allclose(np.linalg.svd(w.numpy(), compute_uv=False)[0], 1.0, rtol=1e-6)
    np.testing.assert_allclose(m.parametrizations.weight.original.numpy() / sigma, w.numpy(),
                               rtol=1e-6)


def test_spectral_norm_errors():
    with pytest.raises(ValueError, match="n_power_iterations"):
        P.spectral_norm(nn.Linear(3, 2), n_power_iterations=0)
    with pytest.raises(IndexError, match="Dimension out of range"):
        P.spectral_norm(nn.Linear(3, 2), dim=2)
    with pytest.raises(ValueError, match="no parameter or buffer with name 'kernel'"):
        P.spectral_norm(nn.Linear(3, 2), name="kernel")
    with pytest.raises(NotImplementedError, match="orthogonal"):
        P.orthogonal(nn.Linear(3, 3))


# ---------------------------------------------------------------------- the hook-based forms

@pytest.mark.parametrize("kind, args, xshape", LAYERS)
def test_legacy_forms_match_torch(kind, args, xshape):
    torch = pytest.importorskip("torch")
    x = _rand(xshape, 1)
    for apply in ("weight_norm", "spectral_norm"):
        m, tm = _pair(torch, kind, args)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            getattr(torch.nn.utils, apply)(tm)
            getattr(nn.utils, apply)(m)
        assert list(m.state_dict()) == list(tm.state_dict())
        assert [n for n, _ in m.named_parameters()] == [n for n, _ in tm.named_parameters()]
        _copy_from_torch(m, tm)
        for _ in range(2):
            out, tout = m(_t(x)), tm(torch.tensor(x))
            np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-10,
                                       atol=1e-12)
            (out * out).sum().backward()
            (tout * tout).sum().backward()
        for (name, p), (_, tp) in zip(m.named_parameters(), tm.named_parameters()):
            np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-9, atol=1e-12,
                                       err_msg=f"{apply} {name}")
        getattr(nn.utils, "remove_" + apply)(m)
        getattr(torch.nn.utils, "remove_" + apply)(tm)
        assert list(m.state_dict()) == list(tm.state_dict())
        assert isinstance(m.weight, nn.Parameter)
        np.testing.assert_allclose(m.weight.numpy(), tm.weight.detach().numpy(), rtol=1e-10)


def test_legacy_forms_errors_and_warning():
    m = nn.Linear(3, 2)
    with pytest.warns(FutureWarning, match="parametrizations.weight_norm"):
        nn.utils.weight_norm(m)
    with pytest.raises(RuntimeError, match="Cannot register two weight_norm hooks"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            nn.utils.weight_norm(m)
    with pytest.raises(ValueError, match="weight_norm of 'bias' not found"):
        nn.utils.remove_weight_norm(m, "bias")
    s = nn.utils.spectral_norm(nn.Linear(3, 2))
    with pytest.raises(RuntimeError, match="Cannot register two spectral_norm hooks"):
        nn.utils.spectral_norm(s)
    nn.utils.remove_spectral_norm(s)
    with pytest.raises(ValueError, match="spectral_norm of 'weight' not found"):
        nn.utils.remove_spectral_norm(s)
    assert not s._hook_table("_state_dict_hooks") and not s._forward_pre_hooks
    assert "spectral_norm" not in s.state_dict()._metadata[""]


# ---------------------------------------------------------------------- parametrize itself

class Symmetric(nn.Module):
    def forward(self, x):
        return x.triu() + x.triu(1).transpose(-1, -2)

    def right_inverse(self, a):
        return a.triu()


class Scale(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.s = s
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x * self.s

    def right_inverse(self, a):
        return a / self.s


def test_register_chain_assign_and_remove():
    cygrad.manual_seed(0)
    m = nn.Linear(4, 4).double()
    parametrize.register_parametrization(m, "weight", Symmetric())
    parametrize.register_parametrization(m, "weight", Scale(2.0))
    assert parametrize.is_parametrized(m) and parametrize.is_parametrized(m, "weight")
    assert not parametrize.is_parametrized(m, "bias")
    assert parametrize.type_before_parametrizations(m) is nn.Linear
    w = m.weight.numpy()
    np.testing.assert_array_equal(w, w.T)
    x = _t(_rand((3, 4), 1))
    np.testing.assert_allclose(m(x).numpy(), x.numpy() @ w.T + m.bias.numpy(), rtol=1e-13)
    target = _rand((4, 4), 2)
    target = target + target.T
    m.weight = _t(target)  # right_inverse of both, last first
    np.testing.assert_allclose(m.weight.numpy(), target, rtol=1e-13)
    m(x).sum().backward()
    assert m.parametrizations.weight.original.grad is not None
    parametrize.remove_parametrizations(m, "weight")
    assert type(m) is nn.Linear and isinstance(m.weight, nn.Parameter)
    assert not hasattr(m, "parametrizations")
    np.testing.assert_allclose(m.weight.numpy(), target, rtol=1e-13)


def test_remove_without_leaving_parametrized_and_buffers():
    m = nn.Linear(3, 3).double()
    original = m.weight.numpy().copy()
    parametrize.register_parametrization(m, "weight", Scale(3.0))
    parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)
    np.testing.assert_allclose(m.weight.numpy(), original / 3.0, rtol=1e-15)
    bn = nn.BatchNorm1d(3).double()
    parametrize.register_parametrization(bn, "running_var", Scale(2.0))
    assert "parametrizations.running_var.original" in bn.state_dict()
    bn.eval()
    x = _rand((4, 3), 5)
    # registering keeps the value: original = right_inverse(1) = 0.5, the variance 2 * 0.5
    np.testing.assert_allclose(bn.parametrizations.running_var.original.numpy(), 0.5)
    np.testing.assert_allclose(bn(_t(x)).numpy(), x / np.sqrt(1.0 + 1e-5), rtol=1e-12)
    with pytest.raises(ValueError, match="does not have a parametrization on weight"):
        parametrize.remove_parametrizations(bn, "weight")
    m2 = P.weight_norm(nn.Linear(3, 2))
    with pytest.raises(ValueError, match="Cannot leave unparametrized"):
        parametrize.remove_parametrizations(m2, "weight", leave_parametrized=False)


def test_cached_computes_once():
    m = nn.Linear(3, 3)
    scale = Scale(2.0)
    parametrize.register_parametrization(m, "weight", scale)
    scale.calls = 0
    _ = m.weight, m.weight
    assert scale.calls == 2
    with parametrize.cached():
        a, b = m.weight, m.weight
        assert a is b
    assert scale.calls == 3


def test_register_errors_match_torch():
    torch = pytest.importorskip("torch")

    class Flat(nn.Module):
        def forward(self, x):
            return x.reshape(-1)

    class TFlat(torch.nn.Module):
        def forward(self, x):
            return x.reshape(-1)

    for reg, mod, flat in ((parametrize.register_parametrization, nn.Linear(3, 2), Flat()),
                           (torch.nn.utils.parametrize.register_parametrization,
                            torch.nn.Linear(3, 2), TFlat())):
        with pytest.raises(ValueError, match="may not change the shape"):
            reg(mod, "weight", flat)
        with pytest.raises(ValueError, match="does not have a parameter, a buffer"):
            reg(mod, "kernel", flat)
        reg(mod, "weight", flat, unsafe=True)
        assert tuple(mod.weight.shape) == (6,)


def test_copy_and_pickle():
    m = P.weight_norm(nn.Linear(3, 2))
    c = copy.deepcopy(m)
    assert type(c).__name__ == "ParametrizedLinear"
    np.testing.assert_array_equal(c.weight.numpy(), m.weight.numpy())
    assert c.parametrizations.weight.original0 is not m.parametrizations.weight.original0
    with pytest.raises(RuntimeError, match="only supported through state_dict"):
        pickle.dumps(m)


def test_transfer_parametrizations_and_params():
    a = P.weight_norm(nn.Linear(3, 2))
    b = nn.Linear(3, 2)
    parametrize.transfer_parametrizations_and_params(a, b)
    assert parametrize.is_parametrized(b, "weight")
    assert b.parametrizations.weight.original0 is a.parametrizations.weight.original0
    np.testing.assert_array_equal(b.weight.numpy(), a.weight.numpy())


# ---------------------------------------------------------------------- state-dict hooks

def _hook_calls(lib):
    """What the four kinds of state-dict hook see around a save and a load, in order."""
    calls = []
    m = lib.Sequential(lib.Linear(2, 2))
    m[0].register_state_dict_pre_hook(lambda mod, prefix, keep: calls.append(("pre", prefix)))
    m[0].register_state_dict_post_hook(
        lambda mod, sd, prefix, meta: calls.append(("post", prefix, sorted(sd), meta)))
    m[0].register_load_state_dict_pre_hook(
        lambda mod, sd, prefix, *rest: calls.append(("load", prefix, sorted(sd))))
    m[0].register_load_state_dict_post_hook(
        lambda mod, keys: calls.append(("loaded", list(keys.missing_keys))))
    sd = m.state_dict()
    calls.append(sorted(sd._metadata.items()))
    m.load_state_dict(sd)
    bad = lib.Linear(2, 2)
    bad.register_state_dict_post_hook(lambda *a: {})
    with pytest.raises(RuntimeError, match="must return None"):
        bad.state_dict()
    return calls


def test_state_dict_hooks_match_torch():
    torch = pytest.importorskip("torch")
    assert _hook_calls(nn) == _hook_calls(torch.nn)


def test_load_pre_hook_may_rename_entries():
    m = nn.Linear(2, 2)
    state = {"w": m.weight.detach() * 2, "bias": m.bias.detach()}

    def rename(sd, prefix, *rest):
        sd[prefix + "weight"] = sd.pop(prefix + "w")

    m._register_load_state_dict_pre_hook(rename)
    expected = state["w"].numpy().copy()
    m.load_state_dict(state)
    np.testing.assert_array_equal(m.weight.numpy(), expected)


# ---------------------------------------------------------------------- batch-norm folding

def test_fusion_matches_the_pair_and_torch():
    torch = pytest.importorskip("torch")
    cygrad.manual_seed(0)
    for transpose in (False, True):
        conv = (nn.ConvTranspose2d if transpose else nn.Conv2d)(3, 4, 3).double().eval()
        bn = nn.BatchNorm2d(4).double()
        bn.running_mean.copy_(_t(_rand(4, 1)))
        bn.running_var.copy_(_t(np.abs(_rand(4, 2)) + 0.5))
        bn.weight.data = _t(_rand(4, 3))
        bn.eval()
        fused = nn.utils.fuse_conv_bn_eval(conv, bn, transpose=transpose)
        x = _t(_rand((2, 3, 5, 5), 4))
        np.testing.assert_allclose(fused(x).numpy(), bn(conv(x)).numpy(), rtol=1e-10,
                                   atol=1e-12)
        tw, tb = torch.nn.utils.fuse_conv_bn_weights(
            *(torch.tensor(t.numpy()) for t in (conv.weight, conv.bias, bn.running_mean,
                                                bn.running_var)), bn.eps,
            torch.tensor(bn.weight.numpy()), torch.tensor(bn.bias.numpy()), transpose)
        np.testing.assert_allclose(fused.weight.numpy(), tw.detach().numpy(), rtol=1e-14)
        np.testing.assert_allclose(fused.bias.numpy(), tb.detach().numpy(), rtol=1e-14)
    lin, bn1 = nn.Linear(3, 4).double().eval(), nn.BatchNorm1d(4).double()
    bn1.running_var.copy_(_t(np.abs(_rand(4, 5)) + 0.5))
    bn1.eval()
    x = _t(_rand((5, 3), 6))
    np.testing.assert_allclose(nn.utils.fuse_linear_bn_eval(lin, bn1)(x).numpy(),
                               bn1(lin(x)).numpy(), rtol=1e-10, atol=1e-12)
    with pytest.raises(AssertionError, match="Fusion only for eval"):
        nn.utils.fuse_linear_bn_eval(lin.train(), bn1)
    with pytest.raises(AssertionError, match="bn.num_features == 1"):
        nn.utils.fuse_linear_bn_eval(lin.eval(), nn.BatchNorm1d(3).eval())
    assert isinstance(nn.utils.skip_init(nn.Linear, 3, 2), nn.Linear)
    with pytest.raises(RuntimeError, match="Expected a Module"):
        nn.utils.skip_init(int)


# ---------------------------------------------------------------------- training

def _mlp(lib, seed):
    lib.manual_seed(seed)
    return lib.nn.Sequential(lib.nn.Linear(3, 8), lib.nn.Tanh(), lib.nn.Linear(8, 2)).double()


def test_training_with_weight_norm_tracks_torch():
    torch = pytest.importorskip("torch")
    m, tm = _mlp(cygrad, 0), _mlp(torch, 0)
    for mod, lib in ((m, P), (tm, torch.nn.utils.parametrizations)):
        lib.weight_norm(mod[0])
        lib.spectral_norm(mod[2])
    _copy_from_torch(m, tm)
    opt = cygrad.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(tm.parameters(), lr=0.1, momentum=0.9)
    x, y = _rand((16, 3), 1), _rand((16, 2), 2)
    for _ in range(5):
        for mod, o, t in ((m, opt, cygrad), (tm, topt, torch)):
            o.zero_grad()
            ((mod(t.tensor(x)) - t.tensor(y)) ** 2).mean().backward()
            o.step()
    for (name, v), tv in zip(m.state_dict().items(), tm.state_dict().values()):
        np.testing.assert_allclose(v.numpy(), tv.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("batch", [1, 7, 64])
def test_tied_units_of_a_weight_normed_layer_stay_tied(batch):
    """Two output units with identical v rows and g entries (and identical outgoing weights)
    get bitwise-identical updates: the norm, the scale and the gradients are the same sequence
    of operations for both rows."""
    cygrad.manual_seed(1)
    m = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 1))
    with cygrad.no_grad():
        m[0].weight[3] = m[0].weight[1]
        m[0].bias[3] = m[0].bias[1]
        m[2].weight[:, 3] = m[2].weight[:, 1]
    P.weight_norm(m[0])
    opt = cygrad.optim.Adam(m.parameters(), lr=0.01)
    rng = np.random.default_rng(batch)
    for _ in range(10):
        x = cygrad.tensor(rng.standard_normal((batch, 5)).astype(np.float32))
        opt.zero_grad()
        (m(x) ** 2).mean().backward()
        opt.step()
    g, v = (getattr(m[0].parametrizations.weight, f"original{i}").numpy() for i in (0, 1))
    assert g[3].tobytes() == g[1].tobytes() and v[3].tobytes() == v[1].tobytes()
    assert not np.array_equal(v[3], v[2])


@pytest.mark.parametrize("form", ["weight_norm", "spectral_norm", "hooks"])
def test_parametrized_layers_in_a_compiled_step_are_bitwise_eager(form):
    """The power method's in-place updates of u and v included: the replay redoes them."""
    def run(compiled):
        cygrad.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        if form == "hooks":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                nn.utils.weight_norm(model[0])
            nn.utils.spectral_norm(model[2])
        else:
            getattr(P, form)(model[0])
        opt = cygrad.optim.SGD(model.parameters(), lr=0.05)
        rng = np.random.default_rng(0)
        xs = [cygrad.tensor(rng.standard_normal((16, 4)).astype(np.float32)) for _ in range(3)]

        def step(x):
            opt.zero_grad()
            loss = (model(x) ** 2).mean()
            loss.backward()
            opt.step()
            return loss

        fn = cygrad.compile(step) if compiled else step
        losses = [fn(xs[i % 3]).numpy().tobytes() for i in range(6)]
        return losses, [t.numpy().tobytes() for t in model.state_dict().values()], fn

    eager, compiled = run(False), run(True)
    assert compiled[0] == eager[0] and compiled[1] == eager[1]
    assert compiled[2].counts["replays"] == 4
