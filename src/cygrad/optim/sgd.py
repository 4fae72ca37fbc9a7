"""SGD: stochastic gradient descent, optionally with momentum (torch.optim.SGD)."""

import numpy as np

from .. import backend
from .optimizer import Optimizer, _check_flags, _check_lr, _invalid, _real, _wrap

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent, torch's algorithm and signature:

        g = -grad if maximize else grad
        g = g + weight_decay * p                     (weight_decay != 0)
        b = g                                        on the buffer's first step
        b = momentum * b + (1 - dampening) * g       afterwards           (momentum != 0)
        g = g + momentum * b  (nesterov)  or  g = b                       (momentum != 0)
        p = p - lr * g

    lr defaults to 1e-3 (torch >= 2.2). foreach and fused are accepted and change nothing:
    every group is one fused kernel call. State: "momentum_buffer" per parameter, only with
    momentum.
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False,
                 fused=None):
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize,
                    "foreach": foreach, "differentiable": differentiable, "fused": fused}
        self._validate(defaults)
        super().__init__(params, defaults)

    def _validate(self, o):
        _check_lr(o)
        _real(o, "momentum", "dampening", "weight_decay")
        _invalid(o["momentum"] >= 0.0, f"Invalid momentum value: {o['momentum']}")
        _invalid(o["weight_decay"] >= 0.0, f"Invalid weight_decay value: {o['weight_decay']}")
        if o["nesterov"] and (o["momentum"] <= 0 or o["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        _check_flags(o)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("nesterov", False)
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("differentiable", False)
            group.setdefault("fused", False)

    def _step_group(self, group):
        tensors, params, grads = self._gather(group)
        momentum = group["momentum"]
        bufs = fresh = None
        if momentum != 0:
            state = self.state
            bufs, fresh = [], []
            for p, param in zip(tensors, params):
                buf = state[p].get("momentum_buffer")
                fresh.append(buf is None)
                bufs.append(np.empty_like(param) if buf is None else buf._data)
        # backend.sgd_update(params, grads, lr, momentum, dampening, nesterov, weight_decay,
        #                    bufs, fresh, maximize): lists at 0, 1, 7, 8
        self._run(backend.sgd_update, tensors,
                  (params, grads, group["lr"], momentum, group["dampening"], group["nesterov"],
                   group["weight_decay"], bufs, fresh, group["maximize"]), (1, 7, 8))
        if fresh is not None:  # new buffers join the state once the update has filled them
            for p, buf, new in zip(tensors, bufs, fresh):
                if new:
                    self.state[p]["momentum_buffer"] = _wrap(buf)
