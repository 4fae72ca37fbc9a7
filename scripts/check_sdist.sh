#!/usr/bin/env bash
# The sdist check: build cygrad's sdist; check that it holds every tracked file it needs (kernel
# sources, package, tests, docs, benchmarks, scripts) and no generated C or build product;
# install it into a fresh virtual environment in a temporary directory, as `pip install
# cygrad-*.tar.gz` would; there, check that the compiled backend is present, the demo runs, and
# the test suite passes from the unpacked sdist.
#
#   bash scripts/check_sdist.sh [PYTHON]        (default python3; needs PyPI or a local index)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${1:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python" -m venv "$work/venv"
# shellcheck disable=SC1091
source "$work/venv/bin/activate"
python -m pip install --quiet --upgrade pip build

echo "sdist: building"
python -m build --sdist --outdir "$work/dist" "$root" >"$work/build.log" 2>&1 \
  || { cat "$work/build.log"; exit 1; }
sdist=$(ls "$work"/dist/cygrad-*.tar.gz)
echo "sdist: $(basename "$sdist"), $(du -k "$sdist" | cut -f1) kB"

# Contents: every tracked file but CI's own must be there; nothing generated may be.
python - "$sdist" "$root" <<'EOF'
import fnmatch, subprocess, sys, tarfile

sdist, root = sys.argv[1:]
with tarfile.open(sdist) as tar:
    names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
try:
    tracked = subprocess.run(["git", "-C", root, "ls-files"], capture_output=True, text=True,
                             check=True).stdout.split()
except (OSError, subprocess.CalledProcessError):
    tracked = None  # not a git checkout: only the rules below
wanted = {f for f in tracked or [] if not f.startswith(".ci/") and f != ".gitignore"}
missing = sorted(wanted - names)
generated = sorted(n for n in names if any(fnmatch.fnmatch(n, p) for p in
                   ("*.c", "*.cpp", "*.so", "*.pyd", "*.o", "*.pyc", "*/build_config.json")))
needed = ["setup.py", "pyproject.toml", "csrc/arrays.pxd", "csrc/gemm.pyx", "csrc/vmath.h",
          "csrc/README.md", "tests/conftest.py", "docs/symmetry.md", "docs/regenerate.py",
          "benchmarks/run.py"]
missing += [n for n in needed if n not in names and n not in missing]
if missing or generated:
    sys.exit(f"sdist: missing {missing}; generated files that must not ship: {generated}")
print(f"sdist: {len(names)} files: every tracked file but .ci/ and .gitignore, no generated C")
EOF

echo "sdist: installing into a fresh venv (build isolation, as from an index)"
python -m pip install --quiet "cygrad[test] @ file://$sdist" >"$work/install.log" 2>&1 \
  || { cat "$work/install.log"; exit 1; }

mkdir "$work/unpacked"
tar -xzf "$sdist" -C "$work/unpacked"
cd "$work/unpacked"/cygrad-*
python - <<'EOF'
import pathlib, sys

import cygrad

where = pathlib.Path(cygrad.__file__).resolve()
if pathlib.Path.cwd() in where.parents or "site-packages" not in str(where):
    sys.exit(f"sdist: imported cygrad from {where}, not from the installed package")
if "cython" not in cygrad.backend.available():
    sys.exit("sdist: the installed cygrad has no compiled backend")
print(f"sdist: installed at {where.parent}, backends {cygrad.backend.available()}")
EOF
python -m cygrad config
python -m cygrad demo >"$work/demo.log" || { cat "$work/demo.log"; exit 1; }
if ! grep -q "Verdict:" "$work/demo.log" || grep -q ": NO" "$work/demo.log"; then
  cat "$work/demo.log"; echo "sdist: the demo's verdicts do not hold"; exit 1
fi
echo "sdist: the demo runs ($(grep -c ': yes' "$work/demo.log") verdicts hold)"
python -m pytest -p no:cacheprovider
echo "sdist: OK"
