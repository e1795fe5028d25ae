"""Reviews built to get a Pod past the webhook that its policy refuses, answered in-process by the
service the server runs (``build_service``): the same translation, evaluator and answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from policies import Policy, builtin_policy, load_policy
from stockade.admission.service import AdmissionService
from tests.admission.webhook import compliant_pod_spec, review, workload
from tests.policies.pod_security import ALLOWED, DENIED, Case

IMAGE = "registry.example.com/org/app:1.0"


def _service(policy: Policy, tmp_path: Path) -> AdmissionService:
    from engine.config import Paths, load_config
    from stockade.admission import build_service

    return build_service(policy, load_config(), Paths.default(root=tmp_path / "root"))


@pytest.fixture
def restricted(tmp_path: Path) -> Iterator[AdmissionService]:
    service = _service(builtin_policy("restricted"), tmp_path)
    yield service
    service.close()


def _answer(service: AdmissionService, sent: dict[str, Any]) -> dict[str, Any]:
    status, body = service.validate(json.dumps(sent).encode())
    assert status == 200
    resp = json.loads(body)["response"]
    assert resp["uid"] == sent["request"]["uid"]
    return resp


def test_an_ephemeral_container_dropping_cap_all_is_denied(restricted: AdmissionService) -> None:
    """`kubectl debug` adds the container through pods/ephemeralcontainers; `CAP_ALL` drops nothing
    under containerd, so the debug container keeps the runtime's default capabilities."""
    old = workload("Pod", compliant_pod_spec(IMAGE))
    new = json.loads(json.dumps(old))
    new["spec"]["ephemeralContainers"] = [{
        "name": "debug", "image": "busybox:1.36",
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["CAP_ALL"]}}}]
    resp = _answer(restricted, review(new, operation="UPDATE", old=old, sub_resource="ephemeralcontainers"))
    assert resp["allowed"] is False
    assert "ephemeralContainers[debug]: [runtime.capabilities.drop]" in resp["status"]["message"]


def test_a_resize_above_the_policys_maximum_is_denied(tmp_path: Path) -> None:
    """In-place resize (pods/resize, Kubernetes 1.33) changes a running Pod's limits without a new
    CREATE: skipped as a subresource that 'starts no container', it lifted any limit `max` sets."""
    path = tmp_path / "policy.yaml"
    path.write_text("apiVersion: stockade.dev/v1\nkind: Policy\nmetadata: {name: limits}\nspec:\n"
                    "  profile: restricted\n  runtime:\n    resources: {max: {memory: 1Gi}}\n")
    service = _service(load_policy(str(path)), tmp_path)
    try:
        old = workload("Pod", compliant_pod_spec(IMAGE, resources={"limits": {"memory": "512Mi"}}))
        assert _answer(service, review(old))["allowed"] is True
        new = json.loads(json.dumps(old))
        new["spec"]["containers"][0]["resources"]["limits"]["memory"] = "64Gi"
        resp = _answer(service, review(new, operation="UPDATE", old=old, sub_resource="resize"))
        assert resp["allowed"] is False and "[runtime.resources]" in resp["status"]["message"]
        smaller = json.loads(json.dumps(old))
        smaller["spec"]["containers"][0]["resources"]["limits"]["memory"] = "256Mi"
        assert _answer(service, review(smaller, operation="UPDATE", old=old, sub_resource="resize"))["allowed"]
    finally:
        service.close()


@pytest.mark.parametrize("sub_resource", ["status", "binding"])
def test_subresources_that_change_no_container_stay_unevaluated(restricted: AdmissionService,
                                                               sub_resource: str) -> None:
    pod = workload("Pod", {**compliant_pod_spec(IMAGE), "hostPID": True})
    resp = _answer(restricted, review(pod, operation="UPDATE", old=pod, sub_resource=sub_resource))
    assert resp["allowed"] is True and "starts no container" in resp["auditAnnotations"]["skipped"]


@pytest.mark.parametrize("case", DENIED, ids=lambda c: c.name)
def test_a_pod_pss_baseline_refuses_for_a_kubernetes_only_setting_is_denied(restricted: AdmissionService,
                                                                           case: Case) -> None:
    """Host ports, sysctls, AppArmor, SELinux, procMount and HostProcess were not judged: a Pod that
    Pod Security admission's baseline refuses for one of them alone was admitted under restricted:v1."""
    resp = _answer(restricted, review(case.pod()))
    assert resp["allowed"] is False and resp["status"]["code"] == 403
    assert f"[{case.rule}]" in resp["status"]["message"], resp["status"]["message"]
    deployment = workload("Deployment", case.pod()["spec"])
    deployment["spec"]["template"]["metadata"]["annotations"] = case.annotations
    assert _answer(restricted, review(deployment))["allowed"] is False


@pytest.mark.parametrize("case", ALLOWED, ids=lambda c: c.name)
def test_its_compliant_twin_is_admitted(restricted: AdmissionService, case: Case) -> None:
    assert _answer(restricted, review(case.pod()))["allowed"] is True


def test_restricted_v1_still_admits_them(tmp_path: Path) -> None:
    """A policy pinned to restricted:v1 keeps meaning what it meant."""
    service = _service(builtin_policy("restricted:v1"), tmp_path)
    try:
        for case in DENIED:
            assert _answer(service, review(case.pod()))["allowed"] is True, case.name
    finally:
        service.close()


def test_an_update_that_only_adds_an_apparmor_annotation_is_reviewed(restricted: AdmissionService) -> None:
    """An UPDATE whose pod template spec is unchanged was skipped; the legacy AppArmor annotation lives
    in the template's metadata, so a Deployment rolled out unconfined pods without a review."""
    old = workload("Deployment", compliant_pod_spec(IMAGE))
    new = json.loads(json.dumps(old))
    new["spec"]["template"]["metadata"]["annotations"] = {
        "container.apparmor.security.beta.kubernetes.io/app": "unconfined"}
    resp = _answer(restricted, review(new, operation="UPDATE", old=old))
    assert resp["allowed"] is False and "[runtime.appArmor]" in resp["status"]["message"]
    scaled = json.loads(json.dumps(old))
    scaled["spec"]["replicas"] = 5
    assert "unchanged" in _answer(restricted, review(scaled, operation="UPDATE", old=old))["auditAnnotations"]["skipped"]
