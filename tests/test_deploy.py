"""Dockerfile and deploy/: the Kubernetes manifests validate offline against the API's schemas (1.32), and
they, the Dockerfile and the server agree (paths probed, port, Secret, command, grace period); the image's
command serves an exported bundle here. No image is built: no container daemon runs on this machine and
its base image's registry (Docker Hub) is unreachable (README, Deploy)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import tomllib
import yaml

from sw2.serve.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


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


def test_manifests_validate_against_the_kubernetes_schemas():
    kv = pytest.importorskip("kubernetes_validate")
    kinds = manifests()
    assert set(kinds) == {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Secret",
                          "Kustomization"}  # fmt: skip
    for kind, doc in kinds.items():
        if kind != "Kustomization":
            kv.validate(doc, "1.32", strict=True)
    listed = kinds["Kustomization"]["resources"]
    assert all((DEPLOY / f).exists() for f in listed) and "secret.yaml" not in listed  # the real key is created


def test_manifests_agree_with_the_server_and_each_other():
    from sw2.serve.app import OPEN

    kinds, c = manifests(), container()
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz" and c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"/readyz", "/healthz"} <= set(OPEN)  # the probes need no key
    port = c["ports"][0]["containerPort"]
    assert c["args"][c["args"].index("--port") + 1] == str(port)
    assert kinds["Service"]["spec"]["ports"][0]["targetPort"] == c["ports"][0]["name"]
    ref = next(e for e in c["env"] if e["name"] == "SW2_API_KEY")["valueFrom"]["secretKeyRef"]
    secret = kinds["Secret"]
    assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
    hpa = kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert hpa["kind"] == "Deployment" and hpa["name"] == kinds["Deployment"]["metadata"]["name"]
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > Settings.graceful_s  # in-flight requests finish before SIGKILL
    assert pod["securityContext"]["runAsNonRoot"] and c["securityContext"]["readOnlyRootFilesystem"]
    selector = kinds["Deployment"]["spec"]["selector"]["matchLabels"]
    assert kinds["Service"]["spec"]["selector"] == selector == kinds["PodDisruptionBudget"]["spec"]["selector"][
        "matchLabels"]  # fmt: skip


def test_dockerfile_pins_torch_runs_unprivileged_and_matches_the_deployment():
    steps = dockerfile()
    pin = next(d for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
               if d.startswith("torch"))  # fmt: skip
    assert steps[0] == ("FROM", "python:3.11-slim")
    assert any(i == "RUN" and pin in a and "whl/cpu" in a for i, a in steps), "torch must be the pinned CPU wheel"
    user = next(a for i, a in steps if i == "USER")
    assert user not in ("root", "0")
    assert next(a for i, a in steps if i == "EXPOSE") == str(container()["ports"][0]["containerPort"])
    assert "/healthz" in next(a for i, a in steps if i == "HEALTHCHECK")
    cmd = yaml.safe_load(next(a for i, a in steps if i == "CMD"))  # the JSON form
    assert cmd == container()["args"] and cmd[:3] == ["sw2", "serve", "/bundle"]
    assert "COPY ${BUNDLE} /bundle" in [f"{i} {a}" for i, a in steps]


def test_the_image_command_serves_an_exported_bundle(digits):
    """What the container runs, here: the Dockerfile's CMD with the bundle's path and a free port."""
    pytest.importorskip("onnxruntime")
    import sw2
    from tests.test_serve import Server, digit_images

    if not (digits.path / "model.onnx").exists():
        sw2.export(digits)
    cmd = yaml.safe_load(next(a for i, a in dockerfile() if i == "CMD"))
    args = cmd[3:]
    args[args.index("--host") + 1] = "127.0.0.1"
    i = args.index("--port")
    del args[i : i + 2]  # Server picks a free port
    with Server(digits.path, *args, env={"HOME": "/nonexistent"}) as server:  # the key from SW2_API_KEY only
        import base64

        answer = server.post("/v1/predict", json={"images": [base64.b64encode(digit_images(1)[0]).decode()]})
        assert answer.status_code == 200 and answer.json()["predictions"][0]["label"] == 0
        assert server.get("/v1/model").json()["backend"] == "onnx"
    assert shlex.join(cmd).startswith("sw2 serve /bundle")
