"""cygrad.utils: data loading (`cygrad.utils.data`), hook handles (`cygrad.utils.hooks`),
activation checkpointing's entry points (`cygrad.utils.checkpoint`) and timing
(`cygrad.utils.benchmark`), as torch.utils; `cygrad.utils.tensorboard` with the tensorboard
package."""

from . import benchmark, checkpoint, data, hooks

__all__ = ["benchmark", "checkpoint", "data", "hooks"]
