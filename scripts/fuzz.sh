#!/usr/bin/env bash
# Fuzz the readers of untrusted bytes (.pth, safetensors, binidx, YAML config) with libFuzzer + ASan for a
# bounded time each: scripts/fuzz.sh [SECONDS_PER_TARGET=60]
# Needs clang and libFuzzer (Debian: clang, libclang-rt-14-dev). Builds into build-fuzz/. New
# inputs go to build-fuzz/corpus/<target>, crashes to build-fuzz/artifacts/; a finding is fixed
# and its input copied into tests/fuzz/corpus/<target>/, where rwkv7_fuzz_replay keeps it a test.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
PY=$([ -x .venv/bin/python ] && echo "$PWD/.venv/bin/python" || command -v python3)
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DRWKV7_FUZZ=ON -DRWKV7_WITH_CUDA=OFF -DRWKV7_BUILD_TESTS=OFF -DRWKV7_PYTHON="$PY" \
  --no-warn-unused-cli >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_pth fuzz_safetensors fuzz_binidx fuzz_config
# libtorch is not instrumented: its allocations cross into ours
export ASAN_OPTIONS=detect_odr_violation=0:alloc_dealloc_mismatch=0:detect_leaks=0
mkdir -p build-fuzz/artifacts
status=0
for t in pth safetensors binidx config; do
  mkdir -p "build-fuzz/corpus/$t"
  cp -n tests/fuzz/corpus/$t/* "build-fuzz/corpus/$t/" 2>/dev/null || true
  echo "== fuzz_$t for ${SECS}s"
  build-fuzz/tests/fuzz/fuzz_$t "build-fuzz/corpus/$t" -max_total_time="$SECS" -seed=1 -max_len=65536 \
    -artifact_prefix=build-fuzz/artifacts/$t- -print_final_stats=1 2>&1 | grep -E "^#|ERROR|Done|stat::" | tail -8 \
    || status=1
done
ls build-fuzz/artifacts 2>/dev/null | grep . && { echo "findings in build-fuzz/artifacts"; exit 1; }
exit $status
