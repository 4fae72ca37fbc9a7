"""torch.return_types: the named results (values, indices = x.max(1); U, S, V = x.svd() ...).

Each is a namedtuple that prints as torch's struct sequences print,
    torch.return_types.max(
    values=tensor([3., 2.]),
    indices=tensor([1, 0]))
(cygrad.return_types... when imported as cygrad), and pickles by reference to this module."""

import sys
import types
from collections import namedtuple

from . import dtypes

return_types = types.ModuleType("cygrad.return_types", __doc__)
sys.modules["cygrad.return_types"] = return_types


def _repr(self):
    body = ",\n".join(f"{field}={value!r}" for field, value in zip(self._fields, self))
    return f"{dtypes.display_name}.return_types.{type(self).__name__}(\n{body})"


def return_type(name, fields):
    """The result type torch names `name` with these fields (one class a name)."""
    fields = tuple(fields)
    known = getattr(return_types, name, None)
    if known is not None:
        if known._fields != fields:
            raise ValueError(f"return_types.{name}: fields {fields} differ from {known._fields}")
        return known
    cls = type(name, (namedtuple(name, fields),), {"__slots__": (), "__repr__": _repr,
                                                   "__module__": "cygrad.return_types"})
    setattr(return_types, name, cls)
    return cls
