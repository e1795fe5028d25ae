"""``exec``: start one more process inside a running container, confined exactly like its command.

The same stages as a launch, joining namespaces instead of creating them:

**Builder** opens ``/proc/<init>/ns/*`` (only namespaces the container does not share with the host),
forks the intermediate, adds it to the container's cgroup, and waits for the new process's pid, its
pty master (``-t``) and end-of-file (exec'd) or an error, as for a launch.

**Intermediate** joins the user namespace first (when the container has one, so it holds
capabilities over the others), becomes its root, joins the mount, UTS, IPC, network, cgroup and PID
namespaces, and forks: only a child lands in the joined PID namespace.

**Process** runs ``process.finish`` with the container's own spec: the user resolved in the image's
``/etc/passwd``, the same capability sets, no_new_privs and seccomp program as the container.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

from engine.runtime import channel, idmap, process
from engine.runtime import syscalls as sc
from engine.runtime.launcher import Started, await_exec, kill_and_reap, reap
from engine.spec import Process

if TYPE_CHECKING:
    from engine.runtime.cgroups import Cgroup

# Join order: user first (capabilities over the rest); mount last but one, pid last (affects children).
_ORDER = (("user", "user", sc.CLONE_NEWUSER), ("uts", "uts", sc.CLONE_NEWUTS),
          ("ipc", "ipc", sc.CLONE_NEWIPC), ("net", "network", sc.CLONE_NEWNET),
          ("cgroup", "cgroup", sc.CLONE_NEWCGROUP), ("mnt", "mount", sc.CLONE_NEWNS),
          ("pid", "pid", sc.CLONE_NEWPID))


def _namespace_fds(pid: int) -> list[tuple[str, int, int]]:
    """(name, fd, type) for each namespace of ``pid`` that differs from ours."""
    out = []
    try:
        for proc_name, _, nstype in _ORDER:
            theirs = os.stat(f"/proc/{pid}/ns/{proc_name}")
            ours = os.stat(f"/proc/self/ns/{proc_name}")
            if (theirs.st_dev, theirs.st_ino) != (ours.st_dev, ours.st_ino):
                out.append((proc_name, os.open(f"/proc/{pid}/ns/{proc_name}", os.O_RDONLY | os.O_CLOEXEC),
                            nstype))
    except OSError as exc:
        for _, fd, _ in out:
            os.close(fd)
        raise channel.LaunchError(f"cannot enter the container's namespaces: {exc.strerror}") from None
    return out


def join(init_pid: int, proc: Process, *, hostname: str, stdio: process.Stdio, cgroup: Cgroup | None,
         program: bytes, winsize_from: int | None = None,
         syscalls: sc.Syscalls | None = None) -> Started:
    """Start ``proc`` in the container whose init is ``init_pid``; return once it has exec'd."""
    sys_ = syscalls or sc.default()
    process.check_rlimits(proc)
    namespaces = _namespace_fds(init_pid)
    sys_.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    parent_sock, child_sock = channel.pair()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        parent_sock.close()
        _intermediate(namespaces, proc, hostname, stdio, child_sock, program, sys_)
    child_sock.close()
    for _, fd, _ in namespaces:
        os.close(fd)
    target = 0
    try:
        if cgroup is not None:
            cgroup.add(pid)
        parent_sock.send(b"go")
        target = int(channel.expect(parent_sock, b"pid:", "joining the container"))
        reap(pid)
        pid = 0
        master = await_exec(parent_sock, terminal=proc.terminal, winsize_from=winsize_from)
        return Started(pid=target, pty_master=master)
    except BaseException:
        kill_and_reap(pid, target)
        raise
    finally:
        parent_sock.close()


def _intermediate(namespaces: list[tuple[str, int, int]], proc: Process, hostname: str,
                  stdio: process.Stdio, sock: socket.socket, program: bytes,
                  sys_: sc.Syscalls) -> None:  # pragma: no cover - runs in a forked child
    code = 1
    try:
        if sock.recv(channel.MSG_SIZE) != b"go":
            os._exit(1)
        sys_.prctl(sc.PR_SET_DUMPABLE, 0)
        for name, fd, nstype in namespaces:
            sys_.setns(fd, nstype)
            if name == "user":
                idmap.become_root()
        child = os.fork()
        if child == 0:
            _process(proc, hostname, stdio, sock, program, sys_)
        sock.send(f"pid:{child}".encode())
        code = 0
    except BaseException as exc:  # noqa: BLE001 - every failure is reported to the builder
        channel.report(sock, exc)
    finally:
        os._exit(code)


def _process(proc: Process, hostname: str, stdio: process.Stdio, sock: socket.socket, program: bytes,
             sys_: sc.Syscalls) -> None:  # pragma: no cover - becomes the exec'd command
    code = 125
    try:
        process.reset_signals()
        os.chdir("/")
        code = process.finish(proc, hostname=hostname, stdio=stdio, sock=sock, sys_=sys_,
                              program=program, console=False)
    except BaseException as exc:  # noqa: BLE001 - every failure is reported to the builder
        channel.report(sock, exc)
    os._exit(code)
