"""How cygrad's kernels are compiled: the extension list and its flags (metadata: pyproject.toml).

    pip install .                          the portable build below, with OpenMP if it can
    CYGRAD_NATIVE=1 pip install .          tuned to this CPU: for local use, never to distribute
    pip install --no-build-isolation .     offline: the setuptools and Cython already installed
    pip install -v .                       ...and show this build's choices and warnings

Build level (which instructions the kernels may use; recorded as "default", "native", "baseline"):
  default            portable: on x86-64 -march=x86-64-v3 (AVX2 + FMA: Intel Haswell, 2013, AMD
                     Excavator and Zen, and later); on aarch64 the compiler's default, ARMv8-A,
                     which has FMA. Runs on every such CPU and gives the bits of every other FMA
                     build, native ones included: each multiply-add link of a chain is one fused
                     operation, whatever the vector width (csrc/README.md).
  CYGRAD_NATIVE=1    -march=native (512-bit vectors where the CPU has AVX-512): this CPU only; a
                     wheel built so crashes (SIGILL) on older ones. The same bits as the default.
  CYGRAD_PORTABLE=1  baseline: the compiler's default target; on x86-64, SSE2 without FMA, for
                     CPUs older than x86-64-v3. Each product and sum rounds apart: the same exact
                     outcomes (tied units stay tied), other last digits than FMA builds.
A default build on an x86-64 CPU without AVX2/FMA falls back to the baseline, with a warning,
rather than make kernels the CPU it runs on cannot execute.

OpenMP is probed (a parallel region must compile and link), as scikit-learn does: on macOS
Homebrew's libomp first (-Xpreprocessor -fopenmp -lomp; `brew install libomp`), then -fopenmp.
Without it the kernels run on one thread, with the same bits, and the build warns.
CYGRAD_OPENMP=0 builds without it on purpose.

Other switches:
  CYGRAD_BOUNDSCHECK=1  a debugging build: bounds/wraparound/initialisation checks back on, and
                        debug info (-g) kept; release builds strip it (-g0)
  CYGRAD_ANNOTATE=1     write `cython --annotate` HTML next to each .pyx (kernel work)
  CYGRAD_KERNELS=a,b    build only these kernel families (kernel development)
  CYGRAD_BUILD_JOBS=n   compile n extensions at a time (default: one per CPU)

The choices made are written to cygrad/_C/build_config.json; `python -m cygrad config` (or
`cygrad.show_config()`) prints them.
"""

import glob
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import sysconfig
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _on(name):
    return os.environ.get(name, "0").lower() not in ("", "0", "false", "no")


def _warn(message):
    print(f"\n*** cygrad build warning: {message}\n", file=sys.stderr, flush=True)


debug = _on("CYGRAD_BOUNDSCHECK")
directives = {
    "language_level": 3,
    "boundscheck": debug,
    "wraparound": debug,
    "initializedcheck": debug,
    "cdivision": True,
    "embedsignature": True,
}

# -ffp-contract=fast is pinned (never -ffast-math): FMA contraction is decided at compile time,
# once per expression, so every output element still runs the same operations.
# -fno-trapping-math: no code reads the floating-point exception flags, and with them assumed
# unobservable GCC may evaluate both sides of a `c ? x : y` on floats and select. Without it
# GCC keeps every loop with such a select scalar on AVX2 (AVX-512's masked instructions hide
# the problem): vmath.h's exp, tanh and sigmoid ran 5-10x slower (measured on an AVX2 EPYC).
# It changes no value (clang's default is the same).
base_flags = ["-O3", "-ffp-contract=fast", "-fno-math-errno", "-fno-trapping-math",
              "-g" if debug else "-g0"]
# GCC's tuning for some CPUs (-mtune=znver1-3, as -march=native picks on AMD Zen) leaves
# loop-carried multiply-add chains unfused; pinned off, contraction depends on the instruction
# set alone, never on tuning. (Added where the compiler knows it: GCC.)
pinned_flags = ["--param=avoid-fma-max-bits=0"]
# Families whose arithmetic must round exactly as numpy's does (csrc/optim.pyx says why).
family_flags = {"optim": ["-ffp-contract=off"], "norms": ["-ffp-contract=off"]}

if _on("CYGRAD_NATIVE") and _on("CYGRAD_PORTABLE"):
    sys.exit("cygrad: CYGRAD_NATIVE=1 and CYGRAD_PORTABLE=1 ask for opposite builds; set one")
level = "native" if _on("CYGRAD_NATIVE") else "baseline" if _on("CYGRAD_PORTABLE") else "default"
# Each list: the first the compiler accepts wins ([] always does: the compiler's default).
level_choices = {
    "native": [["-march=native", "-mprefer-vector-width=512"], ["-march=native"], []],
    # x86-64 compilers take the first or the second; others (aarch64: ARMv8-A has FMA) neither
    "default": [["-march=x86-64-v3"], ["-march=haswell", "-mtune=generic"], []],
    "baseline": [[]],
}

EMPTY = "int main(void) { return 0; }\n"
# A CPU without the x86-64-v3 instructions cannot run a default build: check the one building.
CPU_PROBE = """
int main(void) {
    __builtin_cpu_init();
    return !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
             && __builtin_cpu_supports("bmi2"));
}
"""
OPENMP_PROBE = """
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+: n)
    n += 1;
    return n < 1 || omp_get_max_threads() < 1;
}
"""
# What the gemm header makes of the final flags (csrc/gemm_microkernel.h decides both).
TARGET_PROBE = """
#include "gemm_microkernel.h"
cygrad_fma = CG_HAS_FMA;
cygrad_vector_bytes = CG_VBYTES;
"""


CONFIG = ("cygrad", "_C", "build_config.json")


def openmp_candidates():
    """(compile flags, link flags, include dirs, library dirs) to try, best first."""
    candidates = []
    if sys.platform == "darwin":  # Apple clang has no -fopenmp; Homebrew's libomp serves it
        for prefix in ("/opt/homebrew/opt/libomp", "/usr/local/opt/libomp"):
            if os.path.isdir(prefix):
                candidates.append((["-Xpreprocessor", "-fopenmp"], ["-lomp"],
                                   [f"{prefix}/include"], [f"{prefix}/lib"]))
        candidates.append((["-Xpreprocessor", "-fopenmp"], ["-lomp"], [], []))
    candidates.append((["-fopenmp"], ["-fopenmp"], [], []))
    return candidates


class BuildExt(build_ext):
    """Cythonizes, probes the compiler (build level, OpenMP), sets every extension's flags and
    records the choices in cygrad/_C/build_config.json; compiles the extensions in parallel."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:
            self.parallel = int(os.environ.get("CYGRAD_BUILD_JOBS") or os.cpu_count() or 1)

    def run(self):
        from Cython.Build import cythonize

        # Cython's processes are forked; elsewhere (spawn) one process does it all.
        fork = multiprocessing.get_all_start_methods()[0] == "fork"
        # Checked (debugging) builds keep their C apart: cythonize cannot tell the directives
        # that made an existing .c.
        generated = cythonize(
            self.extensions, compiler_directives=directives, annotate=_on("CYGRAD_ANNOTATE"),
            nthreads=self.parallel if fork and self.parallel > 1 else 0, force=self.force,
            build_dir=os.path.join("build", "cython-checked") if debug else None)
        c_sources = {ext.name: ext.sources for ext in generated}
        for ext in self.extensions:  # keep setuptools' own bookkeeping on these objects
            ext.sources = c_sources[ext.name]
        super().run()

    # --- probes: each compiles (and maybe links and runs) a small program, quietly
    def _try(self, code, compile_args=(), link_args=None, run=False, include_dirs=(),
             library_dirs=()):
        """True if `code` compiles (and links, when link_args is given; and exits 0, when run)."""
        with tempfile.TemporaryDirectory() as tmp, _silenced():
            src = os.path.join(tmp, "probe.c")
            with open(src, "w") as f:
                f.write(code)
            try:
                objects = self.compiler.compile([src], output_dir=tmp,
                                                include_dirs=list(include_dirs),
                                                extra_postargs=list(compile_args))
                if link_args is None:
                    return True
                exe = os.path.join(tmp, "probe")
                self.compiler.link_executable(objects, exe, library_dirs=list(library_dirs),
                                              extra_postargs=list(link_args))
            except Exception:
                return False
            if not run:
                return True
            try:
                return subprocess.run([exe], timeout=60).returncode == 0
            except (OSError, subprocess.SubprocessError):
                return None  # cannot run here (cross-compiling): no verdict

    def _level_flags(self):
        """The build level's flags (the first variant this compiler accepts)."""
        flags = next(f for f in level_choices[self.level]
                     if all(self._try(EMPTY, [flag]) for flag in f))
        if self.level == "default" and flags and self._try(CPU_PROBE, [], [], run=True) is False:
            _warn("this CPU lacks AVX2/FMA (x86-64-v3), so the kernels are built for the "
                  "x86-64 baseline (as CYGRAD_PORTABLE=1): they run here, with other last "
                  "digits than FMA builds (README, 'Building').")
            self.level, flags = "baseline", []
        return flags

    def _openmp(self):
        """(compile flags, link flags, include dirs, library dirs) or None, and a note."""
        if os.environ.get("CYGRAD_OPENMP", "1").lower() in ("0", "false", "no"):
            return None, "off: CYGRAD_OPENMP=0"
        for candidate in openmp_candidates():
            compile_args, link_args, incs, libs = candidate
            if self._try(OPENMP_PROBE, compile_args, link_args, include_dirs=incs,
                         library_dirs=libs):
                return candidate, f"on ({' '.join(compile_args)}; link {' '.join(link_args)})"
        cc = os.path.basename(self.compiler.compiler_so[0])
        _warn(f"the C compiler ({cc}) cannot compile and link OpenMP code, so cygrad's kernels "
              "are built without threads: the same bits, on one core. For threads use gcc, or "
              "clang with libomp (Debian: apt install libomp-dev; macOS: brew install libomp).")
        return None, "off: the compiler has no usable OpenMP (probe failed)"

    def _target(self, flags):
        """(fma, vector bits) as csrc/gemm_microkernel.h sees them under these flags."""
        with tempfile.TemporaryDirectory() as tmp, _silenced():
            src, out = os.path.join(tmp, "target.c"), os.path.join(tmp, "target.i")
            with open(src, "w") as f:
                f.write(TARGET_PROBE)
            try:
                self.compiler.preprocess(src, out, include_dirs=[os.path.abspath("csrc")],
                                         extra_postargs=flags)
                with open(out) as f:
                    text = f.read()
            except Exception:
                return None, None
        values = dict(line.rstrip(";").split(" = ") for line in text.splitlines()
                      if line.startswith("cygrad_"))
        try:
            return values["cygrad_fma"] == "1", 8 * int(values["cygrad_vector_bytes"])
        except (KeyError, ValueError):
            return None, None

    def build_extensions(self):
        self.level = level
        if self.compiler.compiler_type == "msvc":  # keep the build boring there
            level_flags, flags, link, omp, omp_note = [], ["/O2", "/openmp"], [], None, "on"
        else:
            level_flags = self._level_flags()
            level_flags += [f for f in pinned_flags if self._try(EMPTY, [f, "-Werror"])]
            omp, omp_note = self._openmp()
            flags = base_flags + level_flags + (omp[0] if omp else [])
            link = omp[1] if omp else []
        for ext in self.extensions:
            ext.extra_compile_args = flags + family_flags.get(ext.name.rsplit(".", 1)[1], [])
            ext.extra_link_args = link
            if omp:
                ext.include_dirs += omp[2]
                ext.library_dirs += omp[3]
        fma, vector_bits = self._target(base_flags + level_flags)
        config = {
            "compiler": _compiler_version(self.compiler),
            "compiler_command": " ".join(getattr(self.compiler, "compiler_so", None) or []),
            "level": self.level, "level_flags": level_flags,
            "compile_args": flags, "family_args": family_flags, "link_args": link,
            "openmp": omp_note.startswith("on"), "openmp_note": omp_note,
            "fma": fma, "vector_bits": vector_bits, "debug_info": debug, "boundscheck": debug,
            "kernels": sorted(ext.name.rsplit(".", 1)[1] for ext in self.extensions),
            "python": platform.python_version(), "platform": sysconfig.get_platform(),
            "cython": _cython_version(),
        }
        self._write_config(config)
        # Extensions left in build/ by an earlier build count as up to date when newer than
        # their sources, whatever flags or compiler made them: another choice rebuilds all.
        if config != self._previous_config:
            self.force = True
        super().build_extensions()

    def _write_config(self, config):
        """build_config.json beside the compiled kernels (copied into src/ by in-place builds)."""
        path = os.path.join(self.build_lib, *CONFIG)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            with open(path) as f:
                self._previous_config = json.load(f)
        except (OSError, ValueError):
            self._previous_config = None
        with open(path, "w") as f:
            json.dump(config, f, indent=1, sort_keys=True)
            f.write("\n")
        print(f"cygrad build: level {config['level']} {config['level_flags']}, OpenMP "
              f"{config['openmp_note']}, FMA {config['fma']}, {config['vector_bits']}-bit "
              f"vectors, {config['compiler']}", file=sys.stderr)

    def _config_in_place(self):
        package_dir = self.get_finalized_command("build_py").get_package_dir("cygrad._C")
        return os.path.join(package_dir, CONFIG[-1])

    def copy_extensions_to_source(self):
        super().copy_extensions_to_source()
        self.copy_file(os.path.join(self.build_lib, *CONFIG), self._config_in_place())

    def get_output_mapping(self):
        mapping = super().get_output_mapping()
        if self.inplace:
            mapping[os.path.join(self.build_lib, *CONFIG)] = self._config_in_place()
        return mapping

    def get_outputs(self):
        if self.inplace:
            return list(self.get_output_mapping())
        return super().get_outputs() + [os.path.join(self.build_lib, *CONFIG)]


class _silenced:
    """Send the compiler's output (file descriptors 1 and 2) to nowhere while probing."""

    def __enter__(self):
        sys.stdout.flush(), sys.stderr.flush()
        self.saved = [os.dup(1), os.dup(2)]
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1), os.dup2(null, 2)
        os.close(null)

    def __exit__(self, *exc):
        for fd, saved in zip((1, 2), self.saved):
            os.dup2(saved, fd)
            os.close(saved)


def _compiler_version(compiler):
    command = getattr(compiler, "compiler_so", None)
    if not command:
        return compiler.compiler_type
    wrapped = os.path.basename(command[0]) == "ccache" and len(command) > 1
    exe = command[1] if wrapped else command[0]
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
        return out.stdout.splitlines()[0].strip()
    except (OSError, IndexError, subprocess.SubprocessError):
        return exe


def _cython_version():
    try:
        import Cython

        return Cython.__version__
    except ImportError:
        return None


def kernel_sources():
    """The kernel families' .pyx files; an incomplete source tree stops the build here."""
    sources = sorted(glob.glob(os.path.join("csrc", "*.pyx")))
    if not sources:
        sys.exit(f"cygrad: no kernel sources (csrc/*.pyx) in {os.path.abspath('.')}: this "
                 "source tree is incomplete, and installing it would give a cygrad without "
                 "its compiled kernels. Use a git checkout or an sdist made with MANIFEST.in "
                 "(python -m build --sdist).")
    if os.environ.get("CYGRAD_KERNELS"):
        wanted = set(os.environ["CYGRAD_KERNELS"].split(","))
        names = {os.path.splitext(os.path.basename(s))[0] for s in sources}
        if wanted - names:
            sys.exit(f"cygrad: CYGRAD_KERNELS names unknown families {sorted(wanted - names)}; "
                     f"there are {sorted(names)}")
        sources = [s for s in sources if os.path.splitext(os.path.basename(s))[0] in wanted]
    return sources


headers = sorted(glob.glob(os.path.join("csrc", "*.pxd")) + glob.glob(os.path.join("csrc", "*.h")))
extensions = [
    Extension(f"cygrad._C.{os.path.splitext(os.path.basename(pyx))[0]}", [pyx],
              include_dirs=["csrc"], depends=headers)
    for pyx in kernel_sources()
]

# The license as an SPDX expression (PEP 639) where setuptools knows that field (77 and later);
# an older setuptools (an offline build with --no-build-isolation) gets the classic field.
try:
    from setuptools import __version__ as _setuptools_version

    _modern = int(_setuptools_version.split(".")[0]) >= 77
except ValueError:
    _modern = True
license_field = {"license_expression": "MIT"} if _modern else {"license": "MIT"}

setup(ext_modules=extensions, cmdclass={"build_ext": BuildExt}, **license_field)
