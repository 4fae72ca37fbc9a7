"""cygrad.accelerator, as torch.accelerator answers on a machine without one: cygrad computes
on the CPU. `is_available()` is False, `current_accelerator()` None and `device_count()` 0, so a
program's `device = accelerator.current_accelerator() if accelerator.is_available() else
device("cpu")` takes its CPU path; what needs a device raises torch's RuntimeError."""

import contextlib
import warnings

_NONE = "Cannot access accelerator device when none is available."


def is_available():
    return False


def current_accelerator(check_available=False):
    """The accelerator's device type: None here (there is none)."""
    return None


def device_count():
    return 0


def _none(*args, **kwargs):
    raise RuntimeError(_NONE)


def current_device_index():
    _none()


def set_device_index(device):
    _none()


def current_device_idx():
    warnings.warn("Use `current_device_index` instead.", FutureWarning, stacklevel=2)
    _none()


def set_device_idx(device):
    warnings.warn("Use `set_device_index` instead.", FutureWarning, stacklevel=2)
    _none()


synchronize = current_stream = empty_cache = empty_host_cache = get_memory_info = _none
memory_allocated = max_memory_allocated = memory_reserved = max_memory_reserved = _none
memory_stats = reset_accumulated_memory_stats = reset_peak_memory_stats = _none
get_device_capability = set_stream = _none


@contextlib.contextmanager
def device_index(device):
    """`with device_index(i)`: runs the block on accelerator i; None runs it as it is (the only
    index that needs no accelerator)."""
    if device is not None:
        _none()
    yield
