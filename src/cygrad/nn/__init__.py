"""cygrad.nn: modules, layers, losses, initialisers — PyTorch's names, shapes and semantics."""

from . import functional, init
from .activation import (
    CELU,
    GLU,
    ChannelShuffle,
    Hardshrink,
    MultiheadAttention,
    PReLU,
    RReLU,
    Softmax2d,
    Softmin,
    Softshrink,
    Tanhshrink,
    Threshold,
)
from .batchnorm import (
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
)
from .container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .layers import (
    ACTIVATIONS,
    AlphaDropout,
    Bilinear,
    Dropout,
    Dropout1d,
    Dropout2d,
    Dropout3d,
    FeatureAlphaDropout,
    Flatten,
    Identity,
    LazyLinear,
    Linear,
    LogSoftmax,
    Softmax,
    Unflatten,
)
from .lazy import (
    LazyBatchNorm1d,
    LazyBatchNorm2d,
    LazyBatchNorm3d,
    LazyConv1d,
    LazyConv2d,
    LazyConv3d,
    LazyConvTranspose1d,
    LazyConvTranspose2d,
    LazyConvTranspose3d,
    LazyInstanceNorm1d,
    LazyInstanceNorm2d,
    LazyInstanceNorm3d,
)
from .losses import (
    BCELoss,
    BCEWithLogitsLoss,
    CosineEmbeddingLoss,
    CosineSimilarity,
    CrossEntropyLoss,
    CTCLoss,
    GaussianNLLLoss,
    HingeEmbeddingLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MarginRankingLoss,
    MSELoss,
    MultiLabelMarginLoss,
    MultiLabelSoftMarginLoss,
    MultiMarginLoss,
    NLLLoss,
    PairwiseDistance,
    PoissonNLLLoss,
    SmoothL1Loss,
    SoftMarginLoss,
    TripletMarginLoss,
    TripletMarginWithDistanceLoss,
)
from .module import Buffer, Module, Parameter
from .normalization import GroupNorm, LayerNorm, LocalResponseNorm, RMSNorm
from .pooling import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveAvgPool3d,
    AdaptiveMaxPool1d,
    AdaptiveMaxPool2d,
    AdaptiveMaxPool3d,
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    LPPool1d,
    LPPool2d,
    LPPool3d,
    MaxPool1d,
    MaxPool2d,
    MaxPool3d,
    MaxUnpool1d,
    MaxUnpool2d,
    MaxUnpool3d,
)
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase
from .sparse import Embedding, EmbeddingBag
from .transformer import (
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)
from .vision import (
    CircularPad1d,
    CircularPad2d,
    CircularPad3d,
    ConstantPad1d,
    ConstantPad2d,
    ConstantPad3d,
    Fold,
    PixelShuffle,
    PixelUnshuffle,
    ReflectionPad1d,
    ReflectionPad2d,
    ReflectionPad3d,
    ReplicationPad1d,
    ReplicationPad2d,
    ReplicationPad3d,
    Unfold,
    Upsample,
    UpsamplingBilinear2d,
    UpsamplingNearest2d,
    ZeroPad1d,
    ZeroPad2d,
    ZeroPad3d,
)

Parameter.__module__ = __name__  # <class 'cygrad.nn.Parameter'> (torch: torch.nn.parameter's)
globals().update(ACTIVATIONS)  # nn.Tanh, nn.ReLU, nn.GELU ...: made from the op table


def tied_parameters(model):
    """Every parameter reachable under more than one name: {first name: [all its names]}."""
    names = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(p), []).append(name)
    return {group[0]: group for group in names.values() if len(group) > 1}


from . import modules, parallel, utils  # noqa: E402, F401  (torch.nn.modules, .parallel, .utils)
from .parallel import DataParallel  # noqa: E402

__all__ = [
    "Module", "Parameter", "Buffer", "Linear", "LazyLinear", "Bilinear", "Conv1d", "Conv2d",
    "Conv3d", "LazyConv1d", "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d",
    "LazyConvTranspose2d", "LazyConvTranspose3d", "LazyBatchNorm1d", "LazyBatchNorm2d",
    "LazyBatchNorm3d", "LazyInstanceNorm1d", "LazyInstanceNorm2d", "LazyInstanceNorm3d",
    "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "MaxPool1d", "MaxPool2d",
    "MaxPool3d", "AvgPool3d", "BatchNorm3d", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d",
    "AdaptiveMaxPool3d", "LPPool3d", "ChannelShuffle",
    "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d", "Flatten", "Unflatten", "Dropout", "Dropout1d", "Dropout2d",
    "Dropout3d", "AlphaDropout", "FeatureAlphaDropout", "Identity", "Sequential", "ModuleList",
    "ModuleDict", "ParameterList", "ParameterDict", "Softmax", "LogSoftmax", "L1Loss", "MSELoss",
    "SmoothL1Loss", "HuberLoss", "NLLLoss", "CrossEntropyLoss", "BCELoss", "BCEWithLogitsLoss",
    "KLDivLoss", "CosineSimilarity", "PairwiseDistance", "MarginRankingLoss",
    "HingeEmbeddingLoss", "SoftMarginLoss", "MultiLabelSoftMarginLoss", "CosineEmbeddingLoss",
    "MultiMarginLoss", "TripletMarginLoss", "MultiLabelMarginLoss",
    "TripletMarginWithDistanceLoss", "CTCLoss", "PoissonNLLLoss", "GaussianNLLLoss", "functional",
    "init", "tied_parameters", "DataParallel", "parallel",
    *ACTIVATIONS,
    "Embedding", "EmbeddingBag", "LayerNorm", "BatchNorm1d", "BatchNorm2d", "InstanceNorm1d",
    "InstanceNorm2d", "InstanceNorm3d", "MultiheadAttention",
    "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "RNNBase", "RNNCellBase",
    "GroupNorm", "RMSNorm", "LocalResponseNorm", "LPPool1d", "LPPool2d", "RReLU", "Softmax2d",
    "CELU", "GLU", "Softmin", "PReLU", "Threshold", "Tanhshrink",
    "Hardshrink", "Softshrink",
    "Transformer", "TransformerEncoder", "TransformerDecoder", "TransformerEncoderLayer",
    "TransformerDecoderLayer",
    "PixelShuffle", "PixelUnshuffle", "Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d",
    "ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d",
    "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d",
    "ReplicationPad2d", "ReplicationPad3d", "CircularPad1d", "CircularPad2d", "CircularPad3d",
    "Fold", "Unfold", "AdaptiveAvgPool3d",
]
