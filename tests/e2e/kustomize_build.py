"""Renders deploy/kubernetes with the real `kubectl kustomize`, for the manifest tests.

The Secrets are generated from files that are never committed, so each build runs on a copy of
deploy/ whose secrets/ folder make-dev-secrets.sh has filled (real openssl): what a user does
before `kubectl apply -k`. kubectl comes with the machine (and CI's), not from apt: a missing
kubectl fails the tests.
"""

import atexit
import functools
import pathlib
import re
import shutil
import subprocess
import tempfile

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
KUSTOMIZE = REPO / "deploy" / "kubernetes"
OVERLAYS = sorted(p.name for p in (KUSTOMIZE / "overlays").iterdir() if p.is_dir())

# Both components on top of an overlay, as README shows users: kubernetes/composed-OVERLAY.
COMPOSED = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [../overlays/{overlay}]
components: [../components/mtls, ../components/monitoring]
"""


def kubectl():
    path = shutil.which("kubectl")
    assert path, "kubectl is missing: it comes with the machine (kubectl 1.32, kustomize 5.5)"
    return path


@functools.lru_cache(maxsize=None)
def tree():
    """A copy of deploy/ with dev secrets in kubernetes/secrets/, and the composed-* kustomizations."""
    root = pathlib.Path(tempfile.mkdtemp(prefix="qcal-k8s-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    shutil.copytree(REPO / "deploy", root / "deploy", ignore=shutil.ignore_patterns(
        "*.crt", "*.key", "tokens", "metrics-token"))
    subprocess.run([str(root / "deploy/kubernetes/secrets/make-dev-secrets.sh"), "qcal-test"],
                   check=True, capture_output=True, timeout=60)
    for overlay in ("cpu", "gpu"):
        (root / f"deploy/kubernetes/composed-{overlay}").mkdir()
        (root / f"deploy/kubernetes/composed-{overlay}/kustomization.yaml").write_text(
            COMPOSED.format(overlay=overlay))
    return root / "deploy"


@functools.lru_cache(maxsize=None)
def render(target):
    """The documents `kubectl kustomize` prints for deploy/kubernetes/TARGET (a path below it)."""
    result = subprocess.run([kubectl(), "kustomize", str(tree() / "kubernetes" / target)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"kubectl kustomize {target}: {result.stderr}"
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def find(docs, kind, name=None):
    """The one document of KIND (named NAME, or the generated NAME-<hash>)."""
    hits = [d for d in docs if d["kind"] == kind and (
        name is None or re.fullmatch(re.escape(name) + r"(-[a-z0-9]{10})?", d["metadata"]["name"]))]
    assert len(hits) == 1, f"expected one {kind} {name or ''}, found {len(hits)}"
    return hits[0]


def env_of(docs, container):
    """The container's environment: its env values and its envFrom ConfigMaps' data."""
    env = {}
    for source in container.get("envFrom", []):
        env.update(find(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
    env.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    return env


def effective_args(docs, container):
    """The container's args as the kubelet passes them: $(VAR) replaced from its environment
    (an undefined one stays literal in Kubernetes; here it fails the test)."""
    env = env_of(docs, container)

    def expand(arg):
        for var in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", arg):
            assert var in env, f"{arg}: $({var}) is defined by no env or envFrom ConfigMap"
            arg = arg.replace(f"$({var})", env[var])
        return arg

    return [expand(a) for a in container.get("args", [])]


def flags(args):
    """--name=value args as a dict (the manifests write every flag in that form)."""
    out = {}
    for arg in args:
        assert arg.startswith("--") and "=" in arg, f"{arg}: write flags as --name=value"
        name, value = arg[2:].split("=", 1)
        out[name] = value
    return out


def server_container(docs):
    statefulset = find(docs, "StatefulSet", "qcal")
    return statefulset, statefulset["spec"]["template"]["spec"]["containers"][0]
