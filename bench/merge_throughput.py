#!/usr/bin/env python3
"""Merge throughput of the mergeable layout through a real qcal-server (started here, on loopback):

  partial_record_1_stream    partial histogram states (num_bins 2048: each holds 2049..4096 bins)
                             applied per second, sent by one session (one Record stream) with
                             record_partial, into one quantizer;
  partial_record_4_streams   the same from 4 sessions at once (4 Record streams), each into its
                             own quantizer;
  partial_record_4_streams_1q  4 sessions at once into the same quantizer (its lock serializes);
  loadstate_merge_50q        LoadState --merge of a saved model with 50 histogram quantizers
                             (2048 bins): quantizer states merged per second (and files/s).

The states are counted (qcal.count_partial) before the clock starts, from normal data of
varying scale, so consecutive merges change k (coarsen) as they would with real trainers. Times
are wall-clock from the first record_partial to flush() returning, best and median of --reps.
Prints one JSON line per figure, like bench/reference.py ("device": "cpu").

    QCAL_BUILD_DIR=build /usr/bin/python3 bench/merge_throughput.py [--states 2000] [--reps 5]
"""
import argparse
import json
import os
import pathlib
import sys
import threading
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
BUILD = pathlib.Path(os.environ.get("QCAL_BUILD_DIR", REPO / "build")).resolve()
sys.path[:0] = [str(BUILD / "python"), str(REPO / "tests" / "e2e")]

import numpy as np  # noqa: E402

import qcal  # noqa: E402
from qcal_server_process import QcalServerProcess  # noqa: E402

NUM_BINS = 2048


def emit(name, times, count, unit, **extra):
    rates = sorted(count / t for t in times)
    median = rates[len(rates) // 2]
    print(json.dumps({"name": name, "device": "cpu", "value": float("%.4g" % median),
                      "unit": unit, "best": float("%.4g" % rates[-1]), **extra}), flush=True)


def make_states(n, values, seed):
    rng = np.random.default_rng(seed)
    states = []
    for _ in range(n):
        x = (rng.standard_normal(values) * 2.0 ** rng.uniform(-2, 2)).astype(np.float32)
        states.append(qcal.count_partial(x, "histogram", NUM_BINS))
    return states


def send(client, model, quantizer, states):
    session = client.model(model, create=False)
    for state in states:
        session.record_partial(quantizer, state)
    session.flush()
    session.close()


def time_streams(client, model, quantizers, states):
    """Seconds for len(quantizers) sessions, at once, each sending `states` to its quantizer."""
    threads = [threading.Thread(target=send, args=(client, model, q, states)) for q in quantizers]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--states", type=int, default=2000, help="partial states per stream")
    parser.add_argument("--values", type=int, default=100000,
                        help="values each partial state is counted from")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--merges", type=int, default=20, help="LoadState merges per rep")
    args = parser.parse_args()

    states = make_states(args.states, args.values, 1)
    bins = [s["histogram"]["counts"].size for s in states]
    with QcalServerProcess(BUILD / "qcal-server") as server:
        client = qcal.Client(server.address, timeout=600)
        probe = client.model("probe", quantizers=[{"name": "q", "num_bins": NUM_BINS}])
        probe.record_partial("q", states[0])
        probe.flush()
        state_bytes = probe.stats()["applied_bytes"]
        probe.close()

        for name, quantizers in (("partial_record_1_stream", ["q0"]),
                                 ("partial_record_4_streams", ["q0", "q1", "q2", "q3"]),
                                 ("partial_record_4_streams_1q", ["q0"] * 4)):
            times = []
            for rep in range(args.reps):
                model = f"{name}-{rep}"
                client.create(model, quantizers=[{"name": q, "num_bins": NUM_BINS}
                                                 for q in sorted(set(quantizers))])
                times.append(time_streams(client, model, quantizers, states))
                info = client.info(model)["quantizers"]
                assert sum(s["batches"] for s in info.values()) == (
                    len(quantizers) * len(states)), info
                client.delete(model)
            emit(name, times, len(quantizers) * len(states), "states/s",
                 bins=[min(bins), max(bins)], state_bytes=state_bytes, streams=len(quantizers))

        # A saved model of 50 histogram quantizers, merged into another again and again.
        quantizers = [{"name": f"layer{i}._input_quantizer", "num_bins": NUM_BINS}
                      for i in range(50)]
        client.create("source", quantizers=quantizers)
        with client.model("source", create=False) as session:
            for i, q in enumerate(quantizers):
                session.record_partial(q["name"], states[i % len(states)])
        saved = client.save_state("source")
        times = []
        for rep in range(args.reps):
            target = f"target-{rep}"
            client.load_state(target, saved)
            start = time.perf_counter()
            for _ in range(args.merges):
                client.load_state(target, saved, merge=True)
            times.append(time.perf_counter() - start)
            total = client.info(target)["quantizers"]["layer0._input_quantizer"]
            assert total["elements"] == (args.merges + 1) * args.values, total
            client.delete(target)
        emit("loadstate_merge_50q", times, 50 * args.merges, "quantizer states/s",
             files_per_s=float("%.4g" % sorted(args.merges / t for t in times)[len(times) // 2]),
             file_bytes=len(saved))


if __name__ == "__main__":
    main()
