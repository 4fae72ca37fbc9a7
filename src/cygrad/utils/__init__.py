"""cygrad.utils: data loading (`cygrad.utils.data`) and hook handles (`cygrad.utils.hooks`),
as torch.utils."""

from . import data, hooks

__all__ = ["data", "hooks"]
