"""Module, Parameter and Buffer, with PyTorch's names and semantics.

A Module keeps its parameters, buffers and submodules in ordered tables (`_parameters`,
`_buffers`, `_modules`); assigning a Parameter, a Module or a Buffer to an attribute registers
it (and a Tensor assigned to a buffer's name replaces the buffer). `module(x)` runs the forward
pre-hooks, `forward` and the forward hooks, and sets up the backward hooks (nn/_hooks.py).

Departures from torch, on purpose: `load_state_dict` also takes numpy arrays (what
`cygrad.load` returns); only the CPU exists (`cuda()` raises), and there is no float16
(`half()` raises); global hooks are not offered.

A tensor can be computed instead of stored (nn.utils.parametrize, weight_norm, prune): its
name leaves the module's table for a property or a plain attribute, and the table becomes a
`_ComputedTable`, where `table[name]` (what the layers' forwards read, faster than the
attribute) returns the computed tensor while iteration, `in` and len still see only what is
stored: named_parameters() and state_dict() list what torch's do.
"""

import functools
import warnings
from collections import OrderedDict, namedtuple
from collections.abc import Mapping

import numpy as np

from .. import dtypes
from ..autograd import no_grad
from ..ops.factories import tensor as _tensor
from ..tensor import Tensor, _extra, _extras, _init, _wrap, check_device, device
from ._hooks import BackwardHook, RemovableHandle

__all__ = ["Module", "Parameter", "Buffer"]


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What load_state_dict returns: (missing_keys, unexpected_keys)."""

    __slots__ = ()

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


_EXTRA_STATE = "_extra_state"


class Parameter(Tensor):
    """A Tensor that a Module trains: requires_grad=True, built from a Tensor (sharing its
    data, as torch.nn.Parameter does) or an array (copied)."""

    __slots__ = ()

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = _tensor([])
        elif not isinstance(data, Tensor):
            data = _tensor(data)
        _init(self, data._data)
        self.requires_grad_(requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class _BufferMeta(type):
    def __instancecheck__(cls, obj):  # a Tensor made by Buffer(...) (torch's test too)
        return isinstance(obj, Tensor) and _extra(obj, "buffer") is not None


class Buffer(metaclass=_BufferMeta):
    """Buffer(data, *, persistent=True): a Tensor that, assigned to a Module attribute, becomes
    one of its buffers (state that is not trained, such as running statistics)."""

    def __new__(cls, data=None, *, persistent=True):
        if data is None:
            data = _tensor([])
        t = data.detach()
        t._rg = data._rg
        _extras(t)["buffer"] = bool(persistent)
        return t


# Counts changes to any module's attributes, parameters, submodules and hooks: a cache of a
# model's layout (Sequential's fusion plan) stays valid while the count it was made at holds.
_layout = [0]


def _changed():
    _layout[0] += 1


class _ComputedTable(OrderedDict):
    """A module's parameter or buffer table once some of its names are computed (see the
    module docstring): table[name] of a computed name reads the module's attribute; every
    other use of the table sees only the entries stored in it."""

    def __init__(self, entries, owner):
        super().__init__(entries)
        self.owner = owner
        self.computed = set()

    def __missing__(self, name):
        if name in self.computed:
            return getattr(self.owner, name)
        raise KeyError(name)

    def __reduce__(self):  # copy and pickle as the table it is
        return (_computed_table, (list(self.items()), self.owner, sorted(self.computed)))


def _computed_table(entries, owner, computed):
    table = _ComputedTable(entries, owner)
    table.computed.update(computed)
    return table


def _typename(value):
    if isinstance(value, Tensor):
        return "cygrad." + value.type().rsplit(".", 1)[-1]
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"


def _check_name(name, what, table, module):
    """torch's rules for a name being registered: a str, no dot, not empty, not taken."""
    if not isinstance(name, str):
        raise TypeError(f"{what} name should be a string. Got {_typename(name)}")
    if "." in name:
        raise KeyError(f"{what} name can't contain \".\"" + (f", got: {name}" if what == "module"
                                                             else ""))
    if name == "":
        raise KeyError(f"{what} name can't be empty string \"\"")
    if hasattr(module, name) and name not in table:
        raise KeyError(f"attribute '{name}' already exists")


def _legacy_backward_hooks(module, hooks, args, result):
    """register_backward_hook's hooks on the node that made the result (torch's
    non-full hooks), with torch's FutureWarnings where that node is not the whole module."""
    var = result  # torch's walk to the first tensor: dict values, else the first element
    while not isinstance(var, Tensor):
        if isinstance(var, dict):
            var = next((v for v in var.values() if isinstance(v, Tensor)), None)
        elif isinstance(var, (list, tuple)) and var:
            var = var[0]
        else:  # (torch's walk fails here, or loops for ever on a string)
            raise TypeError(f"{type(module).__name__}.register_backward_hook: the output holds "
                            f"no tensor to hook (found {type(var).__name__} in "
                            f"{type(result).__name__})")
    grad_fn = var.grad_fn
    if grad_fn is None:
        return
    for hook in hooks:
        grad_fn.register_hook(functools.partial(_call_legacy_hook, hook, module))
    outputs = (result,) if isinstance(result, Tensor) else result
    if not (isinstance(outputs, tuple) and all(isinstance(r, Tensor) for r in outputs)):
        warnings.warn("Using non-full backward hooks on a Module that does not return a single "
                      "Tensor or a tuple of Tensors is deprecated and will be removed in future "
                      "versions. This hook will be missing some of the grad_output. Please use "
                      "register_full_backward_hook to get the documented behavior.",
                      FutureWarning, stacklevel=3)
        return
    if not all(isinstance(i, Tensor) for i in args):
        warnings.warn("Using non-full backward hooks on a Module that does not take as input a "
                      "single Tensor or a tuple of Tensors is deprecated and will be removed in "
                      "future versions. This hook will be missing some of the grad_input. "
                      "Please use register_full_backward_hook to get the documented behavior.",
                      FutureWarning, stacklevel=3)
        return
    made = {id(r._op) for r in outputs if r._op is not None}
    if not made or (len(made) == 1 and id(grad_fn) not in made):
        warnings.warn("Using a non-full backward hook when outputs are nested in python data "
                      "structure is deprecated and will be removed in future versions. This "
                      "hook will be missing some grad_output.", FutureWarning, stacklevel=3)
    elif len(made) > 1:
        warnings.warn("Using a non-full backward hook when outputs are generated by different "
                      "autograd Nodes is deprecated and will be removed in future versions. "
                      "This hook will be missing some grad_output. Please use "
                      "register_full_backward_hook to get the documented behavior.",
                      FutureWarning, stacklevel=3)
    else:
        inputs_made = {id(i._op) for i in args if i._op is not None}
        nexts = {id(f) for f, _ in grad_fn.next_functions}
        if inputs_made != nexts:
            warnings.warn("Using a non-full backward hook when the forward contains multiple "
                          "autograd Nodes is deprecated and will be removed in future versions. "
                          "This hook will be missing some grad_input. Please use "
                          "register_full_backward_hook to get the documented behavior.",
                          FutureWarning, stacklevel=3)


def _call_legacy_hook(hook, module, grad_input, grad_output):
    return hook(module, grad_input, grad_output)


class Module:
    """Base of every layer and model. Assigning a Parameter, Module or Buffer to an attribute
    registers it; `forward` is what `module(x)` runs, between its hooks."""

    training: bool
    _version = 1

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got unexpected arguments "
                            f"{args or ''}{kwargs or ''}")
        state = self.__dict__
        state["training"] = True
        for table in ("_parameters", "_buffers", "_modules", "_forward_pre_hooks",
                      "_forward_pre_hooks_with_kwargs", "_forward_hooks",
                      "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
                      "_backward_pre_hooks", "_backward_hooks", "_state_dict_hooks",
                      "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
                      "_load_state_dict_post_hooks"):
            state[table] = OrderedDict()
        state["_non_persistent_buffers_set"] = set()
        _changed()

    # ------------------------------------------------------------------ registration

    def register_parameter(self, name, param):
        """Register param (a Parameter, or None for an absent optional one such as a bias)."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        _check_name(name, "parameter", self._parameters, self)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{_typename(param)}' object to parameter '{name}' "
                            "(cygrad.nn.Parameter or None required)")
        if param is not None and param.grad_fn is not None:
            raise ValueError(f"Cannot assign non-leaf Tensor to parameter '{name}'. Model "
                             f"parameters must be created explicitly. To express '{name}' as a "
                             "function of another Tensor, compute the value in the forward() "
                             "method.")
        _changed()
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Register tensor (or None) as a buffer: module state that is not a parameter; it
        is in state_dict() unless persistent=False."""
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        _check_name(name, "buffer", self._buffers, self)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{_typename(tensor)}' object to buffer '{name}' "
                            "(cygrad Tensor or None required)")
        _changed()
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name, module):
        """Register a submodule under name (a Module, or None)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{_typename(module)} is not a Module subclass")
        if "_modules" not in self.__dict__:
            raise AttributeError("cannot assign module before Module.__init__() call")
        _check_name(name, "module", self._modules, self)
        _changed()
        self._modules[name] = module

    def register_module(self, name, module):
        """add_module(name, module)."""
        self.add_module(name, module)

    def __setattr__(self, name, value):
        _changed()
        state = self.__dict__
        params = state.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._forget(name, "_parameters")
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{_typename(value)}' as parameter '{name}' "
                                "(cygrad.nn.Parameter or None expected)")
            params[name] = None
        elif isinstance(value, Module):
            if state.get("_modules") is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._forget(name, "_modules")
            state["_modules"][name] = value
        elif state.get("_modules") is not None and name in state["_modules"]:
            if value is not None:
                raise TypeError(f"cannot assign '{_typename(value)}' as child module '{name}' "
                                "(cygrad.nn.Module or None expected)")
            state["_modules"][name] = None
        elif isinstance(value, Buffer) or name in state.get("_buffers", ()):
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{_typename(value)}' as buffer '{name}' "
                                "(cygrad.nn.Buffer, cygrad Tensor or None expected)")
            if isinstance(value, Buffer):
                persistent = _extra(value, "buffer")
            else:
                persistent = name not in self._non_persistent_buffers_set
            if isinstance(value, Buffer):
                self._forget(name, "_buffers")
            self.register_buffer(name, value, persistent)
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name, keep):
        """Remove name from every table but `keep` (and from the plain attributes)."""
        state = self.__dict__
        state.pop(name, None)
        for table in ("_parameters", "_buffers", "_modules"):
            if table != keep:
                state[table].pop(name, None)
        if keep != "_buffers":
            state["_non_persistent_buffers_set"].discard(name)

    def _set_computed(self, name, table, computed):
        """Mark `name` as computed (read through the attribute by table[name]: see the module
        docstring) in `table` ("_parameters" or "_buffers"), or no longer."""
        state = self.__dict__
        entries = state[table]
        if computed:
            if not isinstance(entries, _ComputedTable):
                entries = state[table] = _ComputedTable(entries, self)
            entries.computed.add(name)
        elif isinstance(entries, _ComputedTable):
            entries.computed.discard(name)
            if not entries.computed:  # a plain table again (the faster lookups)
                state[table] = OrderedDict(entries)
        _changed()

    def compile(self, *args, **kwargs):
        """torch's Module.compile (this module's calls compiled in place): cygrad.compile
        captures whole training steps, so a module's own calls stay as they are (eager)."""
        return None

    def __getattr__(self, name):  # only called when normal lookup fails
        state = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            entries = state.get(table)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        _changed()
        if name in self._parameters:
            del self._parameters[name]
        elif name in self._buffers:
            del self._buffers[name]
            self._non_persistent_buffers_set.discard(name)
        elif name in self._modules:
            del self._modules[name]
        else:
            object.__delattr__(self, name)

    def __dir__(self):
        keys = (dir(type(self)) + list(self.__dict__) + list(self._parameters)
                + list(self._modules) + list(self._buffers))
        return sorted(k for k in keys if not k[0].isdigit())

    def _get_name(self):
        return type(self).__name__

    # ------------------------------------------------------------------ calling

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required '
                                  '"forward" function')

    def __call__(self, *args, **kwargs):
        if (self._forward_pre_hooks or self._forward_hooks or self._backward_hooks
                or self._backward_pre_hooks):
            return self._call_with_hooks(args, kwargs)
        return self.forward(*args, **kwargs)

    def _call_with_hooks(self, args, kwargs):
        """forward between the hooks, in torch's order: forward pre-hooks (which may replace
        the arguments), the backward hooks' input node, forward, forward hooks (which may
        replace the result), the backward hooks' output node. Forward hooks registered with
        always_call=True run even when forward raises."""
        result, called = None, set()
        try:
            for hook_id, hook in list(self._forward_pre_hooks.items()):
                if hook_id in self._forward_pre_hooks_with_kwargs:
                    out = hook(self, args, kwargs)
                    if out is not None:
                        if not (isinstance(out, tuple) and len(out) == 2):
                            raise RuntimeError("forward pre-hook must return None or a tuple of "
                                               f"(new_args, new_kwargs), but got {out}.")
                        args, kwargs = out
                else:
                    out = hook(self, args)
                    if out is not None:
                        args = out if isinstance(out, tuple) else (out,)
            backward_hook = None
            full = self.__dict__.get("_is_full_backward_hook") is not False
            legacy = [] if full else list(self._backward_hooks.values())
            if (self._backward_hooks and full) or self._backward_pre_hooks:
                backward_hook = BackwardHook(self, list(self._backward_hooks.values()) if full
                                             else [], list(self._backward_pre_hooks.values()))
                args = backward_hook.setup_input_hook(args)
            result = self.forward(*args, **kwargs)
            for hook_id, hook in list(self._forward_hooks.items()):
                called.add(hook_id)
                if hook_id in self._forward_hooks_with_kwargs:
                    out = hook(self, args, kwargs, result)
                else:
                    out = hook(self, args, result)
                if out is not None:
                    result = out
            if backward_hook is not None:
                if not isinstance(result, (Tensor, tuple)):
                    warnings.warn("For backward hooks to be called, module output should be a "
                                  "Tensor or a tuple of Tensors but received "
                                  f"{type(result)}", stacklevel=2)
                result = backward_hook.setup_output_hook(result)
            if legacy:
                _legacy_backward_hooks(self, legacy, args, result)
            return result
        except Exception:
            for hook_id, hook in list(self._forward_hooks.items()):
                if hook_id not in self._forward_hooks_always_called or hook_id in called:
                    continue
                try:
                    if hook_id in self._forward_hooks_with_kwargs:
                        out = hook(self, args, kwargs, result)
                    else:
                        out = hook(self, args, result)
                    if out is not None:
                        result = out
                except Exception as err:
                    warnings.warn("module forward hook with ``always_call=True`` raised an "
                                  "exception that was silenced as another error was raised in "
                                  f"forward: {err}", stacklevel=2)
            raise

    # ------------------------------------------------------------------ hooks

    def _add_hook(self, table, hook, prepend, flags=()):
        """Put hook into table (and its id into each flag table given as (table, on))."""
        extra = [self.__dict__[name] for name, _ in flags]
        handle = RemovableHandle(self.__dict__[table], extra_dict=extra, on_remove=_changed)
        self.__dict__[table][handle.id] = hook
        for (name, on) in flags:
            if on:
                self.__dict__[name][handle.id] = True
        if prepend:
            self.__dict__[table].move_to_end(handle.id, last=False)
        _changed()
        return handle

    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        """hook(module, args) -> None or new args (a tuple, or one value), run before forward;
        with_kwargs=True: hook(module, args, kwargs) -> None or (new_args, new_kwargs).
        Returns a handle whose remove() unregisters it."""
        return self._add_hook("_forward_pre_hooks", hook, prepend,
                              [("_forward_pre_hooks_with_kwargs", with_kwargs)])

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False,
                              always_call=False):
        """hook(module, args, output) -> None or a new output, run after forward;
        with_kwargs=True: hook(module, args, kwargs, output). always_call=True runs it even
        when forward raises. Returns a handle whose remove() unregisters it."""
        return self._add_hook("_forward_hooks", hook, prepend,
                              [("_forward_hooks_with_kwargs", with_kwargs),
                               ("_forward_hooks_always_called", always_call)])

    def register_full_backward_pre_hook(self, hook, prepend=False):
        """hook(module, grad_output) -> None or a new grad_output, run when the gradients of
        the module's outputs are known."""
        return self._add_hook("_backward_pre_hooks", hook, prepend)

    def register_full_backward_hook(self, hook, prepend=False):
        """hook(module, grad_input, grad_output) -> None or a new grad_input, run when the
        gradients of the module's positional tensor inputs are known (None for inputs that
        need none)."""
        if self.__dict__.get("_is_full_backward_hook") is False:
            raise RuntimeError("Cannot use both regular backward hooks and full backward hooks "
                               "on a single Module. Please use only one of them.")
        self.__dict__["_is_full_backward_hook"] = True
        return self._add_hook("_backward_hooks", hook, prepend)

    def register_backward_hook(self, hook):
        """torch's deprecated hook(module, grad_input, grad_output) -> None or a new
        grad_input, registered on the node that made the module's output at each call: its
        grad_input are the gradients of that node's inputs (for a Conv2d: of the input, the
        weight and the bias), not of the module's. Use register_full_backward_hook."""
        if self.__dict__.get("_is_full_backward_hook") is True:
            raise RuntimeError("Cannot use both regular backward hooks and full backward hooks "
                               "on a single Module. Please use only one of them.")
        self.__dict__["_is_full_backward_hook"] = False
        return self._add_hook("_backward_hooks", hook, False)

    def _hook_table(self, table):
        """One of the state-dict hook tables (a module unpickled from before they existed gets
        it empty)."""
        state = self.__dict__
        if table not in state:
            state[table] = OrderedDict()
        return state[table]

    def _add_state_hook(self, table, hook, public=False):
        entries = self._hook_table(table)
        handle = RemovableHandle(entries)
        entries[handle.id] = (hook, public)
        return handle

    def register_state_dict_pre_hook(self, hook):
        """hook(module, prefix, keep_vars), run before state_dict() saves this module."""
        return self._add_state_hook("_state_dict_pre_hooks", hook, True)

    def register_state_dict_post_hook(self, hook):
        """hook(module, state_dict, prefix, local_metadata) -> None, run after state_dict()
        has saved this module and its children (it may change state_dict in place)."""
        return self._add_state_hook("_state_dict_hooks", hook, True)

    def _register_state_dict_hook(self, hook):
        """As register_state_dict_post_hook, but the hook may return a new state dict."""
        return self._add_state_hook("_state_dict_hooks", hook)

    def register_load_state_dict_pre_hook(self, hook):
        """hook(module, state_dict, prefix, local_metadata, strict, missing_keys,
        unexpected_keys, error_msgs), run before this module loads its entries of state_dict
        (it may change state_dict in place: rename or convert entries)."""
        return self._add_state_hook("_load_state_dict_pre_hooks", hook, True)

    def _register_load_state_dict_pre_hook(self, hook, with_module=False):
        """As register_load_state_dict_pre_hook, the module passed first only with
        with_module."""
        return self._add_state_hook("_load_state_dict_pre_hooks", hook, with_module)

    def register_load_state_dict_post_hook(self, hook):
        """hook(module, incompatible_keys) -> None, run after load_state_dict() has loaded this
        module and its children; it may change incompatible_keys' lists in place."""
        return self._add_state_hook("_load_state_dict_post_hooks", hook)

    # ------------------------------------------------------------------ traversal

    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """(name, module) for this module and every submodule, depth first in registration
        order; a module reached by several paths comes once unless remove_duplicate=False."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if self in memo:
                return
            memo.add(self)
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            yield from module.named_modules(memo, f"{prefix}.{name}" if prefix else name,
                                            remove_duplicate)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and module not in seen:
                seen.add(module)
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, table, prefix, recurse, remove_duplicate):
        modules = (self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
                   if recurse else [(prefix, self)])
        seen = set()
        for module_prefix, module in modules:
            for name, value in module.__dict__[table].items():
                if value is None or id(value) in seen:
                    continue
                if remove_duplicate:
                    seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """(name, parameter) pairs; a parameter shared by several modules (or reached through
        a shared module) comes once, under its first name, unless remove_duplicate=False."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target):
        """The submodule at a dotted path such as "encoder.0" ("" is self)."""
        module = self
        for item in target.split(".") if target else ():
            if not hasattr(module, item):
                raise AttributeError(f"{module._get_name()} has no attribute `{item}`")
            module = getattr(module, item)
            if not isinstance(module, Module):
                raise AttributeError(f"`{item}` is not an nn.Module")
        return module

    def get_parameter(self, target):
        """The parameter at a dotted path such as "encoder.0.weight"."""
        path, _, name = target.rpartition(".")
        module = self.get_submodule(path)
        if not hasattr(module, name):
            raise AttributeError(f"{module._get_name()} has no attribute `{name}`")
        param = getattr(module, name)
        if not isinstance(param, Parameter):
            raise AttributeError(f"`{name}` is not an nn.Parameter")
        return param

    def get_buffer(self, target):
        """The buffer at a dotted path such as "bn.running_mean"."""
        path, _, name = target.rpartition(".")
        module = self.get_submodule(path)
        if not hasattr(module, name):
            raise AttributeError(f"{module._get_name()} has no attribute `{name}`")
        if name not in module._buffers:
            raise AttributeError(f"`{name}` is not a buffer")
        return getattr(module, name)

    def apply(self, fn):
        """Call fn(module) on every submodule, children first, then on self (custom inits)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ modes, gradients

    def train(self, mode=True):
        """Set training mode (Dropout active) on this module and, through their own train(),
        on every submodule."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self):
        """Evaluation mode: train(False)."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        """Freeze (False) or unfreeze every parameter: frozen ones get no gradient."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    # ------------------------------------------------------------------ dtype and device

    def _apply(self, fn, recurse=True):
        """Replace every parameter's data (the Parameter object stays), gradient and buffer by
        fn of it, children first."""
        if recurse:
            for module in self.children():
                module._apply(fn)
        with no_grad():
            for p in self._parameters.values():
                if p is None:
                    continue
                new = fn(p)
                if new is not p:
                    p.data = new
                if p.grad is not None:
                    g = fn(p.grad)
                    if g is not p.grad:
                        p.grad.data = g
            for name, b in self._buffers.items():
                if b is not None:
                    self._buffers[name] = fn(b)
        return self

    def to(self, *args, **kwargs):
        """to(device), to(dtype), to(device, dtype), to(tensor): the floating-point parameters
        and buffers converted to dtype (in place: the Parameter objects stay); only the CPU
        exists."""
        where, dtype = _to_args(args, kwargs)
        check_device(where)
        if dtype is None:
            return self
        if not dtype.is_floating_point:
            raise TypeError(f"nn.Module.to only accepts floating point or complex dtypes, but "
                            f"got desired dtype={dtype}")
        return self._apply(lambda t: t.type(dtype) if t.is_floating_point() else t)

    def cpu(self):
        return self

    def share_memory(self):
        from ..tensor import _NO_SHARED_MEMORY

        raise NotImplementedError(_NO_SHARED_MEMORY.format("nn.Module.share_memory"))

    def cuda(self, device=None):
        raise RuntimeError("cygrad runs on the CPU only: .cuda() is not available "
                           "(cygrad.cuda.is_available() is False)")

    def float(self):
        return self._apply(lambda t: t.float() if t.is_floating_point() else t)

    def double(self):
        return self._apply(lambda t: t.double() if t.is_floating_point() else t)

    def half(self):
        raise TypeError("cygrad does not support float16 (half)")

    def bfloat16(self):
        raise TypeError("cygrad does not support bfloat16")

    def type(self, dst_type):
        """Every parameter and buffer converted to dst_type."""
        return self._apply(lambda t: t.type(dst_type))

    # ------------------------------------------------------------------ state

    def get_extra_state(self):
        raise RuntimeError("Reached a code path in Module.get_extra_state() that should never "
                           "be called.")

    def set_extra_state(self, state):
        raise RuntimeError("Reached a code path in Module.set_extra_state() that should never "
                           "be called.")

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars else b.detach()
        if type(self).get_extra_state is not Module.get_extra_state:
            destination[prefix + _EXTRA_STATE] = self.get_extra_state()

    def state_dict(self, *args, destination=None, prefix="", keep_vars=False):
        """An OrderedDict name -> Tensor of every parameter and persistent buffer, detached
        and sharing memory with the module (a shared one appears under each of its names)."""
        if args:
            warnings.warn("Positional args are being deprecated, use kwargs instead.",
                          FutureWarning, stacklevel=2)
            destination = args[0] if destination is None else destination
            prefix = args[1] if len(args) > 1 and prefix == "" else prefix
            keep_vars = args[2] if len(args) > 2 and keep_vars is False else keep_vars
        if destination is None:
            destination = OrderedDict()
            destination._metadata = OrderedDict()
        local_metadata = {"version": self._version}
        if hasattr(destination, "_metadata"):
            destination._metadata[prefix[:-1]] = local_metadata
        for hook, _ in self._hook_table("_state_dict_pre_hooks").values():
            hook(self, prefix, keep_vars)
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=f"{prefix}{name}.",
                                  keep_vars=keep_vars)
        for hook, public in self._hook_table("_state_dict_hooks").values():
            result = hook(self, destination, prefix, local_metadata)
            if public and result is not None:
                raise RuntimeError("state_dict post-hook must return None")
            if result is not None:
                destination = result
        return destination

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        """Copy this module's own entries of state_dict (keys prefix + name) into its
        parameters and persistent buffers; note missing and unexpected keys and errors. The
        load-state-dict pre-hooks run first."""
        for hook, with_module in self._hook_table("_load_state_dict_pre_hooks").values():
            if with_module:
                hook(self, state_dict, prefix, local_metadata, strict, missing_keys,
                     unexpected_keys, error_msgs)
            else:
                hook(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                     error_msgs)
        local = {k: v for k, v in self._parameters.items() if v is not None}
        local.update((k, v) for k, v in self._buffers.items()
                     if v is not None and k not in self._non_persistent_buffers_set)
        assign = local_metadata.get("assign_to_params_buffers", False)
        for name, param in local.items():
            key = prefix + name
            if key not in state_dict:
                if strict:
                    missing_keys.append(key)
                continue
            value = state_dict[key]
            if isinstance(value, np.ndarray):  # what cygrad.load gives back
                value = _wrap(value)
            if not isinstance(value, Tensor):
                error_msgs.append(f'While copying the parameter named "{key}", expected '
                                  "cygrad.Tensor or Tensor-like object from checkpoint but "
                                  f"received {type(value)}")
                continue
            if param.ndim == 0 and value.shape == (1,):
                value = value.reshape(())
            if value.shape != param.shape:
                error_msgs.append(f"size mismatch for {key}: copying a param with shape "
                                  f"{value.shape} from checkpoint, the shape in current model "
                                  f"is {param.shape}.")
                continue
            try:
                with no_grad():
                    if assign:
                        if isinstance(param, Parameter):
                            value = (Parameter(value, param.requires_grad)
                                     if not isinstance(value, Parameter)
                                     else value.requires_grad_(param.requires_grad))
                        setattr(self, name, value)
                    else:
                        param.copy_(value)
            except Exception as err:
                error_msgs.append(f'While copying the parameter named "{key}", whose dimensions '
                                  f"in the model are {param.shape} and whose dimensions in the "
                                  f"checkpoint are {value.shape}, an exception occurred : "
                                  f"{err.args}.")
        extra_key = prefix + _EXTRA_STATE
        if type(self).set_extra_state is not Module.set_extra_state:
            if extra_key in state_dict:
                self.set_extra_state(state_dict[extra_key])
            elif strict:
                missing_keys.append(extra_key)
        elif strict and extra_key in state_dict:
            unexpected_keys.append(extra_key)
        if strict:
            for key in state_dict:
                if not key.startswith(prefix) or key == extra_key:
                    continue
                head, dot, _ = key[len(prefix):].partition(".")
                if (dot and head not in self._modules) or (not dot and head not in local):
                    unexpected_keys.append(key)

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copy state_dict's tensors into the parameters and buffers of the same names (in
        place, converting dtype as copy_ does; assign=True puts the given tensors in their
        place instead). strict=True: every key must match (RuntimeError naming the missing and
        unexpected keys). As in torch, entries that fit are copied even when others raise.
        Returns (missing_keys, unexpected_keys)."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        missing, unexpected, errors = [], [], []
        metadata = getattr(state_dict, "_metadata", None)

        def load(module, local_state, prefix):
            local_metadata = {} if metadata is None else dict(metadata.get(prefix[:-1], {}))
            if assign:
                local_metadata["assign_to_params_buffers"] = True
            module._load_from_state_dict(local_state, prefix, local_metadata, True, missing,
                                         unexpected, errors)
            for name, child in module._modules.items():
                if child is not None:
                    child_prefix = f"{prefix}{name}."
                    load(child, {k: v for k, v in local_state.items()
                                 if k.startswith(child_prefix)}, child_prefix)
            keys = _IncompatibleKeys(missing, unexpected)
            for hook, _ in module._hook_table("_load_state_dict_post_hooks").values():
                if hook(module, keys) is not None:
                    raise AssertionError(
                        "Hooks registered with ``register_load_state_dict_post_hook`` are not "
                        "expected to return new values, if incompatible_keys need to be "
                        "modified, it should be done inplace.")

        load(self, OrderedDict(state_dict), "")
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in unexpected)))
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in missing)))
        if errors:
            raise RuntimeError("Error(s) in loading state_dict for {}:\n\t{}".format(
                type(self).__name__, "\n\t".join(errors)))
        return _IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ repr

    def extra_repr(self):
        """The text inside the parentheses of this module's repr."""
        return ""

    def __repr__(self):
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        lines += [f"({name}): " + repr(m).replace("\n", "\n  ")
                  for name, m in self._modules.items()]
        body = lines[0] if len(lines) == 1 and not self._modules else (
            "\n  " + "\n  ".join(lines) + "\n" if lines else "")
        return f"{self._get_name()}({body})"


_DEVICE_TYPES = {"cpu", "cuda", "mps", "xpu", "meta", "hip", "xla", "ipu", "mtia", "hpu",
                 "vulkan", "lazy", "privateuseone"}


def _to_args(args, kwargs):
    """(device, dtype) from Module.to's forms: to(device=None, dtype=None, non_blocking=False),
    to(dtype, non_blocking=False), to(tensor, non_blocking=False), to(memory_format=...)."""
    where, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"to() got an unexpected keyword argument '{next(iter(kwargs))}'")
    for a in args:
        if isinstance(a, Tensor):
            where, dtype = a.device, a.dtype
        elif isinstance(a, (str, device)):
            name = str(a).partition(":")[0]
            if name not in _DEVICE_TYPES:
                raise RuntimeError(f"Invalid device string: '{a}'")
            where = a
        elif isinstance(a, bool):
            continue  # non_blocking given positionally
        elif isinstance(a, (dtypes.dtype, dtypes.unsupported_dtype, type, np.dtype)):
            dtype = a
        else:
            raise TypeError(f"to() received an invalid combination of arguments: {a!r}")
    return where, (None if dtype is None else dtypes.as_dtype(dtype))
