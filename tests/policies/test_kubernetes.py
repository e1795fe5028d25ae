"""Kubernetes manifests of every workload kind -> input documents, with securityContext merged."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from policies import PolicyLoadError, builtin_policy, evaluate
from policies.kubernetes import documents_from_manifests, memory_bytes
from tests.policies.conftest import compliant_workload, rules
from tests.policies.malformed import ACCEPTED, names_field, variants


@pytest.mark.parametrize("kind", ["Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"])
def test_each_workload_kind_yields_its_container(kind: str) -> None:
    (loc,), skipped = documents_from_manifests(compliant_workload(kind), f"{kind}.yaml")
    assert skipped == [] and loc.document["context"]["object"]["kind"] == kind
    c = loc.document["container"]
    assert c["user"] == {"uid": 1000, "gid": None} and c["seccomp"] == {"type": "RuntimeDefault"}
    assert evaluate(builtin_policy("restricted"), loc.document).allowed


def test_multi_document_files_with_other_kinds_and_empty_documents() -> None:
    text = ("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\n---\n" + compliant_workload("Pod") + "---\n"
            + compliant_workload("Job"))
    docs, skipped = documents_from_manifests(text, "all.yaml")
    assert [d.document["context"]["object"]["kind"] for d in docs] == ["Pod", "Job"]
    assert skipped == ["document 1: kind Service has no containers"]
    lines = text.splitlines()
    job_start = lines.index("kind: Job")
    assert docs[1].source.line == lines.index("        - name: app", job_start) + 1


MERGE = """
apiVersion: v1
kind: Pod
metadata: {name: merge}
spec:
  hostPID: true
  securityContext:
    runAsUser: 1000
    runAsNonRoot: true
    seccompProfile: {type: RuntimeDefault}
  initContainers:
    - name: init
      image: busybox:1.36
      securityContext:
        runAsUser: 0
        seccompProfile: {type: Unconfined}
  containers:
    - name: app
      image: busybox:1.36
      resources: {limits: {memory: 1G, cpu: 500m}}
      volumeMounts:
        - {name: cache, mountPath: /cache}
        - {name: host, mountPath: /host, readOnly: true}
        - {name: mem, mountPath: /tmp}
  ephemeralContainers:
    - name: debug
      image: busybox:1.36
  volumes:
    - {name: cache, emptyDir: {}}
    - {name: host, hostPath: {path: /var/run}}
    - {name: mem, emptyDir: {medium: Memory}}
"""


def test_pod_and_container_security_contexts_merge_as_the_kubelet_does() -> None:
    docs, _ = documents_from_manifests(MERGE, "merge.yaml")
    init, app, debug = (d.document["container"] for d in docs)
    assert [d.document["context"]["containerType"] for d in docs] == ["initContainers", "containers",
                                                                      "ephemeralContainers"]
    assert init["user"]["uid"] == 0 and init["seccomp"] == {"type": "Unconfined"}  # container wins
    assert app["user"]["uid"] == 1000 and app["seccomp"] == {"type": "RuntimeDefault"}  # inherited from the pod
    assert app["runAsNonRoot"] is True and debug["user"]["uid"] == 1000
    assert app["noNewPrivileges"] is False and app["readOnlyRootFilesystem"] is False  # Kubernetes' defaults
    assert app["namespaces"]["pid"] == "host" and app["namespaces"]["user"] == "host"
    assert app["resources"] == {"memory": 10**9, "cpus": 0.5, "pids": None}
    assert app["mounts"] == [
        {"destination": "/cache", "readOnly": False, "kind": "emptyDir", "type": "volume"},
        {"destination": "/host", "readOnly": True, "kind": "hostPath", "type": "bind", "source": "/var/run"},
        {"destination": "/tmp", "readOnly": False, "kind": "emptyDir", "type": "tmpfs"}]


def test_findings_point_at_the_manifest_line_of_their_field() -> None:
    docs, _ = documents_from_manifests(MERGE, "merge.yaml")
    init, app = docs[0], docs[1]
    decision = evaluate(builtin_policy("restricted"), init.document)
    lines = {r.finding.rule: init.source.locate(r.finding.path) for r in decision.violations}
    text = MERGE.splitlines()
    assert lines["runtime.runAsNonRoot"] == (text.index("        runAsUser: 0") + 1,
                                             "spec.initContainers[0].securityContext.runAsUser")
    assert lines["runtime.hostNamespaces"] == (text.index("  hostPID: true") + 1, "spec.hostPID")
    mount = [r for r in evaluate(builtin_policy("restricted"), app.document).violations
             if r.finding.rule == "runtime.mounts"][0]
    assert app.source.locate(mount.finding.path)[0] == text.index(
        "        - {name: host, mountPath: /host, readOnly: true}") + 1


@pytest.mark.parametrize("text, problem", [
    ("kind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n    - name: a\n", "a container needs an image"),
    ("kind: Deployment\nmetadata: {name: x}\nspec: {}\n", "has no pod spec"),
    ("kind: Pod\nspec: {containers: [1]}\n", "a container must be a mapping"),
])
def test_malformed_workloads_name_file_and_line(text: str, problem: str) -> None:
    with pytest.raises(PolicyLoadError) as info:
        documents_from_manifests(text, "bad.yaml")
    assert problem in str(info.value) and info.value.line is not None


@pytest.mark.parametrize("value, expected", [("128Mi", 128 * 2**20), ("1G", 10**9), ("1e3", 1000), (512, 512),
                                             ("1.5Gi", int(1.5 * 2**30)), ("lots", None)])
def test_memory_quantities(value: Any, expected: int | None) -> None:
    assert memory_bytes(value) == expected


def test_restricted_flags_an_unhardened_deployment_completely() -> None:
    text = "kind: Deployment\nmetadata: {name: w}\nspec:\n  template:\n    spec:\n      containers:\n" \
           "        - {name: a, image: nginx}\n"
    (loc,), _ = documents_from_manifests(text, "d.yaml")
    assert rules(evaluate(builtin_policy("restricted"), loc.document)) == {
        "runtime.runAsNonRoot", "runtime.readOnlyRootFilesystem", "runtime.allowPrivilegeEscalation",
        "runtime.capabilities.drop", "runtime.seccomp"}


def test_every_wrong_typed_field_is_one_error_naming_file_line_and_field() -> None:
    """Fuzz-style: each field of a Pod using everything the translation reads, replaced by each other
    JSON type. Either the value is valid (a number as a quantity) or the answer is a PolicyLoadError
    naming bad.yaml, a line and that field; never an AttributeError/TypeError, never silently unset."""
    refused = 0
    for field, value, pod in variants():
        try:
            documents_from_manifests(yaml.safe_dump(pod), "bad.yaml")
        except PolicyLoadError as exc:
            assert exc.file == "bad.yaml" and exc.line is not None, (field, value, str(exc))
            assert names_field(exc.field, field), (field, value, str(exc))
            refused += 1
        else:
            assert (field, type(value)) in ACCEPTED, f"{field}: {value!r} was accepted"
    assert refused > 300


@pytest.mark.parametrize("change, field, problem", [
    ("resources: {limits: [1]}", "spec.containers[0].resources.limits", "expected a mapping, found a list"),
    ("resources: [1]", "spec.containers[0].resources", "expected a mapping, found a list"),
    ("securityContext: {privileged: 'true'}", "spec.containers[0].securityContext.privileged",
     "expected true or false, found string 'true'"),
    ("securityContext: {capabilities: [SYS_ADMIN]}", "spec.containers[0].securityContext.capabilities",
     "expected a mapping, found a list"),
    ("securityContext: {capabilities: {add: SYS_ADMIN}}", "spec.containers[0].securityContext.capabilities.add",
     "expected a list, found string 'SYS_ADMIN'"),
    ("volumeMounts: /data", "spec.containers[0].volumeMounts", "expected a list, found string '/data'"),
    ("resources: {limits: {memory: lots}}", "spec.containers[0].resources.limits.memory",
     "'lots' is not a Kubernetes quantity (use e.g. 512Mi or 1G)"),
])
def test_a_wrong_typed_field_names_its_line(change: str, field: str, problem: str) -> None:
    text = f"kind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n    - image: busybox\n      {change}\n"
    with pytest.raises(PolicyLoadError) as info:
        documents_from_manifests(text, "bad.yaml")
    assert str(info.value) == f"bad.yaml:{info.value.line}:{info.value.column}: {field}: {problem}"
    assert info.value.line == 6


@pytest.mark.parametrize("spec", ["  containers: null\n", "  containers: []\n", "  initContainers: [{image: a}]\n"])
def test_a_pod_without_containers_is_refused(spec: str) -> None:
    with pytest.raises(PolicyLoadError, match=r"^bad\.yaml:\d+:\d+: spec\.containers: a pod spec needs at least one"):
        documents_from_manifests(f"kind: Pod\nmetadata: {{name: p}}\nspec:\n{spec}", "bad.yaml")
