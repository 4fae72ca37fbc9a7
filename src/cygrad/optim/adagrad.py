"""Adagrad (torch.optim.Adagrad)."""

import numpy as np

from .. import backend
from .optimizer import (
    Optimizer,
    _check_flags,
    _check_lr,
    _invalid,
    _real,
    _step_counter,
    _steps_as_tensors,
    _wrap,
)

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011), torch's algorithm and signature (dense gradients):

        t = t + 1
        g = -grad if maximize else grad
        g = g + weight_decay * p                         (weight_decay != 0)
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g
        p = p - clr * g / (sqrt(s) + eps)

    As torch's, every parameter's state ("step", and "sum" filled with
    initial_accumulator_value) is made at construction, from the constructor's
    initial_accumulator_value (a group's own value is not used for it). foreach and fused are
    accepted and change nothing.
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, foreach=None, *, maximize=False, differentiable=False, fused=None):
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value,
                    "foreach": foreach, "maximize": maximize,
                    "differentiable": differentiable, "fused": fused}
        self._validate(defaults)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, initial_accumulator_value)

    def _init_state(self, p, value):
        state = self.state[p]
        state["step"] = _step_counter()
        state["sum"] = _wrap(np.full_like(p._data, value))

    def _validate(self, o):
        _check_lr(o)
        _real(o, "lr_decay", "weight_decay", "initial_accumulator_value", "eps")
        _invalid(0.0 <= o["lr_decay"], f"Invalid lr_decay value: {o['lr_decay']}")
        _invalid(0.0 <= o["weight_decay"], f"Invalid weight_decay value: {o['weight_decay']}")
        _invalid(0.0 <= o["initial_accumulator_value"], "Invalid initial_accumulator_value "
                 f"value: {o['initial_accumulator_value']}")
        _invalid(0.0 <= o["eps"], f"Invalid epsilon value: {o['eps']}")
        _check_flags(o)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("foreach", None)
            group.setdefault("maximize", False)
            group.setdefault("differentiable", False)
            group.setdefault("fused", None)
        _steps_as_tensors(self)

    def _step_group(self, group):
        tensors, params, grads = self._gather(group)
        sums, steps = [], []
        for p in tensors:
            s = self.state[p]
            if len(s) == 0:  # a parameter added later by add_param_group
                self._init_state(p, self.defaults["initial_accumulator_value"])
            sums.append(s["sum"]._data)
            steps.append(s["step"]._data)
        self._run(backend.adagrad_update, tensors,
                  (params, grads, sums, steps, group["lr"], group["lr_decay"],
                   group["weight_decay"], group["eps"], group["maximize"]), (1, 2, 3))
