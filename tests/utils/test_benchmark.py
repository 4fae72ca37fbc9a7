"""cygrad.utils.benchmark (torch.utils.benchmark): Timer's measurements, their statistics and
summary, Compare's table; threads set while a statement runs."""

import numpy as np
import pytest

import cygrad
from cygrad.utils.benchmark import (
    Compare,
    Measurement,
    TaskSpec,
    Timer,
    select_unit,
    trim_sigfig,
)


def test_statistics_and_summary_as_torchs():
    spec = TaskSpec(stmt="x * 2", setup="pass", label="mul", sub_label="100",
                    description="float32")
    raw = [1.0e-3, 1.2e-3, 1.1e-3, 3.0e-3, 1.05e-3]
    m = Measurement(number_per_run=100, raw_times=raw, task_spec=spec)
    t = np.array(sorted(raw)) / 100
    assert m.median == pytest.approx(np.quantile(t, 0.5), rel=1e-15)
    assert m.iqr == pytest.approx(np.quantile(t, 0.75) - np.quantile(t, 0.25), rel=1e-15)
    assert m.label == "mul" and m.title == "mul: 100"
    p25, p50, p75 = (np.quantile(t, q) * 1e6 for q in (0.25, 0.5, 0.75))
    lines = repr(m).splitlines()
    assert lines[1:5] == ["mul: 100", "float32", f"  Median: {p50:.2f} us",
                          f"  IQR:    {p75 - p25:.2f} us ({p25:.2f} to {p75:.2f})"]
    assert lines[5] == "  5 measurements, 100 runs per measurement, 1 thread"
    assert m.has_warnings is True  # IQR 14% of the median
    assert lines[6] == f"  WARNING: Interquartile range is {(p75 - p25) / p50 * 100:.1f}% of the " \
                       "median measurement."
    try:
        from torch.utils.benchmark import Measurement as Theirs
        from torch.utils.benchmark.utils.common import TaskSpec as TheirSpec
    except ImportError:
        return
    theirs = Theirs(100, raw, TheirSpec("x * 2", "pass", label="mul", sub_label="100",
                                        description="float32"))
    assert repr(theirs).splitlines()[1:] == lines[1:]
    assert theirs.significant_figures == m.significant_figures
    assert select_unit(3e-6) == ("us", 1e-6) and trim_sigfig(3.14159, 2) == 3.1


def test_timer_sets_threads_while_it_runs_and_compare_tabulates():
    seen = []
    t = Timer("seen.append(cygrad.get_num_threads())", globals={"seen": seen, "cygrad": cygrad},
              label="threads", description="d", num_threads=1)
    before = cygrad.get_num_threads()
    m = t.timeit(5)
    assert set(seen) == {1} and cygrad.get_num_threads() == before
    assert m.number_per_run == 5 and len(m.times) == 1
    b = t.blocked_autorange(min_run_time=0.01)
    assert sum(b.raw_times) >= 0.01 and b.number_per_run >= 1
    text = str(Compare([m, b]))
    assert text.splitlines()[0].startswith("[") and "threads" in text.splitlines()[0]
    assert "Times are in" in text
    with pytest.raises(NotImplementedError):
        t.repeat()
