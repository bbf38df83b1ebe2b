"""Load run (issue 10, item 7): many trainers stream into a real qcal-server at once, and every
batch the clients were told was applied must be in the server's statistics, with no error.

Used by tests/e2e/test_load.py (a short run in CI: a few trainers for a few seconds, no timed
assertion) and bench/load.py (64 trainers for 60 s; the figures go to bench/README.md).

Each trainer is a thread of a worker process (`--processes`; one process per trainer by default,
so that 64 trainers are not 64 threads of one interpreter taking turns at its lock), with its own
qcal.Client (its own connection) and ModelSession. A step records `batches_per_flush` activation
tensors (quantizers layer0.._input_quantizer .. layer3, one after the other) and calls flush(),
which returns once the server has applied them. Latency is measured per step, from the step's
first record() call to flush() returning: with one batch a step (the default), the time from
handing a batch to the library until the server acknowledged it applied, connection reuse and a
new Record stream per flush included. Trainers run closed-loop (the next step starts at once)
unless `interval` paces them (step k is due at k * `interval` seconds, as training steps would
be; a step that is late starts at once).

The server also reports qcal_rpc_duration_seconds{method="Record"} (one Record stream per flush),
in buckets a factor of 4 apart: its bucket counts are returned as a coarse cross-check.
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import threading
import time
import traceback
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
LAYERS = 4


def quantizer(index):
    return f"layer{index % LAYERS}._input_quantizer"


# ---------------------------------------------------------------- worker process (trainers)


def _trainer(config, index, go, result):
    import numpy as np

    import qcal

    rng = np.random.default_rng([config["seed"], index])
    dtype = np.dtype(config["dtype"])
    # A few distinct activations, reused in turn, so generating data costs nothing in the loop.
    # ReLU'd normal data at scales 2^-2 .. 2^2, as a conv input after an activation.
    tensors = [
        np.maximum(rng.standard_normal(config["shape"], dtype=np.float32) * 2.0 ** (i - 2), 0)
        .astype(dtype)
        for i in range(LAYERS)
    ]
    client = qcal.Client(config["address"], timeout=120)
    session = client.model(config["models"][index % len(config["models"])], create=False)
    latencies, errors, recorded = [], [], 0
    go.wait()
    start = time.monotonic()
    end = start + config["duration"]
    step = 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if config["interval"] > 0:
            due = start + step * config["interval"]
            if due > now:
                time.sleep(due - now)
                if time.monotonic() >= end:
                    break
        t0 = time.perf_counter()
        try:
            for b in range(config["batches_per_flush"]):
                k = step * config["batches_per_flush"] + b
                session.record(quantizer(k), tensors[k % LAYERS])
                recorded += 1
            session.flush()
            latencies.append(time.perf_counter() - t0)
        except qcal.QcalError as error:
            errors.append(f"{error.code}: {error.message}")
        step += 1
    try:
        session.flush()
    except qcal.QcalError as error:
        errors.append(f"{error.code}: {error.message}")
    stats = session.stats()
    result.update(
        index=index,
        model=session.name,
        recorded=recorded,
        applied=stats["applied_batches"],
        applied_elements=stats["applied_elements"],
        elements_per_batch=int(np.prod(config["shape"])),
        dropped=stats["dropped_batches"],
        errors=errors,
        latencies=latencies,
        seconds=time.monotonic() - start,
    )


def _guarded_trainer(config, index, go, result):
    try:
        _trainer(config, index, go, result)
    except BaseException:  # reported to the driver, which fails the run with it
        go.wait()
        result.clear()
        result.update(index=index, crash=traceback.format_exc())


def worker_main(config):
    """Runs config["trainers"] (indices) as threads; prints "ready", waits for "go" on stdin,
    prints one JSON line of results."""
    go = threading.Event()
    results = [{} for _ in config["trainers"]]
    threads = [
        threading.Thread(target=_guarded_trainer, args=(config, index, go, result))
        for index, result in zip(config["trainers"], results)
    ]
    for thread in threads:
        thread.start()
    print("ready", flush=True)
    sys.stdin.readline()
    go.set()
    for thread in threads:
        thread.join()
    print(json.dumps(results), flush=True)


# ---------------------------------------------------------------- driver


def peak_rss_bytes(pid):
    """VmHWM of a process (its peak resident set), in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def cpu_seconds(pid):
    """User + system CPU time of a process so far, in seconds (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def record_duration_buckets(http_address):
    """{le: cumulative count} of qcal_rpc_duration_seconds{method="Record"} from /metrics."""
    with urllib.request.urlopen(f"http://{http_address}/metrics", timeout=30) as response:
        text = response.read().decode()
    buckets = {}
    pattern = re.compile(
        r'^qcal_rpc_duration_seconds_bucket\{(?=[^}]*method="Record")[^}]*le="([^"]+)"\} (\S+)$',
        re.M,
    )
    for le, count in pattern.findall(text):
        buckets[le] = int(float(count))
    return buckets


def bucket_quantile(buckets, q):
    """The upper bound of the bucket holding quantile q (a bound, not an estimate)."""
    items = sorted(((float(le), n) for le, n in buckets.items()), key=lambda item: item[0])
    total = items[-1][1] if items else 0
    for bound, n in items:
        if total and n >= q * total:
            return bound
    return None


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def run_phase(server, *, trainers, models, duration, shape, dtype="float16", interval=0.0,
              batches_per_flush=1, processes=None, seed=0, python=None):
    """Streams from `trainers` trainers into `models` model names (trainer i into models[i %
    len]) of the running QcalServerProcess `server` for `duration` seconds; returns a dict of
    counts, checks and figures (see bench/load.py). The models are created here."""
    import qcal

    client = qcal.Client(server.address, timeout=120)
    for name in models:
        client.create(name, histogram_layout="mergeable")
    processes = min(processes or trainers, trainers)
    config = dict(
        address=server.address,
        models=list(models),
        duration=duration,
        shape=list(shape),
        dtype=dtype,
        interval=interval,
        batches_per_flush=batches_per_flush,
        seed=seed,
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    workers = []
    for p in range(processes):
        worker_config = dict(config, trainers=list(range(p, trainers, processes)))
        workers.append(
            subprocess.Popen(
                [python or sys.executable, str(HERE / "load_run.py"), json.dumps(worker_config)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
        )
    for worker in workers:
        line = worker.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"a load worker did not start: {line!r}")
    load_before = os.getloadavg()
    cpu_before = cpu_seconds(server.pid)
    started = time.monotonic()
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    results = []
    for worker in workers:
        out, _ = worker.communicate(timeout=duration + 600)
        if worker.returncode != 0:
            raise RuntimeError(f"a load worker failed (exit {worker.returncode})")
        results += json.loads(out.strip().splitlines()[-1])
    for r in results:
        if "crash" in r:
            raise RuntimeError(f"load trainer {r['index']} failed:\n{r['crash']}")
    wall = time.monotonic() - started
    server_cpu = cpu_seconds(server.pid) - cpu_before

    server_batches = {}
    server_elements = {}
    for name in models:
        info = client.info(name)
        server_batches[name] = sum(q["batches"] for q in info["quantizers"].values())
        server_elements[name] = sum(q["elements"] for q in info["quantizers"].values())
    told = {name: 0 for name in models}
    told_elements = {name: 0 for name in models}
    for r in results:
        told[r["model"]] += r["applied"]
        told_elements[r["model"]] += r["applied_elements"]
    latencies = sorted(x for r in results for x in r["latencies"])
    errors = [e for r in results for e in r["errors"]]
    buckets = record_duration_buckets(server.http_address)
    recorded = sum(r["recorded"] for r in results)
    elements = sum(r["recorded"] * r["elements_per_batch"] for r in results)
    itemsize = 2 if dtype in ("float16", "bfloat16") else 4
    streamed = max(r["seconds"] for r in results)
    return {
        "trainers": trainers,
        "processes": processes,
        "models": len(models),
        "duration_s": duration,
        "wall_s": round(wall, 2),
        "streamed_s": round(streamed, 2),
        "shape": list(shape),
        "dtype": dtype,
        "interval_s": interval,
        "batches_per_flush": batches_per_flush,
        "recorded": recorded,
        "applied_told": sum(told.values()),
        "applied_server": sum(server_batches.values()),
        "mismatched_models": sorted(n for n in models if told[n] != server_batches[n]
                                    or told_elements[n] != server_elements[n]),
        "dropped": sum(r["dropped"] for r in results),
        "errors": len(errors),
        "first_errors": errors[:5],
        "steps": len(latencies),
        # Over the trainers' longest loop (the last step may end after `duration`).
        "batches_per_s": round(recorded / streamed, 1),
        "mb_per_s": round(elements * itemsize / streamed / 1e6, 1),
        "latency_p50_ms": None if not latencies else round(percentile(latencies, 0.50) * 1e3, 2),
        "latency_p99_ms": None if not latencies else round(percentile(latencies, 0.99) * 1e3, 2),
        "latency_max_ms": None if not latencies else round(latencies[-1] * 1e3, 2),
        "server_record_streams": max(buckets.values()) if buckets else 0,
        "server_record_p50_le_s": bucket_quantile(buckets, 0.50),
        "server_record_p99_le_s": bucket_quantile(buckets, 0.99),
        "server_cpu_s": round(server_cpu, 1),
        "server_peak_rss_mb": round(peak_rss_bytes(server.pid) / 2**20, 1),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }


if __name__ == "__main__":
    worker_main(json.loads(sys.argv[1]))
