"""Model-affine routing run (issue 11, item 3): what tests/e2e/test_routing.py's clients send and
how their tables are read. Run as a script, it is one client process.

Every model holds the same two quantizers, with the mergeable histogram layout, so that its
state depends only on the multiset of batches it received (not on their order or split across
clients and replicas) and its amax tables can be compared bit for bit with a single server's.
Model k's batch j is a function of (k, j) alone. Client c of C sends, to every model, the batches
j with j % C == c: each model's data is split across all clients, and each client streams into
every model (one session per model) at once.
"""

import json
import sys
import time
import warnings

import numpy as np

QUANTIZERS = [
    {"name": "a._input_quantizer", "calibrator": "histogram", "num_bins": 512},
    {"name": "a._weight_quantizer", "calibrator": "max", "axis": 0},
]
SHAPES = {"a._input_quantizer": (4, 64), "a._weight_quantizer": (8, 16)}
METHODS = [("max", {}), ("entropy", {}), ("mse", {}), ("percentile", {"percentile": 99.9})]


def batch(k, j):
    """(quantizer name, float32 array) of model k's batch j: normal values at a scale drawn per
    batch (so the histogram's bin width grows as data comes), inputs ReLU'd."""
    name = QUANTIZERS[j % len(QUANTIZERS)]["name"]
    rng = np.random.default_rng([k, j])
    x = rng.standard_normal(SHAPES[name], dtype=np.float32)
    x *= np.float32(2.0 ** rng.uniform(-3, 3))
    if name.endswith("_input_quantizer"):
        x = np.maximum(x, 0)
    return name, x


def create(client, name):
    client.create(name, quantizers=[dict(q) for q in QUANTIZERS], histogram_layout="mergeable")


def tables(client, name):
    """{method: {quantizer: amax as float32 bytes, hex}} and the counters {quantizer: (batches,
    elements)} of a model."""
    import qcal

    session = client.model(name, create=False)
    result = {"counters": {q: (s["batches"], s["elements"])
                           for q, s in sorted(client.info(name)["quantizers"].items())}}
    for method, args in METHODS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", qcal.QcalWarning)
            table = session.compute_amax(method=method, **args)["quantizers"]
        result[method] = {q: np.asarray(e["amax"], dtype=np.float32).tobytes().hex()
                          for q, e in sorted(table.items())}
    return result


def client_main(config):
    """One client process: prints "ready" and waits for a line on stdin; sends its share of
    every model's batches round by round (round r: batch client + r * clients of each model);
    with config["pause"], after the first round waits until every session has written its
    batches to its open Record stream, prints "paused" and waits for another line; then flushes
    and commits each session and prints one JSON line: errors, and each model's session stats."""
    import qcal

    client = qcal.Client(config["address"], timeout=config["call_timeout"])
    sessions = {name: client.model(name, create=False,
                                   reconnect_deadline=config["reconnect_deadline"])
                for _, name in config["models"]}
    rounds = range(config["client"], config["batches"], config["clients"])
    print("ready", flush=True)
    sys.stdin.readline()
    errors = []
    try:
        for r, j in enumerate(rounds):
            if r == 1 and config["pause"]:
                while any(s.stats()["queued_batches"] for s in sessions.values()):
                    time.sleep(0.01)
                print("paused", flush=True)
                sys.stdin.readline()
            for k, name in config["models"]:
                sessions[name].record(*batch(k, j))
        for session in sessions.values():
            session.flush()
            session.commit()
    except qcal.QcalError as error:
        errors.append(f"{error.code}: {error.message}")
    print(json.dumps({
        "client": config["client"],
        "errors": errors,
        "stats": {name: {key: int(value) for key, value in session.stats().items()}
                  for name, session in sessions.items()},
    }), flush=True)


if __name__ == "__main__":
    client_main(json.loads(sys.argv[1]))
