"""torch.amp (autocast, GradScaler) as a CPU program meets it.

autocast: torch runs selected ops in float16/bfloat16 inside it; cygrad has no half-precision
dtypes, so inside autocast everything still runs in the tensors' own dtypes (float32 stays
float32: the same results to rounding, more accurate). It warns once when enabled.

GradScaler: torch's loss scaling (scale the loss, unscale the gradients before the step, skip
a step whose gradients hold inf or NaN, grow or shrink the scale). On the "cuda" device (its
default) it disables itself with torch's warning, as torch does without CUDA; then scale()
returns the loss and step() just steps. On "cpu" it scales, as torch's CPU scaler does.
"""

import math
import warnings

import numpy as np

from . import autograd
from .tensor import Tensor

__all__ = ["autocast", "GradScaler", "is_autocast_available"]

_warned = []


class autocast:  # noqa: N801  (torch's name)
    """A context manager and decorator that changes nothing here (module docstring)."""

    def __init__(self, device_type="cpu", dtype=None, enabled=True, cache_enabled=None):
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: "
                             f"`{type(device_type)}`")
        self.device_type, self.fast_dtype, self._enabled = device_type, dtype, bool(enabled)
        if enabled and not _warned:
            _warned.append(True)
            warnings.warn("cygrad has no float16/bfloat16: inside autocast every op runs in "
                          "its inputs' dtype (float32 stays float32)", stacklevel=2)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def run(*args, **kwargs):
            with autocast(self.device_type, self.fast_dtype, self._enabled):
                return fn(*args, **kwargs)

        return run


def is_autocast_available(device_type):
    return device_type == "cpu"


class GradScaler:
    """torch.amp.GradScaler (module docstring)."""

    def __init__(self, device="cuda", init_scale=2.0 ** 16, growth_factor=2.0,
                 backoff_factor=0.5, growth_interval=2000, enabled=True):
        self._device = device
        if enabled and device == "cuda":
            warnings.warn("torch.cuda.amp.GradScaler is enabled, but CUDA is not available.  "
                          "Disabling.", stacklevel=2)
            enabled = False
        self._enabled = bool(enabled)
        self._scale = float(init_scale)
        self._growth_factor, self._backoff_factor = float(growth_factor), float(backoff_factor)
        self._growth_interval, self._growth_tracker = int(growth_interval), 0
        self._unscaled, self._found_inf = set(), {}

    def is_enabled(self):
        return self._enabled

    def get_scale(self):
        return self._scale if self._enabled else 1.0

    def scale(self, outputs):
        """outputs times the scale (a tensor, or tensors in lists/tuples)."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            return outputs * self._scale
        return type(outputs)(self.scale(o) for o in outputs)

    def unscale_(self, optimizer):
        """Divide optimizer's gradients by the scale (once per step), noting inf/NaN."""
        if not self._enabled:
            return
        if id(optimizer) in self._unscaled:
            raise RuntimeError("unscale_() has already been called on this optimizer since "
                               "the last update().")
        found = False
        inverse = 1.0 / self._scale
        with autograd.no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    p.grad.mul_(inverse)
                    found = found or not bool(np.isfinite(p.grad.numpy()).all())
        self._unscaled.add(id(optimizer))
        self._found_inf[id(optimizer)] = found

    def step(self, optimizer, *args, **kwargs):
        """optimizer.step() unless its (unscaled) gradients hold inf or NaN."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if id(optimizer) not in self._unscaled:
            self.unscale_(optimizer)
        if self._found_inf.get(id(optimizer)):
            return None
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale=None):
        """Shrink the scale after a skipped step, grow it after growth_interval clean ones."""
        if not self._enabled:
            return
        if new_scale is not None:
            self._scale = float(new_scale.item() if isinstance(new_scale, Tensor)
                                else new_scale)
        elif any(self._found_inf.values()):
            self._scale *= self._backoff_factor
            self._growth_tracker = 0
        else:
            self._growth_tracker += 1
            if self._growth_tracker == self._growth_interval:
                grown = self._scale * self._growth_factor
                if math.isfinite(grown):
                    self._scale = grown
                self._growth_tracker = 0
        self._unscaled.clear()
        self._found_inf.clear()

    def state_dict(self):
        if not self._enabled:
            return {}
        return {"scale": self._scale, "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval,
                "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict):
        if not self._enabled:
            return
        self._scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])
