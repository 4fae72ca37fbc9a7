"""`torch` for a process that multiprocessing's spawn or forkserver starts from a program run
by `python -m cygrad run`: the child takes its parent's sys.path, on which `as_torch.run` put
this folder before the real torch's, so the child's `import torch` comes here and, as in the
parent, gives cygrad."""

import importlib
import sys

from cygrad import as_torch

as_torch.install()  # (takes this module out of sys.modules: the aliases answer from now on)
sys.modules[__name__] = importlib.import_module("torch")
