"""The summaries SummaryWriter writes, built as torch.utils.tensorboard.summary builds them:
the same protocol buffers (tensorboard's), tags, plugin records and histogram buckets."""

import struct
import zlib

import numpy as np
from google.protobuf import struct_pb2
from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary, SummaryMetadata
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.plugins.pr_curve.plugin_data_pb2 import PrCurvePluginData
from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData

__all__ = ["scalar", "tensor_proto", "histogram_raw", "histogram", "make_histogram", "image",
           "make_image", "text", "hparams", "pr_curve_raw", "pr_curve", "compute_curve",
           "make_np", "convert_to_HWC", "make_grid", "figure_to_image"]


def make_np(x):
    """A numpy array of x: an array as it is, a number as a 1-element array, a tensor's data."""
    from ...tensor import Tensor

    if isinstance(x, np.ndarray):
        return x
    if np.isscalar(x):
        return np.array([x])
    if isinstance(x, Tensor):
        return np.asarray(x.detach().numpy())
    raise NotImplementedError(f"Got {type(x)}, but numpy array or torch tensor are expected.")


def _one(metadata_plugin, tag, tensor=None, content=b""):
    smd = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name=metadata_plugin,
                                                                 content=content))
    if tensor is None:
        return Summary(value=[Summary.Value(tag=tag, metadata=smd)])
    return Summary(value=[Summary.Value(tag=tag, metadata=smd, tensor=tensor)])


def _shape(shape):
    return TensorShapeProto(dim=[TensorShapeProto.Dim(size=int(s)) for s in shape])


def scalar(name, tensor, collections=None, new_style=False, double_precision=False):
    """A scalar summary: `simple_value`, or (new_style) a float / double tensor for the
    scalars plugin."""
    tensor = make_np(tensor).squeeze()
    if tensor.ndim != 0:
        raise AssertionError(f"Tensor should contain one element (0 dimensions). Was given "
                             f"size: {tensor.size} and {tensor.ndim} dimensions.")
    value = float(tensor)
    if not new_style:
        return Summary(value=[Summary.Value(tag=name, simple_value=value)])
    if double_precision:
        proto = TensorProto(double_val=[value], dtype="DT_DOUBLE")
    else:
        proto = TensorProto(float_val=[value], dtype="DT_FLOAT")
    return _one("scalars", name, proto)


# cygrad's dtypes as TensorProto's (torch's table, less the dtypes cygrad has no tensors of)
_TENSOR_TYPES = {
    "float32": ("DT_FLOAT", "float_val"), "float64": ("DT_DOUBLE", "double_val"),
    "int8": ("DT_INT8", "int_val"), "uint8": ("DT_UINT8", "int_val"),
    "int16": ("DT_INT16", "int_val"), "int32": ("DT_INT32", "int_val"),
    "int64": ("DT_INT64", "int64_val"), "bool": ("DT_BOOL", "bool_val"),
}


def tensor_proto(tag, tensor):
    """A tensor summary (the `tensor` plugin) holding every element of a tensor."""
    data = make_np(tensor)
    if data.size * data.itemsize >= (1 << 31):
        raise ValueError("tensor is bigger than protocol buffer's hard limit of 2GB in size")
    name = str(data.dtype)
    if name not in _TENSOR_TYPES:
        raise ValueError(f"{tag} has unsupported tensor dtype {getattr(tensor, 'dtype', name)}")
    dtype, field = _TENSOR_TYPES[name]
    proto = TensorProto(**{"dtype": dtype, "tensor_shape": _shape(data.shape),
                           field: data.reshape(-1).tolist()})
    return _one("tensor", tag, proto)


def histogram_raw(name, min, max, num, sum, sum_squares, bucket_limits, bucket_counts):
    """A histogram summary from its statistics and buckets as given."""
    hist = HistogramProto(min=min, max=max, num=num, sum=sum, sum_squares=sum_squares,
                          bucket_limit=bucket_limits, bucket=bucket_counts)
    return Summary(value=[Summary.Value(tag=name, histo=hist)])


def histogram(name, values, bins, max_bins=None):
    values = make_np(values)
    return Summary(value=[Summary.Value(tag=name, histo=make_histogram(values.astype(float),
                                                                       bins, max_bins))])


def make_histogram(values, bins, max_bins=None):
    """torch's histogram: numpy's counts in `bins`, merged `max_bins` at a time when asked,
    trimmed to the buckets from the one before the first non-empty to the last non-empty."""
    if values.size == 0:
        raise ValueError("The input has no element.")
    values = values.reshape(-1)
    counts, limits = np.histogram(values, bins=bins)
    if max_bins is not None and len(counts) > max_bins:
        step = len(counts) // max_bins
        rest = len(counts) % step
        if rest:
            counts = np.pad(counts, [[0, step - rest]], mode="constant", constant_values=0)
        counts = counts.reshape(-1, step).sum(axis=-1)
        merged = np.empty((counts.size + 1,), limits.dtype)
        merged[:-1] = limits[:-1:step]
        merged[-1] = limits[-1]
        limits = merged
    cum = np.cumsum(np.greater(counts, 0))
    start, end = np.searchsorted(cum, [0, cum[-1] - 1], side="right")
    start, end = int(start), int(end) + 1
    counts = counts[start - 1:end] if start > 0 else np.concatenate([[0], counts[:end]])
    limits = limits[start:end + 1]
    if counts.size == 0 or limits.size == 0:
        raise ValueError("The histogram is empty, please file a bug report.")
    return HistogramProto(min=values.min(), max=values.max(), num=len(values),
                          sum=values.sum(), sum_squares=values.dot(values),
                          bucket_limit=limits.tolist(), bucket=counts.tolist())


def make_grid(images, ncols=8):
    """N images (N1HW or N3HW) side by side, ncols a row, as one 3HW array."""
    if not isinstance(images, np.ndarray):
        raise AssertionError("plugin error, should pass numpy array here")
    if images.shape[1] == 1:
        images = np.concatenate([images, images, images], 1)
    if images.ndim != 4 or images.shape[1] != 3:
        raise AssertionError("Input should be a 4D numpy array with 3 channels")
    n, _, h, w = images.shape
    ncols = min(n, ncols)
    nrows = -(-n // ncols)
    canvas = np.zeros((3, h * nrows, w * ncols), dtype=images.dtype)
    for i in range(n):
        y, x = divmod(i, ncols)
        canvas[:, y * h:(y + 1) * h, x * w:(x + 1) * w] = images[i]
    return canvas


def convert_to_HWC(tensor, input_format):  # noqa: N802 (torch's name)
    """An image (`dataformats` HW, CHW / HWC..., NCHW...) as an HWC array (a batch as a grid)."""
    if len(set(input_format)) != len(input_format):
        raise AssertionError(f"You can not use the same dimension shorthand twice. "
                             f"input_format: {input_format}")
    if len(tensor.shape) != len(input_format):
        raise AssertionError(f"size of input tensor and input format are different. tensor "
                             f"shape: {tensor.shape}, input_format: {input_format}")
    fmt = input_format.upper()
    if len(fmt) == 4:
        return make_grid(tensor.transpose([fmt.find(c) for c in "NCHW"])).transpose(1, 2, 0)
    if len(fmt) == 3:
        hwc = tensor.transpose([fmt.find(c) for c in "HWC"])
        return np.concatenate([hwc] * 3, 2) if hwc.shape[2] == 1 else hwc
    if len(fmt) == 2:
        return np.stack([tensor.transpose([fmt.find(c) for c in "HW"])] * 3, 2)
    raise AssertionError(f"input_format {input_format!r}: expected 2 to 4 of N, C, H, W")


def _png(pixels):
    """PNG bytes of an HWC uint8 array of 1-4 channels (zlib, no row filters)."""
    h, w, c = pixels.shape
    kind = {1: 0, 2: 4, 3: 2, 4: 6}[c]  # grey, grey+alpha, RGB, RGBA

    def chunk(tag, data):
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    rows = np.zeros((h, 1 + w * c), np.uint8)
    rows[:, 1:] = pixels.reshape(h, w * c)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, kind, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + chunk(b"IEND", b""))


def make_image(tensor, rescale=1, rois=None, labels=None):
    """Summary.Image of an HWC uint8 array (PNG)."""
    if rois is not None or labels is not None:
        raise NotImplementedError("cygrad's tensorboard does not draw boxes (add_image_with_boxes)")
    height, width, channel = tensor.shape
    if rescale != 1:
        raise NotImplementedError("cygrad's tensorboard writes images at their size (rescale=1)")
    return Summary.Image(height=height, width=width, colorspace=channel,
                         encoded_image_string=_png(np.ascontiguousarray(tensor)))


def image(tag, tensor, rescale=1, dataformats="NCHW"):
    """An image summary: floats taken as 0-1 (times 255), uint8 as they are, clipped."""
    tensor = make_np(tensor)
    tensor = convert_to_HWC(tensor, dataformats)
    scale = 1 if tensor.dtype == np.uint8 else 255
    tensor = (tensor.astype(np.float32) * scale).clip(0, 255).astype(np.uint8)
    return Summary(value=[Summary.Value(tag=tag, image=make_image(tensor, rescale=rescale))])


def figure_to_image(figures, close=True):
    """A matplotlib figure (or a list of them) rendered to a CHW (NCHW) uint8 array."""
    import matplotlib.backends.backend_agg as agg
    import matplotlib.pyplot as plt

    def render(figure):
        canvas = agg.FigureCanvasAgg(figure)
        canvas.draw()
        data = np.frombuffer(canvas.buffer_rgba(), dtype=np.uint8)
        w, h = figure.canvas.get_width_height()
        chw = np.moveaxis(data.reshape([h, w, 4])[:, :, 0:3], source=2, destination=0)
        if close:
            plt.close(figure)
        return chw

    if isinstance(figures, list):
        return np.stack([render(f) for f in figures])
    return render(figures)


def text(tag, text):
    """A text summary (the text plugin), tagged `tag/text_summary` as torch tags it."""
    proto = TensorProto(dtype="DT_STRING", string_val=[text.encode(encoding="utf_8")],
                        tensor_shape=_shape([1]))
    return _one("text", tag + "/text_summary", proto, TextPluginData(version=0).SerializeToString())


def _domain(kind, values):
    return struct_pb2.ListValue(values=[struct_pb2.Value(**{kind: d}) for d in values])


def hparams(hparam_dict=None, metric_dict=None, hparam_domain_discrete=None):
    """The hparams plugin's experiment, session-start and session-end summaries."""
    from tensorboard.plugins.hparams.api_pb2 import (
        DataType,
        Experiment,
        HParamInfo,
        MetricInfo,
        MetricName,
        Status,
    )
    from tensorboard.plugins.hparams.metadata import (
        EXPERIMENT_TAG,
        PLUGIN_DATA_VERSION,
        PLUGIN_NAME,
        SESSION_END_INFO_TAG,
        SESSION_START_INFO_TAG,
    )
    from tensorboard.plugins.hparams.plugin_data_pb2 import (
        HParamsPluginData,
        SessionEndInfo,
        SessionStartInfo,
    )

    from ...tensor import Tensor

    if not isinstance(hparam_dict, dict):
        raise TypeError("parameter: hparam_dict should be a dictionary, nothing logged.")
    if not isinstance(metric_dict, dict):
        raise TypeError("parameter: metric_dict should be a dictionary, nothing logged.")
    hparam_domain_discrete = hparam_domain_discrete or {}
    if not isinstance(hparam_domain_discrete, dict):
        raise TypeError("parameter: hparam_domain_discrete should be a dictionary, nothing "
                        "logged.")
    for k, v in hparam_domain_discrete.items():
        if (k not in hparam_dict or not isinstance(v, list)
                or not all(isinstance(d, type(hparam_dict[k])) for d in v)):
            raise TypeError(f"parameter: hparam_domain_discrete[{k}] should be a list of same "
                            f"type as hparam_dict[{k}].")
    infos = []
    ssi = SessionStartInfo()
    for k, v in hparam_dict.items():
        if v is None:
            continue
        # torch's order of tests: a bool is an int, so it is recorded as a number
        for types, field, kind in (((int, float), "number_value", "DATA_TYPE_FLOAT64"),
                                   ((str,), "string_value", "DATA_TYPE_STRING"),
                                   ((bool,), "bool_value", "DATA_TYPE_BOOL")):
            if isinstance(v, types):
                setattr(ssi.hparams[k], field, v)
                dom = (_domain(field, hparam_domain_discrete[k])
                       if k in hparam_domain_discrete else None)
                infos.append(HParamInfo(name=k, type=DataType.Value(kind), domain_discrete=dom))
                break
        else:
            if not isinstance(v, Tensor):
                raise ValueError("value should be one of int, float, str, bool, or torch.Tensor")
            ssi.hparams[k].number_value = make_np(v).reshape(-1)[0]
            infos.append(HParamInfo(name=k, type=DataType.Value("DATA_TYPE_FLOAT64")))

    def record(tag, **content):
        data = HParamsPluginData(version=PLUGIN_DATA_VERSION, **content).SerializeToString()
        return _one(PLUGIN_NAME, tag, content=data)

    exp = Experiment(hparam_infos=infos,
                     metric_infos=[MetricInfo(name=MetricName(tag=k)) for k in metric_dict])
    return (record(EXPERIMENT_TAG, experiment=exp),
            record(SESSION_START_INFO_TAG, session_start_info=ssi),
            record(SESSION_END_INFO_TAG,
                   session_end_info=SessionEndInfo(status=Status.Value("STATUS_SUCCESS"))))


def _pr_summary(tag, data, num_thresholds):
    content = PrCurvePluginData(version=0, num_thresholds=num_thresholds).SerializeToString()
    proto = TensorProto(dtype="DT_FLOAT", float_val=data.reshape(-1).tolist(),
                        tensor_shape=_shape(data.shape[:2]))
    return _one("pr_curves", tag, proto, content)


def pr_curve_raw(tag, tp, fp, tn, fn, precision, recall, num_thresholds=127, weights=None):
    """A precision-recall curve summary from its counts as given."""
    return _pr_summary(tag, np.stack((tp, fp, tn, fn, precision, recall)),
                       min(num_thresholds, 127))


def pr_curve(tag, labels, predictions, num_thresholds=127, weights=None):
    """A precision-recall curve summary of predictions in [0, 1] against 0/1 labels."""
    num_thresholds = min(num_thresholds, 127)  # torch's bound (larger breaks the protobuf)
    return _pr_summary(tag, compute_curve(labels, predictions, num_thresholds, weights),
                       num_thresholds)


def compute_curve(labels, predictions, num_thresholds=None, weights=None):
    """tp, fp, tn, fn, precision and recall at num_thresholds thresholds (tensorboard's)."""
    weights = 1.0 if weights is None else weights
    buckets = np.int32(np.floor(predictions * (num_thresholds - 1)))
    labels = labels.astype(np.float64)
    span = (0, num_thresholds - 1)
    tp_b, _ = np.histogram(buckets, bins=num_thresholds, range=span, weights=labels * weights)
    fp_b, _ = np.histogram(buckets, bins=num_thresholds, range=span,
                           weights=(1.0 - labels) * weights)
    tp = np.cumsum(tp_b[::-1])[::-1]
    fp = np.cumsum(fp_b[::-1])[::-1]
    tn = fp[0] - fp
    fn = tp[0] - tp
    precision = tp / np.maximum(1e-7, tp + fp)
    recall = tp / np.maximum(1e-7, tp + fn)
    return np.stack((tp, fp, tn, fn, precision, recall))

