#!/usr/bin/env bash
# Memory of qcal-server under many Record streams, then idle: starts a server, creates a model,
# runs STREAMS concurrent `qcal record` clients (ROUNDS streams each, one BATCH_MIB MiB float32
# batch per stream, sent in 4 MiB chunks), then leaves the server idle for IDLE_SECONDS. Prints
# one JSON line: VmHWM (the peak RSS) and VmRSS after the idle period, in MB, from
# /proc/PID/status. Not a test: the figures depend on the machine.
#
#   bench/rss_idle.sh                       # build/qcal-server and build/qcal
#   SERVER=/tmp/old/qcal-server bench/rss_idle.sh
#
# Environment: SERVER (default $BUILD_DIR/qcal-server), QCAL (default $BUILD_DIR/qcal), BUILD_DIR
# (default build), STREAMS (64), ROUNDS (2), BATCH_MIB (16), IDLE_SECONDS (10), SERVER_FLAGS
# (extra qcal-server flags), PYTHON (python3).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
SERVER=${SERVER:-$BUILD_DIR/qcal-server}
QCAL=${QCAL:-$BUILD_DIR/qcal}
STREAMS=${STREAMS:-64}
ROUNDS=${ROUNDS:-2}
BATCH_MIB=${BATCH_MIB:-16}
IDLE_SECONDS=${IDLE_SECONDS:-10}
SERVER_FLAGS=${SERVER_FLAGS:-}
PYTHON=${PYTHON:-python3}

log() { echo "rss_idle.sh: $*" >&2; }
for binary in "$SERVER" "$QCAL"; do
  [[ -x $binary ]] || { log "$binary is missing: build it first"; exit 2; }
done

work=$(mktemp -d)
server_pid=""
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# A float32 .npy of BATCH_MIB MiB, values spread over a few decades.
"$PYTHON" - "$work/batch.npy" "$BATCH_MIB" <<'PY'
import array, math, sys
path, mib = sys.argv[1], int(sys.argv[2])
n = mib * (1 << 20) // 4
values = array.array("f", (math.sin(i * 0.001) * (1 + i % 7) for i in range(n)))
header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d,), }" % n
header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
with open(path, "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
    values.tofile(f)
PY

# shellcheck disable=SC2086
"$SERVER" --listen 127.0.0.1:0 --log-level warn $SERVER_FLAGS >"$work/ready" &
server_pid=$!
for _ in $(seq 100); do
  [[ -s $work/ready ]] && break
  sleep 0.1
done
address=$(awk '/listening on/ {print $4}' "$work/ready")
[[ -n $address ]] || { log "qcal-server did not start"; exit 1; }
rss() { awk -v k="$1:" '$1 == k {print int($2 / 1024)}' "/proc/$server_pid/status"; }

"$QCAL" --server "$address" create rss >/dev/null
start_rss=$(rss VmRSS)
log "$STREAMS streams x $ROUNDS rounds of one $BATCH_MIB MiB batch; server RSS $start_rss MB"
for s in $(seq "$STREAMS"); do
  (
    for _ in $(seq "$ROUNDS"); do
      "$QCAL" --server "$address" record rss "q$s._input_quantizer" "$work/batch.npy" >/dev/null
    done
  ) &
done
wait_failed=0
for job in $(jobs -p); do
  [[ $job == "$server_pid" ]] && continue
  wait "$job" || wait_failed=1
done
[[ $wait_failed == 0 ]] || { log "a qcal record failed"; exit 1; }
peak=$(rss VmHWM)
after=$(rss VmRSS)
sleep "$IDLE_SECONDS"
idle=$(rss VmRSS)
echo "{\"name\": \"rss_${STREAMS}_streams\", \"batch_mib\": $BATCH_MIB, \"rounds\": $ROUNDS," \
  "\"start_mb\": $start_rss, \"peak_mb\": $peak, \"end_mb\": $after," \
  "\"idle_mb\": $idle, \"idle_seconds\": $IDLE_SECONDS}"
