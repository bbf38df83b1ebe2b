"""kill -9 while clients stream (issue 10, item 7; tests/e2e/kill9_run.py says what is run and
checked; bench/kill9.py runs it longer, with more kills and seeds). 8 client processes stream
seeded batches into a mergeable-layout model for about 16 s while the server, with --data-dir,
is killed with SIGKILL 5 times at seeded random moments and restarted on the same port. The
clients' library reconnects and resends what was not durable; at the end the histograms,
counters and amax tables equal an uninterrupted run's bit for bit (nothing lost, nothing counted
twice), and survive one more kill -9 after the final commits. Nothing here is timed."""

import kill9_run

CLIENTS = 8
BATCHES = 240
KILLS = 5


def test_kill9_while_streaming_loses_nothing_and_counts_nothing_twice(server_bin, tmp_path):
    result = kill9_run.run(server_bin, tmp_path / "data", clients=CLIENTS, batches=BATCHES,
                           seconds=16.0, kills=KILLS, seed=1)
    assert result["problems"] == [], (result["problems"], result["server_stderr_tail"])
    assert len(result["kills"]) == KILLS
    # The clients are paced over the whole window, so every kill hit all of them mid-stream.
    assert [k["clients_streaming"] for k in result["kills"]] == [CLIENTS] * KILLS
    assert [k["status"] for k in result["kills"]] == [-9] * KILLS
    assert len(result["clients"]) == CLIENTS
    assert result["batches_sent"] == result["batches_counted"] == CLIENTS * BATCHES
    # Both paths ran: batches lost with the server resent (reconnects, resent_batches), and
    # batches it had made durable resent by client 1, which learns nothing before the end, and
    # dropped by the server (duplicate_batches).
    assert result["reconnects"] >= KILLS  # client 1's one stream breaks at every kill
    assert result["resent_batches"] > 0
    assert result["duplicate_batches"] > 0
