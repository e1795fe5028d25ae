"""Pods that Pod Security admission's "baseline" refuses for a Kubernetes-only setting, and their
compliant twins: shared by the ``policy check`` tests and the webhook's.

Each case changes one setting of a Pod that ``restricted`` otherwise admits (the pod spec of
``tests.policies.conftest.COMPLIANT_POD_SPEC``), so a denial names exactly the rule under test.
The denied values and the allowed ones are PSA's (kubernetes/pod-security-admission's baseline
checks: hostPorts, sysctls, appArmorProfile, seLinuxOptions, procMount, windowsHostProcess).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

IMAGE = "registry.example.com/org/app:1.0"
APPARMOR = "container.apparmor.security.beta.kubernetes.io/"


@dataclass(frozen=True)
class Case:
    name: str                                  # the Pod's name (also the test id)
    container: dict[str, Any] = field(default_factory=dict)   # merged into containers[0]
    security: dict[str, Any] = field(default_factory=dict)    # merged into containers[0].securityContext
    pod_security: dict[str, Any] = field(default_factory=dict)  # merged into spec.securityContext
    annotations: dict[str, str] = field(default_factory=dict)
    rule: str | None = None                    # the one rule that denies it; None: allowed
    where: str | None = None                   # the manifest field the violation points at

    def pod(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"},
                                **copy.deepcopy(self.pod_security)},
            "containers": [{"name": "app", "image": IMAGE, **copy.deepcopy(self.container),
                            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                                "capabilities": {"drop": ["ALL"]}, **copy.deepcopy(self.security)}}]}
        meta: dict[str, Any] = {"name": self.name, "namespace": "default"}
        if self.annotations:
            meta["annotations"] = dict(self.annotations)
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def _sc(path: str) -> str:
    return f"spec.containers[0].securityContext.{path}"


DENIED = (
    Case("host-port", container={"ports": [{"containerPort": 80, "hostPort": 8080}]},
         rule="runtime.hostPorts", where="spec.containers[0].ports[0]"),
    Case("sysctl-unsafe", pod_security={"sysctls": [{"name": "kernel.msgmax", "value": "65536"}]},
         rule="runtime.sysctls", where="spec.securityContext.sysctls[0]"),
    # PSA compares names exactly: the slash spelling the API server also accepts is not in its set.
    Case("sysctl-slashes", pod_security={"sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"},
                                                     {"name": "net/ipv4/ip_local_port_range", "value": "1 2"}]},
         rule="runtime.sysctls", where="spec.securityContext.sysctls[1]"),
    Case("apparmor-field", security={"appArmorProfile": {"type": "Unconfined"}},
         rule="runtime.appArmor", where=_sc("appArmorProfile")),
    # A pod-level value the container overrides still counts, as in PSA (an ephemeral container
    # added later would inherit it).
    Case("apparmor-pod", pod_security={"appArmorProfile": {"type": "Unconfined"}},
         security={"appArmorProfile": {"type": "RuntimeDefault"}},
         rule="runtime.appArmor", where="spec.securityContext.appArmorProfile"),
    Case("apparmor-annotation", annotations={APPARMOR + "app": "unconfined"},
         rule="runtime.appArmor", where=f"metadata.annotations.{APPARMOR}app"),
    Case("apparmor-annotation-other", annotations={APPARMOR + "app": "docker/default"},
         rule="runtime.appArmor", where=f"metadata.annotations.{APPARMOR}app"),
    # An annotation naming no container of the pod is judged too (PSA reads every one).
    Case("apparmor-annotation-orphan", annotations={APPARMOR + "ghost": "unconfined"},
         rule="runtime.appArmor", where=f"metadata.annotations.{APPARMOR}ghost"),
    Case("selinux-type", security={"seLinuxOptions": {"type": "spc_t"}},
         rule="runtime.seLinux", where=_sc("seLinuxOptions")),
    Case("selinux-pod-type", pod_security={"seLinuxOptions": {"type": "unconfined_t"}},
         rule="runtime.seLinux", where="spec.securityContext.seLinuxOptions"),
    Case("selinux-user", security={"seLinuxOptions": {"user": "system_u"}},
         rule="runtime.seLinux", where=_sc("seLinuxOptions")),
    Case("selinux-role", pod_security={"seLinuxOptions": {"role": "system_r"}},
         rule="runtime.seLinux", where="spec.securityContext.seLinuxOptions"),
    Case("proc-unmasked", security={"procMount": "Unmasked"}, rule="runtime.procMount", where=_sc("procMount")),
    Case("hostprocess", security={"windowsOptions": {"hostProcess": True}},
         rule="runtime.hostProcess", where=_sc("windowsOptions.hostProcess")),
    # The container saying false does not undo the pod saying true (the API server refuses the mix).
    Case("hostprocess-pod", pod_security={"windowsOptions": {"hostProcess": True}},
         security={"windowsOptions": {"hostProcess": False}},
         rule="runtime.hostProcess", where="spec.securityContext.windowsOptions.hostProcess"),
)

ALLOWED = (
    Case("host-port-zero", container={"ports": [{"containerPort": 80, "hostPort": 0}, {"containerPort": 81}]}),
    Case("sysctl-safe", pod_security={"sysctls": [{"name": "net.ipv4.ip_local_port_range", "value": "1024 65000"},
                                                  {"name": "net.ipv4.tcp_keepalive_probes", "value": "5"},
                                                  {"name": "kernel.shm_rmid_forced", "value": "1"}]}),
    Case("apparmor-localhost", pod_security={"appArmorProfile": {"type": "RuntimeDefault"}},
         security={"appArmorProfile": {"type": "Localhost", "localhostProfile": "k8s-app"}}),
    Case("apparmor-annotations", annotations={APPARMOR + "app": "localhost/k8s-app", APPARMOR + "other": ""}),
    Case("apparmor-runtime-default", annotations={APPARMOR + "app": "runtime/default"}),
    Case("selinux-allowed", pod_security={"seLinuxOptions": {"level": "s0:c123,c456"}},
         security={"seLinuxOptions": {"type": "container_engine_t"}}),
    Case("proc-default", security={"procMount": "Default"}),
    Case("hostprocess-false", pod_security={"windowsOptions": {"hostProcess": False}}),
)
