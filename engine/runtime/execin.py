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
from engine.runtime.launcher import Started, await_exec, run_stages
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
    return run_stages(lambda sock: _join_namespaces(namespaces, sock, sys_),
                      lambda sock: _process(proc, hostname, stdio, sock, program, sys_), sys_, cgroup=cgroup,
                      inherited=tuple(fd for _, fd, _ in namespaces),
                      ready=lambda sock, _: await_exec(sock, terminal=proc.terminal, winsize_from=winsize_from),
                      what="joining the container")


def _join_namespaces(namespaces: list[tuple[str, int, int]], sock: socket.socket,
                     sys_: sc.Syscalls) -> None:  # pragma: no cover - the intermediate
    """Once the builder says go: join the container's namespaces, its user namespace first."""
    if sock.recv(channel.MSG_SIZE) != b"go":
        os._exit(1)
    sys_.prctl(sc.PR_SET_DUMPABLE, 0)
    for name, fd, nstype in namespaces:
        sys_.setns(fd, nstype)
        if name == "user":
            idmap.become_root()


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
