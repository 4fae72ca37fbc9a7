"""A SymmetryMonitor dropped without detach() leaves nothing behind in its thread: its watcher
goes (also when the monitor had switched it off), so compiled steps capture and replay again
and ops stop paying for a watcher."""

import gc

import cygrad
import cygrad.nn as nn
from cygrad import _state
from cygrad.symmetry import SymmetryMonitor
from helpers import compiled_mse_step


def test_a_dropped_monitor_stops_watching():
    cygrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    opt = cygrad.optim.SGD(model.parameters(), lr=0.1)
    x, y = cygrad.randn(5, 3), cygrad.randn(5, 1)
    monitor = SymmetryMonitor(model)
    assert _state.local.watch is not None
    monitor._watcher.on = False  # as between steps in which nothing can split
    step = compiled_mse_step(model, opt, x, y)
    step()
    assert step.counts["eager"] == 1  # a live monitor sees every op: eagerly
    del monitor
    gc.collect()
    for _ in range(4):
        step()
    assert step.counts["replays"] >= 1 and step.counts["eager"] == 1
    assert _state.local.watch is None
