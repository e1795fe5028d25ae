"""The last stage of both ``run`` and ``exec``: become the container's process and exec the command.

By the time ``finish()`` runs, the process is inside every namespace of the container and its root is
the container's root. What is left is the same for a new container's init and for a process joining a
running container, which is why ``exec`` gets exactly the container's hardening:

1. resolve the user in the image's own ``/etc/passwd`` and ``/etc/group``;
2. stdio: the given descriptors, or a pty from the container's own devpts whose master is sent to the
   builder (so ``tty`` inside names a real ``/dev/pts/N``);
3. environment, working directory, rlimits (never above the hard limit: they were checked by the
   builder), the umask (022 unless the spec says otherwise), every other descriptor closed (but the
   ``keep_fds`` a caller passes on, OCI's ``--preserve-fds``);
4. capabilities, identity, no_new_privs and, last, the seccomp filter (``become``);
5. exec, or with ``--init`` fork the command and stay as its init.

An OCI ``create`` stops between 4 and the filter: ``start_gate`` (see ``launcher.StartGate``) runs
once the process is confined but before the seccomp filter that no_new_privs allows to load last,
as runc waits on its exec fifo. The command is looked up first, so a missing program fails ``create``
rather than ``start``.

Every module used here is imported at the top of the file: after pivot_root an ``import`` would find
no standard library.
"""

from __future__ import annotations

import errno
import fcntl
import os
import resource
import signal
import socket
import stat
import struct
from typing import Callable

from engine.records import Record
from engine.runtime import capabilities as caps
from engine.runtime import channel, confined, identity
from engine.runtime import syscalls as sc
from engine.runtime.init import run_init
from engine.spec import Process

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RLIMITS = {"RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
           "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8,
           "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12,
           "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15}
_SHEBANG_HOPS = 5  # the command and the at most four interpreters the kernel follows (BINPRM_MAX_RECURSION)
_BINPRM_BUF = 256  # the kernel reads a "#!" line from this many leading bytes
_TIOCSCTTY = 0x540E
_TIOCGPTPEER = 0x5441
_TIOCSPTLCK = 0x40045431


class Stdio(Record):
    """What the process's fds 0, 1, 2 become. ``None`` stdin means /dev/null."""

    stdin: int | None = None
    stdout: int = 1
    stderr: int = 2


def environment(spec_env: list[str], home: str, hostname: str, terminal: bool) -> dict[str, str]:
    """The command's environment: the spec's, plus PATH, HOSTNAME, HOME and TERM when absent."""
    env: dict[str, str] = {}
    for item in spec_env:
        key, sep, value = item.partition("=")
        if key and sep:
            env[key] = value
    env.setdefault("PATH", DEFAULT_PATH)
    if hostname:
        env.setdefault("HOSTNAME", hostname)
    env.setdefault("HOME", home)
    if terminal:
        env.setdefault("TERM", "xterm")
    return env


def check_rlimits(process: Process) -> None:
    """Refuse an rlimit above the builder's hard limit: raising it needs CAP_SYS_RESOURCE, which
    even root lacks on some hosts (this one), and the child would fail after namespaces exist."""
    for rl in process.rlimits:
        if rl.type not in RLIMITS:
            raise channel.LaunchError(f"unknown rlimit {rl.type}")
        _, hard = resource.getrlimit(RLIMITS[rl.type])
        if rl.soft > rl.hard:
            raise channel.LaunchError(f"{rl.type}: soft limit {rl.soft} is above the hard limit {rl.hard}")
        if hard != resource.RLIM_INFINITY and rl.hard > hard:
            raise channel.LaunchError(f"{rl.type}: hard limit {rl.hard} is above this host's {hard}",
                                      hint="raising it needs CAP_SYS_RESOURCE")


def copy_winsize(src_fd: int, dst_fd: int) -> None:
    """Give the pty ``dst_fd`` the window size of the terminal ``src_fd`` (ignored if not a tty)."""
    try:
        import termios  # only with a terminal

        size = fcntl.ioctl(src_fd, termios.TIOCGWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
        fcntl.ioctl(dst_fd, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def caller_terminal() -> int | None:
    """The caller's terminal (stdin, else stdout), whose size a container's pty should copy."""
    return next((fd for fd in (0, 1) if os.isatty(fd)), None)


def open_pty(sock: socket.socket) -> int:
    """A pty from the current root's devpts; the master goes to the builder, the slave is returned."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, _TIOCSPTLCK, struct.pack("i", 0))
    slave = fcntl.ioctl(master, _TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
    socket.send_fds(sock, [b"pty"], [master])
    os.close(master)
    return slave


def _bind_console(slave: int, sys_: sc.Syscalls) -> None:
    path = os.readlink(f"/proc/self/fd/{slave}")
    fd = os.open("/dev/console", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    os.close(fd)
    sys_.mount(path, "/dev/console", None, sc.MS_BIND)


def become(process: Process, who: identity.Identity, sys_: sc.Syscalls, program: bytes,
           before_filter: Callable[[], None] | None = None) -> None:
    """Drop capabilities, change identity, set no_new_privs, and load seccomp: the runc order.
    ``before_filter`` runs just before a filter loaded under no_new_privs (OCI's start gate)."""
    masks = caps.CapMasks.from_spec(process.capabilities, caps.current_bounding())
    nnp = process.no_new_privileges
    # Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while we still have it.
    if program and not nnp:
        sys_.seccomp_load(program)
    caps.drop_bounding(masks.bounding, sys_, caps.last_cap())
    sys_.prctl(sc.PR_SET_KEEPCAPS, 1)
    os.setgroups(who.groups)
    os.setresgid(who.gid, who.gid, who.gid)
    os.setresuid(who.uid, who.uid, who.uid)
    sys_.prctl(sc.PR_SET_KEEPCAPS, 0)
    caps.apply_sets(masks, sys_)
    if nnp:
        sys_.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
    if before_filter is not None:
        before_filter()
    if program and nnp:
        sys_.seccomp_load(program)


def _not_found(name: str) -> channel.CommandError:
    where = "no such file or directory" if "/" in name else "executable file not found in $PATH"
    return channel.CommandError(f'exec: "{name}": {where}', 127)


def find_command(name: str, env: dict[str, str]) -> str:
    """The file ``exec`` would run for ``name`` (``$PATH`` searched as execvp does), or CommandError."""
    if not name:
        raise _not_found(name)
    candidates = [name] if "/" in name else [os.path.join(d or ".", name)
                                             for d in env.get("PATH", DEFAULT_PATH).split(":")]
    denied = None
    for path in candidates:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and os.access(path, os.X_OK):
            return path
        denied = path
    if denied is not None:
        raise channel.CommandError(f'exec: "{name}": permission denied', 126)
    raise _not_found(name)


def _file_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


# This interpreter: the stages are forks of the builder, so until it execs, the container's init (or
# an exec'd process) is this very file of the host, on a host mount. Taken at import, on the host.
RUNTIME_EXE = _file_id("/proc/self/exe")


def refuse_runtime_executable(name: str, env: dict[str, str]) -> None:
    """Refuse a command that would run this runtime's own host executable inside the container.

    ``/proc/self/exe`` in the container names the process's current executable: before our exec that
    is the host's Python. A command (or a ``#!`` interpreter, or a symlink such as ``/bin/sh ->
    /proc/self/exe`` planted by the image or by the running container) that leads there would make the
    container's process the host interpreter, with a handle on a host file root may write, and the
    container could overwrite it (runc's CVE-2019-5736). Checked as root before the identity change, so
    an execute-only script cannot hide its ``#!`` line. Not covered: a file another process of the
    container rewrites between this check and the exec (only exec'ing from a sealed copy, as runc
    does, closes that). In the CLI the builder and the monitor run this same executable while the
    container lives, so the kernel keeps it text-busy (ETXTBSY) against such a write meanwhile."""
    if RUNTIME_EXE is None:
        return
    try:
        path = find_command(name, env)
    except channel.CommandError:
        return  # exec reports the missing or unusable program as usual
    for _ in range(_SHEBANG_HOPS):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return
        try:
            st = os.fstat(fd)
            # The same file on a read-only mount (the host's /usr bound ":ro") cannot be written.
            if (st.st_dev, st.st_ino) == RUNTIME_EXE and not os.fstatvfs(fd).f_flag & os.ST_RDONLY:
                raise channel.CommandError(
                    f'exec: "{name}": {path} resolves to the container runtime\'s own host '
                    "executable (as /proc/self/exe would); refusing to run it in the container", 126)
            head = os.read(fd, _BINPRM_BUF) if stat.S_ISREG(st.st_mode) else b""
        finally:
            os.close(fd)
        interpreter = head[2:].split(b"\n", 1)[0].split() if head.startswith(b"#!") else []
        if not interpreter:
            return
        path = os.fsdecode(interpreter[0])


def exec_command(args: list[str], env: dict[str, str], path: str | None = None) -> None:
    try:
        if path is not None:
            os.execve(path, args, env)
        os.execvpe(args[0], args, env)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise _not_found(args[0]) from None
        raise channel.CommandError(f'exec: "{args[0]}": {exc.strerror}', 126) from None


def reset_signals() -> None:
    """Python ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across exec."""
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGHUP,
                signal.SIGQUIT, signal.SIGCHLD, signal.SIGTTIN, signal.SIGTTOU, signal.SIGTSTP):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def close_fds(keep: set[int]) -> None:
    low = 3
    for fd in sorted(k for k in keep if k >= 3):
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)


def _dup_stdio(stdio: Stdio) -> None:
    stdin = stdio.stdin if stdio.stdin is not None else os.open("/dev/null", os.O_RDONLY)
    # Duplicate first so that no target overwrites a source still to be used.
    sources = [os.dup(stdin), os.dup(stdio.stdout), os.dup(stdio.stderr)]
    for target, src in enumerate(sources):
        os.dup2(src, target)
        os.close(src)


def close_inherited(sock: socket.socket, stdio: Stdio, keep: tuple[int, ...] = ()) -> None:
    """Close what the builder's fork brought along (its locks, its state directory, its logs) but
    the stage itself needs. A leaked host directory is a way out: a working directory (or a mount
    target) of ``/proc/self/fd/N`` would land on it, outside the root (runc's CVE-2024-21626)."""
    close_fds({sock.fileno(), *keep, *(fd for fd in (stdio.stdin, stdio.stdout, stdio.stderr)
                                        if fd is not None)})


def _enter_cwd(cwd: str, sys_: sc.Syscalls) -> None:
    """chdir to ``cwd`` resolved inside the root (``confined``), made if missing as Docker does (as
    root, before the identity change): never through a magic link to a directory of the host."""
    try:
        fd = confined.open_dir(sys_, "/", cwd)
    except OSError as exc:
        raise channel.LaunchError(f"cannot enter the working directory {cwd} inside the container: "
                                  f"{exc.strerror}") from None
    try:
        os.fchdir(fd)
    finally:
        os.close(fd)


def finish(process: Process, *, hostname: str, stdio: Stdio, sock: socket.socket, sys_: sc.Syscalls,
           program: bytes, console: bool, after_become: Callable[[], None] | None = None,
           start_gate: Callable[[], None] | None = None, keep_fds: tuple[int, ...] = ()) -> int:
    """Steps 1-5 above; returns only with ``--init`` (the command's exit code)."""
    close_inherited(sock, stdio, keep_fds)
    os.setsid()
    who = identity.resolve(process.user, process.group_add, identity.read_bounded("/etc/passwd"),
                           identity.read_bounded("/etc/group"))
    if process.run_as_non_root and who.uid == 0:
        raise identity.IdentityError(
            f"user {process.user!r} is uid 0 in this image, and the policy requires a non-root user "
            "(runAsNonRoot): run with -u UID, or set a non-root USER in the image")
    if process.terminal:
        slave = open_pty(sock)
        if console:
            _bind_console(slave, sys_)
        os.fchown(slave, who.uid, -1)
        for target in (0, 1, 2):
            os.dup2(slave, target)
        os.close(slave)
        fcntl.ioctl(0, _TIOCSCTTY, 0)
    else:
        _dup_stdio(stdio)
    env = environment(process.env, who.home, hostname, process.terminal)
    _enter_cwd(process.cwd or "/", sys_)
    for rl in process.rlimits:
        resource.setrlimit(RLIMITS[rl.type], (rl.soft, rl.hard))
    os.umask(process.umask)
    close_fds({sock.fileno(), *keep_fds})
    refuse_runtime_executable(process.args[0] if process.args else "", env)
    command: list[str] = []  # the resolved program, when the gate made us look it up first

    def gate() -> None:
        if start_gate is not None:
            command.append(find_command(process.args[0], env))
            start_gate()
    become(process, who, sys_, program, before_filter=gate if start_gate is not None else None)
    if after_become is not None:
        after_become()
    if process.init:
        def start_child() -> None:
            try:
                exec_command(process.args, env)
            except BaseException as exc:  # noqa: BLE001 - reported to the builder
                channel.report(sock, exc)

        sys_.set_process_title("stockade-init")
        return run_init(start_child, terminal=process.terminal, after_fork=sock.close)
    exec_command(process.args, env, command[0] if command else None)
    return 127  # not reached: exec_command either replaces the process or raises
