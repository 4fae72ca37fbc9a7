"""Module and Parameter, with PyTorch's names and semantics."""

from collections import OrderedDict

import numpy as np

from ..tensor import Tensor, _to_array


class Parameter(Tensor):
    """A Tensor that a Module trains: requires_grad=True, built from an array or a Tensor
    (sharing its data)."""

    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        super().__init__(data.data if isinstance(data, Tensor) else _to_array(data),
                         requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base of every layer and model. Assigning a Parameter or a Module to an attribute
    registers it; `forward` is what `module(x)` runs."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
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
        elif isinstance(value, Module):
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
            raise TypeError(f"parameter {name!r} must be a Parameter or None")
        self._parameters[name] = param
        self.__dict__.pop(name, None)

    def __getattr__(self, name):  # only called when normal lookup fails
        for table in ("_parameters", "_modules"):
            entries = self.__dict__.get(table)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
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

    def named_modules(self, prefix=""):
        """(name, module) for this module and every submodule, each module once."""
        seen, stack = set(), [(prefix, self)]
        while stack:
            name, module = stack.pop(0)
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            stack[0:0] = [(f"{name}.{child_name}" if name else child_name, child)
                          for child_name, child in module._modules.items() if child is not None]

    def modules(self):
        return (m for _, m in self.named_modules())

    def children(self):
        return (m for m in self._modules.values() if m is not None)

    def named_parameters(self, prefix="", remove_duplicate=True):
        """(name, parameter) pairs; a parameter shared by several modules comes once (under
        its first name) unless remove_duplicate=False."""
        seen = set()
        for module_name, module in self._all_named_modules(prefix):
            for name, p in module._parameters.items():
                if p is None or (remove_duplicate and id(p) in seen):
                    continue
                seen.add(id(p))
                yield (f"{module_name}.{name}" if module_name else name), p

    def _all_named_modules(self, prefix=""):
        """Like named_modules, but a module reached by two paths is listed under both."""
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop(0)
            yield name, module
            stack[0:0] = [(f"{name}.{child_name}" if name else child_name, child)
                          for child_name, child in module._modules.items() if child is not None]

    def parameters(self):
        """Every parameter once, even when shared by several modules."""
        return (p for _, p in self.named_parameters())

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.fill(0)

    def train(self, mode=True):
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    # ------------------------------------------------------------------ state

    def state_dict(self):
        """Name -> copy of the parameter's array; a shared parameter appears under every name."""
        return OrderedDict((name, p.data.copy())
                           for name, p in self.named_parameters(remove_duplicate=False))

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays into the parameters in place. strict: keys must match exactly.
        Returns (missing_keys, unexpected_keys)."""
        own = OrderedDict(self.named_parameters(remove_duplicate=False))
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing key(s) {missing}")
            if unexpected:
                parts.append(f"unexpected key(s) {unexpected}")
            raise KeyError(f"load_state_dict for {type(self).__name__}: {'; '.join(parts)}")
        for name, p in own.items():
            if name not in state_dict:
                continue
            value = np.asarray(state_dict[name].data if isinstance(state_dict[name], Tensor)
                               else state_dict[name])
            if value.shape != p.shape:
                raise ValueError(f"load_state_dict: {name!r} has shape {value.shape} in the "
                                 f"state dict but {p.shape} in the model")
            if value.dtype != p.dtype:
                raise TypeError(f"load_state_dict: {name!r} has dtype {value.dtype} in the "
                                f"state dict but {p.dtype} in the model")
            np.copyto(p.data, value)
        return missing, unexpected

    # ------------------------------------------------------------------ repr

    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"
