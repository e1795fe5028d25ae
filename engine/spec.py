"""The runtime specification of one container: everything the runtime needs, as plain data.

Modelled on the OCI runtime spec (``config.json``): the same parts (process, root, hostname, mounts,
namespaces, id mappings, resources, masked and read-only paths) under the same names where the OCI
spec has one. Stockade differs where its engine does more than a bundle runtime:

* ``root`` names the image's unpacked layers and a per-container upper directory, not a prepared
  directory: the runtime mounts the overlay itself, inside the container's mount namespace, so a
  crashed container never leaves a mount behind on the host;
* ``process.user`` is the user *as the image or ``-u`` names it* (``app``, ``1000:1000``): it is
  resolved inside the container against the image's own ``/etc/passwd`` and ``/etc/group``, after
  pivot_root, where a hostile symlink can only point back into the container;
* ``seccomp_bpf`` is the path of an already compiled filter: compiling and caching belong to
  ``hardening``, the runtime only loads the program;
* ``namespaces`` are the namespaces the container *creates*; ``namespace_paths`` the ones it *joins*
  (OCI ``linux.namespaces[].path``: a pod's network namespace, another container's IPC);
* ``hooks`` holds only the OCI hooks that run inside the container's namespaces (``createContainer``
  before pivot_root, ``startContainer`` just before exec); the hooks that run in the runtime's own
  namespaces (``prestart``, ``createRuntime``, ``poststart``, ``poststop``) belong to the caller.

A spec is saved with the container (``config.json`` in its state directory) and read back by
``start`` and ``exec``, so a restarted container gets exactly the hardening it was created with.
"""

from __future__ import annotations

import json
from typing import Any

from engine.records import Record, asdict, field

# Namespace names as in the OCI spec (linux.namespaces[].type).
NAMESPACES = ("user", "pid", "network", "ipc", "uts", "mount", "cgroup")


class CapabilitySets(Record):
    """The five capability sets of the container process, as ``CAP_*`` names."""

    bounding: list[str] = field(default_factory=list)
    effective: list[str] = field(default_factory=list)
    permitted: list[str] = field(default_factory=list)
    inheritable: list[str] = field(default_factory=list)
    ambient: list[str] = field(default_factory=list)


class Rlimit(Record):
    type: str  # RLIMIT_NOFILE, ...
    soft: int
    hard: int


class Process(Record):
    args: list[str]
    env: list[str] = field(default_factory=list)
    cwd: str = "/"
    user: str = "0"  # name|uid[:group|gid], resolved inside the container
    group_add: list[str] = field(default_factory=list)  # extra groups, names or gids
    terminal: bool = False
    capabilities: CapabilitySets = field(default_factory=CapabilitySets)
    no_new_privileges: bool = True
    rlimits: list[Rlimit] = field(default_factory=list)
    init: bool = False  # a minimal init is PID 1 and the command its child
    stop_signal: str = "SIGTERM"
    run_as_non_root: bool = False  # refuse to start if ``user`` resolves to uid 0 (a policy's runAsNonRoot)
    umask: int = 0o022  # OCI process.user.umask


class Mount(Record):
    destination: str
    type: str  # bind | tmpfs
    source: str = ""
    options: list[str] = field(default_factory=list)  # ro, rw, nosuid, noexec, size=…, mode=…


class Root(Record):
    """The root filesystem: overlay over ``layers`` (bottom to top) or the directory ``path``."""

    layers: list[str] = field(default_factory=list)
    upper: str = ""
    work: str = ""
    path: str = ""  # a directory used as the root as is (--rootfs, or the copy driver's result)
    readonly: bool = False
    userxattr: bool = False  # overlay in a user namespace stores whiteouts in user.* xattrs


class IDMapping(Record):
    container_id: int
    host_id: int
    size: int


class Resources(Record):
    memory: int | None = None  # bytes
    pids: int | None = None
    cpu_quota: int | None = None  # microseconds per period
    cpu_period: int | None = None


class Hook(Record):
    """One OCI hook: a program run with the container's state as JSON on its stdin."""

    path: str
    args: list[str] = field(default_factory=list)  # argv, including argv[0]; empty: [path]
    env: list[str] = field(default_factory=list)
    timeout: int | None = None  # seconds


class Hooks(Record):
    """The OCI hooks run inside the container's namespaces, by its init (see the module docstring)."""

    create_container: list[Hook] = field(default_factory=list)  # path resolved on the host
    start_container: list[Hook] = field(default_factory=list)  # path resolved in the container


class Spec(Record):
    process: Process
    root: Root
    hostname: str = ""
    mounts: list[Mount] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=lambda: list(NAMESPACES))
    namespace_paths: dict[str, str] = field(default_factory=dict)  # type -> namespace file to join
    uid_mappings: list[IDMapping] = field(default_factory=list)
    gid_mappings: list[IDMapping] = field(default_factory=list)
    resources: Resources = field(default_factory=Resources)
    cgroup_parent: str = "stockade"
    masked_paths: list[str] = field(default_factory=list)
    readonly_paths: list[str] = field(default_factory=list)
    seccomp_bpf: str = ""  # compiled filter to load last before exec; "" = unconfined
    privileged: bool = False
    etc_files: dict[str, str] = field(default_factory=dict)  # /etc/hosts etc. -> host file to bind
    devices: dict[str, str] = field(default_factory=dict)  # container path -> host device node to bind
    sysctl: dict[str, str] = field(default_factory=dict)  # namespaced kernel parameters (net.*, kernel.shm*)
    hooks: Hooks = field(default_factory=Hooks)

    @property
    def user_namespace(self) -> bool:
        return "user" in self.namespaces

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))  # compact: the C encoder

    @classmethod
    def from_json(cls, text: str) -> "Spec":
        return _build(cls, json.loads(text))


def _build(cls: type[Record], data: dict[str, Any]) -> Any:
    """Rebuild a record tree from its ``to_json`` form (unknown keys are ignored, missing ones take
    their defaults). A field annotated with one of this module's records, or a list of them, is
    rebuilt as such."""
    annotations = cls.__annotations__
    kwargs = {}
    for f in cls.__record_fields__:
        if f.name not in data:
            continue
        value, annotation = data[f.name], annotations[f.name]
        if annotation in _RECORDS:
            value = _build(_RECORDS[annotation], value)
        elif annotation.startswith("list[") and annotation[5:-1] in _RECORDS:
            value = [_build(_RECORDS[annotation[5:-1]], v) for v in value]
        kwargs[f.name] = value
    return cls(**kwargs)


_RECORDS: dict[str, type[Record]] = {c.__name__: c for c in (CapabilitySets, Rlimit, Process, Mount, Root,
                                                               IDMapping, Resources, Hook, Hooks, Spec)}
