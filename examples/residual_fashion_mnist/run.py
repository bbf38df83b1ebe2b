#!/usr/bin/env python3
"""Residual CNN on Fashion-MNIST with qcal: train a small ResNet (or reuse the cached one),
export float ONNX, stream 2 x 512 training images through qcal.torch.calibrate to qcal-server,
compute amax by max / entropy / mse / percentile 99.99, export one QDQ ONNX per method for
TensorRT (`target="tensorrt"`), count where Q/DQ landed (residual Add shortcuts, pool inputs),
and evaluate float and QDQ models with ONNX Runtime (onnxruntime-node). INT8 always; FP8 E4M3
too where this qcal has FP8 quantizers. Prints a table, writes results.json.

  PYTHONPATH=build/python /usr/bin/python3 examples/residual_fashion_mnist/run.py \\
      --build-dir build

It reuses examples/fashion_mnist's modules (data, training loop, float export, local server,
calibration, ONNX Runtime evaluation) and adds the network (resnet_model.py) and the placement
count (qdq_check.py). Features that qcal may lack are detected, and the run says which it used:
qcal.torch.ResidualQuantizer (explicit shortcut quantizers), the export's `explain` entries, FP8
quantizer descriptors.

Exit status: 0 when every step worked, the server's max amax equals a local torch computation,
INT8 (and FP8, when run) entropy / mse / percentile stay within --max-drop points of float, and,
when the placement check applies (--check-placement), every residual Add's shortcut input and
every pool input has Q/DQ and no conv-side Add input has any; 1 otherwise.
"""

import argparse
import collections
import contextlib
import functools
import inspect
import json
import os
import sys
import time
import uuid

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
# The shared pieces live in examples/fashion_mnist (imported, not copied).
sys.path.insert(1, os.path.join(REPO, "examples", "fashion_mnist"))

import calibrate  # noqa: E402  (examples/fashion_mnist)
import data  # noqa: E402
import entry  # noqa: E402
import evaluate  # noqa: E402
import export  # noqa: E402
import qdq_check  # noqa: E402  (this folder)
import reference_amax  # noqa: E402
import report  # noqa: E402
import resnet_model  # noqa: E402
import server  # noqa: E402
import train  # noqa: E402

NAME = "residual_fashion_mnist"
# FP8 E4M3 descriptors, in the two spellings of the Python client's quantizer spec.
FP8_SPELLINGS = ({"format": "fp8_e4m3"}, {"num_bits": (4, 3)})
log = functools.partial(print, flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build-dir", default=os.path.join(REPO, "build"),
                   help="build folder holding qcal-server and python/qcal (default: build)")
    p.add_argument("--server", default=os.environ.get("QCAL_SERVER"),
                   help="address of a running qcal-server (default $QCAL_SERVER); "
                        "without it a local one is started from the build folder")
    p.add_argument("--out-dir", help=f"outputs (default out/{NAME}, --quick: out/{NAME}/quick)")
    p.add_argument("--data-dir", help="Fashion-MNIST .gz files (default "
                                      f"$FASHION_MNIST_DIR or {data.DEFAULT_DIR})")
    p.add_argument("--epochs", type=int, help="training epochs (default 3, --quick: 1)")
    p.add_argument("--calib-batches", type=int, default=2)
    p.add_argument("--calib-batch-size", type=int, default=512)
    p.add_argument("--max-drop", type=float,
                   help="allowed top-1 loss in points of entropy/mse/percentile vs float "
                        "(default 1.0, --quick: 3.0)")
    p.add_argument("--fp8", choices=("auto", "on", "off"), default="auto",
                   help="FP8 E4M3 run: auto (when qcal accepts FP8 quantizers and exports "
                        "them; otherwise say why and go on), on (fail without it), off")
    p.add_argument("--check-placement", choices=("auto", "on", "off"), default="auto",
                   help="fail when a residual shortcut or pool input lacks Q/DQ: auto (when "
                        "the export has explain entries and calibration recorded residual or "
                        "pool quantizers), on, off (counts are printed in any case)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for torch and ORT")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: train 1 epoch on 10,000 images, evaluate 1,000 test images")
    return p.parse_args()


def export_options(qcal):
    """Keyword arguments for ModelSession.export_onnx: TensorRT's placement, plus explain=True
    where the client has it."""
    params = inspect.signature(qcal.ModelSession.export_onnx).parameters
    options = {"target": "tensorrt"}
    if "explain" in params:
        options["explain"] = True
    return options


def fp8_descriptors(client, qcal):
    """(descriptor dict, None) for the first spelling of FP8_SPELLINGS that the client and the
    server accept for a model's default input and weight quantizers, or (None, reason)."""
    reasons = []
    for spelling in FP8_SPELLINGS:
        name = f"{NAME}-fp8probe-{uuid.uuid4().hex[:8]}"
        try:
            client.model(name, default_input=dict(spelling), default_weight=dict(spelling))
        except (qcal.QcalError, TypeError, ValueError) as error:
            reasons.append(f"{spelling}: {getattr(error, 'message', error)}")
            continue
        client.delete(name)
        return spelling, None
    return None, "; ".join(reasons)


def explain_summary(entries):
    """{"<rule>: <decision>": count} of a list of explain entries (dicts or objects)."""
    def field(item, key):
        return item.get(key) if isinstance(item, dict) else getattr(item, key, None)

    counts = collections.Counter(f"{field(e, 'rule')}: {field(e, 'decision')}"
                                 for e in entries or [])
    return dict(sorted(counts.items()))


def new_quantizers(table):
    """Names of the table's residual and pooling quantizers (issue 12's recorded points)."""
    names = sorted(table["quantizers"])
    return ([n for n in names if n.endswith(".residual_quantizer")],
            [n for n in names if n.endswith("pool._input_quantizer")])


def calibrate_all(args, qcal, client, net, calib, float_onnx, out_dir, options):
    """INT8 always, then FP8 per --fp8. Returns ({"int8": results, "fp8": results or None},
    FP8 note or None)."""
    runs = {"int8": calibrate.calibrate_on_server(client, net, calib, float_onnx, out_dir, log,
                                                  name=NAME, export_options=options),
            "fp8": None}
    if args.fp8 == "off":
        return runs, "FP8 not run (--fp8 off)"
    spelling, reason = fp8_descriptors(client, qcal)
    if spelling is None:
        note = f"FP8 not run: this qcal refuses FP8 quantizers ({reason})"
        if args.fp8 == "on":
            raise RuntimeError(note)
        return runs, note
    log(f"  FP8 E4M3 ({spelling} on inputs and weights):")
    try:
        runs["fp8"] = calibrate.calibrate_on_server(
            client, net, calib, float_onnx, out_dir, log, name=NAME + "-fp8",
            descriptors={"default_input": dict(spelling), "default_weight": dict(spelling)},
            suffix="_fp8", export_options=options)
    except qcal.QcalError as error:
        note = f"FP8 not run: the server refused it ({error.code}: {error.message})"
        if args.fp8 == "on":
            raise RuntimeError(note) from error
        return runs, note
    return runs, None


def run(args, qcal):
    """The whole example; returns the exit status."""
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    out_dir = args.out_dir or os.path.join(REPO, "out", NAME, *(["quick"] if args.quick else []))
    os.makedirs(out_dir, exist_ok=True)
    config = train.TrainConfig(epochs=args.epochs or (1 if args.quick else 3),
                               train_images=10000 if args.quick else 60000,
                               batch_size=64 if args.quick else 128)
    eval_count = 1000 if args.quick else None
    max_drop = args.max_drop if args.max_drop is not None else (3.0 if args.quick else 1.0)
    residual_factory = getattr(qcal.torch, "ResidualQuantizer", None)
    options = export_options(qcal)

    log("[1/6] loading Fashion-MNIST")
    train_images, train_labels = data.load_split("train", args.data_dir)
    test_images, test_labels = data.load_split("t10k", args.data_dir)
    x_train = data.normalize(train_images)
    images_path, labels_path = data.write_eval_set(test_images, test_labels, out_dir)
    log(f"  {len(train_images)} training, {len(test_images)} test images")

    log("[2/6] model (a small ResNet: 3 BasicBlocks, MaxPool, AdaptiveAvgPool2d, Linear)")
    net = train.load_or_train(config, x_train, train_labels, out_dir, log,
                              factory=resnet_model.ResidualFashionCNN,
                              arch=resnet_model.ARCH_VERSION)

    log("[3/6] float ONNX (opset 13, eval mode: BatchNorm folded)")
    float_onnx = export.export_float_onnx(net, os.path.join(out_dir, "model_float.onnx"))
    log(f"  {float_onnx}")
    # After the float export, so the graph is the plain network's whatever the quantizer does.
    if residual_factory is not None:
        paths = resnet_model.use_residual_quantizers(net, residual_factory)
        log("  qcal.torch.ResidualQuantizer on the shortcut of " + ", ".join(paths))
    else:
        log("  this qcal has no qcal.torch.ResidualQuantizer: shortcuts are recorded only if "
            "qcal.torch.calibrate finds residual adds itself")
    log(f"  export options: {options}")

    calib = calibrate.calibration_batches(x_train, args.calib_batches, args.calib_batch_size)
    problems = []
    with contextlib.ExitStack() as stack:
        client = qcal.Client(server.server_address(stack, args.server, args.build_dir, log))
        runs, fp8_note = calibrate_all(args, qcal, client, net, calib, float_onnx, out_dir,
                                       options)
    if fp8_note:
        log("  " + fp8_note)
    int8 = runs["int8"]
    mismatch = reference_amax.compare_max_amax(reference_amax.local_input_amax(net, calib),
                                               calibrate.input_amax(int8["max"]["table"]))
    if mismatch:
        problems += ["max amax differs from a local torch computation: " + m for m in mismatch]
    else:
        log("  max amax of every Conv/Linear input quantizer equals the local torch max |x|")
    residual_names, pool_names = new_quantizers(int8["max"]["table"])
    log(f"  residual quantizers recorded: {', '.join(residual_names) or 'none'}")
    log(f"  pooling quantizers recorded: {', '.join(pool_names) or 'none'}")

    log("[5/6] Q/DQ placement (counted in the ONNX graphs)")
    enforce = {"on": True, "off": False}.get(args.check_placement)
    if enforce is None:
        enforce = "explain" in options and bool(residual_names or pool_names)
        log(f"  check {'enforced' if enforce else 'not enforced'} (--check-placement auto: "
            f"explain entries {'on' if 'explain' in options else 'not in this client'}, "
            f"{len(residual_names) + len(pool_names)} residual/pool quantizers recorded)")
    placements = {}
    for fmt, results in runs.items():
        for method, r in (results or {}).items():
            key = f"{fmt} {method}"
            placements[key] = qdq_check.placement(float_onnx, r["path"])
            log(f"  {key}: {qdq_check.describe(placements[key])}")
            if r.get("explain") is not None:
                summary = explain_summary(r["explain"])
                log(f"    explain: {summary}")
                with open(os.path.join(out_dir, f"explain_{fmt}_{method}.json"), "w") as f:
                    json.dump(r["explain"], f, indent=1, default=str)
            if enforce:
                problems += qdq_check.problems(key, placements[key])

    log(f"[6/6] evaluating with ONNX Runtime on {eval_count or len(test_images)} test images")
    evaluated = {}
    models = [("float", float_onnx)] + [(f"{fmt} {m}", r["path"])
                                        for fmt, results in runs.items()
                                        for m, r in (results or {}).items()]
    for name, path in models:
        # onnxruntime 1.31 loads FP8 Q/DQ only at "basic" (README, "FP8 export").
        level = "basic" if name.startswith("fp8") else "all"
        result = evaluate.evaluate_onnx(path, images_path, labels_path, eval_count, args.threads,
                                        optimization=level)
        evaluated[name] = result["top1"]
        log(f"  {name}: top-1 {100 * result['top1']:.2f}% ({result['seconds']:.1f} s)")

    float_top1 = evaluated["float"]
    log(format_table(float_top1, evaluated, placements))
    write_results(os.path.join(out_dir, "results.json"), float_top1, evaluated, placements,
                  runs, {"residual_quantizer_module": residual_factory is not None,
                         "explain": "explain" in options, "fp8": runs["fp8"] is not None,
                         "fp8_note": fp8_note, "placement_enforced": enforce,
                         "residual_quantizers": residual_names, "pool_quantizers": pool_names,
                         "eval_images": eval_count or len(test_images)})
    log(f"wrote {os.path.join(out_dir, 'results.json')} "
        f"({time.perf_counter() - started:.0f} s in all)")

    for fmt, results in runs.items():
        if results is not None:
            problems += [f"{fmt.upper()} {p}" for p in report.accuracy_problems(
                float_top1, {m: {"top1": evaluated[f"{fmt} {m}"]} for m in results}, max_drop)]
    for p in problems:
        log(f"PROBLEM: {p}", file=sys.stderr)
    return 1 if problems else 0


def format_table(float_top1, evaluated, placements):
    """Method rows: INT8 and FP8 top-1, their change vs float, and the INT8 model's Q/DQ on
    residual shortcuts and pool inputs."""
    def cell(name):
        if name not in evaluated:
            return f"{'-':>9}{'':>10}"
        return (f"{100 * evaluated[name]:>8.2f}%"
                f"{100 * (evaluated[name] - float_top1):>+10.2f}")

    lines = [f"{'method':<12}{'INT8':>9}{'vs float':>10}{'FP8':>9}{'vs float':>10}"
             f"{'shortcuts':>11}{'pools':>7}",
             f"{'float':<12}{100 * float_top1:>8.2f}%"]
    for method, _ in calibrate.METHODS:
        p = placements.get(f"int8 {method}")
        qdq = (f"{p['shortcut_qdq']}/{p['adds']:<2}" if p else "")
        pools = (f"{p['pool_qdq']}/{p['pools']}" if p else "")
        lines.append(f"{method:<12}{cell(f'int8 {method}')}{cell(f'fp8 {method}')}"
                     f"{qdq:>11}{pools:>7}")
    lines.append("vs float: points; shortcuts / pools: residual Add shortcut inputs and pool "
                 "inputs with Q/DQ in the INT8 model, of all")
    return "\n".join(lines)


def write_results(path, float_top1, evaluated, placements, runs, features):
    """{"float_top1", "int8": {method: {"top1", "seconds", "placement"}}, "fp8": same or null,
    "features": {...}}."""
    doc = {"float_top1": float_top1, "features": features}
    for fmt, results in runs.items():
        doc[fmt] = None if results is None else {
            m: {"top1": evaluated[f"{fmt} {m}"], "seconds": round(r["seconds"], 4),
                "placement": placements[f"{fmt} {m}"]}
            for m, r in results.items()}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    entry.main(parse_args, run, errors=(OSError, RuntimeError, TimeoutError, ValueError))
