"""The extension list. Everything else lives in pyproject.toml.

Environment switches:
  CYGRAD_BOUNDSCHECK=1  turn bounds/wraparound/initialisation checks back on (debugging)
  CYGRAD_ANNOTATE=1     write `cython --annotate` HTML next to each .pyx (kernel work)
  CYGRAD_PORTABLE=1     no -march=native: a build that runs on any x86-64 / aarch64
  CYGRAD_KERNELS=a,b    build only these kernel families (kernel development)
"""

import glob
import os
import sys
import tempfile

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _on(name):
    return os.environ.get(name, "0").lower() not in ("", "0", "false", "no")


checks = _on("CYGRAD_BOUNDSCHECK")
directives = {
    "language_level": 3,
    "boundscheck": checks,
    "wraparound": checks,
    "initializedcheck": checks,
    "cdivision": True,
    "embedsignature": True,
}

# -ffp-contract=fast is pinned (never -ffast-math): FMA contraction is decided at compile
# time, once per expression, so every output element still runs the same operations.
base_flags = ["-O3", "-fopenmp", "-ffp-contract=fast", "-fno-math-errno"]
native_flags = [] if _on("CYGRAD_PORTABLE") else ["-march=native", "-mprefer-vector-width=512"]
# Families whose arithmetic must round exactly as numpy's does (csrc/optim.pyx says why).
family_flags = {"optim": ["-ffp-contract=off"]}


class BuildExt(build_ext):
    """Adds each machine-specific flag only if this compiler accepts it."""

    def _accepts(self, flag):
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "probe.c")
            with open(src, "w") as f:
                f.write("int main(void) { return 0; }\n")
            try:
                self.compiler.compile([src], output_dir=tmp, extra_postargs=[flag])
                return True
            except Exception:
                return False

    def build_extensions(self):
        flags = base_flags + [f for f in native_flags if self._accepts(f)]
        for ext in self.extensions:
            ext.extra_compile_args = flags + family_flags.get(ext.name.rsplit(".", 1)[1], [])
            ext.extra_link_args = ["-fopenmp"]
        super().build_extensions()


if sys.platform == "win32":  # MSVC spells these differently; keep the build boring there
    base_flags, native_flags = ["/O2", "/openmp"], []

extensions = [
    Extension(f"cygrad._C.{os.path.splitext(os.path.basename(pyx))[0]}", [pyx],
              include_dirs=["csrc"])
    for pyx in sorted(glob.glob("csrc/*.pyx"))
]
if os.environ.get("CYGRAD_KERNELS"):
    wanted = set(os.environ["CYGRAD_KERNELS"].split(","))
    extensions = [e for e in extensions if e.name.rsplit(".", 1)[1] in wanted]

setup(
    ext_modules=cythonize(
        extensions, compiler_directives=directives, annotate=_on("CYGRAD_ANNOTATE")
    ),
    cmdclass={"build_ext": BuildExt},
)
