"""The determinism property of mergeable-layout models, shared by tests/e2e/test_determinism.py
(a few seeds in CI) and bench/determinism_sweep.py (many seeds, bigger data).

A dataset is a list of (quantizer, float32 array) batches per seed. The baseline is one client
streaming them raw, in order, into a mergeable-layout model; every variant (shuffled and
re-batched, split over 1..16 concurrent clients sending raw / pre-aggregated / mixed, two servers
merged through state files, a save/load round trip) must give the same `observe()` bit for bit:
every histogram (counts, edges, abs_max, total, nonfinite), every quantizer's element and
non-finite counters, and the amax table of every method in METHODS.

The data holds the edge cases on purpose: all-zero first batches, NaN and +-inf, one huge outlier
(1e30) arriving late (so every earlier state must coarsen to it), values exactly at bin edges
i * 2^k (of the final state's k and of finer ones), and a quantizer whose values and max are
subnormal (rotating between a max that needs k = -149 and one above it).
"""

import threading
import warnings

import numpy as np

import qcal

GAUSS = "gauss._input_quantizer"  # histogram 256 bins: normal values, all-zero first batches
HEAVY = "heavy._input_quantizer"  # histogram 512 bins, skip_zeros: laplace, one 1e30 outlier
EDGES = "edges._input_quantizer"  # histogram 128 bins: values exactly at bin edges i * 2^k
SUBNORMAL = "sub._input_quantizer"  # histogram 256 bins: subnormal values and max
TENSOR_MAX = "tmax._input_quantizer"  # max per tensor
CHANNEL_MAX = "cmax._weight_quantizer"  # max per channel on axis 1
CHANNELS = 7

QUANTIZERS = [
    {"name": GAUSS, "num_bins": 256},
    {"name": HEAVY, "num_bins": 512, "skip_zeros": True},
    {"name": EDGES, "num_bins": 128},
    {"name": SUBNORMAL, "num_bins": 256},
    {"name": TENSOR_MAX, "calibrator": "max", "axis": None},
    {"name": CHANNEL_MAX, "calibrator": "max", "axis": 1},
]
SPECS = {q["name"]: q for q in QUANTIZERS}
HISTOGRAMS = [q["name"] for q in QUANTIZERS if q.get("calibrator", "histogram") == "histogram"]

# (method, arguments): the four methods, and entropy / mse with their search options. The
# smallest state (SUBNORMAL at k = -149) has 101 bins, so start_bin stays below that.
METHODS = [
    ("max", {}),
    ("entropy", {"start_bin": 64}),
    ("mse", {"start_bin": 64}),
    ("percentile", {"percentile": 99.99}),
    ("entropy", {"start_bin": 32, "stride": 3}),
    ("mse", {"start_bin": 40, "stride": 2}),
    ("percentile", {"percentile": 50.0}),
]


def _split(rng, values, mean_size):
    """`values` (rows on axis 0) cut at random points into batches of about mean_size rows."""
    n = len(values)
    cuts = np.sort(rng.choice(np.arange(1, n), size=max(0, min(n - 1, n // mean_size)),
                              replace=False)) if n > 1 else []
    return [part for part in np.split(values, cuts) if len(part)]


def make_dataset(seed, size=4000):
    """[(quantizer, float32 array)] in recording order, about `size` values per quantizer."""
    rng = np.random.default_rng(seed)
    batches = {}

    # All-zero first batches, then normals of a growing then shrinking scale, NaN and +-inf.
    zeros = [np.zeros(int(rng.integers(1, 50)), np.float32) for _ in range(int(rng.integers(1, 4)))]
    gauss = (rng.standard_normal(size) * 2.0 ** rng.uniform(-4, 6, size)).astype(np.float32)
    gauss[rng.choice(size, 6, replace=False)] = [np.nan, np.inf, -np.inf, np.nan, 0.0, -0.0]
    batches[GAUSS] = zeros + _split(rng, gauss, int(rng.integers(50, 800)))

    # Laplace with one huge outlier in the last batch; zeros skipped (some are there).
    heavy = rng.laplace(0.0, 3.0, size).astype(np.float32)
    heavy[rng.choice(size, size // 50, replace=False)] = 0.0
    heavy_batches = _split(rng, heavy, int(rng.integers(50, 800)))
    heavy_batches[-1] = np.append(heavy_batches[-1], np.float32(-1e30 if seed % 2 else 1e30))
    batches[HEAVY] = heavy_batches

    # Exact bin edges: the final max is 255 * 2^s (k = s for 128 bins: 256 bins), so i * 2^s are
    # edges of the final state; the first batches have smaller maxima (finer k) and hold their own
    # edges i * 2^(s - j), which the merges must land in the right coarser bins.
    s = int(rng.integers(-20, 20))
    finer = [np.float32(rng.integers(0, 256, 40) * 2.0 ** (s - j)) for j in range(1, 6)]
    final = (rng.integers(0, 256, size) * 2.0 ** s).astype(np.float32)
    final[0] = 255 * 2.0**s
    signs = np.where(rng.random(size) < 0.5, -1, 1).astype(np.float32)
    batches[EDGES] = finer[::-1] + _split(rng, final * signs, int(rng.integers(50, 800)))

    # Subnormals: every value below 2^-126; the max either 100 * 2^-149 (k clamps at -149: 101
    # bins) or up to about 1e-39 (k above -149).
    top = 100 if seed % 2 == 0 else int(rng.integers(1 << 19, 1 << 23))
    sub = (rng.integers(0, top, size) * 2.0**-149).astype(np.float32)
    sub[0] = np.float32(top * 2.0**-149)
    sub *= np.where(rng.random(size) < 0.5, -1, 1).astype(np.float32)
    batches[SUBNORMAL] = _split(rng, sub, int(rng.integers(50, 800)))

    tmax = rng.standard_normal(size // 4).astype(np.float32) * 10
    tmax[rng.choice(size // 4, 3, replace=False)] = [np.nan, np.inf, -np.inf]
    batches[TENSOR_MAX] = _split(rng, tmax, int(rng.integers(10, 300)))

    rows = max(4, size // (4 * CHANNELS))
    cmax = (rng.standard_normal((rows, CHANNELS)) * rng.uniform(0.1, 10, CHANNELS)).astype(
        np.float32)
    cmax[rng.integers(rows), rng.integers(CHANNELS)] = np.nan
    cmax[rng.integers(rows), rng.integers(CHANNELS)] = -np.inf
    batches[CHANNEL_MAX] = _split(rng, cmax, int(rng.integers(2, 40)))

    # Interleave quantizers, each in its own order (the first GAUSS batches stay all-zero).
    order = [q for q, parts in batches.items() for _ in parts]
    rng.shuffle(order)
    iters = {q: iter(parts) for q, parts in batches.items()}
    return [(q, next(iters[q])) for q in order]


def shuffled_and_rebatched(rng, dataset):
    """The same values per quantizer, permuted and cut into other batch sizes (the per-channel
    quantizer keeps its channel axis: its rows are permuted, each channel's values per row)."""
    result = []
    for q in SPECS:
        parts = [x for name, x in dataset if name == q]
        if q == CHANNEL_MAX:
            values = np.concatenate(parts, axis=0)
            values = np.stack([rng.permutation(values[:, c]) for c in range(CHANNELS)], axis=1)
        else:
            values = rng.permutation(np.concatenate(parts))
        mean = int(rng.integers(1, max(2, len(values) // 2)))
        result += [(q, part) for part in _split(rng, values, mean)]
    order = rng.permutation(len(result))
    return [result[i] for i in order]


def create(client, name):
    client.create(name, quantizers=QUANTIZERS, histogram_layout="mergeable")


def _target(q):
    spec = SPECS[q]
    if spec.get("calibrator", "histogram") == "histogram":
        return {"calibrator": "histogram", "num_bins": spec["num_bins"],
                "skip_zeros": spec.get("skip_zeros", False)}
    return {"calibrator": "max", "axis": spec["axis"]}


class LocalPartials:
    """Counts batches with qcal.count_partial and adds them with qcal.merge_partial on the
    caller's side, then sends one partial state per quantizer with record_partial."""

    def __init__(self, session):
        self.session = session
        self.states = {}

    def add(self, q, x):
        target = _target(q)
        if target["calibrator"] == "histogram":
            state = qcal.count_partial(x, "histogram", target["num_bins"], target["skip_zeros"])
            if q in self.states:
                state = qcal.merge_partial(self.states[q], state, target["num_bins"])
        else:
            state = qcal.count_partial(x, "max", axis=target["axis"])
            if q in self.states:
                state = qcal.merge_partial(self.states[q], state)
        self.states[q] = state

    def send(self):
        for q, state in self.states.items():
            self.session.record_partial(q, state)
        self.states = {}
        self.session.flush()


MODES = ("raw", "aggregate", "partial", "mixed")


def run_client(address, name, batches, mode, rng_seed):
    """One trainer: its own Client and session(s) on model `name`, recording `batches` as `mode`:
    raw tensors; the session's aggregate mode (random send_every); partial states counted and
    merged locally (qcal.count_partial / merge_partial, record_partial); or each batch at random
    one of those three."""
    rng = np.random.default_rng(rng_seed)
    client = qcal.Client(address, timeout=120)
    raw = client.model(name, create=False)
    send_every = [None, 1, 2, 5][int(rng.integers(4))]
    counted = client.model(name, create=False, aggregate=True, send_every=send_every)
    local = LocalPartials(client.model(name, create=False))
    for q, x in batches:
        how = mode if mode != "mixed" else MODES[int(rng.integers(3))]
        if how == "raw":
            raw.record(q, x)
        elif how == "aggregate":
            counted.record(q, x)
        else:
            local.add(q, x)
    local.send()
    counted.flush()
    raw.flush()


def run_clients(address, name, batches, rng):
    """Splits `batches` over k (1..16) concurrent clients, each with a random mode; returns the
    modes used."""
    k = int(rng.integers(1, 17))
    owner = rng.integers(0, k, len(batches))
    modes = [MODES[int(rng.integers(len(MODES)))] for _ in range(k)]
    errors = []

    def work(i):
        try:
            run_client(address, name, [b for b, o in zip(batches, owner) if o == i], modes[i],
                       int(rng_seeds[i]))
        except BaseException as error:  # noqa: BLE001 (re-raised below, on the caller's thread)
            errors.append(error)

    rng_seeds = rng.integers(0, 2**32, k)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(k)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return modes


def record_raw(client, name, batches):
    with client.model(name, create=False) as session:
        for q, x in batches:
            session.record(q, x)


def observe(client, name):
    """Everything that must not depend on how the data came (batch counts do: not here)."""
    session = client.model(name, create=False)
    info = client.info(name)
    result = {"layout": info["histogram_layout"],
              "counters": {q: (s["elements"], s["nonfinite"])
                           for q, s in sorted(info["quantizers"].items())}}
    for q in HISTOGRAMS:
        h = session.histogram(q)
        result[q] = (h["counts"].tobytes(), h["edges"].tobytes(),
                     np.float32(h["abs_max"]).tobytes(), h["total"], h["nonfinite"])
    for i, (method, args) in enumerate(METHODS):
        with warnings.catch_warnings():  # SUBNORMAL's amax is below float32's normal scales
            warnings.simplefilter("ignore", qcal.QcalWarning)
            table = session.compute_amax(method=method, **args)["quantizers"]
        result[(i, method)] = {q: np.asarray(e["amax"], dtype=np.float32).tobytes()
                               for q, e in sorted(table.items())}
    return result


def differences(expected, got):
    """The keys where two observe() results differ (empty when equal)."""
    return sorted(str(k) for k in set(expected) | set(got) if expected.get(k) != got.get(k))
