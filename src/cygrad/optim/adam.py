"""Adam and AdamW (torch.optim.Adam, torch.optim.AdamW)."""

import numbers

from .. import backend
from ..tensor import Tensor
from .optimizer import (
    Optimizer,
    _check_flags,
    _check_lr,
    _invalid,
    _real,
    _restore_flags,
    _step_counter,
    _zeros_like,
)

__all__ = ["Adam", "AdamW"]


def _validate_adam(o):
    """Adam's option checks (torch's messages), shared by its variants (adam_family.py)."""
    _check_lr(o)
    _real(o, "eps", "weight_decay")
    betas = o["betas"]
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas must be a pair of numbers (beta1, beta2), got {betas!r}")
    if any(isinstance(b, Tensor) for b in betas):
        raise TypeError("betas must be Python floats: cygrad's optimisers do not take "
                        "Tensor hyperparameters")
    if not all(isinstance(b, numbers.Real) and not isinstance(b, bool) for b in betas):
        raise TypeError(f"betas must be a pair of numbers (beta1, beta2), got {betas!r}")
    _invalid(0.0 <= o["eps"], f"Invalid epsilon value: {o['eps']}")
    _invalid(0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}")
    _invalid(0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}")
    _invalid(0.0 <= o["weight_decay"], f"Invalid weight_decay value: {o['weight_decay']}")
    _invalid(isinstance(betas[0], float) and isinstance(betas[1], float),
             "betas must be either both floats or both Tensors")
    _check_flags(o)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), torch's algorithm and signature:

        t = t + 1
        g = -grad if maximize else grad
        g = g + weight_decay * p          (Adam: the L2 penalty joins the gradient)
        p = p * (1 - lr * weight_decay)   (decoupled_weight_decay, as AdamW, instead)
        m = lerp(m, g, 1 - beta1)                    (m + (1 - beta1) * (g - m))
        v = beta2 * v + (1 - beta2) * g * g
        vmax = max(vmax, v), used for v               (amsgrad)
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    The bias corrections are formed in double per parameter from its step counter, as
    torch's. foreach and fused are accepted and change nothing (one fused kernel per group).
    State per parameter: "step" (a 0-d float tensor), "exp_avg", "exp_avg_sq", and
    "max_exp_avg_sq" with amsgrad.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False):
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "amsgrad": amsgrad, "maximize": maximize, "foreach": foreach,
                    "capturable": capturable, "differentiable": differentiable,
                    "fused": fused, "decoupled_weight_decay": decoupled_weight_decay}
        self._validate(defaults)
        super().__init__(params, defaults)

    def _validate(self, o):
        _validate_adam(o)

    _flags = {"amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
              "differentiable": False, "decoupled_weight_decay": False, "fused": None}

    def __setstate__(self, state):
        super().__setstate__(state)
        _restore_flags(self, self._flags)

    def _step_group(self, group):
        tensors, params, grads = self._gather(group)
        amsgrad = group["amsgrad"]
        exp_avgs, exp_avg_sqs, maxes, steps = [], [], [] if amsgrad else None, []
        state = self.state
        for p, param in zip(tensors, params):
            s = state[p]
            if len(s) == 0:
                s["step"] = _step_counter()
                s["exp_avg"] = _zeros_like(param)
                s["exp_avg_sq"] = _zeros_like(param)
                if amsgrad:
                    s["max_exp_avg_sq"] = _zeros_like(param)
            exp_avgs.append(s["exp_avg"]._data)
            exp_avg_sqs.append(s["exp_avg_sq"]._data)
            if amsgrad:
                maxes.append(s["max_exp_avg_sq"]._data)
            steps.append(s["step"]._data)
        beta1, beta2 = group["betas"]
        self._run(backend.adam_update, tensors,
                  (params, grads, exp_avgs, exp_avg_sqs, steps, group["lr"], beta1, beta2,
                   group["eps"], group["weight_decay"], group["decoupled_weight_decay"],
                   amsgrad, maxes, group["maximize"]), (1, 2, 3, 4, 12))


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), torch's AdamW: Adam with
    decoupled_weight_decay=True, weight_decay 1e-2 by default.

        p = p * (1 - lr * weight_decay)      before the Adam step, which sees the raw gradient
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable,
                         differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
