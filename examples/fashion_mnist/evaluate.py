"""Top-1 of an ONNX model under ONNX Runtime, via the Node.js evaluator (evaluate.mjs)."""

import json
import os
import shutil
import subprocess

_EVALUATOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "evaluate.mjs")


def evaluate_onnx(onnx_path, images_path, labels_path, count=None, threads=2,
                  optimization="all"):
    """Runs evaluate.mjs on onnx_path over the first count test images (all when None), at ONNX
    Runtime's graph optimization level `optimization` ("basic" for FP8 Q/DQ models).
    Returns its JSON result: {"top1", "correct", "total", "seconds", "model"}."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node (Node.js) not found on PATH; scripts/install-deps.sh needs it")
    cmd = [node, _EVALUATOR, "--model", onnx_path, "--images", images_path,
           "--labels", labels_path, "--threads", str(threads), "--optimization", optimization]
    if count is not None:
        cmd += ["--count", str(count)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"evaluate.mjs failed on {onnx_path} (exit {proc.returncode}):\n"
                           f"{proc.stderr.strip()}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
