"""Determinism of the mergeable layout against real qcal-server processes, a few seeds (the long
sweep is bench/determinism_sweep.py, with the same cases from determinism_cases.py): the same
values give the same histograms and amax tables bit for bit, for every method, however they
arrive: shuffled and re-batched, split over 1..16 concurrent clients sending raw tensors,
pre-aggregated states or both, merged from two servers through state files (Python API and CLI),
saved and loaded. Plus counts near 2^60 sent as partial states, and the reference layout, which
lacks the property."""

import threading

import numpy as np
import pytest

import determinism_cases as cases
import qcal
from qcal_server_process import QcalServerProcess

SEEDS = [1, 2, 3]


@pytest.fixture(scope="module")
def servers(server_bin):
    """Three servers: A (baselines and most variants), B (the second half of a split), C (where
    states from A and B are merged)."""
    with QcalServerProcess(server_bin) as a, QcalServerProcess(server_bin) as b, \
            QcalServerProcess(server_bin) as c:
        yield [(p.address, qcal.Client(p.address, timeout=120)) for p in (a, b, c)]


@pytest.fixture(scope="module")
def baselines(servers):
    """{seed: (dataset, observe() of one client streaming it raw, in order)}."""
    address, client = servers[0]
    result = {}
    for seed in SEEDS:
        dataset = cases.make_dataset(seed)
        name = f"baseline-{seed}"
        cases.create(client, name)
        cases.record_raw(client, name, dataset)
        result[seed] = (dataset, cases.observe(client, name))
    return result


def check(expected, client, name):
    got = cases.observe(client, name)
    assert got["layout"] == "mergeable"
    assert not cases.differences(expected, got), cases.differences(expected, got)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_edge_cases_are_in_the_baseline(servers, baselines, seed):
    """The data holds what it claims to (else the properties below would prove less)."""
    _, client = servers[0]
    dataset, expected = baselines[seed]
    session = client.model(f"baseline-{seed}", create=False)
    gauss = [x for q, x in dataset if q == cases.GAUSS]
    assert not gauss[0].any()  # all-zero first batch
    h = session.histogram(cases.GAUSS)
    assert h["nonfinite"] == 4  # 2 NaN, +inf, -inf
    h = session.histogram(cases.HEAVY)
    assert np.float32(h["abs_max"]) == np.float32(1e30)
    assert h["total"] < sum(x.size for q, x in dataset if q == cases.HEAVY)  # zeros skipped
    # EDGES: 256 bins of width 2^s; after 5 batches on the edges of finer states (2^(s - j),
    # not all multiples of 2^s), every value sits on a lower edge of the final bins.
    h = session.histogram(cases.EDGES)
    width = h["edges"][1]
    assert h["counts"].size == 256 and np.all(h["edges"][:-1] == np.arange(256) * width)
    parts = [np.abs(x) for q, x in dataset if q == cases.EDGES]
    finer, final = np.concatenate(parts[:5]), np.concatenate(parts[5:])
    assert np.all(np.floor(final / width) * width == final) and final.max() == 255 * width
    assert np.any(np.floor(finer / width) * width != finer)
    # Subnormal values and max; on even seeds k is clamped at -149 (101 bins).
    h = session.histogram(cases.SUBNORMAL)
    assert 0 < h["abs_max"] < np.finfo(np.float32).tiny
    if seed % 2 == 0:
        assert h["counts"].size == 101 and h["edges"][1] == np.float32(2.0**-149)
    else:
        assert h["counts"].size > 256 and h["edges"][1] > np.float32(2.0**-149)
    counters = expected["counters"]
    assert counters[cases.TENSOR_MAX][1] == 3 and counters[cases.CHANNEL_MAX][1] == 2


@pytest.mark.parametrize("seed", SEEDS)
def test_shuffled_and_rebatched(servers, baselines, seed):
    _, client = servers[0]
    dataset, expected = baselines[seed]
    rng = np.random.default_rng([seed, 1])
    for trial in range(2):
        name = f"shuffled-{seed}-{trial}"
        cases.create(client, name)
        cases.record_raw(client, name, cases.shuffled_and_rebatched(rng, dataset))
        check(expected, client, name)


@pytest.mark.parametrize("seed", SEEDS)
def test_split_over_concurrent_clients(servers, baselines, seed):
    address, client = servers[0]
    dataset, expected = baselines[seed]
    rng = np.random.default_rng([seed, 2])
    for trial in range(3):
        name = f"clients-{seed}-{trial}"
        cases.create(client, name)
        batches = dataset if trial == 0 else cases.shuffled_and_rebatched(rng, dataset)
        cases.run_clients(address, name, batches, rng)
        check(expected, client, name)


def test_every_client_mode_in_16_clients(servers, baselines):
    """The extremes of the random split, fixed: 16 clients, each of the four modes on 4."""
    address, client = servers[0]
    dataset, expected = baselines[SEEDS[0]]
    rng = np.random.default_rng(99)
    name = "clients-16"
    cases.create(client, name)
    batches = cases.shuffled_and_rebatched(rng, dataset)
    owner = rng.integers(0, 16, len(batches))
    threads = [threading.Thread(target=cases.run_client, args=(
        address, name, [b for b, o in zip(batches, owner) if o == i], cases.MODES[i % 4], i))
        for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(expected, client, name)
    assert client.info(name)["quantizers"][cases.GAUSS]["elements"] == sum(
        x.size for q, x in dataset if q == cases.GAUSS)


def _split_over_two_servers(servers, dataset, rng, name):
    (addr_a, a), (addr_b, b), _ = servers
    batches = cases.shuffled_and_rebatched(rng, dataset)
    cut = int(rng.integers(0, len(batches) + 1))
    for (address, client), part in (((addr_a, a), batches[:cut]), ((addr_b, b), batches[cut:])):
        cases.create(client, name)
        cases.run_clients(address, name, part, rng)
    return a.save_state(name), b.save_state(name)


@pytest.mark.parametrize("seed", SEEDS)
def test_two_servers_merged_through_state_files(servers, baselines, seed):
    dataset, expected = baselines[seed]
    rng = np.random.default_rng([seed, 3])
    name = f"two-servers-{seed}"
    state_a, state_b = _split_over_two_servers(servers, dataset, rng, name)
    _, c = servers[2]
    c.load_state(name, state_a)
    c.load_state(name, state_b, merge=True)
    check(expected, c, name)
    # The other order of the loads.
    c.load_state(name + "-ba", state_b)
    c.load_state(name + "-ba", state_a, merge=True)
    check(expected, c, name + "-ba")


def test_two_servers_merged_through_the_cli(servers, baselines, cli_bin, tmp_path):
    from conftest import Cli

    dataset, expected = baselines[SEEDS[1]]
    rng = np.random.default_rng(7)
    name = "two-servers-cli"
    state_a, state_b = _split_over_two_servers(servers, dataset, rng, name)
    (tmp_path / "a.qcalstate").write_bytes(state_a)
    (tmp_path / "b.qcalstate").write_bytes(state_b)
    address_c, c = servers[2]
    cli = Cli(cli_bin, address_c)
    cli.ok("state", "load", name, tmp_path / "a.qcalstate")
    out = cli.ok("state", "load", name, tmp_path / "b.qcalstate", "--merge")
    assert out.startswith(f"merged {tmp_path / 'b.qcalstate'} into model '{name}': 6 quantizers")
    check(expected, c, name)


@pytest.mark.parametrize("seed", SEEDS)
def test_save_and_load_round_trip(servers, baselines, seed):
    dataset, expected = baselines[seed]
    _, a = servers[0]
    _, b = servers[1]
    state = a.save_state(f"baseline-{seed}")
    b.load_state(f"copy-{seed}", state)
    check(expected, b, f"copy-{seed}")
    # And on from the copy to a third server.
    _, c = servers[2]
    c.load_state(f"copy-{seed}", b.save_state(f"copy-{seed}"))
    check(expected, c, f"copy-{seed}")


# ------------------------------------------------------------------ counts near 2^60


def _huge(rng, values, num_bins, scale):
    """A partial state counted from `values`, every count then multiplied up to about `scale`
    (counts near 2^60): elements follow, so the state stays consistent."""
    state = qcal.count_partial(np.asarray(values, np.float32), "histogram", num_bins)
    counts = state["histogram"]["counts"]
    counts *= np.uint64(scale)
    counts += rng.integers(0, 1000, counts.size).astype(np.uint64) * (counts > 0)
    state["elements"] = int(counts.sum(dtype=np.uint64)) + state["nonfinite"]
    return state


def test_counts_near_2_to_the_60(servers):
    _, client = servers[0]
    rng = np.random.default_rng(60)
    q = cases.GAUSS
    a = _huge(rng, [0.5, 1.0, 1.5, np.nan], 256, 2**59)  # 3 values: about 1.5 * 2^60
    b = _huge(rng, [3.0, 70.0, 2.0**-20], 256, 2**60)  # another k: merging coarsens a
    raw = np.array([0.25, 5.0, -8.0], np.float32)
    assert a["histogram"]["exponent"] != b["histogram"]["exponent"]

    # Sent one by one (with a raw batch between them), or merged locally first.
    for name in ("huge-sent", "huge-merged"):
        cases.create(client, name)
    sent = client.model("huge-sent", create=False)
    sent.record_partial(q, a)
    sent.record(q, raw)
    sent.record_partial(q, b)
    sent.flush()
    merged = qcal.merge_partial(qcal.merge_partial(b, qcal.count_partial(raw, "histogram", 256),
                                                   256), a, 256)
    local = client.model("huge-merged", create=False)
    local.record_partial(q, merged)
    local.flush()

    expected = cases.observe(client, "huge-merged")
    assert not cases.differences(expected, cases.observe(client, "huge-sent"))
    h = sent.histogram(q)
    total = int(merged["histogram"]["counts"].sum(dtype=np.uint64)) + merged["histogram"]["zeros"]
    assert total > 3 * 2**60
    assert h["total"] == total
    assert h["counts"].tobytes() == merged["histogram"]["counts"].tobytes()
    assert h["nonfinite"] == 1
    assert np.float32(h["abs_max"]) == merged["histogram"]["abs_max"] == np.float32(70.0)
    info = client.info("huge-sent")["quantizers"][q]
    assert info["elements"] == merged["elements"] == total + 1

    # One more of about 2^62 (itself a valid state) would pass 2^63 - 1 elements: refused,
    # nothing changed.
    c = _huge(rng, [1.0, 2.0], 256, 2**61)
    assert c["elements"] < 2**63
    sent.record_partial(q, c)
    with pytest.raises(qcal.QcalError) as error:
        sent.flush()
    assert error.value.code == "OUT_OF_RANGE", error.value.message
    assert "elements" in error.value.message and "overflow" in error.value.message
    assert not cases.differences(expected, cases.observe(client, "huge-sent"))
    assert client.info("huge-sent")["quantizers"][q] == info


# ------------------------------------------------------------------ the reference layout


def test_the_reference_layout_depends_on_the_order(servers, baselines):
    """The property the reference layout lacks: its bins come from the first batch (2048 ..
    num_bins over [0, first max]), so the same values in another order give another histogram,
    and so other entropy / mse / percentile amax. This is why mergeable is the default."""
    _, client = servers[0]
    values = np.random.default_rng(5).standard_normal(2000).astype(np.float32)
    values[0] = 0.5  # the first batch's max differs between the two orders
    orders = {"forward": [values[:10], values[10:]], "backward": [values[10:], values[:10]]}
    got = {}
    for layout in ("reference", "mergeable"):
        for order, batches in orders.items():
            name = f"order-{layout}-{order}"
            client.create(name, quantizers=[{"name": cases.GAUSS, "num_bins": 256}],
                          histogram_layout=layout)
            cases.record_raw(client, name, [(cases.GAUSS, x) for x in batches])
            h = client.model(name, create=False).histogram(cases.GAUSS)
            got[layout, order] = (h["counts"].tobytes(), h["edges"].tobytes(), h["total"])
    assert got["reference", "forward"][2] == got["reference", "backward"][2] == 2000
    assert got["reference", "forward"][:2] != got["reference", "backward"][:2]
    assert got["mergeable", "forward"] == got["mergeable", "backward"]
