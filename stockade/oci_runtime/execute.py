"""``exec``: one more process in a container, through the engine's ``execin.join``.

The process comes from ``--process FILE`` (an OCI ``process`` object, what containerd and conmon
write) or from the command line (``exec ID CMD…`` with ``--tty``, ``--cwd``, ``--env``, ``--user``,
``--additional-gids``, ``--cap``, ``--no-new-privs``) on top of the container's own process. Either way
it never gets more than the container: its capabilities are cut to the container's bounding set, it
inherits the container's no_new_privs, runAsNonRoot and seccomp program (as ``stockade exec`` does),
and it joins the container's namespaces and cgroup.

With ``--detach`` (what the shims always pass) the runtime writes ``--pid-file`` and exits once the
process has exec'd; the process re-parents to the caller's subreaper. Without it the runtime waits
and exits with the process's status, relaying its pty when there is no console socket.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from engine.atomicfile import write_atomic
from engine.boundedio import load_json
from engine.records import Record, field, replace
from engine.spec import CapabilitySets, Process, Spec
from stockade.oci_runtime.bundle import BundleError, process
from stockade.oci_runtime.state import PROGRAM, SPEC_FILE, ContainerError, load, status

if TYPE_CHECKING:
    from stockade.oci_runtime.cli import Globals

MAX_PROCESS = 4 * 1024 * 1024


class ExecRequest(Record):
    cid: str
    process_file: str | None = None
    command: list[str] = field(default_factory=list)
    tty: bool = False
    cwd: str | None = None
    env: list[str] = field(default_factory=list)
    user: str | None = None  # uid[:gid]
    additional_gids: list[str] = field(default_factory=list)
    caps: list[str] = field(default_factory=list)
    no_new_privs: bool = False
    detach: bool = False
    pid_file: str | None = None
    console_socket: str | None = None


def _from_file(g: Globals, path: str) -> tuple[Process, bool]:
    _, doc = load_json(path, MAX_PROCESS, what=f"the process file {path}", error=BundleError)
    notes: list[tuple[str, str]] = []
    proc, caps_given = process(doc, notes, where="process")
    for level, message in notes:
        g.log.write(level, message)
    return proc, caps_given


def _from_argv(req: ExecRequest, base: Process) -> tuple[Process, bool]:
    if not req.command:
        raise ContainerError("exec needs a command (or --process FILE)")
    user = base.user
    if req.user:
        uid, _, gid = req.user.partition(":")
        if not uid.isdigit() or (gid and not gid.isdigit()):
            raise ContainerError(f"--user {req.user!r}: use UID[:GID] (numbers)")
        user = f"{uid}:{gid or 0}"
    caps = replace(base.capabilities)
    if req.caps:
        extra = [c if c.startswith("CAP_") else f"CAP_{c}" for c in (c.upper() for c in req.caps)]
        caps = CapabilitySets(*(sorted(set(getattr(caps, n)) | set(extra)) for n in
                                ("bounding", "effective", "permitted", "inheritable", "ambient")))
    proc = replace(
        base, args=list(req.command), env=[*base.env, *req.env], cwd=req.cwd or base.cwd, user=user,
        group_add=list(req.additional_gids) if req.additional_gids else base.group_add,
        terminal=req.tty, capabilities=caps, no_new_privileges=base.no_new_privileges or req.no_new_privs)
    return proc, True


def confine(proc: Process, caps_given: bool, container: Process) -> Process:
    """``proc`` within the container's limits (see the module docstring)."""
    ceiling = set(container.capabilities.bounding)
    caps = proc.capabilities if caps_given else container.capabilities
    limited = CapabilitySets(*([c for c in getattr(caps, n) if c in ceiling] for n in
                               ("bounding", "effective", "permitted", "inheritable", "ambient")))
    return replace(proc, capabilities=limited,
                   no_new_privileges=proc.no_new_privileges or container.no_new_privileges,
                   run_as_non_root=proc.run_as_non_root or container.run_as_non_root)


def execute(g: Globals, req: ExecRequest) -> int:
    from engine.runtime import cgroups
    from engine.runtime.execin import join
    from stockade.oci_runtime.create import caller_stdio

    directory, record = load(g.root, req.cid)
    if status(directory, record) == "stopped":
        raise ContainerError("cannot exec in a stopped container")
    spec = Spec.from_json(Path(directory, SPEC_FILE).read_text())
    proc, caps_given = _from_file(g, req.process_file) if req.process_file else _from_argv(req, spec.process)
    proc = confine(proc, caps_given, spec.process)
    if proc.terminal and req.detach and not req.console_socket:
        raise ContainerError("exec --tty --detach needs --console-socket")
    program_path = Path(directory, PROGRAM)
    program = program_path.read_bytes() if program_path.exists() else b""
    started = join(record.pid, proc, hostname=spec.hostname, stdio=caller_stdio(),
                   cgroup=cgroups.from_state(record.cgroup or {}), program=program)
    master = started.pty_master
    if master is not None and req.console_socket:
        from stockade.oci_runtime.console import send_master

        send_master(req.console_socket, master)
        master = None
    if req.pid_file:
        write_atomic(Path(os.path.abspath(req.pid_file)), str(started.pid).encode(), mode=0o644)
    if req.detach:
        return 0
    from engine.runtime.init import exit_code

    if master is not None:
        from engine.containers.terminal import relay

        try:
            relay(master, stdin=0)
        finally:
            os.close(master)
    _, wait_status = os.waitpid(started.pid, 0)
    return exit_code(wait_status)
