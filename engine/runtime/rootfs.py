"""The container's filesystem: which mounts, in which order, and the small executor that makes them.

``plan()`` turns a spec into a list of operations (pure data, tested without root); ``Executor.run()``
performs them with raw syscalls inside the container's new mount namespace. The order matters:

*host side* (before pivot_root): make every mount a slave so nothing propagates back to the host,
mount the root (overlay over the image layers with the container's upper directory, or a bind of a
plain directory), /proc and a read-only /sys on the root's own (never symlinked) directories, and
clone (``open_tree``) every host file or directory that will be bind-mounted (volumes, ``/etc/hosts``,
device nodes) into a detached mount. Then ``pivot_root`` and detach the old root.

*container side* (after pivot_root): every target path is now resolved inside the container's root,
so a symlink planted in an image (``/etc/hosts -> /../../host/file``) can only point back into the
container. A private /dev, devpts, shm, mqueue, the user's mounts (the detached clones attached with
``move_mount``), the spec's namespaced sysctls (while ``/proc/sys`` is still writable), then runc's
masked and read-only paths, and last the root itself made read-only when asked. A caller that must act
between the two sides (OCI ``createContainer`` hooks) gives the executor ``before_pivot``.

Device nodes: /dev is a ``nodev`` tmpfs and each standard device is a read-only bind of the host's
node. Every other mount is ``nodev`` too, so a device node the container makes with CAP_MKNOD (or one
shipped in an image or a volume) cannot be opened: this holds on cgroup v1 and v2 alike, without a
device cgroup. The read-only bind keeps the container from chmod-ing the host's /dev/null.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from typing import Callable

from engine.errors import StockadeError
from engine.records import Record
from engine.runtime import confined
from engine.runtime import syscalls as sc
from engine.spec import Mount, Spec

# The devices every container gets (runc's default set, plus /dev/tty).
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_SYMLINKS = (("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
                ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"),
                ("pts/ptmx", "/dev/ptmx"))
_PAGE_LIMIT = 4000  # mount(2) copies at most one page of options
SYSCTL_KEY = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$")  # dots only between names: no "..", no "/"

_FLAG_OPTIONS = {
    "ro": (sc.MS_RDONLY, False), "rw": (sc.MS_RDONLY, True),
    "nosuid": (sc.MS_NOSUID, False), "suid": (sc.MS_NOSUID, True),
    "nodev": (sc.MS_NODEV, False), "dev": (sc.MS_NODEV, True),
    "noexec": (sc.MS_NOEXEC, False), "exec": (sc.MS_NOEXEC, True),
    "noatime": (sc.MS_NOATIME, False), "relatime": (sc.MS_RELATIME, False),
    "strictatime": (sc.MS_STRICTATIME, False), "nodiratime": (sc.MS_NODIRATIME, False),
    "bind": (sc.MS_BIND, False), "rbind": (sc.MS_BIND | sc.MS_REC, False),
}
# statvfs f_flag bits a bind remount must keep (in a user namespace they are locked).
_LOCKED = ((os.ST_RDONLY, sc.MS_RDONLY), (os.ST_NOSUID, sc.MS_NOSUID), (os.ST_NODEV, sc.MS_NODEV),
           (os.ST_NOEXEC, sc.MS_NOEXEC), (os.ST_NOATIME, sc.MS_NOATIME),
           (os.ST_NODIRATIME, sc.MS_NODIRATIME), (os.ST_RELATIME, sc.MS_RELATIME))


_ATTRS = ((sc.MS_RDONLY, sc.MOUNT_ATTR_RDONLY), (sc.MS_NOSUID, sc.MOUNT_ATTR_NOSUID),
          (sc.MS_NODEV, sc.MOUNT_ATTR_NODEV), (sc.MS_NOEXEC, sc.MOUNT_ATTR_NOEXEC))


class RootfsError(StockadeError):
    """The container's filesystem cannot be set up as asked."""

    exit_code = 125


def parse_options(options: list[str]) -> tuple[int, str]:
    """Mount options -> (MS_* flags, comma-joined filesystem data such as ``size=64m,mode=1777``)."""
    flags = 0
    data = []
    for opt in options:
        if opt in _FLAG_OPTIONS:
            bit, clear = _FLAG_OPTIONS[opt]
            flags = (flags & ~bit) if clear else (flags | bit)
        elif opt in ("private", "rprivate", "slave", "rslave", "shared", "rshared", "z", "Z"):
            continue  # propagation is always private to the container; SELinux labels do not apply
        else:
            data.append(opt)
    return flags, ",".join(data)


# --- operations -----------------------------------------------------------------------------------
class MakeSlave(Record, frozen=True):
    """Stop mounts propagating from the container's namespace back to the host."""


class Overlay(Record, frozen=True):
    target: str
    lower: list[str]  # top first, as overlayfs wants them
    upper: str
    work: str
    userxattr: bool = False
    flags: int = sc.MS_NODEV


class BindRoot(Record, frozen=True):
    source: str
    target: str


class OpenSource(Record, frozen=True):
    """Clone the mount at a host path now, to attach it after pivot_root."""

    key: str
    path: str
    recursive: bool = True


class Pivot(Record, frozen=True):
    root: str


class MountFs(Record, frozen=True):
    fstype: str
    target: str
    flags: int
    data: str = ""
    fallback_key: str = ""  # if the mount is refused (rootless), bind this pre-opened source instead
    fallback_data: str | None = None  # or retry with these options (devpts without gid=)
    mode: int = 0o755


class BindFd(Record, frozen=True):
    """Attach a tree cloned by OpenSource at ``target``, then apply ``flags`` (ro, nosuid, ...)."""

    key: str
    target: str
    flags: int = 0


class Symlink(Record, frozen=True):
    target: str
    link: str


class Mask(Record, frozen=True):
    path: str


class ReadOnly(Record, frozen=True):
    path: str


class RemountRoot(Record, frozen=True):
    flags: int


class Sysctl(Record, frozen=True):
    """Write a namespaced kernel parameter (``net.ipv4.ip_forward``) under the container's /proc/sys."""

    key: str
    value: str


Op = (MakeSlave | Overlay | BindRoot | OpenSource | Pivot | MountFs | BindFd | Symlink | Mask | ReadOnly
      | RemountRoot | Sysctl)


class Plan:
    """The operations, in order."""

    def __init__(self, ops: list[Op] | None = None) -> None:
        self.ops: list[Op] = list(ops or [])

    def add(self, op: Op) -> None:
        self.ops.append(op)


def _depth(path: str) -> int:
    return len([p for p in os.path.normpath(path).split("/") if p])


def plan(spec: Spec, mountpoint: str, *, host_network: bool) -> Plan:
    """The mounts for ``spec`` with the root mounted at ``mountpoint`` (an empty host directory)."""
    p = Plan()
    p.add(MakeSlave())
    privileged = spec.privileged
    root = spec.root
    if not root.layers and not root.path:
        raise RootfsError("the container has no root filesystem (no image layers and no --rootfs)")
    if privileged:
        p.add(OpenSource("dev", "/dev"))
    else:
        for dev in DEVICES:
            p.add(OpenSource(f"dev:{dev}", f"/dev/{dev}", recursive=False))
    if spec.user_namespace:
        p.add(OpenSource("sys", "/sys"))
    user_mounts = sorted(spec.mounts, key=lambda m: _depth(m.destination))
    for i, m in enumerate(user_mounts):
        if m.type == "bind":
            flags, _ = parse_options(m.options)
            p.add(OpenSource(f"mount:{i}", m.source,
                             recursive=bool(flags & sc.MS_REC) or "bind" not in m.options))
    for dest, src in sorted(spec.etc_files.items()):
        p.add(OpenSource(f"etc:{dest}", src, recursive=False))
    if not privileged:
        for dest, src in sorted(spec.devices.items()):
            p.add(OpenSource(f"device:{dest}", src, recursive=False))
    # The root is mounted after the clones above, so no clone of a host directory contains it.
    root = spec.root
    if root.layers:
        p.add(Overlay(mountpoint, list(reversed(root.layers)), root.upper, root.work, root.userxattr))
    elif root.path:
        p.add(BindRoot(root.path, mountpoint))
    else:
        raise RootfsError("the container has no root filesystem (no image layers and no --rootfs)")
    nosuid_noexec_nodev = sc.MS_NOSUID | sc.MS_NOEXEC | sc.MS_NODEV
    # proc and sysfs before the pivot: in a user namespace the kernel allows a fresh proc or sysfs
    # only while the host's is still visible in the mount namespace (mount_too_revealing).
    p.add(MountFs("proc", "/proc", nosuid_noexec_nodev))
    sys_flags = nosuid_noexec_nodev | (0 if privileged else sc.MS_RDONLY)
    # A fresh sysfs needs a network namespace the container owns; with the host's network (or in
    # a user namespace that does not own it) bind the host's /sys read-only instead, as runc does.
    p.add(MountFs("sysfs", "/sys", sys_flags, fallback_key="sys" if spec.user_namespace else ""))
    p.add(Pivot(mountpoint))

    if privileged:
        p.add(BindFd("dev", "/dev", 0))
    else:
        p.add(MountFs("tmpfs", "/dev", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_STRICTATIME,
                      "mode=755,size=65536k"))
        for dev in DEVICES:
            p.add(BindFd(f"dev:{dev}", f"/dev/{dev}", sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NOEXEC))
        for dest in sorted(spec.devices):
            p.add(BindFd(f"device:{dest}", dest, sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NOEXEC))
        for target, link in DEV_SYMLINKS:
            p.add(Symlink(target, link))
        p.add(MountFs("devpts", "/dev/pts", sc.MS_NOSUID | sc.MS_NOEXEC,
                      "newinstance,ptmxmode=0666,mode=0620,gid=5",
                      fallback_data="newinstance,ptmxmode=0666,mode=0620"))
    p.add(MountFs("tmpfs", "/dev/shm",  # nosec B108 # the container's own /dev/shm, a fresh tmpfs
                  nosuid_noexec_nodev, "mode=1777,size=65536k"))
    p.add(MountFs("mqueue", "/dev/mqueue", nosuid_noexec_nodev))

    for i, m in enumerate(user_mounts):
        flags, data = parse_options(m.options)
        if m.type == "bind":
            p.add(BindFd(f"mount:{i}", m.destination,
                         (flags & ~(sc.MS_BIND | sc.MS_REC)) | sc.MS_NODEV | sc.MS_NOSUID))
        elif m.type == "tmpfs":
            p.add(MountFs("tmpfs", m.destination, flags | sc.MS_NODEV, data, mode=0o1777))
        else:
            raise RootfsError(f"mount type {m.type!r} at {m.destination} is not supported "
                              f"(use bind, volume or tmpfs)")
    for dest in sorted(spec.etc_files):
        p.add(BindFd(f"etc:{dest}", dest, sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC))
    for key, value in sorted(spec.sysctl.items()):
        p.add(Sysctl(key, value))
    if not privileged:
        for path in spec.masked_paths:
            p.add(Mask(path))
        for path in spec.readonly_paths:
            p.add(ReadOnly(path))
    if root.readonly:
        p.add(RemountRoot(sc.MS_RDONLY | sc.MS_NODEV))
    return p


# --- the executor (the privileged core) -------------------------------------------------------------
def _locked_flags(path: str) -> int:
    try:
        f_flag = os.statvfs(path).f_flag
    except OSError:
        return 0
    return sum(ms for st, ms in _LOCKED if f_flag & st)


def _make_target(sys_: sc.Syscalls, root: str, target: str, *, file: bool, mode: int = 0o755) -> None:
    """Create a mount target inside the (already pivoted) root: a directory, or an empty file."""
    path = os.path.join(root, target.lstrip("/"))
    if file:
        # A symlink (the image's /etc/resolv.conf -> ../run/...) is followed, as Docker does: after
        # pivot_root it can only lead somewhere inside the container.
        real = os.path.realpath(path)
        if os.path.lexists(real):
            return
        os.makedirs(os.path.dirname(real) or "/", exist_ok=True)
        fd = os.open(real, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        os.close(fd)
    else:
        os.close(_target_dir(sys_, root, target, mode=mode))


def _target_dir(sys_: sc.Syscalls, root: str, target: str, mode: int = 0o755) -> int:
    try:
        return confined.open_dir(sys_, root, target, mode=mode)
    except OSError as exc:
        raise RootfsError(f"cannot make the mount point {target} inside the container: {exc.strerror} "
                          "(a symlink there must lead to a directory inside the root)") from None


def _real_dir(path: str) -> None:
    """/proc, /sys and /dev must be real directories of the image, never symlinks."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        os.makedirs(path, mode=0o755, exist_ok=True)
        return
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise RootfsError(f"{path} in the image is not a directory; refusing to mount over it")


class Executor:
    """Performs a plan with real syscalls, in the container's init before exec.

    After the pivot every path is the container's; ``root`` is "/" then. Tests give another root
    (and a recording ``Syscalls``) to run a plan against a scratch directory without privileges.
    """

    def __init__(self, syscalls: sc.Syscalls, root: str = "/",
                 before_pivot: Callable[[], None] | None = None) -> None:
        self.sc = syscalls
        self.root = root
        self.prefix = root  # where container paths are: under the mount point until the pivot
        self.fds: dict[str, int] = {}
        self.before_pivot = before_pivot

    def _p(self, path: str) -> str:
        return os.path.join(self.prefix, path.lstrip("/"))

    def run(self, plan_: Plan) -> None:
        pivot = next((op for op in plan_.ops if isinstance(op, Pivot)), None)
        if pivot is not None:
            self.prefix = pivot.root
        try:
            for op in plan_.ops:
                getattr(self, f"_do_{type(op).__name__}")(op)
        finally:
            for fd in self.fds.values():
                os.close(fd)
            self.fds.clear()

    def _do_MakeSlave(self, op: MakeSlave) -> None:
        self.sc.mount(None, "/", None, sc.MS_REC | sc.MS_SLAVE)

    def _do_Overlay(self, op: Overlay) -> None:
        options = f"upperdir={op.upper},workdir={op.work}" + (",userxattr" if op.userxattr else "")
        lower = ":".join(op.lower)
        cwd = None
        if len(lower) + len(options) > _PAGE_LIMIT:
            # Long layer lists overflow mount(2)'s one page: name them relative to their common parent.
            base = os.path.commonpath(op.lower)
            lower = ":".join(os.path.relpath(x, base) for x in op.lower)
            if len(lower) + len(options) > _PAGE_LIMIT:
                raise RootfsError(f"the image has too many layers ({len(op.lower)}) to mount")
            cwd = os.getcwd()
            os.chdir(base)
        try:
            self.sc.mount("overlay", op.target, "overlay", op.flags, f"lowerdir={lower},{options}")
        except OSError as exc:
            # The usual cause is the filesystem the store is on (overlayfs itself, as in a HOME inside
            # a container, or one without the xattrs and features an upper directory needs): say so,
            # and what works there, instead of the bare errno.
            raise RootfsError(f"cannot mount overlayfs for the container's root ({exc.strerror}): the "
                              f"filesystem of {os.path.dirname(op.upper)} cannot hold an overlay upper "
                              f"directory{' in a user namespace' if op.userxattr else ''}; set "
                              f'[storage] driver = "copy" in config.toml, or move the store (--root)') from None
        finally:
            if cwd is not None:
                os.chdir(cwd)

    def _do_BindRoot(self, op: BindRoot) -> None:
        self.sc.mount(op.source, op.target, None, sc.MS_BIND | sc.MS_REC)
        self.sc.mount(None, op.target, None, sc.MS_REMOUNT | sc.MS_BIND | sc.MS_NODEV
                      | _locked_flags(op.target))

    def _do_OpenSource(self, op: OpenSource) -> None:
        try:
            self.fds[op.key] = self.sc.open_tree(op.path, recursive=op.recursive)
        except OSError as exc:
            raise RootfsError(f"cannot open mount source {op.path}: {exc.strerror}") from None

    def _do_Pivot(self, op: Pivot) -> None:
        if self.before_pivot is not None:
            self.before_pivot()
        os.chdir(op.root)
        self.sc.pivot_root(".", ".")
        # The old root is now stacked on "/": detach it so nothing of the host stays reachable.
        self.sc.umount2(".", sc.MNT_DETACH)
        os.chdir(self.root)
        self.prefix = self.root

    def _do_MountFs(self, op: MountFs) -> None:
        target = self._p(op.target)
        if op.target in ("/proc", "/sys", "/dev"):
            _real_dir(target)
        else:
            _make_target(self.sc, self.prefix, op.target, file=False, mode=op.mode)
        try:
            self.sc.mount(op.fstype, target, op.fstype, op.flags, op.data or None)
        except OSError as exc:
            if op.fallback_data is not None and exc.errno == errno.EINVAL:
                self.sc.mount(op.fstype, target, op.fstype, op.flags, op.fallback_data)
            elif op.fallback_key and exc.errno in (errno.EPERM, errno.EACCES, errno.EINVAL):
                self._attach(self.fds[op.fallback_key], target, op.flags)
            else:
                raise

    def _do_BindFd(self, op: BindFd) -> None:
        fd = self.fds[op.key]
        target = self._p(op.target)
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            _make_target(self.sc, self.prefix, op.target, file=True)
            self._attach(fd, target, op.flags)
            return
        # A directory is attached on the very directory resolved inside the root (a symlink such as
        # /var/run -> /run followed there, as Docker does), not on a path resolved again.
        dest = _target_dir(self.sc, self.prefix, op.target)
        try:
            self._attach(fd, target, op.flags, dest)
        finally:
            os.close(dest)

    def _attach(self, fd: int, target: str, flags: int, dest: int | None = None) -> None:
        attrs = sum(attr for ms, attr in _ATTRS if flags & ms)
        if attrs:
            self.sc.mount_setattr(fd, attrs)  # on the whole detached tree, submounts included
        self.sc.move_mount(fd, target, dest)

    def _do_Symlink(self, op: Symlink) -> None:
        try:
            os.symlink(op.target, self._p(op.link))
        except FileExistsError:
            pass

    def _do_Mask(self, op: Mask) -> None:
        path = self._p(op.path)
        try:
            st = os.stat(path)
        except OSError:
            return  # nothing to mask
        if stat.S_ISDIR(st.st_mode):
            self.sc.mount("tmpfs", path, "tmpfs", sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV
                          | sc.MS_NOEXEC, "size=0")
            return
        # A file is covered with a clone of the host's /dev/null we attached ourselves, never with
        # whatever the path "/dev/null" resolves to now: a volume mounted on /dev could make it a
        # symlink to /proc/sys/kernel/core_pattern, and the "mask" a writable bind of it (runc's
        # CVE-2025-31133).
        fd = self.sc.clone_tree(self.fds["dev:null"])
        try:
            self.sc.move_mount(fd, path)
        finally:
            os.close(fd)

    def _do_ReadOnly(self, op: ReadOnly) -> None:
        path = self._p(op.path)
        if not os.path.exists(path):
            return
        self.sc.mount(path, path, None, sc.MS_BIND | sc.MS_REC)
        self.sc.mount(None, path, None, sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | sc.MS_REC
                      | _locked_flags(path))

    def _do_Sysctl(self, op: Sysctl) -> None:
        if not SYSCTL_KEY.match(op.key):
            raise RootfsError(f"invalid sysctl name {op.key!r}")
        path = self._p("/proc/sys/" + op.key.replace(".", "/"))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise RootfsError(f"cannot set sysctl {op.key}: {exc.strerror}") from None
        try:
            os.write(fd, op.value.encode())
        except OSError as exc:
            raise RootfsError(f"cannot set sysctl {op.key}={op.value}: {exc.strerror}") from None
        finally:
            os.close(fd)

    def _do_RemountRoot(self, op: RemountRoot) -> None:
        self.sc.mount(None, self.root, None, sc.MS_REMOUNT | sc.MS_BIND | op.flags
                      | _locked_flags(self.root))
