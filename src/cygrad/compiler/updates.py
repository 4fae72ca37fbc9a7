"""Optimizer steps in a replay, without optimizer.step()'s Python where that is safe.

`optimizer.step()` runs the step hooks, takes the update lock, gathers each group's parameters
with a gradient, looks up their state and calls the backend's fused update (one kernel a
group). A replay already knows the parameters and their gradients, so for SGD and Adam/AdamW
the plan writes that backend call out, with the lists made from the captured parameters: the
same function with the same arguments in the same order (`_step_group` of optim/sgd.py and
optim/adam.py), so the same bits. It takes this path only when nothing else would have
happened: no step hook anywhere, the parameter groups and their parameter lists still the
captured objects, no parameter outside the captured ones holding a gradient, and every
parameter's state already made (the first step makes it, inside optimizer.step()), for an
optimizer with one parameter group. Otherwise the replay calls optimizer.step() itself.

SGD's update goes one step further where every parameter is an array the replay reads live and
every gradient one backward set: its kernel runs as a Program (compiler/native.py,
csrc/optim.pyx `_exec_sgd`: `sgd`'s own loop), on those arrays, its options read from the group
at each replay as before.
"""

import functools

from .. import backend
from ..optim import optimizer as _optimizer
from ..optim.adam import Adam, AdamW
from ..optim.sgd import SGD
from .native import sgd_program


def update_lines(builder, opt, name, gathered):
    """Lines replaying opt.step() (the optimizer is the plan's constant `name`); gathered: per
    param group, the tensors that had a gradient at capture, in group order."""
    kind = type(opt)
    fallback = [f"{name}.step()"]
    if kind not in (SGD, Adam, AdamW) or kind.step is not _optimizer.Optimizer.step \
            or len(gathered) != 1 or len(opt.param_groups) != 1:
        return fallback  # (one group only: a fallback after a group's update would repeat it)
    ns = builder.ns
    ns.update(_GPRE=_optimizer._global_pre_hooks, _GPOST=_optimizer._global_post_hooks,
              _LOCK=_optimizer._update_lock, _RUN=_optimizer.Optimizer._run,
              _SGD=backend.sgd_update, _ADAM=backend.adam_update)
    checks = [f"_GPRE or _GPOST or {name}._optimizer_step_pre_hooks or "
              f"{name}._optimizer_step_post_hooks",
              f"len({name}.param_groups) != {len(gathered)}"]
    calls = []
    for i, (group, tensors) in enumerate(zip(opt.param_groups, gathered)):
        g, params = builder._const(group, "G"), builder._const(group["params"], "L")
        checks.append(f"{name}.param_groups[{i}] is not {g} or {g}['params'] is not {params}")
        others = [p for p in group["params"] if not any(p is t for t in tensors)]
        if others:
            checks.append(f"any(_p._grad is not None for _p in {builder._const(others, 'L')})")
        refs = [builder._tensor_ref(t) for t in tensors]
        listed = builder._const(list(tensors), "L")
        each = _each(builder, refs, tensors)
        arrays = f"[_p._data for _p in {each}]"
        grads = f"[_p._grad._data for _p in {each}]"
        if kind is SGD:
            calls += _sgd(name, g, listed, each, len(refs), arrays, grads)
            head = [f"if {' or '.join(f'({c})' for c in checks)}:", f"    {name}.step()", "else:"]
            momentum = group["momentum"] != 0
            builder.updates.append((len(builder.plan.steps), functools.partial(
                _native_sgd, head=head, name=name, g=g, listed=listed, each=each,
                tensors=tensors, arrays=arrays, grads=grads, momentum=momentum)))
        else:
            calls += _adam(name, g, listed, each, arrays, grads)
    lines = [f"if {' or '.join(f'({c})' for c in checks)}:", f"    {name}.step()", "else:"]
    lines += [f"    {line}" for line in calls]
    return lines


def _each(builder, refs, tensors):
    """An expression for the tuple of the tensors (refs: theirs in the plan): the plan's
    constant when each is one read live (the same objects at every replay: the parameters an
    update replays always are), else the refs spelled out. The update's lists are made by
    looping over it: a list spelling out an expression per parameter made the plan's source,
    and Python's compile() of it, longer."""
    if all(builder.ns.get(r) is t for r, t in zip(refs, tensors)):
        return builder._const(tuple(tensors), "L")
    return f"({', '.join(refs)},)"


def _sgd(name, g, listed, each, count, arrays, grads):
    """SGD._step_group's backend call: momentum buffers from the state (none yet: step())."""
    bufs = f"[_S[_p]['momentum_buffer']._data for _p in {each}]"
    return [f"_m = {g}['momentum']",
            "_bufs = _fresh = None",
            "if _m != 0:",
            f"    _S = {name}.state",
            "    try:",
            f"        _bufs = {bufs}",
            f"        _fresh = [False] * {count}",
            "    except (KeyError, AttributeError, TypeError):",
            "        _bufs = False",
            "if _bufs is False:",
            f"    {name}.step()",
            "else:",
            "    with _LOCK:",
            f"        _RUN(_SGD, {listed}, ({arrays}, {grads}, {g}['lr'], _m, "
            f"{g}['dampening'], {g}['nesterov'], {g}['weight_decay'], _bufs, _fresh, "
            f"{g}['maximize']), (1, 7, 8))"]


def _native_sgd(builder, head, name, g, listed, each, tensors, arrays, grads, momentum):
    """The SGD update's lines with its kernels as a Program (compiler/native.py) on the arrays
    the replay already holds (each parameter's array read live, each gradient as backward set
    it), or None. The Program runs when the momentum is as captured (zero or not); a parameter
    it refuses (read-only: a live graph saved it) sends the update down the usual path, which
    copies it first; nothing is written before that check."""
    live = [builder.live_var.get(id(t)) for t in tensors]
    given = [builder.grad_var.get(id(t)) for t in tensors]
    if any(x is None for x in live + given):
        return None
    program = sgd_program([(a, ga) for (_, a), (_, ga) in zip(live, given)], momentum)
    if program is None:
        return None
    prg = builder._const(program, "PRG")
    args = "(" + ", ".join([v for v, _ in live] + [v for v, _ in given]) + ",)"
    if momentum:
        args += " + tuple(_bufs)"
    scalars = (f"({g}['lr'], _m, {g}['dampening'], {g}['nesterov'], {g}['weight_decay'], "
               f"{g}['maximize'])")
    lines = _sgd(name, g, listed, each, len(tensors), arrays, grads)
    run = lines[-1].strip()
    assert run.startswith("_RUN(_SGD") and lines[-2] == "    with _LOCK:"
    lines[-1:] = [f"        if (_m != 0) is {momentum}:",
                  "            try:",
                  f"                {prg}.run({args}, {scalars})",
                  "            except (ValueError, BufferError):  # read-only: copied first",
                  f"                {run}",
                  "        else:",
                  f"            {run}"]
    return head + [f"    {line}" for line in lines]


def _adam(name, g, listed, each, arrays, grads):
    """Adam._step_group's backend call (Adam and AdamW); no state yet: step()."""
    states = f"[_S.get(_p) for _p in {each}]"
    return [f"_S = {name}.state",
            f"_ams = {g}['amsgrad']",
            "try:",
            f"    _st = {states}",
            "    _ea = [_s['exp_avg']._data for _s in _st]",
            "    _eq = [_s['exp_avg_sq']._data for _s in _st]",
            "    _mx = [_s['max_exp_avg_sq']._data for _s in _st] if _ams else None",
            "    _sc = [_s['step']._data for _s in _st]",
            "except (KeyError, AttributeError, TypeError):",
            "    _st = None",
            "if _st is None:",
            f"    {name}.step()",
            "else:",
            f"    _b1, _b2 = {g}['betas']",
            "    with _LOCK:",
            f"        _RUN(_ADAM, {listed}, ({arrays}, {grads}, _ea, _eq, _sc, {g}['lr'], _b1, "
            f"_b2, {g}['eps'], {g}['weight_decay'], {g}['decoupled_weight_decay'], _ams, _mx, "
            f"{g}['maximize']), (1, 2, 3, 4, 12))"]
