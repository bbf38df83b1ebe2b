"""The qcal CLI's progress bar: drawn on stderr when it is a terminal (record, export, state save,
state load), never in a pipe, with --quiet, QCAL_NO_PROGRESS=1 or TERM=dumb; stdout is the same
byte for byte either way."""

import os
import re
import subprocess

import numpy as np
import pytest

from conftest import save_npy
from qcal_server_process import QcalServerProcess
from terminal_run import run_on_terminal

# Three 4 MiB Record messages: the bar's first draw, at the first message, is a third.
ARRAY = np.arange(3 * 1024 * 1024, dtype=np.float32).reshape(3, 1024, 1024)
ARRAY_BYTES = 12582912


@pytest.fixture(scope="module")
def server(server_bin):
    # The suite's server takes 1 MiB batches; this one the default, for a 12 MiB record.
    with QcalServerProcess(server_bin) as process:
        yield process


@pytest.fixture(scope="module")
def run(cli_bin, server):
    """run(*args, terminal=True, **env): qcal --server ADDR ARGS with TERM=xterm and without
    QCAL_NO_PROGRESS (unless given); its stderr on a terminal or a pipe."""

    def run(*args, terminal, **extra_env):
        env = {k: v for k, v in os.environ.items() if k not in ("QCAL_SERVER", "QCAL_NO_PROGRESS")}
        env.update({"TERM": "xterm", **extra_env})
        argv = [cli_bin, "--server", server.address, *map(str, args)]
        if terminal:
            result = run_on_terminal(argv, env)
        else:
            result = subprocess.run(argv, capture_output=True, env=env, timeout=120)
            result.stderr = result.stderr.decode()
        assert result.returncode == 0, f"qcal {args}: {result.stderr}"
        return result

    return run


def summary(stderr, label):
    """The bar's last line, `LABEL: ...` (its redraws before it end in "\\r")."""
    lines = [line.rsplit("\r", 1)[-1] for line in stderr.split("\n")]
    (found,) = [line for line in lines if line.startswith(label + ":")]
    return found.replace("\x1b[K", "")


def test_record_draws_a_bar_on_a_terminal_and_nothing_in_a_pipe(run, model_name, tmp_path):
    npy = save_npy(tmp_path, "a.npy", ARRAY)
    run("create", model_name, terminal=False)
    shown = run("record", model_name, "x._input_quantizer", npy, terminal=True)
    # Drawn in place: the first state after one of three messages, then the summary.
    assert shown.stderr.startswith(f"\rrecord {npy} [######--------------]  33%  4.00 MiB/12.0 MiB")
    assert re.fullmatch(rf"record {npy}: 100%, {ARRAY_BYTES} bytes \(12\.0 MiB\) in \d+\.\d s.*",
                        summary(shown.stderr, f"record {npy}")), shown.stderr
    assert shown.stderr.endswith("\n")

    piped = run("record", model_name, "x._input_quantizer", npy, terminal=False)
    assert piped.stderr == ""
    assert piped.stdout == shown.stdout
    assert piped.stdout == (f"recorded {npy} into {model_name} / x._input_quantizer: float32 "
                            f"[3, 1024, 1024], {ARRAY.size} elements, 0 non-finite\n").encode()


@pytest.mark.parametrize("opt_out", [("--quiet",), ("-q",), "QCAL_NO_PROGRESS=1", "TERM=dumb"])
def test_opt_outs_draw_nothing_on_a_terminal(run, model_name, tmp_path, opt_out):
    npy = save_npy(tmp_path, "a.npy", ARRAY)
    run("create", model_name, terminal=False)
    flags, env = (opt_out, {}) if isinstance(opt_out, tuple) else ((), dict([opt_out.split("=")]))
    quiet = run(*flags, "record", model_name, "x._input_quantizer", npy, terminal=True, **env)
    assert quiet.stderr == ""
    assert quiet.stdout.startswith(f"recorded {npy} into {model_name} /".encode())


def test_export_shows_the_onnx_bytes_sent(run, model_name, tmp_path, onnx_models):
    run("create", model_name, terminal=False)
    conv_in = np.linspace(-2, 2, 2 * 64, dtype=np.float32).reshape(2, 1, 8, 8)
    run("record", model_name, "conv1._input_quantizer", save_npy(tmp_path, "c.npy", conv_in),
        terminal=False)
    onnx_in = onnx_models[13]
    size = os.path.getsize(onnx_in)
    outputs = {}
    for terminal in (True, False):
        out = tmp_path / "qdq.onnx"
        outputs[terminal] = run("export", model_name, "--onnx", onnx_in, "--out", out,
                                "--method", "max", terminal=terminal)
    shown, piped = outputs[True], outputs[False]
    assert summary(shown.stderr, f"export {onnx_in}").startswith(
        f"export {onnx_in}: 100%, {size} bytes (")
    # The export's own note follows on a line of its own.
    assert "\nexport: computed a new amax table (method max)\n" in shown.stderr
    assert piped.stderr == "export: computed a new amax table (method max)\n"
    assert piped.stdout == shown.stdout


def test_state_save_and_load_show_their_bytes(run, model_name, tmp_path):
    run("create", model_name, terminal=False)
    run("record", model_name, "x._input_quantizer", save_npy(tmp_path, "a.npy", ARRAY[:1]),
        terminal=False)
    path = tmp_path / "m.qcalstate"
    saved = run("state", "save", model_name, path, terminal=True)
    size = path.stat().st_size
    # The server does not say the size ahead: bytes without a percentage.
    assert summary(saved.stderr, f"state save {model_name}").startswith(
        f"state save {model_name}: {size} bytes (")
    assert saved.stdout == f"saved model '{model_name}' to {path} ({size} bytes)\n".encode()

    loaded = run("state", "load", model_name + "-copy", path, terminal=True)
    assert summary(loaded.stderr, f"state load {path}").startswith(
        f"state load {path}: 100%, {size} bytes (")
    piped = run("state", "load", model_name + "-copy2", path, terminal=False)
    assert piped.stderr == ""
    assert piped.stdout == loaded.stdout.replace(b"-copy'", b"-copy2'")
