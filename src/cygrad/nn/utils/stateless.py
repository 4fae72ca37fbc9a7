"""functional_call (torch.func.functional_call; torch.nn.utils.stateless.functional_call, its
deprecated older name): module(*args, **kwargs) with the given tensors in place of the
parameters and buffers of the same dotted names, the module's own put back afterwards. The
gradient flows to the given tensors, not to the module's parameters."""

import contextlib
import warnings

from ...tensor import Tensor

__all__ = ["functional_call"]

_MISSING = object()


def _tensors(module):
    """Every parameter and buffer of module by its dotted name (tied ones under each name)."""
    named = dict(module.named_parameters(remove_duplicate=False))
    named.update(module.named_buffers(remove_duplicate=False))
    return named


def _untie(module, given):
    """given, with each tensor given for one name of a tied tensor given for all its names."""
    names_of = {}
    for name, t in _tensors(module).items():
        names_of.setdefault(id(t), set()).add(name)
    tied = {name: names for names in names_of.values() if len(names) > 1 for name in names}
    given_tied = [name for name in given if name in tied]
    for name in given_tied:
        names = tied[name]
        if (len(names.intersection(given_tied)) > 1
                and len({id(given[n]) for n in names if n in given}) != 1):
            raise ValueError(f"functional_call got multiple values for keys {sorted(names)}, "
                             "which are tied. Consider using tie_weights=False")
    untied = dict(given)
    for name in given_tied:
        for other in tied[name]:
            untied[other] = given[name]
    return untied


def _swap(module, name, tensor):
    """Put tensor (or _MISSING: remove) at module's dotted `name`; returns what was there."""
    prefix, _, attr = name.rpartition(".")
    owner = module.get_submodule(prefix) if prefix else module
    if tensor is not _MISSING and not isinstance(tensor, Tensor):
        raise TypeError(f"{tensor} is not an instance of cygrad.Tensor")
    for table in ("_parameters", "_buffers"):
        entries = owner.__dict__[table]
        if attr in entries:
            old = entries[attr]
            if tensor is _MISSING:
                del entries[attr]
            else:
                entries[attr] = tensor
            return old
    old = getattr(owner, attr, _MISSING)
    if old is not _MISSING and not isinstance(old, Tensor):
        raise TypeError(f"attribute `{attr}`: {old} is not an instance of cygrad.Tensor")
    if tensor is not _MISSING:
        object.__setattr__(owner, attr, tensor)
    elif old is not _MISSING:
        object.__delattr__(owner, attr)
    return old


@contextlib.contextmanager
def _reparametrize_module(module, parameters_and_buffers, tie_weights=False, strict=False):
    given = _untie(module, parameters_and_buffers) if tie_weights else parameters_and_buffers
    if strict:
        known = set(_tensors(module))
        unexpected = sorted(set(given) - known)
        missing = sorted(known - set(given))
        errors = []
        if unexpected:
            errors.append(f"Unexpected key(s): {', '.join(map(repr, unexpected))}.")
        if missing:
            errors.append(f"Missing key(s): {', '.join(map(repr, missing))}.")
        if errors:
            raise RuntimeError("Error(s) in reparametrizing for {}:\n\t{}".format(
                module._get_name(), "\n\t".join(errors)))
    originals = {}
    try:
        for name, tensor in given.items():
            originals[name] = _swap(module, name, tensor)
        yield
    finally:
        for name, old in reversed(list(originals.items())):
            _swap(module, name, old)


def _functional_call(module, parameter_and_buffer_dicts, args=None, kwargs=None, *,
                     tie_weights=True, strict=False):
    """module(*args, **kwargs) with the tensors of parameter_and_buffer_dicts (a dict of dotted
    names, or a tuple of such dicts with no name twice) in place of the module's parameters
    and buffers of those names, for the call only. tie_weights: a tensor given for one name of
    a tied parameter is used for all its names. strict: every parameter and buffer must be
    given, and nothing else."""
    if isinstance(parameter_and_buffer_dicts, dict):
        given = parameter_and_buffer_dicts
    else:
        given = {}
        for d in parameter_and_buffer_dicts:
            twice = set(given) & set(d)
            if twice:
                raise ValueError(f"{sorted(twice)} appeared in multiple dictionaries; behavior "
                                 "of functional call is ambiguous")
            given.update(d)
    args = () if args is None else args if isinstance(args, tuple) else (args,)
    with _reparametrize_module(module, given, tie_weights=tie_weights, strict=strict):
        return module(*args, **(kwargs or {}))


def functional_call(module, parameters_and_buffers, args=None, kwargs=None, *,
                    tie_weights=True, strict=False):
    """The older name of cygrad.func.functional_call (deprecated in torch 2.0)."""
    warnings.warn("`torch.nn.utils.stateless.functional_call` is deprecated as of PyTorch 2.0 "
                  "and will be removed in a future version of PyTorch. Please use "
                  "`torch.func.functional_call` instead which is a drop-in replacement.",
                  FutureWarning, stacklevel=2)
    return _functional_call(module, parameters_and_buffers, args, kwargs,
                            tie_weights=tie_weights, strict=strict)
