"""The short load run (issue 10, item 7; the long one is bench/load.py, its figures in
bench/README.md): 8 trainers, each its own process and connection, stream fp16 activations for
4 s into one model, then into a model each, closed-loop. No errors, and every batch is counted
once: the server's statistics equal what the clients were told was applied and what they
recorded. Nothing here is timed."""

import load_run
from restartable_server import RestartableServer

TRAINERS = 8
SECONDS = 4.0


def run(server_bin, models):
    with RestartableServer(server_bin) as server:
        return load_run.run_phase(
            server, trainers=TRAINERS, models=models, duration=SECONDS, shape=(4, 32, 16, 16))


def check(result):
    assert result["errors"] == 0, result["first_errors"]
    assert result["dropped"] == 0
    assert result["recorded"] >= TRAINERS  # every trainer recorded at least one batch
    assert result["applied_told"] == result["recorded"]
    assert result["applied_server"] == result["recorded"]
    assert result["mismatched_models"] == []
    assert result["steps"] == result["recorded"]  # one batch a step, each acknowledged


def test_trainers_into_one_model(server_bin):
    check(run(server_bin, ["load"]))


def test_trainers_into_a_model_each(server_bin):
    check(run(server_bin, [f"load-{i}" for i in range(TRAINERS)]))
