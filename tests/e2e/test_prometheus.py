"""deploy/prometheus and deploy/grafana against Debian's real Prometheus scraping a real
qcal-server: promtool checks the configs and rules and runs the rules' unit tests; after some
traffic (a model, batches with a NaN, a refused Record, ComputeAmax), every dashboard query and
every alert expression without its threshold returns series through the HTTP API; then the
server is killed and QcalServerDown fires.
"""

import json
import math
import pathlib
import re
import subprocess

import grpc
import numpy as np
import pytest
import yaml

import calibration_pb2 as pb
import calibration_pb2_grpc as pb_grpc
from prometheus_process import PrometheusProcess, require_tool, wait_for
from qcal_server_process import QcalServerProcess

REPO = pathlib.Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "qcal-alerts.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "qcal-dashboard.json"

MODEL = "prom-model"
QUANTIZERS = [b"conv1._input_quantizer", b"fc._input_quantizer"]
# Metrics a CPU server does not export (README, "Metrics and alerts"): their panels are exempt
# there, and must then be empty (or the exemption hides a bug).
GPU_ONLY = {"qcal_device_memory_bytes"}
# Grafana's variables, as "All" selects them. $__rate_interval spans the whole test (the alerts'
# 5m too), so a slow machine cannot let the traffic's increases slide out of the window.
VARIABLES = {"$__rate_interval": "5m", "$instance": ".*", "$model": ".*"}
# An alert's expr ends in `OP NUMBER` (the rules file's own rule): the part before is asked.
THRESHOLD = re.compile(r"^(?P<base>.*?)\s*(?:==|!=|>=|<=|>|<)\s*[-+0-9.e]+\s*$", re.S)


def promtool(*args):
    result = subprocess.run([require_tool("promtool"), *args], capture_output=True, text=True)
    assert result.returncode == 0, f"promtool {args}: {result.stdout}{result.stderr}"
    return result.stdout


def alert_rules():
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"]
            for rule in group["rules"]]


def test_promtool_accepts_the_rules_and_the_static_config():
    assert f"SUCCESS: {len(alert_rules())} rules found" in promtool("check", "rules", str(RULES))
    promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))


def test_promtools_rule_tests_pass():
    # Each alert past its threshold and below it, on synthetic series (qcal-alerts.test.yml).
    assert "SUCCESS" in promtool("test", "rules", str(PROMETHEUS_DIR / "qcal-alerts.test.yml"))


def test_promtool_accepts_the_kubernetes_config_but_its_discovery(tmp_path):
    # Debian builds Prometheus without Kubernetes discovery: check the rest of the file (relabel
    # rules, TLS and rule files) with a static target in its place.
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus-kubernetes.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    job["static_configs"] = [{"targets": ["qcal-0:9464"]}]
    del job["kubernetes_sd_configs"]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    (tmp_path / "qcal-alerts.yml").write_text(RULES.read_text())
    promtool("check", "config", str(tmp_path / "prometheus.yml"))


def test_each_alert_has_a_separable_threshold_severity_and_text():
    for rule in alert_rules():
        assert THRESHOLD.match(rule["expr"]), rule["alert"]
        assert rule["for"] and rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def record(stub, model, hold=None):
    """One stream of a batch for each quantizer (a NaN in each); `hold`, when given, is called
    between the batches, with the stream open."""
    values = np.array([0.5, np.nan, -3.0, 2.0], np.float32).tobytes()
    header = pb.TensorHeader(dtype=pb.DTYPE_FLOAT32, shape=[4])

    def messages():
        for i, quantizer in enumerate(QUANTIZERS):
            if i and hold:
                hold()
            yield pb.RecordRequest(model=model.encode(), quantizer=quantizer, header=header,
                                   data=values)

    return stub.Record(messages(), timeout=60)


def drive_traffic(stub, prom, round_):
    """A round of traffic on the model: a Record stream held open until a scrape sees it, a
    refused Record, ComputeAmax; returns once Prometheus has scraped the round. Rates need two
    rounds: a counter's first sample has no increase before it."""
    def scraped_open():
        wait_for("a scrape of the open stream",
                 lambda: prom.query("qcal_record_streams_active == 1"))

    stub.CreateModel(pb.CreateModelRequest(model=MODEL.encode(), exist_ok=True), timeout=60)
    summary = record(stub, MODEL, hold=scraped_open)
    assert (summary.batches, summary.nonfinite, summary.bytes) == (2, 2, 32), summary
    with pytest.raises(grpc.RpcError) as refused:
        record(stub, "no-such-model")
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    stub.ComputeAmax(pb.ComputeAmaxRequest(model=MODEL.encode(), method=b"max"), timeout=60)
    wait_for(f"a scrape of round {round_}", lambda: prom.query(
        f'qcal_rpc_duration_seconds_count{{method="ComputeAmax"}} == {round_}'))


@pytest.fixture(scope="module")
def stack(server_bin, tmp_path_factory):
    """A qcal-server, a Prometheus scraping it every second with the rules (QcalServerDown's
    `for` cut to 2 s), and two rounds of traffic, scraped."""
    workdir = tmp_path_factory.mktemp("prometheus")
    rules = yaml.safe_load(RULES.read_text())
    for rule in rules["groups"][0]["rules"]:
        if rule["alert"] == "QcalServerDown":
            rule["for"] = "2s"
    (workdir / "rules.yml").write_text(yaml.safe_dump(rules))
    with QcalServerProcess(server_bin) as server:
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": ["rules.yml"],
            "scrape_configs": [{"job_name": "qcal",
                                "static_configs": [{"targets": [server.http_address]}]}],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        with PrometheusProcess(workdir / "prometheus.yml", workdir) as prom, \
                grpc.insecure_channel(server.address) as channel:
            wait_for("a first scrape", lambda: prom.query('up{job="qcal"} == 1'))
            stub = pb_grpc.CalibrationStub(channel)
            for round_ in (1, 2):
                drive_traffic(stub, prom, round_)
            yield server, prom


def dashboard_targets():
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"])
            for panel in dashboard["panels"] for target in panel.get("targets", [])]


def substitute(expr):
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"a Grafana variable the test does not know: {expr}"
    return expr


def on_gpu(prom):
    (info,) = prom.query("qcal_device_info")
    return info["metric"]["device"] != "cpu"


@pytest.mark.parametrize("title, expr", dashboard_targets(),
                         ids=[f"{t}:{e[:40]}" for t, e in dashboard_targets()])
def test_each_dashboard_query_returns_series(stack, title, expr):
    _, prom = stack
    series = prom.query(substitute(expr))
    if not on_gpu(prom) and any(name in expr for name in GPU_ONLY):
        assert series == [], f"{title}: a GPU-only panel has data on a CPU server"
        return
    assert series, f"{title}: {expr} returned no series"
    # A quantile of a method called in one round only is NaN (no increase); the others are not.
    assert any(math.isfinite(float(one["value"][1])) for one in series), (title, series)


def test_the_panels_show_the_traffic(stack):
    _, prom = stack

    def value(expr):
        (series,) = prom.query(expr)
        return float(series["value"][1])

    assert value("qcal_models") == 1
    assert value("qcal_quantizers") == len(QUANTIZERS)
    assert value(f'qcal_record_batches_total{{model="{MODEL}"}}') == 4
    assert value(f'qcal_record_bytes_total{{model="{MODEL}"}}') == 4 * 16
    assert value(f'qcal_record_nonfinite_total{{model="{MODEL}"}}') == 4
    assert value('qcal_rpc_errors_total{method="Record", code="NOT_FOUND"}') == 2
    assert value('max_over_time(qcal_record_streams_active[5m])') == 1
    # Both rounds were scraped apart: the rates the alerts and panels divide are not 0.
    assert value(f'rate(qcal_record_elements_total{{model="{MODEL}"}}[5m])') > 0
    used = value('qcal_state_bytes{kind="used"}')
    assert 0 < used < value('qcal_state_bytes{kind="limit"}')


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_each_alert_expression_without_its_threshold_returns_series(stack, rule):
    _, prom = stack
    base = THRESHOLD.match(rule["expr"]).group("base")
    series = prom.query(base)
    assert series, f"{rule['alert']}: {base} returned no series"


def firing(prom, name):
    return [a for a in prom.api("alerts")["alerts"]
            if a["labels"]["alertname"] == name and a["state"] == "firing"]


# Last in the file: it kills the module's server.
def test_server_down_fires_when_the_server_is_killed(stack):
    server, prom = stack
    assert firing(prom, "QcalServerDown") == []
    server._process.kill()
    server._process.wait()
    (alert,) = wait_for("QcalServerDown to fire", lambda: firing(prom, "QcalServerDown"))
    assert alert["labels"]["severity"] == "critical"
    assert alert["labels"]["instance"] == server.http_address
    assert server.http_address in alert["annotations"]["summary"]
