#!/usr/bin/env python3
"""Load run of issue 10 (item 7): TRAINERS trainers stream activations for DURATION seconds into
one model, then (a fresh server) into one model each. Each phase must end with 0 errors and with
the server's applied batches (GetModel statistics, per model) equal to what the clients were told
was applied (their sessions' applied_batches, from the servers' Record responses), elements too.

Per phase, one JSON line: batches recorded, applied (told / server), errors, the step latency
p50 / p99 / max (a step: record() of --batches-per-flush tensors, then flush(), which returns
once the server applied them; tests/e2e/load_run.py says exactly what is timed), the server's
Record-stream duration buckets (qcal_rpc_duration_seconds, a coarse cross-check), its peak RSS
(VmHWM of /proc/PID/status) and the load average before and after. Exits 1 when a check fails.
Trainers are threads of worker processes (--processes; default one process each).

    QCAL_BUILD_DIR=build /usr/bin/python3 bench/load.py                        # 64 x 60 s
    QCAL_BUILD_DIR=build /usr/bin/python3 bench/load.py --trainers 8 --duration 5   # CI size
"""
import argparse
import json
import os
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
BUILD = pathlib.Path(os.environ.get("QCAL_BUILD_DIR", REPO / "build")).resolve()
sys.path[:0] = [str(BUILD / "python"), str(REPO / "tests" / "e2e")]

import load_run  # noqa: E402
from restartable_server import RestartableServer  # noqa: E402


def shape(text):
    return [int(d) for d in text.lower().split("x")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trainers", type=int, default=64)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per phase")
    parser.add_argument("--shape", type=shape, default=shape("8x64x28x28"),
                        help="activation tensor shape, e.g. 8x64x28x28 (the default)")
    parser.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    parser.add_argument("--interval", type=float, default=0.0,
                        help="seconds between a trainer's steps (0: closed loop, as fast as "
                             "the server acknowledges)")
    parser.add_argument("--batches-per-flush", type=int, default=1)
    parser.add_argument("--processes", type=int, default=None,
                        help="worker processes the trainers are spread over (default: one each)")
    parser.add_argument("--phases", default="one,each",
                        help="'one' (all trainers into one model), 'each' (one model each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("server_args", nargs="*", help="extra qcal-server flags (after --)")
    args = parser.parse_args()

    failed = False
    for phase in args.phases.split(","):
        models = ["load"] if phase == "one" else [f"load-{i}" for i in range(args.trainers)]
        server = RestartableServer(BUILD / "qcal-server", *args.server_args)
        with server:
            result = load_run.run_phase(
                server, trainers=args.trainers, models=models, duration=args.duration,
                shape=args.shape, dtype=args.dtype, interval=args.interval,
                batches_per_flush=args.batches_per_flush, processes=args.processes,
                seed=args.seed)
        ok = (result["errors"] == 0 and not result["mismatched_models"]
              and result["applied_told"] == result["applied_server"] == result["recorded"])
        failed |= not ok
        print(json.dumps({"name": f"load_{phase}_model" + ("" if phase == "one" else "s"),
                          "ok": ok, **result}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
