"""RMSprop (torch.optim.RMSprop)."""

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

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop (Hinton), torch's algorithm and signature:

        g = -grad if maximize else grad
        g = g + weight_decay * p                                  (weight_decay != 0)
        v = alpha * v + (1 - alpha) * g * g
        avg = sqrt(v - ga * ga), ga = lerp(ga, g, 1 - alpha)      (centered)
        avg = sqrt(v)                                             (otherwise)
        b = momentum * b + g / (avg + eps);  p = p - lr * b       (momentum > 0)
        p = p - lr * g / (avg + eps)                              (otherwise)

    foreach is accepted and changes nothing. State per parameter: "step", "square_avg",
    "momentum_buffer" (momentum > 0) and "grad_avg" (centered), made at its first step.
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps,
                    "centered": centered, "weight_decay": weight_decay,
                    "capturable": capturable, "foreach": foreach, "maximize": maximize,
                    "differentiable": differentiable}
        self._validate(defaults)
        super().__init__(params, defaults)

    def _validate(self, o):
        _check_lr(o)
        _real(o, "eps", "momentum", "weight_decay", "alpha")
        _invalid(0.0 <= o["eps"], f"Invalid epsilon value: {o['eps']}")
        _invalid(0.0 <= o["momentum"], f"Invalid momentum value: {o['momentum']}")
        _invalid(0.0 <= o["weight_decay"], f"Invalid weight_decay value: {o['weight_decay']}")
        _invalid(0.0 <= o["alpha"], f"Invalid alpha value: {o['alpha']}")
        _check_flags(o)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("momentum", 0)
            group.setdefault("centered", False)
            group.setdefault("foreach", None)
            group.setdefault("maximize", False)
            group.setdefault("differentiable", False)
            group.setdefault("capturable", False)
        _steps_as_tensors(self)

    def _step_group(self, group):
        tensors, params, grads = self._gather(group)
        momentum, centered = group["momentum"], group["centered"]
        square_avgs, steps = [], []
        bufs = [] if momentum > 0 else None
        grad_avgs = [] if centered else None
        state = self.state
        for p, param in zip(tensors, params):
            s = state[p]
            if len(s) == 0:
                s["step"] = _step_counter()
                s["square_avg"] = _zeros_like(param)
                if momentum > 0:
                    s["momentum_buffer"] = _zeros_like(param)
                if centered:
                    s["grad_avg"] = _zeros_like(param)
            square_avgs.append(s["square_avg"]._data)
            steps.append(s["step"]._data)
            if momentum > 0:
                bufs.append(s["momentum_buffer"]._data)
            if centered:
                grad_avgs.append(s["grad_avg"]._data)
        self._run(backend.rmsprop_update, tensors,
                  (params, grads, square_avgs, steps, group["lr"], group["alpha"], group["eps"],
                   group["weight_decay"], momentum, centered, grad_avgs, bufs,
                   group["maximize"]), (1, 2, 3, 10, 11))
