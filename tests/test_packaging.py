"""How cygrad is built and installed: the build record against the compiled kernels, the config
command, the loud fallback when the kernels are missing, and setup.py's refusal of a source
tree without kernel sources. (The sdist itself is checked by scripts/check_sdist.sh, the
cross-build training digest by scripts/digest.py: both run in CI.)"""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

import cygrad

ROOT = pathlib.Path(__file__).resolve().parents[1]
needs_cython = pytest.mark.skipif("cython" not in cygrad.backend.available(),
                                  reason="the cython backend is not built")


def run_python(code, **kwargs):
    src = str(pathlib.Path(cygrad.__file__).resolve().parents[1])  # the cygrad under test
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (src, os.environ.get("PYTHONPATH")) if p))
    return subprocess.run([sys.executable, *code], capture_output=True, text=True, timeout=120,
                          env=env, **kwargs)


def test_show_config_returns_and_prints_the_same_record(capsys):
    config = cygrad.show_config(mode="dicts")
    assert config["cygrad"]["version"] == cygrad.__version__
    assert config["backends"]["available"] == list(cygrad.backend.available())
    assert config["numpy"]["version"] == __import__("numpy").__version__
    assert set(config["numpy"]["blas"]) == {"name", "version", "core", "threads", "source"}
    assert cygrad.show_config() is None
    text = capsys.readouterr().out
    assert f"cygrad {cygrad.__version__}" in text and "BLAS" in text
    if config["build"] is not None:
        assert "FMA:" in text and config["build"]["compiler"] in text
    with pytest.raises(ValueError, match="mode"):
        cygrad.show_config(mode="yaml")


@needs_cython
def test_build_record_describes_the_compiled_kernels():
    """The record setup.py wrote agrees with what the compiled gemm says of itself."""
    from cygrad._C import gemm

    build = cygrad.show_config(mode="dicts")["build"]
    if build is None:
        pytest.skip("no build record: the kernels were built by an older setup.py")
    assert build["fma"] is gemm.fused_multiply_add
    assert build["vector_bits"] in (128, 256, 512)
    assert build["openmp"] == build["openmp_note"].startswith("on")
    assert build["level"] in ("default", "native", "baseline")
    if not build["debug_info"]:
        assert "-g0" in build["compile_args"] and "-g" not in build["compile_args"]


def test_config_command_prints_the_build():
    out = run_python(["-m", "cygrad", "config"])
    assert out.returncode == 0, out.stderr
    assert "numpy" in out.stdout and "BLAS" in out.stdout
    out = run_python(["-m", "cygrad", "config", "--json"])
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["cygrad"]["version"] == cygrad.__version__


BLOCK_KERNELS = """
import importlib.abc, sys, warnings

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "cygrad._C.conv":
            raise ImportError("blocked by the test", name=name)

sys.meta_path.insert(0, Block())
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import cygrad
print(cygrad.backend.available())
for w in caught:
    print(w.category.__name__, w.message)
"""


def test_missing_kernels_warn_loudly_naming_the_module():
    out = run_python(["-c", BLOCK_KERNELS])
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "('numpy',)"
    warned = [line for line in lines[1:] if line.startswith("RuntimeWarning")]
    assert len(warned) == 1, out.stdout
    assert "cygrad._C.conv" in warned[0] and "blocked by the test" in warned[0]
    assert "numpy backend" in warned[0]


@pytest.mark.skipif(not (ROOT / "setup.py").exists(), reason="no setup.py beside the tests")
def test_setup_refuses_a_tree_without_kernel_sources(tmp_path):
    """An incomplete source tree (an sdist without csrc/) stops with a message; it must never
    install a cygrad without its kernels."""
    pytest.importorskip("setuptools")
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "csrc").mkdir()
    out = subprocess.run([sys.executable, "setup.py", "--name"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "no kernel sources (csrc/*.pyx)" in out.stderr
