"""The symmetry demos: each runs quickly with small options and every verdict holds on
the exact backend, in both dtypes; the command line runs them, writes figures, lists them and
rejects bad arguments with one line and no traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cygrad
from cygrad import demos
from cygrad.demos import Options

# name -> (steps, width): small, but enough for every observed verdict to be measured
SMALL = {
    "constant-init": (5, 8),
    "zero-init": (5, 4),
    "wavefront": (8, 16),
    "outgoing": (5, 5),
    "filters": (20, 3),
    "breakers": (5, 9),
    "tying": (3, 2),
    "spirals": (None, 16),  # "random init fits" needs the default number of steps
    "heads": (4, 3),
    "norms": (3, 5),
    "nearly": (3, 8),
}

needs_cython = pytest.mark.skipif("cython" not in cygrad.backend.available(),
                                  reason="the cython backend is not built")


def test_every_scenario_has_a_small_configuration():
    assert set(SMALL) == set(demos.SCENARIOS)


@needs_cython
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(SMALL))
def test_demo_verdicts_hold_on_the_exact_backend(name, dtype):
    steps, width = SMALL[name]
    result = demos.run(name, Options(steps=steps, width=width, dtype=dtype))
    assert result.verdicts, "a demo must compute at least one verdict"
    assert result.ok, "\n".join(v.render() for v in result.verdicts if not v.holds)
    text = result.render()
    assert text.startswith(demos.SCENARIOS[name][0]) and "Verdict:" in text
    assert cygrad.backend.current() == "cython"  # demos.run switched back


@pytest.mark.parametrize("name", ["zero-init", "outgoing", "tying"])
def test_demo_runs_on_the_numpy_backend(name):
    """On numpy an exact verdict may honestly say NO; the demo must still run and report."""
    steps, width = SMALL[name]
    result = demos.run(name, Options(backend="numpy", steps=steps, width=width))
    assert result.verdicts


def cli(*args, timeout=120):
    src = str(Path(cygrad.__file__).resolve().parents[1])  # the cygrad these tests import
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "cygrad", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


@needs_cython
@pytest.mark.parametrize("name", list(SMALL))
def test_cli_runs_each_demo(name):
    out = cli("demo", name, "--steps", "3", "--width", str(SMALL[name][1]))
    assert out.returncode == 0, out.stderr
    assert "Verdict:" in out.stdout and "Traceback" not in out.stderr


@needs_cython
@pytest.mark.parametrize("name", ["wavefront", "filters"])
def test_cli_plot_writes_png_files(name, tmp_path):
    pytest.importorskip("matplotlib")
    out = cli("demo", name, "--steps", "6", "--width", str(SMALL[name][1]),
              "--plot", str(tmp_path))
    assert out.returncode == 0, out.stderr
    figures = [line.split("figure: ", 1)[1] for line in out.stdout.splitlines()
               if line.startswith("figure: ")]
    assert figures
    for path in figures:
        assert path.endswith(".png") and Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(tmp_path.rglob("*.png"))


@pytest.mark.parametrize("args", [["demo", "no-such-scenario"],
                                  ["demo", "spirals", "--width", "0"],
                                  ["demo", "spirals", "--steps", "-1"],
                                  ["demo", "spirals", "--dtype", "float16"]])
def test_cli_rejects_bad_arguments_in_one_line(args):
    out = cli(*args, timeout=60)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0], out.stderr
    assert out.stdout == ""


def test_cli_lists_every_scenario():
    out = cli("demo", "--list", timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == len(demos.SCENARIOS)
    for name, (scenario, _, _) in demos.SCENARIOS.items():
        assert any(line.startswith(scenario) and name in line for line in lines)


@needs_cython
def test_breakers_has_a_pytorch_part_with_torch():
    pytest.importorskip("torch")
    result = demos.run("breakers", Options(steps=3, width=9))
    headings = [h for h, _ in result.sections]
    assert any(h.startswith("PyTorch ") for h in headings)
    assert "torch: first differ" in result.render()
