"""Kill -9 run (issue 10, item 7): clients stream while the server is killed with SIGKILL at
random moments and restarted on the same port with the same --data-dir; the final state must be
bit for bit that of an uninterrupted run, every batch counted exactly once.

Used by tests/e2e/test_kill9.py (8 clients, 5 kills, a short run in CI) and bench/kill9.py (longer
runs, more kills, several seeds).

The contract tested (calibration.proto: RecordRequest.session_id / sequence, RecordResponse
applied_sequence / durable_sequence, rpc Commit; README "What survives what"): each client session
numbers its batches; the server applies each sequence once and persists the last applied one per
session with the model's state (--data-dir, written every --commit-interval-seconds and on
Commit); the client library keeps every batch above the durable sequence, and after UNAVAILABLE
reconnects with backoff and resends them; the server drops those it already applied. So a kill
loses only what was not durable, and the clients send that again.

The run:
- a model with the mergeable layout (HISTOGRAM_LAYOUT_MERGEABLE: the state is a function of the
  multiset of values, so an uninterrupted run's state can be computed independently) and four
  quantizers: two histograms (2048 and 256 bins), a per-channel max and a per-tensor max;
- CLIENTS client processes (one session each) record BATCHES seeded batches each, paced over
  SECONDS, cycling through the quantizers; every FLUSH_EVERY batches they flush(), and every
  COMMIT_EVERY batches commit(), except: client 0 never commits before the end (the server's
  interval alone makes its data durable); client 1 neither flushes nor commits before the end,
  so its one stream stays open while the interval and the other clients' commits make its
  batches durable unbeknown to it: after a kill it resends batches the server already has
  (duplicates to drop); the last client sends pre-aggregated partial states (record_partial)
  instead of tensors, which carry sequences too;
- the killer (this process) sends SIGKILL at KILLS moments drawn from the seed, one in each
  equal slice of the first 90% of the streaming window, waits a random 0..MAX_DOWN seconds, and
  starts the server again on the same port and --data-dir;
- at the end every client flushes and commits; then the server's statistics, histograms and amax
  tables are compared with the expected state: every batch counted locally with
  qcal.count_partial and merged with qcal.merge_partial (the server's exact counting), and sent
  as merged partial states to a second server that was never killed. Then one more kill -9 and
  restart: the committed state must come back unchanged.
"""

import json
import os
import pathlib
import random
import subprocess
import sys
import time
import warnings

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
MODEL = "kill9"

# name, calibrator, num_bins / axis, tensor shape
QUANTIZERS = [
    {"name": "a._input_quantizer", "calibrator": "histogram", "num_bins": 2048},
    {"name": "b._input_quantizer", "calibrator": "histogram", "num_bins": 256},
    {"name": "a._weight_quantizer", "calibrator": "max", "axis": 0},
    {"name": "b._weight_quantizer", "calibrator": "max", "axis": None},
]
SHAPES = {
    "a._input_quantizer": (4, 16, 8, 8),
    "b._input_quantizer": (2, 8, 16, 16),
    "a._weight_quantizer": (16, 8, 3, 3),
    "b._weight_quantizer": (8, 16, 3, 3),
}
METHODS = [
    ("max", {}),
    ("entropy", {}),
    ("mse", {}),
    ("percentile", {"percentile": 99.99}),
]


def batch(seed, client, j):
    """(quantizer spec, float32 array) of client `client`'s batch j: normal values at a scale
    2^-4 .. 2^4 drawn per batch (so the histograms' bin width changes as data arrives), inputs
    ReLU'd (zeros), and now and then a NaN or an inf (counted as non-finite)."""
    spec = QUANTIZERS[j % len(QUANTIZERS)]
    rng = np.random.default_rng([seed, client, j])
    x = rng.standard_normal(SHAPES[spec["name"]], dtype=np.float32)
    x *= np.float32(2.0 ** rng.uniform(-4, 4))
    if spec["calibrator"] == "histogram":
        x = np.maximum(x, 0)
        if j % 13 == 0:
            x.flat[rng.integers(x.size)] = np.nan if j % 26 == 0 else np.inf
    return spec, x


def count(spec, x):
    import qcal

    if spec["calibrator"] == "histogram":
        return qcal.count_partial(x, "histogram", spec["num_bins"])
    return qcal.count_partial(x, "max", axis=spec["axis"])


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    if hasattr(value, "tolist"):
        return value.tolist()
    return repr(value)


# ---------------------------------------------------------------- client process


def client_main(config):
    """One client session: prints "ready", waits for "go" on stdin, streams, flushes and commits;
    prints one JSON line."""
    import qcal

    client = qcal.Client(config["address"], timeout=config["call_timeout"])
    session = client.model(MODEL, create=False)
    index = config["client"]
    partials = config["partials"]
    interval = config["seconds"] / config["batches"]
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.monotonic()
    sent = {q["name"]: 0 for q in QUANTIZERS}
    errors, commits = [], []
    final_commit = None
    try:
        for j in range(config["batches"]):
            due = start + j * interval
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            spec, x = batch(config["seed"], index, j)
            if partials:
                session.record_partial(spec["name"], count(spec, x))
            else:
                session.record(spec["name"], x)
            sent[spec["name"]] += 1
            if config["flush_every"] and (j + 1) % config["flush_every"] == 0:
                session.flush()
            if config["commit_every"] and (j + 1) % config["commit_every"] == 0:
                commits.append(_jsonable(session.commit()))
        session.flush()
        final_commit = _jsonable(session.commit())
    except qcal.QcalError as error:
        errors.append(f"{error.code}: {error.message}")
    print(json.dumps({
        "client": index,
        "sent": sent,
        "errors": errors,
        "commits": len(commits),
        "final_commit": final_commit,
        "stats": _jsonable(session.stats()),
        "seconds": round(time.monotonic() - start, 2),
    }), flush=True)


# ---------------------------------------------------------------- driver


def create_model(client):
    client.create(MODEL, quantizers=[dict(q) for q in QUANTIZERS],
                  histogram_layout="mergeable")


def expected_states(seed, clients, batches):
    """{quantizer: merged partial state} of every batch of every client, and the batch count."""
    import qcal

    merged, sent = {}, {q["name"]: 0 for q in QUANTIZERS}
    for c in range(clients):
        for j in range(batches):
            spec, x = batch(seed, c, j)
            state = count(spec, x)
            name = spec["name"]
            sent[name] += 1
            if name in merged:
                merged[name] = qcal.merge_partial(merged[name], state,
                                                  spec.get("num_bins", 2048))
            else:
                merged[name] = state
    return merged, sent


def observe(client):
    """What must be bit for bit the same as an uninterrupted run: the counters, each histogram
    (counts, float32 edges, abs_max, total, nonfinite) and the amax of METHODS as float32 bits."""
    import qcal

    session = client.model(MODEL, create=False)
    info = client.info(MODEL)
    result = {"counters": {q: (s["batches"], s["elements"], s["nonfinite"])
                           for q, s in sorted(info["quantizers"].items())}}
    for spec in QUANTIZERS:
        if spec["calibrator"] == "histogram":
            h = session.histogram(spec["name"])
            result[spec["name"]] = (h["counts"].tobytes().hex(), h["edges"].tobytes().hex(),
                                    np.float32(h["abs_max"]).tobytes().hex(), h["total"],
                                    h["nonfinite"])
    for method, args in METHODS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", qcal.QcalWarning)
            table = session.compute_amax(method=method, **args)["quantizers"]
        result[f"amax {method}"] = {
            q: np.asarray(e["amax"], dtype=np.float32).tobytes().hex()
            for q, e in sorted(table.items())}
    return result


def local_differences(server_view, merged, sent):
    """Where the server's state differs from the locally counted one (empty when equal):
    counters, histogram counts, abs_max, and the max calibrators' amax, exactly."""
    differences = []
    for spec in QUANTIZERS:
        name, state = spec["name"], merged[spec["name"]]
        batches, elements, nonfinite = server_view["counters"][name]
        if (batches, elements, nonfinite) != (sent[name], state["elements"], state["nonfinite"]):
            differences.append(
                f"{name}: server batches/elements/nonfinite {batches}/{elements}/{nonfinite}, "
                f"sent {sent[name]}/{state['elements']}/{state['nonfinite']}")
        if spec["calibrator"] == "histogram":
            counts_hex, _, abs_max_hex, _, _ = server_view[name]
            h = state["histogram"]
            if counts_hex != np.asarray(h["counts"], dtype=np.uint64).tobytes().hex():
                differences.append(f"{name}: histogram counts differ from the local count")
            if abs_max_hex != np.float32(h["abs_max"]).tobytes().hex():
                differences.append(f"{name}: abs_max differs from the local count")
        else:
            amax = np.asarray(state["max"]["amax"], dtype=np.float32).tobytes().hex()
            if server_view["amax max"][name] != amax:
                differences.append(f"{name}: amax differs from the local maximum")
    return differences


def answered(call, seconds=60):
    """call() once the restarted server answers: the first call on a new channel to a port whose
    previous process was killed can fail with UNAVAILABLE (a connection gRPC still held). Retries
    UNAVAILABLE for up to `seconds`; the checks' own calls are not what is tested here."""
    import qcal

    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except qcal.QcalError as error:
            if error.code != "UNAVAILABLE" or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def view_differences(expected, got):
    return sorted(str(k) for k in set(expected) | set(got) if expected.get(k) != got.get(k))


def check_final_state(server, server_bin, seed, clients, batches, durable, call_timeout,
                      problems):
    """Appends to `problems` where the killed server's final state differs from the local count
    or from an uninterrupted server's, or (durable: with --data-dir) changes over one more
    kill -9. Returns (batches sent, batches the server counted)."""
    import qcal

    from restartable_server import RestartableServer

    merged, sent = expected_states(seed, clients, batches)
    client = qcal.Client(server.address, timeout=call_timeout)
    got = answered(lambda: observe(client))
    problems += local_differences(got, merged, sent)

    # An uninterrupted run: the merged states into a server that is never killed.
    with RestartableServer(server_bin) as reference:
        ref_client = qcal.Client(reference.address, timeout=call_timeout)
        create_model(ref_client)
        session = ref_client.model(MODEL, create=False)
        for spec in QUANTIZERS:
            session.record_partial(spec["name"], merged[spec["name"]])
        session.flush()
        uninterrupted = observe(ref_client)
    for key in view_differences(uninterrupted, got):
        problems.append(f"{key} differs from the uninterrupted run")

    # What the last commits made durable survives one more kill -9 (with a --data-dir).
    if durable:
        server.kill9()
        server.start()
        client = qcal.Client(server.address, timeout=call_timeout)
        after = answered(lambda: observe(client))
        for key in view_differences(got, after):
            problems.append(f"{key} changed over a kill -9 after the final commits")
    return sum(sent.values()), sum(c[0] for c in got["counters"].values())


def run(server_bin, data_dir, *, clients=8, batches=240, seconds=16.0, kills=5, max_down=1.0,
        flush_every=8, commit_every=40, commit_interval=1, seed=1, python=None,
        call_timeout=120, log=print, server_args=None):
    """Runs the whole scenario; returns a dict: "problems" (empty when the run passed), the
    kills, the clients' reports and figures. server_args replaces the server's flags
    (default: --data-dir DATA_DIR --commit-interval-seconds COMMIT_INTERVAL)."""
    import qcal

    from restartable_server import RestartableServer

    problems = []
    if server_args is None:
        server_args = ["--data-dir", os.fspath(data_dir),
                       "--commit-interval-seconds", str(commit_interval)]
    server = RestartableServer(server_bin, *server_args)
    server.start()
    workers = []
    try:
        create_model(qcal.Client(server.address, timeout=call_timeout))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        for c in range(clients):
            config = dict(address=server.address, client=c, batches=batches, seconds=seconds,
                          flush_every=flush_every, commit_every=commit_every, seed=seed,
                          partials=(c == clients - 1 and clients > 2),
                          call_timeout=call_timeout)
            if c == 0:
                config.update(commit_every=0)
            elif c == 1 and clients > 2:
                config.update(flush_every=0, commit_every=0)
            workers.append(subprocess.Popen(
                [python or sys.executable, str(HERE / "kill9_run.py"), json.dumps(config)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env))
        for worker in workers:
            line = worker.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"a kill9 client did not start: {line!r}")

        rng = random.Random(seed)
        # One kill in each equal slice of the first 90% of the window, at a random point of the
        # slice's middle 80%: every kill lands while the (paced) clients still stream.
        slot = 0.9 * seconds / max(kills, 1)
        kill_at = [slot * (k + 0.1 + 0.8 * rng.random()) for k in range(kills)]
        downs = [rng.uniform(0, max_down) for _ in range(kills)]
        start = time.monotonic()
        for worker in workers:
            worker.stdin.write("go\n")
            worker.stdin.flush()
        done_kills = []
        for at, down in zip(kill_at, downs):
            delay = start + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            streaming = sum(w.poll() is None for w in workers)
            status = server.kill9()
            time.sleep(down)
            server.start()
            done_kills.append({"at_s": round(time.monotonic() - start - down, 2),
                               "down_s": round(down, 2), "status": status,
                               "clients_streaming": streaming})
            log(f"kill -9 #{len(done_kills)} at {done_kills[-1]['at_s']} s, "
                f"{streaming} clients streaming, down {down:.2f} s")
        reports = []
        for worker in workers:
            out, _ = worker.communicate(timeout=seconds + 600)
            if worker.returncode != 0:
                problems.append(f"a client exited {worker.returncode}")
                continue
            reports.append(json.loads(out.strip().splitlines()[-1]))
        wall = time.monotonic() - start
        for report in reports:
            for error in report["errors"]:
                problems.append(f"client {report['client']}: {error}")
            if sum(report["sent"].values()) != batches:
                problems.append(f"client {report['client']} sent "
                                f"{sum(report['sent'].values())} of {batches} batches")
            # One sequence per record() call: the final commit makes all of them durable.
            final = report["final_commit"]
            if isinstance(final, dict) and "durable_sequence" in final:
                if final["durable_sequence"] != batches or final["applied_sequence"] != batches:
                    problems.append(f"client {report['client']}: final commit {final}, "
                                    f"expected applied = durable = {batches}")

        sent_total, counted = None, None
        try:
            sent_total, counted = check_final_state(server, server_bin, seed, clients, batches,
                                                    "--data-dir" in server_args, call_timeout,
                                                    problems)
        except qcal.QcalError as error:
            problems.append(f"checking the final state: {error.code}: {error.message}")
        totals = {key: sum(r["stats"].get(key, 0) for r in reports)
                  for key in ("reconnects", "resent_batches", "duplicate_batches")}
        return {
            "problems": problems,
            "kills": done_kills,
            **totals,
            "starts": server.starts,
            "clients": reports,
            "batches_sent": sent_total,
            "batches_counted": counted,
            "wall_s": round(wall, 2),
            "server_stderr_tail": server.stderr()[-2000:],
        }
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        server.stop()


if __name__ == "__main__":
    client_main(json.loads(sys.argv[1]))
