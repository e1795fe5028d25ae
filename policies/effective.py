"""Hardening in both directions for ``stockade run``: fill what was not asked, refuse what breaks.

``harden(policy, document)`` takes the input document as the user asked for it (``container``
fields the user did not give are absent or ``null``) and returns:

* ``document``: the effective settings. Every field the user left unset and the policy constrains
  gets the policy's hardened value: a read-only root, ``ALL`` capabilities dropped (added to any
  drops the user asked for), the RuntimeDefault seccomp profile, no_new_privs, private host
  namespaces, the policy's default resource limits, and a non-root user: an image without ``USER``
  (or with a root one) runs as 65534 under ``restricted``; a named ``USER`` keeps its name with
  ``runAsNonRoot: true``, which the runtime checks once the name is resolved, as the kubelet does.
* ``applied``: what was filled, and why (``policy explain`` prints it).
* ``violations``: the findings of the policy's runtime rules on the effective settings. Every filled
  value satisfies the policy, so each of these comes from something the user explicitly asked for
  (``--privileged``, ``--cap-add SYS_ADMIN``, ``-u 0``, ``-v /:/host``, …).

The function is pure: it reads nothing and changes nothing outside its return value. Fields the
policy does not constrain stay unset, meaning "the engine's default".
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Mapping

from policies.controls import ROOTLESS_FALLBACK_UID, RUNTIME_RULES
from policies.decision import Finding
from policies.document import NAMESPACES, parse, parse_user
from policies.loader import Policy
from policies.model import RuntimeSpec, SeccompType


@dataclass(frozen=True, slots=True)
class Applied:
    path: str
    value: Any
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "value": self.value, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Hardened:
    document: dict[str, Any]
    applied: tuple[Applied, ...]
    violations: tuple[Finding, ...]


class _Filler:
    def __init__(self, container: dict[str, Any], label: str) -> None:
        self.c, self.label, self.applied = container, label, []  # type: list[Applied]

    def set(self, key: str, value: Any, why: str) -> None:
        if self.c.get(key) is None:
            self.c[key] = value
            self.applied.append(Applied(f"container.{key}", copy.deepcopy(value), f"{why} ({self.label})"))


def _user(f: _Filler, r: RuntimeSpec, image: Mapping[str, Any]) -> None:
    if not (r.run_as_non_root or r.minimum_uid is not None):
        return
    requested = f.c.get("user") or {}
    if requested.get("uid") is not None or requested.get("name") is not None:
        if r.run_as_non_root:
            f.set("runAsNonRoot", True, "the runtime refuses to start as root")
        return
    config = image.get("config")
    uid = None
    if isinstance(config, Mapping):
        uid, _, _ = parse_user(str(config.get("User") or ""))
        named = uid is None
    else:
        named = False
    minimum = r.minimum_uid or 0
    if (uid is not None and (uid == 0 or uid < minimum)) or (r.minimum_uid is not None and uid is None):
        fallback = max(ROOTLESS_FALLBACK_UID, minimum)
        reason = ("the image has no non-root USER" if uid == 0 else
                  f"the image's user is below the minimum uid {minimum}" if uid is not None else
                  f"the uid must be verifiably at least {minimum}")
        f.set("user", {"uid": fallback, "gid": fallback}, reason)
        if r.run_as_non_root:  # kept with the container, so a later `exec -u 0` is refused too
            f.set("runAsNonRoot", True, "the runtime refuses to start as root, in any process")
    elif r.run_as_non_root:
        why = "the runtime refuses to start as root" + (" (the image's USER is a name)" if named else "")
        f.set("runAsNonRoot", True, why)


def harden(policy: Policy, document: Mapping[str, Any]) -> Hardened:
    """The effective hardened settings for a requested run, and the request's own violations."""
    doc: dict[str, Any] = copy.deepcopy(dict(document))
    container: dict[str, Any] = dict(doc.get("container") or {})
    doc["container"] = container
    f = _Filler(container, f"policy {policy.label}")
    r = policy.runtime
    if r is not None:
        if r.read_only_root_filesystem:
            f.set("readOnlyRootFilesystem", True, "the policy requires a read-only root filesystem")
        if r.privileged is False:
            f.set("privileged", False, "the policy forbids privileged containers")
        if r.allow_privilege_escalation is False:
            f.set("noNewPrivileges", True, "the policy forbids privilege escalation")
        if r.host_namespaces is not None:
            namespaces = dict(container.get("namespaces") or {})
            for ns in NAMESPACES:
                if getattr(r.host_namespaces, ns) is False and namespaces.get(ns) is None:
                    namespaces[ns] = "private"
                    f.applied.append(Applied(f"container.namespaces.{ns}", "private",
                                             f"the policy forbids the host's {ns} namespace (policy {policy.label})"))
            container["namespaces"] = namespaces
        if r.capabilities is not None and r.capabilities.drop:
            caps = dict(container.get("capabilities") or {})
            drop = list(caps.get("drop") or [])
            missing = [c for c in r.capabilities.drop if c not in drop and "ALL" not in drop]
            if missing:
                caps["drop"] = drop + missing
                container["capabilities"] = caps
                f.applied.append(Applied("container.capabilities.drop", caps["drop"],
                                         f"the policy requires dropping {', '.join(missing)} (policy {policy.label})"))
        if r.seccomp is not None and r.seccomp.allowed:
            if SeccompType.RUNTIME_DEFAULT in r.seccomp.allowed:
                f.set("seccomp", {"type": "RuntimeDefault"}, "the policy requires a seccomp profile")
            elif SeccompType.LOCALHOST in r.seccomp.allowed and r.seccomp.profiles:
                p = r.seccomp.profiles[0]
                f.set("seccomp", {"type": "Localhost", "profile": p.path, "sha256": p.sha256},
                      "the policy's first listed seccomp profile")
        if r.resources is not None and r.resources.defaults is not None:
            res = dict(container.get("resources") or {})
            d = r.resources.defaults
            for key, value in (("memory", d.memory), ("cpus", d.cpus), ("pids", d.pids)):
                if value is not None and res.get(key) is None:
                    res[key] = value
                    f.applied.append(Applied(f"container.resources.{key}", value,
                                             f"the policy's default limit (policy {policy.label})"))
            container["resources"] = res
        _user(f, r, doc.get("image") or {})
    subject = parse(doc)
    found: list[Finding] = []
    for control in policy.controls:
        if control.rule in RUNTIME_RULES:
            control.check(subject, found)
    return Hardened(doc, tuple(f.applied), tuple(found))
