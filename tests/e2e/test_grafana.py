"""deploy/grafana: the dashboard's data source is an input (and a variable of the same name for
provisioning), and the ConfigMap kustomize builds for Grafana's sidecar carries the file as is.
The panels' queries are checked against a real Prometheus in test_prometheus.py."""

import json
import pathlib
import shutil
import subprocess

import yaml

GRAFANA_DIR = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "grafana"
DASHBOARD = GRAFANA_DIR / "qcal-dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}


def test_the_data_source_is_an_input_every_query_uses():
    dashboard = json.loads(DASHBOARD.read_text())
    (source,) = dashboard["__inputs"]
    assert (source["name"], source["type"], source["pluginId"]) == (
        "DS_PROMETHEUS", "datasource", "prometheus")
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert (variables["DS_PROMETHEUS"]["type"], variables["DS_PROMETHEUS"]["query"]) == (
        "datasource", "prometheus")
    for name in ("instance", "model"):
        assert variables[name]["datasource"] == DATASOURCE
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE and target["expr"], panel["title"]


def test_kustomize_builds_the_sidecar_configmap_from_the_file():
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (1.32, with kustomize) is missing: CI machines have it"
    built = subprocess.run([kubectl, "kustomize", str(GRAFANA_DIR)], capture_output=True,
                           text=True, check=True).stdout
    (configmap,) = yaml.safe_load_all(built)
    assert configmap["kind"] == "ConfigMap"
    assert configmap["metadata"]["name"] == "qcal-grafana-dashboard"
    assert configmap["metadata"]["labels"] == {"grafana_dashboard": "1"}
    assert configmap["data"] == {"qcal-dashboard.json": DASHBOARD.read_text()}
