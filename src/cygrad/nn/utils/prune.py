"""torch.nn.utils.prune: masks that zero parts of a module's tensor, kept as torch keeps them.

Pruning `name` of a module moves the parameter to `name + "_orig"`, adds a buffer `name +
"_mask"` (0 where pruned) and a forward pre-hook (the method itself) that sets the plain
attribute `name = mask * orig` before every forward; pruning the same tensor again stacks
the methods in a PruningContainer, each new one choosing among what is still unpruned;
`remove` makes it permanent (the parameter `name` holds the product). The masks are those
torch computes: the same k smallest |w| (topk), the same channel norms, the same draws from
the generator for the random methods.
"""

import numbers
from abc import ABC, abstractmethod
from collections.abc import Iterable

import cygrad

__all__ = ["BasePruningMethod", "PruningContainer", "Identity", "RandomUnstructured",
           "L1Unstructured", "RandomStructured", "LnStructured", "CustomFromMask", "identity",
           "random_unstructured", "l1_unstructured", "random_structured", "ln_structured",
           "global_unstructured", "custom_from_mask", "remove", "is_pruned"]


# ---------------------------------------------------------------------- amounts

def _check_amount(amount):
    """An amount is a count (int >= 0) or a fraction (float in [0, 1])."""
    if not isinstance(amount, numbers.Real):
        raise TypeError(f"Invalid type for amount: {amount}. Must be int or float.")
    if (isinstance(amount, numbers.Integral) and amount < 0) or \
            (not isinstance(amount, numbers.Integral) and not 0.0 <= float(amount) <= 1.0):
        raise ValueError(f"amount={amount} should either be a float in the range [0, 1] or a "
                         "non-negative integer")


def _count(amount, size):
    """How many of `size` units an amount prunes, checked against size."""
    count = amount if isinstance(amount, numbers.Integral) else round(amount * size)
    if count > size:
        raise ValueError(f"amount={amount} should be smaller than the number of parameters to "
                         f"prune={size}")
    return count


def _channels(t, dim):
    """dim of a multi-dimensional t, as a non-negative index."""
    if t.dim() <= 1:
        raise ValueError(f"Structured pruning can only be applied to multidimensional tensors. "
                         f"Found tensor of shape {t.shape} with {t.dim()} dims")
    if dim >= t.dim():
        raise IndexError(f"Invalid index {dim} for tensor of size {t.shape}")
    return dim % t.dim()


def _keep_channels(t, dim, channels):
    """A mask of t's shape: 1 in the listed (or True) channels along dim, 0 elsewhere."""
    mask = cygrad.zeros_like(t)
    where = [slice(None)] * t.dim()
    where[dim] = channels
    mask[tuple(where)] = 1
    return mask


# ---------------------------------------------------------------------- methods

class BasePruningMethod(ABC):
    """A pruning method: compute_mask(t, default_mask) says what of t stays; apply(module,
    name, ...) prunes a module's tensor with it and installs it as the forward pre-hook that
    keeps `name` = mask * orig."""

    _tensor_name = None
    PRUNING_TYPE = "unstructured"

    def __call__(self, module, inputs):
        setattr(module, self._tensor_name, self.apply_mask(module))

    @abstractmethod
    def compute_mask(self, t, default_mask):
        """The new mask of t (1 kept, 0 pruned), default_mask being the current one."""

    def apply_mask(self, module):
        if self._tensor_name is None:
            raise AssertionError(f"Module {module} has to be pruned")
        orig = getattr(module, self._tensor_name + "_orig")
        return getattr(module, self._tensor_name + "_mask").to(dtype=orig.dtype) * orig

    @classmethod
    def apply(cls, module, name, *args, importance_scores=None, **kwargs):
        method, stacked = _installed(cls, module, name, *args, **kwargs)
        orig = getattr(module, name)
        if importance_scores is not None and importance_scores.shape != orig.shape:
            raise AssertionError(f"importance_scores should have the same shape as parameter "
                                 f"{name} of {module}, got {importance_scores.shape} vs "
                                 f"{orig.shape}")
        scores = orig if importance_scores is None else importance_scores
        if stacked:
            current = getattr(module, name + "_mask").detach().clone()
        else:
            module.register_parameter(name + "_orig", orig)
            del module._parameters[name]
            module._set_computed(name, "_parameters", True)  # the layer's forward reads it
            current = cygrad.ones_like(orig)
        try:
            module.register_buffer(name + "_mask", method.compute_mask(scores,
                                                                       default_mask=current))
            setattr(module, name, method.apply_mask(module))
            module.register_forward_pre_hook(method)
        except Exception:
            if not stacked:  # put the parameter back as it was
                module.__dict__.pop(name, None)
                module._set_computed(name, "_parameters", False)
                module.register_parameter(name, module._parameters.pop(name + "_orig"))
            raise
        return method

    def prune(self, t, default_mask=None, importance_scores=None):
        """t with this method's mask applied (the module-free form)."""
        if importance_scores is not None and importance_scores.shape != t.shape:
            raise AssertionError(f"importance_scores should have the same shape as tensor t, "
                                 f"got {importance_scores.shape} vs {t.shape}")
        scores = t if importance_scores is None else importance_scores
        current = cygrad.ones_like(t) if default_mask is None else default_mask
        return t * self.compute_mask(scores, default_mask=current)

    def remove(self, module):
        """Make the pruning permanent: the parameter `name` holds mask * orig."""
        if self._tensor_name is None:
            raise AssertionError(f"Module {module} has to be pruned before pruning can be "
                                 "removed")
        pruned = self.apply_mask(module)
        module.__dict__.pop(self._tensor_name, None)
        module._set_computed(self._tensor_name, "_parameters", False)
        param = module._parameters.pop(self._tensor_name + "_orig")
        param.data = pruned.data
        del module._buffers[self._tensor_name + "_mask"]
        setattr(module, self._tensor_name, param)


def _installed(cls, module, name, *args, **kwargs):
    """The method to install for a new pruning of module.name: cls(...) alone, or stacked
    after the one already there (in a PruningContainer); and whether one was there."""
    found = [(k, hook) for k, hook in module._forward_pre_hooks.items()
             if isinstance(hook, BasePruningMethod) and hook._tensor_name == name]
    if len(found) > 1:
        raise AssertionError(f"Avoid adding multiple pruning hooks to the same tensor {name} "
                             f"of module {module}. Use a PruningContainer.")
    for k, _ in found:
        del module._forward_pre_hooks[k]
    method = cls(*args, **kwargs)
    method._tensor_name = name
    if not found:
        return method, False
    before = found[0][1]
    if not isinstance(before, PruningContainer):
        before = PruningContainer(before)
    before.add_pruning_method(method)
    return before, True


class PruningContainer(BasePruningMethod):
    """Pruning methods applied one after another to one tensor: each new method computes its
    mask on what the ones before left unpruned (the kept entries, or for a structured method
    the kept channels)."""

    def __init__(self, *args):
        self._pruning_methods = ()
        if len(args) == 1 and isinstance(args[0], BasePruningMethod):
            self._tensor_name = args[0]._tensor_name
            self.add_pruning_method(args[0])
        else:
            for method in args:
                self.add_pruning_method(method)

    def add_pruning_method(self, method):
        if method is not None and not isinstance(method, BasePruningMethod):
            raise TypeError(f"{type(method)} is not a BasePruningMethod subclass")
        if method is not None and self._tensor_name != method._tensor_name:
            raise ValueError(f"Can only add pruning methods acting on the parameter named "
                             f"'{self._tensor_name}' to PruningContainer {self}. Found "
                             f"'{method._tensor_name}'")
        self._pruning_methods += (method,)

    def __len__(self):
        return len(self._pruning_methods)

    def __iter__(self):
        return iter(self._pruning_methods)

    def __getitem__(self, idx):
        return self._pruning_methods[idx]

    def compute_mask(self, t, default_mask):
        method = self._pruning_methods[-1]
        kind = method.PRUNING_TYPE
        if kind == "unstructured":
            where = default_mask == 1
        elif kind == "structured":
            if not hasattr(method, "dim"):
                raise AttributeError('Pruning methods of PRUNING_TYPE "structured" need to have '
                                     "the attribute `dim` defined.")
            dim = method.dim + t.dim() if method.dim < 0 else method.dim
            if dim < 0:
                raise IndexError(f"Index is out of bounds for tensor with dimensions {t.dim()}")
            alive = default_mask.sum(dim=[d for d in range(t.dim()) if d != dim]) != 0
            where = tuple(alive if d == dim else slice(None) for d in range(t.dim()))
        elif kind == "global":
            where = (slice(None),) * t.dim()
        else:
            raise ValueError(f"Unrecognized PRUNING_TYPE {kind}")
        mask = default_mask.to(dtype=t.dtype)
        mask[where] = method.compute_mask(t[where], default_mask=default_mask[where]).to(
            dtype=mask.dtype)
        return mask


class Identity(BasePruningMethod):
    """Prunes nothing: the mask is all ones."""

    PRUNING_TYPE = "unstructured"

    def compute_mask(self, t, default_mask):
        return default_mask

    @classmethod
    def apply(cls, module, name):
        return super().apply(module, name)


class _Unstructured(BasePruningMethod):
    """Prunes `amount` entries: the first `count` by `_order` (their positions in t)."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount):
        _check_amount(amount)
        self.amount = amount

    def compute_mask(self, t, default_mask):
        count = _count(self.amount, t.nelement())
        mask = default_mask.clone()
        if count:
            mask.view(-1)[self._order(t, count)] = 0
        return mask


class RandomUnstructured(_Unstructured):
    """Prunes `amount` entries drawn at random (the k largest of a rand_like)."""

    def _order(self, t, count):
        return cygrad.topk(cygrad.rand_like(t).view(-1), k=count).indices

    @classmethod
    def apply(cls, module, name, amount):
        return super().apply(module, name, amount=amount)


class L1Unstructured(_Unstructured):
    """Prunes the `amount` entries of smallest absolute value."""

    def _order(self, t, count):
        return cygrad.topk(cygrad.abs(t).view(-1), k=count, largest=False).indices

    @classmethod
    def apply(cls, module, name, amount, importance_scores=None):
        return super().apply(module, name, amount=amount, importance_scores=importance_scores)


class RandomStructured(BasePruningMethod):
    """Prunes `amount` channels along dim, drawn at random."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount, dim=-1):
        _check_amount(amount)
        self.amount, self.dim = amount, dim

    def compute_mask(self, t, default_mask):
        dim = _channels(t, self.dim)
        size = t.shape[dim]
        count = _count(self.amount, size)
        if not count:
            return default_mask
        draws = cygrad.rand(size)
        mask = _keep_channels(t, dim, draws > cygrad.kthvalue(draws, k=count).values)
        return mask * default_mask.to(dtype=mask.dtype)

    @classmethod
    def apply(cls, module, name, amount, dim=-1):
        return super().apply(module, name, amount=amount, dim=dim)


class LnStructured(BasePruningMethod):
    """Prunes the `amount` channels along dim of smallest L_n norm (over the other dims)."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount, n, dim=-1):
        _check_amount(amount)
        self.amount, self.n, self.dim = amount, n, dim

    def compute_mask(self, t, default_mask):
        dim = _channels(t, self.dim)
        size = t.shape[dim]
        count = _count(self.amount, size)
        rest = [d for d in range(t.dim()) if d != dim]
        kept = cygrad.topk(cygrad.norm(t, p=self.n, dim=rest), k=size - count).indices
        if not count:
            return default_mask
        mask = _keep_channels(t, dim, kept)
        return mask * default_mask.to(dtype=mask.dtype)

    @classmethod
    def apply(cls, module, name, amount, n, dim, importance_scores=None):
        return super().apply(module, name, amount=amount, n=n, dim=dim,
                             importance_scores=importance_scores)


class CustomFromMask(BasePruningMethod):
    """Prunes where a given mask is 0."""

    PRUNING_TYPE = "global"

    def __init__(self, mask):
        self.mask = mask

    def compute_mask(self, t, default_mask):
        if default_mask.shape != self.mask.shape:
            raise AssertionError(f"default_mask shape {default_mask.shape} must match "
                                 f"self.mask shape {self.mask.shape}")
        return default_mask * self.mask.to(dtype=default_mask.dtype)

    @classmethod
    def apply(cls, module, name, mask):
        return super().apply(module, name, mask=mask)


# ---------------------------------------------------------------------- functions

def identity(module, name):
    Identity.apply(module, name)
    return module


def random_unstructured(module, name, amount):
    RandomUnstructured.apply(module, name, amount)
    return module


def l1_unstructured(module, name, amount, importance_scores=None):
    L1Unstructured.apply(module, name, amount=amount, importance_scores=importance_scores)
    return module


def random_structured(module, name, amount, dim):
    RandomStructured.apply(module, name, amount, dim)
    return module


def ln_structured(module, name, amount, n, dim, importance_scores=None):
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def custom_from_mask(module, name, mask):
    CustomFromMask.apply(module, name, mask)
    return module


def global_unstructured(parameters, pruning_method, importance_scores=None, **kwargs):
    """One unstructured method over several (module, name) tensors at once, as one vector:
    e.g. the 20% smallest weights of the whole network, not 20% of each layer."""
    if not isinstance(parameters, Iterable):
        raise TypeError("global_unstructured(): parameters is not an Iterable")
    importance_scores = {} if importance_scores is None else importance_scores
    if not isinstance(importance_scores, dict):
        raise TypeError("global_unstructured(): importance_scores must be of type dict")
    parameters = list(parameters)
    vector = cygrad.nn.utils.parameters_to_vector
    scores = vector([importance_scores.get((m, n), getattr(m, n)) for m, n in parameters])
    current = vector([getattr(m, n + "_mask", cygrad.ones_like(getattr(m, n)))
                      for m, n in parameters])
    method = pruning_method(**kwargs)
    if method.PRUNING_TYPE != "unstructured":
        raise TypeError(f'Only "unstructured" PRUNING_TYPE supported for the `pruning_method`. '
                        f"Found method {pruning_method} of type {method.PRUNING_TYPE}")
    container = PruningContainer()
    container._tensor_name = method._tensor_name = "temp"
    container.add_pruning_method(method)
    mask = container.compute_mask(scores, current)
    start = 0
    for module, name in parameters:
        size = getattr(module, name).numel()
        custom_from_mask(module, name, mask=mask[start:start + size].view_as(getattr(module,
                                                                                     name)))
        start += size


def remove(module, name):
    """Make the pruning of module.name permanent and drop its hook, orig and mask."""
    for k, hook in module._forward_pre_hooks.items():
        if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            return module
    raise ValueError(f"Parameter '{name}' of module {module} has to be pruned before pruning "
                     "can be removed")


def is_pruned(module):
    """Whether any submodule of module has a pruning hook."""
    return any(isinstance(hook, BasePruningMethod) for m in module.modules()
               for hook in m._forward_pre_hooks.values())
