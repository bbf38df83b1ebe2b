"""qcal-server's command line: usage errors exit 2 with `qcal-server: usage: ...`, values the
server checks exit 1 with `qcal-server: ...` naming the rule, and a busy HTTP port is named as
such."""

import socket
import subprocess

import pytest

from qcal_server_process import QcalServerProcess


def run_server(server_bin, *args):
    return subprocess.run([str(server_bin), *args], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--max-batch-bytes", "1k"], "--max-batch-bytes"),
        (["--device", "gpu"], "--device: gpu not in {auto,cpu,cuda}"),
        (["--log-level", "loud"], "--log-level"),
        (["--bogus"], "--bogus"),
        # Integers beyond their type's range used to saturate (an effectively unlimited limit).
        (["--max-batch-bytes", "99999999999999999999"],
         "--max-batch-bytes: 99999999999999999999 is not an integer in [-9223372036854775808, "
         "9223372036854775807]"),
        (["--max-batch-bytes", "9223372036854775808"], "--max-batch-bytes: 9223372036854775808"),
        (["--max-message-bytes", "4294967296"],
         "--max-message-bytes: 4294967296 is not an integer in [-2147483648, 2147483647]"),
        (["--max-message-bytes", "99999999999999999999"], "--max-message-bytes"),
        (["--max-batch-bytes", "1e9"], "--max-batch-bytes: 1e9 is not an integer"),
        (["--max-batch-bytes", "0x10"], "--max-batch-bytes: 0x10 is not an integer"),
        (["--max-batch-bytes", ""], "--max-batch-bytes"),
    ],
)
def test_usage_errors_exit_2(server_bin, args, message):
    result = run_server(server_bin, "--listen", "127.0.0.1:0", *args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("qcal-server: usage: "), result.stderr
    assert message in result.stderr, result.stderr
    assert result.stdout == ""


def test_largest_integer_is_accepted(server_bin):
    # The range check is exact: int64's maximum itself is a valid --max-batch-bytes.
    with QcalServerProcess(server_bin, "--max-batch-bytes", "9223372036854775807") as server:
        assert server.address


@pytest.mark.parametrize(
    "args, message",
    [
        (["--max-message-bytes", "1000"], "--max-message-bytes must be >= 4259840"),
        (["--max-batch-bytes", "0"], "--max-batch-bytes"),
        (["--listen", "nohostport"], "--listen"),
        (["--max-data-dir-bytes", "1000"], "--max-data-dir-bytes needs --data-dir"),
        (["--max-data-dir-bytes", "-1"], "--max-data-dir-bytes must be >= 0 (0: no limit), got -1"),
        (["--commit-interval-seconds", "0"], "--commit-interval-seconds must be >= 1, got 0"),
        (["--drain-seconds", "-1"], "--drain-seconds must be >= 0, got -1"),
        (["--data-dir", "/proc/self/status"], "--data-dir /proc/self/status is not a directory"),
        (["--data-dir", ""], "--data-dir is empty; name a directory, or leave the flag out"),
    ],
)
def test_refused_values_exit_1_naming_the_rule(server_bin, args, message):
    listen = [] if "--listen" in args else ["--listen", "127.0.0.1:0"]
    result = run_server(server_bin, *listen, *args)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("qcal-server: "), result.stderr
    assert message in result.stderr, result.stderr


def test_busy_http_port_is_named(server_bin):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_server(server_bin, "--listen", "127.0.0.1:0", "--http-listen",
                            f"127.0.0.1:{port}")
    assert result.returncode == 1, result.stderr
    assert f"cannot serve HTTP on '127.0.0.1:{port}': invalid address or port in use" in (
        result.stderr), result.stderr


def test_device_auto_on_a_cpu_says_so_at_info_level(server_bin):
    with QcalServerProcess(server_bin, "--device", "auto") as server:
        import urllib.request

        metrics = urllib.request.urlopen(f"http://{server.http_address}/metrics").read().decode()
        if 'device="cpu"' not in metrics:
            pytest.skip("this machine has a usable GPU")
        log = server.stderr()
    lines = [line for line in log.splitlines() if "--device auto" in line]
    assert len(lines) == 1, log
    assert "[info] running on the CPU (--device auto: no usable CUDA device: " in lines[0], log
    assert "no CUDA device" not in log, log


def test_without_data_dir_the_server_says_state_is_in_memory_only(server_bin):
    with QcalServerProcess(server_bin) as server:
        assert "no --data-dir: state lives in memory only" in server.stderr()


def test_device_cuda_without_a_gpu_and_a_data_dir_exits_1_saying_so(server_bin, tmp_path):
    """Once a segfault: the failed start's shutdown committed through a core never built."""
    process = subprocess.Popen([str(server_bin), "--listen", "127.0.0.1:0", "--http-listen",
                                "127.0.0.1:0", "--device", "cuda", "--data-dir",
                                str(tmp_path / "data")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if process.stdout.readline().startswith("qcal-server listening"):
        process.kill()
        process.communicate()
        pytest.skip("this machine has a usable GPU")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1, (process.returncode, stderr)
    assert "no CUDA device" in stderr, stderr
