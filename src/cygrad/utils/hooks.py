"""RemovableHandle: what registering a hook returns (torch.utils.hooks.RemovableHandle).

    handle = optimizer.register_step_post_hook(hook)
    ...
    handle.remove()                  # or: with handle: ...  (removed on leaving the block)

Hooks live in an ordered dict keyed by the handle's id; the handle holds that dict weakly, so
a handle outliving its owner removes nothing and keeps nothing alive.
"""

import itertools
import weakref

__all__ = ["RemovableHandle"]


class RemovableHandle:
    """A handle which provides the capability to remove a hook."""

    _ids = itertools.count()

    def __init__(self, hooks_dict, *, extra_dict=None):
        self.hooks_dict_ref = weakref.ref(hooks_dict)
        self.id = next(RemovableHandle._ids)
        if extra_dict is None:
            extra_dict = []
        elif not isinstance(extra_dict, (list, tuple)):
            extra_dict = [extra_dict]
        self.extra_dict_ref = tuple(weakref.ref(d) for d in extra_dict)

    def remove(self):
        """Unregister the hook (again: nothing happens)."""
        for ref in (self.hooks_dict_ref, *self.extra_dict_ref):
            hooks = ref()
            if hooks is not None and self.id in hooks:
                del hooks[self.id]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()

    def __repr__(self):
        return f"<RemovableHandle id={self.id}>"
