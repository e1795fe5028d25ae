"""The webhook's parts in-process: the translation it shares with ``policy check``, review parsing and
answers, the metrics text format, the verdict -> input-document mapping, and the caches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from policies import builtin_policy, evaluate
from policies.kubernetes import documents_from_manifests, documents_from_object
from stockade.admission.imagetrust import MemoryFrontedCache, ReadOnlyCache
from stockade.admission.metrics import Counter, Gauge, Histogram, MetricsRegistry
from stockade.admission.review import ReviewError, parse_review, review_response, short_warning
from stockade.verification import signature_facts, tuf_fact
from tests.admission.webhook import compliant_pod_spec, review, workload
from trust.verdict import SignatureResult, TargetResult, Verdict

DIGEST = "sha256:" + "ab" * 32


# --- translation ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"])
def test_an_object_translates_exactly_as_its_manifest_does(kind: str) -> None:
    spec = compliant_pod_spec("registry.example.com/org/app:1")
    spec["initContainers"] = [{"name": "init", "image": "busybox", "securityContext": {"privileged": True}}]
    obj = workload(kind, spec)
    from_object = documents_from_object(obj, kind, "review")
    from_yaml, _ = documents_from_manifests(yaml.safe_dump(obj), "review")
    assert [d.document for d in from_object] == [d.document for d in from_yaml]
    assert [d.source.identity for d in from_object] == [d.source.identity for d in from_yaml]
    assert [d.source.line for d in from_object] == [None, None]
    policy = builtin_policy("restricted")
    assert [evaluate(policy, d.document).allowed for d in from_object] == [False, True]
    priv = evaluate(policy, from_object[0].document).violations
    assert {from_object[0].source.locate(r.finding.path)[1] for r in priv} >= {
        "spec.initContainers[0].securityContext.privileged" if kind == "Pod"
        else ("spec.jobTemplate.spec.template.spec" if kind == "CronJob" else "spec.template.spec")
        + ".initContainers[0].securityContext.privileged"}


def test_an_object_without_a_pod_template_is_refused_naming_the_field() -> None:
    from policies import PolicyLoadError

    with pytest.raises(PolicyLoadError, match=r"^Deployment d: spec\.template\.spec: Deployment has no pod spec"):
        documents_from_object({"kind": "Deployment", "spec": {"template": {}}}, "Deployment", "Deployment d")
    with pytest.raises(ValueError, match="kind 'Service' has no pod template"):
        documents_from_object({"kind": "Service"}, "Service", "x")


def test_a_malformed_object_is_a_well_formed_denial_naming_the_field(tmp_path: Path) -> None:
    """The webhook reads objects with the translation ``policy check`` uses, so every wrong-typed field
    raises the same PolicyLoadError there; the service must answer it as a 400 denial naming the field
    (never a 500 "internal error"). Every variant of tests/policies/malformed.py, in-process."""
    from engine.config import Paths, load_config
    from stockade.admission import build_service
    from tests.policies.malformed import ACCEPTED, RICH_POD, names_field, variants

    service = build_service(builtin_policy("privileged"), load_config(), Paths.default(root=tmp_path / "root"))
    denied = 0
    try:
        for field, value, pod in variants():
            if field == "kind":
                continue  # the review's request.kind is what the webhook goes by
            sent = review(RICH_POD)
            sent["request"]["object"] = pod
            status, body = service.validate(json.dumps(sent).encode())
            resp = json.loads(body)["response"]
            assert status == 200 and resp["uid"] == sent["request"]["uid"], (field, value)
            if (field, type(value)) in ACCEPTED:
                continue
            assert resp["allowed"] is False and resp["status"]["code"] == 400, (field, value, resp)
            message = resp["status"]["message"]
            assert message.startswith("stockade: cannot read Pod default/rich: "), message
            named = message.removeprefix("stockade: cannot read Pod default/rich: ").partition(":")[0]
            assert names_field(named, field), (field, value, message)
            denied += 1
    finally:
        service.close()
    assert denied > 250


# --- reviews ----------------------------------------------------------------------------------------------

def test_a_review_is_read_and_answered() -> None:
    sent = review(workload("Pod", compliant_pod_spec("busybox")), dry_run=True, namespace="shop")
    req = parse_review(json.dumps(sent).encode())
    assert (req.uid, req.kind, req.operation, req.namespace, req.dry_run, req.username) == (
        sent["request"]["uid"], "Pod", "CREATE", "shop", True, "alice")
    doc = json.loads(review_response(req.uid, allowed=False, code=403, message="no", warnings=["w" * 300],
                                     audit_annotations={"policy": "p"}))
    assert doc == {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {
        "uid": req.uid, "allowed": False, "status": {"code": 403, "reason": "Forbidden", "message": "no"},
        "warnings": ["w" * 119 + "…"], "auditAnnotations": {"policy": "p"}}}
    assert json.loads(review_response("u", allowed=True))["response"] == {"uid": "u", "allowed": True}


@pytest.mark.parametrize("body, uid", [
    (b"", None),
    (b"null", None),
    (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": []}).encode(), None),
    (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                 "request": {"uid": "a b"}}).encode(), None),
    (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                 "request": {"uid": "u1", "kind": {"kind": ""}}}).encode(), "u1"),
])
def test_malformed_reviews_raise_with_a_uid_only_once_it_is_known(body: bytes, uid: str | None) -> None:
    with pytest.raises(ReviewError) as err:
        parse_review(body)
    assert err.value.status == 400 and err.value.uid == uid


def test_warnings_are_one_line_of_at_most_120_characters() -> None:
    assert short_warning("a\nb   c") == "a b c"
    assert len(short_warning("x" * 500)) == 120


# --- metrics ----------------------------------------------------------------------------------------------

def test_the_exposition_format() -> None:
    registry = MetricsRegistry()
    c = registry.add(Counter("t_total", "Things.", ("result",), initial=[{"result": "ok"}]))
    c.inc(result='we"ird\\\n')
    g = registry.add(Gauge("t_now", "Now."))
    g.set(2.5)
    h = registry.add(Histogram("t_seconds", "Time.", buckets=(0.1, 1.0)))
    for value in (0.05, 0.5, 5.0):
        h.observe(value)
    assert registry.render().decode() == "\n".join([
        "# HELP t_total Things.", "# TYPE t_total counter",
        't_total{result="ok"} 0', 't_total{result="we\\"ird\\\\\\n"} 1',
        "# HELP t_now Now.", "# TYPE t_now gauge", "t_now 2.5",
        "# HELP t_seconds Time.", "# TYPE t_seconds histogram",
        't_seconds_bucket{le="0.1"} 1', 't_seconds_bucket{le="1"} 2', 't_seconds_bucket{le="+Inf"} 3',
        "t_seconds_sum 5.55", "t_seconds_count 3"]) + "\n"
    with pytest.raises(ValueError):
        c.inc(kind="x")


# --- verdicts as facts, caches ------------------------------------------------------------------------------

def _verdict(ok: bool = True) -> Verdict:
    good = SignatureResult("cosign-keyed", "legacy-tag", "r/app:sha256-ab.sig", {"key_id": "k1"},
                           log={"index": 7, "integrated_time": 1700000000})
    keyless = SignatureResult("bundle-keyless", "referrers-tag", "r/app@sha256:cd",
                              {"identity": "me@example.com", "issuer": "https://issuer"})
    bad = SignatureResult("cosign-keyed", "legacy-tag", "r/app:sha256-ab.sig").fail("signed by another key")
    target = TargetResult(DIGEST, "application/vnd.oci.image.manifest.v1+json", "manifest",
                          [good, keyless, bad] if ok else [bad])
    return Verdict("r/app:1", DIGEST, [target], expires=None)


def test_a_verdict_becomes_the_input_documents_facts() -> None:
    facts = signature_facts(_verdict())
    assert facts == [
        {"kind": "key", "keyId": "k1", "tlog": {"logIndex": 7, "integratedTime": 1700000000}, "digest": DIGEST,
         "source": "legacy-tag"},
        {"kind": "keyless", "subject": "me@example.com", "issuer": "https://issuer", "tlog": False, "digest": DIGEST,
         "source": "referrers-tag"}]
    verdict = _verdict()
    verdict.tag_authority = {"digest": DIGEST, "url": "https://tuf.example"}
    assert tuf_fact(verdict) == {"verified": True, "url": "https://tuf.example", "digest": DIGEST, "error": None,
                                 "reason": None}
    verdict.tag_authority, verdict.tag_ok = {"error": "timestamp expired", "reason": "expired"}, False
    assert tuf_fact(verdict) == {"verified": False, "url": None, "digest": None, "error": "timestamp expired",
                                 "reason": "expired"}


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_memory_cache_fronts_the_disk_cache_until_expiry_and_a_read_only_view_never_writes(tmp_path: Path) -> None:
    clock = _Clock()
    cache = MemoryFrontedCache(tmp_path / "verify", max_entries=2, clock=clock)
    parts: dict[str, Any] = {"requirements": {"keys": ["k1"]}}
    verdict = _verdict()
    verdict.expires = clock.now + 60
    ReadOnlyCache(cache).put(DIGEST, parts, verdict)
    assert cache.get(DIGEST, parts) is None and not (tmp_path / "verify").exists()
    cache.put(DIGEST, parts, verdict)
    (stored,) = (tmp_path / "verify").iterdir()
    stored.unlink()  # a hit now comes from memory alone
    hit = cache.get(DIGEST, parts)
    assert hit is not None and hit.cached and hit.ok and signature_facts(hit) == signature_facts(verdict)
    assert ReadOnlyCache(cache).get(DIGEST, parts) is not None
    clock.now += 61
    assert cache.get(DIGEST, parts) is None
    negative = _verdict(ok=False)
    negative.expires = clock.now + 60
    cache.put(DIGEST, parts, negative)
    assert cache.get(DIGEST, parts) is None  # only positive verdicts are kept
    for n in range(3):  # bounded: the oldest entry makes room
        verdict.expires = clock.now + 60
        cache.put("sha256:" + f"{n:064x}", parts, verdict)
    for path in (tmp_path / "verify").iterdir():
        path.unlink()
    assert cache.get("sha256:" + f"{0:064x}", parts) is None
    assert cache.get("sha256:" + f"{2:064x}", parts) is not None
