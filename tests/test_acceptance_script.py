"""scripts/acceptance.py's preparation of a program (the runs themselves need torch and the
programs: they are not part of the tests)."""

import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("acceptance", ROOT / "scripts" / "acceptance.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_script_keeps_its_future_imports_first_and_loops_are_cut(tmp_path):
    program = tmp_path / "p.py"
    program.write_text('"""doc"""\nfrom __future__ import print_function\nimport torch\n'
                       "for i in range(50000):\n    pass\nmax_iters = 5000\nprint(i, max_iters)\n")
    code = _script().prepare(program, 200)
    compile(code, "p_run.py", "exec")  # a SyntaxError before: the prelude came first
    assert code.startswith("from __future__ import print_function\n")
    assert code.count("from __future__") == 1
    assert "range(200)" in code and "max_iters = 200" in code
