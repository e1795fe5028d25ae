"""The process that holds a running container: starts it, feeds its output somewhere, records its end.

Two forms share ``_start`` and ``_finish``:

* **attached** (``run`` without ``-d``): the CLI process itself. The container's stdio is the CLI's own
  (no copying, no buffering), or a pty relayed to the caller's terminal with ``-t``; signals the CLI
  receives are forwarded to the container; the CLI exits with the container's exit code.
* **detached** (``run -d``, ``start``): a small daemon forked from the CLI (setsid, its stdio on
  /dev/null). It copies the container's stdout and stderr (or pty) into the ``json-file`` log with
  rotation, and reports "started" (or the error) to the CLI through a pipe so ``run -d`` can print
  the id and exit.

Either way the monitor is the container init's parent (a child subreaper) and the init dies with it
(PR_SET_PDEATHSIG). When the init exits, the monitor reads the OOM counter of the container's
cgroup, records the exit code (128+N for a signal), removes the cgroup, and removes the container
when it was started with ``--rm``.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import Paths
from engine.containers import state
from engine.containers.store import ContainerStore
from engine.errors import StockadeError
from engine.runtime.channel import CommandError, LaunchError, raise_reported
from engine.runtime.init import exit_code, forward_signals
from engine.runtime.launcher import LaunchConfig, Started, launch
from engine.runtime.process import Stdio, caller_terminal, close_fds
from engine.spec import Spec

if TYPE_CHECKING:  # a container without limits has no cgroup, and the cgroup code is not loaded
    from engine.runtime.cgroups import Cgroup

FORWARDED = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1,
             signal.SIGUSR2, signal.SIGWINCH, signal.SIGCONT, signal.SIGALRM)


class Held:
    """A started container and what the monitor needs to finish it: its record as it was written
    when the container started."""

    def __init__(self, doc: dict[str, Any], started: Started, cgroup: Cgroup | None) -> None:
        self.cid, self.doc, self.started, self.cgroup = doc["Id"], doc, started, cgroup


def load_spec(store: ContainerStore, cid: str) -> Spec:
    return Spec.from_json(store.spec_path(cid).read_text())


def read_program(spec: Spec) -> bytes:
    if not spec.seccomp_bpf:
        return b""
    try:
        return Path(spec.seccomp_bpf).read_bytes()
    except OSError as exc:
        raise LaunchError(f"cannot read the container's seccomp program: {exc.strerror}") from None


def container_cgroup(paths: Paths, spec: Spec, cid: str) -> Cgroup | None:
    """The cgroup a container gets, or None where this user cannot manage cgroups (rootless on v1)."""
    r = spec.resources
    if r.memory is None and r.pids is None and r.cpu_quota is None:
        return None  # no limits, no cgroup (and no need to read the host's cgroup layout)
    from engine.host import probe_cgroups
    from engine.runtime import cgroups

    info = probe_cgroups()
    if info.manager_for(rootless=paths.rootless) == "none":
        if paths.rootless:
            return None  # podman's behaviour: the CLI warned that the limits are ignored
        # Root asked for limits the host cannot enforce: refuse rather than run unconfined.
        raise LaunchError("--memory, --pids-limit and --cpus need a cgroup hierarchy with the "
                          "memory, pids and cpu controllers, and this host has none (see stockade info)")
    return cgroups.for_container(info, spec.cgroup_parent, cid, spec.resources)


def _start(paths: Paths, store: ContainerStore, cid: str, spec: Spec, stdio: Stdio,
           winsize_from: int | None = None) -> Held:
    if spec.uid_mappings and not paths.rootless:
        paths.share_with_userns()  # --userns=auto: the init mounts from the store as an unprivileged uid
    cgroup = container_cgroup(paths, spec, cid)
    if cgroup is not None:
        cgroup.create()
        try:
            cgroup.apply(spec.resources)
        except BaseException:
            cgroup.destroy()
            raise
    try:
        started = launch(LaunchConfig(spec=spec, mountpoint=str(store.rundir(cid) / "rootfs"),
                                      stdio=stdio, cgroup=cgroup, map_with_helper=paths.rootless,
                                      seccomp_program=read_program(spec), winsize_from=winsize_from))
    except StockadeError as exc:
        if cgroup is not None:
            cgroup.destroy()
        code = exc.exit_code if isinstance(exc, CommandError) else 125

        def failed(doc: dict[str, Any]) -> None:
            state.mark_exited(doc, code, error=str(exc))
            doc["Stockade"]["Cgroup"] = None
        store.update(cid, failed)
        raise

    def running(doc: dict[str, Any]) -> None:
        state.mark_running(doc, started.pid, os.getpid())
        doc["Stockade"]["Cgroup"] = cgroup.to_state() if cgroup is not None else None
    return Held(store.update(cid, running), started, cgroup)


def _finish(store: ContainerStore, held: Held, status: int) -> int:
    """Record the exit, or, for a ``--rm`` container, delete it (its exit is never read: a record
    left by a crash mid-removal says running with a dead monitor, which ``reconcile`` repairs)."""
    code = exit_code(status)
    oom = held.cgroup.oom_killed() if held.cgroup is not None else False
    if held.cgroup is not None:
        held.cgroup.destroy()
    if held.doc["HostConfig"].get("AutoRemove"):
        from engine.containers.lifecycle import remove_stopped

        held.doc["Stockade"]["Cgroup"] = None  # destroyed above
        remove_stopped(store, held.doc, volumes=True)
        return code

    def exited(doc: dict[str, Any]) -> None:
        state.mark_exited(doc, code, oom=oom)
    store.update(held.cid, exited)
    return code


def _wait(pid: int) -> int:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            return status
        except ChildProcessError:
            return 0


def run_attached(paths: Paths, cid: str, *, interactive: bool) -> int:
    """Start container ``cid`` with the caller's stdio and return its exit code."""
    store = ContainerStore(paths)
    held = None
    # Hold signals until the container exists, then forward them to it.
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
    try:
        spec = load_spec(store, cid)
        stdio = Stdio(stdin=0 if interactive else None, stdout=1, stderr=2)
        try:
            held = _start(paths, store, cid, spec, stdio, caller_terminal() if spec.process.terminal else None)
        except StockadeError:
            doc = store.load(cid)
            if doc["HostConfig"].get("AutoRemove"):
                from engine.containers.lifecycle import remove_stopped

                remove_stopped(store, doc, volumes=True)
            raise
        return _finish(store, held, attach(held.started, interactive=interactive))
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)


def attach(started: Started, *, interactive: bool) -> int:
    """Hold a started process in the foreground (``run``, ``exec``): forward the signals the caller
    gets (the caller blocked them until now), relay its pty, and return its wait status."""
    pid, master = started.pid, started.pty_master
    # With a pty the relay resizes it on SIGWINCH itself (until then the signal is ignored).
    forward_signals(pid, [s for s in FORWARDED if master is None or s != signal.SIGWINCH])
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
    if master is not None:
        from engine.containers.terminal import relay

        try:
            relay(master, stdin=0 if interactive else None)
        finally:
            os.close(master)
    return _wait(pid)


# --- detached ---------------------------------------------------------------------------------------
def start_detached(paths: Paths, cid: str) -> None:
    """Fork a monitor for ``cid`` and return once the container runs (or raise why it does not)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - becomes the monitor
        os.close(read_end)
        _daemon(paths, cid, write_end)
    os.close(write_end)
    _wait(pid)
    with os.fdopen(read_end, "rb") as f:
        message = f.read()
    if message == b"ok":
        return
    if not message:
        raise LaunchError("the container's monitor exited before the container started")
    raise_reported(message)


def _daemon(paths: Paths, cid: str, notify: int) -> None:  # pragma: no cover - the monitor process
    code = 0
    try:
        os.setsid()
        if os.fork():
            os._exit(0)  # the session leader exits: the monitor can never regain a terminal
        _retitle(f"stockade monitor {cid[:12]}".encode())
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        close_fds({notify})  # nothing of the CLI's (its pipes, its locks) may outlive it here
        for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE, signal.SIGTSTP):
            signal.signal(sig, signal.SIG_IGN)
        _monitor(paths, cid, notify)
    except BaseException as exc:  # noqa: BLE001 - reported to the CLI waiting on the pipe
        code = 1
        try:
            err = exc.exit_code if isinstance(exc, CommandError) else 125
            os.write(notify, json.dumps({"message": str(exc), "code": err}).encode())
        except OSError:
            pass
    os._exit(code)


def _retitle(title: bytes) -> None:
    """Replace the command line ``/proc/PID/cmdline`` shows (to every local user) with ``title``. The
    monitor is a fork of the CLI, so it kept ``run``'s arguments, ``-e PASSWORD=…`` included, readable
    by anyone for the container's whole life (podman's and Docker's CLIs exit; conmon's arguments name
    only the container). The argument strings are overwritten where the kernel reads them, as
    setproctitle does; Python works from its own copies (``sys.argv``)."""
    import ctypes

    try:
        with open("/proc/self/stat", "rb") as f:
            after_comm = f.read().rpartition(b")")[2].split()
        start, end = int(after_comm[45]), int(after_comm[46])  # fields 48 and 49: arg_start, arg_end
    except (OSError, ValueError, IndexError):
        return
    if end - start < 2:
        return
    text = title[:end - start - 1]
    ctypes.memset(start, 0, end - start)
    ctypes.memmove(start, text, len(text))


def _monitor(paths: Paths, cid: str, notify: int) -> None:  # pragma: no cover - the monitor process
    import selectors

    from engine.containers.logs import JsonFileWriter

    store = ContainerStore(paths)
    doc = store.load(cid)
    spec = load_spec(store, cid)
    log_cfg = doc["HostConfig"]["LogConfig"]["Config"]
    writer = JsonFileWriter(store.log_path(cid), max_size=int(log_cfg["max-size"]),
                            max_file=int(log_cfg["max-file"]))
    sources: dict[int, str] = {}
    keep_stdin = -1
    if spec.process.terminal:
        stdio = Stdio()
    else:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        stdin = None
        if doc["Config"].get("OpenStdin"):
            stdin, keep_stdin = os.pipe()  # held open: "-di" keeps the command's stdin open
        stdio = Stdio(stdin=stdin, stdout=out_w, stderr=err_w)
        sources = {out_r: "stdout", err_r: "stderr"}
    try:
        held = _start(paths, store, cid, spec, stdio)
    except BaseException:
        doc = store.load(cid)
        if doc["HostConfig"].get("AutoRemove"):
            from engine.containers.lifecycle import remove_stopped

            remove_stopped(store, doc, volumes=True)
        raise
    if held.started.pty_master is not None:
        sources = {held.started.pty_master: "stdout"}
    else:
        for fd in (stdio.stdout, stdio.stderr, stdio.stdin):
            if fd is not None:
                os.close(fd)
    os.write(notify, b"ok")
    os.close(notify)
    pid = held.started.pid
    signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGTERM))
    sel = selectors.DefaultSelector()
    for fd in sources:
        sel.register(fd, selectors.EVENT_READ)
    while sources:
        for key, _ in sel.select():
            try:
                data = os.read(key.fd, 65536)
            except OSError:
                data = b""
            if data:
                writer.write(sources[key.fd], data)
            else:
                sel.unregister(key.fd)
                os.close(key.fd)
                del sources[key.fd]
    writer.close()
    if keep_stdin >= 0:
        os.close(keep_stdin)
    _finish(store, held, _wait(pid))
