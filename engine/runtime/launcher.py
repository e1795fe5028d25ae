"""Starting a container: three stages, as youki and runc do it, joined by one socket.

**Builder** (the caller: the foreground CLI or a detached monitor). Becomes a child subreaper, forks
the intermediate, puts it in the container's cgroup, writes its user-namespace maps when there is one,
and waits for the init's pid, a pty master (``-t``) and finally end-of-file on the socket, which means
the command has been exec'd (an error message instead means it has not; nothing is left running).

**Intermediate** (forked). Joins the namespaces the spec names by path (``namespace_paths``, a user
namespace first), unshares the user namespace (so every other new namespace is owned by it), waits for
its maps, then unshares mount, UTS, IPC, network, cgroup and PID namespaces and forks the init, the
first process of the new (or joined) PID namespace. It reports the init's pid and exits; the init is
re-parented to the builder, which can then wait for it like any child.

**Init** (PID 1 of the container). Arms ``PR_SET_PDEATHSIG`` against the builder, builds the root
filesystem (``rootfs``), sets the hostname and brings up ``lo``, then ``process.finish``: identity,
stdio, capabilities, no_new_privs and, last, the seccomp filter compiled earlier by the parent; exec.

**Create, then start** (OCI's split, ``LaunchConfig.gate``). The builder returns as soon as the init
is confined and waiting (``created``) rather than once it has exec'd; the init stops just before the
filter no_new_privs lets it load last, opens the gate's fifo for writing (which blocks until
``start`` opens it for reading, runc's ``exec.fifo``), runs the ``startContainer`` hooks, and execs.
It no longer dies with the builder: the builder is a short-lived ``create`` command, and the init
re-parents to whoever supervises it (containerd's shim, conmon). Hooks that belong to the runtime's
namespaces run in the builder through ``before_rootfs``, once every namespace exists and before the
init touches its mounts; ``createContainer`` hooks run in the init just before pivot_root.

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
import json
from typing import TYPE_CHECKING, Any, Callable

from engine.records import Record, field
from engine.runtime import channel, hooks, idmap, process, rootfs
from engine.runtime import syscalls as sc
from engine.errors import StockadeError
from engine.spec import Spec

if TYPE_CHECKING:  # only a container with limits has one; the cgroup code loads then
    from engine.runtime.cgroups import Cgroup

NS_FLAGS = {"mount": sc.CLONE_NEWNS, "uts": sc.CLONE_NEWUTS, "ipc": sc.CLONE_NEWIPC,
            "network": sc.CLONE_NEWNET, "cgroup": sc.CLONE_NEWCGROUP, "pid": sc.CLONE_NEWPID}
# setns order for namespaces joined by path: user first (it then owns our capabilities), pid last.
JOIN_ORDER = (("user", sc.CLONE_NEWUSER), ("uts", sc.CLONE_NEWUTS), ("ipc", sc.CLONE_NEWIPC),
              ("network", sc.CLONE_NEWNET), ("cgroup", sc.CLONE_NEWCGROUP), ("mount", sc.CLONE_NEWNS),
              ("pid", sc.CLONE_NEWPID))
_SIOCSIFFLAGS = 0x8914
_IFF_UP_LOOPBACK_RUNNING = 0x1 | 0x8 | 0x40


class Started(Record):
    pid: int  # the container's init, as the host sees it
    pty_master: int | None = None


class StartGate(Record):
    """OCI create/start: the init waits on ``fifo`` (made by the caller) before it execs."""

    fifo: str


class LaunchConfig(Record):
    spec: Spec
    mountpoint: str  # empty directory the root is mounted on (only inside the container's namespace)
    stdio: process.Stdio
    cgroup: Cgroup | None = None
    map_with_helper: bool = False  # rootless: newuidmap/newgidmap write the maps
    seccomp_program: bytes = b""
    winsize_from: int | None = None  # a terminal whose size the pty gets before the command runs
    gate: StartGate | None = None  # return once created; exec only when ``start`` opens the fifo
    before_rootfs: Callable[[int], None] | None = None  # builder, with the init's pid (OCI hooks)
    hook_state: dict[str, Any] = field(default_factory=dict)  # the OCI state the init's hooks read
    preserve_fds: int = 0  # fds 3 .. 3+N-1 of the builder are passed on to the command


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
    plan = rootfs.plan(spec, cfg.mountpoint, host_network="network" not in spec.namespaces
                       and "network" not in spec.namespace_paths)
    joined = _open_namespaces(spec.namespace_paths)
    fifo = -1
    if cfg.gate is not None:
        try:
            fifo = _open_fifo(cfg.gate.fifo)
        except BaseException:
            _close(*[fd for _, fd, _ in joined])
            raise

    def maps(sock: socket.socket, pid: int) -> None:
        if spec.user_namespace:
            channel.expect(sock, b"userns", "user namespace creation")
            idmap.write(pid, spec.uid_mappings, spec.gid_mappings, helper=cfg.map_with_helper)

    def ready(sock: socket.socket, init_pid: int) -> int | None:
        if cfg.before_rootfs is not None:
            cfg.before_rootfs(init_pid)
        sock.send(b"reparented:%d" % init_pid)
        if cfg.gate is not None:
            return await_created(sock, terminal=spec.process.terminal)
        return await_exec(sock, terminal=spec.process.terminal, winsize_from=cfg.winsize_from)

    return run_stages(lambda sock: _create_namespaces(cfg, joined, sock, sys_),
                      lambda sock: _init(cfg, plan, fifo, sock, sys_), sys_, cgroup=cfg.cgroup,
                      inherited=(*[fd for _, fd, _ in joined], fifo), before_go=maps, ready=ready,
                      what="namespace creation")


Stage = Callable[[socket.socket], None]  # runs in a child with its end of the stage socket


def run_stages(enter: Stage, stage: Stage, sys_: sc.Syscalls, *, cgroup: Cgroup | None,
               inherited: tuple[int, ...], ready: Callable[[socket.socket, int], int | None], what: str,
               before_go: Callable[[socket.socket, int], None] | None = None) -> Started:
    """The stages of a launch and of an exec, from the builder: fork the intermediate (``enter``
    puts it in the container's namespaces, then it forks the process that runs ``stage``), close the
    ``inherited`` fds it took along, put it in ``cgroup``, let ``before_go`` do what must precede its
    namespaces (the user namespace's maps), say go, take the new process's pid, reap the
    intermediate, and return once ``ready`` says that process is done (its pty master, if any). On
    any failure both are killed."""
    sys_.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    parent_sock, child_sock = channel.pair()
    try:
        pid = os.fork()
    except BaseException:
        _close(*inherited)
        parent_sock.close()
        child_sock.close()
        raise
    if pid == 0:  # pragma: no cover - runs in the child
        parent_sock.close()
        _intermediate(child_sock, enter, stage)
    child_sock.close()
    _close(*inherited)
    init_pid = 0
    try:
        if cgroup is not None:
            cgroup.add(pid)
        if before_go is not None:
            before_go(parent_sock, pid)
        parent_sock.send(b"go")
        init_pid = int(channel.expect(parent_sock, b"pid:", what))
        reap(pid)
        pid = 0
        return Started(pid=init_pid, pty_master=ready(parent_sock, init_pid))
    except BaseException:
        kill_and_reap(pid, init_pid)
        raise
    finally:
        parent_sock.close()


def _close(*fds: int) -> None:
    for fd in fds:
        if fd >= 0:
            os.close(fd)


def _open_fifo(path: str) -> int:
    try:
        return os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError as exc:
        raise channel.LaunchError(f"cannot open the start fifo {path}: {exc.strerror}") from None


def _open_namespaces(paths: dict[str, str]) -> list[tuple[str, int, int]]:
    """(type, fd, CLONE_NEW*) for each namespace to join, in ``JOIN_ORDER``; opened by the builder so a
    missing file fails before anything is forked."""
    unknown = sorted(set(paths) - {name for name, _ in JOIN_ORDER})
    if unknown:
        raise channel.LaunchError(f"unknown namespace type {unknown[0]!r}")
    out: list[tuple[str, int, int]] = []
    for name, flag in JOIN_ORDER:
        if name not in paths:
            continue
        try:
            out.append((name, os.open(paths[name], os.O_RDONLY | os.O_CLOEXEC), flag))
        except OSError as exc:
            _close(*[fd for _, fd, _ in out])
            raise channel.LaunchError(f"cannot open the {name} namespace {paths[name]}: {exc.strerror}") from None
    return out


def await_created(sock: socket.socket, *, terminal: bool) -> int | None:
    """The builder's last steps for OCI ``create``: the pty master, then ``created`` (or the error)."""
    master = channel.receive_fd(sock, b"pty", "terminal set-up") if terminal else None
    try:
        channel.expect(sock, b"created", "container set-up")
    except BaseException:
        _close(-1 if master is None else master)
        raise
    return master


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


def _intermediate(sock: socket.socket, enter: Stage, stage: Stage) -> None:  # pragma: no cover - a forked child
    """Enter the namespaces, fork the container's process (only a child lands in a new or joined PID
    namespace), report its pid to the builder and exit; or report why not."""
    code = 1
    try:
        enter(sock)
        child = os.fork()
        if child == 0:
            stage(sock)
        sock.send(f"pid:{child}".encode())
        code = 0
    except BaseException as exc:  # noqa: BLE001 - every failure is reported to the builder
        channel.report(sock, exc)
    finally:
        os._exit(code)


def _create_namespaces(cfg: LaunchConfig, joined: list[tuple[str, int, int]], sock: socket.socket,
                       sys_: sc.Syscalls) -> None:  # pragma: no cover - the intermediate
    """Join the namespaces given by path (a user namespace first), then create the user namespace and
    wait for its maps, then the others."""
    spec = cfg.spec
    for name, fd, flag in joined:
        sys_.setns(fd, flag)
        os.close(fd)
        if name == "user":
            idmap.become_root()
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


def _hook_state(cfg: LaunchConfig, pid: int, status: str) -> bytes:
    return json.dumps({**cfg.hook_state, "pid": pid, "status": status}).encode()


def _await_start(cfg: LaunchConfig, fifo: int, host_pid: int, sock: socket.socket,
                 sys_: sc.Syscalls) -> None:  # pragma: no cover - runs as the container's PID 1
    """The start gate (see the module docstring): report ``created``, wait for ``start``, run the
    ``startContainer`` hooks. A failure from here on has no builder to hear it: the init says why on
    its stderr (the container's) and exits."""
    sys_.prctl(sc.PR_SET_PDEATHSIG, 0)  # the builder (``create``) exits now; we stay
    sock.send(b"created")
    sock.close()
    try:
        fd = os.open(f"/proc/self/fd/{fifo}", os.O_WRONLY | os.O_CLOEXEC)  # blocks until ``start``
        os.write(fd, b"0")
        os.close(fd)
        os.close(fifo)
        hooks.run_all(cfg.spec.hooks.start_container, _hook_state(cfg, host_pid, "created"), "startContainer")
    except BaseException as exc:  # noqa: BLE001 - nobody else can report it
        code = exc.exit_code if isinstance(exc, channel.CommandError) else 125
        message = str(exc) if isinstance(exc, StockadeError) else f"{type(exc).__name__}: {exc}"
        try:
            os.write(2, f"stockade-runtime: {message}\n".encode())
        except OSError:
            pass
        os._exit(code)


def _init(cfg: LaunchConfig, plan: rootfs.Plan, fifo: int, sock: socket.socket,
          sys_: sc.Syscalls) -> None:  # pragma: no cover - runs as the container's PID 1
    code = 125
    try:
        spec = cfg.spec
        message = sock.recv(channel.MSG_SIZE)
        if not message.startswith(b"reparented:"):
            os._exit(1)
        host_pid = int(message[len(b"reparented:"):])
        arm_parent_death(sock, sys_)
        sys_.prctl(sc.PR_SET_DUMPABLE, 0)
        process.reset_signals()
        keep = tuple(range(3, 3 + cfg.preserve_fds))
        process.close_inherited(sock, cfg.stdio, (*keep, fifo))  # before any path of the image is used
        create_hooks = spec.hooks.create_container
        before_pivot = (lambda: hooks.run_all(create_hooks, _hook_state(cfg, host_pid, "creating"),
                                              "createContainer")) if create_hooks else None
        rootfs.Executor(sys_, before_pivot=before_pivot).run(plan)
        if spec.hostname:
            sys_.sethostname(spec.hostname)
        if "network" in spec.namespaces:
            _loopback_up()
        if cfg.gate is not None:
            code = process.finish(spec.process, hostname=spec.hostname, stdio=cfg.stdio, sock=sock,
                                  sys_=sys_, program=cfg.seccomp_program, console=True,
                                  start_gate=lambda: _await_start(cfg, fifo, host_pid, sock, sys_),
                                  keep_fds=(*keep, fifo))
        else:
            # Credential changes clear the parent-death signal: arm it again after them.
            code = process.finish(spec.process, hostname=spec.hostname, stdio=cfg.stdio, sock=sock,
                                  sys_=sys_, program=cfg.seccomp_program, console=True,
                                  after_become=lambda: arm_parent_death(sock, sys_), keep_fds=keep)
    except BaseException as exc:  # noqa: BLE001 - every failure is reported to the builder
        channel.report(sock, exc)
    os._exit(code)
