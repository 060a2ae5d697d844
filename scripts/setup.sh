#!/usr/bin/env bash
# Installs what the project needs (Debian/Ubuntu packages, a Python venv with PyTorch's wheel)
# and builds it into build/. Safe to run again; it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo

PKGS="cmake ninja-build g++ libyaml-cpp-dev libfmt-dev libgtest-dev libgloo-dev python3-venv python3-pip gnuplot-nox fortunes"
if ! dpkg -s $PKGS >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends $PKGS >/dev/null
fi

# A venv that sees system site-packages: where torch==2.11.0 is already installed, pip
# keeps it (no 3 GB download); elsewhere pip installs it into the venv.
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv --system-site-packages .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt

# With a CUDA toolkit (nvcc that runs) the CUDA op is built too; without one, everything else.
if ! nvcc --version >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release --no-warn-unused-cli \
  -DRWKV7_PYTHON="$PWD/.venv/bin/python" -DPython3_EXECUTABLE="$PWD/.venv/bin/python" >/dev/null
cmake --build build -j"$(nproc)"
