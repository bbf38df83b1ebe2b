"""qcal: stream calibration activations to qcal-server and get amax tables and QDQ ONNX models.

    import qcal, qcal.torch

    client = qcal.Client()                        # $QCAL_SERVER, else 127.0.0.1:50051
    session = client.model("resnet18")            # created when missing, else joined
    session = client.model("resnet18", default_input={"num_bins": 4096})  # created, or joined
                                                  # when its configuration is the same
    with qcal.torch.calibrate(model, session):    # streams Conv/ConvTranspose/Linear inputs
        for images, _ in loader:
            model(images)
    table = session.compute_amax(method="entropy")
    qdq = session.export_onnx("resnet18.onnx", out="resnet18_qdq.onnx")
    client.save_state("resnet18", "run_a.qcalstate")   # the model's whole state, to a file
    other.load_state("resnet18", "run_a.qcalstate", merge=True)  # adds it into another model

Quantizer names follow pytorch-quantization: "<module path>._input_quantizer",
"<module path>._weight_quantizer".

Errors raise qcal.QcalError, whose .code is the gRPC status code name ("NOT_FOUND",
"INVALID_ARGUMENT", "FAILED_PRECONDITION", "RESOURCE_EXHAUSTED", "UNAVAILABLE", ...) and whose
.message is the server's (or the client's) message. Arguments are checked before anything is
sent: one of the wrong Python type raises TypeError naming it (e.g. stride=1.5, a quantizer name
of None, a str where a tensor is expected); a value of the right type that qcal refuses raises
QcalError with code INVALID_ARGUMENT, the server's code for the same mistake (an empty name or
one with a control character, a percentile outside (0, 100], start_bin=2**40). Names of models,
quantizers and ONNX tensors are 1 to 1024 bytes of UTF-8 without control characters. Every call
that waits releases the GIL.
"""

import errno
import json
import os
import secrets
import stat
import warnings

from qcal import _args, _qcal
from qcal._version import __version__
from qcal._errors import QcalError, QcalWarning
from qcal._aggregate import Aggregator, count_partial, merge_partial
from qcal._partial import partial_state
from qcal._tensors import tensor_parts

__all__ = [
    "Aggregator",
    "Client",
    "ModelSession",
    "QcalError",
    "QcalWarning",
    "DEFAULT_ADDRESS",
    "count_partial",
    "merge_partial",
]

DEFAULT_ADDRESS = "127.0.0.1:50051"


def _method_tuple(call, method, percentile=None, start_bin=None, stride=None):
    """(method, percentile, start_bin, stride) for the C++ layer, each checked for its type."""
    return (
        _args.utf8_text(call, "method", method),
        _args.optional_real(call, "percentile", percentile),
        _args.optional_int32(call, "start_bin", start_bin),
        _args.optional_int32(call, "stride", stride),
    )


def _overrides(call, overrides):
    """{quantizer: "mse" | {"method": .., "percentile": .., "start_bin": .., "stride": ..}}."""
    if overrides is None:
        return {}
    if not isinstance(overrides, dict):
        raise TypeError(
            f"{call}(): overrides must be a dict or None, got {type(overrides).__name__}"
        )
    result = {}
    for quantizer, spec in overrides.items():
        quantizer = _args.name(call, "overrides key", quantizer, "quantizer name")
        if isinstance(spec, str):
            result[quantizer] = _method_tuple(call, spec)
        elif isinstance(spec, dict):
            unknown = set(spec) - {"method", "percentile", "start_bin", "stride"}
            if unknown or "method" not in spec:
                raise QcalError(
                    "INVALID_ARGUMENT",
                    f"override of quantizer '{quantizer}' needs 'method' and may have "
                    f"'percentile', 'start_bin', 'stride' (got {sorted(map(str, spec))})",
                )
            result[quantizer] = _method_tuple(call, **spec)
        else:
            raise TypeError(
                f"{call}(): overrides[{quantizer!r}] must be a method name (str) or a dict, "
                f"got {type(spec).__name__}"
            )
    return result


class ModelSession:
    """Streams tensors into one model of a qcal-server and queries it. Thread-safe.

    record() copies the tensor into a bounded queue and returns; a background thread streams it.
    Calls that read or change the model (info, reset, compute_amax, amax_table, trt_cache,
    histogram, upload_onnx, export_onnx) flush first, so they see everything recorded before.
    Use it as a context manager to flush on exit.
    """

    def __init__(self, session):
        self._session = session
        self.last_export_warnings = []
        self.last_export_amax_method = None
        self.last_export_computed_table = None
        self.last_export_explain = []
        self.last_amax_warnings = []

    @property
    def name(self):
        """The model's name."""
        return self._session.model

    def record(self, quantizer, tensor):
        """Queues one tensor as a batch of `quantizer` (e.g. "conv1._input_quantizer").

        tensor: numpy array (float32, float16, float64) or torch tensor (float32, float16,
        bfloat16, float64; any device, detached and copied to the CPU), any shape and strides;
        every dimension >= 1 (the server refuses empty tensors), rank 0 is one value.
        Blocks (GIL released) while the queue is full; never drops data.
        Raises TypeError when quantizer is not a str or tensor is not an array (None, a str, a
        dict, ...). Raises QcalError: INVALID_ARGUMENT here for another dtype or a bad name;
        an error of an earlier
        background send (unknown model NOT_FOUND, empty tensor / axis out of range
        INVALID_ARGUMENT, batch above the server's limit RESOURCE_EXHAUSTED, ...) is raised by
        the next record() or flush(), once; tensors queued after the failing one are dropped.
        A broken stream (the server gone or restarting, or closing the stream) is not an error:
        the session reconnects and resends what the server has not made durable, and the server
        counts each tensor once; a server unreachable past reconnect_deadline (model()) raises
        UNAVAILABLE naming the deadline and the tensors not confirmed.
        """
        quantizer = _args.name("record", "quantizer", quantizer, "quantizer name")
        dtype, shape, buffer = tensor_parts(tensor, "record")
        self._session.record(quantizer, dtype, shape, buffer)

    def record_partial(self, quantizer, partial):
        """Queues a pre-aggregated batch of `quantizer`: a partial state dict (qcal.count_partial,
        qcal.merge_partial build them; the format is in qcal/_aggregate.py). The server merges
        it exactly, as if the tensors it was counted from had been sent. Raises, here: TypeError
        when quantizer is not a str, partial is not a dict or a field has the wrong type
        ("record_partial(): partial state field 'elements' must be an int, got str"); QcalError
        INVALID_ARGUMENT for a bad name, a missing or unknown key, both or neither of
        "histogram" and "max", a field out of range (a negative count, batches beyond
        2^63 - 1, counts not 1-D). The server's refusals (a non-canonical state, the other
        calibrator kind, a reference-layout model: FAILED_PRECONDITION) come at the next
        record() or flush(), like record()'s."""
        quantizer = _args.name("record_partial", "quantizer", quantizer, "quantizer name")
        self._session.record_partial(
            quantizer, partial_state("record_partial", "partial state", partial))

    def flush(self):
        """Waits until every recorded tensor is sent and applied; raises the first send error.
        With aggregate=True, first queues every quantizer's counted state."""
        self._session.flush()

    def commit(self):
        """A durable point: flush(), then the server's Commit for this session. With the
        server's --data-dir the model's state is on disk when it returns; without, the server
        keeps it in memory only (durable equals applied, lost at a server restart; README, "What
        survives what"). Returns {"applied_sequence", "durable_sequence"}: the session's last
        batch applied and durable (every batch recorded before the call is in both). Raises
        flush()'s errors; QcalError NOT_FOUND for an unknown model; UNAVAILABLE when the server
        cannot write its state (disk full, an I/O error: retried with backoff until
        reconnect_deadline, then raised with the server's message, naming the file), or stays
        unreachable past reconnect_deadline."""
        return self._session.commit()

    def stats(self):
        """Sender counters: queued_batches (not yet sent), unconfirmed_batches (sent, kept until
        durable, to be resent after a reconnect), queued_bytes (both; what max_queue_bytes
        bounds), blocked_records, dropped_batches and applied_batches / applied_elements /
        applied_nonfinite / applied_bytes / applied_partials (the server's counts: each batch once,
        when the server first reports it applied, also when that comes as a duplicate after a
        stream that ended unreported; applied_nonfinite as the streams reported it;
        applied_partials counts pre-aggregated batches). Exactly-once: last_sequence
        (batches numbered), applied_sequence and durable_sequence (as the server last reported),
        reconnects, resent_batches, duplicate_batches (resent batches the server had applied
        and dropped)."""
        return self._session.stats()

    def info(self):
        """The model: {"name", "has_onnx", "amax_method" (None before compute_amax),
        "histogram_layout" ("mergeable" or "reference"; None from a server without layouts),
        "default_input", "default_weight", "quantizers": {name: {"calibrator", "num_bits",
        "unsigned", "axis", "num_bins", "skip_zeros", "format" ("int" or "fp8_e4m3"),
        "batches", "elements", "nonfinite", "bytes", "bins", "amax_size"}}, "onnx_bindings":
        {quantizer: ONNX tensor}}.

        num_bins is the bins a histogram starts with; bins the bins it holds now (0 before its
        first non-zero value): growth appends bins of the same width, and past 2^20 bins
        adjacent bins are merged down to at most num_bins, after which growth appends again.
        amax_size: the amax values a max calibrator holds (1 per-tensor, else the channel
        count; 0 before data). onnx_bindings: with an uploaded ONNX model, the tensor each
        quantizer is bound to for export_onnx and trt_cache (the pairs a tensor_map would
        override); quantizers bound to no tensor are absent; empty without ONNX."""
        return self._session.info()

    def reset(self):
        """Drops collected data and the amax table (and the quantizers record() created); keeps
        configuration and ONNX. Returns info()."""
        return self._session.reset()

    def compute_amax(
        self, method="max", percentile=None, start_bin=None, stride=None, overrides=None
    ):
        """Computes amax for every quantizer with data, stores the table, and returns it parsed:
        {"model", "method", "quantizers": {name: {"amax": float or [per channel], "num_bits",
        "unsigned", "axis", "batches", "elements", ..., "format": "int" | "fp8_e4m3"}}}. An
        "fp8_e4m3" quantizer's scale is amax / 448, not amax / bound.

        method (str): "max", "entropy", "mse" or "percentile" (histogram quantizers; max
        quantizers always report their max). percentile (number): percentile method only, in
        (0, 100], default 99.99. start_bin, stride (int): entropy / mse only, the candidates,
        >= 1, default 128 and 1. overrides: {quantizer: method name, or {"method",
        "percentile", "start_bin", "stride"}}.
        Raises TypeError for an argument of the wrong type (stride=1.5, method=None).
        The table returned is the one this call computed (one server call), even while another
        client computes another method on the same model. Its TensorRT cache warnings (a scale
        replaced: amax 0, or a scale below the smallest normal float; an unsigned quantizer
        written as signed INT8; a quantizer left out: not 8-bit, FP8, or a name containing ": ") are
        issued as QcalWarning and kept in .last_amax_warnings.
        Raises QcalError: FAILED_PRECONDITION before any data; INVALID_ARGUMENT for an unknown
        method, a percentile outside (0, 100], a start_bin or stride below 1 or beyond int32, a
        start_bin beyond a histogram's bins, a parameter the method does not use.
        """
        table, _, warning_list = self._session.compute_amax(
            _method_tuple("compute_amax", method, percentile, start_bin, stride),
            _overrides("compute_amax", overrides),
        )
        self._warn_amax(warning_list)
        return json.loads(table)

    def amax_table(self):
        """The stored table (of the last compute_amax on the model, by any client), parsed as in
        compute_amax(). Raises QcalError FAILED_PRECONDITION when none was computed."""
        return json.loads(self._session.amax_table()[0])

    def trt_cache(self):
        """The stored table as a TensorRT calibration cache (text); its warnings as in
        compute_amax()."""
        _, text, warning_list = self._session.amax_table()
        self._warn_amax(warning_list)
        return text

    def _warn_amax(self, warning_list):
        # stacklevel 3: the warning points at the caller of compute_amax / trt_cache.
        self.last_amax_warnings = list(warning_list)
        for warning in warning_list:
            warnings.warn(warning, QcalWarning, stacklevel=3)

    def histogram(self, quantizer):
        """Histogram of |x| of a histogram quantizer: {"model", "quantizer", "counts" (numpy
        uint64, n bins), "edges" (numpy float32, n + 1), "abs_max", "total", "nonfinite"}.
        Raises QcalError NOT_FOUND for an unknown model or quantizer, FAILED_PRECONDITION for a
        max calibrator (weights by default), INVALID_ARGUMENT for a bad name; TypeError when
        quantizer is not a str."""
        return self._session.histogram(
            _args.name("histogram", "quantizer", quantizer, "quantizer name")
        )

    def upload_onnx(self, onnx, tensor_map=None):
        """Uploads a float ONNX model (path, bytes or onnx.ModelProto; opset >= 13).
        tensor_map: {quantizer: ONNX tensor} overriding the automatic matching.
        Returns {"bytes", "opset", "bindings": {quantizer: tensor}}.
        Raises QcalError INVALID_ARGUMENT for a malformed model or an opset below 13 (or a bad
        name in tensor_map); TypeError for an argument of the wrong type."""
        call = "upload_onnx"
        return self._session.upload_onnx(
            _onnx_bytes(call, onnx), _args.string_map(call, "tensor_map", tensor_map)
        )

    def export_onnx(
        self,
        onnx=None,
        out=None,
        method=None,
        percentile=None,
        start_bin=None,
        stride=None,
        overrides=None,
        tensor_map=None,
        target=None,
        explain=False,
        fp8_ops=None,
    ):
        """The QDQ ONNX model (bytes): the uploaded float model with QuantizeLinear /
        DequantizeLinear pairs, scale = amax / bound.

        onnx: a float ONNX model (path, bytes or onnx.ModelProto) to export, sent with the
        export, with tensor_map; the server keeps it (and tensor_map) as the model's ONNX only if
        the export succeeds. None uses the stored one (tensor_map is then refused).
        out: also write the result to this path: written to "<out>.partial", opened before
        anything is sent (an out that cannot be written raises its OSError, e.g.
        FileNotFoundError, IsADirectoryError, OSError EINVAL "not a regular file" for a device or
        FIFO, and the server keeps nothing), and renamed to out once complete (a symlink out: to
        the file it points to); on any failure the partial file is removed and out is left as it
        was.
        method (and percentile, start_bin, stride, overrides as in compute_amax): compute the
        table first (stored only if the export succeeds); None uses the table of the last
        compute_amax. A refused export changes nothing on the server.
        target: "tensorrt" (default) or "onnxruntime": the placement rules' target (README,
        "TensorRT placement rules": shared vs dedicated Q/DQ pairs, unsigned as INT8 for
        TensorRT, ConvTranspose weight axis).
        explain: True also fills .last_export_explain with one dict per node input a placement
        rule considered, in graph order: {"node", "op_type", "input" (int), "tensor",
        "decision" ("quantized", "rewritten", "kept" or "skipped"), "quantizer", "rule",
        "reason"}; False (default) leaves it empty. The return value is the same either way.
        fp8_ops: how FP8 E4M3 quantizers are written: "onnx" (default; opset-19
        QuantizeLinear/DequantizeLinear with a FLOAT8E4M3FN zero point, the model's opset raised
        to 19, INVALID_ARGUMENT naming an op whose meaning changes on the way) or "trt"
        (TensorRT's trt::TRT_FP8QuantizeLinear/TRT_FP8DequantizeLinear; opset unchanged).
        Export warnings (e.g. an amax of 0 given scale 1) are issued as QcalWarning and kept in
        .last_export_warnings. Which table the export used: .last_export_amax_method (its
        method) and .last_export_computed_table (True when computed by this call, False for the
        stored table, which any client may have computed last).
        Raises QcalError: FAILED_PRECONDITION without an uploaded ONNX or an amax table;
        INVALID_ARGUMENT for a malformed or too old ONNX, or a parameter as in compute_amax
        (percentile, start_bin, stride or overrides without a method included).
        Raises TypeError for an argument of the wrong type.
        """
        call = "export_onnx"
        compute = None
        if method is not None:
            compute = _method_tuple(call, method, percentile, start_bin, stride)
        else:
            given = {"percentile": percentile, "start_bin": start_bin, "stride": stride,
                     "overrides": overrides}
            unused = [argument for argument, value in given.items() if value is not None]
            if unused:
                raise QcalError(
                    "INVALID_ARGUMENT",
                    f"{', '.join(unused)} given without a method (they only apply when "
                    "export_onnx computes the table)",
                )
        if out is not None:
            _args.path(call, "out", out)
        arguments = (
            None if onnx is None else _onnx_bytes(call, onnx),
            compute,
            _overrides(call, overrides),
            _args.string_map(call, "tensor_map", tensor_map),
            "" if target is None else _args.utf8_text(call, "target", target),
            _args.boolean(call, "explain", explain),
            "" if fp8_ops is None else _args.utf8_text(call, "fp8_ops", fp8_ops),
        )
        # The output is opened before anything is sent (as the CLI does), so an out that cannot
        # be written raises its OSError and the server keeps nothing of this export.
        output = None if out is None else _PartialFile(out)
        try:
            data, warning_list, amax_method, computed, explained = self._session.export_onnx(
                *arguments
            )
            if output is not None:
                output.commit(data)
        finally:
            if output is not None:
                output.discard()
        self.last_export_warnings = list(warning_list)
        self.last_export_amax_method = amax_method
        self.last_export_computed_table = computed
        self.last_export_explain = list(explained)
        for warning in warning_list:
            warnings.warn(warning, QcalWarning, stacklevel=2)
        return data

    def close(self):
        """Flushes; the session's stream is closed when the object goes away."""
        self.flush()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.flush()
        return False

    def __repr__(self):
        return f"qcal.ModelSession({self.name!r})"


class _PartialFile:
    """The file behind export_onnx(out=...): "<out>.partial", opened (created or truncated) at
    once, renamed to out by commit(); discard() removes it unless committed."""

    def __init__(self, out):
        # The rename in commit() would fail on a directory, after the server had stored the
        # export, and would replace a device or FIFO: refuse them before anything is sent.
        self._out = _write_target(out)
        self._partial = self._out + ".partial"
        self._file = open(self._partial, "wb")
        self._committed = False

    def commit(self, data):
        self._file.write(data)
        self._file.close()
        os.replace(self._partial, self._out)
        self._committed = True

    def discard(self):
        if self._committed:
            return
        self._file.close()
        try:
            os.remove(self._partial)
        except FileNotFoundError:
            pass


def _write_atomically(path, data):
    """Writes `data` to a new file next to `path` (".NAME.RANDOM.tmp", created with mode 0o666
    less the umask), fsyncs it, renames it over `path` and fsyncs the directory: readers see the
    old file or the new one, never a part. On any error the temporary file is removed, `path` is
    left as it was, and the OSError is raised (IsADirectoryError for a directory,
    FileNotFoundError for a missing directory)."""
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    directory, base = os.path.split(path)
    directory = directory or "."
    temp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                     0o666)
    except OSError as error:
        # Named after the file asked for, not the temporary one.
        raise type(error)(error.errno, error.strerror, path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException as error:
        try:
            os.remove(temp)
        except FileNotFoundError:
            pass
        if isinstance(error, OSError) and error.errno is not None:
            raise type(error)(error.errno, error.strerror, path) from None
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _not_regular_error(path, mode):
    if stat.S_ISDIR(mode):
        return IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    return OSError(errno.EINVAL, "not a regular file", path)


def _read_regular_file(path, read=True):
    """The bytes of the regular file at `path`. A FIFO, device or socket raises OSError EINVAL
    "not a regular file" (a directory IsADirectoryError) without being read, so that a FIFO
    cannot block and a device cannot be read forever: checked with os.stat before opening, and
    again on the open file (opened non-blocking, so a FIFO swapped in meanwhile cannot block).
    read=False only checks (and opens) it, returning None."""
    path = os.fspath(path)
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise _not_regular_error(path, mode)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular_error(path, mode)
        return f.read() if read else None


def _write_target(path):
    """Where a write of `path` goes: `path`, or for a symlink the file it points to (so the link
    survives the rename over it; a dangling link: the path it names). Raises, before anything is
    written, IsADirectoryError for a directory and OSError EINVAL "not a regular file" for a
    device, FIFO or socket: the write renames a new file over the path, which must never
    replace one of those."""
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    target = os.path.realpath(path) if os.path.islink(path) else path
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    if not stat.S_ISREG(mode):
        raise _not_regular_error(path, mode)
    return target


def _state_bytes(call, state):
    """A state given to load_state: bytes-like, or the path of a state file (read here)."""
    if isinstance(state, (bytes, bytearray, memoryview)):
        return bytes(state)
    if not isinstance(state, (str, os.PathLike)):
        raise TypeError(
            f"{call}(): state must be a path (str or os.PathLike) or bytes, got "
            f"{type(state).__name__}"
        )
    return _read_regular_file(state)


def _onnx_bytes(call, onnx):
    if isinstance(onnx, (bytes, bytearray, memoryview)):
        return bytes(onnx)
    if hasattr(onnx, "SerializeToString"):
        return onnx.SerializeToString()
    if not isinstance(onnx, (str, os.PathLike)):
        raise TypeError(
            f"{call}(): onnx must be a path, bytes or onnx.ModelProto, got {type(onnx).__name__}"
        )
    return _read_regular_file(onnx)


class Client:
    """A connection to qcal-server. Creating it contacts nothing; calls raise QcalError
    UNAVAILABLE when no server answers.

    addr: "host:port"; None means $QCAL_SERVER, else 127.0.0.1:50051.
    timeout: seconds allowed for each call (not for record streams), > 0; None means no limit.
    tls_ca: path of a PEM file with the CA certificate(s) that signed the server's certificate;
        set, the connection uses TLS (the host name or IP address of addr must be in the
        server's certificate). None: plaintext.
    tls_cert, tls_key: paths of the client's PEM certificate and its key, for a server with
        --tls-client-ca (mutual TLS); both or neither, and only with tls_ca.
    token: bearer token for a server with --auth-tokens, sent with every call as
        "authorization: Bearer TOKEN"; None means $QCAL_TOKEN when set, else none. Without TLS
        the token crosses the network in clear text: use TLS beyond loopback.
    Raises TypeError for an argument of the wrong type, QcalError INVALID_ARGUMENT for a
    timeout <= 0, a TLS file that cannot be read (naming it), tls_cert without tls_key (or the
    other way round) or without tls_ca, or a token with a blank or a byte outside printable
    ASCII. A server that refuses the token answers each call with QcalError UNAUTHENTICATED, or
    PERMISSION_DENIED when the token's role or model prefix does not allow the call.
    """

    def __init__(self, addr=None, timeout=None, *, tls_ca=None, tls_cert=None, tls_key=None,
                 token=None):
        if addr is not None:
            _args.utf8_text("Client", "addr", addr)
        texts = {}
        for name, value in (("tls_ca", tls_ca), ("tls_cert", tls_cert), ("tls_key", tls_key),
                            ("token", token)):
            if value is None:
                value = ""
            elif name == "token":
                # Checked here, never quoted: an error message must not show the token.
                if not isinstance(value, str):
                    raise TypeError(f"Client(): token must be a str, got {type(value).__name__}")
                if not all("!" <= ch <= "~" for ch in value):
                    raise QcalError(
                        "INVALID_ARGUMENT",
                        "the token (token, --token or $QCAL_TOKEN) holds a byte outside "
                        "printable ASCII or a blank",
                    )
            else:
                if isinstance(value, os.PathLike):
                    value = os.fspath(value)
                _args.utf8_text("Client", name, value)
            texts[name] = value
        self.address = addr or os.environ.get("QCAL_SERVER") or DEFAULT_ADDRESS
        self._client = _qcal.Client(self.address, _args.timeout("Client", timeout), **texts)

    def model(self, name, default_input=None, default_weight=None, quantizers=None, create=True,
              max_queue_bytes=None, chunk_bytes=None, histogram_layout=None, aggregate=False,
              send_every=None, reconnect_deadline=None):
        """A ModelSession on `name`, creating the model when it does not exist.

        Descriptors (pytorch-quantization's QuantDescriptor, the parts calibration uses), dicts
        with the keys of the JSON amax table: {"num_bits": 2..16, "unsigned": bool, "axis": int
        (per-channel, max calibrators) or None (per-tensor), "calibrator": "max" | "histogram",
        "num_bins": 1..2**24, "skip_zeros": bool, "format": "int" | "fp8_e4m3"}. FP8 E4M3
        (scale = amax / 448) is "format": "fp8_e4m3" or pytorch-quantization's "num_bits": (4, 3);
        it is 8-bit and signed (another num_bits, or "unsigned": True, is INVALID_ARGUMENT), and
        the TensorRT cache leaves it out. A key left out takes the role's default:
        for default_input / default_weight pytorch-quantization's (input: 8-bit signed
        per-tensor histogram of 2048 bins; weight: 8-bit signed per-channel axis 0, max); for
        a declared quantizer the default_input, or default_weight for a name ending in
        "_weight_quantizer", given here. An axis left out is the role's for a max calibrator
        and per-tensor for a histogram.
        default_input, default_weight: descriptors of the quantizers first seen by record().
        quantizers: quantizers declared up front (kept by reset()), descriptors with a "name"
        (e.g. {"name": "conv1._input_quantizer", "num_bins": 4096}).
        histogram_layout: how the model's histograms lay out their bins: "mergeable" (bins of
        width 2^k from 0: the same data gives the same histogram and amax in any order, batching
        or split over trainers, and saved states merge) or "reference" (pytorch-quantization's
        bins, fixed by the first batch). None: the server's default (its
        --default-histogram-layout, mergeable unless set). It counts as a
        descriptor below (part of the configuration compared when the model exists).

        Without descriptors (all four None) the model is created with the defaults when it
        does not exist, and an existing model is joined whatever its configuration (see
        info()). With any descriptor, the model is created with them, or, when it exists,
        joined only if its configuration (defaults and declared quantizers, in any order)
        equals the one asked for: otherwise QcalError FAILED_PRECONDITION naming the first
        difference ("model 'm' exists with default_input num_bins 2048, not 4096"); never
        silently other descriptors. One server call (CreateModel with exist_ok), so trainers
        starting together cannot race.
        create: False opens a session without creating anything (descriptors are then
        refused). max_queue_bytes: bytes of tensors record() may hold before it blocks
        (default 256 MiB; 0 holds one tensor at a time). chunk_bytes: data bytes per message
        (1 .. 4 MiB, default 4 MiB).
        reconnect_deadline: seconds (a finite number > 0; None: 60) the session keeps
        reconnecting, resending what the server has not made durable, after its stream broke
        with UNAVAILABLE (server gone or restarting) or CANCELLED (the server closed it); past
        it the next record() or flush() raises QcalError UNAVAILABLE naming the deadline and
        the batches not confirmed (README, "What survives what").
        aggregate: True counts each record()ed tensor on the calling thread into its
        quantizer's partial state with qcal's C++ kernels (exactly what the server would count)
        and sends the state, not the tensor. send_every (aggregate=True only; an int >= 1):
        a quantizer's state is sent after every `send_every` record() calls of that quantizer;
        None: only at flush() (and so before every call that flushes). The
        session reads the model once (first record()) for each quantizer's calibrator; a
        histogram quantizer of a reference-layout model raises QcalError FAILED_PRECONDITION
        "pre-aggregation needs the mergeable histogram layout".
        Raises TypeError for an argument of the wrong type (a descriptor that is not a dict,
        num_bits=8.0, unsigned=1); QcalError INVALID_ARGUMENT for a bad name, size or
        descriptor value (an unknown key, num_bits=1, calibrator="kl", a histogram with an
        axis, skip_zeros with a max calibrator, a histogram_layout other than "mergeable" or
        "reference"), a send_every below 1 or given with aggregate=False."""
        call = "model"
        name = _args.name(call, "name", name, "model name")
        default_input, default_weight, quantizers = _args.descriptors(
            call, default_input, default_weight, quantizers)
        histogram_layout = _args.histogram_layout(call, histogram_layout)
        max_queue_bytes = _args.optional_size(call, "max_queue_bytes", max_queue_bytes, 0)
        _args.at_most(max_queue_bytes, "max_queue_bytes", 2**64 - 1, "2^64 - 1")  # a size_t
        chunk_bytes = _args.optional_size(call, "chunk_bytes", chunk_bytes, 1,
                                          _qcal.MAX_CHUNK_BYTES)
        send_every = _args.send_every(call, aggregate, send_every)
        reconnect_deadline = _args.seconds(call, "reconnect_deadline", reconnect_deadline)
        strict = (default_input is not None or default_weight is not None or bool(quantizers)
                  or histogram_layout is not None)
        if not create and strict:
            raise QcalError(
                "INVALID_ARGUMENT",
                "descriptors (default_input, default_weight, quantizers, histogram_layout) apply "
                "only with create=True",
            )
        if strict:
            self._client.create_model(name, default_input, default_weight, quantizers, True,
                                      histogram_layout)
        elif create:
            try:
                self._client.create_model(name)
            except QcalError as error:
                if error.code != "ALREADY_EXISTS":
                    raise
        return ModelSession(self._client.session(name, max_queue_bytes, chunk_bytes, aggregate,
                                                 send_every or 0, reconnect_deadline))

    def create(self, name, default_input=None, default_weight=None, quantizers=None,
               exist_ok=False, histogram_layout=None):
        """Creates a model; returns its info. Descriptors and histogram_layout ("mergeable",
        "reference", None for the server's default) as in model(). Raises QcalError
        ALREADY_EXISTS when it exists; with exist_ok=True an existing model of the same
        configuration (layout included) is returned instead, and one of another is
        FAILED_PRECONDITION; INVALID_ARGUMENT for a bad descriptor or layout."""
        call = "create"
        name = _args.name(call, "name", name, "model name")
        default_input, default_weight, quantizers = _args.descriptors(
            call, default_input, default_weight, quantizers)
        exist_ok = _args.boolean(call, "exist_ok", exist_ok)
        histogram_layout = _args.histogram_layout(call, histogram_layout)
        return self._client.create_model(name, default_input, default_weight, quantizers,
                                         exist_ok, histogram_layout)

    def info(self, name):
        """A model's info (see ModelSession.info). Raises QcalError NOT_FOUND."""
        return self._client.get_model(_args.name("info", "name", name, "model name"))

    def models(self):
        """Info of every model on the server, a list."""
        return self._client.list_models()

    def delete(self, name):
        """Deletes a model. Raises QcalError NOT_FOUND."""
        self._client.delete_model(_args.name("delete", "name", name, "model name"))

    def commit(self, name):
        """A durable point for the model: with the server's --data-dir its state is on disk
        when this returns (as `qcal commit MODEL`). Raises QcalError NOT_FOUND for an unknown
        model; UNAVAILABLE when the server cannot write the state (naming the file)."""
        self._client.commit_model(_args.name("commit", "name", name, "model name"))

    def reset(self, name):
        """Drops a model's data and amax table, keeps its configuration. Returns its info."""
        return self._client.reset_model(_args.name("reset", "name", name, "model name"))

    def save_state(self, name, path=None):
        """The model's whole state as a state file (bytes): its configuration and histogram
        layout, every quantizer's calibrator state (histogram counts or maxima) and counters,
        the uploaded ONNX with its tensor_map, and the stored amax table (calibration.proto,
        StateFile). The same bytes as `qcal state save`; load_state() takes them back, here or on
        another server.

        path: also write the bytes there, atomically (a temporary file next to it, fsynced, then
        renamed over it): a failed write leaves path as it was. A symlink is followed: the file
        it points to is replaced (a dangling link: the path it names is created) and the link
        is kept. A path that is a directory raises IsADirectoryError, one that is a device,
        FIFO or socket OSError EINVAL "not a regular file", before anything is asked of the
        server (such a path is never replaced); other OSErrors (FileNotFoundError for a missing
        directory, PermissionError) come from the write.
        Raises QcalError NOT_FOUND for an unknown model, INVALID_ARGUMENT for a bad name;
        TypeError for an argument of the wrong type."""
        call = "save_state"
        name = _args.name(call, "name", name, "model name")
        if path is not None:
            path = _write_target(_args.path(call, "path", path))
        data = self._client.save_state(name)
        if path is not None:
            _write_atomically(path, data)
        return data

    def load_state(self, name, state, merge=False):
        """Loads a state file into model `name` and returns the model's info (as info()).

        state: the bytes save_state() returned, or the path of a file it (or `qcal state save`)
        wrote; a path that cannot be read raises its OSError (FileNotFoundError,
        IsADirectoryError, PermissionError; OSError EINVAL "not a regular file" for a FIFO,
        device or socket, which is not opened) before anything is sent.
        merge=False creates `name` from the state (any name: not necessarily the one it was
        saved from); merge=True adds the state's calibrator state and counters into the existing
        model `name`, exactly: histograms of the mergeable layout add bin for bin, maxima take
        the max, counters add. Loading A's state and merging B's gives the histograms and amax
        one model fed A's and B's data would have.
        The server checks the whole file first; a refused load changes nothing. Raises
        QcalError: INVALID_ARGUMENT for a foreign, truncated or corrupt file (naming what is
        wrong) or a bad name; ALREADY_EXISTS without merge when `name` exists; NOT_FOUND with
        merge when it does not; FAILED_PRECONDITION with merge for another configuration
        (defaults, declared quantizers, layout) or reference-layout histograms whose edges
        differ; RESOURCE_EXHAUSTED for a file above the server's --max-batch-bytes. TypeError
        for an argument of the wrong type."""
        call = "load_state"
        name = _args.name(call, "name", name, "model name")
        merge = _args.boolean(call, "merge", merge)
        if isinstance(state, (str, os.PathLike)):
            # Streamed from the file by the C++ client, 4 MiB at a time, so a file of any size
            # costs little memory here; checked (and opened once, for its OSError) first.
            path = os.fsdecode(os.fspath(state))
            _read_regular_file(path, read=False)
            return self._client.load_state_file(name, path, merge)
        return self._client.load_state(name, _state_bytes(call, state), merge)

    def __repr__(self):
        return f"qcal.Client({self.address!r})"
