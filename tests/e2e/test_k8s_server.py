"""deploy/kubernetes: every overlay builds with `kubectl kustomize`, and the qcal-server
StatefulSet it renders would start and stay up: probes on the ports the server listens on, a
grace period that covers the SIGTERM drain and commit, files that exist in mounted Secrets,
no root, and the GPU overlay on a GPU."""

import base64
import json
import re

import pytest

from conftest import REPO
from kustomize_build import (OVERLAYS, effective_args, find, flags, render, server_container)

TARGETS = [f"overlays/{o}" for o in OVERLAYS] + ["composed-cpu", "composed-gpu"]
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")


def test_the_overlays_users_are_told_about_exist():
    assert {"cpu", "gpu", "mtls", "monitoring"} <= set(OVERLAYS)


@pytest.mark.parametrize("target", TARGETS)
def test_probes_call_healthz_on_the_http_port_the_server_listens_on(target):
    docs = render(target)
    _, container = server_container(docs)
    args = flags(effective_args(docs, container))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["grpc"] == int(args["listen"].rsplit(":", 1)[1])
    assert ports["http"] == int(args["http-listen"].rsplit(":", 1)[1])
    for kind in PROBES:
        probe = container[kind]
        # The kubelet's gRPC probe speaks plaintext without a client certificate: with
        # --tls-cert the gRPC port answers TLS only.
        assert "grpc" not in probe or "tls-cert" not in args, f"{target} {kind}"
        get = probe["httpGet"]
        port = ports[get["port"]] if isinstance(get["port"], str) else get["port"]
        assert port == ports["http"], f"{target} {kind}"
        assert get["path"] == "/healthz"
        assert get["scheme"] == ("HTTPS" if "tls-cert" in args else "HTTP"), f"{target} {kind}"


@pytest.mark.parametrize("target", TARGETS)
def test_the_container_replaces_the_images_entrypoint_whose_flags_the_args_repeat(target):
    """docker/Dockerfile.*'s ENTRYPOINT passes --listen, --http-listen and --data-dir; the args
    pass them again, which qcal-server refuses ("At Most 1 required but received 2")."""
    entrypoint = re.search(r'^ENTRYPOINT (\[.*?\])$',
                           (REPO / "docker" / "Dockerfile.cpu").read_text().replace("\\\n", ""),
                           re.M)
    assert entrypoint, "docker/Dockerfile.cpu has no ENTRYPOINT"
    image_flags = {a.split("=")[0] for a in json.loads(entrypoint.group(1)) if a.startswith("--")}
    _, container = server_container(render(target))
    arg_flags = {a.split("=")[0] for a in container["args"] if a.startswith("--")}
    assert image_flags & arg_flags, "the check needs flags in both to mean something"
    assert container.get("command") == ["qcal-server"], target


@pytest.mark.parametrize("target", TARGETS)
def test_grace_period_covers_the_drain_and_a_commit(target):
    docs = render(target)
    statefulset, container = server_container(docs)
    args = flags(effective_args(docs, container))
    grace = statefulset["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    drain, commit = int(args["drain-seconds"]), int(args["commit-interval-seconds"])
    assert grace >= drain + commit, f"{target}: grace {grace} < drain {drain} + commit {commit}"


@pytest.mark.parametrize("target", TARGETS)
def test_runs_as_non_root_on_a_read_only_root_without_privileges(target):
    statefulset, container = server_container(render(target))
    pod = statefulset["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    assert "limits" in container["resources"] and "requests" in container["resources"]


@pytest.mark.parametrize("target", TARGETS)
def test_every_file_flag_names_a_key_of_a_mounted_secret_and_data_dir_is_the_claim(target):
    docs = render(target)
    statefulset, container = server_container(docs)
    args = flags(effective_args(docs, container))
    spec = statefulset["spec"]
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    for flag in ("tls-cert", "tls-key", "tls-client-ca", "auth-tokens"):
        if flag not in args:
            continue
        folder, key = args[flag].rsplit("/", 1)
        secret = find(docs, "Secret", volumes[mounts[folder]]["secret"]["secretName"])
        assert secret["metadata"]["name"] == volumes[mounts[folder]]["secret"]["secretName"]
        assert base64.b64decode(secret["data"][key]), f"{target}: --{flag} {key} is empty"
    claims = [c["metadata"]["name"] for c in spec["volumeClaimTemplates"]]
    assert mounts[args["data-dir"]] in claims


@pytest.mark.parametrize("target", TARGETS)
def test_headless_service_governs_the_pods(target):
    docs = render(target)
    statefulset, _ = server_container(docs)
    service = find(docs, "Service", statefulset["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None"
    labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert statefulset["spec"]["selector"]["matchLabels"].items() <= labels.items()
    budget = find(docs, "PodDisruptionBudget", "qcal")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["spec"]["maxUnavailable"] == 1


def test_cpu_overlay_runs_the_cpu_image_on_the_cpu():
    docs = render("overlays/cpu")
    _, container = server_container(docs)
    assert flags(effective_args(docs, container))["device"] == "cpu"
    assert container["image"].endswith(":cpu")
    assert "nvidia.com/gpu" not in container["resources"].get("limits", {})


@pytest.mark.parametrize("target", ["overlays/gpu", "composed-gpu"])
def test_gpu_overlay_takes_a_gpu_and_the_cuda_image(target):
    docs = render(target)
    statefulset, container = server_container(docs)
    assert flags(effective_args(docs, container))["device"] == "cuda"
    assert container["image"].endswith(":cuda")
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    pod = statefulset["spec"]["template"]["spec"]
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])


@pytest.mark.parametrize("target", ["overlays/mtls", "composed-cpu", "composed-gpu"])
def test_mtls_requires_client_certificates_of_the_ca(target):
    docs = render(target)
    _, container = server_container(docs)
    args = flags(effective_args(docs, container))
    assert args["tls-client-ca"].endswith("/ca.crt")
    assert args["tls-cert"]


def test_plain_overlays_leave_mtls_off():
    docs = render("overlays/cpu")
    _, container = server_container(docs)
    assert "tls-client-ca" not in flags(effective_args(docs, container))
