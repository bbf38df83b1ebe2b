#!/usr/bin/env bash
# Installs the dependencies, builds qcal and runs every test (C++, Python, end to end).
# BUILD_DIR (default build) picks the build folder. Then the fuzz smoke: every libFuzzer target
# for FUZZ_SECONDS (default 30) each (tests/fuzz/run.sh, its own clang build in build-fuzz/);
# QCAL_SKIP_FUZZ=1 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}

scripts/install-deps.sh
cmake -S . -B "$BUILD_DIR" -G Ninja -DPython3_EXECUTABLE=/usr/bin/python3
cmake --build "$BUILD_DIR" -j "$(nproc)"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)"
if [[ ${QCAL_SKIP_FUZZ:-0} != 1 ]]; then
  tests/fuzz/run.sh "${FUZZ_SECONDS:-30}"
fi
