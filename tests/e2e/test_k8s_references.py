"""Every Secret and ConfigMap that a rendered deploy/kubernetes target refers to (volumes,
envFrom, env, the ServiceMonitor's credentials) is in the same output, under its generated name,
with the key asked for: `kubectl apply -k` of it alone starts pods that find their files."""

import pytest

from kustomize_build import OVERLAYS, render

TARGETS = [f"overlays/{o}" for o in OVERLAYS] + ["composed-cpu", "composed-gpu", "router"]


def references(doc):
    """(kind, name, key or None) of every Secret/ConfigMap reference in DOC."""
    refs = []
    if doc["kind"] in ("StatefulSet", "Deployment"):
        pod = doc["spec"]["template"]["spec"]
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                refs += [("Secret", volume["secret"]["secretName"], i["key"])
                         for i in volume["secret"].get("items", [])] or [
                             ("Secret", volume["secret"]["secretName"], None)]
            if "configMap" in volume:
                refs.append(("ConfigMap", volume["configMap"]["name"], None))
        for container in pod["containers"] + pod.get("initContainers", []):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    refs.append(("ConfigMap", source["configMapRef"]["name"], None))
                if "secretRef" in source:
                    refs.append(("Secret", source["secretRef"]["name"], None))
            for env in container.get("env", []):
                ref = env.get("valueFrom", {})
                if "configMapKeyRef" in ref:
                    refs.append(("ConfigMap", ref["configMapKeyRef"]["name"], ref["configMapKeyRef"]["key"]))
                if "secretKeyRef" in ref:
                    refs.append(("Secret", ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"]))
    if doc["kind"] == "ServiceMonitor":
        for endpoint in doc["spec"]["endpoints"]:
            credentials = endpoint.get("authorization", {}).get("credentials")
            if credentials:
                refs.append(("Secret", credentials["name"], credentials["key"]))
            tls = endpoint.get("tlsConfig", {})
            for field in ("ca", "cert"):
                if "secret" in tls.get(field, {}):
                    refs.append(("Secret", tls[field]["secret"]["name"], tls[field]["secret"]["key"]))
            if "keySecret" in tls:
                refs.append(("Secret", tls["keySecret"]["name"], tls["keySecret"]["key"]))
    return refs


@pytest.mark.parametrize("target", TARGETS)
def test_every_referenced_secret_and_configmap_is_rendered_with_its_key(target):
    docs = render(target)
    present = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    refs = [r for d in docs for r in references(d)]
    assert refs, f"{target}: no references found; the walk above is out of date"
    for kind, name, key in refs:
        assert (kind, name) in present, f"{target}: {kind} {name} is referenced but not rendered"
        if key is not None:
            assert key in present[(kind, name)].get("data", {}), f"{target}: {kind} {name} has no {key}"
