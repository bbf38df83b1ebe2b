#!/usr/bin/env bash
# The GPU check of issue 4 in one run: on a machine with an NVIDIA GPU, runs the carried CUDA
# kernel tests (every kernel against its CPU twin, golden and random inputs) and the GPU
# benchmarks, and writes a report. Without a GPU it reports the skip and exits 0.
#
#   bench/gpu_check.sh BUNDLE_DIR [OUT_DIR]
#
# BUNDLE_DIR is what the build's qcal_gpu_bundle target makes (BUILD/gpu-bundle):
# qcal_cuda_kernels_test, qcal_cuda_bench, cuda_bundle_libs.sh and golden/*.json; the binaries
# are self-contained (sm_80 and sm_90 code, static cudart, Abseil, GoogleTest, libstdc++).
# OUT_DIR defaults to $OUT, else ./gpu-check-out. It receives (7 files, one level):
#   report.jsonl  one JSON object per line: the machine, the bundle check, the test totals, each
#                 benchmark figure ({"name", "device": "cuda", "value", "unit", ...}), a summary
#   gtest.log / gtest.json   the test binary's output and its JSON report
#   bench.jsonl / bench.log  the benchmark's lines and its stderr
#   libs.txt      the binaries' shared libraries
#   machine.txt   nvidia-smi's view of the GPU
# Exit status: 0 when every test passed (or all GPU tests were skipped for want of a GPU),
# 1 when a test or the benchmark failed, 2 for a bad bundle.
# Environment: QCAL_GPU_TEST_FILTER (a --gtest_filter), QCAL_GPU_BENCH_ARGS (e.g. --quick),
# QCAL_GPU_TEST_TIMEOUT / QCAL_GPU_BENCH_TIMEOUT (seconds, default 420 / 240).
set -uo pipefail

if [[ $# -lt 1 || ! -d $1 ]]; then
  echo "usage: $0 BUNDLE_DIR [OUT_DIR]" >&2
  exit 2
fi
bundle=$(cd "$1" && pwd)
out=${2:-${OUT:-gpu-check-out}}
mkdir -p "$out"
out=$(cd "$out" && pwd)
report=$out/report.jsonl
: >"$report"

# JSON string of $1: backslashes, quotes and control characters escaped.
json_string() {
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\t'/\\t}
  s=${s//$'\r'/}
  printf '"%s"' "$s"
}

emit() { echo "$1" >>"$report"; }

started=$(date +%s)

# The binaries may arrive without their executable bit: run copies.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for binary in qcal_cuda_kernels_test qcal_cuda_bench; do
  if [[ ! -f $bundle/$binary ]]; then
    emit "{\"name\": \"gpu_check\", \"status\": \"bad_bundle\", \"missing\": $(json_string "$binary")}"
    cat "$report"
    exit 2
  fi
  cp "$bundle/$binary" "$work/" && chmod +x "$work/$binary"
done

# The machine.
gpu="none"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi >"$out/machine.txt" 2>&1
  gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem \
    --format=csv,noheader 2>/dev/null | head -n 1)
else
  echo "nvidia-smi: not installed" >"$out/machine.txt"
fi
emit "{\"name\": \"gpu_check_machine\", \"host\": $(json_string "$(uname -n)"), \"arch\": $(json_string "$(uname -m)"), \"gpu\": $(json_string "${gpu:-none}"), \"cpus\": $(nproc)}"

# Shared libraries: only libc and friends may remain.
if bash "$bundle/cuda_bundle_libs.sh" "$work" >"$out/libs.txt" 2>&1; then
  emit '{"name": "bundle_libs", "ok": true}'
else
  emit '{"name": "bundle_libs", "ok": false, "see": "libs.txt"}'
fi

# The kernel tests. The golden vectors come with the bundle.
filter=${QCAL_GPU_TEST_FILTER:-*}
QCAL_GOLDEN_DIR=$bundle/golden timeout "${QCAL_GPU_TEST_TIMEOUT:-420}" \
  "$work/qcal_cuda_kernels_test" --gtest_filter="$filter" --gtest_output="json:$out/gtest.json" \
  >"$out/gtest.log" 2>&1
test_rc=$?
count() { grep -oE "^\[ +$1 +\] [0-9]+ test" "$out/gtest.log" | grep -oE '[0-9]+' | tail -n 1; }
passed=$(count PASSED)
failed=$(count FAILED)
skipped=$(count SKIPPED)
no_gpu=$(grep -oE 'NO GPU \(.*\)' "$out/gtest.log" | head -n 1 | sed -E 's/^NO GPU \((.*)\)$/\1/')
if [[ $test_rc -eq 124 ]]; then
  test_status="timed_out"
elif [[ $test_rc -ne 0 ]]; then
  test_status="failed"
elif [[ -n $no_gpu ]]; then
  test_status="skipped"
else
  test_status="passed"
fi
emit "{\"name\": \"gpu_tests\", \"device\": \"cuda\", \"status\": \"$test_status\", \"passed\": ${passed:-0}, \"failed\": ${failed:-0}, \"skipped\": ${skipped:-0}, \"exit_code\": $test_rc, \"reason\": $(json_string "${no_gpu:-}")}"
grep -E '^\[  FAILED  \] [A-Za-z]' "$out/gtest.log" | sort -u | head -n 40 | while read -r line; do
  emit "{\"name\": \"gpu_test_failure\", \"test\": $(json_string "${line#\[  FAILED  \] }")}"
done

# The benchmarks (one JSON line per figure); skipped by the binary itself without a GPU.
read -r -a bench_args <<<"${QCAL_GPU_BENCH_ARGS:-}"
timeout "${QCAL_GPU_BENCH_TIMEOUT:-240}" "$work/qcal_cuda_bench" "${bench_args[@]}" \
  >"$out/bench.jsonl" 2>"$out/bench.log"
bench_rc=$?
grep -E '^\{' "$out/bench.jsonl" >>"$report"
if [[ $bench_rc -eq 0 ]] && grep -q '"skipped"' "$out/bench.jsonl"; then
  bench_status="skipped"
elif [[ $bench_rc -eq 0 ]]; then
  bench_status="ok"
else
  bench_status="failed"
fi

if [[ $test_status == "passed" && $bench_status == "ok" ]]; then
  status="passed"
  rc=0
elif [[ $test_status == "skipped" && $bench_status == "skipped" ]]; then
  status="skipped_no_gpu"
  rc=0
else
  status="failed"
  rc=1
fi
emit "{\"name\": \"gpu_check\", \"status\": \"$status\", \"tests\": \"$test_status\", \"bench\": \"$bench_status\", \"bench_exit_code\": $bench_rc, \"seconds\": $(($(date +%s) - started))}"

echo "== gtest (tail) =="
tail -n 25 "$out/gtest.log"
echo "== report ($report) =="
cat "$report"
exit $rc
