#!/usr/bin/env bash
# Installs the dependencies, builds qcal and runs the Fashion-MNIST example end to end: train a
# small CNN (cached after the first run), calibrate it through a local qcal-server by max,
# entropy, mse and percentile, and compare float and QDQ top-1 under ONNX Runtime.
# BUILD_DIR (default build) picks the build folder; extra arguments go to run.py (e.g. --quick).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}

scripts/install-deps.sh
cmake -S . -B "$BUILD_DIR" -G Ninja -DPython3_EXECUTABLE=/usr/bin/python3
cmake --build "$BUILD_DIR" -j "$(nproc)"
PYTHONPATH="$BUILD_DIR/python${PYTHONPATH:+:$PYTHONPATH}" \
  /usr/bin/python3 examples/fashion_mnist/run.py --build-dir "$BUILD_DIR" "$@"
