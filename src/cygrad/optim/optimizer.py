"""Optimizer: torch.optim.Optimizer's base class (param groups, state, state dicts, hooks).

    opt = cygrad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt.zero_grad(); loss.backward(); opt.step()

Parameters come as an iterable of tensors, of (name, tensor) pairs, or of dicts ("param
groups"), each dict holding its own "params" and any options that override the defaults:

    Adam([{"params": body}, {"params": head, "lr": 1e-4}], lr=1e-3)

State is torch's: `opt.state[p]` is a dict of Tensors per parameter (the momentum buffer, Adam's
moments and its step counter, a 0-d float tensor), and `state_dict()` has torch's layout:
{"state": {index: {...}}, "param_groups": [{option: value, ..., "params": [index, ...]}]}.

How an update runs: each optimiser hands a whole group to one backend call
(`backend.sgd_update`, ...): a Cython kernel, or its numpy twin, which spell out torch's
single-tensor arithmetic operation by operation. Updates are written in place into each
parameter's array, in its own dtype. An array a live graph saved for its backward is
read-only: the kernel refuses it (the check and the write are one buffer request, so a thread
locking it meanwhile cannot make the step fail), and the optimiser retries that parameter on a
copy (copy-on-write), so the graph keeps the values its forward saw and the update is never
lost. Updates from several threads are serialised by one lock.

Where cygrad departs from torch on purpose (each says why where it is checked):
- the options of every param group are validated, not only the constructor's, and NaN is an
  invalid learning rate for every optimiser (torch's SGD lets it through);
- `differentiable=True` and `capturable=True` raise at construction: cygrad's updates run
  outside autograd, and CUDA graphs do not exist here (torch fails at the first step on CPU);
- hyperparameters are Python numbers (torch also takes 1-element Tensors);
- `load_state_dict` checks each state array's shape against its parameter;
- a set of parameters is refused (torch refuses it only inside a group dict).
"""

import contextlib
import numbers
import threading
import warnings
from collections import OrderedDict, defaultdict
from copy import deepcopy
from itertools import chain

import numpy as np

from ..tensor import Tensor
from ..utils._tensors import array as _array
from ..utils._tensors import wrap as _wrap
from ..utils._tensors import writable_array as _writable_array
from ..utils.hooks import RemovableHandle

__all__ = ["Optimizer", "register_optimizer_step_pre_hook",
           "register_optimizer_step_post_hook"]

# Every optimiser's arithmetic runs under this lock: two threads stepping optimisers over
# shared parameters would otherwise race on the same arrays (a copy-on-write by one could
# drop the other's in-place update).
_update_lock = threading.Lock()

_global_pre_hooks = OrderedDict()
_global_post_hooks = OrderedDict()


def register_optimizer_step_pre_hook(hook):
    """hook(optimizer, args, kwargs) runs before every optimizer's step (all optimizers)."""
    handle = RemovableHandle(_global_pre_hooks)
    _global_pre_hooks[handle.id] = hook
    return handle


def register_optimizer_step_post_hook(hook):
    """hook(optimizer, args, kwargs) runs after every optimizer's step (all optimizers)."""
    handle = RemovableHandle(_global_post_hooks)
    _global_post_hooks[handle.id] = hook
    return handle


def _hooked(step):
    """step wrapped with the step hooks: pre-hooks (global, then the optimizer's) may return
    (new_args, new_kwargs); post-hooks run after (the optimizer's, then global). Only the
    step of the optimizer's own class runs them: a subclass's step calling super().step()
    runs the hooks once, not twice."""

    def step_with_hooks(self, *args, **kwargs):
        if type(self).step is not step_with_hooks:  # reached through super(): already hooked
            return step(self, *args, **kwargs)
        self._opt_called = True  # read by the learning-rate schedulers' order warning
        if self._optimizer_step_pre_hooks or _global_pre_hooks:
            for hook in chain(tuple(_global_pre_hooks.values()),
                              tuple(self._optimizer_step_pre_hooks.values())):
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(f"{step} must return None or a tuple of "
                                           f"(new_args, new_kwargs), but got {result}.")
                    args, kwargs = result
        out = step(self, *args, **kwargs)
        if self._optimizer_step_post_hooks or _global_post_hooks:
            for hook in chain(tuple(self._optimizer_step_post_hooks.values()),
                              tuple(_global_post_hooks.values())):
                hook(self, args, kwargs)
        return out

    step_with_hooks.__name__, step_with_hooks.__doc__ = step.__name__, step.__doc__
    step_with_hooks.__qualname__ = getattr(step, "__qualname__", step.__name__)
    step_with_hooks.hooked = True
    return step_with_hooks


class Optimizer:
    """Base class: param_groups, per-parameter state, state dicts and hooks. A subclass
    validates its options in `_validate(options)` and updates one group in `_step_group`."""

    _state_shaped = True  # each state array has its parameter's shape (load_state_dict checks)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "hooked", False):
            cls.step = _hooked(step)  # a subclass's own step runs the hooks too (as torch's)

    def __init__(self, params, defaults):
        self.defaults = defaults
        self._optimizer_step_pre_hooks = OrderedDict()
        self._optimizer_step_post_hooks = OrderedDict()
        self._optimizer_state_dict_pre_hooks = OrderedDict()
        self._optimizer_state_dict_post_hooks = OrderedDict()
        self._optimizer_load_state_dict_pre_hooks = OrderedDict()
        self._optimizer_load_state_dict_post_hooks = OrderedDict()
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {type(params).__name__}")
        if isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs. "
                            "Please use a list instead.")
        self.state = defaultdict(dict)
        self.param_groups = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for param_group in param_groups:
            self.add_param_group(param_group)

    def _validate(self, options):
        """Raise for an invalid option value (torch's checks and messages; subclasses)."""

    # ------------------------------------------------------------------ groups and state

    def add_param_group(self, param_group):
        """Add a dict {"params": ..., option: value}; missing options take the defaults."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs. "
                            "Please use a list instead.")
        else:
            params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        params = [p[1] if isinstance(p, tuple) else p for p in params]
        if names and len(names) != len(params):
            raise ValueError("all optimizer params should be with/without names. Some param "
                             "names are missing")
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params is "
                                f"{type(p).__module__}.{type(p).__name__}")
            if not (p.is_leaf or p.retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor")
        group = dict(param_group)
        group["params"] = params
        if names:
            group["param_names"] = names
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._validate(group)
        if len({id(p) for p in params}) != len(params):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in "
                          "future, this will cause an error; see "
                          "github.com/pytorch/pytorch/issues/40967 for more information",
                          stacklevel=3)
        seen = set()
        for other in self.param_groups:
            seen.update(id(p) for p in other["params"])
            if ("param_names" in group) != ("param_names" in other):
                kind = "with names" if "param_names" in group else "without names"
                raise ValueError("all optimizer param groups should be with/without names. "
                                 f"cannot add param group {kind} to the optimizer")
        if not seen.isdisjoint(id(p) for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        param_group.clear()
        param_group.update(group)  # torch fills the caller's dict in place
        self.param_groups.append(param_group)

    def zero_grad(self, set_to_none=True):
        """Reset every parameter's .grad: to None (default) or to zeros in place."""
        if set_to_none:
            for group in self.param_groups:
                for p in group["params"]:
                    p._grad = None  # (the property's slot, written directly: a hot path)
            return
        for group in self.param_groups:
            for p in group["params"]:
                grad = p._grad
                if grad is None:
                    continue
                if isinstance(grad, np.ndarray):
                    grad[...] = 0
                elif hasattr(grad, "zero_"):
                    grad.zero_()
                else:
                    grad._data[...] = 0

    def step(self, closure=None):
        """Update every parameter that has a gradient; closure (optional) re-evaluates the
        model and returns the loss, which step returns."""
        loss = None
        if closure is not None:
            with _enable_grad():
                loss = closure()
        with _update_lock:
            for group in self.param_groups:
                self._step_group(group)
        return loss

    def _step_group(self, group):
        raise NotImplementedError

    @staticmethod
    def _gather(group):
        """(tensors, params, grads) for the group's parameters with a gradient: the Tensors,
        their arrays and their gradients' arrays (of the parameter's dtype and shape)."""
        tensors, params, grads = [], [], []
        for p in group["params"]:
            g = p._grad  # (the property's value, read directly: a hot path)
            if g is None:
                continue
            g = g._data if type(g) is Tensor else _array(g)
            a = p._data
            if g.dtype is not a.dtype or g.shape != a.shape:
                g = _conform(g, a)
            tensors.append(p)
            params.append(a)
            grads.append(g)
        return tensors, params, grads

    @staticmethod
    def _run(update, tensors, args, lists):
        """update(*args), a backend call over the group (args[0] the parameters' arrays;
        `lists` the positions of all the per-parameter lists in args). The parameters it
        refuses (read-only: a live graph saved them) are retried one by one on a copy."""
        refused = update(*args)
        tries = 0
        while refused:
            tries += 1
            if tries > 100:
                raise RuntimeError("optimizer: parameters stayed read-only after 100 "
                                   "copy-on-write attempts")
            again = []
            for i in refused:
                one = list(args)
                for k in lists:
                    one[k] = None if args[k] is None else [args[k][i]]
                one[0] = [_writable_array(tensors[i])]
                if update(*one):
                    again.append(i)
            refused = again

    # ------------------------------------------------------------------ hooks

    def register_step_pre_hook(self, hook):
        """hook(optimizer, args, kwargs) -> None or (new_args, new_kwargs), before each step.
        Returns a handle whose remove() unregisters it."""
        handle = RemovableHandle(self._optimizer_step_pre_hooks)
        self._optimizer_step_pre_hooks[handle.id] = hook
        return handle

    def register_step_post_hook(self, hook):
        """hook(optimizer, args, kwargs) -> None, after each step. Returns a handle."""
        handle = RemovableHandle(self._optimizer_step_post_hooks)
        self._optimizer_step_post_hooks[handle.id] = hook
        return handle

    def register_state_dict_pre_hook(self, hook, prepend=False):
        """hook(optimizer) before state_dict() builds its dict."""
        return _register(self._optimizer_state_dict_pre_hooks, hook, prepend)

    def register_state_dict_post_hook(self, hook, prepend=False):
        """hook(optimizer, state_dict) -> None or a state dict to return instead."""
        return _register(self._optimizer_state_dict_post_hooks, hook, prepend)

    def register_load_state_dict_pre_hook(self, hook, prepend=False):
        """hook(optimizer, state_dict) -> None or a state dict to load instead."""
        return _register(self._optimizer_load_state_dict_pre_hooks, hook, prepend)

    def register_load_state_dict_post_hook(self, hook, prepend=False):
        """hook(optimizer) after load_state_dict()."""
        return _register(self._optimizer_load_state_dict_post_hooks, hook, prepend)

    # ------------------------------------------------------------------ saving and loading

    def state_dict(self):
        """{"state": {index: state dict}, "param_groups": [options and "params" indices]}.

        Parameters are numbered across groups in order, as in torch. As torch's, the state
        dicts and tensors are the optimizer's own (not copies): save them, or deepcopy.
        """
        for hook in self._optimizer_state_dict_pre_hooks.values():
            hook(self)
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {(index[id(k)] if isinstance(k, Tensor) else k): v
                 for k, v in self.state.items()}
        state_dict = {"state": state, "param_groups": groups}
        for hook in self._optimizer_state_dict_post_hooks.values():
            result = hook(self, state_dict)
            if result is not None:
                state_dict = result
        return state_dict

    def load_state_dict(self, state_dict):
        """Restore options and state saved by state_dict() (or read back by cygrad.load).

        Groups must match in number and size. State arrays become Tensors of their
        parameter's dtype (shared, not copied, when they already are); step counters keep
        theirs. Everything is checked before anything changes.
        """
        state_dict = dict(state_dict)
        for hook in self._optimizer_load_state_dict_pre_hooks.values():
            result = hook(self, state_dict)
            if result is not None:
                state_dict = result
        groups = self.param_groups
        saved_groups = deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"])
               for g, s in zip(groups, saved_groups, strict=True)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match "
                             "the size of optimizer's group")
        id_map = dict(zip(chain.from_iterable(s["params"] for s in saved_groups),
                          chain.from_iterable(g["params"] for g in groups), strict=True))
        state = defaultdict(dict)
        for key, value in state_dict["state"].items():
            if key in id_map:
                state[id_map[key]] = _cast(id_map[key], value, key, self._state_shaped)
            else:
                state[key] = value
        for group, saved in zip(groups, saved_groups, strict=True):
            saved["params"] = group["params"]
            if "param_names" in group and "param_names" not in saved:
                saved["param_names"] = group["param_names"]
            self._validate(saved)
        self.__setstate__({"state": state, "param_groups": saved_groups})
        for hook in self._optimizer_load_state_dict_post_hooks.values():
            hook(self)

    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state,
                "param_groups": self.param_groups}

    def __setstate__(self, state):
        self.__dict__.update(state)
        for name in ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks",
                     "_optimizer_state_dict_pre_hooks", "_optimizer_state_dict_post_hooks",
                     "_optimizer_load_state_dict_pre_hooks",
                     "_optimizer_load_state_dict_post_hooks"):
            if name not in self.__dict__:
                setattr(self, name, OrderedDict())
        self.defaults.setdefault("differentiable", False)

    def __repr__(self):
        text = f"{type(self).__name__} ("
        for i, group in enumerate(self.param_groups):
            text += f"\nParameter Group {i}\n"
            for key in sorted(group):
                if key != "params":
                    text += f"    {key}: {group[key]}\n"
        return text + ")"


Optimizer.step = _hooked(Optimizer.step)


# ---------------------------------------------------------------------- helpers

def _register(hooks, hook, prepend):
    handle = RemovableHandle(hooks)
    hooks[handle.id] = hook
    if prepend:
        hooks.move_to_end(handle.id, last=False)
    return handle


def _enable_grad():
    """The closure records a graph even inside no_grad (torch.enable_grad)."""
    import cygrad

    enable = getattr(cygrad, "enable_grad", None)
    return enable() if enable is not None else contextlib.nullcontext()


def _conform(g, a):
    """A gradient g for parameter array a, in a's dtype; its shape must be a's."""
    if g.shape != a.shape:
        raise ValueError(f"gradient of shape {g.shape} for a parameter of shape {a.shape}")
    if g.dtype.kind not in "fiub":
        raise TypeError(f"gradient of dtype {g.dtype} for a parameter of dtype {a.dtype}")
    return g.astype(a.dtype)


def _scalar_dtype():
    """The dtype of a step counter: float64 when it is the default dtype, else float32 (as
    torch's _get_scalar_dtype)."""
    import cygrad

    default = cygrad.get_default_dtype()
    default = getattr(default, "numpy", default)
    return np.dtype(np.float64) if np.dtype(default) == np.float64 else np.dtype(np.float32)


def _step_counter(value=0.0):
    return _wrap(np.array(value, dtype=_scalar_dtype()))


def _zeros_like(a):
    return _wrap(np.zeros_like(a))


def _cast(param, value, key=None, shaped=True):
    """A loaded state value for param: arrays and Tensors become Tensors of param's dtype
    (shared when they already are; of param's shape when `shaped`, unless 0-d: a scalar of
    the parameter's, as NAdam's mu_product), except "step", which keeps its own; dicts and
    lists recursively; anything else as it is."""
    if isinstance(value, (Tensor, np.ndarray, np.generic)):
        array = _array(value)
        if key != "step":
            if shaped and array.ndim and array.shape != param._data.shape:
                raise ValueError(f"state {key!r} has shape {array.shape}, its parameter "
                                 f"{param._data.shape}")
            if array.dtype != param._data.dtype:
                array = array.astype(param._data.dtype)
        elif array.dtype.kind not in "f":
            array = array.astype(_scalar_dtype())
        if isinstance(value, Tensor) and array is value._data:
            return value
        return _wrap(np.array(array) if not isinstance(array, np.ndarray) else array)
    if isinstance(value, dict):
        return {k: _cast(param, v, k, shaped) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast(param, v, None, shaped) for v in value)
    return value


def _restore_flags(optimizer, flags):
    """After __setstate__ (an older checkpoint): each group's missing flags get their
    defaults, and numeric step counters become Tensors."""
    for group in optimizer.param_groups:
        for key, value in flags.items():
            group.setdefault(key, value)
    _steps_as_tensors(optimizer)


def _steps_as_tensors(optimizer):
    """State saved with a number for "step" (older checkpoints) gets a step Tensor."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            p_state = optimizer.state.get(p)
            if p_state and "step" in p_state and not isinstance(p_state["step"], Tensor):
                p_state["step"] = _step_counter(float(p_state["step"]))


# ---------------------------------------------------------------------- option checks

def _real(options, *names):
    """The named options are real numbers (not bools): TypeError naming the one that is not."""
    for name in names:
        value = options[name]
        if isinstance(value, Tensor):
            raise TypeError(f"{name} must be a Python number: cygrad's optimisers do not take "
                            f"Tensor hyperparameters, got a Tensor of shape {value.shape}")
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise TypeError(f"{name} must be a number, got {value!r}")


def _invalid(ok, message):
    if not ok:
        raise ValueError(message)


def _check_lr(options):
    _real(options, "lr")
    # not (0 <= lr): NaN is invalid too, for every optimiser (torch's SGD lets it through)
    _invalid(0.0 <= options["lr"], f"Invalid learning rate: {options['lr']}")


def _check_flags(options):
    """foreach and fused change nothing here (every update is one fused kernel call per
    group); differentiable and capturable cannot be honoured."""
    if options.get("differentiable"):
        raise RuntimeError("differentiable=True is not supported: cygrad's optimizer updates "
                           "run outside autograd (no gradient flows through step())")
    if options.get("capturable"):
        raise RuntimeError("capturable=True is for CUDA graph capture; cygrad runs on the CPU "
                           "only (torch fails there too, at the first step)")
    if options.get("fused") and options.get("foreach"):
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
    if "maximize" in options and not isinstance(options["maximize"], (bool, np.bool_)):
        raise TypeError(f"maximize must be a bool, got {options['maximize']!r}")
