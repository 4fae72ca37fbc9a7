"""Mode state, per thread: grad mode, anomaly mode, the backward tracer, the default dtype.

Each thread reads its own values. A thread that has not set a value sees the process default,
which is a class attribute of `_Local` below (a `threading.local` subclass: an instance attribute
is the thread's own value, and a missing one falls back to the class attribute).

- Context managers (`no_grad`, `enable_grad`, `set_grad_enabled`, `inference_mode`,
  `detect_anomaly`, `trace`) change only the calling thread and restore its previous state on
  exit, including "had no value of its own".
- Grad mode is thread-local only, as in torch: `set_grad_enabled(False)` called as a function
  switches the calling thread.
- Plain setters of process-wide settings (`set_default_dtype`, `set_detect_anomaly`) called from
  the main thread set the process default; from any other thread they set that thread's value.

The backend choice and the kernels' thread count (cygrad.backend) and the random generator
(cygrad.random) follow the same rules.
"""

import threading


class _Local(threading.local):
    grad_enabled = True
    inference = False
    anomaly = False
    default_dtype = None  # cygrad.float32, set by cygrad.dtypes
    watch = None  # a tuple of the thread's watchers (tensor.Watcher), or None: the engine
    #               calls them at every op (detect_anomaly, cygrad.trace, op recorders)


local = _Local()
_MISSING = object()


def set_default(name, value):
    """A plain setter: the process default from the main thread, else the thread's own."""
    if threading.current_thread() is threading.main_thread():
        setattr(_Local, name, value)
        local.__dict__.pop(name, None)  # the main thread follows the default it just set
    else:
        setattr(local, name, value)


def swap(name, value):
    """Give the calling thread its own `value`; returns a token that `restore` takes to put
    back exactly what the thread had (its own value, or none)."""
    previous = local.__dict__.get(name, _MISSING)
    setattr(local, name, value)
    return previous


def restore(name, previous):
    if previous is _MISSING:
        local.__dict__.pop(name, None)
    else:
        setattr(local, name, previous)


class watching:
    """`with watching(w):` adds the watcher w (tensor.Watcher) to the calling thread's for the
    block; nested blocks stack."""

    def __init__(self, watcher):
        self.watcher = watcher

    def __enter__(self):
        current = local.watch or ()
        local.watch = current + (self.watcher,)
        return self.watcher

    def __exit__(self, *exc):
        current = tuple(w for w in (local.watch or ()) if w is not self.watcher)
        local.watch = current or None
        return False


def live_watchers():
    """The calling thread's watchers, less those whose owner is gone (Watcher.gone(): a
    symmetry monitor that was dropped without detach()), which are taken out first."""
    current = local.watch
    if current is not None:
        kept = tuple(w for w in current if not w.gone())
        if len(kept) != len(current):
            local.watch = current = kept or None
    return current
