"""deploy/kubernetes/router and deploy/nginx/qcal.conf: nginx hashes the `qcal-model` header
consistently onto exactly the StatefulSet's replicas, each through its own Service that selects
that one pod, never retries a call elsewhere, and finds every file it names in its mounts."""

import base64
import re
import subprocess

from kustomize_build import (REPO, effective_args, find, flags, render, server_container)

CONF = (REPO / "deploy/nginx/qcal.conf").read_text()


def directives(name, text=CONF):
    """Arguments of every `name ...;` directive (comments dropped)."""
    text = re.sub(r"#[^\n]*", "", text)
    return [m.split() for m in re.findall(rf"(?m)^\s*{name}\s+([^;]*);", text)]


def upstream_block():
    (block,) = re.findall(r"upstream\s+qcal_replicas\s*\{(.*?)\}", re.sub(r"#[^\n]*", "", CONF), re.S)
    return block


def test_upstream_hashes_the_model_header_consistently():
    (key, how), = directives("hash", upstream_block())
    assert how == "consistent"
    # The key is the header, mapped to a fixed non-empty value when it is missing (an empty key
    # would make nginx spread those calls round-robin).
    (block,) = re.findall(r"map\s+\$http_qcal_model\s+" + re.escape(key) + r"\s*\{(.*?)\}", CONF, re.S)
    mapping = dict(re.findall(r'(?m)^\s*("[^"]*"|\S+)\s+("[^"]*"|\S+);', block))
    assert mapping["default"] == "$http_qcal_model"
    assert mapping['""'].strip('"')
    assert directives("grpc_pass") == [["grpcs://qcal_replicas"]]


def test_a_call_is_never_moved_to_another_replica():
    # Another replica does not hold the model: a retry there, or marking a replica down, would
    # split its state.
    assert directives("grpc_next_upstream") == [["off"]]
    servers = directives("server", upstream_block())
    assert servers and all("max_fails=0" in s[1:] for s in servers)


def test_upstream_lists_every_replica_through_its_own_service():
    servers = render("overlays/cpu")
    statefulset, container = server_container(servers)
    port = flags(effective_args(servers, container))["listen"].rsplit(":", 1)[1]
    replicas = statefulset["spec"]["replicas"]
    names = [f"{statefulset['metadata']['name']}-{i}" for i in range(replicas)]
    assert [s[0] for s in directives("server", upstream_block())] == [f"{n}:{port}" for n in names]
    router = render("router")
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    for name in names:
        service = find(router, "Service", name)
        selector = dict(service["spec"]["selector"])
        assert selector.pop("statefulset.kubernetes.io/pod-name") == name
        assert selector.items() <= pod_labels.items()
        assert service["spec"].get("clusterIP") != "None"  # a stable IP across pod restarts
        (service_port,) = service["spec"]["ports"]
        assert service_port["port"] == int(port)
        assert service_port["targetPort"] in [p["name"] for p in container["ports"]]


def test_router_deployment_mounts_what_nginx_reads():
    router = render("router")
    deployment = find(router, "Deployment", "qcal-router")
    pod = deployment["spec"]["template"]["spec"]
    (nginx,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in nginx["volumeMounts"]}

    def content(path):
        folder, key = path.rsplit("/", 1)
        volume = mounts[folder]
        if "configMap" in volume:
            return find(router, "ConfigMap", volume["configMap"]["name"])["data"][key]
        return base64.b64decode(find(router, "Secret", volume["secret"]["secretName"])["data"][key])

    main = content(nginx["command"][nginx["command"].index("-c") + 1])
    assert main == (REPO / "deploy/nginx/nginx.conf").read_text()
    (include,) = directives("include", main)
    assert content(include[0]) == CONF
    for name in ("ssl_certificate", "ssl_certificate_key", "grpc_ssl_trusted_certificate",
                 "grpc_ssl_certificate", "grpc_ssl_certificate_key"):
        (path,) = directives(name)
        assert content(path[0]), name
    # nginx checks the servers' certificate against this name: the certificate must hold it.
    (ssl_name,) = directives("grpc_ssl_name")
    pem = content(directives("grpc_ssl_certificate")[0][0]).decode()
    sans = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName"], input=pem,
                          capture_output=True, text=True, check=True).stdout
    assert f"DNS:{ssl_name[0]}," in sans.replace("\n", ",").replace(" ", "")


def test_router_service_reaches_the_port_nginx_listens_on():
    router = render("router")
    service = find(router, "Service", "qcal-router")
    (nginx,) = find(router, "Deployment", "qcal-router")["spec"]["template"]["spec"]["containers"]
    (port,) = service["spec"]["ports"]
    (container_port,) = [p for p in nginx["ports"] if p["name"] == port["targetPort"]]
    assert [["%d" % container_port["containerPort"], "ssl", "http2"]] == directives("listen")


def test_router_runs_as_non_root_on_a_read_only_root():
    pod = find(render("router"), "Deployment", "qcal-router")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    security = pod["containers"][0]["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
