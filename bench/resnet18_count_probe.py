#!/usr/bin/env python3
"""Where pre-aggregation's time goes on resnet18 (batch 32, 3x224x224, 2 threads): the count of
its 21 Conv/Linear inputs (279 MB a step) by qcal's HistogramCounter outside a forward pass,
then inside one (forward pre-hooks), with the hooks' own time and the step's growth.

    PYTHONPATH=build/python /usr/bin/python3 bench/resnet18_count_probe.py [--rounds 6]
"""
import argparse
import contextlib
import statistics
import time

import torch
import torchvision

import qcal
from qcal import _qcal
from qcal._tensors import tensor_parts


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = torchvision.models.resnet18(weights=None).eval()
    images = torch.randn(32, 3, 224, 224)
    modules = [m for _, m in model.named_modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]

    inputs = []
    handles = [m.register_forward_pre_hook(lambda m, i: inputs.append(i[0].detach().clone()))
               for m in modules]
    with torch.no_grad():
        model(images)
    for handle in handles:
        handle.remove()
    parts = [tensor_parts(t, "probe") for t in inputs]
    counters = [_qcal.HistogramCounter(2048, False) for _ in parts]
    for counter, part in zip(counters, parts):
        counter.add(*part)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        for counter, part in zip(counters, parts):
            counter.add(*part)
        times.append(time.perf_counter() - start)
    mb = sum(t.numel() * t.element_size() for t in inputs) / 1e6
    print(f"count outside a forward pass: {1e3 * min(times):.1f} ms for {len(inputs)} tensors, "
          f"{mb:.0f} MB")

    in_hooks = [0.0]
    hook_counters = {}

    def count(module, inputs_):
        start = time.perf_counter()
        counter = hook_counters.setdefault(id(module), _qcal.HistogramCounter(2048, False))
        counter.add(*tensor_parts(inputs_[0].detach(), "probe"))
        in_hooks[0] += time.perf_counter() - start

    @contextlib.contextmanager
    def hooked():
        hs = [m.register_forward_pre_hook(count) for m in modules]
        try:
            yield
        finally:
            for h in hs:
                h.remove()

    steps = {"plain": [], "hooks": []}
    for _ in range(args.rounds):
        for mode in steps:
            with (hooked() if mode == "hooks" else contextlib.nullcontext()), torch.no_grad():
                start = time.perf_counter()
                model(images)
                model(images)
                steps[mode].append((time.perf_counter() - start) / 2)
    plain, hooks = statistics.median(steps["plain"]), statistics.median(steps["hooks"])
    print(f"plain forward {1e3 * plain:.1f} ms; with counting hooks {1e3 * hooks:.1f} ms "
          f"(+{100 * (hooks / plain - 1):.1f}%); the hooks' own time "
          f"{1e3 * in_hooks[0] / (2 * args.rounds):.1f} ms a step")


if __name__ == "__main__":
    main()
