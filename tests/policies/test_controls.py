"""Each built-in control passes a compliant input and fails a non-compliant one, with its finding."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from policies import InputDocumentError, builtin_policy, evaluate
from tests.policies.conftest import document, rules

RUNTIME_SPEC = """
profile: privileged
runtime:
  runAsNonRoot: true
  minimumUid: 1000
  readOnlyRootFilesystem: true
  privileged: false
  allowPrivilegeEscalation: false
  hostNamespaces: {network: false, pid: false, ipc: false, uts: false, user: false, cgroup: false}
  capabilities: {drop: [ALL], allowAdd: [NET_BIND_SERVICE]}
  seccomp:
    allowed: [RuntimeDefault, Localhost]
    profiles: [{path: /etc/stockade/seccomp/app.json, sha256: %s}]
  mounts:
    tmpfs: [/tmp, /run/**]
    bind: [{sourcePrefix: /srv/data, readOnly: true}, {sourcePrefix: /srv/cache}]
    volumes: [local]
  resources:
    required: [memory, pids]
    max: {memory: 1Gi, cpus: 2, pids: 4096}
images:
  allowedRegistries: [registry.example.com, "ghcr.io"]
  allowedRepositories: ["registry.example.com/org/**", "ghcr.io/org/*"]
  requireDigest: false
  forbidLatest: true
""" % ("b" * 64)

NS_PRIVATE = {"network": "private", "pid": "private", "ipc": "private", "uts": "private", "user": "private",
              "cgroup": "private"}

# (rule, document changes that pass, document changes that fail, path of the failure)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("runtime.runAsNonRoot", {"user": {"uid": 1000}}, {"user": {"uid": 0}}, "container.user"),
    ("runtime.runAsNonRoot", {"user": None, "runAsNonRoot": True, "_config_user": "app", "_min": False},
     {"user": {"name": "app"}, "_min": False}, "container.runAsNonRoot"),
    ("runtime.minimumUid", {"user": {"uid": 1000}}, {"user": {"uid": 999}}, "container.user.uid"),
    ("runtime.readOnlyRootFilesystem", {}, {"readOnlyRootFilesystem": None}, "container.readOnlyRootFilesystem"),
    ("runtime.privileged", {"privileged": None}, {"privileged": True}, "container.privileged"),
    ("runtime.allowPrivilegeEscalation", {}, {"noNewPrivileges": False}, "container.noNewPrivileges"),
    ("runtime.hostNamespaces", {}, {"namespaces": {**NS_PRIVATE, "pid": "host"}}, "container.namespaces.pid"),
    ("runtime.hostNamespaces", {"namespaces": {**NS_PRIVATE, "network": "container:abc"}},
     {"namespaces": {**NS_PRIVATE, "cgroup": "host"}}, "container.namespaces.cgroup"),
    ("runtime.capabilities.drop", {"capabilities": {"drop": ["all"]}}, {"capabilities": {"drop": ["NET_RAW"]}},
     "container.capabilities.drop"),
    ("runtime.capabilities.add", {"capabilities": {"drop": ["ALL"], "add": ["cap_net_bind_service"]}},
     {"capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}}, "container.capabilities.add"),
    ("runtime.seccomp", {"seccomp": {"type": "RuntimeDefault"}}, {"seccomp": {"type": "Unconfined"}},
     "container.seccomp.type"),
    ("runtime.seccomp", {"seccomp": None, "_skip": True}, {"seccomp": None}, "container.seccomp.type"),
    ("runtime.seccomp", {"seccomp": {"type": "Localhost", "profile": "/etc/stockade/seccomp/app.json",
                                     "sha256": "b" * 64}},
     {"seccomp": {"type": "Localhost", "profile": "/etc/stockade/seccomp/app.json", "sha256": "c" * 64}},
     "container.seccomp.profile"),
    ("runtime.mounts", {"mounts": [{"type": "tmpfs", "destination": "/run/app"}]},
     {"mounts": [{"type": "tmpfs", "destination": "/var/lib"}]}, "container.mounts[0].destination"),
    ("runtime.mounts", {"mounts": [{"type": "bind", "source": "/srv/data/x", "destination": "/d", "readOnly": True}]},
     {"mounts": [{"type": "bind", "source": "/srv/data/x", "destination": "/d"}]}, "container.mounts[0].readOnly"),
    ("runtime.mounts", {"mounts": [{"type": "bind", "source": "/srv/cache", "destination": "/c"}]},
     {"mounts": [{"type": "bind", "source": "/srv/database", "destination": "/d"}]}, "container.mounts[0].source"),
    ("runtime.mounts", {"mounts": [{"type": "volume", "destination": "/v", "kind": "local"}]},
     {"mounts": [{"type": "volume", "destination": "/v", "kind": "nfs"}]}, "container.mounts[0].kind"),
    ("runtime.resources", {}, {"resources": {"memory": None, "pids": 10}}, "container.resources.memory"),
    ("runtime.resources", {"resources": {"memory": 2**30, "cpus": 2, "pids": 1}},
     {"resources": {"memory": 2**30, "cpus": 4, "pids": 1}}, "container.resources.cpus"),
    ("images.allowedRegistries", {"_ref": "ghcr.io/org/app:1"}, {"_ref": "quay.io/org/app:1"}, "image.registry"),
    ("images.allowedRepositories", {"_ref": "ghcr.io/org/app:1"}, {"_ref": "ghcr.io/org/team/app:1"},
     "image.repository"),
    ("images.forbidLatest", {"_ref": "registry.example.com/org/app@sha256:" + "d" * 64},
     {"_ref": "registry.example.com/org/app"}, "image.reference"),
]


def _doc(changes: dict[str, Any]) -> dict[str, Any]:
    changes = dict(changes)
    ref = changes.pop("_ref", "registry.example.com/org/app:1.0")
    config_user = changes.pop("_config_user", "1000")
    changes.pop("_min", None)
    changes.pop("_skip", None)
    doc = document(ref, **{"namespaces": dict(NS_PRIVATE), **changes})
    doc["image"]["config"]["User"] = config_user
    return doc


@pytest.fixture(scope="module")
def runtime_policy(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from policies import load_policy

    path = tmp_path_factory.mktemp("p") / "p.yaml"
    path.write_text("apiVersion: stockade.dev/v1\nkind: Policy\nmetadata: {name: all}\nspec:\n"
                    + "\n".join("  " + line for line in RUNTIME_SPEC.strip().splitlines()) + "\n")
    return load_policy(str(path))


def test_the_baseline_document_passes_every_control(runtime_policy: Any) -> None:
    decision = evaluate(runtime_policy, _doc({}))
    assert decision.allowed and not decision.results and decision.exit_code == 0


@pytest.mark.parametrize("rule, good, bad, path", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_control_passes_and_fails(runtime_policy: Any, rule: str, good: dict[str, Any], bad: dict[str, Any],
                                  path: str) -> None:
    if not good.get("_skip"):
        passing = evaluate(runtime_policy, _doc(good))
        ignored = {"runtime.minimumUid"} if good.get("_min") is False else set()
        assert rules(passing) - ignored == set(), passing.summary()
    failing = evaluate(runtime_policy, _doc(bad))
    assert not failing.allowed and failing.exit_code == 1
    hits = [r.finding for r in failing.violations if r.finding.rule == rule]
    assert hits and hits[0].path == path and hits[0].fix, failing.summary()


def test_require_digest(policy_from: Callable[[str], Any]) -> None:
    policy = policy_from("profile: privileged\nimages: {requireDigest: true}\n")
    assert rules(evaluate(policy, document("busybox:1.36"))) == {"images.requireDigest"}
    assert evaluate(policy, document("busybox@sha256:" + "e" * 64)).allowed


def test_bind_source_cannot_escape_its_prefix_with_dotdot(runtime_policy: Any) -> None:
    doc = _doc({"mounts": [{"type": "bind", "source": "/srv/cache/../../etc", "destination": "/e"}]})
    (finding,) = [r.finding for r in evaluate(runtime_policy, doc).violations]
    assert finding.path == "container.mounts[0].source" and finding.found == "/srv/cache/../../etc"


def test_relative_bind_source_is_refused(runtime_policy: Any) -> None:
    doc = _doc({"mounts": [{"type": "bind", "source": "srv/cache", "destination": "/e"}]})
    assert rules(evaluate(runtime_policy, doc)) == {"runtime.mounts"}


def test_every_violation_is_listed_at_once() -> None:
    doc = {"image": {"reference": "busybox", "config": {"User": ""}},
           "container": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]},
                         "seccomp": {"type": "Unconfined"}, "namespaces": {"pid": "host", "network": "host"},
                         "mounts": [{"type": "bind", "source": "/", "destination": "/host"}]}}
    decision = evaluate(builtin_policy("restricted"), doc)
    assert rules(decision) == {"runtime.runAsNonRoot", "runtime.readOnlyRootFilesystem", "runtime.privileged",
                               "runtime.allowPrivilegeEscalation", "runtime.hostNamespaces",
                               "runtime.capabilities.drop", "runtime.capabilities.add", "runtime.seccomp",
                               "runtime.mounts"}
    assert len([r for r in decision.violations if r.finding.rule == "runtime.hostNamespaces"]) == 2
    assert decision.as_dict()["decision"] == "deny"


def test_baseline_allows_docker_defaults_but_not_net_raw_or_unconfined() -> None:
    baseline = builtin_policy("baseline")
    plain = {"image": {"reference": "busybox"}, "container": {"capabilities": {"add": ["CHOWN"]}}}
    assert evaluate(baseline, plain).allowed
    bad = {"image": {"reference": "busybox"},
           "container": {"capabilities": {"add": ["NET_RAW"]}, "seccomp": {"type": "Unconfined"}}}
    assert rules(evaluate(baseline, bad)) == {"runtime.capabilities.add", "runtime.seccomp"}


@pytest.mark.parametrize("doc, path", [
    ({"container": {}}, "image.reference"),
    ({"image": {"reference": "UPPER/case"}, "container": {}}, "image.reference"),
    ({"image": {"reference": "busybox"}, "container": {"privileged": "yes"}}, "container.privileged"),
    ({"image": {"reference": "busybox"}, "container": {"capabilities": {"add": "SYS_ADMIN"}}},
     "container.capabilities.add"),
    ({"image": {"reference": "busybox"}, "container": {"namespaces": {"net": "host"}}}, "container.namespaces.net"),
    ({"image": {"reference": "busybox"}, "container": {"mounts": [{"type": "overlay", "destination": "/"}]}},
     "container.mounts[0].type"),
    ({"image": {"reference": "busybox"}, "container": {"user": {"uid": -1}}}, "container.user.uid"),
    ({"image": {"reference": "busybox", "signatures": [{"kind": "magic"}]}, "container": {}},
     "image.signatures[0].kind"),
])
def test_malformed_input_documents_are_refused_with_their_path(doc: dict[str, Any], path: str) -> None:
    with pytest.raises(InputDocumentError) as info:
        evaluate(builtin_policy("restricted"), doc)
    assert info.value.path == path and info.value.exit_code == 2
