"""The built-in controls: plain, typed predicates over the parsed input document.

Each control is a frozen slotted dataclass holding only the policy parameters it needs, built once
when the policy loads (``compile_controls``), and appends a ``Finding`` for each thing it rejects.
Every control runs on every evaluation: a decision lists all violations at once, never the first.
Rule ids are stable: exceptions, per-rule modes, SARIF rule ids and ``policy test`` expectations
refer to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

from policies.decision import Finding
from policies.document import NAMESPACES, Subject, clean_path
from policies.globs import matches, matches_image
from policies.model import BindRule, ImagesSpec, LocalhostProfile, ResourcesSpec, RuntimeSpec, SeccompType

ROOTLESS_FALLBACK_UID = 65534  # "nobody": what ``run`` uses for an image without a USER


class Control(Protocol):
    rule: ClassVar[str]

    def check(self, s: Subject, out: list[Finding]) -> None: ...


# ---------------------------------------------------------------------------------------- images

@dataclass(frozen=True, slots=True)
class AllowedRegistries:
    rule: ClassVar[str] = "images.allowedRegistries"
    patterns: tuple[str, ...]

    def check(self, s: Subject, out: list[Finding]) -> None:
        if not matches_image(self.patterns, s.image.registry):
            out.append(Finding(self.rule, "image.registry", "the image's registry is not allowed",
                               s.image.registry, list(self.patterns),
                               "pull the image from an allowed registry (mirror it there)"))


@dataclass(frozen=True, slots=True)
class AllowedRepositories:
    rule: ClassVar[str] = "images.allowedRepositories"
    patterns: tuple[str, ...]

    def check(self, s: Subject, out: list[Finding]) -> None:
        if not matches_image(self.patterns, s.image.name):
            out.append(Finding(self.rule, "image.repository", "the image's repository is not allowed",
                               s.image.name, list(self.patterns), "use an image from an allowed repository"))


@dataclass(frozen=True, slots=True)
class RequireDigest:
    rule: ClassVar[str] = "images.requireDigest"

    def check(self, s: Subject, out: list[Finding]) -> None:
        if not s.image.pinned:
            out.append(Finding(self.rule, "image.reference", "the image must be referenced by digest",
                               s.image.reference, "NAME@sha256:<digest>",
                               "pin the image: append @sha256:<digest> (e.g. from `stockade inspect`)"))


@dataclass(frozen=True, slots=True)
class ForbidLatest:
    rule: ClassVar[str] = "images.forbidLatest"

    def check(self, s: Subject, out: list[Finding]) -> None:
        tag = s.image.tag
        if tag == "latest" or (tag is None and not s.image.pinned):
            out.append(Finding(self.rule, "image.reference", "the image must not use the 'latest' tag",
                               s.image.reference, "an explicit version tag or a digest",
                               "name a version tag or pin a digest"))


# --------------------------------------------------------------------------------------- runtime

def _user_text(s: Subject) -> str:
    c = s.container
    if c.uid is not None:
        return f"uid {c.uid}"
    if c.user_name is not None:
        return f"user {c.user_name!r}"
    return "unknown user"


@dataclass(frozen=True, slots=True)
class RunAsNonRoot:
    """Kubelet's rule: a known uid must be non-zero; an unknown one needs ``runAsNonRoot`` enforced
    at start (Stockade's run does the same check once the image's user name is resolved)."""

    rule: ClassVar[str] = "runtime.runAsNonRoot"

    def check(self, s: Subject, out: list[Finding]) -> None:
        c = s.container
        if c.uid == 0:
            out.append(Finding(self.rule, "container.user" if c.user_given else "image.config.User",
                               "the container would run as root", 0, "a non-zero uid",
                               f"run as an unprivileged user (-u {ROOTLESS_FALLBACK_UID}, or "
                               "securityContext.runAsUser), or set USER in the image"))
        elif c.uid is None and c.run_as_non_root is not True:
            out.append(Finding(self.rule, "container.runAsNonRoot", "cannot verify the container runs as non-root",
                               _user_text(s), "a numeric non-zero uid, or runAsNonRoot: true",
                               "give a numeric user (-u UID / runAsUser) or set runAsNonRoot: true"))


@dataclass(frozen=True, slots=True)
class MinimumUid:
    rule: ClassVar[str] = "runtime.minimumUid"
    minimum: int

    def check(self, s: Subject, out: list[Finding]) -> None:
        uid = s.container.uid
        if uid is None or uid < self.minimum:
            out.append(Finding(self.rule, "container.user.uid", f"the uid must be at least {self.minimum}",
                               uid if uid is not None else _user_text(s), f">= {self.minimum}",
                               f"run with a numeric uid of {self.minimum} or more (-u / runAsUser)"))


@dataclass(frozen=True, slots=True)
class ReadOnlyRoot:
    rule: ClassVar[str] = "runtime.readOnlyRootFilesystem"

    def check(self, s: Subject, out: list[Finding]) -> None:
        if s.container.read_only_root_filesystem is not True:
            out.append(Finding(self.rule, "container.readOnlyRootFilesystem",
                               "the root filesystem must be read-only", s.container.read_only_root_filesystem,
                               True, "use --read-only (Kubernetes: readOnlyRootFilesystem: true); mount a "
                                     "tmpfs where the program writes"))


@dataclass(frozen=True, slots=True)
class NoPrivileged:
    rule: ClassVar[str] = "runtime.privileged"

    def check(self, s: Subject, out: list[Finding]) -> None:
        if s.container.privileged is True:
            out.append(Finding(self.rule, "container.privileged", "privileged containers are not allowed",
                               True, False, "remove --privileged (Kubernetes: privileged: true); add "
                                            "only the capabilities the program needs"))


@dataclass(frozen=True, slots=True)
class NoPrivilegeEscalation:
    rule: ClassVar[str] = "runtime.allowPrivilegeEscalation"

    def check(self, s: Subject, out: list[Finding]) -> None:
        c = s.container
        if c.privileged is True:  # a privileged container can always escalate, no_new_privs or not
            out.append(Finding(self.rule, "container.privileged", "privilege escalation must be prevented: a "
                               "privileged container can always escalate", True, False,
                               "remove --privileged (Kubernetes: privileged: true)"))
        elif c.no_new_privileges is not True:
            out.append(Finding(self.rule, "container.noNewPrivileges",
                               "privilege escalation must be prevented (no_new_privs)", c.no_new_privileges, True,
                               "remove --security-opt no-new-privileges=false "
                               "(Kubernetes: set allowPrivilegeEscalation: false)"))


_NS_FIX = {"network": "--network host (hostNetwork: true)", "pid": "--pid host (hostPID: true)",
           "ipc": "--ipc host (hostIPC: true)", "uts": "--uts host", "user": "--userns host (hostUsers: true)",
           "cgroup": "--cgroupns host"}


@dataclass(frozen=True, slots=True)
class HostNamespaces:
    rule: ClassVar[str] = "runtime.hostNamespaces"
    forbidden: tuple[str, ...]

    def check(self, s: Subject, out: list[Finding]) -> None:
        for ns in self.forbidden:
            if s.container.namespaces.get(ns) == "host":
                out.append(Finding(self.rule, f"container.namespaces.{ns}",
                                   f"sharing the host's {ns} namespace is not allowed", "host", "private",
                                   f"remove {_NS_FIX[ns]}"))


@dataclass(frozen=True, slots=True)
class CapabilitiesDrop:
    rule: ClassVar[str] = "runtime.capabilities.drop"
    required: tuple[str, ...]

    def check(self, s: Subject, out: list[Finding]) -> None:
        dropped = s.container.cap_drop
        if "ALL" in dropped:
            return
        missing = [c for c in self.required if c not in dropped]
        if missing:
            out.append(Finding(self.rule, "container.capabilities.drop", "required capabilities are not dropped",
                               list(dropped), list(self.required),
                               "drop " + ", ".join(missing) + " (--cap-drop ALL; Kubernetes: capabilities.drop: [ALL])"))


@dataclass(frozen=True, slots=True)
class CapabilitiesAdd:
    rule: ClassVar[str] = "runtime.capabilities.add"
    allowed: tuple[str, ...]

    def check(self, s: Subject, out: list[Finding]) -> None:
        if "ALL" in self.allowed:
            return
        extra = [c for c in s.container.cap_add if c not in self.allowed]
        if extra:
            out.append(Finding(self.rule, "container.capabilities.add", "capabilities outside the allowlist are added",
                               extra, list(self.allowed), "remove --cap-add " + " --cap-add ".join(extra)))


@dataclass(frozen=True, slots=True)
class Seccomp:
    rule: ClassVar[str] = "runtime.seccomp"
    allowed: tuple[SeccompType, ...]
    profiles: tuple[LocalhostProfile, ...] | None
    required: bool

    def check(self, s: Subject, out: list[Finding]) -> None:
        c = s.container
        if c.seccomp_type is None and not self.required:
            return
        allowed = [a.value for a in self.allowed]
        if c.seccomp_type not in allowed:
            out.append(Finding(self.rule, "container.seccomp.type", "the seccomp profile type is not allowed",
                               c.seccomp_type, allowed,
                               "use the default profile (no --security-opt seccomp=…; seccompProfile.type: "
                               "RuntimeDefault)"))
            return
        if c.seccomp_type == SeccompType.LOCALHOST.value and self.profiles is not None:
            profile = clean_path(c.seccomp_profile or "")
            if not any(p.path == profile and p.sha256 == c.seccomp_sha256 for p in self.profiles):
                out.append(Finding(self.rule, "container.seccomp.profile",
                                   "the seccomp profile is not one the policy lists (path and sha256)",
                                   {"profile": c.seccomp_profile, "sha256": c.seccomp_sha256},
                                   [{"profile": p.path, "sha256": p.sha256} for p in self.profiles],
                                   "use a listed profile file, unchanged"))


def _under(path: str, prefix: str) -> bool:
    prefix = prefix.rstrip("/") or "/"
    return prefix == "/" or path == prefix or path.startswith(prefix + "/")


@dataclass(frozen=True, slots=True)
class Mounts:
    rule: ClassVar[str] = "runtime.mounts"
    tmpfs: tuple[str, ...] | None
    bind: tuple[BindRule, ...] | None
    volumes: tuple[str, ...] | None

    def check(self, s: Subject, out: list[Finding]) -> None:
        for i, m in enumerate(s.container.mounts):
            path = f"container.mounts[{i}]"
            if m.type == "tmpfs" and self.tmpfs is not None:
                if not matches(self.tmpfs, clean_path(m.destination)):
                    out.append(Finding(self.rule, f"{path}.destination", "tmpfs mount at a destination not allowed",
                                       m.destination, list(self.tmpfs), "mount the tmpfs at an allowed path"))
            elif m.type == "bind" and self.bind is not None:
                self._bind(m.source, m.read_only, path, out)
            elif m.type == "volume" and self.volumes is not None:
                if (m.kind or "local") not in self.volumes:
                    out.append(Finding(self.rule, f"{path}.kind", "volume kind not allowed", m.kind or "local",
                                       list(self.volumes), "use an allowed volume kind"))

    def _bind(self, source: str | None, read_only: bool, path: str, out: list[Finding]) -> None:
        expected = [{"sourcePrefix": b.source_prefix, "readOnly": b.read_only} for b in self.bind or ()]
        if not source or not source.startswith("/"):
            out.append(Finding(self.rule, f"{path}.source", "bind mount source must be an absolute host path",
                               source, expected, "give the absolute, resolved host path"))
            return
        real = clean_path(source)
        fits = [b for b in self.bind or () if _under(real, clean_path(b.source_prefix))]
        if not fits:
            out.append(Finding(self.rule, f"{path}.source", "bind mount of a host path the policy does not allow",
                               source, expected, "bind only paths under an allowed prefix, or use a volume"
                                                 if expected else "remove the bind mount (-v/hostPath); use a volume"))
        elif not read_only and all(b.read_only for b in fits):
            out.append(Finding(self.rule, f"{path}.readOnly", "bind mount must be read-only", False, True,
                               "add :ro to the -v option (Kubernetes: readOnly: true)"))


@dataclass(frozen=True, slots=True)
class Resources:
    rule: ClassVar[str] = "runtime.resources"
    spec: ResourcesSpec

    def check(self, s: Subject, out: list[Finding]) -> None:
        c = s.container
        values = {"memory": c.memory, "cpus": c.cpus, "pids": c.pids}
        flags = {"memory": "--memory", "cpus": "--cpus", "pids": "--pids-limit"}
        for name in self.spec.required or ():
            if not values[name.value]:
                out.append(Finding(self.rule, f"container.resources.{name.value}", f"a {name.value} limit is required",
                                   None, "a limit", f"set {flags[name.value]} (resources.limits)"))
        limits = self.spec.max
        if limits is None:
            return
        for name, limit in (("memory", limits.memory), ("cpus", limits.cpus), ("pids", limits.pids)):
            value = values[name]
            if limit is not None and value is not None and value > limit:
                out.append(Finding(self.rule, f"container.resources.{name}", f"the {name} limit is above the maximum",
                                   value, f"<= {limit}", f"lower {flags[name]} to at most {limit}"))


# ------------------------------------------------------------- Kubernetes-only (Pod Security "baseline")
# ``stockade run`` sets none of these fields: its documents leave them empty and always pass. As in
# Pod Security admission, an unset value passes each of them; only what a manifest sets is judged.

@dataclass(frozen=True, slots=True)
class NoHostPorts:
    rule: ClassVar[str] = "runtime.hostPorts"

    def check(self, s: Subject, out: list[Finding]) -> None:
        for i, host_port in enumerate(s.container.host_ports):
            if host_port:  # 0 is "no host port", as the API server reads it
                out.append(Finding(self.rule, f"container.ports[{i}].hostPort", "binding a port of the node is not "
                                   "allowed", host_port, "unset or 0",
                                   "remove hostPort; reach the pod through a Service (a NodePort or LoadBalancer "
                                   "one from outside the cluster)"))


@dataclass(frozen=True, slots=True)
class NoHostProcess:
    rule: ClassVar[str] = "runtime.hostProcess"

    def check(self, s: Subject, out: list[Finding]) -> None:
        if s.container.host_process is True:
            out.append(Finding(self.rule, "container.hostProcess", "Windows HostProcess containers are not allowed "
                               "(they run on the node, as its administrator)", True, "unset or false",
                               "remove securityContext.windowsOptions.hostProcess (pod and container)"))


@dataclass(frozen=True, slots=True)
class Sysctls:
    rule: ClassVar[str] = "runtime.sysctls"
    allowed: tuple[str, ...]

    def check(self, s: Subject, out: list[Finding]) -> None:
        for i, name in enumerate(s.container.sysctls):
            if name not in self.allowed:
                out.append(Finding(self.rule, f"container.sysctls[{i}].name", "the sysctl is not one of the "
                                   "allowed ones (namespaced and isolated from other pods)", name, list(self.allowed),
                                   f"remove {name} from spec.securityContext.sysctls, or set it on the node"))


@dataclass(frozen=True, slots=True)
class AppArmor:
    rule: ClassVar[str] = "runtime.appArmor"
    allowed: tuple[str, ...]

    def check(self, s: Subject, out: list[Finding]) -> None:
        for i, profile in enumerate(s.container.app_armor):
            if profile.type is not None and profile.type not in self.allowed:
                out.append(Finding(self.rule, f"container.appArmor[{i}].type", "the AppArmor profile is not allowed",
                                   profile.type, list(self.allowed),
                                   "use appArmorProfile.type RuntimeDefault or Localhost (annotation values "
                                   "runtime/default or localhost/NAME), or leave it unset"))


@dataclass(frozen=True, slots=True)
class SELinux:
    rule: ClassVar[str] = "runtime.seLinux"
    types: tuple[str, ...] | None
    user: bool
    role: bool

    def check(self, s: Subject, out: list[Finding]) -> None:
        for i, options in enumerate(s.container.se_linux):
            path = f"container.seLinux[{i}]"
            if self.types is not None and options.type and options.type not in self.types:
                out.append(Finding(self.rule, f"{path}.type", "the SELinux type is not allowed", options.type,
                                   ["unset", *self.types], "remove seLinuxOptions.type or use container_t"))
            for allowed, key, value in ((self.user, "user", options.user), (self.role, "role", options.role)):
                if not allowed and value:
                    out.append(Finding(self.rule, f"{path}.{key}", f"setting the SELinux {key} is not allowed",
                                       value, "unset", f"remove seLinuxOptions.{key}"))


@dataclass(frozen=True, slots=True)
class ProcMount:
    rule: ClassVar[str] = "runtime.procMount"
    allowed: tuple[str, ...]

    def check(self, s: Subject, out: list[Finding]) -> None:
        value = s.container.proc_mount
        if value is not None and value not in self.allowed:
            out.append(Finding(self.rule, "container.procMount", "this /proc mount type is not allowed (Unmasked "
                               "exposes the paths the runtime masks)", value, ["unset", *self.allowed],
                               "remove securityContext.procMount (or set Default)"))


# ----------------------------------------------------------------------------------------- build

IMAGE_RULES = (AllowedRegistries.rule, AllowedRepositories.rule, RequireDigest.rule, ForbidLatest.rule)
RUNTIME_RULES = (RunAsNonRoot.rule, MinimumUid.rule, ReadOnlyRoot.rule, NoPrivileged.rule,
                 NoPrivilegeEscalation.rule, HostNamespaces.rule, CapabilitiesDrop.rule, CapabilitiesAdd.rule,
                 Seccomp.rule, Mounts.rule, Resources.rule, NoHostPorts.rule, NoHostProcess.rule, Sysctls.rule,
                 AppArmor.rule, SELinux.rule, ProcMount.rule)


def compile_controls(images: ImagesSpec | None, runtime: RuntimeSpec | None) -> tuple[Control, ...]:
    """The controls a policy's ``images`` and ``runtime`` sections switch on, in report order."""
    out: list[Control] = []
    if images is not None:
        if images.allowed_registries is not None:
            out.append(AllowedRegistries(images.allowed_registries))
        if images.allowed_repositories is not None:
            out.append(AllowedRepositories(images.allowed_repositories))
        if images.require_digest:
            out.append(RequireDigest())
        if images.forbid_latest:
            out.append(ForbidLatest())
    return tuple(out) + runtime_controls(runtime)


def runtime_controls(r: RuntimeSpec | None) -> tuple[Control, ...]:
    if r is None:
        return ()
    out: list[Control] = []
    if r.run_as_non_root:
        out.append(RunAsNonRoot())
    if r.minimum_uid is not None:
        out.append(MinimumUid(r.minimum_uid))
    if r.read_only_root_filesystem:
        out.append(ReadOnlyRoot())
    if r.privileged is False:
        out.append(NoPrivileged())
    if r.allow_privilege_escalation is False:
        out.append(NoPrivilegeEscalation())
    if r.host_namespaces is not None:
        forbidden = tuple(ns for ns in NAMESPACES if getattr(r.host_namespaces, ns) is False)
        if forbidden:
            out.append(HostNamespaces(forbidden))
    if r.capabilities is not None:
        if r.capabilities.drop:
            out.append(CapabilitiesDrop(r.capabilities.drop))
        if r.capabilities.allow_add is not None:
            out.append(CapabilitiesAdd(r.capabilities.allow_add))
    if r.seccomp is not None and r.seccomp.allowed is not None:
        out.append(Seccomp(r.seccomp.allowed, r.seccomp.profiles, r.seccomp.required is not False))
    if r.mounts is not None and (r.mounts.tmpfs, r.mounts.bind, r.mounts.volumes) != (None, None, None):
        out.append(Mounts(r.mounts.tmpfs, r.mounts.bind, r.mounts.volumes))
    if r.resources is not None and (r.resources.required or r.resources.max):
        out.append(Resources(r.resources))
    return tuple(out) + _pod_security_controls(r)


def _pod_security_controls(r: RuntimeSpec) -> tuple[Control, ...]:
    """The controls of the Kubernetes-only settings (Pod Security "baseline" judges them)."""
    out: list[Control] = []
    if r.host_ports is False:
        out.append(NoHostPorts())
    if r.host_process is False:
        out.append(NoHostProcess())
    if r.sysctls is not None and r.sysctls.allowed is not None:
        out.append(Sysctls(r.sysctls.allowed))
    if r.app_armor is not None and r.app_armor.allowed is not None:
        out.append(AppArmor(tuple(a.value for a in r.app_armor.allowed)))
    se = r.se_linux
    if se is not None and (se.allowed_types, se.user, se.role) != (None, None, None):
        out.append(SELinux(se.allowed_types, se.user is not False, se.role is not False))
    if r.proc_mount is not None and r.proc_mount.allowed is not None:
        out.append(ProcMount(tuple(p.value for p in r.proc_mount.allowed)))
    return tuple(out)
