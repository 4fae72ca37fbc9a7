#!/usr/bin/env bash
# The aarch64 check, on an x86-64 Debian 12 machine: build cygrad's kernels for aarch64 with
# gcc's cross compiler (through setup.py, as a native build would: its probes decide the level
# and OpenMP), then run the training digest (scripts/digest.py --check) and tests/kernels on
# Debian's arm64 Python under qemu-aarch64.
#
#   bash scripts/check_aarch64.sh [--no-tests]        (as root: apt-get installs the tools)
#
# Debian's arm64 Python is never installed: its packages are downloaded with a private apt
# state (the machine's apt keeps its own architectures) and unpacked with dpkg -x into a
# private root for `qemu-aarch64 -L` (installing python3.11:arm64 would replace the machine's
# python3.11). numpy, Cython and setuptools for aarch64 come from PyPI with pip's --platform.
# Everything happens in a temporary directory; slow (emulated Python): 10-20 minutes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
run_tests=1
[ "${1:-}" = "--no-tests" ] && run_tests=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! command -v qemu-aarch64 >/dev/null || ! command -v aarch64-linux-gnu-gcc >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross >/dev/null
fi

echo "aarch64: Debian's arm64 Python, unpacked into a private root"
mkdir -p "$work/apt/state/lists/partial" "$work/apt/cache/archives/partial" "$work/debs"
touch "$work/apt/state/status"
cp /etc/apt/sources.list.d/*.sources "$work/apt/" 2>/dev/null || true
apt=(-o APT::Architecture=arm64 -o "APT::Architectures::=arm64"
     -o "Dir::State=$work/apt/state" -o "Dir::State::status=$work/apt/state/status"
     -o "Dir::Cache=$work/apt/cache" -o "Dir::Etc::SourceParts=$work/apt"
     -o Dir::Etc::SourceList=/dev/null)
apt-get "${apt[@]}" update -qq
(cd "$work/debs" && apt-get "${apt[@]}" download -qq \
  python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libpython3.11-dev \
  libc6 libgcc-s1 libgomp1 libstdc++6 libffi8 libssl3 zlib1g libexpat1 libbz2-1.0 liblzma5 \
  libsqlite3-0 libncursesw6 libtinfo6 libreadline8 libuuid1 libcrypt1 libdb5.3 libnsl2 \
  libtirpc3 libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libcom-err2 \
  libkeyutils1 media-types libzstd1 2>&1 | grep -v "unsandboxed" || true)
for deb in "$work"/debs/*.deb; do dpkg -x "$deb" "$work/armroot"; done
arm_python=(qemu-aarch64 -L "$work/armroot" "$work/armroot/usr/bin/python3.11")

echo "aarch64: numpy, Cython, setuptools, pytest for cp311 aarch64 (pip --platform)"
python3 -m pip install --quiet --target "$work/site" --implementation cp --python-version 3.11 \
  --abi cp311 --platform manylinux2014_aarch64 --platform manylinux_2_28_aarch64 \
  --only-binary=:all: numpy "setuptools>=77" "Cython>=3.0,<4" threadpoolctl pytest hypothesis

echo "aarch64: building (setup.py under qemu; the compiler runs natively)"
# pip would start another arm64 Python, which only binfmt_misc could run: setup.py runs here
# in-process. A copy of the tree keeps build/ and the generated C out of the checkout.
mkdir -p "$work/tree" && (cd "$root" && git ls-files -z | xargs -0 cp --parents -t "$work/tree")
(cd "$work/tree" && PYTHONPATH="$work/site" CFLAGS="-I$work/armroot/usr/include" \
  "${arm_python[@]}" setup.py -q bdist_wheel -d "$work/wheel" 2>&1 | grep "cygrad build")
mkdir "$work/cygrad" && python3 -m zipfile -e "$work"/wheel/cygrad-*.whl "$work/cygrad"

export PYTHONPATH="$work/cygrad:$work/site"
"${arm_python[@]}" -c "import cygrad; cygrad.show_config()"
"${arm_python[@]}" "$root/scripts/digest.py" --check
if [ $run_tests = 1 ]; then
  (cd "$work/tree" && "${arm_python[@]}" -m pytest -p no:cacheprovider tests/kernels)
fi
echo "aarch64: OK"
