"""Kubernetes manifests of every workload kind -> input documents, with securityContext merged."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from policies import PolicyLoadError, builtin_policy, evaluate
from policies.kubernetes import documents_from_manifests, memory_bytes
from tests.policies.conftest import rules

POD_SPEC = """
securityContext:
  runAsNonRoot: true
  runAsUser: 1000
  seccompProfile: {type: RuntimeDefault}
containers:
  - name: app
    image: registry.example.com/org/app:1.0
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {drop: [ALL]}
"""


def wrap(kind: str) -> str:
    spec = textwrap.indent(POD_SPEC.strip(), " " * {"Pod": 2, "CronJob": 10}.get(kind, 6))
    if kind == "Pod":
        return f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n{spec}\n"
    if kind == "CronJob":
        return (f"apiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: c}}\nspec:\n  schedule: '* * * * *'\n"
                f"  jobTemplate:\n    spec:\n      template:\n        spec:\n{spec}\n")
    return f"apiVersion: apps/v1\nkind: {kind}\nmetadata: {{name: w, namespace: prod}}\nspec:\n  template:\n    spec:\n{spec}\n"


@pytest.mark.parametrize("kind", ["Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"])
def test_each_workload_kind_yields_its_container(kind: str) -> None:
    (loc,), skipped = documents_from_manifests(wrap(kind), f"{kind}.yaml")
    assert skipped == [] and loc.document["context"]["object"]["kind"] == kind
    c = loc.document["container"]
    assert c["user"] == {"uid": 1000, "gid": None} and c["seccomp"] == {"type": "RuntimeDefault"}
    assert evaluate(builtin_policy("restricted"), loc.document).allowed


def test_multi_document_files_with_other_kinds_and_empty_documents() -> None:
    text = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\n---\n" + wrap("Pod") + "---\n" + wrap("Job")
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
