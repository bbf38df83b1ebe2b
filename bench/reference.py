#!/usr/bin/env python3
"""Times the reference's CPU calibration steps on this machine, for bench/README.md's speed-ups.

pytorch-quantization itself is not installed here, so its steps are transcribed from
pytorch_quantization/calib/{histogram,max}.py (2.2.1) on torch 1.13 and numpy; scipy's
entropy() is replaced by the same arithmetic in numpy. Prints one JSON line per figure, as
bench/run.sh does, with "device": "reference-cpu".

    /usr/bin/python3 bench/reference.py [--quick]
"""
import json
import os
import sys
import time
from collections import Counter

import numpy as np
import torch

QUICK = "--quick" in sys.argv
N = 1 << 24  # 16M float32
BINS = 2048


def best_of(fn, reps):
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), sorted(times)[len(times) // 2]


def emit(name, best, median, unit):
    print(json.dumps({"name": name, "device": "reference-cpu", "value": float("%.4g" % median),
                      "unit": unit, "best": float("%.4g" % best)}), flush=True)


def histogram_collect(x, state):
    # HistogramCalibrator.collect, torch_hist=True, a batch inside the current range.
    if torch.min(x) < 0.0:
        x = x.abs()
    x = x.float()
    x_max = x.max()
    if x_max > state["edges"][-1]:
        raise RuntimeError("growth is not part of this figure")
    hist = torch.histc(x, bins=len(state["hist"]), min=0, max=state["edges"][-1])
    state["hist"] += hist


def max_collect(x):
    # MaxCalibrator.collect per tensor: reduce_amax(x.abs()) after the sign check.
    if torch.min(x) < 0.0:
        x = x.abs()
    return torch.max(x)


def entropy(p, q):
    p = p / p.sum()
    q = q / q.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, np.where(q > 0, p * np.log(p / q), np.inf), 0.0)
    return terms.sum()


def compute_amax_entropy(calib_hist, calib_bin_edges, num_bits=8, unsigned=False, stride=1,
                         start_bin=128):
    bins = calib_hist[:]
    bins[0] = bins[1]
    divergences = []
    nbins = 1 << (num_bits - 1 + int(unsigned))
    new_density_counts = np.zeros(nbins, dtype=np.float64)
    for i in range(start_bin, len(bins) + 1, stride):
        new_density_counts.fill(0)
        space = np.linspace(0, i, num=nbins + 1)
        digitized_space = np.digitize(range(i), space) - 1
        digitized_space[bins[:i] == 0] = -1
        for idx, digitized in enumerate(digitized_space):
            if digitized != -1:
                new_density_counts[digitized] += bins[idx]
        counter = Counter(digitized_space)
        for key, val in counter.items():
            if key != -1:
                new_density_counts[key] = new_density_counts[key] / val
        new_density = np.zeros(i, dtype=np.float64)
        for idx, digitized in enumerate(digitized_space):
            if digitized != -1:
                new_density[idx] = new_density_counts[digitized]
        reference_density = np.array(bins[:len(digitized_space)])
        reference_density[-1] += np.sum(bins[i:])
        divergences.append(entropy(reference_density, new_density))
    divergences = np.array(divergences)
    last_argmin = len(divergences) - 1 - np.argmin(divergences[::-1])
    return calib_bin_edges[last_argmin * stride + start_bin]


def fake_tensor_quant(inputs, amax, num_bits=8, unsigned=False):
    max_bound = 2.0**(num_bits - 1 + int(unsigned)) - 1.0
    min_bound = 0 if unsigned else -max_bound
    scale = max_bound / amax
    return torch.clamp((inputs * scale).round_(), min_bound, max_bound) / scale


def compute_amax_mse(calib_hist, calib_bin_edges, num_bits=8, unsigned=False, stride=1,
                     start_bin=128):
    counts = torch.from_numpy(calib_hist[:]).float()
    edges = torch.from_numpy(calib_bin_edges[:]).float()
    centers = (edges[1:] + edges[:-1]) / 2
    mses = []
    arguments = []
    for i in range(start_bin, len(centers), stride):
        amax = centers[i]
        quant_centers = fake_tensor_quant(centers, amax, num_bits, unsigned)
        mses.append(((quant_centers - centers)**2 * counts).mean())
        arguments.append(i)
    return centers[arguments[int(np.argmin(mses))]]


def main():
    # Debian's torch starts with one OpenMP thread here; the reference figures use every core.
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(1)
    x = torch.randn(N, dtype=torch.float32)
    x_max = x.abs().max()
    state = {"hist": torch.histc(x.abs(), bins=BINS, min=0, max=x_max),
             "edges": torch.linspace(0, x_max, BINS + 1)}
    print("reference.py: torch %s, %d threads" % (torch.__version__, torch.get_num_threads()),
          file=sys.stderr)
    reps = 3 if QUICK else 10
    best, median = best_of(lambda: histogram_collect(x, state), reps)
    emit("histogram_f32", N / best, N / median, "elem/s")
    best, median = best_of(lambda: max_collect(x), reps)
    emit("amax_f32", N / best, N / median, "elem/s")

    small = torch.randn(1 << 22, dtype=torch.float32).abs()
    small_max = small.max()
    hist = torch.histc(small, bins=BINS, min=0, max=small_max).numpy().astype(np.int64)
    edges = torch.linspace(0, small_max, BINS + 1).numpy()
    best, median = best_of(lambda: compute_amax_entropy(hist.copy(), edges), 1 if QUICK else 3)
    emit("entropy_search_2048", best * 1e3, median * 1e3, "ms")
    best, median = best_of(lambda: compute_amax_mse(hist.copy(), edges), 1 if QUICK else 3)
    emit("mse_search_2048", best * 1e3, median * 1e3, "ms")


if __name__ == "__main__":
    main()
