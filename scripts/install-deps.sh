#!/usr/bin/env bash
# Installs every build and run dependency of qcal from Debian's apt, plus onnxruntime-node and
# playwright-core (npm) into third_party/node. Quick no-op when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev prometheus-cpp-dev libmicrohttpd-dev
  libonnx-dev python3-onnx
  libgtest-dev libgmock-dev libbenchmark-dev
  pybind11-dev python3-dev python3-numpy python3-pytest
  libcli11-dev nlohmann-json3-dev libspdlog-dev zlib1g-dev
  libtorch-dev python3-torch python3-torchvision
  python3-grpcio
  # Python wheel (issue 11): pip wheel offline, and the venv test (tests/python/test_wheel.py)
  python3-pip python3-setuptools python3-wheel python3-venv
  dataset-fashion-mnist
  clang-format
  clang libclang-rt-14-dev
  nginx  # issue 11, h-k8s: deploy/nginx router config (nginx -t, loopback routing)
  prometheus  # issue 11, metrics: a real Prometheus and promtool for tests/e2e/test_prometheus.py
  python3-yaml  # issue 11: tests/e2e/test_k8s_*.py and test_prometheus.py read YAML
  python3-tqdm  # issue 11, h-progress: calibrate's progress bar (optional); test_torch_progress.py
  chromium  # issue 11, h-dash: the dashboard's browser test (tests/e2e/test_dashboard_browser.py)
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -q
  # nginx and prometheus would start their services on install; the tests start their own on free
  # ports. Docker-style machines already forbid starting services (policy-rc.d); elsewhere do so
  # for the install only.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Node.js 20 and npm come with the machine (Debian's nodejs conflicts with that npm).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install-deps: Node.js and npm are required (for onnxruntime-node, playwright-core)" >&2
  exit 1
fi

# ONNX Runtime has no Debian package; the npm one ships a CPU binary. Without
# ONNXRUNTIME_NODE_INSTALL=skip its install script tries to download GPU parts and fails offline.
# playwright-core (issue 11, h-dash) drives Debian's chromium in the dashboard's browser test; it
# downloads no browser of its own.
if [[ ! -d third_party/node/node_modules/onnxruntime-node ||
      ! -d third_party/node/node_modules/playwright-core ]]; then
  echo "install-deps: installing onnxruntime-node and playwright-core into third_party/node"
  mkdir -p third_party/node
  (cd third_party/node &&
    { [[ -f package.json ]] || echo '{"name":"qcal-node-deps","private":true}' >package.json; } &&
    ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund onnxruntime-node@1 \
      playwright-core@1)
fi
echo "install-deps: all dependencies present"
