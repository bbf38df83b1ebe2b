#!/usr/bin/env python3
"""Times /healthz of a qcal-server while idle connections are open (issue 8, defect 5).

Each probe is what a Kubernetes probe does: a new connection, GET /healthz, read the answer,
close. The probes run once with no idle connection and once with IDLE of them open (half send
nothing, half a partial request, as a port scanner or a stuck client would). Prints one JSON line
per case, as bench/run.sh does: median, p99 and max in ms of the answered probes, failed probes
(not 200, or 10 s without a byte: a slow answer counts in max), and how many idle connections the
server still held open at the end.

    /usr/bin/python3 bench/healthz_idle.py                      # starts BUILD_DIR/qcal-server
    /usr/bin/python3 bench/healthz_idle.py --http 127.0.0.1:9464 [--idle 100] [--probes 200]
"""
import argparse
import json
import os
import pathlib
import socket
import statistics
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from qcal_server_process import QcalServerProcess  # noqa: E402

# Seconds a probe may take before it counts as failed (a Kubernetes probe's timeout is 1 s by
# default; this is far above it so a failure is a real stall, not a slow machine).
PROBE_TIMEOUT = 10


def probe(host, port):
    """Seconds for one GET /healthz on a new connection, or None when it did not answer 200."""
    start = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
    except OSError:
        return None
    elapsed = time.perf_counter() - start
    return elapsed if answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok\n") else None


def still_open(sock):
    sock.setblocking(False)
    try:
        sock.recv(1)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False


def run_case(host, port, idle_count, probes):
    idle = []
    for number in range(idle_count):
        sock = socket.create_connection((host, port), timeout=PROBE_TIMEOUT)
        if number % 2:
            sock.sendall(b"GET /heal" if number % 4 == 1 else b"GET /healthz HTTP/1.1\r\n")
        idle.append(sock)
    try:
        times = [probe(host, port) for _ in range(probes)]
        open_after = sum(still_open(sock) for sock in idle)
    finally:
        for sock in idle:
            sock.close()
    answered = sorted(t * 1000 for t in times if t is not None)
    p99 = answered[min(len(answered) - 1, int(0.99 * len(answered)))] if answered else None
    print(json.dumps({
        "name": f"healthz_idle_{idle_count}",
        "device": "cpu",
        "value": round(statistics.median(answered), 3) if answered else None,
        "unit": "ms",
        "p99": round(p99, 3) if p99 is not None else None,
        "max": round(answered[-1], 3) if answered else None,
        "probes": probes,
        "failed": probes - len(answered),
        "idle_open_after": open_after,
    }), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http", help="HOST:PORT of a running server's HTTP side; "
                        "default: start BUILD_DIR/qcal-server on 127.0.0.1:0")
    parser.add_argument("--idle", type=int, default=100, help="idle connections (default 100)")
    parser.add_argument("--probes", type=int, default=200, help="probes per case (default 200)")
    args = parser.parse_args()

    def bench(address):
        host, port = address.rsplit(":", 1)
        for idle_count in (0, args.idle):
            run_case(host.strip("[]"), int(port), idle_count, args.probes)

    if args.http:
        bench(args.http)
        return
    server_bin = pathlib.Path(os.environ.get("BUILD_DIR", REPO / "build")) / "qcal-server"
    if not server_bin.exists():
        sys.exit(f"{server_bin} is missing: build qcal-server, or pass --http HOST:PORT")
    with QcalServerProcess(server_bin, "--log-level", "warn") as server:
        bench(server.http_address)


if __name__ == "__main__":
    main()
