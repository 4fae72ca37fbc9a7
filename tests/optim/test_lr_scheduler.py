"""cygrad.optim.lr_scheduler against torch.optim.lr_scheduler: the same lr (and momentum)
sequences to the last bit over many steps, the same state dicts, resuming, errors."""

import math
import warnings

import numpy as np
import pytest

import cygrad
from cygrad import optim
from cygrad.optim import lr_scheduler as ls

torch = pytest.importorskip("torch")


def pair(opt_name="SGD", lrs=(0.1, 0.03), **opt_kwargs):
    """An optimiser of two param groups (lrs) in cygrad and in torch."""
    ours = getattr(optim, opt_name)(
        [{"params": [cygrad.tensor(np.zeros(2), requires_grad=True)], "lr": lr} for lr in lrs],
        **opt_kwargs)
    theirs = getattr(torch.optim, opt_name)(
        [{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs],
        **opt_kwargs)
    return ours, theirs


def lrs(opt, key="lr"):
    return [group[key] for group in opt.param_groups]


def run(make, steps=120, opt_name="SGD", momentum_key=None, metrics=None, **opt_kwargs):
    """Build the scheduler on both optimisers (make(module, optimizer)), step both `steps`
    times (optimizer first), and check every lr (and momentum) is torch's, bitwise."""
    ours, theirs = pair(opt_name, **opt_kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mine, torchs = make(ls, ours), make(torch.optim.lr_scheduler, theirs)
        seen = []
        for step in range(steps):
            assert lrs(ours) == lrs(theirs), f"step {step}"
            assert mine.get_last_lr() == torchs.get_last_lr(), f"step {step}"
            if momentum_key is not None:
                assert lrs(ours, momentum_key) == lrs(theirs, momentum_key), f"step {step}"
            seen.append(lrs(ours)[0])
            ours.step()
            theirs.step()
            if metrics is None:
                mine.step()
                torchs.step()
            else:
                mine.step(metrics[step])
                torchs.step(metrics[step])
    return mine, torchs, seen


CASES = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=7, gamma=0.3),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[5, 11, 11, 40], gamma=0.7),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.97),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=17, eta_min=1e-3),
    "CosineAnnealingLR-0": lambda m, o: m.CosineAnnealingLR(o, T_max=10),
    "LambdaLR": lambda m, o: m.LambdaLR(o, lambda e: 0.95 ** e + 1 / (e + 1)),
    "LambdaLR-list": lambda m, o: m.LambdaLR(o, [lambda e: 1.0 / (e + 1), lambda e: 0.9 ** e]),
    "MultiplicativeLR": lambda m, o: m.MultiplicativeLR(o, lambda e: 0.99 if e % 3 else 0.9),
    "LinearLR": lambda m, o: m.LinearLR(o, start_factor=0.1, end_factor=0.9, total_iters=23),
    "LinearLR-default": lambda m, o: m.LinearLR(o),
    "ConstantLR": lambda m, o: m.ConstantLR(o, factor=0.3, total_iters=9),
    "PolynomialLR": lambda m, o: m.PolynomialLR(o, total_iters=30, power=2.5),
    "CosineAnnealingWarmRestarts": lambda m, o: m.CosineAnnealingWarmRestarts(
        o, T_0=5, T_mult=2, eta_min=1e-4),
    "OneCycleLR": lambda m, o: m.OneCycleLR(o, max_lr=[1.0, 0.3], total_steps=121),
    "OneCycleLR-linear-3": lambda m, o: m.OneCycleLR(
        o, max_lr=0.5, epochs=11, steps_per_epoch=11, anneal_strategy="linear",
        three_phase=True, pct_start=0.25),
    "SequentialLR": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=10), m.ExponentialLR(o, gamma=0.9),
            m.CosineAnnealingLR(o, T_max=20)], milestones=[10, 50]),
    "ChainedScheduler": lambda m, o: m.ChainedScheduler(
        [m.ConstantLR(o, factor=0.5, total_iters=4), m.ExponentialLR(o, gamma=0.95)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_sequence_is_torchs_bitwise(name):
    momentum = "momentum" if name.startswith("OneCycle") else None
    run(CASES[name], momentum_key=momentum, momentum=0.9)


def test_one_cycle_cycles_adams_beta1():
    run(lambda m, o: m.OneCycleLR(o, max_lr=0.01, total_steps=60), steps=60, opt_name="Adam",
        momentum_key="betas")


def test_one_cycle_past_its_last_step_raises():
    opt, _ = pair()
    sched = ls.OneCycleLR(opt, max_lr=0.1, total_steps=3)
    for _ in range(3):
        opt.step()
        sched.step()
    with pytest.raises(ValueError, match="Tried to step 4 times"):
        sched.step()


@pytest.mark.parametrize("mode, threshold_mode", [("min", "rel"), ("min", "abs"),
                                                  ("max", "rel"), ("max", "abs")])
def test_reduce_on_plateau_is_torchs(mode, threshold_mode):
    rng = np.random.default_rng(0)
    metrics = list(np.cumsum(rng.standard_normal(150)) * 0.1 + 5)
    run(lambda m, o: m.ReduceLROnPlateau(o, mode=mode, factor=0.5, patience=3, cooldown=2,
                                         threshold=0.01, threshold_mode=threshold_mode,
                                         min_lr=[1e-3, 1e-4]),
        steps=150, metrics=metrics)


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
                                  "LinearLR", "ConstantLR", "PolynomialLR"])
def test_closed_forms_are_torchs(name):
    ours, theirs = pair()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mine, torchs = CASES[name](ls, ours), CASES[name](torch.optim.lr_scheduler, theirs)
        for epoch in [3, 7, 14, 2, 40, 23, 0, 9]:
            mine.step(epoch)
            torchs.step(epoch)
            assert mine.get_last_lr() == torchs.get_last_lr()


def test_warm_restarts_with_fractional_epochs_is_torchs():
    ours, theirs = pair()
    mine = ls.CosineAnnealingWarmRestarts(ours, T_0=3, T_mult=3)
    torchs = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(theirs, T_0=3, T_mult=3)
    for epoch in [0.5, 1.25, 3.0, 7.7, 13.0, 39.5, 2.0]:
        mine.step(epoch)
        torchs.step(epoch)
        assert mine.get_last_lr() == torchs.get_last_lr() and mine.T_i == torchs.T_i


@pytest.mark.parametrize("name", ["StepLR", "OneCycleLR", "SequentialLR", "ChainedScheduler",
                                  "CosineAnnealingWarmRestarts", "LambdaLR"])
def test_state_dict_is_torchs(name):
    mine, torchs, _ = run(CASES[name], steps=13, momentum=0.9)
    ours, theirs = mine.state_dict(), torchs.state_dict()
    assert ours == theirs


def test_reduce_on_plateau_state_dict_is_torchs():
    mine, torchs, _ = run(lambda m, o: m.ReduceLROnPlateau(o, patience=1), steps=6,
                          metrics=[3, 2, 2, 2, 2, 2])
    assert mine.state_dict() == torchs.state_dict()


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR", "OneCycleLR", "SequentialLR",
                                  "MultiStepLR"])
def test_resuming_from_a_state_dict_continues_the_sequence(name):
    _, _, full = run(CASES[name], steps=60, momentum=0.9)
    opt, _ = pair(momentum=0.9)
    first = CASES[name](ls, opt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(25):
            opt.step()
            first.step()
        saved_sched, saved_opt = first.state_dict(), opt.state_dict()
        opt2, _ = pair(lrs=(9.0, 9.0), momentum=0.9)
        second = CASES[name](ls, opt2)
        second.load_state_dict(saved_sched)
        opt2.load_state_dict(saved_opt)
        rest = []
        for _ in range(35):
            rest.append(lrs(opt2)[0])
            opt2.step()
            second.step()
    assert rest == full[25:]


def test_base_lrs_and_initial_lr():
    opt, _ = pair()
    sched = ls.StepLR(opt, 2)
    assert sched.base_lrs == [0.1, 0.03] and lrs(opt, "initial_lr") == [0.1, 0.03]
    assert sched.last_epoch == 0 and sched.get_last_lr() == [0.1, 0.03]


def test_resuming_without_initial_lr_raises():
    opt, _ = pair()
    with pytest.raises(KeyError, match="initial_lr"):
        ls.StepLR(opt, 2, last_epoch=3)


def test_stepping_the_scheduler_before_the_optimizer_warns():
    opt, _ = pair()
    sched = ls.ExponentialLR(opt, 0.9)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()
    opt2, _ = pair()
    sched2 = ls.ExponentialLR(opt2, 0.9)
    opt2.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched2.step()


def test_calling_get_lr_directly_warns():
    opt, _ = pair()
    sched = ls.StepLR(opt, 2)
    with pytest.warns(UserWarning, match="get_last_lr"):
        sched.get_lr()


def test_step_with_an_epoch_warns_deprecation():
    opt, _ = pair()
    sched = ls.StepLR(opt, 2)
    opt.step()
    with pytest.warns(UserWarning, match="deprecated"):
        sched.step(4)
    assert sched.get_last_lr() == [0.1 * 0.1 ** 2, 0.03 * 0.1 ** 2]


@pytest.mark.parametrize("make, error, match", [
    (lambda o: ls.StepLR(object(), 2), TypeError, "is not an Optimizer"),
    (lambda o: ls.LinearLR(o, start_factor=0), ValueError, "Starting multiplicative factor"),
    (lambda o: ls.LinearLR(o, end_factor=1.5), ValueError, "Ending multiplicative factor"),
    (lambda o: ls.ConstantLR(o, factor=2), ValueError, "between 0 and 1"),
    (lambda o: ls.LambdaLR(o, [lambda e: 1.0]), ValueError, "Expected 2 lr_lambdas"),
    (lambda o: ls.MultiplicativeLR(o, 0.9), TypeError, "lr_lambda should be a function"),
    (lambda o: ls.ReduceLROnPlateau(o, factor=1.0), ValueError, "Factor should be < 1.0"),
    (lambda o: ls.ReduceLROnPlateau(o, mode="up"), ValueError, "mode up is unknown"),
    (lambda o: ls.ReduceLROnPlateau(o, min_lr=[0.1]), ValueError, "expected 2 min_lrs"),
    (lambda o: ls.OneCycleLR(o, max_lr=0.1), ValueError, "total_steps OR"),
    (lambda o: ls.OneCycleLR(o, max_lr=0.1, total_steps=0), ValueError, "total_steps"),
    (lambda o: ls.OneCycleLR(o, max_lr=0.1, total_steps=5, pct_start=1), ValueError,
     "pct_start"),
    (lambda o: ls.OneCycleLR(o, max_lr=[0.1], total_steps=5), ValueError, "same length"),
    (lambda o: ls.OneCycleLR(optim.Adagrad([cygrad.tensor([1.0], requires_grad=True)]),
                             max_lr=0.1, total_steps=5), ValueError, "momentum or beta1"),
    (lambda o: ls.CosineAnnealingWarmRestarts(o, T_0=0), ValueError, "positive integer T_0"),
    (lambda o: ls.SequentialLR(o, [ls.StepLR(o, 2)], milestones=[3]), ValueError,
     "one more than the number of milestone"),
    (lambda o: ls.SequentialLR(o, [ls.ReduceLROnPlateau(o)], milestones=[]), ValueError,
     "does not support `ReduceLROnPlateau`"),
    (lambda o: ls.ChainedScheduler([]), ValueError, "at least one scheduler"),
])
def test_bad_arguments_raise_torchs_errors(make, error, match):
    opt, _ = pair()
    with pytest.raises(error, match=match):
        make(opt)


def test_cosine_annealing_reaches_eta_min_at_t_max():
    opt, _ = pair(lrs=(1.0, 1.0))
    sched = ls.CosineAnnealingLR(opt, T_max=8, eta_min=0.25)
    for _ in range(8):
        opt.step()
        sched.step()
    assert math.isclose(sched.get_last_lr()[0], 0.25, rel_tol=1e-12)


# ---------------------------------------------------------------------- CyclicLR

def _cyclic_sequence(lib, opt_name, opt_kw, sched_kw, steps=25):
    params = [lib.zeros(2, requires_grad=True)]
    opt = getattr(lib.optim, opt_name)(params, lr=0.1, **opt_kw)
    sched = lib.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.1, **sched_kw)
    seq = [(opt.param_groups[0]["lr"], opt.param_groups[0].get("momentum"),
            opt.param_groups[0].get("betas"))]
    for _ in range(steps):
        opt.step()
        sched.step()
        g = opt.param_groups[0]
        seq.append((g["lr"], g.get("momentum"), g.get("betas")))
    return seq, sched


def _halving(x):
    return 0.5 ** x


@pytest.mark.parametrize("sched_kw", [
    {"step_size_up": 4},
    {"mode": "triangular2", "step_size_up": 3, "step_size_down": 5},
    {"mode": "exp_range", "gamma": 0.97, "step_size_up": 4},
    {"scale_fn": _halving, "scale_mode": "iterations", "step_size_up": 2},
    {"step_size_up": 4, "cycle_momentum": False},
], ids=str)
@pytest.mark.parametrize("opt_name,opt_kw", [("SGD", {"momentum": 0.9}), ("Adam", {})])
def test_cyclic_lr_matches_torch_bit_for_bit(sched_kw, opt_name, opt_kw):
    torch = pytest.importorskip("torch")
    ours, _ = _cyclic_sequence(cygrad, opt_name, opt_kw, sched_kw)
    theirs, _ = _cyclic_sequence(torch, opt_name, opt_kw, sched_kw)
    assert ours == theirs


def test_cyclic_lr_shape_state_dict_and_errors():
    seq, sched = _cyclic_sequence(cygrad, "SGD", {"momentum": 0.9}, {"step_size_up": 4}, 8)
    lrs = [s[0] for s in seq]
    assert lrs[0] == 0.01 and lrs[4] == pytest.approx(0.1) and lrs[8] == pytest.approx(0.01)
    assert all(a < b for a, b in zip(lrs[:4], lrs[1:5]))  # up for 4 steps, then down
    assert [s[1] for s in seq][4] == pytest.approx(0.8)  # momentum the other way
    state = sched.state_dict()
    assert "optimizer" not in state and state["_scale_fn_custom"] is None
    params = [cygrad.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match="mode is invalid and scale_fn is None"):
        cygrad.optim.lr_scheduler.CyclicLR(cygrad.optim.SGD(params, lr=0.1, momentum=0.9),
                                           0.01, 0.1, mode="sawtooth")
    with pytest.raises(ValueError, match="must support momentum or beta1"):
        cygrad.optim.lr_scheduler.CyclicLR(cygrad.optim.Adagrad(params, lr=0.1), 0.01, 0.1)
