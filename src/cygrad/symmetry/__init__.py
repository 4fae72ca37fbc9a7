"""See weight symmetry: which units of a layer are tied, how many distinct units a layer really
has, when a group of tied units splits, and which operation split it.

Layout as in PyTorch: a Linear weight W is (out, in), so row i is unit i's incoming weights and
column j of the *next* layer's weight is how that layer listens to unit j. groups.py defines the
units of every layer kind (filters, embedding dimensions, norm channels, attention heads).

    monitor = SymmetryMonitor(model)
    monitor.attach(optimizer)          # records after every optimizer.step()
    ...train...
    print(monitor.report())
"""

from .groups import (
    KINDS,
    effective_width,
    inspectable,
    tied_groups,
    tied_groups_of,
    unit_slices,
    watched_layers,
)
from .monitor import SymmetryMonitor, activation_health, update_ratio

weight_layers = watched_layers  # the name the symmetry tools had before they knew more kinds

__all__ = ["tied_groups_of", "tied_groups", "effective_width", "unit_slices", "watched_layers",
           "weight_layers", "inspectable", "KINDS", "SymmetryMonitor", "activation_health",
           "update_ratio"]
