"""Starting a container: three stages, as youki and runc do it, joined by one socket.

**Builder** (the caller: the foreground CLI or a detached monitor). Becomes a child subreaper, forks
the intermediate, puts it in the container's cgroup, writes its user-namespace maps when there is one,
and waits for the init's pid, a pty master (``-t``) and finally end-of-file on the socket, which means
the command has been exec'd (an error message instead means it has not; nothing is left running).

**Intermediate** (forked). Unshares the user namespace first (so every other namespace is owned by
it), waits for its maps, then unshares mount, UTS, IPC, network, cgroup and PID namespaces and forks
the init, the first process of the new PID namespace. It reports the init's pid and exits; the init
is re-parented to the builder, which can then wait for it like any child.

**Init** (PID 1 of the container). Arms ``PR_SET_PDEATHSIG`` against the builder, builds the root
filesystem (``rootfs``), sets the hostname and brings up ``lo``, then ``process.finish``: identity,
stdio, capabilities, no_new_privs and, last, the seccomp filter compiled earlier by the parent; exec.

The stages run Python the builder already imported: nothing is loaded from the container's filesystem,
and no host path stays reachable after pivot_root.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import socket
import struct
from dataclasses import dataclass

from engine.runtime import channel, idmap, process, rootfs
from engine.runtime import syscalls as sc
from engine.runtime.cgroups import Cgroup
from engine.spec import Spec

NS_FLAGS = {"mount": sc.CLONE_NEWNS, "uts": sc.CLONE_NEWUTS, "ipc": sc.CLONE_NEWIPC,
            "network": sc.CLONE_NEWNET, "cgroup": sc.CLONE_NEWCGROUP, "pid": sc.CLONE_NEWPID}
_SIOCSIFFLAGS = 0x8914
_IFF_UP_LOOPBACK_RUNNING = 0x1 | 0x8 | 0x40


@dataclass
class Started:
    pid: int  # the container's init, as the host sees it
    pty_master: int | None = None


@dataclass
class LaunchConfig:
    spec: Spec
    mountpoint: str  # empty directory the root is mounted on (only inside the container's namespace)
    stdio: process.Stdio
    cgroup: Cgroup | None = None
    map_with_helper: bool = False  # rootless: newuidmap/newgidmap write the maps
    seccomp_program: bytes = b""
    winsize_from: int | None = None  # a terminal whose size the pty gets before the command runs


def kill_and_reap(*pids: int) -> None:
    """Kill and reap what a failed launch left (0 stands for "not started")."""
    for pid in pids:
        if not pid:
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        reap(pid)


def reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def launch(cfg: LaunchConfig, syscalls: sc.Syscalls | None = None) -> Started:
    """The builder stage: start the container described by ``cfg`` and return once it has exec'd."""
    sys_ = syscalls or sc.default()
    spec = cfg.spec
    process.check_rlimits(spec.process)
    plan = rootfs.plan(spec, cfg.mountpoint, host_network="network" not in spec.namespaces)
    sys_.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    parent_sock, child_sock = channel.pair()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        parent_sock.close()
        _intermediate(cfg, plan, child_sock, sys_)
    child_sock.close()
    init_pid = 0
    try:
        if cfg.cgroup is not None:
            cfg.cgroup.add(pid)
        if spec.user_namespace:
            channel.expect(parent_sock, b"userns", "user namespace creation")
            idmap.write(pid, spec.uid_mappings, spec.gid_mappings, helper=cfg.map_with_helper)
        parent_sock.send(b"go")
        init_pid = int(channel.expect(parent_sock, b"pid:", "namespace creation"))
        reap(pid)
        pid = 0
        parent_sock.send(b"reparented")
        master = await_exec(parent_sock, terminal=spec.process.terminal, winsize_from=cfg.winsize_from)
        return Started(pid=init_pid, pty_master=master)
    except BaseException:
        kill_and_reap(pid, init_pid)
        raise
    finally:
        parent_sock.close()


def await_exec(sock: socket.socket, *, terminal: bool, winsize_from: int | None) -> int | None:
    """The builder's last steps, for a launch and for an exec: the pty master (``-t``), sized like the
    caller's terminal before the command runs, then end-of-file (exec'd) or the reported error."""
    master = None
    if terminal:
        master = channel.receive_fd(sock, b"pty", "terminal set-up")
        if winsize_from is not None:
            process.copy_winsize(winsize_from, master)
    channel.wait_exec(sock)
    return master


def _intermediate(cfg: LaunchConfig, plan: rootfs.Plan, sock: socket.socket,
                  sys_: sc.Syscalls) -> None:  # pragma: no cover - runs in a forked child
    code = 1
    try:
        spec = cfg.spec
        if spec.user_namespace:
            sys_.unshare(sc.CLONE_NEWUSER)
            sock.send(b"userns")
        if sock.recv(channel.MSG_SIZE) != b"go":
            os._exit(1)
        if spec.user_namespace:
            idmap.become_root()
        flags = 0
        for name in spec.namespaces:
            flags |= NS_FLAGS.get(name, 0)
        sys_.unshare(flags)
        child = os.fork()
        if child == 0:
            _init(cfg, plan, sock, sys_)
        sock.send(f"pid:{child}".encode())
        code = 0
    except BaseException as exc:  # noqa: BLE001 - every failure is reported to the builder
        channel.report(sock, exc)
    finally:
        os._exit(code)


def arm_parent_death(sock: socket.socket, sys_: sc.Syscalls) -> None:
    """Die with the builder; if it died before the signal was armed, exit now."""
    sys_.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
    poller = select.poll()
    poller.register(sock, select.POLLHUP | select.POLLRDHUP)
    if poller.poll(0):
        os._exit(1)


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", _IFF_UP_LOOPBACK_RUNNING))


def _init(cfg: LaunchConfig, plan: rootfs.Plan, sock: socket.socket,
          sys_: sc.Syscalls) -> None:  # pragma: no cover - runs as the container's PID 1
    code = 125
    try:
        spec = cfg.spec
        if sock.recv(channel.MSG_SIZE) != b"reparented":
            os._exit(1)
        arm_parent_death(sock, sys_)
        sys_.prctl(sc.PR_SET_DUMPABLE, 0)
        process.reset_signals()
        rootfs.Executor(sys_).run(plan)
        if spec.hostname:
            sys_.sethostname(spec.hostname)
        if "network" in spec.namespaces:
            _loopback_up()
        # Credential changes clear the parent-death signal: arm it again after them.
        code = process.finish(spec.process, hostname=spec.hostname, stdio=cfg.stdio, sock=sock,
                              sys_=sys_, program=cfg.seccomp_program, console=True,
                              after_become=lambda: arm_parent_death(sock, sys_))
    except BaseException as exc:  # noqa: BLE001 - every failure is reported to the builder
        channel.report(sock, exc)
    os._exit(code)
