"""cygrad.cuda, as torch.cuda answers on a machine without a GPU: cygrad computes on the CPU.
Programs that ask `cygrad.cuda.is_available()` take their CPU path."""

import warnings


def is_available():
    return False


def device_count():
    return 0


def is_initialized():
    return False


def manual_seed(seed):
    """Accepted and ignored (there is no GPU generator to seed), as torch does without CUDA."""


def manual_seed_all(seed):
    """Accepted and ignored."""


def _not_compiled():
    """torch's error (its type too) where a build without CUDA is asked for a device."""
    raise AssertionError("Torch not compiled with CUDA enabled (cygrad runs on the CPU only)")


def synchronize(device=None):
    _not_compiled()


def empty_cache():
    """Nothing to free."""


def current_device():
    _not_compiled()


def get_device_name(device=None):
    _not_compiled()


def memory_stats(device=None):
    """torch's answer without CUDA: no statistics (an empty OrderedDict)."""
    import collections

    return collections.OrderedDict()


def memory_allocated(device=None):
    return 0


def max_memory_allocated(device=None):
    return 0


def memory_reserved(device=None):
    return 0


def max_memory_reserved(device=None):
    return 0


def reset_peak_memory_stats(device=None):
    raise AttributeError("torch.cuda.reset_peak_memory_stats: there are no CUDA memory "
                         "statistics to reset (cygrad runs on the CPU only; torch without CUDA "
                         "raises AttributeError too)")


def is_bf16_supported(including_emulation=True):
    return False


class amp:  # noqa: N801  (torch.cuda.amp: its deprecated autocast and GradScaler)
    """torch.cuda.amp.autocast / GradScaler: cygrad.amp's (the scaler disables itself, as
    torch's does without CUDA)."""

    @staticmethod
    def autocast(enabled=True, dtype=None, cache_enabled=True):
        from .amp import autocast

        warnings.warn("`torch.cuda.amp.autocast(args...)` is deprecated. Please use "
                      "`torch.amp.autocast('cuda', args...)` instead.", FutureWarning,
                      stacklevel=2)
        return autocast("cuda", dtype, enabled, cache_enabled)

    @staticmethod
    def GradScaler(init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,  # noqa: N802
                   growth_interval=2000, enabled=True):
        from .amp import GradScaler

        warnings.warn("`torch.cuda.amp.GradScaler(args...)` is deprecated. Please use "
                      "`torch.amp.GradScaler('cuda', args...)` instead.", FutureWarning,
                      stacklevel=2)
        return GradScaler("cuda", init_scale, growth_factor, backoff_factor, growth_interval,
                          enabled)
