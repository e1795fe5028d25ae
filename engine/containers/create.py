"""Creating a container: from an image's configuration and the run options to a record and a spec.

``create()`` takes only plain values (``CreateOptions``): the capability names, the path of an already
compiled seccomp program, the masked paths, decided elsewhere (``hardening``, through the run pipeline
in ``stockade``). It merges them with the image's configuration the way Docker does (entrypoint and
command, environment, user, working directory, ``VOLUME``s, stop signal), prepares the container's
directory (overlay upper and work directories, ``/etc/hostname``, ``/etc/hosts``, ``/etc/resolv.conf``,
the seccomp program, volumes), and writes the runtime spec and the Docker-shaped record. Nothing runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engine.config import Paths
from engine.containers import state
from engine.containers.store import ContainerStore, write_file
from engine.errors import StockadeError
from engine.records import Record, field
from engine.runtime import idmap
from engine.spec import (NAMESPACES, CapabilitySets, IDMapping, Mount, Process, Resources, Rlimit,
                         Root, Spec)


class CreateError(StockadeError):
    """The container cannot be created as asked (Docker's exit code 125)."""

    exit_code = 125


class MountRequest(Record):
    """One ``-v``/``--mount``/``--tmpfs``: ``type`` bind, volume or tmpfs."""

    type: str
    target: str
    source: str = ""  # host path (bind), volume name ("" = anonymous), unused for tmpfs
    readonly: bool = False
    options: list[str] = field(default_factory=list)  # tmpfs: size=…, mode=…


class CreateOptions(Record):
    image: str  # the reference as the user gave it (Config.Image)
    image_id: str = ""
    image_config: dict[str, Any] = field(default_factory=dict)  # the OCI image config's "config"
    layers: list[str] = field(default_factory=list)  # unpacked layer dirs, bottom to top
    rootfs: str = ""  # --rootfs: a directory used as the root as is
    name: str | None = None
    command: list[str] = field(default_factory=list)
    entrypoint: list[str] | None = None  # None: the image's; [] (from --entrypoint ""): none
    env: list[str] = field(default_factory=list)
    user: str | None = None
    workdir: str | None = None
    hostname: str | None = None
    tty: bool = False
    interactive: bool = False
    read_only: bool = False
    mounts: list[MountRequest] = field(default_factory=list)
    volumes_from: list[str] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)  # the effective set, resolved
    cap_add: list[str] = field(default_factory=list)  # as given (for HostConfig and ambient)
    cap_drop: list[str] = field(default_factory=list)
    no_new_privileges: bool = True
    run_as_non_root: bool = False  # refuse to start when the user resolves to uid 0 (the policy's)
    security_opt: list[str] = field(default_factory=list)
    seccomp_program: str = ""  # path of a compiled BPF program; "" = unconfined
    masked_paths: list[str] = field(default_factory=list)
    readonly_paths: list[str] = field(default_factory=list)
    privileged: bool = False
    network: str = "none"
    userns: str = "host"  # host | auto (ignored when rootless: always a user namespace)
    group_add: list[str] = field(default_factory=list)
    memory: int | None = None
    pids_limit: int | None = None
    cpus: float | None = None
    ulimits: list[Rlimit] = field(default_factory=list)
    init: bool = False
    auto_remove: bool = False
    log_max_size: int = 10 * 1024 * 1024
    log_max_file: int = 3
    stop_signal: str | None = None
    stop_timeout: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    storage_driver: str = "overlay"  # overlay | copy


def _command(opts: CreateOptions) -> list[str]:
    cfg = opts.image_config
    entrypoint = list(cfg.get("Entrypoint") or []) if opts.entrypoint is None else list(opts.entrypoint)
    if opts.command:
        cmd = list(opts.command)
    elif opts.entrypoint is None:
        cmd = list(cfg.get("Cmd") or [])
    else:
        cmd = []  # a new entrypoint resets the image's CMD, as in Docker
    args = entrypoint + cmd
    if not args:
        raise CreateError("no command specified: the image has no CMD or ENTRYPOINT and none was given")
    return args


def merge_env(*layers: list[str]) -> list[str]:
    """``NAME=VALUE`` lists merged, later ones winning; a bare ``NAME`` takes the caller's value (as
    Docker's ``-e NAME``) and is skipped when the caller has none."""
    env: dict[str, str] = {}
    for item in [i for layer in layers for i in layer]:
        key, sep, value = item.partition("=")
        if not key:
            continue
        if sep:
            env[key] = value
        elif key in os.environ:  # "-e NAME" passes the caller's value, as Docker does
            env[key] = os.environ[key]
    return [f"{k}={v}" for k, v in env.items()]


def _hosts(hostname: str, host_network: bool) -> str:
    if host_network:
        try:
            with open("/etc/hosts") as f:
                return f.read()
        except OSError:
            pass
    return ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
            f"ff02::2\tip6-allrouters\n127.0.1.1\t{hostname}\n")


def _resolv_conf() -> str:
    try:
        with open("/etc/resolv.conf") as f:
            return f.read()
    except OSError:
        return ""


def overlay_available() -> bool:
    """Whether this kernel has overlayfs (else the copy driver is used, whatever the configuration)."""
    try:
        with open("/proc/filesystems") as f:
            return any(line.split()[-1:] == ["overlay"] for line in f)
    except OSError:
        return False


def _used_auto_blocks(store: ContainerStore) -> set[int]:
    used = set()
    for cid in store.ids():
        try:
            maps = store.load(cid).get("Stockade", {}).get("UidMap") or []
        except StockadeError:
            continue
        if maps and maps[0][0] == 0:
            used.add(int(maps[0][1]))
    return used


def user_mappings(paths: Paths, userns: str, store: ContainerStore) -> tuple[list[IDMapping], list[IDMapping]]:
    """The id maps: none (host), the user's subordinate ranges (rootless) or a private block (auto)."""
    if paths.rootless:
        import pwd

        uid, gid = os.getuid(), os.getgid()
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            user = str(uid)
        return (idmap.rootless_mappings(uid, idmap.subordinate(user, uid, "uid"), what="uid", user=user),
                idmap.rootless_mappings(gid, idmap.subordinate(user, uid, "gid"), what="gid", user=user))
    if userns == "auto":
        ranges_u = idmap.subordinate("root", 0, "uid") or idmap.subordinate("containers", -1, "uid")
        ranges_g = idmap.subordinate("root", 0, "gid") or idmap.subordinate("containers", -1, "gid")
        if not ranges_u or not ranges_g:
            raise CreateError("--userns=auto needs subordinate ids for root (or 'containers') in "
                              "/etc/subuid and /etc/subgid",
                              hint="e.g. echo root:1000000:1000000 >> /etc/subuid (and /etc/subgid)")
        start_u = idmap.auto_block(ranges_u, _used_auto_blocks(store))
        start_g = idmap.auto_block(ranges_g, set())
        return [IDMapping(0, start_u, idmap.AUTO_SIZE)], [IDMapping(0, start_g, idmap.AUTO_SIZE)]
    if userns not in ("", "host"):
        raise CreateError(f"--userns={userns} is not supported (use host or auto)")
    return [], []


def inherited_mounts(donor: dict[str, Any], mode: str) -> list[MountRequest]:
    """What ``--volumes-from DONOR[:MODE]`` mounts: the donor's binds and volumes (not its tmpfs),
    read-only where the donor's were unless MODE is ``rw``, all read-only with ``ro``. The policy
    gate reads the same list, so it judges the host paths a donor passes on."""
    return [MountRequest("volume" if m["Type"] == "volume" else "bind", m["Destination"],
                         m["Name"] if m["Type"] == "volume" else m["Source"],
                         readonly=(mode == "ro") or (not m["RW"] and mode != "rw"))
            for m in donor.get("Mounts") or [] if m["Type"] in ("bind", "volume")]


def _mounts(opts: CreateOptions, store: ContainerStore, paths: Paths,
            image_volumes: list[str]) -> tuple[list[Mount], list[dict[str, Any]], list[str]]:
    """Spec mounts, the record's ``Mounts`` and the anonymous volumes created for this container."""
    requests = list(opts.mounts)
    for ref in opts.volumes_from:
        donor_ref, _, mode = ref.partition(":")
        requests += inherited_mounts(store.load(store.find(donor_ref)), mode)
    targets = {os.path.normpath(r.target) for r in requests}
    for path in image_volumes:
        if os.path.normpath(path) not in targets:
            requests.append(MountRequest("volume", path))
    spec_mounts, record, anonymous = [], [], []
    seen: set[str] = set()
    for r in requests:
        target = os.path.normpath(r.target)
        if not target.startswith("/"):
            raise CreateError(f"mount target {r.target!r} must be an absolute path")
        if target in seen:
            raise CreateError(f"duplicate mount point: {target}")
        seen.add(target)
        if r.type == "tmpfs":
            opts_ = ["nosuid", "nodev", "noexec"] + (["ro"] if r.readonly else []) + r.options
            spec_mounts.append(Mount(target, "tmpfs", "tmpfs", opts_))
            record.append({"Type": "tmpfs", "Source": "", "Destination": target, "Mode": "",
                           "RW": not r.readonly, "Propagation": ""})
            continue
        if r.type == "volume":
            from engine.volumes import Volumes

            vol = Volumes(paths.root, paths).create(r.source or None)
            if vol.anonymous and not r.source:
                anonymous.append(vol.name)
            source, name = str(vol.mountpoint), vol.name
        elif r.type == "bind":
            source, name = os.path.abspath(r.source), ""
            if not os.path.exists(source):
                raise CreateError(f"bind source path does not exist: {r.source}")
        else:
            raise CreateError(f"mount type {r.type!r} is not supported (use bind, volume or tmpfs)")
        spec_mounts.append(Mount(target, "bind", source, ["rbind", "ro" if r.readonly else "rw"]))
        entry: dict[str, Any] = {"Type": r.type, "Source": source, "Destination": target,
                                 "Mode": "ro" if r.readonly else "", "RW": not r.readonly,
                                 "Propagation": "rprivate"}
        if name:
            entry.update({"Name": name, "Driver": "local"})
        record.append(entry)
    return spec_mounts, record, anonymous


def create(paths: Paths, opts: CreateOptions, *, cgroup_parent: str = "stockade") -> dict[str, Any]:
    """Create the container (state ``created``) and return its record."""
    store = ContainerStore(paths)
    if not opts.layers and not opts.rootfs:
        raise CreateError("the container has no root filesystem")
    args = _command(opts)
    cid, name = store.reserve(opts.name)
    try:
        return _create(paths, store, opts, cid, name, args, cgroup_parent)
    except BaseException:
        store.release_name(name, cid)
        remove_files(store, cid)
        raise


def remove_files(store: ContainerStore, cid: str) -> None:
    """Delete a container's directories (its upper layer may hold files only root can delete)."""
    remove_trees(store.paths, [store.dir(cid), store.rundir(cid)])


def remove_trees(paths: Paths, trees: list[Path]) -> None:
    """Delete ``trees`` (a container's directories, a volume) that containers may have written."""
    import shutil

    dirs = [d for d in trees if d.exists()]
    if paths.rootless and dirs:
        # Files the container made as its users (or a copy driver's root) belong to the user's
        # subordinate ids: delete them as root of the user's namespace, as podman unshare does.
        from engine.store.rootless import UserNamespace

        try:
            UserNamespace.for_user(paths).remove(dirs)
        except idmap.IDMapError:
            pass  # no subordinate ids: everything is the user's own, removed below
    for d in dirs:
        if d.exists():
            if paths.rootless:  # root is not held back by the modes a container left
                _make_removable(d)
            shutil.rmtree(d, ignore_errors=True)


def _make_removable(d: Path) -> None:
    # overlayfs leaves work/work with mode 000; a rootless user must restore access to delete it.
    for dirpath, dirnames, _ in os.walk(d):
        for sub in dirnames:
            p = os.path.join(dirpath, sub)
            try:
                if not os.path.islink(p):
                    os.chmod(p, 0o700)
            except OSError:
                pass


def _create(paths: Paths, store: ContainerStore, opts: CreateOptions, cid: str, name: str,
            args: list[str], cgroup_parent: str) -> dict[str, Any]:
    cfg = opts.image_config
    cdir, rdir = store.dir(cid), store.rundir(cid)
    store.runbase.mkdir(parents=True, exist_ok=True, mode=0o711)
    rdir.mkdir(mode=0o711)
    (rdir / "rootfs").mkdir(mode=0o755)
    host_network = opts.network == "host"
    if opts.network not in ("none", "host"):
        raise CreateError(f"--network {opts.network} is not supported yet (use none or host)")
    hostname = opts.hostname or (os.uname().nodename if host_network else cid[:12])

    uid_maps, gid_maps = user_mappings(paths, opts.userns, store)
    # --userns=auto (as root): the container's root is the first id of its private block.
    shift = (uid_maps[0].host_id, gid_maps[0].host_id) if uid_maps and not paths.rootless else (0, 0)
    root = Root(readonly=opts.read_only, userxattr=paths.rootless)
    if opts.rootfs:
        root.path = os.path.abspath(opts.rootfs)
    elif opts.storage_driver == "copy" or shift != (0, 0) or not overlay_available():
        root.path = str(cdir / "rootfs")
        if paths.rootless:
            # A rootless store's layers hold files of the user's subordinate ids: copy them (owners
            # kept) as root of the namespace the container will run in.
            from engine.store.rootless import UserNamespace

            UserNamespace(uid_maps, gid_maps).copy_layers([Path(p) for p in opts.layers], Path(root.path))
        else:
            from engine.containers.copyroot import copy_layers

            copy_layers([Path(p) for p in opts.layers], Path(root.path), shift=shift)
    else:
        (cdir / "upper").mkdir(mode=0o755)
        (cdir / "work").mkdir(mode=0o700)
        root.layers, root.upper, root.work = list(opts.layers), str(cdir / "upper"), str(cdir / "work")

    etc = {"/etc/hostname": cdir / "hostname", "/etc/hosts": cdir / "hosts",
           "/etc/resolv.conf": cdir / "resolv.conf"}
    write_file(etc["/etc/hostname"], f"{hostname}\n".encode())
    write_file(etc["/etc/hosts"], _hosts(hostname, host_network).encode())
    write_file(etc["/etc/resolv.conf"], _resolv_conf().encode())

    seccomp_path = ""
    if opts.seccomp_program:
        seccomp_path = str(cdir / "seccomp.bpf")
        write_file(Path(seccomp_path), Path(opts.seccomp_program).read_bytes(), mode=0o600)

    if shift != (0, 0):
        for f in etc.values():  # the container's root may edit its /etc/hosts, as elsewhere
            os.chown(f, *shift)
    image_volumes = sorted((cfg.get("Volumes") or {}).keys())
    spec_mounts, record_mounts, anonymous = _mounts(opts, store, paths, image_volumes)
    namespaces = [n for n in NAMESPACES if n != "user" or uid_maps]
    if host_network:
        namespaces.remove("network")
    caps = sorted(set(opts.capabilities))
    ambient = sorted({c for c in opts.cap_add if c != "ALL"} & set(caps)) if opts.cap_add else []
    if "ALL" in opts.cap_add:
        ambient = caps
    cpu_quota = int(opts.cpus * 100000) if opts.cpus else None
    stop_signal = opts.stop_signal or cfg.get("StopSignal") or "SIGTERM"
    spec = Spec(
        process=Process(args=args, env=merge_env(list(cfg.get("Env") or []), opts.env),
                        cwd=opts.workdir or cfg.get("WorkingDir") or "/",
                        user=opts.user if opts.user is not None else (cfg.get("User") or "0"),
                        group_add=list(opts.group_add), terminal=opts.tty,
                        capabilities=CapabilitySets(bounding=caps, effective=caps, permitted=caps,
                                                    ambient=ambient),
                        no_new_privileges=opts.no_new_privileges, rlimits=list(opts.ulimits),
                        init=opts.init, stop_signal=stop_signal, run_as_non_root=opts.run_as_non_root),
        root=root, hostname=hostname, mounts=spec_mounts, namespaces=namespaces,
        uid_mappings=uid_maps, gid_mappings=gid_maps,
        resources=Resources(memory=opts.memory, pids=opts.pids_limit, cpu_quota=cpu_quota,
                            cpu_period=100000 if cpu_quota else None),
        cgroup_parent=cgroup_parent, masked_paths=list(opts.masked_paths),
        readonly_paths=list(opts.readonly_paths), seccomp_bpf=seccomp_path,
        privileged=opts.privileged, etc_files={k: str(v) for k, v in etc.items()})
    write_file(store.spec_path(cid), spec.to_json().encode(), mode=0o600)

    doc: dict[str, Any] = {
        "Id": cid, "Name": f"/{name}", "Created": state.now(), "Path": args[0], "Args": args[1:],
        "State": state.initial(), "Image": opts.image_id, "ImageName": opts.image,
        "ResolvConfPath": str(etc["/etc/resolv.conf"]), "HostnamePath": str(etc["/etc/hostname"]),
        "HostsPath": str(etc["/etc/hosts"]), "LogPath": str(store.log_path(cid)),
        "Driver": "rootfs" if opts.rootfs else ("copy" if root.path else "overlay"), "RestartCount": 0,
        "Config": {
            "Hostname": hostname, "User": spec.process.user, "Env": spec.process.env,
            "Cmd": opts.command or (None if opts.entrypoint is not None else cfg.get("Cmd")),
            "Entrypoint": opts.entrypoint if opts.entrypoint is not None else cfg.get("Entrypoint"),
            "Image": opts.image, "WorkingDir": spec.process.cwd, "Tty": opts.tty,
            "OpenStdin": opts.interactive, "StopSignal": stop_signal, "StopTimeout": opts.stop_timeout,
            "Labels": {**(cfg.get("Labels") or {}), **opts.labels},
            "Volumes": {v: {} for v in image_volumes} or None,
        },
        "HostConfig": {
            "Privileged": opts.privileged, "ReadonlyRootfs": opts.read_only,
            "CapAdd": opts.cap_add or None, "CapDrop": opts.cap_drop or None,
            "SecurityOpt": opts.security_opt or None, "Memory": opts.memory or 0,
            "PidsLimit": opts.pids_limit, "NanoCpus": int((opts.cpus or 0) * 1e9),
            "NetworkMode": opts.network, "AutoRemove": opts.auto_remove, "Init": opts.init,
            "UsernsMode": "" if paths.rootless else opts.userns, "GroupAdd": opts.group_add or None,
            "Binds": [f"{m['Source']}:{m['Destination']}{':ro' if not m['RW'] else ''}"
                      for m in record_mounts if m["Type"] == "bind"] or None,
            "Tmpfs": {m["Destination"]: "" for m in record_mounts if m["Type"] == "tmpfs"} or None,
            "VolumesFrom": opts.volumes_from or None,
            "LogConfig": {"Type": "json-file", "Config": {"max-size": str(opts.log_max_size),
                                                          "max-file": str(opts.log_max_file)}},
            "Ulimits": [{"Name": u.type.removeprefix("RLIMIT_").lower(), "Soft": u.soft, "Hard": u.hard}
                        for u in opts.ulimits] or None,
            "CgroupParent": cgroup_parent,
        },
        "Mounts": record_mounts,
        "Stockade": {"Rootless": paths.rootless, "Monitor": None, "InitStart": None, "Cgroup": None,
                     "AnonymousVolumes": anonymous, "Capabilities": caps,
                     "NoNewPrivileges": opts.no_new_privileges, "RunAsNonRoot": opts.run_as_non_root,
                     "Seccomp": "unconfined" if not seccomp_path else "filtered",
                     "UidMap": [[m.container_id, m.host_id, m.size] for m in uid_maps],
                     "Runroot": str(rdir)},
    }
    store.save(doc)
    return doc

