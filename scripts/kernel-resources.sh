#!/usr/bin/env bash
# Registers, spills, stack, shared memory and H100 occupancy of every CUDA kernel of the project,
# from ptxas for sm_90 with the build's flags (no GPU needed):
#   scripts/kernel-resources.sh            -> docs/bench/kernel-resources.md and .json
#   scripts/kernel-resources.sh --check    -> fails on a spill not in scripts/kernel-known-spills.json
#                                             (ctest runs this where nvcc is)
set -euo pipefail
cd "$(dirname "$0")/.."
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
if [ "${1:-}" = "--check" ]; then
  exec python3 scripts/kernel_resources.py --nvcc "$NVCC" --known-spills scripts/kernel-known-spills.json
fi
python3 scripts/kernel_resources.py --nvcc "$NVCC" --md docs/bench/kernel-resources.md --json docs/bench/kernel-resources.json
