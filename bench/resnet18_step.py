#!/usr/bin/env python3
"""Bytes on the wire per training step, and the step time over a plain forward pass, for
torchvision resnet18 (random weights, eval mode, batch 32, 3x224x224) calibrating its Conv and
Linear inputs: raw streaming vs client-side pre-aggregation, beside pytorch-quantization's own
in-process histogram collect (its torch.histc path, transcribed as bench/reference.py does).

    /usr/bin/python3 bench/resnet18_step.py BUILD_DIR [--steps 6] [--threads 2] [--send-every 0]

Starts BUILD_DIR/qcal-server on loopback (CPU device). After one untimed warm-up block per mode,
each of `rounds` rounds runs every mode once as a block of `steps` forward passes (plain; the
reference's hooks; qcal.torch.calibrate streaming; qcal.torch.calibrate(aggregate=True)); a
calibrate block flushes on exit, so what the server still had to take in is included. A mode's
step time is the median over rounds of block / steps; its overhead is that over the plain
pass's. After each raw block the script waits 3 s, off the clock, while the server trims the
memory raw streaming used (its idle trimmer runs 2 s after the last stream), so that work does
not land on the next mode's clock. Wire bytes per step are what the server counted (QuantizerStats.bytes: tensor bytes for
raw batches, the serialized PartialState for pre-aggregated ones) over all timed steps. Prints
one JSON line per figure.
"""
import argparse
import contextlib
import json
import os
import pathlib
import statistics
import sys
import time

import torch
import torchvision


def parse():
    parser = argparse.ArgumentParser()
    parser.add_argument("build", type=pathlib.Path)
    parser.add_argument("--steps", type=int, default=2, help="forward steps per block")
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds, each running every mode's block once")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--send-every", type=int, default=0,
                        help="pre-aggregation: steps between sends (0: at the end only)")
    parser.add_argument("--device", default="cpu")
    return parser.parse_args()


def emit(name, value, unit, **extra):
    print(json.dumps({"name": name, "value": float("%.4g" % value), "unit": unit, **extra}),
          flush=True)


class ReferenceHistogram:
    """HistogramCalibrator.collect of pytorch-quantization 2.2.1, torch_hist=True, verbatim in
    its arithmetic (first batch: histc over [0, max] and linspace edges; later: arange growth,
    histc over the current range, counts added)."""

    def __init__(self, num_bins=2048):
        self.num_bins = num_bins
        self.hist = None
        self.edges = None

    def collect(self, x):
        if torch.min(x) < 0.0:
            x = x.abs()
        x = x.float()
        with torch.no_grad():
            x_max = x.max()
            if self.edges is None:
                self.hist = torch.histc(x, bins=self.num_bins, min=0, max=x_max)
                self.edges = torch.linspace(0, x_max, self.num_bins + 1)
            else:
                if x_max > self.edges[-1]:
                    width = self.edges[1] - self.edges[0]
                    self.num_bins = int((x_max / width).ceil().item())
                    self.edges = torch.arange(0, x_max + width, width, device=x.device)
                hist = torch.histc(x, bins=self.num_bins, min=0, max=self.edges[-1])
                hist[: self.hist.numel()] += self.hist
                self.hist = hist


def conv_linear(model):
    return [(p, m) for p, m in model.named_modules()
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]


def timed_steps(model, images, steps):
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        with torch.no_grad():
            model(images)
        times.append(time.perf_counter() - start)
    return times


def main():
    args = parse()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sys.path.insert(0, os.fspath(args.build / "python"))
    sys.path.insert(0, os.fspath(pathlib.Path(__file__).resolve().parents[1] / "tests" / "e2e"))
    import qcal
    import qcal.torch
    from qcal_server_process import QcalServerProcess

    model = torchvision.models.resnet18(weights=None).eval().to(args.device)
    images = torch.randn(32, 3, 224, 224, device=args.device)
    common = {"threads": args.threads, "batch": 32, "device": args.device,
              "steps": args.steps, "rounds": args.rounds}

    # pytorch-quantization's in-process collect on every Conv/Linear input.
    calibrators = {path: ReferenceHistogram() for path, _ in conv_linear(model)}

    @contextlib.contextmanager
    def reference_hooks():
        handles = [module.register_forward_pre_hook(
            lambda m, inputs, c=calibrators[path]: c.collect(inputs[0].detach()))
            for path, module in conv_linear(model)]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    server_bin = args.build / "qcal-server"
    with QcalServerProcess(server_bin) as server:
        client = qcal.Client(server.address)
        sessions = {"raw": client.model("resnet18_raw"),
                    "aggregate": client.model("resnet18_aggregate")}
        options = {"raw": {}, "aggregate": {"aggregate": True,
                                            "send_every": args.send_every or None}}

        def block(mode):
            if mode == "plain":
                return contextlib.nullcontext()
            if mode == "reference":
                return reference_hooks()
            return qcal.torch.calibrate(model, sessions[mode], **options[mode])

        modes = ("plain", "reference", "raw", "aggregate")
        for mode in modes:  # warm-up: first batches set ranges, allocate buffers
            with block(mode):
                timed_steps(model, images, 1)
        for session in sessions.values():
            session.reset()
        # Rounds interleave the modes, so a change of load on the machine hits all alike.
        per_step = {mode: [] for mode in modes}
        for _ in range(args.rounds):
            for mode in modes:
                start = time.perf_counter()
                with block(mode):  # a calibrate block flushes on exit: included
                    timed_steps(model, images, args.steps)
                per_step[mode].append((time.perf_counter() - start) / args.steps)
                if mode == "raw":
                    # 2 s after its last stream the server trims its memory (malloc_trim of the
                    # GBs raw streaming used): not on the next mode's clock.
                    time.sleep(3)
        step = {mode: statistics.median(times) for mode, times in per_step.items()}
        emit("resnet18 forward", step["plain"] * 1e3, "ms/step", **common)
        emit("reference torch.histc collect overhead",
             100 * (step["reference"] / step["plain"] - 1), "% of forward",
             step_ms=round(step["reference"] * 1e3, 1), **common)
        total_steps = args.rounds * args.steps
        for mode in ("raw", "aggregate"):
            info = sessions[mode].info()
            wire = sum(q["bytes"] for q in info["quantizers"].values()) / total_steps
            emit(f"qcal {mode} overhead", 100 * (step[mode] / step["plain"] - 1), "% of forward",
                 step_ms=round(step[mode] * 1e3, 1), **common)
            emit(f"qcal {mode} wire bytes", wire, "bytes/step", **common)
        for session in sessions.values():
            session.close()


if __name__ == "__main__":
    main()
