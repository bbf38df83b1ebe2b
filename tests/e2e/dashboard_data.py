"""What the dashboard tests record, and how they read the HTTP side of the real qcal-server."""

import http.client
import json
import urllib.parse

import numpy as np

# A '/' in the name: the API takes it percent-encoded as one path segment.
MODEL = "team-a/dash"
HISTOGRAM = "conv1._input_quantizer"
WEIGHT = "conv1._weight_quantizer"
BATCHES = 3
CHANNELS = 16
# A vocabulary-sized per-channel weight: more channels than a JS spread takes (about 125,000),
# drawn as at most 2048 bars.
BIG_WEIGHT = "lm_head._weight_quantizer"
BIG_CHANNELS = 128256
BIG_BARS = -(-BIG_CHANNELS // -(-BIG_CHANNELS // 2048))  # runs of 63 channels: 2036 bars
METHODS = ("max", "entropy", "mse", "percentile")


def record(client, model=MODEL):
    """An input quantizer's histogram (one NaN among its values) and a per-channel weight."""
    session = client.model(model)
    rng = np.random.default_rng(11)
    for i in range(BATCHES):
        x = rng.laplace(size=20000).astype(np.float32)
        if i == 0:
            x[7] = np.nan
        session.record(HISTOGRAM, x)
        scale = np.linspace(0.2, 2.0, CHANNELS, dtype=np.float32)[:, None, None, None]
        session.record(WEIGHT, (rng.normal(size=(CHANNELS, 3, 3, 3)) * scale).astype(np.float32))
    session.flush()  # record() only queues: the HTTP side must see every batch.
    return session


def quantizer_path(model, quantizer):
    quote = lambda name: urllib.parse.quote(name, safe="")  # noqa: E731
    return f"/api/v1/models/{quote(model)}/quantizers/{quote(quantizer)}"


def get(http_address, path, token=None, method="GET"):
    """(status, headers, body as text) of one request."""
    host, port = http_address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        connection.close()


def get_json(http_address, path, token=None):
    status, headers, body = get(http_address, path, token)
    assert headers["Content-Type"] == "application/json", (status, body)
    return status, json.loads(body)


def clipped_fraction(hist, amax):
    """The dashboard's rule: each bin spread evenly up to its upper edge or abs_max."""
    total = clipped = 0.0
    high_edges = np.minimum(hist["edges"][1:].astype(np.float64), np.float64(hist["abs_max"]))
    for count, low, high in zip(hist["counts"].astype(np.float64),
                                hist["edges"][:-1].astype(np.float64), high_edges):
        total += count
        if high <= low:
            clipped += count if low > amax else 0.0
        elif high > amax:
            clipped += count * (high - max(low, amax)) / (high - low)
    return clipped / total
