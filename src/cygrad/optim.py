"""Optimisers with PyTorch's names, options and update rules: SGD, Adam, AdamW.

    opt = cygrad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt.zero_grad(); loss.backward(); opt.step()

Parameters come as an iterable of tensors or of dicts ("param groups"), each dict holding its
own "params" and any options that override the defaults:

    Adam([{"params": body}, {"params": head, "lr": 1e-4}], lr=1e-3)

Updates are written in place into the parameter's array, in the parameter's own dtype
(hyperparameters are rounded to that dtype first, so float32 stays float32). A parameter whose
`.grad` is None is skipped, state and all.

Why the updates only use +, -, *, / and sqrt on arrays: these are correctly rounded in IEEE
arithmetic, so each element's new value depends only on that element's own parameter, gradient
and state, never on where it sits in the array (SIMD lane or loop tail). Two weights that are
equal with equal gradients stay bitwise equal, which cygrad's symmetry experiments rely on.
Powers like beta**step are Python scalars, computed once per step. The arithmetic itself runs
in the backend, a group at a time (`backend.sgd_update`, `backend.adam_update`: one kernel call
for all the parameters, the numpy twin spelling out each operation).
"""

import numbers

import numpy as np

from . import backend
from .tensor import Tensor

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]


class Optimizer:
    """Base class: holds param_groups and per-parameter state; subclasses define `_update`
    (one parameter at a time) or `_step_group` (a group at a time)."""

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}  # parameter (by identity) -> dict of its state arrays and counters
        if isinstance(params, Tensor):
            raise TypeError("params must be an iterable of Tensors or of dicts, got a single "
                            "Tensor; wrap it in a list")
        if isinstance(params, (set, frozenset)):
            raise TypeError("params must be an ordered collection (a set has no stable order, "
                            "so state_dict indices would change between runs)")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group):
        """Add a dict {"params": ..., option: value}; missing options take the defaults."""
        if not isinstance(group, dict):
            raise TypeError(f"a param group must be a dict, got {type(group).__name__}")
        params = group.get("params")
        if params is None:
            raise ValueError("a param group needs a 'params' entry")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError("a param group's 'params' must be ordered, not a set")
        params = list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, got {type(p).__name__}")
            if p._op is not None:
                raise ValueError("can't optimize a non-leaf Tensor (one computed by an op)")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids) or seen.intersection(ids):
            raise ValueError("the same parameter appears more than once in the optimizer's "
                             "parameter groups")
        full = dict(self.defaults)
        full.update(group)
        full["params"] = params
        _check_types(full)
        self._check_options(full)
        self.param_groups.append(full)

    def _check_options(self, group):
        """Raise ValueError for an invalid option value (subclasses)."""

    def zero_grad(self, set_to_none=True):
        """Clear every parameter's .grad: set it to None (default) or fill it with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad._data[...] = 0

    def step(self, closure=None):
        """Update every parameter with a gradient; closure (optional) recomputes the loss."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            self._step_group(group)
        return loss

    def _step_group(self, group):
        for p in group["params"]:
            if p.grad is not None:
                param, grad = self._pair(p)
                self._update(param, grad, self.state.setdefault(p, {}), group)

    def _gradients(self, group):
        """(tensors, arrays, grads) for the group's parameters with a gradient: the arrays to
        update in place (copied first if a live graph saved them) and the gradients in their
        dtype, checked; each such parameter has a state dict afterwards."""
        tensors, params, grads, state = [], [], [], self.state
        for p in group["params"]:
            grad = _grad_array(p)
            if grad is None:
                continue
            param = p._data
            if not (type(grad) is np.ndarray and grad.dtype is param.dtype
                    and grad.shape == param.shape and param.flags.writeable):
                param, grad = self._pair(p)  # the checks, the conversion, the copy-on-write
            tensors.append(p)
            params.append(param)
            grads.append(grad)
            if p not in state:
                state[p] = {}
        return tensors, params, grads

    @staticmethod
    def _pair(p):
        """(array to update in place, gradient in its dtype) for a parameter with a grad. The
        array is copied first if a live graph saved it for its backward (copy-on-write)."""
        grad, param = _grad_array(p), p._data
        if not (type(grad) is np.ndarray and grad.dtype is param.dtype
                and grad.shape == param.shape):  # the common case in one test
            grad = np.asarray(grad)
            if grad.shape != param.shape:
                raise ValueError(f"gradient of shape {grad.shape} for a parameter of shape "
                                 f"{param.shape}")
            grad = grad.astype(param.dtype, copy=False)
        return p._writable_data(), grad

    def _update(self, param, grad, state, group):
        """Update param (an array) in place from its grad and state (subclasses).

        Scalars are formed in Python floats (double), as torch forms them, and rounded to
        param's dtype right before they meet an array: float32 stays float32.
        """
        raise NotImplementedError

    # ------------------------------------------------------------------ saving and loading

    def state_dict(self):
        """The optimizer's options and state as plain dicts of numbers and arrays (copies).

            {"state": {index: {name: array or number}},
             "param_groups": [{option: value, ..., "params": [index, ...]}]}

        Parameters are numbered across groups in order, as in PyTorch.
        """
        index, groups = {}, []
        for group in self.param_groups:
            saved = {k: v for k, v in group.items() if k != "params"}
            saved["params"] = []
            for p in group["params"]:
                index[id(p)] = len(index)
                saved["params"].append(index[id(p)])
            groups.append(saved)
        state = {}
        for p, s in self.state.items():
            state[index[id(p)]] = {k: v.copy() if isinstance(v, np.ndarray) else v
                                   for k, v in s.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore options and state saved by state_dict() onto this optimizer's parameters.

        Groups must match in number and size; state arrays are copied and cast to each
        parameter's dtype. Everything is checked before anything changes.
        """
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(groups)} parameter groups, the "
                             f"optimizer has {len(self.param_groups)}")
        by_index, options = {}, []
        for saved, group in zip(groups, self.param_groups, strict=True):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError("loaded state dict has a parameter group of a different size "
                                 f"({len(saved['params'])} vs {len(group['params'])})")
            by_index.update(zip(saved["params"], group["params"], strict=True))
            opts = {k: v for k, v in saved.items() if k != "params"}
            if "betas" in opts:
                opts["betas"] = tuple(opts["betas"])  # a list after a JSON round trip
            self._check_options({**group, **opts})
            options.append(opts)
        new_state = {}
        for key, s in state_dict["state"].items():
            p = by_index.get(int(key))
            if p is None:
                raise ValueError(f"loaded state dict has state for unknown parameter {key}")
            new_state[p] = {}
            for name, value in s.items():
                if isinstance(value, np.ndarray):
                    if value.shape != p._data.shape:
                        raise ValueError(f"state {name!r} of parameter {key} has shape "
                                         f"{value.shape}, the parameter {p._data.shape}")
                    value = value.astype(p._data.dtype, copy=True)
                new_state[p][name] = value
        for opts, group in zip(options, self.param_groups, strict=True):
            group.update(opts)
        self.state = new_state

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines + [")"])


def _grad_array(p):
    """The array of p's gradient."""
    g = p.grad
    return g._data if isinstance(g, Tensor) else g


def _check_types(group):
    """Options are numbers (betas a pair of numbers, nesterov a bool): say which one is not."""
    for name, value in group.items():
        if name in ("params", "nesterov"):
            continue
        if name == "betas":
            if (not isinstance(value, (tuple, list)) or len(value) != 2
                    or not all(isinstance(b, numbers.Real) for b in value)):
                raise TypeError(f"betas must be a pair of numbers (beta1, beta2), got {value!r}")
        elif not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise TypeError(f"optimizer option {name} must be a number, got {value!r}")


def _check(ok, message):
    if not ok:
        raise ValueError(message)


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum (PyTorch's algorithm).

        g = grad + weight_decay * p
        b = g                                   on the first step
        b = momentum * b + (1 - dampening) * g  afterwards
        g = g + momentum * b   (nesterov)   or   g = b   (momentum > 0)
        p = p - lr * g

    lr defaults to 1e-3 as in torch >= 2.2.
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, nesterov=False,
                 weight_decay=0):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                        weight_decay=weight_decay)
        super().__init__(params, defaults)

    def _check_options(self, group):
        _check(0.0 <= group["lr"], f"invalid learning rate: {group['lr']}")
        _check(0.0 <= group["momentum"] < 1.0,
               f"invalid momentum value: {group['momentum']} (must be in [0, 1))")
        _check(0.0 <= group["weight_decay"], f"invalid weight_decay value: {group['weight_decay']}")
        if group["nesterov"]:
            _check(group["momentum"] > 0 and group["dampening"] == 0,
                   "Nesterov momentum requires a momentum > 0 and zero dampening, got "
                   f"momentum={group['momentum']}, dampening={group['dampening']}")

    def _step_group(self, group):
        # the whole group in one backend call (numpy_backend.sgd_update states the arithmetic)
        tensors, params, grads = self._gradients(group)
        bufs = fresh = None
        if group["momentum"] != 0:
            bufs, fresh = [], []
            for p, param in zip(tensors, params):
                buf = self.state[p].get("momentum_buffer")
                fresh.append(buf is None)
                bufs.append(np.empty_like(param) if buf is None else buf)  # the first step
        backend.sgd_update(params, grads, group["lr"], group["momentum"], group["dampening"],
                           group["nesterov"], group["weight_decay"], bufs, fresh)
        if bufs is not None:  # new buffers join the state once the update has filled them
            for p, buf, new in zip(tensors, bufs, fresh):
                if new:
                    self.state[p]["momentum_buffer"] = buf


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), with PyTorch's bias correction.

        t = t + 1
        g = grad + weight_decay * p                  (L2 penalty, coupled into the gradient)
        m = beta1 * m + (1 - beta1) * g              (as torch: m.lerp_(g, 1 - beta1))
        v = beta2 * v + (1 - beta2) * g * g
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)
    """

    decoupled = False  # AdamW: weight decay shrinks the parameter instead

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults)

    def _check_options(self, group):
        beta1, beta2 = group["betas"]
        _check(0.0 <= group["lr"], f"invalid learning rate: {group['lr']}")
        _check(0.0 <= group["eps"], f"invalid epsilon value: {group['eps']}")
        _check(0.0 <= beta1 < 1.0, f"invalid beta parameter at index 0: {beta1}")
        _check(0.0 <= beta2 < 1.0, f"invalid beta parameter at index 1: {beta2}")
        _check(0.0 <= group["weight_decay"], f"invalid weight_decay value: {group['weight_decay']}")

    def _step_group(self, group):
        # the whole group in one backend call (numpy_backend.adam_update states the arithmetic)
        tensors, params, grads = self._gradients(group)
        beta1, beta2 = group["betas"]
        exp_avgs, exp_avg_sqs, step_sizes, corrections = [], [], [], []
        for p, param in zip(tensors, params):
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["exp_avg"] = np.zeros_like(param)
                state["exp_avg_sq"] = np.zeros_like(param)
            step = state["step"] + 1
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            # bias corrections are scalars: computed in double once per step, as torch does
            step_sizes.append(group["lr"] / (1 - beta1 ** step))
            corrections.append((1 - beta2 ** step) ** 0.5)
        decay = group["weight_decay"]
        shrink = 1 - group["lr"] * decay if self.decoupled and decay != 0 else None
        backend.adam_update(params, grads, exp_avgs, exp_avg_sqs, step_sizes, corrections,
                            beta1, beta2, group["eps"], 0.0 if self.decoupled else decay, shrink)
        for p in tensors:  # counted once the update is done
            self.state[p]["step"] += 1


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), PyTorch's algorithm.

        p = p * (1 - lr * weight_decay)      before the Adam step, which sees the raw gradient
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    decoupled = True
