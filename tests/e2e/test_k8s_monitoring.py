"""components/monitoring: the ServiceMonitor scrapes /metrics on the port the server serves it,
over HTTPS when the server has TLS, with a token that /metrics accepts (in the server's tokens
file, without a model prefix: README, "Security", HTTP), and checks the certificate against a
name the certificate holds."""

import base64
import subprocess

import pytest

from kustomize_build import effective_args, find, flags, render, server_container

TARGETS = ["overlays/monitoring", "composed-cpu", "composed-gpu"]


def secret_file(docs, name, key):
    return base64.b64decode(find(docs, "Secret", name)["data"][key]).decode()


def test_no_servicemonitor_without_the_component():
    # Clusters without the Prometheus Operator have no ServiceMonitor kind: apply would fail.
    assert not [d for d in render("overlays/cpu") if d["kind"] == "ServiceMonitor"]


@pytest.mark.parametrize("target", TARGETS)
def test_scrapes_the_http_port_of_the_headless_service(target):
    docs = render(target)
    monitor = find(docs, "ServiceMonitor", "qcal")
    statefulset, container = server_container(docs)
    args = flags(effective_args(docs, container))
    selected = [d for d in docs if d["kind"] == "Service" and
                monitor["spec"]["selector"]["matchLabels"].items() <= d["metadata"]["labels"].items()]
    assert [s["metadata"]["name"] for s in selected] == [statefulset["spec"]["serviceName"]]
    (endpoint,) = monitor["spec"]["endpoints"]
    (port,) = [p for p in selected[0]["spec"]["ports"] if p["name"] == endpoint["port"]]
    (served,) = [p for p in container["ports"] if p["name"] == port["targetPort"]]
    assert served["containerPort"] == int(args["http-listen"].rsplit(":", 1)[1])
    assert endpoint["path"] == "/metrics"
    assert endpoint["scheme"] == ("https" if "tls-cert" in args else "http")


@pytest.mark.parametrize("target", TARGETS)
def test_bearer_token_is_a_prefixless_token_of_the_servers_file(target):
    docs = render(target)
    (endpoint,) = find(docs, "ServiceMonitor", "qcal")["spec"]["endpoints"]
    assert endpoint["authorization"]["type"] == "Bearer"
    credentials = endpoint["authorization"]["credentials"]
    token = secret_file(docs, credentials["name"], credentials["key"]).strip()
    statefulset, container = server_container(docs)
    args = flags(effective_args(docs, container))
    volumes = {v["name"]: v for v in statefulset["spec"]["template"]["spec"]["volumes"]}
    folder, key = args["auth-tokens"].rsplit("/", 1)
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == folder)
    tokens = secret_file(docs, volumes[mount["name"]]["secret"]["secretName"], key)
    lines = [line.split() for line in tokens.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert [line for line in lines if line[1] == token] == [["reader", token]]


@pytest.mark.parametrize("target", TARGETS)
def test_tls_server_name_is_in_the_servers_certificate(target):
    docs = render(target)
    (endpoint,) = find(docs, "ServiceMonitor", "qcal")["spec"]["endpoints"]
    tls = endpoint["tlsConfig"]
    pem = secret_file(docs, tls["ca"]["secret"]["name"], "tls.crt")
    sans = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName"], input=pem,
                          capture_output=True, text=True, check=True).stdout
    assert f"DNS:{tls['serverName']}," in sans.replace("\n", ",").replace(" ", "")
