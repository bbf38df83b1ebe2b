#!/usr/bin/env bash
# Runs the benchmarks and prints one JSON line per figure on stdout, e.g.
#   {"name": "entropy_search_2048", "device": "cpu", "value": 0.31, "unit": "ms", ...}
# (value: the median of the repetitions; best: the fastest one; reps: how many). Progress and
# the machine's load go to stderr.
#
#   bench/run.sh [cpu|gpu]        # default cpu
#
# cpu: the CPU kernels (histogram and max throughput against a plain copy of the same bytes in
#      the same run, each amax search on 2048 and 8192 bins, mse also on 2^17; the 2^20-bin mse
#      and the quadratic mse search take seconds and are left to a manual run), ComputeAmax of a
#      model of 1000 quantizers ("model"), and ingest over loopback gRPC into a qcal-server
#      started for the run.
# gpu: the CUDA benchmark (qcal_cuda_bench, built with QCAL_WITH_CUDA), which prints its own
#      lines (device "cuda"); bench/gpu_check.sh runs it with the GPU tests on a GPU machine.
# Environment: BUILD_DIR (default build), REPS (repetitions, default 5; ingest uses
# INGEST_REPS, default 3), PARTS (cpu parts to run, default "kernels model ingest"), PYTHON (default
# python3).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
REPS=${REPS:-5}
INGEST_REPS=${INGEST_REPS:-3}
PARTS=${PARTS:-kernels model ingest}
PYTHON=${PYTHON:-python3}
mode=${1:-cpu}

log() { echo "run.sh: $*" >&2; }

# Google Benchmark JSON (stdin) -> our lines. Arguments "BENCHMARK=KIND:FIGURE", KIND ms (real
# time), elem (elements/s) or gbps (bytes/s in GB/s); "max=FIGURE:A,B,.." adds FIGURE as the
# highest of the figures A, B, .. (its "from" says which).
to_lines() {
  "$PYTHON" -c '
import json, sys
runs = json.load(sys.stdin)["benchmarks"]
stats = {}
for run in runs:
    if run.get("error_occurred"):
        continue
    base = run["run_name"].replace("/real_time", "")
    if run.get("run_type") == "aggregate":
        stats.setdefault(base, {})[run["aggregate_name"]] = run
        stats[base]["reps"] = run.get("repetitions", 0)
    elif run.get("repetitions", 1) == 1:  # one repetition: no aggregates
        stats[base] = {"median": run, "reps": 1}
figures = {}
def emit(line):
    figures[line["name"]] = line
    print(json.dumps(line))
for arg in sys.argv[1:]:
    bench, rule = arg.split("=", 1)
    kind, name = rule.split(":", 1)
    if bench == "max":
        names = [n for n in name.split(",") if n in figures]
        if names:
            top = max(names, key=lambda n: figures[n]["value"])
            emit(dict(figures[top], name=kind, **{"from": top}))
        continue
    s = stats.get(bench)
    if s is None or "median" not in s:
        print("run.sh: no result for %s" % bench, file=sys.stderr)
        continue
    med, reps = s["median"], s["reps"]
    if kind == "ms":
        scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[med["time_unit"]]
        value, best, unit = med["real_time"] * scale, s.get("min", med)["real_time"] * scale, "ms"
    elif kind == "elem":
        value, best, unit = med["items_per_second"], s.get("max", med)["items_per_second"], "elem/s"
    else:
        value, best, unit = (med["bytes_per_second"] / 1e9,
                             s.get("max", med)["bytes_per_second"] / 1e9, "GB/s")
    emit({"name": name, "device": "cpu", "value": float("%.4g" % value), "unit": unit,
          "best": float("%.4g" % best), "reps": reps})
' "$@"
}

cpu() {
  kernels=$BUILD_DIR/bench/qcal_bench_kernels
  ingest=$BUILD_DIR/bench/qcal_bench_ingest
  server=$BUILD_DIR/qcal-server
  for binary in "$kernels" "$ingest" "$server"; do
    if [[ ! -x $binary ]]; then
      log "$binary is missing: build it first (cmake --build $BUILD_DIR)"
      exit 2
    fi
  done
  log "$(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  [[ " $PARTS " == *" kernels "* ]] && kernels_part
  [[ " $PARTS " == *" model "* ]] && model_part
  [[ " $PARTS " == *" ingest "* ]] && ingest_part
  log "done; load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

kernels_part() {
  log "kernels ($REPS repetitions)"
  # Headline figures on 2 MiB pages, as qcal-server's batch buffers; "_4k": 4 KiB pages.
  "$kernels" --benchmark_repetitions="$REPS" --benchmark_report_aggregates_only=true \
    --benchmark_filter='-BM_MseSearch/bins:1048576|BM_MseSearchQuadratic' \
    --benchmark_format=json 2>/dev/null | to_lines \
    BM_Copy/huge:1=gbps:copy_bandwidth BM_Copy/huge:1=elem:copy_f32 \
    BM_Copy/huge:0=gbps:copy_bandwidth_4k \
    BM_HistogramCollect/bins:2048/huge:1=elem:histogram_f32 \
    BM_HistogramCollect/bins:2048/huge:1=gbps:histogram_f32_bandwidth \
    BM_HistogramCollect/bins:2048/huge:0=elem:histogram_f32_4k \
    BM_FiniteAbsMax/huge:1=elem:amax_f32 BM_FiniteAbsMax/huge:1=gbps:amax_f32_bandwidth \
    BM_FiniteAbsMax/huge:0=elem:amax_f32_4k \
    BM_MaxCalibratorCollect/huge:1=elem:max_calibrator_f32 \
    BM_EntropySearch/bins:2048=ms:entropy_search_2048 \
    BM_EntropySearch/bins:8192=ms:entropy_search_8192 \
    BM_MseSearch/bins:2048=ms:mse_search_2048 BM_MseSearch/bins:8192=ms:mse_search_8192 \
    BM_MseSearch/bins:131072=ms:mse_search_131072 \
    BM_PercentileSearch/bins:2048=ms:percentile_search_2048 \
    BM_PercentileSearch/bins:8192=ms:percentile_search_8192
}

model_part() {
  log "ComputeAmax of a model of 1000 quantizers ($REPS repetitions)"
  "$BUILD_DIR/bench/qcal_bench_model" --benchmark_repetitions="$REPS" \
    --benchmark_report_aggregates_only=true --benchmark_format=json 2>/dev/null | to_lines \
    BM_ComputeAmaxModel/entropy=ms:compute_amax_1000_entropy \
    BM_ComputeAmaxModel/mse=ms:compute_amax_1000_mse \
    BM_ComputeAmaxModel/percentile=ms:compute_amax_1000_percentile
}

ingest_part() {
  log "ingest over loopback ($INGEST_REPS repetitions)"
  ready=$(mktemp)
  "$server" --listen 127.0.0.1:0 --log-level warn >"$ready" &
  server_pid=$!
  trap 'kill $server_pid 2>/dev/null; rm -f "$ready"' EXIT
  for _ in $(seq 100); do
    [[ -s $ready ]] && break
    sleep 0.1
  done
  local address
  address=$(awk '/listening on/ {print $4}' "$ready")
  if [[ -z $address ]]; then
    log "qcal-server did not start"
    exit 1
  fi
  # ingest_loopback_f32: the best of the N-stream rates with pre-encoded messages (the server's
  # capacity); _stub: messages built per batch on the Record stub; _session: ModelSession.
  "$ingest" --server="$address" --benchmark_repetitions="$INGEST_REPS" --benchmark_min_time=2 \
    --benchmark_report_aggregates_only=true --benchmark_format=json 2>/dev/null | to_lines \
    BM_IngestEncoded/1=gbps:ingest_loopback_f32_streams1 \
    BM_IngestEncoded/2=gbps:ingest_loopback_f32_streams2 \
    BM_IngestEncoded/4=gbps:ingest_loopback_f32_streams4 \
    BM_IngestStreams/1=gbps:ingest_stub_f32_streams1 \
    BM_IngestStreams/2=gbps:ingest_stub_f32_streams2 \
    BM_IngestStreams/4=gbps:ingest_stub_f32_streams4 \
    BM_IngestSession/1=gbps:ingest_session_f32_streams1 \
    BM_IngestSession/2=gbps:ingest_session_f32_streams2 \
    BM_IngestSession/4=gbps:ingest_session_f32_streams4 \
    max=ingest_loopback_f32:ingest_loopback_f32_streams1,ingest_loopback_f32_streams2,ingest_loopback_f32_streams4
}

gpu() {
  local binary=""
  for candidate in "$BUILD_DIR/kernels/cuda/qcal_cuda_bench" "$BUILD_DIR/gpu-bundle/qcal_cuda_bench"; do
    if [[ -f $candidate ]]; then
      binary=$candidate
      break
    fi
  done
  if [[ -z $binary ]]; then
    log "no GPU build: $BUILD_DIR has no qcal_cuda_bench (configure with a CUDA compiler and" \
      "QCAL_WITH_CUDA=AUTO or ON, then build qcal_cuda_bench)"
    exit 2
  fi
  if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    log "no GPU device on this machine (nvidia-smi finds none); $binary reports the skip"
  fi
  log "$binary"
  "$binary"
}

case $mode in
  cpu) cpu ;;
  gpu) gpu ;;
  *)
    echo "usage: $0 [cpu|gpu]" >&2
    exit 2
    ;;
esac
