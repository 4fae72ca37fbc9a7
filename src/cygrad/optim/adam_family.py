"""Adamax, NAdam and RAdam (torch.optim's), with torch's signatures, defaults, checks, state and
state_dict layout. Each updates a whole parameter group in one backend call; these three have
no native kernel yet, so both backends run their numpy twins (backend/numpy_backend.py: torch's
single-tensor arithmetic operation by operation, elementwise: every element the same
operations, wherever it lies and at any thread count)."""

from .. import backend
from .adam import _validate_adam
from .optimizer import Optimizer, _invalid, _real, _restore_flags, _step_counter, _zeros_like

__all__ = ["Adamax", "NAdam", "RAdam"]


class _AdamFamily(Optimizer):
    """Shared: Adam's checks, the flags' defaults when loading (`_flags`), and a group's state
    gathered into lists for the backend call. A subclass names its state (`_moments`: arrays
    of the parameter's shape, made at the first step) and its call (`_update`)."""

    _moments = ()
    _flags = {"maximize": False, "foreach": None, "capturable": False, "differentiable": False}

    def __init__(self, params, defaults):
        self._validate(defaults)
        super().__init__(params, defaults)

    def _validate(self, o):
        _validate_adam(o)

    def __setstate__(self, state):
        super().__setstate__(state)
        _restore_flags(self, self._flags)

    def _new_state(self, s, param):
        s["step"] = _step_counter()
        for name in self._moments:
            s[name] = _zeros_like(param)

    def _step_group(self, group):
        tensors, params, grads = self._gather(group)
        lists = {name: [] for name in ("step",) + self._moments}
        for p, param in zip(tensors, params):
            s = self.state[p]
            if len(s) == 0:
                self._new_state(s, param)
            for name, values in lists.items():
                values.append(s[name]._data)
        self._update(group, tensors, params, grads, lists)


class Adamax(_AdamFamily):
    """Adamax (Kingma & Ba, 2015: Adam with the infinity norm), torch's algorithm:

        g = -grad if maximize else grad;  g = g + weight_decay * p
        m = lerp(m, g, 1 - beta1);  u = max(beta2 * u, |g| + eps)
        p = p - lr / (1 - beta1**t) * m / u

    State per parameter: "step", "exp_avg", "exp_inf".
    """

    _moments = ("exp_avg", "exp_inf")

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 foreach=None, *, maximize=False, differentiable=False, capturable=False):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps,
                                  "weight_decay": weight_decay, "foreach": foreach,
                                  "maximize": maximize, "differentiable": differentiable,
                                  "capturable": capturable})

    def _update(self, group, tensors, params, grads, lists):
        beta1, beta2 = group["betas"]
        self._run(backend.adamax_update, tensors,
                  (params, grads, lists["exp_avg"], lists["exp_inf"], lists["step"],
                   group["lr"], beta1, beta2, group["eps"], group["weight_decay"],
                   group["maximize"]), (1, 2, 3, 4))


_DECOUPLED = {**_AdamFamily._flags, "decoupled_weight_decay": False}


class NAdam(_AdamFamily):
    """NAdam (Dozat, 2016: Adam with Nesterov momentum), torch's algorithm: the momentum
    schedule mu_t = beta1 (1 - 0.5 * 0.96**(t * momentum_decay)) and its running product,
    then p takes -lr (1 - mu_t) / (1 - prod_t) g / d and -lr mu_{t+1} / (1 - prod_{t+1}) m / d
    with d = sqrt(v / (1 - beta2**t)) + eps; decoupled_weight_decay as AdamW.

    State per parameter: "step", "mu_product" (0-d, the step counter's dtype), "exp_avg",
    "exp_avg_sq".
    """

    _moments = ("exp_avg", "exp_avg_sq")
    _flags = _DECOUPLED

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, foreach=None,
                 maximize=False, capturable=False, differentiable=False):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps,
                                  "weight_decay": weight_decay,
                                  "momentum_decay": momentum_decay,
                                  "decoupled_weight_decay": decoupled_weight_decay,
                                  "foreach": foreach, "maximize": maximize,
                                  "capturable": capturable, "differentiable": differentiable})

    def _validate(self, o):
        super()._validate(o)
        _real(o, "momentum_decay")
        _invalid(0.0 <= o["momentum_decay"],
                 f"Invalid momentum_decay value: {o['momentum_decay']}")

    def _new_state(self, s, param):
        s["step"] = _step_counter()
        s["mu_product"] = _step_counter(1.0)
        for name in self._moments:
            s[name] = _zeros_like(param)

    def _update(self, group, tensors, params, grads, lists):
        beta1, beta2 = group["betas"]
        mu_products = [self.state[p]["mu_product"]._data for p in tensors]
        self._run(backend.nadam_update, tensors,
                  (params, grads, lists["exp_avg"], lists["exp_avg_sq"], mu_products,
                   lists["step"], group["lr"], beta1, beta2, group["eps"],
                   group["weight_decay"], group["momentum_decay"],
                   group["decoupled_weight_decay"], group["maximize"]), (1, 2, 3, 4, 5))


class RAdam(_AdamFamily):
    """RAdam (Liu et al., 2019: Adam with the variance of the adaptive rate rectified),
    torch's algorithm: while the approximated SMA length rho_t is at most 5 the step is plain
    momentum, p = p - lr m / (1 - beta1**t); after, Adam's step scaled by the rectification
    term; decoupled_weight_decay as AdamW.

    State per parameter: "step", "exp_avg", "exp_avg_sq".
    """

    _moments = ("exp_avg", "exp_avg_sq")
    _flags = _DECOUPLED

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False,
                 capturable=False, differentiable=False):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps,
                                  "weight_decay": weight_decay,
                                  "decoupled_weight_decay": decoupled_weight_decay,
                                  "foreach": foreach, "maximize": maximize,
                                  "capturable": capturable, "differentiable": differentiable})

    def _update(self, group, tensors, params, grads, lists):
        beta1, beta2 = group["betas"]
        self._run(backend.radam_update, tensors,
                  (params, grads, lists["exp_avg"], lists["exp_avg_sq"], lists["step"],
                   group["lr"], beta1, beta2, group["eps"], group["weight_decay"],
                   group["decoupled_weight_decay"], group["maximize"]), (1, 2, 3, 4))
