"""Regenerate the demo outputs quoted in docs/symmetry.md (and its figures).

Every quoted output sits between a marker naming the command and an end marker:

    <!-- cygrad demo constant-init --steps 10 -->
    ```text
    ...what `python -m cygrad demo constant-init --steps 10` prints...
    ```
    <!-- end -->

Run `python docs/regenerate.py` after changing a demo; tests/test_docs.py fails when the
document and the demos disagree (timings aside).
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
FIGURES = [("spirals", []), ("wavefront", []), ("filters", []), ("breakers", [])]
TIMING = re.compile(r"^\(ran in [0-9.]+ s\)$", re.M)


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


def regenerate(path=DOC):
    text = path.read_text()

    def fresh(match):
        output = run_cli(shlex.split(match["args"]))
        print(f"regenerated: cygrad {match['args']}", file=sys.stderr)
        return f"{match[1]}```text\n{output}```\n{match[4]}"

    path.write_text(BLOCK.sub(fresh, text))
    for scenario, extra in FIGURES:
        run_cli(["demo", scenario, *extra, "--plot", str(path.parent / "figures")])
        print(f"figures of {scenario}: docs/figures/", file=sys.stderr)


if __name__ == "__main__":
    regenerate()
