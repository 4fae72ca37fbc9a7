"""cygrad.utils: hook handles (`cygrad.utils.hooks`), as torch.utils."""

from . import hooks

__all__ = ["hooks"]
