"""cygrad.utils: data loading (`cygrad.utils.data`), hook handles (`cygrad.utils.hooks`) and
activation checkpointing's entry points (`cygrad.utils.checkpoint`), as torch.utils."""

from . import checkpoint, data, hooks

__all__ = ["checkpoint", "data", "hooks"]
