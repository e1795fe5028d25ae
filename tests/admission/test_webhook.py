"""The webhook end to end: real AdmissionReview JSON over real HTTPS to ``stockade admission serve``,
with images in a real registry signed by ``stockade sign``.

The policy (conftest ``POLICY``): ``restricted``; every image of the test registry signed by the
test key; ``readOnlyRootFilesystem`` at warn; an audit-mode rule for ``*-debug`` repositories; a
warn-mode rule for the ``legacy`` namespace. Images outside the test registry need no signature,
so policy-only cases reach no network.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.admission.conftest import Images
from tests.admission.webhook import Webhook, compliant_pod_spec, review, workload

UNREGISTERED = "docker.io/library/busybox:1.36"  # needs no signature under the test policy


def answer(doc: dict[str, Any]) -> dict[str, Any]:
    assert doc["apiVersion"] == "admission.k8s.io/v1" and doc["kind"] == "AdmissionReview"
    return doc["response"]


def violations(resp: dict[str, Any]) -> list[str]:
    return [line[2:] for line in resp["status"]["message"].splitlines() if line.startswith("- ")]


# --- allowed -----------------------------------------------------------------------------------------

def test_a_compliant_pod_with_a_signed_image_is_allowed_and_its_uid_echoed(webhook: Webhook, images: Images) -> None:
    sent = review(workload("Pod", compliant_pod_spec(images.signed)), uid="705ab4f5-6393-11e8-b7cc-42010a800002")
    resp = answer(webhook.post(sent))
    assert resp["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002"
    assert resp["allowed"] is True and "status" not in resp
    # verified by tag: the digest it resolved to is recorded, and the user is told to pin it
    tags = json.loads(resp["auditAnnotations"]["verified-tags"])
    assert tags == [{"image": images.signed, "digest": images.signed_digest}]
    (warning,) = resp["warnings"]
    assert warning.startswith(f"{images.signed} verified as {images.signed_digest[:19]}") and "pin the digest" in warning
    assert resp["auditAnnotations"]["policy"] == "webhook-test@3"


def test_a_digest_reference_and_a_bundle_signature_are_allowed_without_a_pinning_warning(
        webhook: Webhook, images: Images) -> None:
    pinned = f"{images.signed.rsplit(':', 1)[0]}@{images.signed_digest}"
    resp = answer(webhook.post(review(workload("Pod", compliant_pod_spec(pinned)))))
    assert resp["allowed"] is True and "warnings" not in resp and "verified-tags" not in resp["auditAnnotations"]
    resp = answer(webhook.post(review(workload("Pod", compliant_pod_spec(images.bundle_signed)))))
    assert resp["allowed"] is True


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"])
def test_every_controller_kind_is_evaluated(webhook: Webhook, images: Images, kind: str) -> None:
    assert answer(webhook.post(review(workload(kind, compliant_pod_spec(images.signed)))))["allowed"] is True
    spec = compliant_pod_spec(images.signed)
    spec["hostNetwork"] = True
    resp = answer(webhook.post(review(workload(kind, spec))))
    assert resp["allowed"] is False and resp["status"]["code"] == 403
    assert any("[runtime.hostNamespaces]" in v for v in violations(resp))


# --- denied ------------------------------------------------------------------------------------------

def test_a_pod_a_controller_creates_is_named_by_its_generate_name(webhook: Webhook) -> None:
    spec = compliant_pod_spec(UNREGISTERED)
    spec["hostPID"] = True
    pod = workload("Pod", spec, namespace="shop")
    pod["metadata"] = {"generateName": "web-5d8f7-", "namespace": "shop"}
    resp = answer(webhook.post(review(pod, namespace="shop")))
    assert resp["status"]["message"].startswith("stockade policy webhook-test@3 denied Pod shop/web-5d8f7-*: ")


def test_an_unsigned_image_is_denied_with_the_reason(webhook: Webhook, images: Images) -> None:
    resp = answer(webhook.post(review(workload("Pod", compliant_pod_spec(images.unsigned)))))
    assert resp["allowed"] is False
    assert resp["status"]["code"] == 403 and resp["status"]["reason"] == "Forbidden"
    (line,) = violations(resp)
    assert line.startswith("containers[app]: [signatures] no signature")
    assert "(spec.containers[0].image)" in line
    assert "by digest (IMAGE@sha256:" in resp["status"]["message"]  # the TOCTOU remedy


def test_a_privileged_pod_is_denied(webhook: Webhook) -> None:
    spec = compliant_pod_spec(UNREGISTERED)
    spec["containers"][0]["securityContext"]["privileged"] = True
    resp = answer(webhook.post(review(workload("Pod", spec))))
    assert resp["allowed"] is False
    assert [v for v in violations(resp) if "[runtime.privileged]" in v] == [
        "containers[app]: [runtime.privileged] privileged containers are not allowed "
        "(spec.containers[0].securityContext.privileged); fix: remove --privileged (Kubernetes: privileged: true); "
        "add only the capabilities the program needs"]


def test_a_deployment_with_host_pid_is_denied_naming_the_template_field(webhook: Webhook) -> None:
    spec = compliant_pod_spec(UNREGISTERED)
    spec["hostPID"] = True
    resp = answer(webhook.post(review(workload("Deployment", spec, name="web", namespace="shop"), namespace="shop")))
    assert resp["allowed"] is False
    assert resp["status"]["message"].startswith("stockade policy webhook-test@3 denied Deployment shop/web: 1 violation(s)")
    (line,) = violations(resp)
    assert "[runtime.hostNamespaces]" in line and "(spec.template.spec.hostPID)" in line


def test_every_violation_of_every_container_is_listed(webhook: Webhook, images: Images) -> None:
    spec = compliant_pod_spec(images.unsigned)
    spec["hostIPC"] = True
    spec["containers"][0]["securityContext"].update(privileged=True, allowPrivilegeEscalation=True)
    spec["initContainers"] = [{"name": "setup", "image": UNREGISTERED,
                               "securityContext": {"runAsUser": 0, "capabilities": {"add": ["SYS_ADMIN"]}}}]
    resp = answer(webhook.post(review(workload("Pod", spec))))
    lines = violations(resp)
    assert resp["status"]["message"].splitlines()[0].endswith(f": {len(lines)} violation(s)")
    found = {(line.split(":")[0], line.split("] ")[0].split("[")[-1]) for line in lines}
    assert {("containers[app]", r) for r in ("signatures", "runtime.privileged", "runtime.allowPrivilegeEscalation",
                                            "runtime.hostNamespaces")} <= found
    assert {("initContainers[setup]", r) for r in ("runtime.runAsNonRoot", "runtime.capabilities.add",
                                                   "runtime.capabilities.drop", "runtime.hostNamespaces",
                                                   "runtime.allowPrivilegeEscalation")} <= found


def test_an_ephemeral_container_added_to_a_running_pod_is_evaluated(webhook: Webhook) -> None:
    old = workload("Pod", compliant_pod_spec(UNREGISTERED))
    new = json.loads(json.dumps(old))
    new["spec"]["ephemeralContainers"] = [{"name": "debug", "image": UNREGISTERED,
                                           "securityContext": {"privileged": True}}]
    resp = answer(webhook.post(review(new, operation="UPDATE", old=old, sub_resource="ephemeralcontainers")))
    assert resp["allowed"] is False
    assert all(v.startswith("ephemeralContainers[debug]") for v in violations(resp))


# --- warn, audit, what is not evaluated ----------------------------------------------------------------

def test_warn_mode_rules_become_warnings_of_at_most_120_characters(webhook: Webhook) -> None:
    spec = compliant_pod_spec(UNREGISTERED)
    spec["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
    resp = answer(webhook.post(review(workload("Pod", spec, namespace="legacy"), namespace="legacy")))
    assert resp["allowed"] is True
    assert sorted(w.split("] ")[0] for w in resp["warnings"]) == [
        "containers[app]: [legacy-namespace", "containers[app]: [runtime.readOnlyRootFilesystem"]
    assert all(len(w) <= 120 for w in resp["warnings"])


def test_audit_mode_rules_become_audit_annotations(webhook: Webhook, images: Images) -> None:
    resp = answer(webhook.post(review(workload("Pod", compliant_pod_spec(images.debug)))))
    assert resp["allowed"] is True
    assert json.loads(resp["auditAnnotations"]["audit"]) == [
        {"container": "containers[app]", "rule": "no-debug-images", "message": "debug images are for staging only",
         "field": "spec.containers[0]"}]


@pytest.mark.parametrize("case", ["delete", "configmap", "status", "metadata-only-update"])
def test_requests_that_start_no_container_are_allowed_unevaluated(webhook: Webhook, case: str) -> None:
    bad = compliant_pod_spec(UNREGISTERED)
    bad["containers"][0]["securityContext"]["privileged"] = True
    pod = workload("Pod", bad)
    if case == "delete":
        sent = review(None, kind="Pod", operation="DELETE", old=pod)
    elif case == "configmap":
        sent = review({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}})
    elif case == "status":
        sent = review(pod, operation="UPDATE", old=pod, sub_resource="status")
    else:
        relabelled = json.loads(json.dumps(pod))
        relabelled["metadata"]["labels"] = {"team": "web"}
        sent = review(relabelled, operation="UPDATE", old=pod)
    resp = answer(webhook.post(sent))
    assert resp["allowed"] is True and resp["auditAnnotations"]["skipped"]


def test_an_update_that_changes_the_pod_template_is_evaluated(webhook: Webhook) -> None:
    old = workload("Deployment", compliant_pod_spec(UNREGISTERED))
    new = json.loads(json.dumps(old))
    new["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    resp = answer(webhook.post(review(new, operation="UPDATE", old=old)))
    assert resp["allowed"] is False


# --- dry run, cache, metrics -----------------------------------------------------------------------------

def _decisions(webhook: Webhook, result: str, kind: str, dry_run: str) -> float:
    return webhook.metric("stockade_admission_decisions_total", result=result, kind=kind, dry_run=dry_run)


def test_the_second_review_of_a_digest_is_answered_from_the_cache(webhook: Webhook, images: Images) -> None:
    ref, _ = images.fresh("cached/app")
    before = webhook.metrics()
    hits = ("stockade_admission_verification_cache_total", frozenset({("result", "hit")}))
    misses = ("stockade_admission_verification_cache_total", frozenset({("result", "miss")}))
    assert answer(webhook.post(review(workload("Pod", compliant_pod_spec(ref)))))["allowed"] is True
    middle = webhook.metrics()
    assert (middle[misses] - before[misses], middle[hits] - before[hits]) == (1, 0)
    for kind in ("Pod", "Deployment"):
        assert answer(webhook.post(review(workload(kind, compliant_pod_spec(ref)))))["allowed"] is True
    after = webhook.metrics()
    assert (after[misses] - middle[misses], after[hits] - middle[hits]) == (0, 2)
    assert list((webhook.root / "cache" / "verify").glob("*.json"))  # trust's cache, on disk too


def test_dry_run_is_answered_alike_but_writes_nothing(webhook: Webhook, images: Images) -> None:
    ref, _ = images.fresh("dryrun/app")
    cache_files = set((webhook.root / "cache" / "verify").glob("*.json"))
    misses = lambda: webhook.metric("stockade_admission_verification_cache_total", result="miss")  # noqa: E731
    dry_before = _decisions(webhook, "allowed", "Pod", "true")
    start = misses()
    for _ in range(2):
        resp = answer(webhook.post(review(workload("Pod", compliant_pod_spec(ref)), dry_run=True)))
        assert resp["allowed"] is True
    assert misses() - start == 2  # the first dry run's verdict was not cached
    assert set((webhook.root / "cache" / "verify").glob("*.json")) == cache_files
    assert _decisions(webhook, "allowed", "Pod", "true") - dry_before == 2
    denied = answer(webhook.post(review(workload("Pod", compliant_pod_spec(images.unsigned)), dry_run=True)))
    assert denied["allowed"] is False and violations(denied)[0].startswith("containers[app]: [signatures]")


def test_metrics_count_decisions_by_result_and_kind_with_a_latency_histogram(webhook: Webhook) -> None:
    before = webhook.metrics()
    spec = compliant_pod_spec(UNREGISTERED)
    webhook.post(review(workload("Job", spec)))
    spec["hostPID"] = True
    webhook.post(review(workload("Job", spec)))
    after = webhook.metrics()
    key = lambda result: ("stockade_admission_decisions_total",  # noqa: E731
                          frozenset({("result", result), ("kind", "Job"), ("dry_run", "false")}))
    assert after[key("allowed")] - before[key("allowed")] == 1
    assert after[key("denied")] - before[key("denied")] == 1
    count = ("stockade_admission_review_duration_seconds_count", frozenset())
    inf = ("stockade_admission_review_duration_seconds_bucket", frozenset({("le", "+Inf")}))
    assert after[count] - before[count] == 2 and after[inf] == after[count]
    total = sum(v for (name, _), v in after.items() if name == "stockade_admission_decisions_total")
    assert total == after[count]
    assert after[("stockade_admission_policy_info",
                  frozenset({("policy", "webhook-test@3"), ("profile", "restricted:v2")}))] == 1


def test_decisions_are_logged_as_json_lines(webhook: Webhook) -> None:
    sent = review(workload("Pod", compliant_pod_spec(UNREGISTERED)))
    webhook.post(sent)
    uid = sent["request"]["uid"]
    entry = webhook.logged(lambda e: e.get("msg") == "decision" and e.get("uid") == uid)
    assert entry["result"] == "allowed" and entry["request"] == "CREATE Pod default/w"
