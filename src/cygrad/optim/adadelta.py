"""Adadelta (torch.optim.Adadelta)."""

from .. import backend
from .optimizer import (
    Optimizer,
    _check_flags,
    _check_lr,
    _invalid,
    _real,
    _step_counter,
    _steps_as_tensors,
    _zeros_like,
)

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012), torch's algorithm and signature:

        g = -grad if maximize else grad
        g = g + weight_decay * p                             (weight_decay != 0)
        v = rho * v + (1 - rho) * g * g
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta * delta
        p = p - lr * delta

    lr (default 1.0) scales delta before it is applied. foreach is accepted and changes
    nothing. State per parameter: "step", "square_avg" (v) and "acc_delta" (u).
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False):
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay,
                    "maximize": maximize, "capturable": capturable, "foreach": foreach,
                    "differentiable": differentiable}
        self._validate(defaults)
        super().__init__(params, defaults)

    def _validate(self, o):
        _check_lr(o)
        _real(o, "rho", "eps", "weight_decay")
        _invalid(0.0 <= o["rho"] <= 1.0, f"Invalid rho value: {o['rho']}")
        _invalid(0.0 <= o["eps"], f"Invalid epsilon value: {o['eps']}")
        _invalid(0.0 <= o["weight_decay"], f"Invalid weight_decay value: {o['weight_decay']}")
        _check_flags(o)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("foreach", None)
            group.setdefault("maximize", False)
            group.setdefault("differentiable", False)
            group.setdefault("capturable", False)
        _steps_as_tensors(self)

    def _step_group(self, group):
        tensors, params, grads = self._gather(group)
        square_avgs, acc_deltas, steps = [], [], []
        for p, param in zip(tensors, params):
            s = self.state[p]
            if len(s) == 0:
                s["step"] = _step_counter()
                s["square_avg"] = _zeros_like(param)
                s["acc_delta"] = _zeros_like(param)
            square_avgs.append(s["square_avg"]._data)
            acc_deltas.append(s["acc_delta"]._data)
            steps.append(s["step"]._data)
        self._run(backend.adadelta_update, tensors,
                  (params, grads, square_avgs, acc_deltas, steps, group["lr"], group["rho"],
                   group["eps"], group["weight_decay"], group["maximize"]), (1, 2, 3, 4))
