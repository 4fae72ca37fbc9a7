"""Regenerate the demo outputs quoted in docs/symmetry.md (and its figures).

Every quoted output sits between a marker naming the command and an end marker:

    <!-- cygrad demo constant-init --steps 10 -->
    ```text
    ...what `python -m cygrad demo constant-init --steps 10` prints...
    ```
    <!-- end -->

Run `python docs/regenerate.py` after changing a demo; tests/test_docs.py fails when the
document and the demos disagree (timings aside).

Outputs of the numpy backend (S6, `breakers`) show where numpy's BLAS rounds tied units apart,
which depends on the BLAS kernel chosen for the CPU (OpenBLAS's Haswell, SkylakeX, ...). The
document records the BLAS it quotes in one line (BLAS_LINE), rewritten here on each run;
tests/test_docs.py checks those blocks only under that BLAS and skips them elsewhere.
"""

import contextlib
import io
import pathlib
import re
import shlex
import sys

DOC = pathlib.Path(__file__).with_name("symmetry.md")
BLOCK = re.compile(r"(<!-- cygrad (?P<args>.+?) -->\n)```text\n(?P<output>.*?)```\n(<!-- end -->)",
                   re.S)
# Figures the tutorial shows: (scenario, extra arguments). Each demo writes its own folder
# under docs/figures/.
FIGURES = [("spirals", []), ("wavefront", []), ("filters", []), ("breakers", []), ("heads", []),
           ("nearly", [])]
TIMING = re.compile(r"^\(ran in [0-9.]+ s\)$", re.M)
# The line naming the BLAS of the quoted numpy-backend outputs, and what it records.
BLAS_LINE = re.compile(r"^\*numpy's BLAS in the quoted numpy-backend output: (?P<name>\S+) "
                       r"(?P<version>\S+), kernel (?P<core>[^.]+)\.\*$", re.M)
# Demos that run the numpy backend themselves, whatever --backend says.
BLAS_SCENARIOS = ("breakers", "heads")
# Demos whose output has a PyTorch part when torch is installed (the quoted output has it).
TORCH_SCENARIOS = ("breakers",)


def run_cli(args):
    """What `python -m cygrad <args>` prints."""
    from cygrad.__main__ import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(args)
    if status:
        raise RuntimeError(f"cygrad {' '.join(args)} exited with {status}")
    return out.getvalue()


def blocks(text):
    """(args, quoted output) for every demo block of the document."""
    return [(shlex.split(m["args"]), m["output"]) for m in BLOCK.finditer(text)]


def without_timings(output):
    return TIMING.sub("(ran in ... s)", output)


def uses_blas(args):
    """True when `cygrad <args>` prints numpy-backend results (BLAS-dependent bits)."""
    pairs = [" ".join(args[i:i + 2]) for i in range(len(args))]
    on_numpy = "--backend numpy" in pairs or "--backend=numpy" in args
    return on_numpy or (len(args) > 1 and args[0] == "demo" and args[1] in BLAS_SCENARIOS)


# Scenarios whose tables measure how a difference of 1 ulp grows over training (S11): growth of
# ~1.3 a step turns the last-bit differences between builds (gcc and clang contract a few
# multiply-adds of the attention kernels differently) into different leading digits. Their
# exact claims are the Verdict lines; tests/test_docs.py compares the table rows' words only.
AMPLIFYING_SCENARIOS = {"nearly"}
_MEASURED_ROW = re.compile(r"^( +\S.*\b(grows|shrinks|stays 0))$", re.M)
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:e[-+]?\d+)?")


def amplifies(args):
    """True when `cygrad <args>` prints measured growths of 1-ulp differences."""
    return len(args) > 1 and args[0] == "demo" and args[1] in AMPLIFYING_SCENARIOS


def without_measured_digits(output):
    """The output with every number of its measured table rows replaced by '#'."""
    return _MEASURED_ROW.sub(lambda m: _NUMBER.sub("#", m.group(1)), output)


def uses_torch(args):
    """True when `cygrad <args>` prints a part that only a process with torch prints."""
    return len(args) > 1 and args[0] == "demo" and args[1] in TORCH_SCENARIOS


def quoted_blas(text):
    """(name, core) of the BLAS the document's numpy-backend outputs came from."""
    match = BLAS_LINE.search(text)
    if match is None:
        raise ValueError("docs/symmetry.md lacks its BLAS line (see docs/regenerate.py)")
    return match["name"], match["core"]


def blas_line():
    """The BLAS line for numpy's BLAS in this process."""
    from cygrad._config import blas

    info = blas()
    if info["core"] is None:
        raise RuntimeError("cannot tell which BLAS kernel numpy runs here (pip install "
                           "threadpoolctl), so the quoted numpy outputs could not be labelled")
    return (f"*numpy's BLAS in the quoted numpy-backend output: {info['name']} "
            f"{info['version']}, kernel {info['core']}.*")


def regenerate(path=DOC):
    text = path.read_text()

    def fresh(match):
        output = run_cli(shlex.split(match["args"]))
        print(f"regenerated: cygrad {match['args']}", file=sys.stderr)
        return f"{match[1]}```text\n{output}```\n{match[4]}"

    quoted_blas(text)  # the line must be there to be rewritten
    line = blas_line()
    text = BLAS_LINE.sub(lambda _: line, text)
    path.write_text(BLOCK.sub(fresh, text))
    for scenario, extra in FIGURES:
        run_cli(["demo", scenario, *extra, "--plot", str(path.parent / "figures")])
        print(f"figures of {scenario}: docs/figures/", file=sys.stderr)


if __name__ == "__main__":
    regenerate()
