"""Manifests built to slip a container past ``restricted``/``baseline`` or a ``signatures`` entry.

Each case is a Pod (or a wrapper around one) that Kubernetes would run with more privilege than the
policy allows, written the way the API server or ``kubectl apply`` accepts it. ``policy check`` and
the admission webhook share this translation, so every case holds for both.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Callable

import pytest

from policies import Policy, PolicyLoadError, builtin_policy, evaluate, requirements_for
from policies.kubernetes import documents_from_manifests, documents_from_object
from tests.policies.conftest import compliant_workload, make_key, rules

PRIVILEGED_POD = """\
- apiVersion: v1
  kind: Pod
  metadata: {name: inner}
  spec:
    containers:
      - name: app
        image: busybox:1.36
        securityContext: {privileged: true}
"""


def _pod(container: dict[str, Any], volumes: list[Any] | None = None) -> dict[str, Any]:
    """A Pod whose pod-level settings satisfy ``restricted``, around one container."""
    base = {"name": "app", "image": "registry.example.com/org/app:1.0",
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]}}}
    spec: dict[str, Any] = {"securityContext": {"runAsNonRoot": True, "runAsUser": 1000,
                                                "seccompProfile": {"type": "RuntimeDefault"}},
                            "containers": [{**base, **container}]}
    if volumes is not None:
        spec["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}


def _violations(policy: Policy, obj: dict[str, Any]) -> set[str]:
    (loc,) = documents_from_object(obj, obj["kind"], "pod")
    return rules(evaluate(policy, loc.document))


def test_the_pod_used_below_is_allowed_as_written() -> None:
    assert _violations(builtin_policy("restricted"), _pod({})) == set()


# --- wrappers: every pod template in a file is checked --------------------------------------------

@pytest.mark.parametrize("text", [
    "apiVersion: v1\nkind: List\nitems:\n" + textwrap.indent(PRIVILEGED_POD, ""),
    # a List inside a List, as `kubectl get` of several lists prints it
    "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items:\n"
    + textwrap.indent(PRIVILEGED_POD, "  "),
])
def test_the_workloads_of_a_list_are_checked(text: str) -> None:
    """`kubectl apply -f` creates every item of a List; skipping it let a file with another compliant
    workload pass `policy check` with the List's privileged Pod in it."""
    docs, skipped = documents_from_manifests(compliant_workload("Pod") + "---\n" + text, "all.yaml")
    assert skipped == []
    inner = docs[1]
    assert inner.source.identity == "Pod/default/inner containers[app]"
    assert "runtime.privileged" in rules(evaluate(builtin_policy("baseline"), inner.document))
    lines = (compliant_workload("Pod") + "---\n" + text).splitlines()
    start = lines.index("kind: List")
    assert inner.source.line == next(n for n, line in enumerate(lines[start:], start + 1)
                                     if line.strip() == "- name: app")


def test_an_item_of_a_list_that_is_not_an_object_is_an_error_naming_it() -> None:
    with pytest.raises(PolicyLoadError, match=r"^l\.yaml:4:\d+: items\[1\]: .*mapping"):
        documents_from_manifests("kind: List\nitems:\n- {kind: Service}\n- 3\n", "l.yaml")


@pytest.mark.parametrize("text", [
    "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: rc}\nspec:\n  replicas: 1\n  template:\n"
    "    spec:\n      containers: [{name: app, image: 'busybox:1.36', securityContext: {privileged: true}}]\n",
    "apiVersion: v1\nkind: PodTemplate\nmetadata: {name: pt}\ntemplate:\n"
    "  spec:\n    containers: [{name: app, image: 'busybox:1.36', securityContext: {privileged: true}}]\n",
])
def test_replication_controllers_and_pod_templates_are_checked(text: str) -> None:
    """Both are core/v1 kinds whose pod template the cluster runs; they were skipped as 'no containers'."""
    (loc,), skipped = documents_from_manifests(text, "rc.yaml")
    assert skipped == [] and "runtime.privileged" in rules(evaluate(builtin_policy("baseline"), loc.document))


# --- volumes: the source Kubernetes uses is the one judged -----------------------------------------

def test_a_null_volume_source_does_not_hide_the_host_path_beside_it() -> None:
    """`emptyDir: null` is no source at all to the API server: the volume is the hostPath."""
    pod = _pod({"volumeMounts": [{"name": "v", "mountPath": "/host"}]},
               [{"name": "v", "emptyDir": None, "hostPath": {"path": "/"}}])
    assert "runtime.mounts" in _violations(builtin_policy("baseline"), pod)


@pytest.mark.parametrize("volumes, problem", [
    ([{"name": "v", "emptyDir": {}, "hostPath": {"path": "/"}}], "more than one source"),
    ([{"name": "v", "hostPath": {"path": "/"}}, {"name": "v", "emptyDir": {}}], "duplicate volume name"),
])
def test_an_ambiguous_volume_is_an_error_not_the_first_or_last_reading(volumes: list[Any], problem: str) -> None:
    """The API server refuses both; reading the harmless half would let a CI check pass a hostPath."""
    pod = _pod({"volumeMounts": [{"name": "v", "mountPath": "/host"}]}, volumes)
    with pytest.raises(PolicyLoadError, match=problem):
        documents_from_object(pod, "Pod", "pod")


# --- capabilities: names as Kubernetes and the runtimes read them ----------------------------------

@pytest.mark.parametrize("drop", [["CAP_ALL"], ["cap_all"], ["all"], [" ALL"], ["All"]])
def test_only_the_exact_name_all_drops_every_capability(drop: list[str]) -> None:
    """PSS `restricted` accepts `drop: [ALL]` exactly. containerd reads `CAP_ALL` as the capability
    `CAP_CAP_ALL` and drops nothing; Stockade read it as ALL and admitted a container keeping the
    runtime's default capabilities (NET_RAW among them)."""
    pod = _pod({"securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": drop}}})
    assert "runtime.capabilities.drop" in _violations(builtin_policy("restricted"), pod)


def test_an_added_capability_spelt_otherwise_is_still_refused() -> None:
    pod = _pod({"securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"], "add": ["cap_sys_admin"]}}})
    assert "runtime.capabilities.add" in _violations(builtin_policy("baseline"), pod)


# --- signatures: the same registry written with its default port ----------------------------------

@pytest.fixture
def signed_policy(tmp_path: Path, write_policy: Callable[[str], Path]) -> Policy:
    from policies import load_policy

    make_key(tmp_path, "cosign.pub")
    return load_policy(str(write_policy("""
        apiVersion: stockade.dev/v1
        kind: Policy
        metadata: {name: signed}
        spec:
          profile: privileged
          signatures:
            - images: ["registry.example.com/org/**"]
              keys: [{path: cosign.pub}]
    """)))


@pytest.mark.parametrize("reference", ["registry.example.com:443/org/app:1.0",
                                       "REGISTRY.example.com:443/org/app@sha256:" + "a" * 64])
def test_the_default_https_port_does_not_escape_a_signature_entry(signed_policy: Policy, reference: str) -> None:
    """`registry.example.com:443` is the same server the runtime pulls `registry.example.com` from:
    the entry must apply (and, unsigned, deny) instead of matching nothing."""
    assert len(requirements_for(signed_policy, reference)) == 1
    decision = evaluate(signed_policy, {"image": {"reference": reference, "digest": "sha256:" + "a" * 64},
                                        "container": {}})
    assert "signatures" in rules(decision)


def test_another_port_is_another_registry(signed_policy: Policy) -> None:
    assert requirements_for(signed_policy, "registry.example.com:5000/org/app:1.0") == []


@pytest.mark.parametrize("text", [
    "kind: Pod\nspec: " + "[" * 990 + "]" * 990 + "\n",
    "{'kind': 'List', 'items': [" * 330 + "{}" + "]}" * 330 + "\n",
])
def test_a_document_nested_as_deep_as_yaml_allows_is_one_error_not_a_crash(text: str) -> None:
    """libyaml accepts 1000 levels; building them was a RecursionError (`policy check` exit 1,
    'internal error') instead of an error naming the file (exit 2)."""
    with pytest.raises(PolicyLoadError, match=r"^deep\.yaml: nested too deeply$"):
        documents_from_manifests(text, "deep.yaml")
