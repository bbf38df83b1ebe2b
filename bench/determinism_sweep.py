#!/usr/bin/env python3
"""The long sweep of the determinism property (tests/e2e/test_determinism.py runs a few seeds in
CI): for every seed, the dataset of tests/e2e/determinism_cases.py (bigger here) is streamed raw,
in order, into a mergeable-layout model on server A; then each variant must give the same
histograms, counters and amax tables (7 method settings) bit for bit:
  shuffled   the values shuffled and re-batched, one raw client;
  clients    split over 1..16 concurrent clients (raw / aggregate / local partials / mixed);
  servers    split over servers A and B (each with 1..16 clients), both states loaded and merged
             into a model on server C (every 5th seed through `qcal state load --merge`);
  roundtrip  the baseline saved and loaded on server B.
Prints one JSON line per seed and a summary line; exits 1 if any variant differed.

    QCAL_BUILD_DIR=build /usr/bin/python3 bench/determinism_sweep.py --seeds 1-50 --size 40000
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
BUILD = pathlib.Path(os.environ.get("QCAL_BUILD_DIR", REPO / "build")).resolve()
sys.path[:0] = [str(BUILD / "python"), str(REPO / "tests" / "e2e")]

import numpy as np  # noqa: E402

import determinism_cases as cases  # noqa: E402
import qcal  # noqa: E402
from qcal_server_process import QcalServerProcess  # noqa: E402


def seed_list(text):
    seeds = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds += list(range(int(lo), int(hi or lo) + 1))
    return seeds


def cli_load(address, name, path, merge):
    args = [str(BUILD / "qcal"), "--server", address, "state", "load", name, str(path)]
    subprocess.run(args + (["--merge"] if merge else []), check=True, capture_output=True)


def sweep_seed(seed, size, servers, tmp):
    (addr_a, a), (addr_b, b), (addr_c, c) = servers
    rng = np.random.default_rng([seed, 1000])
    dataset = cases.make_dataset(seed, size)
    base = f"s{seed}-baseline"
    cases.create(a, base)
    cases.record_raw(a, base, dataset)
    expected = cases.observe(a, base)
    failed = {}
    details = {}

    name = f"s{seed}-shuffled"
    cases.create(a, name)
    cases.record_raw(a, name, cases.shuffled_and_rebatched(rng, dataset))
    failed["shuffled"] = cases.differences(expected, cases.observe(a, name))

    name = f"s{seed}-clients"
    cases.create(a, name)
    modes = cases.run_clients(addr_a, name, cases.shuffled_and_rebatched(rng, dataset), rng)
    details["clients"] = modes
    failed["clients"] = cases.differences(expected, cases.observe(a, name))

    name = f"s{seed}-servers"
    batches = cases.shuffled_and_rebatched(rng, dataset)
    cut = int(rng.integers(0, len(batches) + 1))
    for (address, client), part in (((addr_a, a), batches[:cut]), ((addr_b, b), batches[cut:])):
        cases.create(client, name)
        cases.run_clients(address, name, part, rng)
    if seed % 5 == 0:
        for server, (address, client) in (("a", (addr_a, a)), ("b", (addr_b, b))):
            client.save_state(name, tmp / f"{name}-{server}.qcalstate")
        cli_load(addr_c, name, tmp / f"{name}-a.qcalstate", merge=False)
        cli_load(addr_c, name, tmp / f"{name}-b.qcalstate", merge=True)
        details["servers"] = "cli"
    else:
        c.load_state(name, a.save_state(name))
        c.load_state(name, b.save_state(name), merge=True)
        details["servers"] = "python"
    failed["servers"] = cases.differences(expected, cases.observe(c, name))

    name = f"s{seed}-roundtrip"
    b.load_state(name, a.save_state(base))
    failed["roundtrip"] = cases.differences(expected, cases.observe(b, name))

    for client, names in ((a, ("baseline", "shuffled", "clients", "servers")),
                          (b, ("servers", "roundtrip")), (c, ("servers",))):
        for n in names:
            client.delete(f"s{seed}-{n}")
    return failed, details, sum(x.size for _, x in dataset), len(dataset)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=seed_list, default=seed_list("1-50"),
                        help="seeds, e.g. 1-50 or 3,7,10-12 (default 1-50)")
    parser.add_argument("--size", type=int, default=40000,
                        help="values per histogram quantizer and seed (default 40000)")
    args = parser.parse_args()
    server_bin = BUILD / "qcal-server"
    start = time.perf_counter()
    bad = 0
    with QcalServerProcess(server_bin) as pa, QcalServerProcess(server_bin) as pb, \
            QcalServerProcess(server_bin) as pc, tempfile.TemporaryDirectory() as tmp:
        servers = [(p.address, qcal.Client(p.address, timeout=300)) for p in (pa, pb, pc)]
        for seed in args.seeds:
            t = time.perf_counter()
            failed, details, values, batches = sweep_seed(seed, args.size, servers,
                                                          pathlib.Path(tmp))
            ok = not any(failed.values())
            bad += not ok
            print(json.dumps({"seed": seed, "ok": ok, "values": values, "batches": batches,
                              "failed": {k: v for k, v in failed.items() if v}, **details,
                              "seconds": round(time.perf_counter() - t, 2)}), flush=True)
    print(json.dumps({"name": "determinism_sweep", "seeds": len(args.seeds), "size": args.size,
                      "failed_seeds": bad, "seconds": round(time.perf_counter() - start, 1)}),
          flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
