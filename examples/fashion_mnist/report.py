"""The results table and results.json of a run."""

import json
import os

# Methods whose QDQ model should stay within max_drop points of float (max may lose more: one
# outlier sets its range).
CHECKED_METHODS = ("entropy", "mse", "percentile")


def format_table(float_top1, methods):
    """methods: {name: {"top1": fraction (mergeable layout), "reference_top1": fraction,
    "seconds": float}} in display order."""
    lines = [f"{'method':<12}{'top-1':>9}{'vs float':>11}{'reference':>11}{'vs float':>11}"
             f"{'layouts':>9}{'calib s':>10}",
             f"{'float':<12}{100 * float_top1:>8.2f}%"]
    for name, r in methods.items():
        change = 100 * (r["top1"] - float_top1)
        ref_change = 100 * (r["reference_top1"] - float_top1)
        layouts = 100 * (r["top1"] - r["reference_top1"])
        lines.append(f"{name:<12}{100 * r['top1']:>8.2f}%{change:>+11.2f}"
                     f"{100 * r['reference_top1']:>10.2f}%{ref_change:>+11.2f}{layouts:>+9.2f}"
                     f"{r['seconds']:>10.3f}")
    lines.append("top-1 and its change vs float: the mergeable layout (the default); reference: "
                 "pytorch-quantization's layout; layouts: mergeable minus reference, in points")
    return "\n".join(lines)


def write_results(path, float_top1, methods):
    """Writes {"float_top1": f, "methods": {name: {"top1": f, "reference_top1": f,
    "seconds": s}}} (top1: the mergeable layout)."""
    doc = {"float_top1": float_top1,
           "methods": {name: {"top1": r["top1"], "reference_top1": r["reference_top1"],
                              "seconds": round(r["seconds"], 4)}
                       for name, r in methods.items()}}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def accuracy_problems(float_top1, methods, max_drop_points):
    """Methods of CHECKED_METHODS more than max_drop_points below float, as messages."""
    problems = []
    for name in CHECKED_METHODS:
        if name in methods:
            drop = 100 * (float_top1 - methods[name]["top1"])
            if drop > max_drop_points:
                problems.append(f"{name}: {drop:.2f} points below float "
                                f"(allowed {max_drop_points:.2f})")
    return problems


def layout_problems(methods, max_points):
    """Methods whose two layouts' top-1 differ by more than max_points, as messages."""
    problems = []
    for name, r in methods.items():
        diff = 100 * abs(r["top1"] - r["reference_top1"])
        if diff > max_points:
            problems.append(f"{name}: the layouts' top-1 differ by {diff:.2f} points "
                            f"(allowed {max_points:.2f})")
    return problems
