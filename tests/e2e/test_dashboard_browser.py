"""The dashboard in a real browser: Debian's chromium, headless, driven by playwright-core
(tests/e2e/dashboard_browser.js) against the real qcal-server after a test recorded data. The page
must show the model, its quantizers and batch count, a histogram with the four methods' amax
lines labelled with the amax ComputeAmax gives, and a weight quantizer's per-channel bars.

Needs /usr/bin/chromium (apt: chromium) and third_party/node/node_modules/playwright-core
(scripts/install-deps.sh installs both); without them it fails, it does not skip.
Set QCAL_DASHBOARD_SCREENSHOT=PATH.png to keep the screenshots (the weight quantizer's as
PATH.weight.png); docs/dashboard.png comes from it."""

import json
import os
import pathlib
import shutil
import subprocess
import threading

import numpy as np
import pytest

import qcal
from dashboard_data import (BATCHES, BIG_BARS, BIG_CHANNELS, BIG_WEIGHT, CHANNELS, HISTOGRAM,
                            METHODS, MODEL, WEIGHT, record)

REPO = pathlib.Path(__file__).resolve().parents[2]
NODE_MODULES = REPO / "third_party" / "node" / "node_modules"
CHROMIUM = pathlib.Path("/usr/bin/chromium")


def require_browser():
    missing = [str(p) for p in (CHROMIUM, NODE_MODULES / "playwright-core") if not p.exists()]
    if shutil.which("node") is None:
        missing.append("node")
    if missing:
        pytest.fail(f"the browser test needs {', '.join(missing)}: run scripts/install-deps.sh")


class Feeder:
    """Records small batches into another model until stopped, so the ingest rate is live."""

    def __init__(self, address):
        self.session = qcal.Client(address).model("dash-live")
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        x = np.linspace(-1, 1, 1000, dtype=np.float32)
        while not self.stop.wait(0.1):
            self.session.record("feed._input_quantizer", x)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def test_the_page_shows_the_histogram_amax_lines_and_channels(server, tmp_path):
    require_browser()
    session = record(qcal.Client(server.address))
    session.record(BIG_WEIGHT, np.random.default_rng(5).normal(size=(BIG_CHANNELS, 2))
                   .astype(np.float32))
    session.flush()
    amax = {m: session.compute_amax(method=m)["quantizers"][HISTOGRAM]["amax"] for m in METHODS}
    screenshot = tmp_path / "dashboard.png"
    args = {"url": f"http://{server.http_address}", "model": MODEL, "histogram": HISTOGRAM,
            "weight": WEIGHT, "channels": CHANNELS, "amax": amax, "screenshot": str(screenshot),
            "weight_screenshot": str(tmp_path / "dashboard-weight.png"),
            "big_weight": BIG_WEIGHT, "big_bars": BIG_BARS}
    with Feeder(server.address):
        run = subprocess.run(["node", str(REPO / "tests" / "e2e" / "dashboard_browser.js"),
                              json.dumps(args)], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "NODE_PATH": str(NODE_MODULES)})
    assert run.returncode == 0, run.stderr
    page = json.loads(run.stdout)

    assert page["landed"] == "/dashboard" and page["status"] == 200
    assert MODEL in page["models"]
    assert {HISTOGRAM, WEIGHT} <= set(page["quantizers"])
    assert page["batches"] == str(BATCHES)
    assert page["title"] == f"{MODEL} / {HISTOGRAM}"
    assert page["bars"] > 100  # One subpath per non-empty bin.
    for method in METHODS:
        shown = page["expected"][method]  # ComputeAmax's value, as the page formats numbers.
        assert page["table"][method]["amax"] == shown, method
        assert any(label.startswith(f"{method} {shown} (") and label.endswith("clipped)")
                   for label in page["labels"]), (method, page["labels"])
    assert page["table"]["max"]["clipped"] == "0%"
    assert "batches/s" in page["ingest"]
    assert page["channels"] == CHANNELS
    assert page["weight_title"] == f"{MODEL} / {WEIGHT}"
    # 128256 channels: bars of 63 channels each (2036), and the range in the summary.
    assert page["big_bars"] == BIG_BARS
    assert page["big_meta"].startswith(f"{BIG_CHANNELS} channels: amax from "), page["big_meta"]
    assert "error" not in page["big_status"].lower(), page["big_status"]
    assert page["errors"] == []

    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    kept = os.environ.get("QCAL_DASHBOARD_SCREENSHOT")
    if kept:
        shutil.copyfile(screenshot, kept)
        weight = pathlib.Path(kept).with_suffix(".weight.png")
        shutil.copyfile(tmp_path / "dashboard-weight.png", weight)
