"""The qcal CLI's exit statuses and messages: usage errors exit 2 with `error: usage: ...` before
contacting any server; failed calls exit 1 with `error: CODE: message`. Also the CLI's own texts:
the export hint, the histogram rows, .npy files numpy writes."""

import os
import struct
import subprocess

import numpy as np
import pytest

from conftest import Cli, save_npy

# Nothing listens on port 1: a CLI that contacted the server would fail with UNAVAILABLE (exit 1).
NOWHERE = "127.0.0.1:1"


@pytest.fixture
def offline(cli_bin):
    return Cli(cli_bin, NOWHERE)


@pytest.mark.parametrize(
    "args, message",
    [
        (["amax", "m"], "--method is required"),
        (["models", "--format", "xml"], "--format: xml not in {text,json}"),
        (["amax", "m", "--method", "percentile", "--percentile", "abc"],
         "Could not convert: --percentile = abc"),
        (["frobnicate"], "unknown command 'frobnicate'"),
        ([], "A subcommand is required"),
        (["info"], "MODEL is required"),
        (["models", "--no-such-option"], "--no-such-option"),
        (["--timeout", "-1", "models"], "--timeout"),
        # Options that the method would ignore.
        (["amax", "m", "--method", "entropy", "--percentile", "99.9"],
         "--percentile applies only to --method percentile, not entropy"),
        (["amax", "m", "--method", "max", "--start-bin", "64"],
         "--start-bin applies only to --method entropy or mse, not max"),
        (["amax", "m", "--method", "percentile", "--stride", "2"],
         "--stride applies only to --method entropy or mse, not percentile"),
        (["export", "m", "--onnx", "a.onnx", "--out", "b.onnx", "--stride", "2"],
         "--stride needs --method (without it the stored amax table is used)"),
        (["export", "m", "--onnx", "a.onnx", "--out", "b.onnx", "--method", "mse",
          "--percentile", "99"], "--percentile applies only to --method percentile, not mse"),
        # Values out of range, shown as typed (full precision).
        (["amax", "m", "--method", "percentile", "--percentile", "100.0001"],
         "--percentile: 100.0001 is outside (0, 100]"),
        (["amax", "m", "--method", "percentile", "--percentile", "nan"],
         "--percentile: nan is outside (0, 100]"),
        (["amax", "m", "--method", "entropy", "--start-bin", "0"],
         "--start-bin: 0 is below 1 (leave the option out for the default, 128)"),
        (["amax", "m", "--method", "mse", "--stride", "-2"],
         "--stride: -2 is below 1 (leave the option out for the default, 1)"),
        (["amax", "m", "--method", "mse", "--stride", "1.5"], "--stride"),
        (["amax", "m", "--method", "kl"], "--method: kl not in {max,entropy,mse,percentile}"),
        (["export", "m", "--onnx", "a.onnx", "--out", "b.onnx", "--map", "garbage"],
         "'garbage' is not QUANTIZER=TENSOR"),
        (["export", "m", "--onnx", "a.onnx", "--out", "b.onnx", "--target", "foo"],
         "--target: foo not in {tensorrt,onnxruntime}"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_usage_errors_exit_2_before_contacting_the_server(offline, args, message):
    offline.usage_error(*args, message=message)


def test_usage_error_points_at_the_command_help(offline):
    stderr = offline.usage_error("amax", "m", message="--method is required")
    assert stderr == "error: usage: --method is required\n(see 'qcal amax --help')\n"
    stderr = offline.usage_error(message="A subcommand is required")
    assert stderr.endswith("(see 'qcal --help')\n")


def test_help_exits_0(cli_bin):
    for args in (["--help"], ["amax", "--help"]):
        result = subprocess.run([str(cli_bin), *args], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert "Usage:" in result.stdout and result.stderr == ""
    amax_help = subprocess.run([str(cli_bin), "amax", "--help"], capture_output=True, text=True)
    assert "--percentile" in amax_help.stdout and "--start-bin" in amax_help.stdout


def test_failed_calls_exit_1_with_the_code(cli, offline, model_name):
    cli.fails("info", "no-such-model", code="NOT_FOUND", message="'no-such-model'")
    offline.fails("models", code="UNAVAILABLE", message="")


def test_a_name_that_is_not_utf8_is_refused_before_sending(cli, cli_bin, server):
    # The bytes ff fe, as a shell's $'\xff\xfe' passes them.
    result = subprocess.run([str(cli_bin), "--server", server.address, "create", b"\xff\xfe"],
                            capture_output=True)
    assert result.returncode == 1
    stderr = result.stderr.decode()
    assert stderr == (
        "error: INVALID_ARGUMENT: model name '\\xff\\xfe' is not valid UTF-8 (byte 0xff at offset "
        "0); names are 1 to 1024 bytes of UTF-8 without control characters\n"
    )
    # No protobuf serialization error was logged: nothing was serialized.
    assert "ERROR" not in stderr.replace("error: ", "")


def test_a_newline_in_a_quantizer_name_cannot_forge_trt_cache_lines(cli, model_name, tmp_path):
    cli.ok("create", model_name)
    ones = save_npy(tmp_path, "ones.npy", np.ones(4, np.float32))
    cli.fails("record", model_name, "q\nforged: 7f800000", ones,
              code="INVALID_ARGUMENT", message="contains control character 0x0a at offset 1")
    cli.ok("record", model_name, "q", ones)
    trt = cli.ok("amax", model_name, "--method", "max", "--format", "trt").splitlines()
    scale = struct.pack(">f", np.float32(1) / np.float32(127)).hex()
    assert trt == ["TRT-8601-EntropyCalibration2", f"q: {scale}"]


def test_export_without_a_table_hints_at_method(cli, model_name, tmp_path, onnx_models):
    cli.ok("create", model_name)
    cli.ok("record", model_name, "conv1._input_quantizer",
           save_npy(tmp_path, "c.npy", np.ones((1, 1, 8, 8), np.float32)))
    stderr = cli.fails("export", model_name, "--onnx", onnx_models[13], "--out",
                       tmp_path / "out.onnx", code="FAILED_PRECONDITION", message="no amax table")
    assert stderr.rstrip("\n").endswith(
        "(use --method M, M one of max, entropy, mse, percentile)"
    ), stderr
    assert not (tmp_path / "out.onnx").exists()


def test_export_to_a_path_that_cannot_be_written_sends_nothing(cli, model_name, tmp_path,
                                                                onnx_models):
    # The output is opened before the export is sent: the server must not keep the ONNX model or
    # a table computed for an export whose result could not be written.
    cli.ok("create", model_name)
    cli.ok("record", model_name, "conv1._input_quantizer",
           save_npy(tmp_path, "c.npy", np.ones((1, 1, 8, 8), np.float32)))
    out = tmp_path / "no_such_dir" / "out.onnx"
    cli.local_error("export", model_name, "--onnx", onnx_models[13], "--out", out, "--method",
                    "mse", message=f"cannot write --out '{out}': No such file or directory")
    # A directory: its OUT.partial can be opened, but the final rename could not happen, after
    # the server had stored the export (a new user's finding): refused before sending.
    cli.local_error("export", model_name, "--onnx", onnx_models[13], "--out", tmp_path,
                    "--method", "mse", message=f"cannot write --out '{tmp_path}': Is a directory")
    info = cli.json("info", model_name, "--format", "json")
    assert info["has_onnx"] is False and info["amax_method"] == ""
    assert not list(tmp_path.glob("**/*.partial"))
    assert not (tmp_path.parent / (tmp_path.name + ".partial")).exists()


def test_export_of_an_empty_onnx_file_is_invalid(cli, model_name, tmp_path):
    cli.ok("create", model_name)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    cli.fails("export", model_name, "--onnx", empty, "--out", tmp_path / "out.onnx",
              code="INVALID_ARGUMENT", message="is empty; expected a float ONNX model")
    assert not (tmp_path / "out.onnx").exists()


def test_histogram_text_labels_its_rows(cli, model_name, tmp_path):
    # Mergeable layout (the server's default), num_bins 1024: max |x| = 4 - 1/512 over 2048 bins
    # of width 1/512 up to 4: 1.0 is in bin 512, 2.0 in bin 1024, the max in 2047.
    values = np.array([1.0, -1.0, 1.0, 2.0, -(4.0 - 1.0 / 512)], dtype=np.float32)
    cli.ok("create", model_name, "--default-input", "num_bins=1024")
    cli.ok("record", model_name, "x._input_quantizer", save_npy(tmp_path, "v.npy", values))
    lines = cli.ok("histogram", model_name, "x._input_quantizer").splitlines()
    assert lines[1] == "bins 2048, range [0, 4], abs_max 3.99805, total 5, nonfinite 0"
    assert lines[2] == "16 rows of 128 bins each, counts summed per row"
    rows = [line.split() for line in lines[4:]]
    assert len(rows) == 16
    # [bins lo, bins hi) [edge lo, edge hi) count: row 4 holds bin 512 (edge 1), row 8 bin
    # 1024 (edge 2), the last row bin 2047 and the range's end.
    assert rows[4][:5] == ["[512,", "640)", "[1,", "1.25)", "3"]
    assert rows[8][:5] == ["[1024,", "1152)", "[2,", "2.25)", "1"]
    assert rows[15][:5] == ["[1920,", "2048)", "[3.75,", "4]", "1"]
    assert sum(int(row[4]) for row in rows) == 5


def test_npy_trailing_bytes_are_ignored_as_numpy_does(cli, model_name, tmp_path):
    path = save_npy(tmp_path, "t.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
    path.write_bytes(path.read_bytes() + b"\x00\x01\x02\x03\x04")
    assert np.load(path).shape == (2, 3)  # numpy reads it
    cli.ok("create", model_name)
    out = cli.ok("record", model_name, "x._input_quantizer", path)
    assert "float32 [2, 3], 6 elements, 0 non-finite" in out


def test_npy_big_endian_hint_keeps_the_width(cli, model_name, tmp_path):
    path = save_npy(tmp_path, "be.npy", np.arange(3, dtype=">f2"))
    cli.fails("record", model_name, "x._input_quantizer", path, code="INVALID_ARGUMENT",
              message="'>f2' is big-endian: save it little-endian (arr.astype('<f2'))")


# Errors about local files are not calls that failed: `error: MESSAGE`, no gRPC code word, exit 1.
def test_record_of_a_directory_is_a_local_error_not_an_abort(cli, model_name, tmp_path):
    cli.ok("create", model_name)
    # It used to die of std::bad_alloc (exit 134): a directory's "size" is -1.
    cli.local_error("record", model_name, "x._input_quantizer", tmp_path,
                    message=f"cannot read '{tmp_path}': a directory, not a regular file")
    cli.local_error("record", model_name, "x._input_quantizer", "/dev/null",
                    message="cannot read '/dev/null': not a regular file")
    assert cli.json("info", model_name, "--format", "json")["quantizers"] == []


def test_record_of_a_missing_file_is_a_local_error(cli, model_name, tmp_path):
    missing = tmp_path / "missing.npy"
    cli.local_error("record", model_name, "x._input_quantizer", missing,
                    message=f"cannot read '{missing}': No such file or directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_record_of_an_unreadable_file_is_a_local_error(cli, model_name, tmp_path):
    path = save_npy(tmp_path, "locked.npy", np.ones(3, np.float32))
    path.chmod(0)
    cli.local_error("record", model_name, "x._input_quantizer", path,
                    message=f"cannot read '{path}': Permission denied")


def test_export_of_a_missing_onnx_is_a_local_error(cli, model_name, tmp_path):
    cli.ok("create", model_name)
    missing = tmp_path / "missing.onnx"
    cli.local_error("export", model_name, "--onnx", missing, "--out", tmp_path / "out.onnx",
                    message=f"cannot read --onnx '{missing}': No such file or directory")
    cli.local_error("export", model_name, "--onnx", tmp_path, "--out", tmp_path / "out.onnx",
                    message=f"cannot read --onnx '{tmp_path}': a directory, not a regular file")
    assert not list(tmp_path.glob("*.onnx*"))


def test_server_errors_keep_their_code(cli, tmp_path):
    path = save_npy(tmp_path, "v.npy", np.ones(3, np.float32))
    cli.fails("record", "no-such-model", "x._input_quantizer", path, code="NOT_FOUND",
              message="unknown model 'no-such-model'")
