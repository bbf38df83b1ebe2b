#!/usr/bin/env python3
"""The long kill -9 run of issue 10 (tests/e2e/test_kill9.py runs one short seed in CI;
tests/e2e/kill9_run.py says what is run and checked): for each seed, CLIENTS client processes
stream BATCHES seeded batches each over SECONDS into a mergeable-layout model while qcal-server
(--data-dir, --commit-interval-seconds) is killed with SIGKILL KILLS times at seeded random
moments and restarted on the same port. The final histograms, counters and amax tables must
equal an uninterrupted run's bit for bit, and survive one more kill -9 after the final commits.
Prints one JSON line per seed (problems, kills, wall time) and a summary; exits 1 if any seed
failed.

    QCAL_BUILD_DIR=build /usr/bin/python3 bench/kill9.py --seeds 1-10 --kills 20 --seconds 60
"""
import argparse
import json
import os
import pathlib
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]
BUILD = pathlib.Path(os.environ.get("QCAL_BUILD_DIR", REPO / "build")).resolve()
sys.path[:0] = [str(BUILD / "python"), str(REPO / "tests" / "e2e")]

import kill9_run  # noqa: E402


def seed_list(text):
    seeds = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds += list(range(int(lo), int(hi or lo) + 1))
    return seeds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=seed_list, default=seed_list("1-5"))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batches", type=int, default=1200, help="batches per client")
    parser.add_argument("--seconds", type=float, default=60.0, help="streaming window")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--max-down", type=float, default=2.0,
                        help="the server stays down a random 0..MAX_DOWN seconds per kill")
    parser.add_argument("--flush-every", type=int, default=8)
    parser.add_argument("--commit-every", type=int, default=40)
    parser.add_argument("--commit-interval", default="1",
                        help="qcal-server --commit-interval-seconds")
    args = parser.parse_args()

    failed = 0
    for seed in args.seeds:
        with tempfile.TemporaryDirectory(prefix="qcal-kill9-") as tmp:
            result = kill9_run.run(
                BUILD / "qcal-server", pathlib.Path(tmp) / "data", clients=args.clients,
                batches=args.batches, seconds=args.seconds, kills=args.kills,
                max_down=args.max_down, flush_every=args.flush_every,
                commit_every=args.commit_every, commit_interval=args.commit_interval,
                seed=seed, log=lambda line: print(line, file=sys.stderr, flush=True))
        ok = not result["problems"]
        failed += not ok
        print(json.dumps({
            "name": "kill9", "seed": seed, "ok": ok, "problems": result["problems"][:10],
            "kills": len(result["kills"]), "starts": result["starts"],
            "reconnects": result["reconnects"], "resent_batches": result["resent_batches"],
            "duplicate_batches": result["duplicate_batches"],
            "batches_sent": result["batches_sent"], "batches_counted": result["batches_counted"],
            "wall_s": result["wall_s"],
        }), flush=True)
        if not ok:
            print(result["server_stderr_tail"], file=sys.stderr)
    print(json.dumps({"name": "kill9_summary", "seeds": len(args.seeds),
                      "failed": failed}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
