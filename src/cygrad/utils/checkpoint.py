"""torch.utils.checkpoint: activation checkpointing saves memory by running a segment's
forward again during backward instead of keeping its activations. cygrad keeps them (it has no
recomputation yet): checkpoint(fn, *args) is fn(*args), with the same values and gradients,
and the memory of an ordinary forward."""

__all__ = ["checkpoint", "checkpoint_sequential"]


def checkpoint(function, *args, use_reentrant=None, context_fn=None, determinism_check="default",
               debug=False, preserve_rng_state=True, **kwargs):
    """function(*args, **kwargs) (its activations kept: see the module docstring)."""
    return function(*args, **kwargs)


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):
    """The functions (a Sequential or a list of modules) applied in order to input."""
    modules = list(functions.children()) if hasattr(functions, "children") else list(functions)
    for module in modules:
        input = module(input)
    return input
