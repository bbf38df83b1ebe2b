"""The dashboard's JSON API on the real qcal-server: its values are the core's (GetHistogram,
ComputeAmax, the model's counters), names are percent-encoded path segments, unknown names
answer a JSON 404, and with --auth-tokens or --tls-client-ca it is guarded as /metrics is."""

import http.client
import ssl

import numpy as np
import pytest

import qcal
from dashboard_data import (BATCHES, CHANNELS, HISTOGRAM, METHODS, MODEL, WEIGHT, clipped_fraction,
                            get, get_json, quantizer_path, record)
from qcal_server_process import QcalServerProcess
from tls_certs import make_certs


@pytest.fixture(scope="module")
def recorded(server):
    return record(qcal.Client(server.address))


def test_models_lists_quantizers_with_their_counters(server, recorded):
    status, body = get_json(server.http_address, "/api/v1/models")
    assert status == 200
    (model,) = [m for m in body["models"] if m["name"] == MODEL]
    info = recorded.info()["quantizers"]
    by_name = {q["name"]: q for q in model["quantizers"]}
    assert set(by_name) == {HISTOGRAM, WEIGHT}
    for name, quantizer in by_name.items():
        for key in ("batches", "elements", "nonfinite", "bytes", "calibrator", "axis", "format"):
            assert quantizer[key] == info[name][key], (name, key)
    assert by_name[HISTOGRAM]["nonfinite"] == 1
    assert by_name[WEIGHT]["axis"] == 0 and by_name[WEIGHT]["calibrator"] == "max"
    # The ingest counters are qcal_record_*_total: every batch of the model.
    assert model["ingest"]["batches_total"] == 2 * BATCHES
    assert all(isinstance(v, int) for v in model["ingest"].values()), model["ingest"]
    assert model["ingest"]["bytes_total"] == sum(q["bytes"] for q in info.values())
    assert body["ingest"]["batches_total"] >= 2 * BATCHES
    status, one = get_json(server.http_address, "/api/v1/models/team-a%2Fdash")
    assert status == 200 and one == model


def test_histogram_and_each_methods_amax_are_the_cores(server, recorded):
    status, body = get_json(server.http_address, quantizer_path(MODEL, HISTOGRAM))
    assert status == 200
    hist = recorded.histogram(HISTOGRAM)
    shown = body["histogram"]
    assert shown["merged_bins"] == 1
    assert np.array_equal(np.array(shown["counts"], dtype=np.uint64), hist["counts"])
    assert np.array_equal(np.array(shown["edges"], dtype=np.float32), hist["edges"])
    assert shown["total"] == hist["total"] == BATCHES * 20000 - 1
    # Computed for this quantizer without storing a table.
    assert recorded.info()["amax_method"] is None
    for method in METHODS:
        table = recorded.compute_amax(method=method)["quantizers"][HISTOGRAM]
        entry = body["amax"][method]
        assert np.float32(entry["amax"]) == np.float32(table["amax"]), method
        assert entry["clipped"] == pytest.approx(clipped_fraction(hist, entry["amax"]), abs=1e-12)
    assert body["amax"]["max"]["clipped"] == 0
    assert body["amax"]["percentile"]["percentile"] == 99.99
    assert 0 < body["amax"]["percentile"]["clipped"] < 0.001


def test_the_max_clips_nothing_even_where_abs_max_starts_a_bin(server):
    # 3.0 falls on a bin edge of the mergeable layout: that bin holds abs_max alone.
    session = qcal.Client(server.address).model("dash-edges")
    session.record("few._input_quantizer", np.array([1, 2, 3], dtype=np.float32))
    session.flush()
    path = quantizer_path("dash-edges", "few._input_quantizer")
    status, body = get_json(server.http_address, path)
    assert status == 200
    hist = session.histogram("few._input_quantizer")
    assert body["amax"]["max"] == {"amax": 3.0, "clipped": 0.0}
    for method in METHODS:
        entry = body["amax"][method]
        assert entry["clipped"] == pytest.approx(clipped_fraction(hist, entry["amax"]), abs=1e-12)


def test_weight_quantizer_shows_its_per_channel_amax(server, recorded):
    status, body = get_json(server.http_address, quantizer_path(MODEL, WEIGHT))
    assert status == 200
    expected = recorded.compute_amax(method="max")["quantizers"][WEIGHT]["amax"]
    assert len(body["channel_amax"]) == CHANNELS
    assert np.array_equal(np.float32(body["channel_amax"]), np.float32(expected))
    assert "histogram" not in body


@pytest.mark.parametrize("path, status, message", [
    ("/api/v1/models/nobody", 404, "unknown model 'nobody'"),
    (quantizer_path(MODEL, "nothing._input_quantizer"), 404,
     "model 'team-a/dash' has no quantizer 'nothing._input_quantizer'"),
    # An unencoded '/' splits the name: no such path.
    ("/api/v1/models/team-a/dash/quantizers/x", 404, "no API at /api/v1/models/team-a/dash/"),
    ("/api/v1/models/bad%zz", 400, "'bad%zz' is not a percent-encoded name"),
    ("/api/v1/models/team-a%2Fdash/quantizers/", 400, "quantizer is empty"),
    ("/api/v2", 404, "no API at /api/v2"),
])
def test_unknown_names_answer_json_errors_naming_them(server, recorded, path, status, message):
    got, body = get_json(server.http_address, path)
    assert got == status
    assert message in body["error"]["message"]


def test_root_redirects_to_the_page_and_other_methods_are_refused(server):
    status, headers, _ = get(server.http_address, "/")
    assert status == 302 and headers["Location"] == "/dashboard"
    status, headers, body = get(server.http_address, "/dashboard")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert '<script src="/dashboard/dashboard.js">' in body
    assert get(server.http_address, "/dashboard/dashboard.js")[0] == 200
    assert get(server.http_address, "/dashboard/nothing.js")[0] == 404
    assert get(server.http_address, "/api/v1/models", method="POST")[0] == 405


def test_with_auth_tokens_the_page_and_api_need_a_token_as_metrics_does(server_bin, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("reader dashboard-reader-token-0\nreader tenant-reader-token-000 team-a/\n")
    with QcalServerProcess(server_bin, "--auth-tokens", str(tokens)) as guarded:
        for path in ("/dashboard", "/", "/api/v1/models", quantizer_path(MODEL, HISTOGRAM)):
            status, headers, body = get(guarded.http_address, path)
            assert status == 401 and headers["WWW-Authenticate"] == "Bearer", path
            assert f"{path} needs 'Authorization: Bearer TOKEN'" in body
            status, _, body = get(guarded.http_address, path, token="tenant-reader-token-000")
            assert status == 403 and "needs a token without a model prefix" in body
        assert get(guarded.http_address, "/dashboard", token="dashboard-reader-token-0")[0] == 200
        status, body = get_json(guarded.http_address, "/api/v1/models",
                                token="dashboard-reader-token-0")
        assert status == 200 and body["models"] == []
        assert get(guarded.http_address, "/healthz")[0] == 200


def test_with_a_client_ca_the_page_and_api_need_a_client_certificate(server_bin, tmp_path):
    certs = make_certs(tmp_path / "certs")
    with QcalServerProcess(server_bin, "--tls-cert", str(certs.server_cert), "--tls-key",
                           str(certs.server_key), "--tls-client-ca", str(certs.ca)) as mtls:
        host, port = mtls.http_address.rsplit(":", 1)
        for client in (None, certs.other_client_cert, certs.client_cert):
            context = ssl.create_default_context(cafile=str(certs.ca))
            if client is not None:
                context.load_cert_chain(str(client), str(client.with_suffix(".key")))
            for path in ("/dashboard", "/api/v1/models"):
                connection = http.client.HTTPSConnection(host, int(port), context=context,
                                                         timeout=30)
                connection.request("GET", path)
                response = connection.getresponse()
                body = response.read().decode()
                connection.close()
                if client == certs.client_cert:
                    assert response.status == 200, (path, body)
                else:
                    assert response.status == 403, (client, path)
                    assert f"{path} needs a client certificate signed by" in body
