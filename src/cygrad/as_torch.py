"""Run a PyTorch program on cygrad without editing it: `import torch` gives cygrad.

    python -m cygrad run program.py [args...]

or, inside Python, `cygrad.as_torch.install()` before the program imports torch. Every module
a program can import under torch's names (torch, torch.nn, torch.nn.functional, torch.optim,
torch.utils.data ...) resolves to cygrad's own; a torch submodule cygrad does not have raises
ImportError naming it. It is the same as swapping the import lines by hand
(`import cygrad as torch`, `import cygrad.nn as nn` ...).
"""

import importlib
import importlib.abc
import importlib.util
import os
import runpy
import sys

# torch's module names and the cygrad module each one is
ALIASES = {
    "torch": "cygrad",
    "torch.nn": "cygrad.nn",
    "torch.nn.functional": "cygrad.nn.functional",
    "torch.functional": "cygrad.functional",
    "torch.nn.init": "cygrad.nn.init",
    "torch.nn.utils": "cygrad.nn.utils",
    "torch.nn.modules": "cygrad.nn.modules",
    "torch.nn.parameter": "cygrad.nn",
    "torch.optim": "cygrad.optim",
    "torch.optim.lr_scheduler": "cygrad.optim.lr_scheduler",
    "torch.utils": "cygrad.utils",
    "torch.utils.data": "cygrad.utils.data",
    "torch.utils.data.dataloader": "cygrad.utils.data.dataloader",
    "torch.utils.data.dataset": "cygrad.utils.data.dataset",
    "torch.utils.data.sampler": "cygrad.utils.data.sampler",
    "torch.utils.data.distributed": "cygrad.utils.data.distributed",
    "torch.autograd": "cygrad.autograd",
    "torch.cuda": "cygrad.cuda",
    "torch.accelerator": "cygrad.accelerator",
    "torch.backends": "cygrad.backends",
    "torch.backends.cudnn": "cygrad.backends:cudnn",
    "torch.backends.cuda": "cygrad.backends:cuda",
    "torch.backends.mps": "cygrad.backends:mps",
    "torch.backends.mkldnn": "cygrad.backends:mkldnn",
    "torch.backends.openmp": "cygrad.backends:openmp",
    "torch.backends.cpu": "cygrad.backends:cpu",
    "torch.random": "cygrad.random",
    "torch.linalg": "cygrad.linalg",
    "torch.special": "cygrad.special",
    "torch.sparse": "cygrad.sparse",
    "torch.distributions": "cygrad.distributions",
    "torch.func": "cygrad.func",
    "torch.amp": "cygrad.amp",
    "torch.cuda.amp": "cygrad.cuda:amp",
    "torch.jit": "cygrad.jit",
    "torch.onnx": "cygrad.onnx",
    "torch.distributed": "cygrad.distributed",
    "torch.distributed.optim": "cygrad.distributed:optim",
    "torch._inductor": "cygrad._inductor",
    "torch._inductor.config": "cygrad._inductor:config",
    "torch.multiprocessing": "cygrad.multiprocessing",
    "torch.profiler": "cygrad.profiler",
    "torch.autograd.profiler": "cygrad.profiler",
    "torch.version": "cygrad.version",
    "torch.testing": "cygrad.testing",
    "torch.utils.checkpoint": "cygrad.utils.checkpoint",
    "torch.utils.hooks": "cygrad.utils.hooks",
    "torch.utils.benchmark": "cygrad.utils.benchmark",
    "torch.utils.tensorboard": "cygrad.utils.tensorboard",
    "torch.utils.tensorboard.writer": "cygrad.utils.tensorboard.writer",
    "torch.utils.tensorboard.summary": "cygrad.utils.tensorboard.summary",
    "torch.autograd.functional": "cygrad._autograd_functional",
    "torch.autograd.function": "cygrad._function",
    "torch.nn.utils.rnn": "cygrad.nn.utils.rnn",
    "torch.nn.utils.clip_grad": "cygrad.nn.utils.clip_grad",
    "torch.nn.utils.parametrize": "cygrad.nn.utils.parametrize",
    "torch.nn.utils.prune": "cygrad.nn.utils.prune",
    "torch.nn.utils.parametrizations": "cygrad.nn.utils.parametrizations",
    "torch.nn.utils.stateless": "cygrad.nn.utils.stateless",
    "torch.nn.utils.fusion": "cygrad.nn.utils.fusion",
    "torch.nn.parallel": "cygrad.nn.parallel",
}
ALIASES.update({f"torch.nn.modules.{name}": f"cygrad.nn.modules.{name}" for name in (
    "activation", "batchnorm", "channelshuffle", "container", "conv", "distance", "dropout",
    "flatten", "fold", "instancenorm", "linear", "loss", "module", "normalization", "padding",
    "pixelshuffle", "pooling", "rnn", "sparse", "transformer", "upsampling", "utils")})


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers imports of torch's names with cygrad's modules."""

    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        target = ALIASES.get(spec.name)
        if target is None:
            raise ImportError(f"cygrad has no counterpart of the module {spec.name!r} (it offers "
                              f"{', '.join(sorted(ALIASES))})", name=spec.name)
        path, _, attribute = target.partition(":")  # "module:attribute": a namespace in it
        try:
            module = importlib.import_module(path)
        except ImportError as err:
            raise ImportError(f"{spec.name} -> {target}: {err}", name=spec.name) from err
        if attribute:
            module = _namespace(spec.name, getattr(module, attribute))
        if not hasattr(module, "__path__") and any(n.startswith(spec.name + ".")
                                                   for n in ALIASES):
            module.__path__ = []  # a module with aliased children (torch.cuda.amp, torch.
            # autograd.functional): importable as a package, its children through ALIASES
        self._specs[id(module)] = module.__spec__  # importlib writes the alias's spec over it
        return module

    def exec_module(self, module):
        """The cygrad module is already executed: give it back its own spec."""
        module.__spec__ = self._specs.pop(id(module), module.__spec__)

    def __init__(self):
        self._specs = {}


def _namespace(name, holder):
    """A module object holding the public attributes of `holder` (a class used as a
    namespace, as cygrad.cuda.amp)."""
    import types

    module = types.ModuleType(name, holder.__doc__)
    for key in dir(holder):
        if not key.startswith("_"):
            setattr(module, key, getattr(holder, key))
    return module


def install():
    """From now on, `import torch` (and its submodules) gives cygrad, and cygrad's reprs name
    torch (torch.Size, torch.float32, x.type() == 'torch.FloatTensor'), as the program expects."""
    from . import dtypes

    dtypes.display_name = "torch"
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        for name in [n for n in sys.modules if n == "torch" or n.startswith("torch.")]:
            del sys.modules[name]  # a real torch imported earlier would shadow the aliases
        sys.meta_path.insert(0, _Finder())


def run(path, argv=()):
    """Run the program at `path` as __main__ with `import torch` giving cygrad, as `python
    path` runs it: its folder first on sys.path (its sibling modules import), __file__ the
    absolute path, sys.argv[0] the path as given."""
    install()
    spawned = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_spawn")
    if spawned not in sys.path:  # processes started by spawn / forkserver take this path:
        sys.path.insert(0, spawned)  # their `import torch` finds cygrad's there (_spawn/torch)
    full = os.path.abspath(path)
    sys.argv = [path, *argv]
    folder = os.path.dirname(full)
    if not sys.path or sys.path[0] != folder:
        sys.path.insert(0, folder)
    runpy.run_path(full, run_name="__main__")
