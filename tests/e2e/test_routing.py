"""Model-affine routing behind a real nginx (issue 11, item 3; README "Model-affine routing").

Three qcal-server replicas, each with its own --data-dir, behind Debian's nginx on loopback
running deploy/nginx as it ships, in plaintext (nginx_router.py; `hash ... consistent` over the
`qcal-model` header). Eight
client processes calibrate 20 models through the router, each model's batches split across all
of them (routing_run.py). Checked: every call of a model went to one replica and every model
lives on exactly one (each replica asked directly, as `qcal models --all` does); every amax
table equals a single server's bit for bit (mergeable layout). Then one replica is killed with
SIGKILL while its models' clients stream: a call for one of its models gets the router's
UNAVAILABLE, the other replicas' models go on undisturbed, and once the replica is back on its
port with its data dir the clients' sessions reconnect and resend, and every table again equals
the single server's. Nothing here is timed."""

import json
import os
import socket
import subprocess
import sys

import pytest

import routing_run
from nginx_router import NginxRouter
from qcal_server_process import QcalServerProcess
from restartable_server import RestartableServer

CLIENTS = 8
MODELS = 20
BATCHES = 16  # per model: 2 per client
REPLICAS = 3
CALL_TIMEOUT = 60
# deploy/nginx/qcal.conf's answer for a replica that is down.
UNAVAILABLE_MESSAGE = "qcal router: the replica for this call is unreachable (the one that holds its model; calls that name no model, such as ListModels, go to one fixed replica); retry"


def model_names(prefix):
    """[(k, name)]: some names need the header's percent-encoding (a space, '%', non-ASCII)."""
    forms = ["{p}-{k:02d}", "{p} mod\u00e8le {k:02d}", "{p}-\u6a21\u578b-{k:02d}",
             "{p}-50%-{k:02d}"]
    return [(k, forms[k % len(forms)].format(p=prefix, k=k)) for k in range(MODELS)]


def header_value(name):
    """The `qcal-model` value the clients must send (client/include/qcal/routing.h)."""
    return "".join(chr(b) if 0x21 <= b <= 0x7E and b != 0x25 else f"%{b:02X}"
                   for b in name.encode())


@pytest.fixture(scope="module")
def reference(server_bin):
    """{k: tables} of a single server that received every batch of every model in order."""
    import qcal

    with QcalServerProcess(server_bin) as server:
        client = qcal.Client(server.address, timeout=CALL_TIMEOUT)
        result = {}
        for k, name in model_names("single"):
            routing_run.create(client, name)
            session = client.model(name, create=False)
            for j in range(BATCHES):
                session.record(*routing_run.batch(k, j))
            session.flush()
            result[k] = routing_run.tables(client, name)
    return result


@pytest.fixture(scope="module")
def cluster(server_bin, tmp_path_factory):
    base = tmp_path_factory.mktemp("routing")
    replicas = [RestartableServer(server_bin, "--data-dir", str(base / f"replica-{i}"),
                                  "--commit-interval-seconds", "1")
                for i in range(REPLICAS)]
    try:
        for replica in replicas:
            replica.start()
        nginx_dir = base / "nginx"
        nginx_dir.mkdir()
        with NginxRouter([r.address for r in replicas], nginx_dir) as router:
            yield replicas, router
    finally:
        for replica in replicas:
            replica.stop()


def placement(replicas):
    """{model name: [addresses of the replicas that hold it]}, each replica asked directly."""
    import qcal

    where = {}
    for replica in replicas:
        for info in qcal.Client(replica.address, timeout=CALL_TIMEOUT).models():
            where.setdefault(info["name"], []).append(replica.address)
    return where


class Clients:
    """CLIENTS client processes of routing_run.py, started and waiting for "go"."""

    def __init__(self, router, models, pause):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        self.workers = []
        for c in range(CLIENTS):
            config = dict(address=router.address, client=c, clients=CLIENTS, batches=BATCHES,
                          models=models, pause=pause, call_timeout=CALL_TIMEOUT,
                          reconnect_deadline=60)
            self.workers.append(subprocess.Popen(
                [sys.executable, routing_run.__file__, json.dumps(config)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env))
        self.expect("ready")

    def expect(self, word):
        for worker in self.workers:
            line = worker.stdout.readline()
            assert line.strip() == word, f"a client said {line!r}, not {word!r}"

    def go(self):
        for worker in self.workers:
            worker.stdin.write("go\n")
            worker.stdin.flush()

    def reports(self):
        reports = []
        for worker in self.workers:
            out, _ = worker.communicate(timeout=300)
            assert worker.returncode == 0, f"a client exited {worker.returncode}"
            reports.append(json.loads(out.strip().splitlines()[-1]))
        return reports

    def kill(self):
        for worker in self.workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()


def run_clients(router, models, pause=False, while_paused=None):
    clients = Clients(router, models, pause)
    try:
        clients.go()
        if pause:
            clients.expect("paused")
            while_paused(clients)
        reports = clients.reports()
    finally:
        clients.kill()
    errors = [f"client {r['client']}: {e}" for r in reports for e in r["errors"]]
    assert errors == []
    return reports


def run_cli(cli_bin, *args):
    env = {k: v for k, v in os.environ.items() if k != "QCAL_SERVER"}
    return subprocess.run([str(cli_bin), "--timeout", "60", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120)


def create_all(router, models):
    import qcal

    client = qcal.Client(router.address, timeout=CALL_TIMEOUT)
    for _, name in models:
        routing_run.create(client, name)


def assert_tables_match(router, models, reference):
    import qcal

    client = qcal.Client(router.address, timeout=CALL_TIMEOUT)
    for k, name in models:
        assert routing_run.tables(client, name) == reference[k], name


def test_each_model_lives_on_one_replica_and_matches_a_single_server(cluster, reference,
                                                                     cli_bin):
    replicas, router = cluster
    models = model_names("route")
    create_all(router, models)
    run_clients(router, models)

    where = placement(replicas)
    names = [name for _, name in models]
    assert sorted(where) == sorted(names)
    assert {name: len(r) for name, r in where.items()} == {name: 1 for name in names}
    assert len({r[0] for r in where.values()}) > 1, "the hash sent every model to one replica"

    # Every call of a model carried its encoded name and reached the replica that holds it.
    routed = router.routes()  # every call so far named a model: no "-"
    assert routed == {header_value(name): {where[name][0]} for name in names}

    assert_tables_match(router, models, reference)

    # `qcal models` through the router sees one replica; --all sees them all.
    def qcal_cli(*args):
        result = run_cli(cli_bin, *args)
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        return result.stdout

    listed = json.loads(qcal_cli("models", "--all", ",".join(r.address for r in replicas),
                                 "--format", "json"))
    assert {m["name"]: [m["replica"]] for m in listed} == where
    text = qcal_cli("models", "--all", replicas[0].address, "--all",
                    ",".join(r.address for r in replicas[1:]))
    assert text.splitlines()[0].split() == ["REPLICA", "MODEL", "QUANTIZERS", "ONNX", "AMAX"]
    assert len(text.splitlines()) == 1 + MODELS
    # An address given twice is asked once: its models are not "on 2 replicas".
    twice = qcal_cli("models", "--all", f"{replicas[0].address},{replicas[0].address}")
    assert len(twice.splitlines()) == 1 + sum(r == [replicas[0].address] for r in where.values())
    one = {m["name"] for m in json.loads(qcal_cli("--server", router.address, "models",
                                                  "--format", "json"))}
    assert one in [{n for n, r in where.items() if r == [replica.address]}
                   for replica in replicas]


def test_a_killed_replica_gives_unavailable_then_its_clients_resume(cluster, reference):
    import qcal

    replicas, router = cluster
    models = model_names("kill")
    create_all(router, models)
    before = {name: r for name, r in placement(replicas).items() if name.startswith("kill")}
    counts = {replica.address: 0 for replica in replicas}
    for r in before.values():
        counts[r[0]] += 1
    victim = max(replicas, key=lambda replica: counts[replica.address])
    hit = {name for name, r in before.items() if r == [victim.address]}
    spared = {name for name, r in before.items() if r != [victim.address]}
    assert hit and spared
    seen = {}

    def outage(clients):
        # Every session has an open Record stream through the router now.
        assert victim.kill9() == -9
        clients.go()  # the second round: the victim's sessions stream into the outage
        router_client = qcal.Client(router.address, timeout=CALL_TIMEOUT)
        with pytest.raises(qcal.QcalError) as error:
            router_client.info(sorted(hit)[0])
        seen["code"], seen["message"] = error.value.code, error.value.message
        seen["spared"] = router_client.info(sorted(spared)[0])["name"]
        victim.start()  # same port, same --data-dir

    reports = run_clients(router, models, pause=True, while_paused=outage)
    assert seen == {"code": "UNAVAILABLE", "message": UNAVAILABLE_MESSAGE,
                    "spared": sorted(spared)[0]}
    # The victim's sessions reconnected (and resent what it had not made durable); the others'
    # streams never broke.
    reconnects = {}
    for report in reports:
        for name, stats in report["stats"].items():
            reconnects.setdefault(name, []).append(stats["reconnects"])
    assert {name: min(r) >= 1 for name, r in reconnects.items() if name in hit} == \
        {name: True for name in hit}
    assert {name: max(r) for name, r in reconnects.items() if name in spared} == \
        {name: 0 for name in spared}

    after = {name: r for name, r in placement(replicas).items() if name.startswith("kill")}
    assert after == before
    assert_tables_match(router, models, reference)


def test_scaling_down_moves_a_replicas_models_with_state_files(cluster, reference, cli_bin,
                                                               tmp_path):
    """README's move: the router loses a replica (its models now hash elsewhere); each of its
    models is saved from it directly, loaded through the new router, deleted from it."""
    import qcal

    replicas, router = cluster
    models = model_names("move")
    create_all(router, models)
    client = qcal.Client(router.address, timeout=CALL_TIMEOUT)
    for k, name in models:
        session = client.model(name, create=False)
        for j in range(BATCHES):
            session.record(*routing_run.batch(k, j))
        session.commit()
    before = {name: r[0] for name, r in placement(replicas).items() if name.startswith("move")}
    dropped = max(replicas, key=lambda r: sum(a == r.address for a in before.values()))
    moving = sorted(name for name, address in before.items() if address == dropped.address)
    kept = [r for r in replicas if r is not dropped]

    def cli_ok(*args):
        result = run_cli(cli_bin, *args)
        assert result.returncode == 0, (args, result.stderr)
        return result

    everywhere = ",".join(r.address for r in replicas)
    (tmp_path / "nginx").mkdir()
    with NginxRouter([r.address for r in kept], tmp_path / "nginx") as smaller:
        for i, name in enumerate(moving):
            path = tmp_path / f"{i}.qcalstate"
            cli_ok("--server", dropped.address, "state", "save", name, path)
            cli_ok("--server", smaller.address, "state", "load", name, path)
            if i == 0:
                # Loaded on its new replica, not yet deleted from the old: --all says so.
                warned = cli_ok("models", "--all", everywhere).stderr
                assert warned.startswith(f"warning: model '{name}' is on 2 replicas: "), warned
            cli_ok("--server", dropped.address, "delete", name)
        after = {name: r for name, r in placement(replicas).items() if name.startswith("move")}
        # Consistent hashing: only the dropped replica's models changed replica.
        assert {name: r for name, r in after.items() if name not in moving} == \
            {name: [address] for name, address in before.items() if name not in moving}
        assert all(len(after[name]) == 1 and after[name][0] != dropped.address
                   for name in moving)
        assert_tables_match(smaller, models, reference)

    # An unreachable replica is named; the others are still listed.
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        nobody = f"127.0.0.1:{unused.getsockname()[1]}"
        result = run_cli(cli_bin, "models", "--all", f"{nobody},{kept[0].address}")
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: UNAVAILABLE: replica {nobody}: "), result.stderr
    assert len(result.stdout.splitlines()) == 1 + len(placement([kept[0]]))
