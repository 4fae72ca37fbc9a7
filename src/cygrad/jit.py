"""torch.jit's decorators and entry points as programs use them: script, trace, ignore,
unused, export, is_scripting, is_tracing, annotate. TorchScript compiles a Python subset to a
graph that runs without Python; cygrad has no such compiler (cygrad.compile captures and
replays a training step instead), so these return what they are given: a scripted function
or module runs as the Python it is, with the same results. Saving and loading TorchScript
archives (save, load, freeze) raise NotImplementedError."""

__all__ = ["script", "trace", "trace_module", "ignore", "unused", "export", "is_scripting",
           "is_tracing", "annotate", "save", "load", "freeze"]


def script(obj, optimize=None, _frames_up=0, _rcb=None, example_inputs=None):
    """obj itself: it runs as Python (no TorchScript compiler here)."""
    return obj


def trace(func, example_inputs=None, optimize=None, check_trace=True, check_inputs=None,
          check_tolerance=1e-5, strict=True, _force_outplace=False, _module_class=None,
          _compilation_unit=None, example_kwarg_inputs=None, _store_inputs=True):
    """func itself: it runs as Python on every call (not a recording of one call)."""
    return func


def trace_module(mod, inputs, **kwargs):
    return mod


def ignore(drop=False, **kwargs):
    if callable(drop):
        return drop
    return lambda fn: fn


def unused(fn):
    return fn


def export(fn):
    return fn


def is_scripting():
    return False


def is_tracing():
    return False


def annotate(the_type, the_value):
    return the_value


def _no_archives(name):
    def unsupported(*args, **kwargs):
        raise NotImplementedError(f"torch.jit.{name}: cygrad has no TorchScript archives (save "
                                  "a state_dict with cygrad.save instead)")

    unsupported.__name__ = name
    return unsupported


save = _no_archives("save")
load = _no_archives("load")
freeze = _no_archives("freeze")
