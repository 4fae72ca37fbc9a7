"""cygrad.nn: modules, layers, losses, initialisers — PyTorch's names, shapes and semantics."""

from . import functional, init
from .activation import MultiheadAttention
from .batchnorm import BatchNorm1d, BatchNorm2d
from .conv import Conv1d, Conv2d
from .layers import (
    ACTIVATIONS,
    Dropout,
    Flatten,
    Identity,
    Linear,
    LogSoftmax,
    Sequential,
    Softmax,
)
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from .module import Module, Parameter
from .normalization import LayerNorm
from .pooling import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveMaxPool1d,
    AdaptiveMaxPool2d,
    AvgPool1d,
    AvgPool2d,
    MaxPool1d,
    MaxPool2d,
)
from .sparse import Embedding

globals().update(ACTIVATIONS)  # nn.Tanh, nn.ReLU, nn.GELU ...: made from the op table


def tied_parameters(model):
    """Every parameter reachable under more than one name: {first name: [all its names]}."""
    names = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(p), []).append(name)
    return {group[0]: group for group in names.values() if len(group) > 1}


from . import utils  # noqa: E402, F401  (torch.nn.utils)

__all__ = [
    "Module", "Parameter", "Linear", "Conv1d", "Conv2d", "MaxPool1d", "MaxPool2d", "AvgPool1d",
    "AvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d", "Flatten", "Dropout", "Identity", "Sequential", "Softmax", "LogSoftmax",
    "MSELoss", "CrossEntropyLoss", "BCEWithLogitsLoss", "functional", "init", "tied_parameters",
    *ACTIVATIONS,
    "Embedding", "LayerNorm", "BatchNorm1d", "BatchNorm2d", "MultiheadAttention",
]
