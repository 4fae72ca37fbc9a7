"""torch.profiler and torch.autograd.profiler: where a step's time goes, op by op.

    with torch.profiler.profile() as prof:           # or torch.autograd.profiler.profile()
        with torch.profiler.record_function("step"):
            loss = model(x).sum(); loss.backward()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))

A profiler is one of the engine's watchers (cygrad/tensor.py Watcher): it times every op's
forward (named by its kind: "Linear", "Add" ...), every backward step (named as torch's
autograd engine names it, "autograd::engine::evaluate_function: AddmmBackward0") and every
record_function range, in the thread that opened it; nothing is added to the engine's path.
Self time is an event's time less its children's. CPU only: asking for CUDA warns, as torch
without CUDA does, and the CPU is profiled."""

import enum
import json
import os
import threading
import time
import warnings

from . import _state
from .tensor import Watcher

__all__ = ["profile", "record_function", "ProfilerActivity", "ProfilerAction", "schedule",
           "tensorboard_trace_handler", "EventList", "FunctionEvent", "FunctionEventAvg"]


class ProfilerActivity(enum.Enum):
    CPU = 0
    CUDA = 1
    XPU = 2
    MTIA = 3
    PrivateUse1 = 4
    HPU = 5


class ProfilerAction(enum.Enum):
    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


def schedule(*, wait, warmup, active, repeat=0, skip_first=0, skip_first_wait=0):
    """torch.profiler.schedule: after skip_first steps, cycles of `wait` idle, `warmup` and
    `active` recorded steps (the last one saves), `repeat` times (0: for ever)."""
    if wait < 0 or warmup < 0 or active <= 0 or repeat < 0 or skip_first < 0:
        raise AssertionError("Invalid profiler schedule arguments")

    def action(step):
        if step < skip_first:
            return ProfilerAction.NONE
        step -= skip_first
        cycle = wait + warmup + active
        if repeat > 0 and step // cycle >= repeat:
            return ProfilerAction.NONE
        at = step % cycle
        if at < wait:
            return ProfilerAction.NONE
        if at < wait + warmup:
            return ProfilerAction.WARMUP
        return ProfilerAction.RECORD if at < cycle - 1 else ProfilerAction.RECORD_AND_SAVE

    return action


class FunctionEvent:
    """One timed event: name, start and end (microseconds from the profile's start), the
    thread, its input shapes (record_shapes) and its children's total time."""

    def __init__(self, name, start, thread, shapes=()):
        self.name, self.key, self.time_range_start, self.thread = name, name, start, thread
        self.input_shapes = list(shapes)
        self.time_range_end = start
        self.children_time = 0.0
        self.count = 1

    @property
    def cpu_time_total(self):
        return self.time_range_end - self.time_range_start

    @property
    def self_cpu_time_total(self):
        return self.cpu_time_total - self.children_time

    cpu_time = cpu_time_total

    def __repr__(self):
        return (f"<FunctionEvent name={self.name} cpu_time_total={self.cpu_time_total:.3f}us "
                f"self_cpu_time_total={self.self_cpu_time_total:.3f}us>")


class FunctionEventAvg:
    """The events of one key (a name, and the input shapes when grouped by them) summed."""

    def __init__(self, key, shapes=None):
        self.key, self.input_shapes = key, shapes
        self.count = 0
        self.cpu_time_total = self.self_cpu_time_total = 0.0

    def add(self, event):
        self.count += 1
        self.cpu_time_total += event.cpu_time_total
        self.self_cpu_time_total += event.self_cpu_time_total
        return self

    @property
    def cpu_time(self):
        return self.cpu_time_total / max(self.count, 1)

    def __repr__(self):
        return (f"<FunctionEventAvg key={self.key} self_cpu_time={self.self_cpu_time_total:.3f}"
                f"us cpu_time={self.cpu_time:.3f}us count={self.count}>")


def _us(value):
    if value >= 1e6:
        return f"{value / 1e6:.3f}s"
    if value >= 1e3:
        return f"{value / 1e3:.3f}ms"
    return f"{value:.3f}us"


class EventList(list):
    """A list of events (FunctionEvent or FunctionEventAvg) that prints as torch's table."""

    def __init__(self, events=(), group_by_shapes=False):
        super().__init__(events)
        self._shapes = group_by_shapes

    @property
    def self_cpu_time_total(self):
        return sum(e.self_cpu_time_total for e in self)

    def key_averages(self, group_by_input_shape=False):
        groups = {}
        for e in self:
            shapes = str(e.input_shapes) if group_by_input_shape else None
            key = (e.key, shapes)
            if key not in groups:
                groups[key] = FunctionEventAvg(e.key, shapes)
            groups[key].add(e)
        return EventList(groups.values(), group_by_shapes=group_by_input_shape)

    def table(self, sort_by=None, row_limit=100, max_src_column_width=75,
              max_name_column_width=55, max_shapes_column_width=80, header=None,
              top_level_events_only=False):
        """torch's columns: Name, Self CPU %, Self CPU, CPU total %, CPU total, CPU time avg,
        # of Calls (and Input Shapes when grouped by them); sort_by one of torch's keys."""
        rows = list(self)
        keys = {"self_cpu_time_total": "self_cpu_time_total", "cpu_time_total":
                "cpu_time_total", "cpu_time": "cpu_time", "count": "count",
                "self_cpu_time": "self_cpu_time_total"}
        if sort_by is not None:
            if sort_by not in keys and not sort_by.startswith(("cuda", "device", "xpu")):
                raise AttributeError(f"'FunctionEventAvg' object has no attribute '{sort_by}'")
            attr = keys.get(sort_by, "cpu_time_total")
            rows.sort(key=lambda e: getattr(e, attr), reverse=True)
        if row_limit is not None and row_limit > 0:
            rows = rows[:row_limit]
        total = self.self_cpu_time_total or 1.0
        name_w = min(max([len(str(e.key)) for e in rows] + [4]), max_name_column_width) + 2
        columns = ["Name", "Self CPU %", "Self CPU", "CPU total %", "CPU total",
                   "CPU time avg", "# of Calls"]
        widths = [name_w] + [12] * 6
        if self._shapes:
            columns.append("Input Shapes")
            widths.append(min(max([len(str(e.input_shapes)) for e in rows] + [12]),
                              max_shapes_column_width))
        line = "  ".join("-" * w for w in widths)  # torch's layout: every column right-aligned
        out = [line, "  ".join(c.rjust(w) for c, w in zip(columns, widths)), line]
        for e in rows:
            name = str(e.key)
            if len(name) > max_name_column_width - 2:
                name = name[:max_name_column_width - 5] + "..."
            cells = [name, f"{100 * e.self_cpu_time_total / total:.2f}%",
                     _us(e.self_cpu_time_total), f"{100 * e.cpu_time_total / total:.2f}%",
                     _us(e.cpu_time_total), _us(e.cpu_time), str(e.count)]
            if self._shapes:
                cells.append(str(e.input_shapes)[:max_shapes_column_width])
            out.append("  ".join(c.rjust(w) for c, w in zip(cells, widths)))
        out += [line, f"Self CPU time total: {_us(self.self_cpu_time_total)}", ""]
        text = "\n".join(out)
        return text if header is None else header + "\n" + text

    def __str__(self):
        return self.table()

    def export_chrome_trace(self, path):
        events = [{"name": e.name, "ph": "X", "ts": e.time_range_start,
                   "dur": e.cpu_time_total, "pid": os.getpid(), "tid": e.thread, "cat": "cpu_op"}
                  for e in self if isinstance(e, FunctionEvent)]
        with open(path, "w") as f:
            json.dump({"traceEvents": events, "displayTimeUnit": "ms"}, f)


class _Timer(Watcher):
    """The watcher: a stack of open events, each closed one kept."""

    def __init__(self, origin, record_shapes):
        self.origin, self.record_shapes = origin, record_shapes
        self.events, self.stack = [], []
        self.thread = threading.get_ident()

    def _now(self):
        return (time.perf_counter() - self.origin) * 1e6

    def open(self, name, shapes=()):
        event = FunctionEvent(name, self._now(), self.thread,
                              shapes if self.record_shapes else ())
        self.stack.append(event)
        return event

    def close(self, event):
        event.time_range_end = self._now()
        while self.stack and self.stack[-1] is not event:  # a range left open inside
            self.close(self.stack[-1])
        if self.stack:
            self.stack.pop()
        if self.stack:
            self.stack[-1].children_time += event.cpu_time_total
        self.events.append(event)

    def begin(self, op, inputs):
        self.open(op.kind(), [list(t.shape) for t in inputs])

    def forward(self, op, inputs, out):
        if self.stack:
            self.close(self.stack[-1])

    def before(self, node, g):
        op = node._op
        name = op.name() if op is not None else "AccumulateGrad"
        self.open(f"autograd::engine::evaluate_function: {name}", [list(g.shape)])

    def step(self, node, g, input_grads):
        if self.stack:
            self.close(self.stack[-1])


class record_function:
    """A named range in the profile (a context manager or a decorator); outside a profile it
    does nothing."""

    def __init__(self, name, args=None):
        self.name, self.args = name, args
        self._event = self._timer = None

    def __enter__(self):
        self._timer = _active_timer()
        if self._timer is not None:
            self._event = self._timer.open(self.name)
        return self

    def __exit__(self, *exc):
        if self._timer is not None and self._event is not None:
            self._timer.close(self._event)
        self._event = self._timer = None
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with record_function(self.name):
                return fn(*args, **kwargs)

        return wrapped


def _active_timer():
    for w in _state.local.watch or ():
        if isinstance(w, _Timer):
            return w
    return None


class profile:
    """torch.profiler.profile (activities, schedule, on_trace_ready, record_shapes ...) and
    torch.autograd.profiler.profile (enabled, use_cuda ...) in one: records in the thread that
    enters it; key_averages(), events(), table(), export_chrome_trace(), step()."""

    def __init__(self, enabled=True, *, activities=None, schedule=None, on_trace_ready=None,
                 record_shapes=False, profile_memory=False, with_stack=False, with_flops=False,
                 with_modules=False, use_cuda=False, use_device=None, use_kineto=True,
                 use_cpu=True, experimental_config=None, execution_trace_observer=None,
                 acc_events=False, custom_trace_id_callback=None):
        asked = set(activities or ())
        if use_cuda or (use_device not in (None, "cpu")) or asked - {ProfilerActivity.CPU}:
            # torch on a machine without CUDA profiles the CPU (nanoGPT's bench.py asks both)
            warnings.warn("CUDA is not available, disabling CUDA profiling", stacklevel=2)
        self.enabled, self.record_shapes = enabled, record_shapes
        self.schedule, self.on_trace_ready = schedule, on_trace_ready
        self.step_num = 0
        self._timer = self._watching = None
        self.function_events = None
        self._origin = time.perf_counter()

    def _action(self):
        return ProfilerAction.RECORD if self.schedule is None else self.schedule(self.step_num)

    def _start(self):
        if self._watching is None and self.enabled:
            self._timer = _Timer(self._origin, self.record_shapes)
            self._watching = _state.watching(self._timer)
            self._watching.__enter__()

    def _stop(self):
        if self._watching is not None:
            self._watching.__exit__(None, None, None)
            self._watching = None
            while self._timer.stack:
                self._timer.close(self._timer.stack[-1])
            self.function_events = EventList(sorted(self._timer.events,
                                                    key=lambda e: e.time_range_start))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        if self._action() in (ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE):
            self._start()
        return self

    def stop(self):
        was = self._watching is not None
        self._stop()
        if was and self.on_trace_ready is not None and self.schedule is None:
            self.on_trace_ready(self)

    def step(self):
        """End of a training step: with a schedule, start or stop recording (and call
        on_trace_ready after the last active step of a cycle)."""
        before = self._action()
        self.step_num += 1
        after = self._action()
        if before == ProfilerAction.RECORD_AND_SAVE:
            self._stop()
            if self.on_trace_ready is not None:
                self.on_trace_ready(self)
        if after in (ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE):
            self._start()

    def events(self):
        if self.function_events is None:
            raise RuntimeError("Profiler didn't finish running")
        return self.function_events

    def key_averages(self, group_by_input_shape=False, group_by_stack_n=0,
                     group_by_overload_name=False):
        return self.events().key_averages(group_by_input_shape)

    def table(self, *args, **kwargs):
        return self.events().table(*args, **kwargs)

    def export_chrome_trace(self, path):
        self.events().export_chrome_trace(path)

    @property
    def self_cpu_time_total(self):
        return self.events().self_cpu_time_total

    def __str__(self):
        return self.table()


def tensorboard_trace_handler(dir_name, worker_name=None, use_gzip=False):
    """on_trace_ready that writes each trace to dir_name/<worker>.<time in ms>.pt.trace.json."""
    import socket

    def handler(prof):
        os.makedirs(dir_name, exist_ok=True)
        worker = worker_name or f"{socket.gethostname()}_{os.getpid()}"
        name = f"{worker}.{int(time.time() * 1000)}.pt.trace.json"
        if use_gzip:
            raise NotImplementedError("cygrad's trace handler writes plain JSON (use_gzip=False)")
        prof.export_chrome_trace(os.path.join(dir_name, name))

    return handler
