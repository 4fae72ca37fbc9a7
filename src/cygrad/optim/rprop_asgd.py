"""Rprop and ASGD (torch.optim's), with torch's signatures, defaults, checks, state and
state_dict layout. Each updates a whole parameter group in one backend call; neither has a
native kernel yet, so both backends run their numpy twins (backend/numpy_backend.py: torch's
single-tensor arithmetic, elementwise: every element the same operations wherever it lies and
at any thread count)."""

import numpy as np

from .. import backend
from ..tensor import _wrap
from .optimizer import (
    Optimizer,
    _check_flags,
    _check_lr,
    _invalid,
    _real,
    _restore_flags,
    _scalar_dtype,
    _step_counter,
    _zeros_like,
)

__all__ = ["Rprop", "ASGD"]

_FLAGS = {"maximize": False, "foreach": None, "capturable": False, "differentiable": False}


class _Elementwise(Optimizer):
    """Shared: the flags' defaults when loading, and a group's state gathered into lists (the
    names `_state`) for the backend call `_update`."""

    _state = ()

    def __setstate__(self, state):
        super().__setstate__(state)
        _restore_flags(self, _FLAGS)

    def _step_group(self, group):
        tensors, params, grads = self._gather(group)
        lists = {name: [] for name in self._state}
        for p, param, grad in zip(tensors, params, grads):
            s = self.state[p]
            if len(s) == 0:
                self._new_state(s, group, param, grad)
            for name, values in lists.items():
                values.append(s[name]._data)
        self._update(group, tensors, params, grads, lists)


class Rprop(_Elementwise):
    """Resilient backpropagation (Riedmiller & Braun, 1993), torch's algorithm:

        g = -grad if maximize else grad
        f = etaplus where g * prev > 0, etaminus where < 0, else 1
        size = clamp(size * f, step_sizes[0], step_sizes[1])   (size starts at lr)
        g = 0 where f == etaminus;  p = p - sign(g) * size;  prev = g

    State per parameter: "step", "prev", "step_size".
    """

    _state = ("prev", "step_size", "step")

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        defaults = {"lr": lr, "etas": etas, "step_sizes": step_sizes, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable,
                    "capturable": capturable}
        _check_lr(defaults)
        _invalid(0.0 < etas[0] < 1.0 < etas[1], f"Invalid eta values: {etas[0]}, {etas[1]}")
        _check_flags(defaults)
        super().__init__(params, defaults)

    def _new_state(self, s, group, param, grad):
        s["step"] = _step_counter()
        s["prev"] = _zeros_like(param)
        s["step_size"] = _wrap(np.full_like(grad, group["lr"]))

    def _update(self, group, tensors, params, grads, lists):
        etaminus, etaplus = group["etas"]
        size_min, size_max = group["step_sizes"]
        self._run(backend.rprop_update, tensors,
                  (params, grads, lists["prev"], lists["step_size"], lists["step"], etaminus,
                   etaplus, size_min, size_max, group["maximize"]), (1, 2, 3, 4))


class ASGD(_Elementwise):
    """Averaged stochastic gradient descent (Polyak & Juditsky, 1992), torch's algorithm:

        g = -grad if maximize else grad;  g = g + weight_decay * p
        p = p * (1 - lambd * eta);  p = p - eta * g
        ax = ax + (p - ax) * mu   (ax = p while mu is 1)
        eta = lr / (1 + lambd * lr * t) ** alpha;  mu = 1 / max(1, t - t0)

    State per parameter: "step", "eta", "mu" (0-d, of the scalar dtype) and "ax" (the
    average).
    """

    _state = ("ax", "eta", "mu", "step")

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0,
                 foreach=None, maximize=False, differentiable=False, capturable=False):
        defaults = {"lr": lr, "lambd": lambd, "alpha": alpha, "t0": t0,
                    "weight_decay": weight_decay, "foreach": foreach, "maximize": maximize,
                    "differentiable": differentiable, "capturable": capturable}
        _check_lr(defaults)
        _real(defaults, "weight_decay", "lambd", "alpha", "t0")
        _invalid(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        _check_flags(defaults)
        super().__init__(params, defaults)

    def _new_state(self, s, group, param, grad):
        s["step"] = _step_counter()
        s["eta"] = _wrap(np.array(group["lr"], dtype=_scalar_dtype()))
        s["mu"] = _wrap(np.array(1.0, dtype=_scalar_dtype()))
        s["ax"] = _zeros_like(param)

    def _update(self, group, tensors, params, grads, lists):
        self._run(backend.asgd_update, tensors,
                  (params, grads, lists["ax"], lists["eta"], lists["mu"], lists["step"],
                   group["lr"], group["lambd"], group["alpha"], group["t0"],
                   group["weight_decay"], group["maximize"]), (1, 2, 3, 4, 5))
