#!/usr/bin/env bash
# Prepare .device-kit/ for one GPU device call (docs/gpu-report.md), from the project root:
#   scripts/prepare-gpu-kit.sh /tmp/seed/RWKV-v7/train_temp [LATEST_TRAIN_TEMP]
# Optional, and the one place that reads ../shared: it runs ../shared/device/prepare-kit.sh
# (yaml-cpp, fmt, GoogleTest, gpu-env.sh, seed_bench.py and the seed's train_temp), drops the kit's
# copy of the golden files (the tests read tests/data), and adds Gloo's headers (libgloo-dev), which
# c10d's ProcessGroupGloo.hpp needs and the GPU machine lacks.
set -euo pipefail
cd "$(dirname "$0")/.."
../shared/device/prepare-kit.sh "$@"
rm -rf .device-kit/shared
tmp=$(mktemp -d)
( cd "$tmp" && apt-get download -q libgloo-dev >/dev/null )
for f in "$tmp"/*.deb; do dpkg -x "$f" .device-kit/deps; done
rm -rf "$tmp"
du -sh .device-kit
