"""nn.functional's dropouts, with torch's signatures, defaults and errors; nn/functional.py
re-exports them.

Masks come from cygrad's generator (cygrad.random), drawn as torch draws them; p = 1 zeroes
everything and draws nothing. Departure from torch, on purpose: p = nan is refused with
ValueError by the function and by the module's constructor (torch's module accepts it and
its forward raises RuntimeError).
"""

import math
import numbers
import warnings

import numpy as np

from .. import random as _random
from ..ops import layers as _layers
from ..tensor import _wrap, apply
from ._functional_loss import _input

__all__ = ["dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
           "feature_alpha_dropout"]

_SELU_ALPHA = 1.7580993408473766  # -scale * alpha of SELU: alpha dropout's "dropped" value


def _check_probability(p):
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    return p


# ---------------------------------------------------------------------- dropout

def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability p and scale the rest by 1/(1-p) (training only;
    p = 1 zeroes everything and draws nothing). Masks: torch's draws, from cygrad's
    generator."""
    _check_probability(p)
    _input(input, "dropout")
    if not training or p == 0 or input._data.size == 0:
        return input
    if p == 1:
        return input.mul_(0) if inplace else input * 0
    if inplace:
        return input._write(apply(_layers.Dropout, input._inplace_input(), p=p,
                                  generator=_random.generator()))
    return apply(_layers.Dropout, input, p=p, generator=_random.generator())


def _feature_noise(input, p):
    """The mask of a channel dropout: (N, C, 1, ...) of 0 and 1/(1-p) (the Dropout op's draws
    on ones, as torch draws its noise of that shape)."""
    shape = tuple(input.shape[:2]) + (1,) * (input._data.ndim - 2)
    ones = _wrap(np.ones(shape, input._data.dtype))
    return apply(_layers.Dropout, ones, p=p, generator=_random.generator())


def _feature_dropout(input, p, training, inplace, batched):
    if not batched:  # (C, ...) as a batch of one
        out = _feature_dropout(input.unsqueeze(0), p, training, False, True).squeeze(0)
        return input.copy_(out) if inplace else out
    if not training or p == 0 or input._data.size == 0:
        return input
    if p == 1:
        return input.mul_(0) if inplace else input * 0
    noise = _feature_noise(input, p)
    return input.mul_(noise) if inplace else input * noise


def dropout1d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of (N, C, L) or (C, L) inputs with probability p, scaling the rest
    by 1/(1-p)."""
    _check_probability(p)
    if _input(input, "dropout1d").ndim not in (2, 3):
        raise RuntimeError(f"dropout1d: Expected 2D or 3D input, but received a {input.ndim}D "
                           "input. Note that dropout1d exists to provide channel-wise dropout on "
                           "inputs with 1 spatial dimension, a channel dimension, and an "
                           "optional batch dimension (i.e. 2D or 3D inputs).")
    return _feature_dropout(input, p, training, inplace, input.ndim == 3)


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of (N, C, H, W) inputs with probability p, scaling the rest by
    1/(1-p); a 3-D input is taken as (N, C, L), with torch's warning."""
    _check_probability(p)
    ndim = _input(input, "dropout2d").ndim
    if ndim not in (3, 4):
        warnings.warn(f"dropout2d: Received a {ndim}-D input to dropout2d, which is deprecated "
                      "and will result in an error in a future release. To retain the behavior "
                      "and silence this warning, please use dropout instead. Note that dropout2d "
                      "exists to provide channel-wise dropout on inputs with 2 spatial "
                      "dimensions, a channel dimension, and an optional batch dimension (i.e. 3D "
                      "or 4D inputs).", stacklevel=2)
    if ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise "
                      "1D dropout behavior is desired - input is interpreted as shape (N, C, L), "
                      "where C is the channel dim. This behavior will change in a future release "
                      "to interpret the input as one without a batch dimension, i.e. shape (C, H, "
                      "W). To maintain the 1D channel-wise dropout behavior, please switch to "
                      "using dropout1d instead.", stacklevel=2)
    return _feature_dropout(input, p, training, inplace, True)


def dropout3d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) inputs with probability p,
    scaling the rest by 1/(1-p)."""
    _check_probability(p)
    ndim = _input(input, "dropout3d").ndim
    if ndim not in (4, 5):
        warnings.warn(f"dropout3d: Received a {ndim}-D input to dropout3d, which is deprecated "
                      "and will result in an error in a future release. To retain the behavior "
                      "and silence this warning, please use dropout instead. Note that dropout3d "
                      "exists to provide channel-wise dropout on inputs with 3 spatial "
                      "dimensions, a channel dimension, and an optional batch dimension (i.e. 4D "
                      "or 5D inputs).", stacklevel=2)
    return _feature_dropout(input, p, training, inplace, ndim != 4)


def _alpha(input, p, training, inplace, feature):
    """Alpha dropout: y = x * a * m + a * alpha * (p - (1 - m)) for the keep mask m (alpha =
    1.7580993408473766, a = 1 / sqrt((alpha**2 * p + 1) * (1 - p))): a SELU network keeps its
    mean and variance."""
    _check_probability(p)
    _input(input, "alpha_dropout")
    if not training or p == 0 or input._data.size == 0:
        return input
    if p == 1:
        return input.mul_(0) if inplace else input * 0
    if feature:
        kept = _feature_noise(input, p)._data != 0
    else:
        kept = apply(_layers.Dropout, _wrap(np.ones(input._data.shape, input._data.dtype)), p=p,
                     generator=_random.generator())._data != 0
    # Python floats, so that numpy computes in the input's dtype (torch's order: b = (mask - 1)
    # * (alpha * a) + alpha * a * p, noise = mask * a, each rounded to the dtype)
    a = 1.0 / math.sqrt((_SELU_ALPHA * _SELU_ALPHA * p + 1) * (1 - p))
    mask = kept.astype(input._data.dtype)
    b = _wrap((mask - 1) * (_SELU_ALPHA * a) + _SELU_ALPHA * a * p)
    noise = _wrap(mask * a)
    return input.mul_(noise).add_(b) if inplace else input * noise + b


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    """Dropout for SELU networks (see _alpha); identity unless training."""
    return _alpha(input, p, training, inplace, feature=False)


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):
    """Alpha dropout of whole channels (N, C, ...)."""
    return _alpha(input, p, training, inplace, feature=True)
