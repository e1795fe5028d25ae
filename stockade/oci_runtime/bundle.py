"""An OCI bundle's ``config.json``, read defensively and translated into the engine's ``Spec``.

The caller (containerd, podman, a person with ``runc spec``) is trusted to describe the container it
wants, not to be well-formed: every field is type-checked and a mistake is one line naming the field.
The translation keeps the engine's own safety rules rather than the bundle's when they disagree, and
says so in the runtime log:

* the standard mounts (``/proc``, ``/sys``, ``/dev``, ``/dev/pts``, ``/dev/shm``, ``/dev/mqueue``) are the
  engine's (a private ``nodev`` ``/dev`` with read-only binds of the host's device nodes, ``/sys``
  read-only unless the bundle is privileged); other mounts are binds or tmpfs, always ``nodev``;
* ``linux.devices`` are bound from the host's node of the same path, type and number (never made with
  mknod); the devices cgroup rules are then moot, because no other device node can be opened;
* rlimits above this host's hard limit are clamped to it (raising one needs CAP_SYS_RESOURCE, which
  root lacks on some hosts, this one included);
* a sysctl must be namespaced (``net.*`` with a network namespace, IPC ones with an IPC namespace):
  anything else would change the host;
* the container must have its own mount namespace (the engine mounts its root inside it).

What the bundle leaves unsaid is decided later by the node policy (``nodepolicy``): a bundle without
``process.capabilities`` or ``linux.seccomp`` gets the policy's (or Docker's default capability set).
"""

from __future__ import annotations

import os
import posixpath
import resource
import stat
from dataclasses import dataclass, field
from typing import Any, Iterator

from engine.boundedio import load_json
from engine.errors import StockadeError
from engine.runtime.capabilities import NAMES, NUMBERS, current_bounding, last_cap
from engine.runtime.process import RLIMITS
from engine.spec import (NAMESPACES, CapabilitySets, Hook, Hooks, IDMapping, Mount, Process, Resources,
                         Rlimit, Root, Spec)

MAX_CONFIG = 16 * 1024 * 1024
UINT64_MAX = 2**64 - 1
HOOK_STAGES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
RUNTIME_HOOKS = ("prestart", "createRuntime", "poststart", "poststop")  # run by the runtime, not the init
PRIVILEGED_ANNOTATION = "io.podman.annotations.privileged"
# (type, destination) the engine always provides itself.
STANDARD_MOUNTS = {("proc", "/proc"), ("sysfs", "/sys"), ("tmpfs", "/dev"), ("devpts", "/dev/pts"),
                   ("mqueue", "/dev/mqueue"), ("tmpfs", "/dev/shm")}  # nosec B108 # container paths
# The engine's own nodes: the six it binds, and the pty multiplexer and console it makes per container.
ENGINE_DEVICES = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/ptmx",
                  "/dev/console"}
_DROPPED_OPTIONS = {"tmpcopyup", "defaults", "rprivate", "private", "rslave", "slave", "rshared", "shared",
                    "runbindable", "unbindable"}
_IPC_SYSCTLS = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}


class BundleError(StockadeError):
    """``config.json`` is missing, malformed, or asks for what this runtime cannot give."""


@dataclass
class Translated:
    """A bundle as the engine will run it, and what only the runtime front end handles."""

    spec: Spec
    rootfs: str
    hooks: dict[str, list[Hook]]  # prestart, createRuntime, poststart, poststop
    cgroups_path: str
    annotations: dict[str, str]
    seccomp: dict[str, Any] | None  # linux.seccomp as given
    capabilities_given: bool
    privileged: bool
    oom_score_adj: int | None = None
    notes: list[tuple[str, str]] = field(default_factory=list)  # (log level, message)


# --- typed field access ---------------------------------------------------------------------------
def _obj(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BundleError(f"config.json: {where} must be an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BundleError(f"config.json: {where} must be an array")
    return value


def _objects(value: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The objects of the array at ``where``, each with its own place (``mounts[3]``)."""
    for i, item in enumerate(_list(value, where)):
        yield f"{where}[{i}]", _obj(item, f"{where}[{i}]")


def _str(value: Any, where: str, *, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or "\0" in value:
        raise BundleError(f"config.json: {where} must be a string")
    return value


def _strs(value: Any, where: str) -> list[str]:
    return [_str(v, f"{where}[{i}]", required=True) for i, v in enumerate(_list(value, where))]


def _int(value: Any, where: str, *, low: int = -(2**63), high: int = UINT64_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BundleError(f"config.json: {where} must be an integer between {low} and {high}")
    return value


def _bool(value: Any, where: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BundleError(f"config.json: {where} must be true or false")
    return value


def _abs(value: Any, where: str) -> str:
    path = _str(value, where, required=True)
    if not path.startswith("/"):
        raise BundleError(f"config.json: {where} must be an absolute path, found {path!r}")
    return posixpath.normpath(path)


# --- reading --------------------------------------------------------------------------------------
def load(bundle: str) -> dict[str, Any]:
    """``<bundle>/config.json`` parsed, with its version checked (major version 1 only)."""
    path = os.path.join(bundle, "config.json")
    _, doc = load_json(path, MAX_CONFIG, what=path, error=BundleError)
    if not isinstance(doc, dict):
        raise BundleError(f"{path}: the configuration must be a JSON object")
    version = _str(doc.get("ociVersion"), "ociVersion", required=True)
    if version.split(".")[0] != "1":
        raise BundleError(f"{path}: ociVersion {version!r} is not supported (this runtime implements 1.x)")
    return doc


# --- process --------------------------------------------------------------------------------------
def _capabilities(doc: Any, notes: list[tuple[str, str]]) -> CapabilitySets | None:
    if doc is None:
        return None
    caps = _obj(doc, "process.capabilities")
    sets = {}
    for name in ("bounding", "effective", "permitted", "inheritable", "ambient"):
        known = []
        for cap in _strs(caps.get(name), f"process.capabilities.{name}"):
            if cap in NUMBERS:
                known.append(cap)
            else:
                notes.append(("warning", f"process.capabilities.{name}: unknown capability {cap} ignored"))
        sets[name] = known
    beyond = sorted(set(sets["effective"]) - set(sets["permitted"]))
    if beyond:
        raise BundleError(f"config.json: process.capabilities: {', '.join(beyond)} effective but not permitted "
                          "(the kernel refuses an effective capability outside the permitted set)")
    return CapabilitySets(**sets)


def _rlimits(doc: Any, notes: list[tuple[str, str]]) -> list[Rlimit]:
    out = []
    for where, rl in _objects(doc, "process.rlimits"):
        kind = _str(rl.get("type"), f"{where}.type", required=True)
        if kind not in RLIMITS:
            raise BundleError(f"config.json: {where}.type: unknown rlimit {kind}")
        soft = _int(rl.get("soft"), f"{where}.soft", low=0)
        hard = _int(rl.get("hard"), f"{where}.hard", low=0)
        soft = resource.RLIM_INFINITY if soft == UINT64_MAX else soft
        hard = resource.RLIM_INFINITY if hard == UINT64_MAX else hard
        _, host_hard = resource.getrlimit(RLIMITS[kind])
        asked = f"{_limit(soft)}:{_limit(hard)}"
        if host_hard != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or hard > host_hard):
            hard = host_hard
        if hard != resource.RLIM_INFINITY and (soft == resource.RLIM_INFINITY or soft > hard):
            soft = hard
        if f"{_limit(soft)}:{_limit(hard)}" != asked:
            notes.append(("warning", f"{kind} {asked} clamped to {soft}:{hard}: this host's hard limit is "
                                     f"{_limit(host_hard)} (raising it needs CAP_SYS_RESOURCE)"))
        out.append(Rlimit(kind, soft, hard))
    return out


def _limit(value: int) -> str:
    return "unlimited" if value == resource.RLIM_INFINITY else str(value)


def process(doc: Any, notes: list[tuple[str, str]], where: str = "process") -> tuple[Process, bool]:
    """An OCI ``process`` object as the engine's ``Process``; also whether capabilities were given."""
    proc = _obj(doc, where)
    if not proc:
        raise BundleError(f"config.json: {where} is required")
    args = _strs(proc.get("args"), f"{where}.args")
    if not args:
        raise BundleError(f"config.json: {where}.args must name the program to run")
    user = _obj(proc.get("user"), f"{where}.user")
    uid = _int(user.get("uid", 0), f"{where}.user.uid", low=0, high=2**32 - 2)
    gid = _int(user.get("gid", 0), f"{where}.user.gid", low=0, high=2**32 - 2)
    extra = [str(_int(g, f"{where}.user.additionalGids[{i}]", low=0, high=2**32 - 2))
             for i, g in enumerate(_list(user.get("additionalGids"), f"{where}.user.additionalGids"))]
    umask = user.get("umask")
    for key in ("apparmorProfile", "selinuxLabel"):
        if proc.get(key):
            notes.append(("warning", f"{where}.{key} is not applied: this runtime supports neither "
                                     "AppArmor nor SELinux"))
    caps = _capabilities(proc.get("capabilities"), notes)
    return Process(
        args=args, env=_strs(proc.get("env"), f"{where}.env"),
        cwd=_abs(proc.get("cwd", "/"), f"{where}.cwd"), user=f"{uid}:{gid}", group_add=extra,
        terminal=_bool(proc.get("terminal"), f"{where}.terminal"),
        capabilities=caps or CapabilitySets(),
        no_new_privileges=_bool(proc.get("noNewPrivileges"), f"{where}.noNewPrivileges"),
        rlimits=_rlimits(proc.get("rlimits"), notes),
        umask=0o022 if umask is None else _int(umask, f"{where}.user.umask", low=0, high=0o777),
    ), caps is not None


# --- mounts, devices, namespaces ------------------------------------------------------------------
def _mounts(doc: Any, bundle: str, notes: list[tuple[str, str]]) -> tuple[list[Mount], bool]:
    """The bundle's mounts the engine performs, and whether ``/sys`` was asked read-write."""
    out = []
    sys_rw = False
    for where, m in _objects(doc, "mounts"):
        dest = _abs(m.get("destination"), f"{where}.destination")
        kind = _str(m.get("type"), f"{where}.type")
        options = _strs(m.get("options"), f"{where}.options")
        if kind == "bind" or "bind" in options or "rbind" in options:
            source = _str(m.get("source"), f"{where}.source", required=True)
            # Resolved now, so the node policy judges the path that will really be bound.
            source = os.path.realpath(source if source.startswith("/") else os.path.join(bundle, source))
            if "bind" not in options and "rbind" not in options:
                options = ["bind", *options]
            out.append(Mount(dest, "bind", source, [o for o in options if o not in _DROPPED_OPTIONS]))
        elif (kind, dest) in STANDARD_MOUNTS:
            if kind == "sysfs" and "ro" not in options:
                sys_rw = True
            notes.append(("debug", f"{where}: {kind} at {dest} is the engine's own"))
        elif kind == "tmpfs":
            out.append(Mount(dest, "tmpfs", "tmpfs", [o for o in options if o not in _DROPPED_OPTIONS]))
        elif kind in ("cgroup", "cgroup2"):
            notes.append(("info", f"{where}: the {kind} filesystem at {dest} is not mounted (this runtime "
                                  "does not expose cgroup filesystems to containers)"))
        else:
            raise BundleError(f"config.json: {where}: a {kind or 'typeless'} mount at {dest} is not supported "
                              "(bind, tmpfs, and the standard proc, sysfs, devpts and mqueue mounts are)")
    return out, sys_rw


def _devices(doc: Any, privileged: bool) -> dict[str, str]:
    out = {}
    for where, d in _objects(doc, "linux.devices"):
        path = _abs(d.get("path"), f"{where}.path")
        kind = _str(d.get("type"), f"{where}.type", required=True)
        major = _int(d.get("major", 0), f"{where}.major", low=0, high=2**32 - 1)
        minor = _int(d.get("minor", 0), f"{where}.minor", low=0, high=2**32 - 1)
        if privileged or path in ENGINE_DEVICES:
            continue  # privileged: the host's whole /dev is bound; the standard six always are
        try:
            st = os.stat(path)
        except OSError:
            st = None
        wanted = stat.S_ISCHR if kind in ("c", "u") else stat.S_ISBLK if kind == "b" else None
        if st is None or wanted is None or not wanted(st.st_mode) or os.major(st.st_rdev) != major \
                or os.minor(st.st_rdev) != minor:
            raise BundleError(f"config.json: {where}: {path} ({kind} {major}:{minor}) has no matching device "
                              "node on this host (devices are bound from the host, never created)")
        out[path] = path
    return out


def _namespaces(doc: Any) -> tuple[list[str], dict[str, str]]:
    created: list[str] = []
    joined: dict[str, str] = {}
    for where, ns in _objects(doc, "linux.namespaces"):
        kind = _str(ns.get("type"), f"{where}.type", required=True)
        if kind not in NAMESPACES:
            raise BundleError(f"config.json: {where}.type: unknown namespace {kind!r}")
        if kind in created or kind in joined:
            raise BundleError(f"config.json: {where}: the {kind} namespace is listed twice")
        if ns.get("path"):
            joined[kind] = _abs(ns["path"], f"{where}.path")
        else:
            created.append(kind)
    if "mount" not in created:
        raise BundleError("config.json: linux.namespaces must create a mount namespace (the runtime mounts the "
                          "container's root inside it)")
    return created, joined


def _mappings(doc: Any, where: str) -> list[IDMapping]:
    return [IDMapping(_int(m.get("containerID"), f"{at}.containerID", low=0, high=2**32 - 1),
                      _int(m.get("hostID"), f"{at}.hostID", low=0, high=2**32 - 1),
                      _int(m.get("size"), f"{at}.size", low=1, high=2**32 - 1)) for at, m in _objects(doc, where)]


def _sysctl(doc: Any, owned: set[str]) -> dict[str, str]:
    out = {}
    for key, value in _obj(doc, "linux.sysctl").items():
        value = _str(value, f"linux.sysctl.{key}", required=True)
        if key.startswith("net."):
            needs = "network"
        elif key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
            needs = "ipc"
        elif key in ("kernel.hostname", "kernel.domainname"):
            needs = "uts"
        else:
            raise BundleError(f"config.json: linux.sysctl: {key} is not namespaced; setting it would change "
                              "the host")
        if needs not in owned:
            raise BundleError(f"config.json: linux.sysctl: {key} needs the container's own {needs} namespace")
        out[key] = value
    return out


def _resources(doc: Any, notes: list[tuple[str, str]]) -> Resources:
    res = _obj(doc, "linux.resources")
    memory = _obj(res.get("memory"), "linux.resources.memory")
    cpu = _obj(res.get("cpu"), "linux.resources.cpu")
    pids = _obj(res.get("pids"), "linux.resources.pids")
    out = Resources()
    limit = memory.get("limit")
    if limit is not None and _int(limit, "linux.resources.memory.limit") > 0:
        out.memory = limit
    quota = cpu.get("quota")
    if quota is not None and _int(quota, "linux.resources.cpu.quota") > 0:
        out.cpu_quota = quota
        period = cpu.get("period")
        out.cpu_period = _int(period, "linux.resources.cpu.period", low=1000, high=1_000_000) if period else None
    if pids.get("limit") is not None and _int(pids["limit"], "linux.resources.pids.limit") > 0:
        out.pids = pids["limit"]
    ignored = [f"memory.{k}" for k, v in memory.items() if k != "limit" and v not in (None, 0, -1, False)]
    ignored += [f"cpu.{k}" for k, v in cpu.items() if k not in ("quota", "period") and v not in (None, 0, "")]
    ignored += [k for k in ("blockIO", "hugepageLimits", "network", "rdma", "unified") if res.get(k)]
    if ignored:
        notes.append(("info", "linux.resources not applied by this runtime: " + ", ".join(ignored)))
    return out


def _hooks(doc: Any) -> dict[str, list[Hook]]:
    hooks = _obj(doc, "hooks")
    out: dict[str, list[Hook]] = {}
    for stage in HOOK_STAGES:
        items = []
        for where, h in _objects(hooks.get(stage), f"hooks.{stage}"):
            timeout = h.get("timeout")
            items.append(Hook(_abs(h.get("path"), f"{where}.path"), _strs(h.get("args"), f"{where}.args"),
                              _strs(h.get("env"), f"{where}.env"),
                              None if timeout is None else _int(timeout, f"{where}.timeout", low=1)))
        out[stage] = items
    return out


def host_capabilities() -> set[str]:
    """Every capability this host lets root hold: what ``--privileged`` grants (containerd asks for the
    caller's own set, which here lacks CAP_SYS_RESOURCE)."""
    bounding = current_bounding()
    return {name for name in NAMES[:last_cap() + 1] if bounding & (1 << NUMBERS[name])}


def _privileged(annotations: dict[str, str], caps: CapabilitySets | None, seccomp: Any, sys_rw: bool) -> bool:
    """podman's annotation, or what ``--privileged`` means in any engine: every capability, no seccomp
    filter and a writable ``/sys``."""
    if annotations.get(PRIVILEGED_ANNOTATION, "").upper() == "TRUE":
        return True
    held = set(caps.bounding) | set(caps.effective) if caps is not None else set()
    return caps is not None and host_capabilities() <= held and not seccomp and sys_rw


# --- the whole bundle -----------------------------------------------------------------------------
def translate(config: dict[str, Any], bundle: str) -> Translated:
    """``config.json`` (as ``load`` returned it) of the bundle at ``bundle`` (absolute)."""
    notes: list[tuple[str, str]] = []
    root = _obj(config.get("root"), "root")
    rootfs = _str(root.get("path"), "root.path", required=True)
    rootfs = posixpath.normpath(rootfs if rootfs.startswith("/") else os.path.join(bundle, rootfs))
    if not os.path.isdir(rootfs):
        raise BundleError(f"config.json: root.path {rootfs} is not a directory")
    proc, caps_given = process(config.get("process"), notes)
    linux = _obj(config.get("linux"), "linux")
    annotations = {_str(k, "annotations"): _str(v, f"annotations.{k}", required=True)
                   for k, v in _obj(config.get("annotations"), "annotations").items()}
    seccomp = linux.get("seccomp")
    if seccomp is not None:
        _obj(seccomp, "linux.seccomp")
    mounts, sys_rw = _mounts(config.get("mounts"), bundle, notes)
    privileged = _privileged(annotations, proc.capabilities if caps_given else None, seccomp, sys_rw)
    created, joined = _namespaces(linux.get("namespaces"))
    hostname = _str(config.get("hostname"), "hostname")
    if hostname and "uts" not in created:
        raise BundleError("config.json: hostname needs the container's own uts namespace")
    uid_maps = _mappings(linux.get("uidMappings"), "linux.uidMappings")
    gid_maps = _mappings(linux.get("gidMappings"), "linux.gidMappings")
    if "user" in created and not (uid_maps and gid_maps):
        raise BundleError("config.json: a new user namespace needs linux.uidMappings and linux.gidMappings")
    if (uid_maps or gid_maps) and "user" not in created:
        raise BundleError("config.json: linux.uidMappings need a new user namespace in linux.namespaces")
    owned = set(created) | set(joined)
    all_hooks = _hooks(config.get("hooks"))
    propagation = _str(linux.get("rootfsPropagation"), "linux.rootfsPropagation")
    if propagation in ("shared", "rshared"):
        notes.append(("warning", f"linux.rootfsPropagation {propagation} is not applied: mounts never "
                                 "propagate from a container back to the host"))
    for key in ("intelRdt", "personality", "mountLabel"):
        if linux.get(key):
            notes.append(("info", f"linux.{key} is not applied by this runtime"))
    if _obj(linux.get("resources"), "linux.resources").get("devices"):
        notes.append(("debug", "linux.resources.devices: no device cgroup needed, every mount but the "
                               "bound device nodes is nodev"))
    spec = Spec(
        process=proc, root=Root(path=rootfs, readonly=_bool(root.get("readonly"), "root.readonly")),
        hostname=hostname, mounts=mounts, namespaces=created, namespace_paths=joined,
        uid_mappings=uid_maps, gid_mappings=gid_maps, resources=_resources(linux.get("resources"), notes),
        masked_paths=[_abs(p, "linux.maskedPaths") for p in _strs(linux.get("maskedPaths"), "linux.maskedPaths")],
        readonly_paths=[_abs(p, "linux.readonlyPaths")
                        for p in _strs(linux.get("readonlyPaths"), "linux.readonlyPaths")],
        privileged=privileged, devices=_devices(linux.get("devices"), privileged),
        sysctl=_sysctl(linux.get("sysctl"), owned),
        hooks=Hooks(create_container=all_hooks["createContainer"], start_container=all_hooks["startContainer"]))
    oom = config.get("process", {}).get("oomScoreAdj")
    return Translated(
        spec=spec, rootfs=rootfs, hooks={s: all_hooks[s] for s in RUNTIME_HOOKS},
        cgroups_path=_str(linux.get("cgroupsPath"), "linux.cgroupsPath"), annotations=annotations,
        seccomp=seccomp, capabilities_given=caps_given, privileged=privileged,
        oom_score_adj=None if oom is None else _int(oom, "process.oomScoreAdj", low=-1000, high=1000),
        notes=notes)
