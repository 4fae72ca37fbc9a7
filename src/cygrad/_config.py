"""How this cygrad was built and what it runs on: `cygrad.show_config()`, `python -m cygrad config`.

The build records its choices in cygrad/_C/build_config.json (setup.py writes it): the compiler
and its flags, the build level, OpenMP or not, whether multiply-add chains are fused (FMA) and
the gemm kernel's vector width. Every FMA build gives the same bits, whatever its vector width,
compiler or CPU; a build without FMA gives other last digits (README, "Building").
"""

import json
import os
import pathlib
import platform
import sys

import numpy as np

__all__ = ["show_config", "build_config", "blas"]


def build_config():
    """The build's record (a dict), or None when the kernels were never built here."""
    path = pathlib.Path(__file__).with_name("_C") / "build_config.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def blas():
    """numpy's BLAS: {"name", "version", "core", "threads", "source"}, None where unknown.

    "core" is the kernel family the library chose for this CPU (OpenBLAS's "Haswell",
    "SkylakeX", "Zen", ...): where a product's rows and columns are split between vector kernels
    and edge code, so where tied units can round apart. threadpoolctl (if installed) asks the
    loaded library; otherwise numpy's build record gives the name and version only, as a
    DYNAMIC_ARCH OpenBLAS chooses its core when it loads.
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        libraries = [lib for lib in threadpool_info() if lib.get("user_api") == "blas"]
        # numpy's own library first (others, e.g. PyTorch's, may be loaded too)
        libraries.sort(key=lambda lib: "numpy" not in lib.get("filepath", ""))
        if libraries:
            lib = libraries[0]
            return {"name": lib.get("internal_api"), "version": lib.get("version"),
                    "core": lib.get("architecture"), "threads": lib.get("num_threads"),
                    "source": "threadpoolctl"}
    try:
        record = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except (KeyError, TypeError, ValueError):
        record = {}
    return {"name": record.get("name"), "version": record.get("version"), "core": None,
            "threads": None, "source": "numpy's build record (install threadpoolctl for more)"}


def _config():
    from . import __version__, backend

    return {
        "cygrad": {"version": __version__, "path": str(pathlib.Path(__file__).parent)},
        "python": {"version": platform.python_version(),
                   "implementation": platform.python_implementation(),
                   "executable": sys.executable},
        "machine": {"platform": platform.platform(), "machine": platform.machine(),
                    "cpus": os.cpu_count()},
        "build": build_config(),
        "backends": {"available": list(backend.available()), "current": backend.current(),
                     "threads": backend.get_num_threads(),
                     "compiled_kernels_error": _error(getattr(backend, "_cython_error", None))},
        "numpy": {"version": np.__version__, "blas": blas()},
        "gemm": _gemm_blocking(),
    }


def _gemm_blocking():
    """The gemm kernel's tiles and blocking (gemm.blocking()), or None without the kernel."""
    try:
        from ._C import gemm
    except ImportError:
        return None
    return gemm.blocking()


def _error(exc):
    return None if exc is None else f"{type(exc).__name__}: {exc}"


def _yes(value):
    return {True: "yes", False: "no", None: "unknown"}[value]


def _render_gemm(g):
    if not g:
        return []
    tiles = " / ".join(f"{r}x{c}" for r, c in g["tile"].values())
    wide = ""
    if g.get("wide") and g["wide"] != g["tile"]:
        wide = ", " + " / ".join(f"{r}x{c}" for r, c in g["wide"].values()) + " for many rows"
    return [f"  gemm:         tiles {tiles} (float32 / float64){wide}, k blocks "
            f"{' / '.join(str(k) for k in g['k_block'].values())}, B packed "
            f"{g['packed_b'] >> 10} KiB at a time, prefetch {g['prefetch_b']} links ahead"]


def _render(config):
    b, be, blas_ = config["build"], config["backends"], config["numpy"]["blas"]
    lines = [f"cygrad {config['cygrad']['version']} ({config['cygrad']['path']})",
             f"Python {config['python']['version']} ({config['python']['implementation']}), "
             f"{config['machine']['platform']}, {config['machine']['cpus']} CPUs"]
    if b is None:
        lines.append("build: no record (cygrad/_C/build_config.json): the kernels were not "
                     "built by this setup.py")
    else:
        lines += [
            "build:",
            f"  compiler:     {b['compiler']}",
            f"  command:      {b['compiler_command']} {' '.join(b['compile_args'])}",
            f"  level:        {b['level']} ({' '.join(b['level_flags']) or 'compiler default'})",
            f"  OpenMP:       {b['openmp_note']}",
            f"  FMA:          {_yes(b['fma'])}"
            + {True: " (the bits of every FMA build)",
               False: " (each product and sum rounded apart: other last digits than FMA builds)",
               None: ""}[b["fma"]],
            f"  vector width: {b['vector_bits']} bits",
            *_render_gemm(config.get("gemm")),
            f"  debug info:   {_yes(b['debug_info'])}; bounds checks: {_yes(b['boundscheck'])}",
            f"  Cython {b['cython']}, for Python {b['python']} on {b['platform']}; kernels: "
            f"{', '.join(b['kernels'])}",
        ]
    threads = f"{be['threads']} threads"
    if b is not None and not b["openmp"]:
        threads += " asked (built without OpenMP: the kernels run on one)"
    lines.append(f"backends: {', '.join(be['available'])} (in use: {be['current']}); {threads}")
    if be["compiled_kernels_error"]:
        lines.append(f"  compiled kernels missing: {be['compiled_kernels_error']}")
    lines.append(f"numpy {config['numpy']['version']}, BLAS: {blas_['name']} {blas_['version']}, "
                 f"kernel {blas_['core'] or 'unknown'}, "
                 f"{blas_['threads'] or 'unknown'} threads (from {blas_['source']})")
    return "\n".join(lines)


def show_config(mode="stdout"):
    """Print how cygrad was built and what it runs on (mode "stdout"), or return it as a dict
    (mode "dicts"), as numpy.show_config does."""
    if mode not in ("stdout", "dicts"):
        raise ValueError(f"mode must be 'stdout' or 'dicts', got {mode!r}")
    config = _config()
    if mode == "dicts":
        return config
    print(_render(config))
