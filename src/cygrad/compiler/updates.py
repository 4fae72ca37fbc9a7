"""Optimizer steps in a replay, without optimizer.step()'s Python where that is safe.

`optimizer.step()` runs the step hooks, takes the update lock, gathers each group's parameters
with a gradient, looks up their state and calls the backend's fused update (one kernel a
group). A replay already holds the parameters and gradients, so for SGD and Adam/AdamW it can
make that backend call directly: the same function with the same arguments in the same order
(each optimizer's `_step_group` spells them), so the same bits. It does so only when nothing
else would have happened: no step hook anywhere, the parameter groups and their parameter lists
still the captured objects, exactly the captured parameters holding a gradient, and every
parameter's state already made (it is made by the first step, inside optimizer.step()). Otherwise
it returns False and the replay calls optimizer.step() itself.
"""

from .. import backend
from ..optim import optimizer as _optimizer
from ..optim.adam import Adam, AdamW
from ..optim.sgd import SGD

_run = _optimizer.Optimizer._run


def fast_update(opt, groups):
    """An update function for the replay of opt.step(), or None (the replay calls step()).
    groups: per param group, the tensors that had a gradient at capture (in group order)."""
    kind = type(opt)
    if kind not in (SGD, Adam, AdamW) or kind.step is not _optimizer.Optimizer.step:
        return None
    if len(groups) != len(opt.param_groups):
        return None
    update = _sgd if kind is SGD else _adam
    group_dicts = list(opt.param_groups)
    param_lists = [g["params"] for g in group_dicts]
    others = tuple(p for g, tensors in zip(group_dicts, groups) for p in g["params"]
                   if not any(p is t for t in tensors))
    pre, post = _optimizer._global_pre_hooks, _optimizer._global_post_hooks
    lock = _optimizer._update_lock
    plan = list(zip(group_dicts, groups))

    def step():
        if (pre or post or opt._optimizer_step_pre_hooks or opt._optimizer_step_post_hooks
                or len(opt.param_groups) != len(group_dicts)):
            return False
        for g, d, params in zip(opt.param_groups, group_dicts, param_lists):
            if g is not d or g["params"] is not params:
                return False
        for p in others:
            if p._grad is not None:
                return False
        with lock:
            work = []
            for group, tensors in plan:
                args = update(opt, group, tensors)
                if args is None:
                    return False  # state not made yet: step() makes it (nothing ran so far)
                work.append(args)
            for args in work:
                _run(*args)
        return True

    return step


def _arrays(tensors):
    params, grads = [], []
    for p in tensors:
        g = p._grad
        if g is None or g._data.dtype is not p._data.dtype or g._data.shape != p._data.shape:
            return None, None
        params.append(p._data)
        grads.append(g._data)
    return params, grads


def _sgd(opt, group, tensors):
    """SGD._step_group's backend call, or None."""
    params, grads = _arrays(tensors)
    if params is None:
        return None
    momentum = group["momentum"]
    bufs = fresh = None
    if momentum != 0:
        state = opt.state
        bufs = []
        for p in tensors:
            buf = state[p].get("momentum_buffer") if p in state else None
            if buf is None:
                return None
            bufs.append(buf._data)
        fresh = [False] * len(tensors)
    return (backend.sgd_update, tensors,
            (params, grads, group["lr"], momentum, group["dampening"], group["nesterov"],
             group["weight_decay"], bufs, fresh, group["maximize"]), (1, 7, 8))


def _adam(opt, group, tensors):
    """Adam._step_group's backend call (Adam and AdamW), or None."""
    params, grads = _arrays(tensors)
    if params is None:
        return None
    amsgrad = group["amsgrad"]
    exp_avgs, exp_avg_sqs, maxes, steps = [], [], [] if amsgrad else None, []
    state = opt.state
    for p in tensors:
        s = state.get(p)
        if not s or (amsgrad and "max_exp_avg_sq" not in s):
            return None
        exp_avgs.append(s["exp_avg"]._data)
        exp_avg_sqs.append(s["exp_avg_sq"]._data)
        if amsgrad:
            maxes.append(s["max_exp_avg_sq"]._data)
        steps.append(s["step"]._data)
    beta1, beta2 = group["betas"]
    return (backend.adam_update, tensors,
            (params, grads, exp_avgs, exp_avg_sqs, steps, group["lr"], beta1, beta2,
             group["eps"], group["weight_decay"], group["decoupled_weight_decay"], amsgrad,
             maxes, group["maximize"]), (1, 2, 3, 4, 12))
