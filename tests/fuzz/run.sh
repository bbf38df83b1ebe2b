#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) into build-fuzz/ and runs each for SECONDS
# (default 30) on a copy of its seed corpus. Fails on any crash, leak, timeout (-timeout) or
# allocation past -rss_limit_mb / -malloc_limit_mb, leaving the input that caused it in
# build-fuzz/fuzz-runs/TARGET/; prints each target's execution count. See README.md here.
#
#   tests/fuzz/run.sh              # every target, 30 s each
#   tests/fuzz/run.sh 600 record   # fuzz_record for 10 minutes
#   tests/fuzz/run.sh 0            # build only
#
# FUZZ_BUILD_DIR (default build-fuzz) picks the build folder; FUZZ_JOBS how many targets run at
# once (default: the cores); FUZZ_ARGS adds libFuzzer flags.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_TARGET=${1:-30}
shift || true
BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}

launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
# Only what the fuzzers link is built: no tests, Python module, benchmarks, LibTorch or CUDA.
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" \
  -DQCAL_BUILD_FUZZERS=ON -DQCAL_BUILD_TESTS=OFF -DQCAL_BUILD_PYTHON=OFF \
  -DQCAL_BUILD_BENCH=OFF -DQCAL_BUILD_QUANT=OFF -DQCAL_WITH_CUDA=OFF >/dev/null
targets=("$@")
if ((${#targets[@]} == 0)); then
  # Every target this build defines (the token-file one only with server/auth).
  mapfile -t targets <"$BUILD_DIR/fuzz/targets.txt"
fi
cmake --build "$BUILD_DIR" -j "${FUZZ_BUILD_JOBS:-$(nproc)}" \
  --target "${targets[@]/#/fuzz_}"

((SECONDS_PER_TARGET > 0)) || exit 0

# One target: its corpus copied to build-fuzz/fuzz-runs/TARGET/corpus, its log there, "ok" or
# "FAILED" in .../status.
run_one() {
  local t=$1 work="$BUILD_DIR/fuzz-runs/$1"
  rm -rf "$work"
  mkdir -p "$work/corpus"
  cp tests/fuzz/corpus/"$t"/* "$work/corpus/"
  # -rss_limit_mb / -malloc_limit_mb: an input that makes the code allocate 2 GiB is a failure
  # (a size taken from the input); -timeout: one input running 10 s is a hang.
  # shellcheck disable=SC2086
  if "$BUILD_DIR/fuzz/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 \
    -malloc_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix="$work/" \
    ${FUZZ_ARGS:-} "$work/corpus" >"$work/log" 2>&1; then
    echo ok >"$work/status"
  else
    echo FAILED >"$work/status"
  fi
}

# FUZZ_JOBS targets at a time (default: one per core); each runs single-threaded.
jobs_max=${FUZZ_JOBS:-$(nproc)}
echo "fuzz: ${targets[*]}: ${SECONDS_PER_TARGET} s each, $jobs_max at a time"
for t in "${targets[@]}"; do
  while (($(jobs -rp | wc -l) >= jobs_max)); do wait -n || true; done
  run_one "$t" &
done
wait

failed=()
summary=()
for t in "${targets[@]}"; do
  work="$BUILD_DIR/fuzz-runs/$t"
  status=$(cat "$work/status" 2>/dev/null || echo FAILED)
  if [[ $status != ok ]]; then
    failed+=("$t")
    echo "fuzz: $t failed; the end of $work/log:"
    tail -n 60 "$work/log"
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$work/log" | tail -n 1 || true)
  summary+=("$(printf '%-14s %-7s %12s executions  %s' "$t" "$status" "${runs:-?}" "$cov")")
done
printf 'fuzz: %s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]} (inputs and logs in $BUILD_DIR/fuzz-runs/)" >&2
  exit 1
fi
