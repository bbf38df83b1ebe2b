"""Calibration through qcal-server: stream activations, then amax + QDQ export per method."""

import json
import os
import sys
import time
import uuid

import numpy as np
import torch

# (method, percentile) pairs of the example; percentile is only sent for "percentile".
METHODS = (("max", None), ("entropy", None), ("mse", None), ("percentile", 99.99))


def calibration_batches(x_train, batches, batch_size):
    """The same `batches` x `batch_size` training images every run: the first ones of a fixed
    permutation (seed 1)."""
    order = np.random.default_rng(1).permutation(len(x_train))
    return [x_train[order[i * batch_size:(i + 1) * batch_size]] for i in range(batches)]


def calibrate_on_server(client, net, batches, float_onnx, out_dir, log=print,
                        layout="mergeable", aggregate=False, export=True, name="fashion_mnist",
                        descriptors=None, suffix=None, export_options=None):
    """Streams net's Conv/Linear inputs over batches into a fresh model on client's server (its
    histograms in `layout`, "mergeable" or "reference"; aggregate=True counts them here and sends
    partial states instead of tensors), uploads float_onnx, then for each of METHODS computes
    amax and (export=True) exports out_dir/model_qdq_<method><suffix>.onnx, its table written as
    amax_<method><suffix>.json; the suffix is "" for the mergeable layout and "_reference" for
    the reference layout, unless given.
    Other examples reuse it: name prefixes the server's model name; descriptors are extra
    keyword arguments of client.model (default_input, default_weight, quantizers);
    export_options extra keyword arguments of session.export_onnx (e.g. target, explain).
    Returns {method: {"path" (None without export), "seconds" (compute + export), "table",
    "explain": the session's last_export_explain after the export, None where the client has
    none)}}. The model is deleted on return, so a shared server keeps nothing of the run."""
    # A fresh name per run: a shared server may hold data of earlier runs.
    model_name = f"{name}-{layout}-{uuid.uuid4().hex[:8]}"
    session = client.model(model_name, histogram_layout=layout, **(descriptors or {}))
    if suffix is None:
        suffix = "" if layout == "mergeable" else f"_{layout}"
    try:
        stream_activations(net, session, batches, log, aggregate)
        if export:
            bindings = session.upload_onnx(float_onnx)["bindings"]
            log(f"  uploaded {os.path.basename(float_onnx)}, quantizer -> tensor: "
                + ", ".join(f"{q} -> {t}" for q, t in bindings.items()))
        results = {}
        for method, percentile in METHODS:
            table, path, seconds = compute_and_export(session, out_dir, method, percentile,
                                                      suffix if export else None,
                                                      export_options)
            if export:
                with open(os.path.join(out_dir, f"amax_{method}{suffix}.json"), "w") as f:
                    json.dump(table, f, indent=1)
            results[method] = {"path": path, "seconds": seconds, "table": table,
                               "explain": getattr(session, "last_export_explain", None)}
            log(f"  {method}: amax {'+ QDQ export ' if export else ''}in {seconds:.3f} s"
                + (f" -> {path}" if path else ""))
        return results
    finally:
        del session  # closes its Record stream, so a server stopped next need not wait for it
        _delete_quietly(client, model_name, log)


def stream_activations(net, session, batches, log=print, aggregate=False):
    """Runs net over batches (float32 [B, 1, 28, 28] arrays) inside qcal.torch.calibrate, which
    records the input of every Conv/Linear module under pytorch-quantization names (or, with
    aggregate=True, counts them here) and flushes on exit (the server has everything once it
    returns)."""
    import qcal.torch

    net.eval()
    start = time.perf_counter()
    with qcal.torch.calibrate(net, session, aggregate=aggregate), torch.no_grad():
        for i, batch in enumerate(batches):
            net(torch.from_numpy(batch))
            log(f"  batch {i + 1}/{len(batches)}: {len(batch)} images "
                + ("counted" if aggregate else "recorded"))
    sent = sum(q["bytes"] for q in session.info()["quantizers"].values())
    log(f"  flushed to the server ({time.perf_counter() - start:.2f} s, {sent} bytes "
        + ("of partial states)" if aggregate else "of tensors)"))


def compute_and_export(session, out_dir, method, percentile=None, suffix="",
                       export_options=None):
    """Computes amax by method on the server and, unless suffix is None, exports the QDQ model
    of the uploaded float ONNX to out_dir/model_qdq_<method><suffix>.onnx (export_options: extra
    keyword arguments of session.export_onnx). Returns (amax table, onnx path or None, seconds
    of compute + export)."""
    out = None if suffix is None else os.path.join(out_dir, f"model_qdq_{method}{suffix}.onnx")
    start = time.perf_counter()
    kwargs = {"method": method}
    if percentile is not None:
        kwargs["percentile"] = percentile
    table = session.compute_amax(**kwargs)
    if out is not None:
        # The uploaded model, with the table just computed.
        session.export_onnx(out=out, **(export_options or {}))
    return table, out, time.perf_counter() - start


def input_amax(table):
    """{"<module>._input_quantizer": float amax} of an amax table (DESIGN.md JSON layout)."""
    return {name: float(q["amax"]) for name, q in table["quantizers"].items()
            if name.endswith("._input_quantizer") and not isinstance(q["amax"], list)}


def _delete_quietly(client, model_name, log):
    """Removes the run's model; a failure here must not hide an earlier one."""
    try:
        client.delete(model_name)
    except Exception as error:  # noqa: BLE001  (cleanup only)
        log(f"  could not delete model {model_name} on the server: {error}", file=sys.stderr)
