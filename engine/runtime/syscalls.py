"""The raw Linux system calls the runtime needs, behind one small interface.

Everything the runtime does to the kernel goes through a ``Syscalls`` object: namespaces (unshare,
setns), mounts (mount, umount2, pivot_root), process attributes (prctl, capset, sethostname) and
seccomp. Keeping them here, as thin ctypes wrappers that raise ``OSError`` with the errno and the
path or call involved, does two things: the privileged core stays small enough to read in one sitting
(bubblewrap's lesson), and the logic that decides *what* to call can be tested without root against a
recording double (youki's shape).

Nothing here decides policy; callers pass plain numbers and paths. Only x86_64 and aarch64 are
supported (syscall numbers below), the architectures Stockade ships for.
"""

from __future__ import annotations

import ctypes
import os

# --- constants (linux/sched.h, linux/mount.h, linux/prctl.h, linux/capability.h) -------------------
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000
MNT_DETACH = 0x2

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

SECCOMP_SET_MODE_FILTER = 1
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

# open_tree(2) / move_mount(2)
OPEN_TREE_CLONE = 0x1
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_EMPTY_PATH = 0x40
AT_FDCWD = -100
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8

# openat2(2) resolve flags
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10

_SYSCALL_NUMBERS = {
    "x86_64": {"pivot_root": 155, "capget": 125, "capset": 126, "seccomp": 317, "openat2": 437,
               "close_range": 436, "open_tree": 428, "move_mount": 429,
               "mount_setattr": 442},
    "aarch64": {"pivot_root": 41, "capget": 90, "capset": 91, "seccomp": 277, "openat2": 437,
                "close_range": 436, "open_tree": 428, "move_mount": 429,
                "mount_setattr": 442},
}
ARCH = os.uname().machine
_NR = _SYSCALL_NUMBERS.get(ARCH, {})


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def _b(value: str | bytes | os.PathLike[str] | None) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    return os.fsencode(value)


class Syscalls:
    """Thin wrappers over libc and raw syscalls; each failure is an OSError naming the call."""

    def __init__(self) -> None:
        # The running interpreter already maps libc: CDLL(None) finds it without a library search.
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._libc.syscall.restype = ctypes.c_long
        self._libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                     ctypes.c_ulong, ctypes.c_char_p)
        self._libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
        self._libc.unshare.argtypes = (ctypes.c_int,)
        self._libc.setns.argtypes = (ctypes.c_int, ctypes.c_int)
        self._libc.sethostname.argtypes = (ctypes.c_char_p, ctypes.c_size_t)
        self._libc.prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                                     ctypes.c_ulong)

    @staticmethod
    def _check(result: int, call: str, path: str | bytes | os.PathLike[str] | None = None) -> int:
        if result < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"{call}: {os.strerror(err)}", None if path is None else os.fsdecode(path))
        return result

    def _syscall(self, name: str, *args: object) -> int:
        nr = _NR.get(name)
        if nr is None:
            raise OSError(38, f"{name}: not supported on {ARCH}")
        return self._check(self._libc.syscall(ctypes.c_long(nr), *args), name)

    # --- namespaces ---------------------------------------------------------------------------
    def unshare(self, flags: int) -> None:
        self._check(self._libc.unshare(flags), "unshare")

    def setns(self, fd: int, nstype: int = 0) -> None:
        self._check(self._libc.setns(fd, nstype), "setns")

    def sethostname(self, name: str) -> None:
        raw = name.encode()
        self._check(self._libc.sethostname(raw, len(raw)), "sethostname")

    # --- mounts -------------------------------------------------------------------------------
    def mount(self, source: str | None, target: str, fstype: str | None, flags: int = 0,
              data: str | None = None) -> None:
        self._check(self._libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)),
                    f"mount({fstype or ('bind' if flags & MS_BIND else 'flags')})", target)

    def umount2(self, target: str, flags: int = 0) -> None:
        self._check(self._libc.umount2(_b(target), flags), "umount2", target)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        nr = _NR["pivot_root"]
        self._check(self._libc.syscall(ctypes.c_long(nr), ctypes.c_char_p(_b(new_root)),
                                       ctypes.c_char_p(_b(put_old))), "pivot_root", new_root)

    def open_tree(self, path: str, *, recursive: bool) -> int:
        """A detached copy of the mount at ``path`` (a bind mount not yet attached anywhere).

        Unlike a path, a detached tree can be attached after pivot_root, when the mount it was
        copied from is no longer in the namespace."""
        flags = OPEN_TREE_CLONE | os.O_CLOEXEC | (AT_RECURSIVE if recursive else 0)
        nr = _NR["open_tree"]
        return self._check(self._libc.syscall(ctypes.c_long(nr), ctypes.c_int(AT_FDCWD),
                                              ctypes.c_char_p(_b(path)), ctypes.c_uint(flags)),
                           "open_tree", path)

    def clone_tree(self, tree_fd: int) -> int:
        """A detached copy of the mount ``tree_fd`` refers to (``open_tree`` on the fd itself): the
        copy is of that very mount, whatever a path to it would now resolve to."""
        nr = _NR["open_tree"]
        return self._check(self._libc.syscall(ctypes.c_long(nr), ctypes.c_int(tree_fd), ctypes.c_char_p(b""),
                                              ctypes.c_uint(OPEN_TREE_CLONE | os.O_CLOEXEC | AT_EMPTY_PATH)),
                           "open_tree")

    def mount_setattr(self, tree_fd: int, attr_set: int) -> None:
        """Add MOUNT_ATTR_* flags to a detached tree and every mount below it (a recursive
        read-only bind really is read-only, submounts included)."""
        attr = _MountAttr(attr_set, 0, 0, 0)
        nr = _NR["mount_setattr"]
        self._check(self._libc.syscall(ctypes.c_long(nr), ctypes.c_int(tree_fd), ctypes.c_char_p(b""),
                                       ctypes.c_uint(AT_EMPTY_PATH | AT_RECURSIVE), ctypes.byref(attr),
                                       ctypes.c_size_t(ctypes.sizeof(attr))), "mount_setattr")

    def move_mount(self, tree_fd: int, target: str, to_fd: int | None = None) -> None:
        """Attach a detached tree (from ``open_tree``) at ``target``, or on the directory ``to_fd``
        already resolved (then ``target`` only names it in an error)."""
        nr = _NR["move_mount"]
        if to_fd is None:
            dest, path, flags = AT_FDCWD, _b(target), MOVE_MOUNT_F_EMPTY_PATH
        else:
            dest, path, flags = to_fd, b"", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH
        self._check(self._libc.syscall(ctypes.c_long(nr), ctypes.c_int(tree_fd), ctypes.c_char_p(b""),
                                       ctypes.c_int(dest), ctypes.c_char_p(path), ctypes.c_uint(flags)),
                    "move_mount", target)

    def openat2(self, dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
        """openat2(2): open ``path`` under ``dirfd`` with RESOLVE_* confinement; returns the fd."""
        how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
        nr = _NR["openat2"]
        return self._check(self._libc.syscall(ctypes.c_long(nr), ctypes.c_int(dirfd),
                                              ctypes.c_char_p(_b(path)), ctypes.byref(how),
                                              ctypes.c_size_t(ctypes.sizeof(how))), "openat2", path)

    # --- process attributes -------------------------------------------------------------------
    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        return self._check(self._libc.prctl(option, arg2, arg3, arg4, arg5), f"prctl({option})")

    def set_process_title(self, title: str) -> None:
        """What ``ps`` shows for this process: overwrite the argument area in place (it held the host
        command line that started us), blank the host environment, and set the command name."""
        with open("/proc/self/stat", "rb") as f:
            data = f.read()
        fields = data[data.rfind(b")") + 2:].split()
        # arg_start, arg_end, env_start, env_end are fields 48 to 51 of /proc/PID/stat.
        start, end, env_start, env_end = (int(x) for x in fields[45:49])
        ctypes.memset(env_start, 0, env_end - env_start)
        raw = title.encode()[:max(0, end - start - 1)]
        ctypes.memset(start, 0, end - start)
        ctypes.memmove(start, raw, len(raw))
        name = ctypes.create_string_buffer(title.encode()[:15])
        self._check(self._libc.prctl(PR_SET_NAME, ctypes.addressof(name), 0, 0, 0), "prctl(PR_SET_NAME)")

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        """Set the three capability sets of the calling thread (64-bit masks, version 3 ABI)."""
        header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
        data = (_CapData * 2)()
        for i in range(2):
            shift = 32 * i
            data[i].effective = (effective >> shift) & 0xFFFFFFFF
            data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
            data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
        nr = _NR["capset"]
        self._check(self._libc.syscall(ctypes.c_long(nr), ctypes.byref(header), ctypes.byref(data)),
                    "capset")

    def seccomp_load(self, program: bytes) -> None:
        """Install a classic-BPF seccomp filter (``program`` is struct sock_filter[] as bytes)."""
        if len(program) % 8 or not program:
            raise ValueError("a seccomp program is a non-empty array of 8-byte instructions")
        buf = ctypes.create_string_buffer(program, len(program))
        prog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p).value)
        nr = _NR["seccomp"]
        self._check(self._libc.syscall(ctypes.c_long(nr), ctypes.c_uint(SECCOMP_SET_MODE_FILTER),
                                       ctypes.c_uint(0), ctypes.byref(prog)), "seccomp")

    def close_range(self, first: int, last: int) -> None:
        nr = _NR["close_range"]
        self._check(self._libc.syscall(ctypes.c_long(nr), ctypes.c_uint(first), ctypes.c_uint(last),
                                       ctypes.c_uint(0)), "close_range")


_default: Syscalls | None = None


def default() -> Syscalls:
    """The process-wide real implementation (created on first use)."""
    global _default
    if _default is None:
        _default = Syscalls()
    return _default
