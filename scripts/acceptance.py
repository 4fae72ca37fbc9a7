"""The acceptance check of "PyTorch code runs unchanged": run PyTorch programs under torch and
under cygrad (`python -m cygrad run`, nothing edited) and compare what they print.

    python scripts/acceptance.py DIR [--steps 200] [--rtol 1e-3] [--keep]

DIR holds the programs (kept outside this repository: Karpathy's micrograd demo, makemore
notebooks and GPT lecture, pytorch/examples ...) as .py files or Jupyter notebooks (.ipynb), and
the data files they read. Each program is prepared the same way for both runs, so that it ends in
minutes and shows what a notebook would show:
  - a notebook's code cells run in order, each one's last expression printed as the notebook
    displays it, IPython lines (`%...`, `!...`) dropped; a cell that raises prints the type of
    its exception and the next cell runs (exploratory cells fail under torch too);
  - loop lengths and iteration counts written as literals of 1000 or more (`range(200000)`,
    `max_iters = 5000`) are cut to --steps;
  - matplotlib draws to a non-interactive backend.
Then every number printed is compared, line by line: integers exactly, floats to --rtol
(training in float32 drifts apart in the last bits over many steps; both runs start from the
same draws, since cygrad's generator is torch's). A line with different words is a difference.
Needs torch installed (the reference); prints one verdict line per program and exits 1 if any
program fails to run on cygrad or prints other numbers.
"""

import argparse
import ast
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|nan|inf")
BIG_LOOP = re.compile(r"\brange\((\d{4,})\)")
OBJECT = re.compile(r"<[^<>]*>")
ITERS = re.compile(r"^(\s*\w*(?:iters|steps|epochs)\w*\s*=\s*)(\d{4,})\b", re.M)


def cells_of(path):
    """The program's code as a list of cells (a .py file is one cell)."""
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text())
        return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    return [path.read_text()]


def displayed(cell):
    """The cell with IPython lines dropped and its last expression printed (as a notebook
    shows it); a cell Python cannot parse is returned as it is (the run will say so)."""
    lines = [ln for ln in cell.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    code = "\n".join(lines)
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = tree.body[-1]
        lines = code.splitlines()
        start, end = last.lineno - 1, last.end_lineno - 1
        expr = ast.get_source_segment(code, last)
        shown = (lines[start][:last.col_offset] + f"__show__(({expr}))"
                 + lines[end][last.end_col_offset:])
        code = "\n".join(lines[:start] + [shown] + lines[end + 1:])
    return code


PRELUDE = """\
import matplotlib
matplotlib.use("Agg")
import torch
torch.manual_seed(0)  # programs that draw without a seed: the same draws in both runs
def __show__(value):
    if value is not None:
        print(repr(value))
"""


def shorten(code, steps):
    code = BIG_LOOP.sub(lambda m: f"range({min(int(m.group(1)), steps)})", code)
    return ITERS.sub(lambda m: m.group(1) + str(min(int(m.group(2)), steps)), code)


def prepare(path, steps):
    """One script. A notebook's cells run one by one, as "Run All" with errors allowed: a cell
    that raises prints its exception's type (lecture notebooks have exploratory cells that fail
    under torch too; cygrad must fail them alike) and the next cell runs."""
    cells = [shorten(c, steps) for c in cells_of(path)]
    if path.suffix != ".ipynb":  # `from __future__` lines must stay first: above the prelude
        future = re.compile(r"^from __future__ import [^\n]*\n?", re.M)
        return "".join(future.findall(cells[0])) + PRELUDE + future.sub("", cells[0])
    runs = [f"__cell__({i}, {displayed(c)!r})" for i, c in enumerate(cells)]
    return PRELUDE + CELLS + "\n".join(runs) + "\n"


CELLS = """\
def __cell__(i, source):
    try:
        exec(compile(source, f"<cell {i}>", "exec"), globals())
    except Exception as e:
        print(f"[cell {i}] {type(e).__name__}")
"""


def run(argv, cwd, timeout):
    env = dict(os.environ, PYTHONHASHSEED="0", MPLBACKEND="Agg")
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env=env)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout} s"
    return done.returncode, done.stdout + ("" if done.returncode == 0 else done.stderr[-3000:])


def compare(ref, out, rtol):
    """(worst relative difference, first differing line or None)."""
    worst = 0.0
    ref_lines, out_lines = ref.splitlines(), out.splitlines()
    if len(ref_lines) != len(out_lines):
        return worst, f"{len(ref_lines)} lines printed by torch, {len(out_lines)} by cygrad"
    for a, b in zip(ref_lines, out_lines):
        if NUMBER.sub("#", a) != NUMBER.sub("#", b):
            return worst, f"torch:  {a}\ncygrad: {b}"
        for x, y in zip(NUMBER.findall(a), NUMBER.findall(b)):
            if x == y:
                continue
            fx, fy = float(x), float(y)
            if "." not in x + y and "e" not in (x + y).lower():
                return worst, f"integers differ: torch {x}, cygrad {y}\n  in: {a}"
            scale = max(abs(fx), abs(fy), 1e-3)
            diff = abs(fx - fy) / scale
            worst = max(worst, diff)
            if diff > rtol:
                return worst, f"torch:  {a}\ncygrad: {b}"
    return worst, None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=pathlib.Path)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rtol", type=float, default=1e-3)
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--keep", action="store_true", help="keep the prepared programs")
    parser.add_argument("programs", nargs="*", help="only these files of DIR")
    args = parser.parse_intermixed_args()
    names = args.programs or sorted(p.name for p in args.dir.iterdir()
                                    if p.suffix in (".py", ".ipynb"))
    work = pathlib.Path(tempfile.mkdtemp(prefix="cygrad-acceptance-"))
    for data in args.dir.iterdir():
        if data.suffix not in (".py", ".ipynb"):
            shutil.copy(data, work / data.name)
    failed = 0
    for name in names:
        prog = work / (pathlib.Path(name).stem + "_run.py")
        prog.write_text(prepare(args.dir / name, args.steps))
        code, ref = run([sys.executable, prog.name], work, args.timeout)
        if code != 0:
            print(f"{name}: skipped, it fails under torch itself: {ref.strip()[-300:]}")
            continue
        code, out = run([sys.executable, "-m", "cygrad", "run", prog.name], work, args.timeout)
        if code != 0:
            failed += 1
            print(f"{name}: FAILS on cygrad:\n{out.strip()[-1500:]}")
            continue
        # cygrad's reprs name cygrad (cygrad.Size, cygrad.int64) where torch's name torch;
        # object reprs (<... at 0x...>) differ between any two runs
        out = re.sub(r"\bcygrad\b", "torch", out)
        worst, where = compare(OBJECT.sub("<object>", ref), OBJECT.sub("<object>", out),
                               args.rtol)
        if where:
            failed += 1
            print(f"{name}: prints other results:\n{where}")
        else:
            print(f"{name}: same output as torch ({len(ref.splitlines())} lines, largest "
                  f"relative difference {worst:.1e})")
    if not args.keep:
        shutil.rmtree(work)
    else:
        print(f"prepared programs kept in {work}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
