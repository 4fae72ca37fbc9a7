"""The tutorial quotes real output: every demo block in docs/symmetry.md must match what the
command prints now (timings aside). Regenerate with `python docs/regenerate.py`."""

import importlib.util
import pathlib

import pytest

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"
spec = importlib.util.spec_from_file_location("regenerate", DOCS / "regenerate.py")
regenerate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(regenerate)

BLOCKS = regenerate.blocks(regenerate.DOC.read_text())


def test_the_tutorial_quotes_every_scenario():
    from cygrad.demos import SCENARIOS

    quoted = {args[1] for args in (b[0] for b in BLOCKS) if args[0] == "demo" and len(args) > 1}
    assert set(SCENARIOS) <= quoted, f"not quoted: {set(SCENARIOS) - quoted}"


def _fma_build():
    try:
        from cygrad._C import gemm
    except ImportError:
        return False
    return gemm.fused_multiply_add


def _blas_here():
    from cygrad._config import blas

    info = blas()
    return info["name"], info["core"]


QUOTED_BLAS = regenerate.quoted_blas(regenerate.DOC.read_text())


def test_the_tutorial_names_the_blas_it_quotes():
    name, core = QUOTED_BLAS
    assert name and core and core != "None"


# The quoted numbers come from a build with fused multiply-adds (every default build on x86-64
# and aarch64). A build without FMA (CYGRAD_PORTABLE=1 on x86-64) computes every chain with
# separate roundings: the same exact outcomes (tests/symmetry), other last digits.
@pytest.mark.skipif(not _fma_build(), reason="the tutorial quotes an FMA build's numbers; this "
                    "build rounds each product and each sum")
@pytest.mark.parametrize("args, quoted", BLOCKS, ids=[" ".join(b[0]) for b in BLOCKS])
def test_quoted_output_matches_the_demo(args, quoted):
    if regenerate.uses_blas(args) and _blas_here() != QUOTED_BLAS:
        name, core = _blas_here()
        pytest.skip(f"the tutorial quotes numpy's BLAS {QUOTED_BLAS[0]} with kernel "
                    f"{QUOTED_BLAS[1]}, whose rounding decides where tied units split; numpy's "
                    f"BLAS here is {name} with kernel "
                    f"{core or 'unknown (pip install threadpoolctl)'}")
    if regenerate.uses_torch(args):
        pytest.importorskip("torch", reason="the tutorial quotes this demo with its PyTorch part")
    now = regenerate.run_cli(list(args))
    if regenerate.amplifies(args):  # measured growth of 1-ulp differences: words, not digits
        now, quoted = (regenerate.without_measured_digits(t) for t in (now, quoted))
    assert regenerate.without_timings(now) == regenerate.without_timings(quoted), (
        f"docs/symmetry.md is out of date for `cygrad {' '.join(args)}`: "
        "run python docs/regenerate.py")
