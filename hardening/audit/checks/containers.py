"""Container checks over Docker-shaped inspect documents (running and stopped containers)."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any, Mapping

from hardening.audit.checks.paths import resolve
from hardening.audit.model import Evidence, Skip, Verdict, failed, passed
from hardening.audit.registry import implements
from hardening.audit.targets import container_name

# Docker's default bounding set: anything added beyond it is a deliberate widening.
DEFAULT_CAPS = frozenset({"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID",
                          "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL",
                          "AUDIT_WRITE"})
# Host addresses meaning "every interface" in a port binding (compared here, never bound).
WILDCARD = frozenset({"", "::", "0.0.0.0"})  # nosec B104 # compared with bindings, never bound
SOCKETS = ("docker.sock", "containerd.sock", "podman.sock", "crio.sock")


def _hc(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    return doc.get("HostConfig") or {}


def _loc(doc: Mapping[str, Any]) -> str:
    return f"stockade/container/{container_name(doc)}/config"


def _caps(values: Any) -> set[str]:
    return {str(c).upper().removeprefix("CAP_") for c in values or ()}


def _opts(doc: Mapping[str, Any]) -> list[str]:
    return [str(o) for o in _hc(doc).get("SecurityOpt") or ()]


def _flag(doc: Mapping[str, Any], key: str, ok: bool, good: str, bad: str, expected: str,
          observed: Any) -> Verdict:
    ev = Evidence("inspect", f"/HostConfig/{key}", str(observed), expected)
    return passed(good, ev) if ok else failed(bad, ev, location=_loc(doc))


@implements("CTR-001")
def privileged(_view: Any, doc: Mapping[str, Any], _p: Mapping[str, Any]) -> Verdict:
    on = bool(_hc(doc).get("Privileged"))
    return _flag(doc, "Privileged", not on, "not privileged", "the container is privileged",
                 "false", on)


@implements("CTR-002")
def added_caps(_view: Any, doc: Mapping[str, Any], _p: Mapping[str, Any]) -> Verdict:
    extra = sorted(_caps(_hc(doc).get("CapAdd")) - DEFAULT_CAPS)
    return _flag(doc, "CapAdd", not extra, "no capability beyond the default set",
                 f"capabilities added beyond the default set: {', '.join(extra)}",
                 "only default capabilities", extra or "none")


@implements("CTR-003")
def dangerous_caps(_view: Any, doc: Mapping[str, Any], params: Mapping[str, Any]) -> Verdict:
    bad = sorted(_caps(_hc(doc).get("CapAdd")) & set(params["caps"]))
    return _flag(doc, "CapAdd", not bad, "no container-escape capability added",
                 f"container-escape capabilities added: {', '.join(bad)}", "none of " +
                 ", ".join(params["caps"]), bad or "none")


def _mounts(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [m for m in doc.get("Mounts") or [] if m.get("Type", "bind") == "bind"]


def _under(path: str, roots: list[str]) -> bool:
    p = PurePosixPath(path)
    return any(p == PurePosixPath(r) or PurePosixPath(r) in p.parents for r in roots)


@implements("CTR-004")
def engine_mounted(view: Any, doc: Mapping[str, Any], _p: Mapping[str, Any]) -> Verdict:
    roots = resolve(view, "store") + resolve(view, "runroot")
    hits = [m["Source"] for m in _mounts(doc)
            if _under(str(m.get("Source", "")), roots) or str(m.get("Source", "")).endswith(SOCKETS)]
    ev = Evidence("inspect", "/Mounts", ", ".join(hits) or "none", "no engine state or API socket")
    if hits:
        return failed(f"engine state or an API socket is mounted: {', '.join(hits)}", ev,
                      location=_loc(doc))
    return passed("no engine state or API socket is mounted", ev)


def _sensitive(doc: Mapping[str, Any], params: Mapping[str, Any], rw_only: bool) -> list[str]:
    paths = set(params["paths"])
    return [f"{m.get('Source')} -> {m.get('Destination')}" for m in _mounts(doc)
            if str(m.get("Source", "")).rstrip("/") in paths or m.get("Source") == "/"
            if not rw_only or m.get("RW", True)]


@implements("CTR-005", "CTR-006")
def sensitive_mounts(_view: Any, doc: Mapping[str, Any], params: Mapping[str, Any]) -> Verdict:
    rw_only = bool(params.get("rw_only"))
    hits = _sensitive(doc, params, rw_only)
    what = "sensitive host directories mounted read-write" if rw_only else "sensitive host directories mounted"
    ev = Evidence("inspect", "/Mounts", ", ".join(hits) or "none", "none of " + ", ".join(params["paths"]))
    if hits:
        return failed(f"{what}: {', '.join(hits)}", ev, location=_loc(doc))
    return passed(f"no {what}", ev)


@implements("host_namespace")
def host_namespace(_view: Any, doc: Mapping[str, Any], params: Mapping[str, Any]) -> Verdict:
    key = params["key"]
    mode = str(_hc(doc).get(key) or "")
    return _flag(doc, key, mode != "host", f"{key} is {mode or 'private'}",
                 f"{key} is host: the container shares the host's {params['namespace']} namespace",
                 "not host", mode or "default")


@implements("security_opt")
def security_opt(view: Any, doc: Mapping[str, Any], params: Mapping[str, Any]) -> Verdict:
    """A SecurityOpt entry that must be absent (``deny``) or present (``require``)."""
    opts = _opts(doc)
    ev = Evidence("inspect", "/HostConfig/SecurityOpt", ", ".join(opts) or "none",
                  params.get("expected", ""))
    if "deny" in params:
        bad = [o for o in opts if o.replace(":", "=") in params["deny"]]
        if bad:
            return failed(f"{params['bad']}: {', '.join(bad)}", ev, location=_loc(doc))
        return passed(params["good"], ev)
    if any(o.replace(":", "=") in params["require"] for o in opts):
        return passed(params["good"], ev)
    # As Docker's daemon-wide default does, the engine's default applies unless the container
    # opted out; the configuration says which default was in force.
    default = params.get("engine_default")
    opted_out = any(o.replace(":", "=") in params.get("opt_out", ()) for o in opts)
    if default and not opted_out and view.config is not None:
        section, key = default.split(".")
        if getattr(getattr(view.config, section), key) is True:
            return passed(f"{params['good']} (engine default {default} = true)", ev,
                          Evidence("engine-config", default, "True", "True"))
    return failed(params["bad"], ev, location=_loc(doc))


@implements("CTR-015")
def read_only_root(_view: Any, doc: Mapping[str, Any], _p: Mapping[str, Any]) -> Verdict:
    ro = bool(_hc(doc).get("ReadonlyRootfs"))
    return _flag(doc, "ReadonlyRootfs", ro, "the root filesystem is read-only",
                 "the root filesystem is writable", "true", ro)


@implements("limit")
def limit(_view: Any, doc: Mapping[str, Any], params: Mapping[str, Any]) -> Verdict:
    """Any of ``params["keys"]`` set to a positive value counts as a limit."""
    values = {k: _hc(doc).get(k) for k in params["keys"]}
    ok = any(isinstance(v, int) and v > 0 for v in values.values())
    observed = ", ".join(f"{k}={v}" for k, v in values.items())
    return _flag(doc, params["keys"][0], ok, f"{params['what']} is limited",
                 f"no {params['what']} limit", "a positive limit", observed)


@implements("CTR-019")
def devices(_view: Any, doc: Mapping[str, Any], _p: Mapping[str, Any]) -> Verdict:
    devs = [str(d.get("PathOnHost")) for d in _hc(doc).get("Devices") or []]
    return _flag(doc, "Devices", not devs, "no host devices are passed in",
                 f"host devices passed in: {', '.join(devs)}", "none", devs or "none")


@implements("CTR-020")
def propagation(_view: Any, doc: Mapping[str, Any], _p: Mapping[str, Any]) -> Verdict:
    shared = [str(m.get("Destination")) for m in doc.get("Mounts") or []
              if str(m.get("Propagation", "")) in ("shared", "rshared")]
    ev = Evidence("inspect", "/Mounts/*/Propagation", ", ".join(shared) or "none shared", "private")
    if shared:
        return failed(f"mounts with shared propagation: {', '.join(shared)}", ev, location=_loc(doc))
    return passed("no mount propagates to the host", ev)


@implements("CTR-021")
def restart_policy(_view: Any, doc: Mapping[str, Any], params: Mapping[str, Any]) -> Verdict:
    policy = _hc(doc).get("RestartPolicy") or {}
    name, retries = str(policy.get("Name") or "no"), int(policy.get("MaximumRetryCount") or 0)
    most = params["max_retries"]
    ok = name in ("no", "") or (name == "on-failure" and 0 < retries <= most)
    return _flag(doc, "RestartPolicy", ok, f"restart policy {name} is bounded",
                 f"restart policy {name} (retries {retries or 'unlimited'}) restarts without bound",
                 f"no, or on-failure with at most {most} retries", f"{name}:{retries}")


@implements("CTR-022")
def health(_view: Any, doc: Mapping[str, Any], _p: Mapping[str, Any]) -> Verdict:
    state = doc.get("State") or {}
    status = (state.get("Health") or {}).get("Status")
    if not status:
        raise Skip("the container has no health check")
    ev = Evidence("inspect", "/State/Health/Status", str(status), "healthy")
    if status == "unhealthy":
        return failed("the container is unhealthy", ev, location=_loc(doc))
    return passed(f"health status {status}", ev)


def _descendants(view: Any, pid: int) -> list[tuple[int, str]]:
    """(pid, comm) of ``pid`` and every process below it, from /proc/*/stat."""
    parents: dict[int, int] = {}
    for name in view.host.listdir("/proc"):
        if not name.isdigit():
            continue
        stat = view.host.read_text(f"/proc/{name}/stat") or ""
        after = stat.rpartition(")")[2].split()
        if len(after) >= 2 and after[1].isdigit():
            parents[int(name)] = int(after[1])
    tree, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent and p not in tree]
        tree += children
        frontier += children
    return [(p, (view.host.read_text(f"/proc/{p}/comm") or "").strip()) for p in tree]


@implements("CTR-023")
def sshd(view: Any, doc: Mapping[str, Any], _p: Mapping[str, Any]) -> Verdict:
    state = doc.get("State") or {}
    pid = int(state.get("Pid") or 0)
    if not state.get("Running") or pid <= 0:
        raise Skip("the container is not running")
    procs = _descendants(view, pid)
    if not procs[0][1]:
        raise Skip(f"process {pid} is gone (the container stopped during the audit)")
    ssh = [f"{p} {c}" for p, c in procs if c == "sshd"]
    ev = Evidence("file", f"/proc/{pid}/comm and descendants", f"{len(procs)} processes",
                  "no sshd")
    if ssh:
        return failed(f"sshd runs inside the container ({', '.join(ssh)})", ev, location=_loc(doc))
    return passed(f"no sshd among {len(procs)} processes", ev)


@implements("CTR-024")
def root_user(view: Any, doc: Mapping[str, Any], _p: Mapping[str, Any]) -> Verdict:
    user = str((doc.get("Config") or {}).get("User") or "")
    userns = str(_hc(doc).get("UsernsMode") or "")
    ev = Evidence("inspect", "/Config/User", user or "(unset: root)", "a non-root user or a user namespace")
    if user.split(":")[0] not in ("", "root", "0"):
        return passed(f"runs as {user}", ev)
    if view.paths.rootless or userns.startswith(("private", "keep-id", "auto")):
        return passed("root inside the container is mapped to an unprivileged host user", ev)
    return failed("the container runs as root, and root is the host's root", ev, location=_loc(doc))


def _bindings(doc: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    out = []
    for port, binds in (_hc(doc).get("PortBindings") or {}).items():
        for b in binds or []:
            out.append((str(port), str(b.get("HostIp") or ""), str(b.get("HostPort") or "")))
    return out


@implements("CTR-025")
def privileged_ports(_view: Any, doc: Mapping[str, Any], _p: Mapping[str, Any]) -> Verdict:
    low = [f"{hp}->{p}" for p, _ip, hp in _bindings(doc) if hp.isdigit() and 0 < int(hp) < 1024]
    return _flag(doc, "PortBindings", not low, "no privileged host port is published",
                 f"privileged host ports published: {', '.join(low)}", "host ports >= 1024",
                 low or "none")


@implements("CTR-026")
def all_interfaces(_view: Any, doc: Mapping[str, Any], _p: Mapping[str, Any]) -> Verdict:
    wide = [f"{ip or 'all interfaces'}:{hp}->{p}" for p, ip, hp in _bindings(doc) if ip in WILDCARD]
    return _flag(doc, "PortBindings", not wide, "published ports are bound to specific addresses",
                 f"ports published on every interface: {', '.join(wide)}", "a specific host address",
                 wide or "none")


@implements("CTR-027")
def cgroup_parent(_view: Any, doc: Mapping[str, Any], params: Mapping[str, Any]) -> Verdict:
    parent = str(_hc(doc).get("CgroupParent") or "")
    return _flag(doc, "CgroupParent", parent in params["defaults"],
                 "the engine's default cgroup parent is used", f"custom cgroup parent {parent}",
                 "the engine's default", parent or "default")


@implements("CTR-028")
def drop_all(_view: Any, doc: Mapping[str, Any], _p: Mapping[str, Any]) -> Verdict:
    dropped = _caps(_hc(doc).get("CapDrop"))
    return _flag(doc, "CapDrop", "ALL" in dropped, "every capability is dropped before adding back",
                 "capabilities are not dropped with ALL", "ALL", sorted(dropped) or "none")
