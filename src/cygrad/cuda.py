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


def synchronize(device=None):
    """Nothing to wait for."""


def empty_cache():
    """Nothing to free."""


def current_device():
    raise RuntimeError("cygrad runs on the CPU only: there is no CUDA device")


def get_device_name(device=None):
    raise RuntimeError("cygrad runs on the CPU only: there is no CUDA device")


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
