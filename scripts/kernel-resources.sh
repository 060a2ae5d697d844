#!/usr/bin/env bash
# Registers, spills, stack, shared memory and H100 occupancy of every CUDA kernel of the project,
# from ptxas for sm_90 with the build's flags (no GPU needed):
#   scripts/kernel-resources.sh            -> docs/bench/kernel-resources.md and .json
#   scripts/kernel-resources.sh --check    -> fails when any of our kernels spills registers
#                                             (ctest runs this where nvcc is; ours only)
# RWKV_LM=DIR (a work tree of RWKV-LM, the newest) and RWKV_LM_SEED=DIR (one at the seed commit
# 230d32b) add their train_temp kernels' numbers beside ours, rows marked "project": "RWKV-LM".
# Those of their .cu files that include torch/extension.h need LibTorch's headers: TORCH_INCLUDE=DIR
# (torch's include/), else those of an importable torch (python3's or .venv's), else skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
if [ "${1:-}" = "--check" ]; then
  exec python3 scripts/kernel_resources.py --nvcc "$NVCC" --fail-on-spill
fi
theirs=()
[ -n "${RWKV_LM:-}" ] && theirs+=(--rwkv-lm "$RWKV_LM")
[ -n "${RWKV_LM_SEED:-}" ] && theirs+=(--rwkv-lm-seed "$RWKV_LM_SEED")
python3 scripts/kernel_resources.py --nvcc "$NVCC" "${theirs[@]}" \
  --md docs/bench/kernel-resources.md --json docs/bench/kernel-resources.json
