"""torch.utils.benchmark: Timer, Measurement and Compare, as torch's (Python statements).

    t = Timer("x @ y", globals={"x": x, "y": y}, label="matmul", num_threads=1)
    print(t.blocked_autorange(min_run_time=0.2))

A Timer runs its statement with cygrad's thread count set to num_threads (the kernels'
OpenMP threads, as torch sets its intra-op threads) and timeit's machinery; Measurement holds
the times per run and prints torch's summary (median, IQR, warnings); Compare prints a table
of several. Callgrind counts and the fuzzers are not built (they raise)."""

import collections
import contextlib
import dataclasses
import math
import textwrap
import timeit

import numpy as np

__all__ = ["Timer", "Measurement", "TaskSpec", "Compare", "select_unit", "trim_sigfig",
           "unit_to_english", "ordered_unique", "set_torch_threads", "Language"]

_MAX_SIGNIFICANT_FIGURES = 4
_MIN_CONFIDENCE_INTERVAL = 25e-9
_IQR_WARN_THRESHOLD = 0.1
_IQR_GROSS_WARN_THRESHOLD = 0.25


class Language:
    PYTHON = 0
    CPP = 1


@contextlib.contextmanager
def set_torch_threads(n):
    """cygrad's thread count set to n inside the block."""
    from .. import get_num_threads, set_num_threads

    before = get_num_threads()
    try:
        set_num_threads(n)
        yield
    finally:
        set_num_threads(before)


def select_unit(t):
    """The unit (ns, us, ms, s) that shows t (seconds) at O(1), and its scale."""
    unit = {-3: "ns", -2: "us", -1: "ms"}.get(int(math.log10(t) // 3) if t > 0 else -3, "s")
    return unit, {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1}[unit]


def unit_to_english(u):
    return {"ns": "nanosecond", "us": "microsecond", "ms": "millisecond", "s": "second"}[u]


def trim_sigfig(x, n):
    """x to n significant figures (3.14159, 2 -> 3.1)."""
    if n != int(n):
        raise AssertionError("Number of significant figures must be an integer")
    magnitude = int(math.ceil(math.log10(abs(x))))
    scale = 10 ** (magnitude - n)
    return float(np.round(x / scale) * scale)


def ordered_unique(elements):
    return list(collections.OrderedDict(dict.fromkeys(elements)).keys())


@dataclasses.dataclass(init=True, repr=False, eq=True, frozen=True)
class TaskSpec:
    """What a Timer runs (all but its globals)."""

    stmt: str
    setup: str
    global_setup: str = ""
    label: str | None = None
    sub_label: str | None = None
    description: str | None = None
    env: str | None = None
    num_threads: int = 1

    @property
    def title(self):
        if self.label is not None:
            return self.label + (f": {self.sub_label}" if self.sub_label else "")
        if "\n" not in self.stmt:
            return self.stmt + (f": {self.sub_label}" if self.sub_label else "")
        return (f"stmt:{f' ({self.sub_label})' if self.sub_label else ''}\n"
                f"{textwrap.indent(self.stmt, '  ')}")

    def setup_str(self):
        if self.setup == "pass" or not self.setup:
            return ""
        return (f"setup:\n{textwrap.indent(self.setup, '  ')}" if "\n" in self.setup
                else f"setup: {self.setup}")

    def summarize(self):
        sections = [self.title, self.description or "", self.setup_str()]
        return "\n".join([f"{i}\n" if "\n" in i else i for i in sections if i])


_TASKSPEC_FIELDS = tuple(f.name for f in dataclasses.fields(TaskSpec))


@dataclasses.dataclass(init=True, repr=False)
class Measurement:
    """Times of one statement: raw_times of number_per_run runs each; statistics per run."""

    number_per_run: int
    raw_times: list
    task_spec: TaskSpec
    metadata: dict | None = None

    def __post_init__(self):
        self._sorted_times = ()
        self._warnings = ()
        self._median = self._mean = self._p25 = self._p75 = -1.0

    def __getattr__(self, name):
        if name in _TASKSPEC_FIELDS:
            return getattr(self.task_spec, name)
        return super().__getattribute__(name)

    @property
    def times(self):
        return [t / self.number_per_run for t in self.raw_times]

    @property
    def median(self):
        self._lazy_init()
        return self._median

    @property
    def mean(self):
        self._lazy_init()
        return self._mean

    @property
    def iqr(self):
        self._lazy_init()
        return self._p75 - self._p25

    @property
    def significant_figures(self):
        """torch's rough estimate from the interquartile points (for Compare)."""
        self._lazy_init()
        n = len(self._sorted_times)
        points = self._sorted_times[n // 4:int(math.ceil(3 * n / 4))]
        std = float(np.std(points))
        ci = max(1.645 * std / math.sqrt(len(points)), _MIN_CONFIDENCE_INTERVAL)
        figures = int(math.floor(math.log10(self._median / ci)))
        return min(max(figures, 1), _MAX_SIGNIFICANT_FIGURES)

    @property
    def has_warnings(self):
        self._lazy_init()
        return bool(self._warnings)

    def meets_confidence(self, threshold=_IQR_WARN_THRESHOLD):
        return self.iqr / self.median < threshold

    @property
    def title(self):
        return self.task_spec.title

    @property
    def env(self):
        return "Unspecified env" if self.task_spec.env is None else self.task_spec.env

    @property
    def as_row_name(self):
        return self.sub_label or self.stmt or "[Unknown]"

    def _lazy_init(self):
        if self.raw_times and not self._sorted_times:
            self._sorted_times = tuple(sorted(self.times))
            t = np.array(self._sorted_times, dtype=np.float64)
            self._median = float(np.quantile(t, 0.5))
            self._mean = float(t.mean())
            self._p25 = float(np.quantile(t, 0.25))
            self._p75 = float(np.quantile(t, 0.75))

            def warn(msg):
                rel = self.iqr / self.median * 100
                self._warnings += (f"  WARNING: Interquartile range is {rel:.1f}% of the median "
                                   f"measurement.\n           {msg}",)

            if not self.meets_confidence(_IQR_GROSS_WARN_THRESHOLD):
                warn("This suggests significant environmental influence.")
            elif not self.meets_confidence(_IQR_WARN_THRESHOLD):
                warn("This could indicate system fluctuation.")

    def __repr__(self):
        self._lazy_init()
        n = len(self._sorted_times)
        unit, scale = select_unit(self._median)
        from ..dtypes import display_name

        where = "torch.utils.benchmark.utils.common" if display_name == "torch" else __name__
        lines = [f"<{where}.Measurement object at {id(self):#x}>", self.task_spec.summarize(),
                 f"  {'Median: ' if n > 1 else ''}{self._median / scale:.2f} {unit}"]
        if n >= 4:
            lines.append(f"  IQR:    {self.iqr / scale:.2f} {unit} ({self._p25 / scale:.2f} to "
                         f"{self._p75 / scale:.2f})")
        threads = self.task_spec.num_threads
        lines.append(f"  {n} measurement{'s' if n > 1 else ''}, {self.number_per_run} runs "
                     f"{'per measurement,' if n > 1 else ','} {threads} "
                     f"thread{'s' if threads > 1 else ''}")
        lines += list(self._warnings)
        return "\n".join(line for line in "\n".join(lines).strip().splitlines())

    @staticmethod
    def merge(measurements):
        """Replicates of one task merged (times taken per run, number_per_run 1)."""
        groups = collections.defaultdict(list)
        for m in measurements:
            groups[m.task_spec].append(m)
        return [Measurement(number_per_run=1, raw_times=[t for m in g for t in m.times],
                            task_spec=spec) for spec, g in groups.items()]


class Timer:
    """torch.utils.benchmark.Timer for Python statements: stmt timed after setup, in globals,
    with cygrad's threads set to num_threads while it runs."""

    def __init__(self, stmt="pass", setup="pass", global_setup="", timer=timeit.default_timer,
                 globals=None, label=None, sub_label=None, description=None, env=None,
                 num_threads=1, language=Language.PYTHON):
        if language not in (Language.PYTHON, "py", "python"):
            raise NotImplementedError("cygrad's Timer runs Python statements only")
        if not isinstance(stmt, str):
            raise ValueError("Currently only a `str` stmt is supported.")
        self._globals = dict(globals or {})
        self._timer = timeit.Timer(stmt=textwrap.dedent(stmt).strip() or "pass",
                                   setup=textwrap.dedent(setup).strip() or "pass",
                                   timer=timer, globals=self._globals)
        self._task_spec = TaskSpec(stmt=stmt, setup=setup, global_setup=global_setup,
                                   label=label, sub_label=sub_label, description=description,
                                   env=env, num_threads=num_threads)

    def _timeit(self, number):
        return self._timer.timeit(number=max(int(number), 1))

    def timeit(self, number=1000000):
        """One measurement of `number` runs."""
        with set_torch_threads(self._task_spec.num_threads):
            self._timeit(number=max(int(number // 100), 2))  # warm up
            return Measurement(number_per_run=number, raw_times=[self._timeit(number)],
                               task_spec=self._task_spec)

    def repeat(self, repeat=-1, number=-1):
        raise NotImplementedError("See `Timer.blocked_autorange.`")

    def autorange(self, callback=None):
        raise NotImplementedError("See `Timer.blocked_autorange.`")

    def _estimate_block_size(self, min_run_time):
        with set_torch_threads(self._task_spec.num_threads):
            overhead = float(np.median([self._timer.timeit(0) for _ in range(5)]))
            number = 1
            while True:
                taken = self._timeit(number)
                if overhead / taken <= 1e-4 and taken >= min_run_time / 1000:
                    break
                if taken > min_run_time or number * 10 > 2147483647:
                    break
                number *= 10
        return number

    def _loop(self, number, stop, min_run_time, max_run_time=None, callback=None):
        total, can_stop, times = 0.0, False, []
        with set_torch_threads(self._task_spec.num_threads):
            while total < min_run_time or not can_stop:
                spent = self._timeit(number)
                times.append(spent)
                total += spent
                if callback:
                    callback(number, spent)
                can_stop = stop(times)
                if max_run_time and total > max_run_time:
                    break
        return times

    def blocked_autorange(self, callback=None, min_run_time=0.2):
        """Blocks of runs (enough that the timer's own cost is negligible) until min_run_time."""
        number = self._estimate_block_size(min_run_time)
        times = self._loop(number, lambda times: True, min_run_time, callback=callback)
        return Measurement(number_per_run=number, raw_times=times, task_spec=self._task_spec)

    def adaptive_autorange(self, threshold=0.1, *, min_run_time=0.01, max_run_time=10.0,
                           callback=None):
        """Blocks until the IQR is below threshold of the median (or max_run_time)."""
        number = self._estimate_block_size(min_run_time=0.05)

        def stop(times):
            if len(times) > 3:
                m = Measurement(number_per_run=number, raw_times=times,
                                task_spec=self._task_spec)
                return m.meets_confidence(threshold=threshold)
            return False

        times = self._loop(number, stop, min_run_time, max_run_time, callback=callback)
        return Measurement(number_per_run=number, raw_times=times, task_spec=self._task_spec)

    def collect_callgrind(self, *args, **kwargs):
        raise NotImplementedError("cygrad does not implement Timer.collect_callgrind")


class Compare:
    """A table of measurements: one per label, a column per description, a row per
    sub_label (or statement) and thread count; times in one unit."""

    def __init__(self, results):
        self._results = list(results)
        self._trim = self._highlight = self._colorize = False

    def trim_significant_figures(self):
        self._trim = True

    def highlight_warnings(self):
        self._highlight = True

    def colorize(self, rowwise=False):
        self._colorize = True

    def extend_results(self, results):
        self._results.extend(results)

    def __str__(self):
        return "\n".join(self._render())

    def print(self):
        print(str(self))

    def _render(self):
        out = []
        merged = Measurement.merge(self._results)
        for label in ordered_unique([m.label for m in merged]):
            group = [m for m in merged if m.label == label]
            unit, scale = select_unit(min(m.median for m in group))
            columns = ordered_unique([m.description for m in group])
            rows = ordered_unique([(m.num_threads, m.as_row_name) for m in group])
            cells = {(m.num_threads, m.as_row_name, m.description): m for m in group}
            name_w = max([len(r[1]) for r in rows] + [1]) + 2
            widths = [max(len(str(c or "")), 7) for c in columns]
            header = " " * name_w + "|" + "|".join(f"  {str(c or ''):>{w}}  "
                                                   for c, w in zip(columns, widths))
            title = f" {label or ''} "
            out.append("[" + title.center(len(header) - 2, "-") + "]")
            out.append(header)
            threads = None
            for n, row in rows:
                if n != threads:
                    threads = n
                    out.append(f"{n} threads: ".ljust(len(header), "-"))
                values = []
                for c, w in zip(columns, widths):
                    m = cells.get((n, row, c))
                    if m is None:
                        values.append(" " * (w + 4))
                        continue
                    v = m.median / scale
                    if self._trim:
                        v = trim_sigfig(v, m.significant_figures)
                    text = f"{v:.1f}" + (" (! " + f"{m.iqr / m.median * 100:.0f}%)"
                                         if self._highlight and m.has_warnings else "")
                    values.append(f"  {text:>{w}}  ")
                out.append(f"{row:>{name_w - 2}}  |" + "|".join(values))
            out.append("")
            out.append(f"Times are in {unit_to_english(unit)}s ({unit}).")
            out.append("")
        return out
