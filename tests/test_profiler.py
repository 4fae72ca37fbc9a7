"""cygrad.profiler (torch.profiler, torch.autograd.profiler): every op's forward, backward
step and record_function range of the profiling thread, timed and nested; torch's schedule."""

import json
import threading

import pytest

import cygrad
import cygrad.nn as nn
from cygrad.profiler import ProfilerAction, ProfilerActivity, profile, record_function, schedule
from helpers import run_program


def _model():
    cygrad.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 2)), cygrad.randn(4, 8)


def test_events_nest_and_add_up():
    model, x = _model()
    model(x)  # outside: not recorded
    with profile(record_shapes=True) as prof:
        with record_function("step"):
            loss = model(x).sum()
            loss.backward()
    events = prof.events()
    names = [e.name for e in events]
    assert names[0] == "step" and "Sum" in names
    assert any(n.startswith("autograd::engine::evaluate_function: ") for n in names)
    step = events[0]
    inner = [e for e in events[1:]]
    assert all(step.time_range_start <= e.time_range_start <= e.time_range_end
               <= step.time_range_end for e in inner)
    assert step.self_cpu_time_total == pytest.approx(
        step.cpu_time_total - sum(e.cpu_time_total for e in inner), abs=1e-6)
    assert prof.self_cpu_time_total == pytest.approx(step.cpu_time_total, rel=1e-9)
    sums = [e for e in events if e.name == "Sum"]
    assert sums[0].input_shapes == [[4, 2]]


def test_key_averages_count_calls_and_the_table_sorts():
    model, x = _model()
    with profile() as prof:
        for _ in range(3):
            model(x).sum().backward()
    avg = {e.key: e for e in prof.key_averages()}
    assert avg["Sum"].count == 3
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=3)
    lines = table.splitlines()
    assert "Self CPU %" in lines[1] and lines[-1].startswith("Self CPU time total:")
    assert len(lines) == 3 + 3 + 2  # header, three rows, footer
    with pytest.raises(AttributeError):
        prof.key_averages().table(sort_by="no_such_key")


def test_only_the_profiling_thread_is_recorded_and_cuda_is_left_out():
    model, x = _model()
    with profile() as prof:
        t = threading.Thread(target=lambda: model(x).sum())
        t.start()
        t.join()
    assert len(prof.events()) == 0
    # torch without CUDA warns and profiles the CPU (nanoGPT's bench.py asks for both)
    for kwargs in ({"use_cuda": True}, {"activities": [ProfilerActivity.CPU,
                                                       ProfilerActivity.CUDA]}):
        with pytest.warns(UserWarning, match="CUDA is not available, disabling CUDA"):
            with profile(**kwargs) as prof:
                model(x).sum()
        assert len(prof.events()) > 0
    with record_function("outside"):  # nothing to record into: no error
        pass


def test_schedule_as_torchs_and_on_trace_ready(tmp_path):
    actions = schedule(wait=1, warmup=2, active=2, repeat=2, skip_first=1)
    ours = [actions(i).name for i in range(14)]
    assert ours[:7] == ["NONE", "NONE", "WARMUP", "WARMUP", "RECORD", "RECORD_AND_SAVE", "NONE"]
    try:
        import torch.profiler as tp
    except ImportError:
        pass
    else:
        theirs = tp.schedule(wait=1, warmup=2, active=2, repeat=2, skip_first=1)
        assert ours == [theirs(i).name for i in range(14)]
    model, x = _model()
    traces = []
    with profile(schedule=schedule(wait=1, warmup=1, active=2),
                 on_trace_ready=lambda p: traces.append(len(p.events()))) as prof:
        for _ in range(8):
            model(x).sum().backward()
            prof.step()
    assert len(traces) == 2 and all(n > 0 for n in traces)
    assert ProfilerAction.RECORD_AND_SAVE.value == 3
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    trace = json.loads(path.read_text())
    assert trace["traceEvents"] and {"name", "ph", "ts", "dur"} <= set(trace["traceEvents"][0])


PROGRAM = """
import torch
x = torch.ones(3, requires_grad=True)
with torch.autograd.profiler.profile(use_cuda=False) as prof:
    (x * 2).sum().backward()
print(sorted({e.key for e in prof.key_averages()})[:1], prof.self_cpu_time_total > 0)
"""


def test_a_program_reaches_it_as_torch_autograd_profiler():
    ours = run_program(PROGRAM, True)
    assert ours[0].endswith("True")
