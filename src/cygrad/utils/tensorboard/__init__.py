"""cygrad.utils.tensorboard: torch.utils.tensorboard's SummaryWriter on cygrad tensors.

It writes TensorBoard event files through the `tensorboard` package (an optional dependency,
as it is for torch: without it importing this module raises ModuleNotFoundError, as torch's
does). The summaries are built as torch builds them (the same protocol buffers, tags, histogram
buckets and hparams records), so TensorBoard shows a cygrad run as it shows torch's.
"""

import tensorboard


def _version(text):
    parts = []
    for piece in str(text).split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


if not hasattr(tensorboard, "__version__") or _version(tensorboard.__version__) < (1, 15):
    raise ImportError("TensorBoard logging requires TensorBoard version 1.15 or above")

del tensorboard

from tensorboard.summary.writer.record_writer import RecordWriter  # noqa: E402

from .writer import FileWriter, SummaryWriter  # noqa: E402

__all__ = ["FileWriter", "RecordWriter", "SummaryWriter"]
