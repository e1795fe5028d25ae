"""Wrong-typed variants of a Pod that uses every field the Kubernetes translation reads.

``policy check`` and the admission webhook share ``policies.kubernetes``; both must answer a malformed
object with one error naming the field (a ``PolicyLoadError``), never an AttributeError or TypeError.
This generates the cases: each path of ``RICH_POD`` replaced by a value of each other JSON type.
"""

from __future__ import annotations

import copy
from typing import Any, Iterator

from policies.yamlsource import format_path

RICH_POD: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "rich", "namespace": "prod",
        "annotations": {"container.apparmor.security.beta.kubernetes.io/app": "runtime/default"}},
    "spec": {
        "hostNetwork": False, "hostPID": False, "hostIPC": False, "hostUsers": False,
        "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "runAsNonRoot": True,
                            "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"},
                            "sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}],
                            "appArmorProfile": {"type": "Localhost", "localhostProfile": "k8s-app"},
                            "seLinuxOptions": {"type": "container_t", "level": "s0:c1,c2"},
                            "windowsOptions": {"hostProcess": False}},
        "initContainers": [{"name": "init", "image": "busybox:1.36"}],
        "containers": [{
            "name": "app", "image": "registry.example.com/app:1",
            "securityContext": {"runAsUser": 1001, "runAsGroup": 1001, "runAsNonRoot": True, "privileged": False,
                                "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
                                "seccompProfile": {"type": "RuntimeDefault"}, "procMount": "Default",
                                "appArmorProfile": {"type": "RuntimeDefault"},
                                "seLinuxOptions": {"user": "system_u", "role": "system_r"},
                                "windowsOptions": {"hostProcess": False}},
            "ports": [{"containerPort": 8080, "hostPort": 0, "protocol": "TCP"}],
            "resources": {"limits": {"memory": "128Mi", "cpu": "500m"}},
            "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True},
                             {"name": "scratch", "mountPath": "/tmp"}]}],
        "ephemeralContainers": [{"name": "debug", "image": "busybox:1.36"}],
        "volumes": [{"name": "data", "hostPath": {"path": "/srv/data"}},
                    {"name": "scratch", "emptyDir": {"medium": "Memory"}}]}}

WRONG: tuple[Any, ...] = ("text", ["x"], {"k": "v"}, 7, True, 1.5)
# Wrong types that are still valid: quantities may be numbers; apiVersion is never read.
ACCEPTED = {("spec.containers[0].resources.limits.memory", int), ("spec.containers[0].resources.limits.memory", float),
            ("spec.containers[0].resources.limits.cpu", int), ("spec.containers[0].resources.limits.cpu", float),
            *(("apiVersion", t) for t in (list, dict, int, bool, float))}


def _paths(value: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield (*prefix, key)
        yield from _paths(child, (*prefix, key))


def _replaced(obj: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    parent: Any = out
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return out


def variants() -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """(field path as errors spell it, the wrong value, the Pod with it)."""
    for path in _paths(RICH_POD):
        original: Any = RICH_POD
        for key in path:
            original = original[key]
        for value in WRONG:
            if type(value) is not type(original):
                yield format_path(path), value, _replaced(RICH_POD, path, value)


def names_field(error_field: str, mutated: str) -> bool:
    """Whether an error's field is the mutated one, or an ancestor or descendant of it."""
    return mutated.startswith(error_field) or error_field.startswith(mutated)
