"""Dockerfile and deploy/: the Kubernetes manifests validate offline against the API's schemas (1.32), and
they, the Dockerfile and the server agree (paths probed, port, Secret and its keys, command, grace period,
memory); the image is pinned (base and app by digest, packages by a hashed lock without the training-only
ones) and holds only the bundle files serving reads; its command serves an exported bundle of just those files
here, with the packages the image leaves out unimportable. No image is built: no container daemon runs on this
machine and its base image's registry (Docker Hub) is unreachable (docs/deploy.md, Deploy). The Prometheus Operator's
ServiceMonitor is a custom resource the 1.32 schemas do not know: it is checked field by field, not validated."""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml

from sw2.serve.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
LOCK = DEPLOY / "requirements-serve.txt"
TRAINING_ONLY = ("matplotlib", "tensorboard", "captum")  # core dependencies that `sw2 serve` never imports
SERVED = {"model.safetensors", "model.json", "preprocess.json", "spec.yaml", "model.onnx", "export.json",
          "metrics.json", "fingerprint.json", "reference.json"}  # fmt: skip


def manifests() -> dict[str, dict]:
    """Every document in deploy/, by kind."""
    docs = [d for f in sorted(DEPLOY.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    return {d["kind"]: d for d in docs}


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, argument) pairs, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def container() -> dict:
    return manifests()["Deployment"]["spec"]["template"]["spec"]["containers"][0]


def env_ref(name: str) -> dict:
    """The secretKeyRef the container's environment variable `name` is read from."""
    return next(e for e in container()["env"] if e["name"] == name)["valueFrom"]["secretKeyRef"]


def locked() -> dict[str, tuple[str, list[str]]]:
    """The lock's requirements: name -> (the `==` specifier, its hashes); an unpinned line fails here."""
    text = re.sub(r"\\\n\s*", " ", LOCK.read_text())
    lines = [" ".join(line.split("#")[0].split()) for line in text.splitlines()]
    out = {}
    for line in (x for x in lines if x and not x.startswith("--")):
        found = re.fullmatch(r"([a-z0-9-]+)(==\S+)((?: --hash=sha256:[0-9a-f]{64})+)", line)
        assert found, f"not pinned with == and a sha256: {line}"
        out[found[1]] = (found[2], re.findall(r"sha256:([0-9a-f]{64})", found[3]))
    return out


def bundle_copy() -> dict[str, bool]:
    """The bundle files the Dockerfile copies into /bundle: name -> required (an optional one is name[x])."""
    copies = [a.split() for i, a in dockerfile() if i == "COPY" and "/bundle" in a.split()[-1]]
    assert len(copies) == 1, "one COPY puts the bundle's files in /bundle"
    names = [s.removeprefix("${BUNDLE}/") for s in copies[0][:-1]]
    assert all("/" not in n for n in names), f"copy the bundle's files by name, not whole folders: {names}"
    return {re.sub(r"\[(\w)\]$", r"\1", n): not n.endswith("]") for n in names}


def test_manifests_validate_against_the_kubernetes_schemas():
    kv = pytest.importorskip("kubernetes_validate")
    kinds = manifests()
    assert set(kinds) == {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Secret",
                          "NetworkPolicy", "Kustomization"}  # fmt: skip
    for kind, doc in kinds.items():
        if kind != "Kustomization":
            kv.validate(doc, "1.32", strict=True)
    listed = kinds["Kustomization"]["resources"]
    assert all((DEPLOY / f).exists() for f in listed) and "secret.yaml" not in listed  # the real key is created
    assert "networkpolicy.yaml" in listed


def test_the_image_is_pinned_by_digest_in_the_kustomization():
    (image,) = manifests()["Kustomization"]["images"]
    assert image["name"] == container()["image"] and "newTag" not in image
    assert image["digest"].startswith("sha256:") and "/" in image["newName"]
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: the kustomization is not rendered")
    rendered = subprocess.run(["kubectl", "kustomize", str(DEPLOY)], capture_output=True, text=True, check=True)
    deployment = next(d for d in yaml.safe_load_all(rendered.stdout) if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == f"{image['newName']}@{image['digest']}"


def test_manifests_agree_with_the_server_and_each_other():
    from sw2.serve.app import OPEN

    kinds, c = manifests(), container()
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz" and c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"/readyz", "/healthz"} <= set(OPEN)  # the probes need no key
    port = c["ports"][0]["containerPort"]
    assert c["args"][c["args"].index("--port") + 1] == str(port)
    assert kinds["Service"]["spec"]["ports"][0]["targetPort"] == c["ports"][0]["name"]
    secret = kinds["Secret"]
    for var, key in (("SW2_API_KEY", "key"), ("SW2_METRICS_KEY", "metrics-key")):  # the scrape's key as well
        ref = env_ref(var)
        assert ref["name"] == secret["metadata"]["name"] and ref["key"] == key and key in secret["stringData"]
    hpa = kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert hpa["kind"] == "Deployment" and hpa["name"] == kinds["Deployment"]["metadata"]["name"]
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > Settings.graceful_s  # in-flight requests finish before SIGKILL
    assert pod["securityContext"]["runAsNonRoot"] and c["securityContext"]["readOnlyRootFilesystem"]
    assert pod["automountServiceAccountToken"] is False  # the server never calls the Kubernetes API
    assert c["startupProbe"]["httpGet"]["path"] == "/readyz"  # liveness waits for the model to load and warm up
    startup = c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"]
    assert startup >= 120 and "initialDelaySeconds" not in c["livenessProbe"]
    annotations = kinds["Deployment"]["spec"]["template"]["metadata"].get("annotations", {})
    assert not any(k.startswith("prometheus.io/") for k in annotations)  # a generic scrape job has no key: 401
    selector = kinds["Deployment"]["spec"]["selector"]["matchLabels"]
    assert kinds["Service"]["spec"]["selector"] == selector == kinds["PodDisruptionBudget"]["spec"]["selector"][
        "matchLabels"]  # fmt: skip


def test_the_placeholder_keys_are_refused_by_the_server():
    from sw2.errors import UserError
    from sw2.serve.auth import strong

    for name, placeholder in manifests()["Secret"]["stringData"].items():
        with pytest.raises(UserError, match="placeholder"):
            strong(placeholder, f"deploy/secret.yaml {name}")


def test_memory_holds_the_bodies_in_flight_and_tmp_holds_no_uploads():
    """Uploads stay in memory (at most --max-inflight-mb of bodies at once), never spooled to /tmp: the limit
    holds them over the ~350 MiB the process takes, and /tmp keeps its small size limit."""
    c = container()
    limit = c["resources"]["limits"]["memory"]
    assert int(limit[:-2]) * {"Mi": 1, "Gi": 1024}[limit[-2:]] >= 512 + Settings.max_inflight_mb
    assert "--max-inflight-mb" not in c["args"]  # the default the sizing assumes
    tmp = next(v for v in manifests()["Deployment"]["spec"]["template"]["spec"]["volumes"] if v["name"] == "tmp")
    assert tmp["emptyDir"]["sizeLimit"] == "64Mi"
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]


def test_the_network_policy_lets_in_only_http_and_nothing_out():
    kinds = manifests()
    spec = kinds["NetworkPolicy"]["spec"]
    assert spec["podSelector"]["matchLabels"] == kinds["Deployment"]["spec"]["selector"]["matchLabels"]
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"} and spec["egress"] == []  # the server calls nothing
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"port": container()["ports"][0]["name"], "protocol": "TCP"}]


def test_prometheus_scrapes_with_the_metrics_key():
    """The ServiceMonitor (a custom resource: its fields checked here, no schema) and the plain scrape job
    both send the Secret's metrics-key, which the pods read as SW2_METRICS_KEY."""
    kinds, ref = manifests(), env_ref("SW2_METRICS_KEY")
    monitor = yaml.safe_load((DEPLOY / "prometheus" / "servicemonitor.yaml").read_text())
    assert (monitor["apiVersion"], monitor["kind"]) == ("monitoring.coreos.com/v1", "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= kinds["Service"]["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == kinds["Service"]["spec"]["ports"][0]["name"] and endpoint["path"] == "/metrics"
    assert endpoint["authorization"]["type"] == "Bearer"
    assert endpoint["authorization"]["credentials"] == {"name": ref["name"], "key": ref["key"]}
    (job,) = yaml.safe_load((DEPLOY / "prometheus" / "scrape-config.yaml").read_text())["scrape_configs"]
    assert job["metrics_path"] == "/metrics" and job["authorization"]["credentials_file"].endswith("/metrics-key")
    keep = {r["source_labels"][0]: r["regex"] for r in job["relabel_configs"] if r["action"] == "keep"}
    ((label, value),) = monitor["spec"]["selector"]["matchLabels"].items()
    found = "__meta_kubernetes_pod_label_" + re.sub(r"[^a-z0-9]", "_", label)  # how Prometheus names a pod label
    assert keep == {found: value, "__meta_kubernetes_pod_container_port_name": container()["ports"][0]["name"]}


def test_dockerfile_is_pinned_runs_unprivileged_and_matches_the_deployment():
    steps = dockerfile()
    assert re.fullmatch(r"python:3\.11-slim(-bookworm)?@sha256:[0-9a-f]{64}", steps[0][1]), "base image by digest"
    installs = [a for i, a in steps if i == "RUN" and "pip install" in a]
    assert len(installs) == 2
    assert "--require-hashes" in installs[0] and "-r requirements-serve.txt" in installs[0]
    assert "--no-deps" in installs[1] and installs[1].split("&&")[0].rstrip().endswith(" .")  # sw2 alone
    assert ("COPY", "deploy/requirements-serve.txt ./") in steps
    user = next(a for i, a in steps if i == "USER")
    assert user not in ("root", "0")
    assert next(a for i, a in steps if i == "EXPOSE") == str(container()["ports"][0]["containerPort"])
    assert "/healthz" in next(a for i, a in steps if i == "HEALTHCHECK")
    cmd = yaml.safe_load(next(a for i, a in steps if i == "CMD"))  # the JSON form
    assert cmd == container()["args"] and cmd[:3] == ["sw2", "serve", "/bundle"]


def test_the_lock_pins_every_package_torch_on_the_cpu_and_nothing_for_training():
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    lock, lines = locked(), LOCK.read_text().splitlines()
    assert not set(lock) & set(TRAINING_ONLY)
    torch = next(d for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
                 if d.startswith("torch"))  # fmt: skip
    assert lock["torch"][0] == torch.removeprefix("torch") + "+cpu"  # pyproject's pin, PyTorch's CPU build
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    wanted = [Requirement(line) for line in (DEPLOY / "requirements-serve.in").read_text().splitlines()
              if line.strip() and not line.startswith("#")]  # fmt: skip
    for req in wanted:
        name = canonicalize_name(req.name)
        assert name in lock and req.specifier.contains(lock[name][0][2:].split("+")[0]), f"{req}: not in the lock"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    asked = project["dependencies"] + extras["serve"] + extras["onnx"] + extras["text"]
    names = {canonicalize_name(Requirement(r).name) for r in asked} - set(TRAINING_ONLY) - {"onnxscript"}
    assert names == {canonicalize_name(r.name) for r in wanted}, "requirements-serve.in follows pyproject.toml"


def test_the_image_holds_only_the_bundle_files_serving_reads():
    from sw2.outputs import BUNDLE_FILES, REQUIRED

    copied = bundle_copy()
    assert set(copied) == SERVED and SERVED <= set(BUNDLE_FILES)
    assert {n for n, required in copied.items() if required} == {*REQUIRED, "model.onnx"}  # --backend onnx


BLOCK = """\
import sys
from importlib.machinery import PathFinder


class NotInTheImage(PathFinder):
    \"\"\"Python's path finder, blind to the packages the image leaves out: as there, not found.\"\"\"

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        return None if name.partition(".")[0] in {blocked!r} else super().find_spec(name, path, target)


sys.meta_path[:] = [NotInTheImage if finder is PathFinder else finder for finder in sys.meta_path]
"""


def test_the_image_command_serves_an_exported_bundle(digits, tmp_path):
    """What the container runs, here: the Dockerfile's CMD with a free port, on a read-only copy of only the
    bundle files the Dockerfile copies, with matplotlib, tensorboard and captum unimportable (a
    sitecustomize.py on PYTHONPATH), the API key from SW2_API_KEY and the scrape's from SW2_METRICS_KEY."""
    pytest.importorskip("onnxruntime")
    import base64

    import sw2
    from tests.test_serve import Server, digit_images

    if not (digits.path / "model.onnx").exists():
        sw2.export(digits)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for name in bundle_copy():
        shutil.copy(digits.path / name, bundle / name)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK.format(blocked=set(TRAINING_ONLY)))
    path = os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])
    env = {"HOME": "/nonexistent", "PYTHONPATH": path, "SW2_METRICS_KEY": secrets.token_urlsafe(32)}
    found = f"import importlib.util as u; print([n for n in {TRAINING_ONLY!r} if u.find_spec(n)])"
    probe = subprocess.run([sys.executable, "-c", found], env={**os.environ, **env}, capture_output=True, text=True)
    assert probe.stdout.strip() == "[]", probe.stderr  # the server's interpreter finds none of them
    cmd = yaml.safe_load(next(a for i, a in dockerfile() if i == "CMD"))
    args = cmd[3:]
    args[args.index("--host") + 1] = "127.0.0.1"
    i = args.index("--port")
    del args[i : i + 2]  # Server picks a free port
    key = secrets.token_urlsafe(32)
    for path in (bundle, *bundle.iterdir()):
        path.chmod(0o555 if path.is_dir() else 0o444)  # as in the image: owned by root, read-only to the server
    try:
        with Server(bundle, *args, env=env, key=key) as server:  # the key from SW2_API_KEY only
            answer = server.post("/v1/predict", json={"images": [base64.b64encode(digit_images(1)[0]).decode()]})
            assert answer.status_code == 200 and answer.json()["predictions"][0]["label"] == 0
            assert server.get("/v1/model").json()["backend"] == "onnx"
            scrape = {"Authorization": f"Bearer {env['SW2_METRICS_KEY']}"}
            assert server.get("/metrics", headers=scrape).status_code == 200
            assert server.post("/v1/predict", json={"images": []}, headers=scrape).status_code == 401
    finally:
        bundle.chmod(0o755)
    assert shlex.join(cmd).startswith("sw2 serve /bundle")
