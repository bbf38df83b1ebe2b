#!/usr/bin/env bash
# Builds the CPU image here with buildah, then runs it: qcal-server starts inside the image
# (`buildah run`, with the image's own ENTRYPOINT, user and data volume), a qcal CLI outside it
# calibrates over loopback, the image's HEALTHCHECK command passes, /healthz and /metrics answer
# on the HTTP port, and the model's state survives a SIGTERM and a restart through the volume.
# Prints the image size. By hand only (the C++ build inside takes long): CI runs the cheap checks
# in tests/e2e/test_docker_*.py.
#   docker/make-base.sh && docker/build.sh
# BASE_IMAGE (default localhost/debian:bookworm-slim, from make-base.sh), IMAGE (default
# localhost/qcal-server:cpu), QCAL_CLI (the CLI outside the image; default build/qcal if built, else
# the image's own qcal in a second container). The entrypoint listens on 0.0.0.0:50051 and
# 0.0.0.0:9464 of this machine (buildah's chroot isolation shares the host's network): both
# ports must be free.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE_IMAGE=${BASE_IMAGE:-localhost/debian:bookworm-slim}
IMAGE=${IMAGE:-localhost/qcal-server:cpu}
B=(buildah --storage-driver vfs)
RUN=("${B[@]}" run --isolation chroot --network host)

fail() { echo "build: FAILED: $*" >&2; exit 1; }
"${B[@]}" inspect --type image "$BASE_IMAGE" >/dev/null 2>&1 ||
  fail "no image $BASE_IMAGE: run docker/make-base.sh first (or set BASE_IMAGE)"

start=$SECONDS
# --layers keeps the stages' layers, so a change to the runtime stage does not rebuild the C++.
"${B[@]}" bud --isolation chroot --format docker --layers --build-arg BASE_IMAGE="$BASE_IMAGE" \
  -f docker/Dockerfile.cpu -t "$IMAGE" .
echo "build: built $IMAGE in $((SECONDS - start)) s"

# The image's docker config, one word a line (buildah's --format templates have no json).
config_words() {
  "${B[@]}" inspect --type image "$IMAGE" | /usr/bin/python3 -c '
import json, sys
config = json.load(sys.stdin)["Docker"]["config"]
for key in sys.argv[1:]:
    config = config[key]
print("\n".join(config))' "$@"
}
mapfile -t ENTRYPOINT < <(config_words Entrypoint)
mapfile -t HEALTH < <(config_words Healthcheck Test)
[[ ${HEALTH[0]:-} == CMD ]] || fail "HEALTHCHECK is not in exec form: ${HEALTH[*]}"
HEALTH=("${HEALTH[@]:1}")
echo "build: entrypoint ${ENTRYPOINT[*]}; healthcheck ${HEALTH[*]}"

WORK=$(mktemp -d)
chmod 0755 "$WORK"  # the image's CLI (user qcal) reads x.npy through a mount
SERVER_CTR="" CLI_CTR="" RUNNER=""
cleanup() {
  stop_server || true
  for c in "$SERVER_CTR" "$CLI_CTR"; do [[ -z $c ]] || "${B[@]}" rm "$c" >/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
SERVER_CTR=$("${B[@]}" from "$IMAGE")
CLI_CTR=$("${B[@]}" from "$IMAGE")

# The image's user owns the volume, as a fresh Docker volume would be (from the image's folder).
uid=$("${RUN[@]}" "$CLI_CTR" -- id -u)
[[ $uid != 0 ]] || fail "the image runs as root"
mkdir "$WORK/data" && chown "$uid:$uid" "$WORK/data"

HOST_CLI=${QCAL_CLI:-}
[[ -n $HOST_CLI || ! -x build/qcal ]] || HOST_CLI=build/qcal
if [[ -n $HOST_CLI ]]; then
  cli() { "$HOST_CLI" --server 127.0.0.1:50051 "$@"; }
else  # the image's own CLI, in a second container; files reach it through a read-only mount
  cli() { "${RUN[@]}" -v "$WORK:/mnt/host:ro" "$CLI_CTR" -- qcal --server 127.0.0.1:50051 "$@"; }
fi

start_server() {
  "${RUN[@]}" -v "$WORK/data:/var/lib/qcal" "$SERVER_CTR" -- "${ENTRYPOINT[@]}" \
    >>"$WORK/server.log" 2>&1 &
  RUNNER=$!
  for _ in $(seq 60); do
    cli --timeout 1 models >/dev/null 2>&1 && return 0
    kill -0 "$RUNNER" 2>/dev/null || { cat "$WORK/server.log" >&2; fail "qcal-server exited"; }
    sleep 0.5
  done
  cat "$WORK/server.log" >&2
  fail "qcal-server did not answer within 30 s"
}
# SIGTERM to qcal-server itself (a descendant of this script's buildah run), as docker stop sends.
stop_server() {
  [[ -n $RUNNER ]] || return 0
  local pids=("$RUNNER") server="" p child
  while ((${#pids[@]})) && [[ -z $server ]]; do
    p=${pids[0]} pids=("${pids[@]:1}")
    for child in $(ps -o pid= --ppid "$p"); do
      [[ $(ps -o comm= -p "$child" | tr -d ' ') == qcal-server ]] && server=$child
      pids+=("$child")
    done
  done
  kill -TERM "${server:-$RUNNER}"
  wait "$RUNNER" || true
  RUNNER=""
}

/usr/bin/python3 -c "import numpy as np
np.save('$WORK/x.npy', np.linspace(-3, 5, 4096, dtype=np.float32))"
amax() {
  cli amax docker-check --method max --format json | /usr/bin/python3 -c 'import json, sys
print(json.load(sys.stdin)["quantizers"]["conv1._input_quantizer"]["amax"])'
}

# Another server on the port would answer for the image's.
! cli --timeout 1 models >/dev/null 2>&1 || fail "something already answers on 127.0.0.1:50051"
start_server
echo "build: qcal-server runs in the image as uid $uid;" \
  "calibrating with ${HOST_CLI:-qcal in the image}"
cli create docker-check
if [[ -n $HOST_CLI ]]; then
  cli record docker-check conv1._input_quantizer "$WORK/x.npy"
else
  cli record docker-check conv1._input_quantizer /mnt/host/x.npy
fi
before=$(amax)
[[ $before == 5.0 ]] || fail "max amax $before, expected 5.0"
"${RUN[@]}" "$CLI_CTR" -- "${HEALTH[@]}" >/dev/null || fail "the HEALTHCHECK command failed"
# The HTTP side, from outside: /healthz and the metrics of the calibration above.
/usr/bin/python3 - <<'EOF' || fail "/healthz or /metrics on 127.0.0.1:9464"
import urllib.request
assert urllib.request.urlopen("http://127.0.0.1:9464/healthz", timeout=5).status == 200
metrics = urllib.request.urlopen("http://127.0.0.1:9464/metrics", timeout=5).read().decode()
assert 'model="docker-check"' in metrics, metrics[:2000]
EOF
echo "build: amax $before; HEALTHCHECK command passes; /healthz and /metrics answer on 9464"

stop_server
ls "$WORK/data" | grep -q . || fail "no state file in the volume after SIGTERM"
start_server
after=$(amax)
[[ $after == "$before" ]] || fail "after a restart the amax is $after, not $before"
echo "build: after SIGTERM and restart the volume restored the model (amax $after)"
stop_server

echo "build: OK; image size:"
"${B[@]}" images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$IMAGE"
