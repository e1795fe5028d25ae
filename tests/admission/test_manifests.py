"""deploy/kubernetes: valid Kubernetes objects (Kubernetes' own OpenAPI schemas, strict, so a misspelt
field fails), consistent with each other and with the server's flags, compliant with ``restricted``
themselves, and no private key committed."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.admission.webhook import Webhook, review
from tests.support.cli import REPO, stockade

DEPLOY = REPO / "deploy" / "kubernetes"
NAMESPACE = "stockade-system"
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")  # oldest supported upstream when written, and newest schemas


def _objects(certs: Path) -> list[dict[str, Any]]:
    """Every object of deploy/kubernetes, templates filled as the README fills them."""
    values = {name: base64.b64encode((certs / file).read_bytes()).decode()
              for name, file in (("CA_BUNDLE", "ca.crt"), ("TLS_CRT", "tls.crt"), ("TLS_KEY", "tls.key"))}
    out = []
    for path in sorted(DEPLOY.glob("*.yaml")) + sorted(DEPLOY.glob("*.yaml.template")):
        text = path.read_text()
        for name, value in values.items():  # what the README's sed does
            text = text.replace("${" + name + "}", value)
        out += [doc for doc in yaml.safe_load_all(text) if doc]
    return out


@pytest.fixture(scope="module")
def objects(certs: Path) -> dict[str, dict[str, Any]]:
    return {obj["kind"]: obj for obj in _objects(certs)}


def test_every_object_validates_against_the_kubernetes_schemas(certs: Path) -> None:
    import kubernetes_validate

    objs = _objects(certs)
    assert sorted(o["kind"] for o in objs) == sorted([
        "Namespace", "ServiceAccount", "ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "Secret",
        "ValidatingWebhookConfiguration"])
    for obj in objs:
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)
        assert obj["metadata"]["name"]
        if obj["kind"] not in ("Namespace", "ValidatingWebhookConfiguration"):
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["kind"]


def test_a_misspelt_field_would_be_caught() -> None:
    import kubernetes_validate

    bad = yaml.safe_load((DEPLOY / "30-deployment.yaml").read_text())
    bad["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesytem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_webhook_configuration(objects: dict[str, dict[str, Any]], certs: Path) -> None:
    (hook,) = objects["ValidatingWebhookConfiguration"]["webhooks"]
    assert hook["admissionReviewVersions"] == ["v1"] and hook["failurePolicy"] == "Fail"
    assert hook["sideEffects"] in ("None", "NoneOnDryRun")
    deadline = float(_flag(objects, "--deadline"))
    assert deadline < hook["timeoutSeconds"] <= 30
    service = objects["Service"]
    target = hook["clientConfig"]["service"]
    assert (target["name"], target["namespace"], target["path"]) == (
        service["metadata"]["name"], NAMESPACE, "/validate")
    assert target["port"] in [p["port"] for p in service["spec"]["ports"]]
    assert base64.b64decode(hook["clientConfig"]["caBundle"]) == (certs / "ca.crt").read_bytes()
    (exempt,) = hook["namespaceSelector"]["matchExpressions"]
    assert exempt["key"] == "kubernetes.io/metadata.name" and exempt["operator"] == "NotIn"
    assert set(exempt["values"]) == {NAMESPACE, "kube-system"}
    covered = {(group, resource) for rule in hook["rules"] for group in rule["apiGroups"] for resource in rule["resources"]
               if set(rule["operations"]) == {"CREATE", "UPDATE"}}
    assert covered == {("", "pods"), ("", "pods/ephemeralcontainers"), ("", "pods/resize"), ("apps", "deployments"),
                       ("apps", "statefulsets"), ("apps", "daemonsets"), ("apps", "replicasets"),
                       ("batch", "jobs"), ("batch", "cronjobs")}


def _container(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (container,) = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    return container


def _flag(objects: dict[str, dict[str, Any]], name: str) -> str:
    (value,) = [a.split("=", 1)[1] for a in _container(objects)["args"] if a.startswith(name + "=")]
    return value


def test_the_deployment_serves_what_the_service_and_probes_expect(objects: dict[str, dict[str, Any]]) -> None:
    deployment, service = objects["Deployment"], objects["Service"]
    pod = deployment["spec"]["template"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert objects["PodDisruptionBudget"]["spec"]["selector"] == deployment["spec"]["selector"]
    container = _container(objects)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert service["spec"]["ports"][0]["targetPort"] in ports and ports["https"] == int(_flag(objects, "--port"))
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "https", "scheme": "HTTPS"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "https", "scheme": "HTTPS"}
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["runAsNonRoot"] is True and sc["capabilities"]["drop"] == ["ALL"]
    assert sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    # every file the server is told to read is mounted, from the right volume
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    for flag, volume_kind, source in (("--tls-cert", "secret", objects["Secret"]),
                                      ("--tls-key", "secret", objects["Secret"]),
                                      ("--policy", "configMap", objects["ConfigMap"])):
        path = Path(_flag(objects, flag))
        volume = volumes[mounts[str(path.parent)]]
        name = volume[volume_kind].get("secretName") or volume[volume_kind].get("name")
        assert name == source["metadata"]["name"] and path.name in source["data"]
    assert pod["spec"]["serviceAccountName"] == objects["ServiceAccount"]["metadata"]["name"]


def test_the_server_arguments_parse_and_the_policy_and_configuration_load(objects: dict[str, dict[str, Any]],
                                                                       tmp_path: Path) -> None:
    from engine.config import load_config
    from policies import load_policy_text
    from stockade.cli import build_parser

    container = _container(objects)
    args = build_parser().parse_args(container["args"])
    assert (args.command, args.admission_command, args.root) == ("admission", "serve", "/var/lib/stockade")
    data = objects["ConfigMap"]["data"]
    policy = load_policy_text(data["policy.yaml"], "policy.yaml")
    assert policy.profile == "restricted:v2"
    (tmp_path / "config.toml").write_text(data["config.toml"])
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["STOCKADE_CONFIG"] == str(Path(_flag(objects, "--policy")).parent / "config.toml")
    assert load_config(str(tmp_path / "config.toml")).registries.timeout <= float(_flag(objects, "--deadline"))


def test_the_manifests_pass_policy_check_under_restricted() -> None:
    r = stockade("policy", "check", "-f", DEPLOY, "--policy", "restricted", "-o", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["allowed"] is True and doc["checked"] == 1
    assert doc["results"][0]["source"]["object"] == f"Deployment/{NAMESPACE}/stockade-admission containers[webhook]"


def test_the_webhook_admits_its_own_deployment(webhook: Webhook, objects: dict[str, dict[str, Any]]) -> None:
    resp = webhook.post(review(objects["Deployment"], namespace=NAMESPACE))["response"]
    assert resp["allowed"] is True, resp


def test_no_private_key_is_committed() -> None:
    for path in DEPLOY.iterdir():
        assert not re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----", path.read_text()), path
