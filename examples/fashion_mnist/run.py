#!/usr/bin/env python3
"""Fashion-MNIST end to end with qcal: train a small CNN (or reuse the cached one), export float
ONNX, stream 2 x 512 training images through qcal.torch.calibrate to qcal-server, compute amax by
max / entropy / mse / percentile 99.99, export one QDQ ONNX per method, and evaluate float and
QDQ models with ONNX Runtime (onnxruntime-node). It does so for both histogram layouts
(mergeable, the default, and pytorch-quantization's reference layout), and once more with the
activations counted on the trainer (pre-aggregation). Prints a table, writes results.json.

  PYTHONPATH=build/python /usr/bin/python3 examples/fashion_mnist/run.py --build-dir build

Exit status: 0 when every step worked, the server's max amax equals a local torch computation,
the pre-aggregated tables equal the streamed ones bit for bit, entropy / mse / percentile stay
within --max-drop points of float, and the two layouts' top-1 within --max-layout-diff points of
each other for every method; 1 otherwise.
"""

import argparse
import contextlib
import functools
import os
import sys
import time

import torch

import calibrate
import data
import entry
import evaluate
import export
import reference_amax
import report
import server
import train

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
log = functools.partial(print, flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build-dir", default=os.path.join(REPO, "build"),
                   help="build folder holding qcal-server and python/qcal (default: build)")
    p.add_argument("--server", default=os.environ.get("QCAL_SERVER"),
                   help="address of a running qcal-server (default $QCAL_SERVER); "
                        "without it a local one is started from the build folder")
    p.add_argument("--out-dir", help="outputs (default out/fashion_mnist, --quick: "
                                     "out/fashion_mnist/quick)")
    p.add_argument("--data-dir", help="Fashion-MNIST .gz files (default "
                                      f"$FASHION_MNIST_DIR or {data.DEFAULT_DIR})")
    p.add_argument("--epochs", type=int, help="training epochs (default 3, --quick: 1)")
    p.add_argument("--calib-batches", type=int, default=2)
    p.add_argument("--calib-batch-size", type=int, default=512)
    p.add_argument("--max-drop", type=float,
                   help="allowed top-1 loss in points of entropy/mse/percentile vs float "
                        "(default 1.0, --quick: 3.0)")
    p.add_argument("--max-layout-diff", type=float,
                   help="allowed top-1 difference in points between the mergeable and the "
                        "reference histogram layout, per method (default 0.1, --quick: 1.0)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for torch and ORT")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: train 1 epoch on 2,000 images, evaluate 1,000 test images")
    return p.parse_args()


def run(args, qcal):
    """The whole example; returns the exit status."""
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    out_dir = args.out_dir or os.path.join(REPO, "out", "fashion_mnist",
                                           *(["quick"] if args.quick else []))
    os.makedirs(out_dir, exist_ok=True)
    config = train.TrainConfig(epochs=args.epochs or (1 if args.quick else 3),
                               train_images=2000 if args.quick else 60000,
                               batch_size=32 if args.quick else 128)
    eval_count = 1000 if args.quick else None
    max_drop = args.max_drop if args.max_drop is not None else (3.0 if args.quick else 1.0)
    max_layout_diff = (args.max_layout_diff if args.max_layout_diff is not None
                       else (1.0 if args.quick else 0.1))

    log("[1/6] loading Fashion-MNIST")
    train_images, train_labels = data.load_split("train", args.data_dir)
    test_images, test_labels = data.load_split("t10k", args.data_dir)
    x_train = data.normalize(train_images)
    images_path, labels_path = data.write_eval_set(test_images, test_labels, out_dir)
    log(f"  {len(train_images)} training, {len(test_images)} test images")

    log("[2/6] model")
    net = train.load_or_train(config, x_train, train_labels, out_dir, log)

    log("[3/6] float ONNX (opset 13, eval mode)")
    float_onnx = export.export_float_onnx(net, os.path.join(out_dir, "model_float.onnx"))
    log(f"  {float_onnx}")

    calib = calibrate.calibration_batches(x_train, args.calib_batches, args.calib_batch_size)
    problems = []
    with contextlib.ExitStack() as stack:
        client = qcal.Client(server.server_address(stack, args.server, args.build_dir, log))
        log("  mergeable layout (the default), tensors streamed:")
        results = calibrate.calibrate_on_server(client, net, calib, float_onnx, out_dir, log)
        log("  mergeable layout, counted here and sent as partial states:")
        aggregated = calibrate.calibrate_on_server(client, net, calib, float_onnx, out_dir, log,
                                                   aggregate=True, export=False)
        log("  reference layout (pytorch-quantization's bins), tensors streamed:")
        reference = calibrate.calibrate_on_server(client, net, calib, float_onnx, out_dir, log,
                                                  layout="reference")
    mismatch = reference_amax.compare_max_amax(reference_amax.local_input_amax(net, calib),
                                               calibrate.input_amax(results["max"]["table"]))
    if mismatch:
        problems += ["max amax differs from a local torch computation: " + m for m in mismatch]
    else:
        log("  max amax of every input quantizer equals the local torch max |x|")
    # Everything but the model's name, which differs.
    differing = [m for m in results
                 if aggregated[m]["table"]["quantizers"] != results[m]["table"]["quantizers"]
                 or aggregated[m]["table"]["method"] != results[m]["table"]["method"]]
    if differing:
        problems += [f"{m}: the pre-aggregated table differs from the streamed one"
                     for m in differing]
    else:
        log("  every method's table from partial states equals the streamed one, bit for bit")

    log(f"[5/6] evaluating with ONNX Runtime on {eval_count or len(test_images)} test images")
    evaluated = {}
    runs = [("float", float_onnx)] + [(m, r["path"]) for m, r in results.items()] \
        + [(f"{m} (reference)", r["path"]) for m, r in reference.items()]
    for name, path in runs:
        result = evaluate.evaluate_onnx(path, images_path, labels_path, eval_count, args.threads)
        evaluated[name] = result["top1"]
        log(f"  {name}: top-1 {100 * result['top1']:.2f}% ({result['seconds']:.1f} s)")

    log("[6/6] results")
    float_top1 = evaluated["float"]
    methods = {m: {"top1": evaluated[m], "seconds": r["seconds"],
                   "reference_top1": evaluated[f"{m} (reference)"]}
               for m, r in results.items()}
    log(report.format_table(float_top1, methods))
    results_path = os.path.join(out_dir, "results.json")
    report.write_results(results_path, float_top1, methods)
    log(f"wrote {results_path} ({time.perf_counter() - started:.0f} s in all)")

    problems += report.layout_problems(methods, max_layout_diff)
    problems += report.accuracy_problems(float_top1, methods, max_drop)
    for p in problems:
        log(f"PROBLEM: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    entry.main(parse_args, run)
