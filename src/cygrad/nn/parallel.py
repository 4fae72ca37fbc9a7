"""torch.nn.parallel's DataParallel as torch runs it on a machine without CUDA (cygrad's only
case): the wrapped module called as it is, held as `module` (state dict keys under
"module."), device_ids empty. DistributedDataParallel is not offered (it raises)."""

from .module import Module

__all__ = ["DataParallel", "DistributedDataParallel", "data_parallel"]


class DataParallel(Module):
    """module(*inputs, **kwargs): torch's DataParallel when no GPU is available (device_ids,
    output_device and dim are accepted and unused, as there)."""

    def __init__(self, module, device_ids=None, output_device=None, dim=0):
        super().__init__()
        self.module = module
        self.device_ids = []

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)


def data_parallel(module, inputs, device_ids=None, output_device=None, dim=0,
                  module_kwargs=None):
    """torch.nn.parallel.data_parallel: it needs an accelerator, and raises torch's
    RuntimeError without one (a program calls it only when it has GPUs)."""
    raise RuntimeError("device type could not be determined")


class DistributedDataParallel(Module):
    """torch.nn.parallel.DistributedDataParallel: not offered (there are no process groups)."""

    def __init__(self, *args, **kwargs):
        raise NotImplementedError("cygrad does not implement "
                                  "torch.nn.parallel.DistributedDataParallel")
