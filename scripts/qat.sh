#!/usr/bin/env bash
# Installs the dependencies, builds the C++ QAT example (quant/ on LibTorch) and runs it: train a
# quantized CNN on Fashion-MNIST in float (cached after the first run), calibrate it (histogram
# inputs, max weights), evaluate PTQ by max, entropy, mse and percentile, then fine-tune with QAT.
# Results go to out/qat_fashion_mnist/results.json. BUILD_DIR (default build) picks the build
# folder; extra arguments go to qat_fashion_mnist (e.g. --spawn-server build/qcal-server to
# calibrate on a qcal-server, --compare-remote to check both give the same amax, --quick).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}

scripts/install-deps.sh
cmake -S . -B "$BUILD_DIR" -G Ninja -DPython3_EXECUTABLE=/usr/bin/python3
cmake --build "$BUILD_DIR" -j "$(nproc)" --target qat_fashion_mnist qcal-server
"$BUILD_DIR/qat_fashion_mnist" "$@"
