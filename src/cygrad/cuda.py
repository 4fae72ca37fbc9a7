"""cygrad.cuda, as torch.cuda answers on a machine without a GPU: cygrad computes on the CPU.
Programs that ask `cygrad.cuda.is_available()` take their CPU path."""


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
