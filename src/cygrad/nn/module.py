"""Module and Parameter, with PyTorch's names and semantics."""

from collections import OrderedDict, namedtuple

import numpy as np

from ..ops.factories import tensor as _tensor
from ..tensor import Tensor, _init

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class StateDictKeyError(KeyError):
    """load_state_dict(strict=True) met missing or unexpected keys."""

    def __str__(self):  # KeyError would print the message in quotes
        return str(self.args[0])


class Parameter(Tensor):
    """A Tensor that a Module trains: requires_grad=True, built from an array (copied) or a
    Tensor (sharing its data, as torch.nn.Parameter does)."""

    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        if data is None:
            data = _tensor([])
        elif not isinstance(data, Tensor):
            data = _tensor(data)
        _init(self, data._data)
        self.requires_grad_(requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


# Counts changes to any module's attributes, parameters and submodules: a cache of a model's
# layout (Sequential's fusion plan) stays valid while the count it was made at is current.
_layout = [0]


class Module:
    """Base of every layer and model. Assigning a Parameter or a Module to an attribute
    registers it; `forward` is what `module(x)` runs."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        _layout[0] += 1
        params = self.__dict__.get("_parameters")
        if params is None:
            raise AttributeError(f"call Module.__init__() in {type(self).__name__}.__init__ "
                                 "before assigning attributes")
        if isinstance(value, Parameter) or (value is None and name in params):
            self._modules.pop(name, None)
            self.__dict__.pop(name, None)
            params[name] = value
        elif name in params and isinstance(value, Tensor):
            raise TypeError(f"cannot assign a plain Tensor to parameter {name!r}: wrap it in "
                            "cygrad.nn.Parameter (or assign None)")
        elif name in self.__dict__.get("_buffers", ()):  # a buffer keeps its slot
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' object to buffer "
                                f"'{name}' (cygrad Tensor or None required)")
            self._buffers[name] = value
        elif isinstance(value, Module) or (value is None and name in self._modules):
            params.pop(name, None)
            self.__dict__.pop(name, None)
            self._modules[name] = value
        else:
            params.pop(name, None)
            self._modules.pop(name, None)
            object.__setattr__(self, name, value)

    def register_parameter(self, name, param):
        """Register param (a Parameter, or None for an absent optional one such as a bias)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"parameter {name!r} must be a Parameter or None, got "
                            f"{type(param).__name__}")
        _layout[0] += 1
        self._modules.pop(name, None)
        self.__dict__.pop(name, None)
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Register tensor (or None) as a buffer: module state that is not a parameter
        (a minimal version: the full one, with state_dict and persistence, comes with nn's
        infrastructure)."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer "
                            f"'{name}' (cygrad Tensor or None required)")
        _layout[0] += 1
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self.__dict__.pop(name, None)
        self._buffers[name] = tensor

    def named_buffers(self, prefix="", recurse=True):
        modules = self._walk(prefix) if recurse else [(prefix, self)]
        for module_name, module in modules:
            for name, b in module.__dict__.get("_buffers", {}).items():
                if b is not None:
                    yield (f"{module_name}.{name}" if module_name else name), b

    def buffers(self, recurse=True):
        return (b for _, b in self.named_buffers(recurse=recurse))

    def add_module(self, name, module):
        """Register a submodule under name (a Module, or None)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{name!r}: {type(module).__name__} is not a Module")
        _layout[0] += 1
        self._parameters.pop(name, None)
        self.__dict__.pop(name, None)
        self._modules[name] = module

    def __getattr__(self, name):  # only called when normal lookup fails
        for table in ("_parameters", "_modules", "_buffers"):
            entries = self.__dict__.get(table)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        _layout[0] += 1
        if name in self._parameters:
            del self._parameters[name]
        elif name in self._modules:
            del self._modules[name]
        else:
            object.__delattr__(self, name)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------------ traversal

    def _walk(self, prefix="", remove_duplicate=True):
        """(name, module) for self and every submodule, depth first in registration order.
        remove_duplicate=False lists a module reached by several paths under each of them."""
        seen, stack = set(), [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if remove_duplicate:
                if id(module) in seen:
                    continue
                seen.add(id(module))
            yield name, module
            stack.extend(reversed([(f"{name}.{child_name}" if name else child_name, child)
                                   for child_name, child in module._modules.items()
                                   if child is not None]))

    def named_modules(self, prefix=""):
        """(name, module) for this module and every submodule, each module once."""
        return self._walk(prefix)

    def modules(self):
        return (m for _, m in self._walk())

    def named_children(self):
        return ((name, m) for name, m in self._modules.items() if m is not None)

    def children(self):
        return (m for _, m in self.named_children())

    def get_submodule(self, target):
        """The submodule at a dotted path such as "encoder.0" ("" is self)."""
        module = self
        for part in target.split(".") if target else ():
            child = module._modules.get(part)
            if child is None:
                raise AttributeError(f"{type(module).__name__} has no submodule {part!r} "
                                     f"(looking up {target!r})")
            module = child
        return module

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """(name, parameter) pairs; a parameter shared by several modules (or reached through
        a shared module) comes once, under its first name, unless remove_duplicate=False."""
        modules = self._walk(prefix, remove_duplicate) if recurse else [(prefix, self)]
        seen = set()
        for module_name, module in modules:
            for name, p in module._parameters.items():
                if p is None or (remove_duplicate and id(p) in seen):
                    continue
                seen.add(id(p))
                yield (f"{module_name}.{name}" if module_name else name), p

    def parameters(self, recurse=True):
        """Every parameter once, even when shared by several modules."""
        return (p for _, p in self.named_parameters(recurse=recurse))

    def apply(self, fn):
        """Call fn(module) on every submodule, children first, then on self (custom inits)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def requires_grad_(self, requires_grad=True):
        """Freeze (False) or unfreeze every parameter: frozen ones get no gradient."""
        for p in self.parameters():
            p.requires_grad = bool(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    def train(self, mode=True):
        """Set training mode (Dropout active) on this module and every submodule."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        """Evaluation mode: train(False)."""
        return self.train(False)

    # ------------------------------------------------------------------ state

    def state_dict(self):
        """Name -> copy of the parameter's array; a shared parameter appears under every name."""
        return OrderedDict((name, p._data.copy())
                           for name, p in self.named_parameters(remove_duplicate=False))

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays (or Tensors) into the parameters in place, all or nothing.

        strict: the keys must match exactly (else StateDictKeyError, a KeyError, naming them).
        Shapes (ValueError) and dtypes (TypeError) must match in any case.
        Returns (missing_keys, unexpected_keys).
        """
        own = OrderedDict(self.named_parameters(remove_duplicate=False))
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        where = f"load_state_dict for {type(self).__name__}"
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing key(s) {', '.join(map(repr, missing))}")
            if unexpected:
                parts.append(f"unexpected key(s) {', '.join(map(repr, unexpected))}")
            raise StateDictKeyError(f"{where}: {'; '.join(parts)}")
        values, bad_shapes, bad_dtypes = {}, [], []
        for name, p in own.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            value = np.asarray(value._data if isinstance(value, Tensor) else value)
            if value.shape != p.shape:
                bad_shapes.append(f"{name!r} has shape {tuple(value.shape)} in the state dict but "
                                  f"{tuple(p.shape)} in the model")
            elif value.dtype != p.dtype:
                bad_dtypes.append(f"{name!r} has dtype {value.dtype} in the state dict but "
                                  f"{p.dtype} in the model")
            values[name] = value
        if bad_shapes:
            raise ValueError(f"{where}: {'; '.join(bad_shapes)}")
        if bad_dtypes:
            raise TypeError(f"{where}: {'; '.join(bad_dtypes)}")
        for name, value in values.items():  # nothing is written until everything checked out
            np.copyto(own[name]._writable_data(), value)  # copy-on-write under a live graph
        return IncompatibleKeys(missing, unexpected)

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
        return f"{type(self).__name__}({body})"
