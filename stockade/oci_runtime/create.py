"""``create`` and ``run``: from a bundle to a container whose init waits for ``start``.

``create`` reads and translates ``config.json`` (``bundle``), meets the node policy (``nodepolicy``),
compiles the seccomp program (``seccomp``), makes the cgroup (``cgroupspath``) and launches with the
engine's launcher in its create-then-start mode: namespaces, mounts, identity, capabilities and
no_new_privs are all in place, and the init is blocked on ``<root>/<id>/exec.fifo`` just before its
last step (the filter, then exec). The hooks of the runtime's namespaces run in between: ``prestart``
and ``createRuntime`` once every namespace exists, before the init builds its root. Then the pty master
goes to ``--console-socket``, ``oomScoreAdj`` is written, the state is saved and ``--pid-file`` written
(atomically: callers poll for it). Whatever fails undoes everything: no state, no cgroup, no process.

The init's stdio is this process's own (containerd and conmon hand the runtime the container's pipes).
This process exits at once; the init re-parents to the caller's subreaper (the shim, conmon).

``run`` is ``create`` + ``start`` + wait + ``delete`` in one process, which stays the init's parent.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from engine import records
from engine.atomicfile import write_atomic
from engine.containers.state import now, start_time
from engine.runtime.launcher import LaunchConfig, StartGate, Started, kill_and_reap, launch
from engine.runtime.process import Stdio
from stockade.oci_runtime import bundle as bundles
from stockade.oci_runtime import cgroupspath, nodepolicy, seccomp
from stockade.oci_runtime.state import (FIFO, OCI_VERSION, PROGRAM, SPEC_FILE, ContainerError, Record,
                                        check_id, locked, remove, save)

if TYPE_CHECKING:
    from stockade.oci_runtime.cli import Globals


class CreateRequest(records.Record):
    cid: str
    bundle: str
    pid_file: str | None = None
    console_socket: str | None = None
    preserve_fds: int = 0
    keep_terminal: bool = False  # ``run`` without a console socket relays the pty itself


def caller_stdio() -> Stdio:
    """This process's fds 0-2 for the container (a closed one becomes /dev/null)."""
    fds = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            fds.append(os.open(os.devnull, os.O_RDWR))
    return Stdio(stdin=fds[0], stdout=fds[1], stderr=fds[2])


def _hardened(g: Globals, req: CreateRequest, tr: bundles.Translated) -> bytes:
    """Meet the node policy and apply its outcome to ``tr``; the seccomp program to load."""
    cache = Path(g.root) / ".cache"
    cache.mkdir(mode=0o700, exist_ok=True)
    path = nodepolicy.policy_file(g.node_policy)
    outcome, cached = nodepolicy.evaluate(nodepolicy.document(tr, req.cid), path, cache / "node-policy")
    g.log.debug(f"node policy {outcome.policy} ({path}): {'cached decision' if cached else 'evaluated'}")
    for line in outcome.applied:
        g.log.info(f"node policy {outcome.policy}: applied {line}")
    for line in outcome.warnings:
        g.log.warning(f"node policy {outcome.policy}: {line}")
    for line in outcome.audits:
        g.log.info(f"node policy {outcome.policy} (audit): {line}")
    source, caps = nodepolicy.apply(tr, outcome.container)
    if tr.seccomp is not None and seccomp.ignored_fields(tr.seccomp):
        g.log.warning("linux.seccomp: not applied: " + ", ".join(seccomp.ignored_fields(tr.seccomp)))
    return seccomp.program(source, caps, cache / "seccomp")


def _oom_score_adj(g: Globals, pid: int, value: int | None) -> None:
    if value is None:
        return
    try:
        with open(f"/proc/{pid}/oom_score_adj", "w") as f:
            f.write(str(value))
    except OSError as exc:
        g.log.warning(f"process.oomScoreAdj {value} not applied: {exc.strerror} (lowering it needs "
                      "CAP_SYS_RESOURCE)")


def create(g: Globals, req: CreateRequest) -> Started:
    """Create the container (see the module docstring); the started init (and pty master with
    ``keep_terminal``)."""
    if os.geteuid() != 0:
        raise ContainerError("stockade-runtime creates containers as root only (rootless podman: use its "
                             "default runtime)")
    cid = check_id(req.cid)
    bundle = os.path.abspath(req.bundle)
    tr = bundles.translate(bundles.load(bundle), bundle)
    for level, message in tr.notes:
        g.log.write(level, message)
    if tr.spec.process.terminal and not req.console_socket and not req.keep_terminal:
        raise ContainerError("process.terminal needs --console-socket (the runtime exits after create)")
    root = Path(g.root)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    program = _hardened(g, req, tr)
    directory = root / cid
    try:
        directory.mkdir(mode=0o700)
    except FileExistsError:
        raise ContainerError(f"container with id {cid} already exists") from None
    cgroup = None
    started = None
    try:
        with locked(directory):
            fifo = directory / FIFO
            os.mkfifo(fifo, 0o600)
            # The container's user, whoever it is, opens it for writing through the init's O_PATH fd;
            # by path it is unreachable (the directory is root's, 0700).
            os.chmod(fifo, 0o622)  # nosec B103 # see above
            if program:
                write_atomic(directory / PROGRAM, program, mode=0o600)
                tr.spec.seccomp_bpf = str(directory / PROGRAM)
            write_atomic(directory / SPEC_FILE, tr.spec.to_json().encode(), mode=0o600)
            cgroup = cgroupspath.for_container(tr.cgroups_path, cid, tr.spec.resources, systemd=g.systemd_cgroup)
            if cgroup is not None:
                cgroupspath.create(cgroup, tr.spec.resources)
            hook_state = {"ociVersion": OCI_VERSION, "id": cid, "bundle": bundle, "annotations": tr.annotations}

            def before_rootfs(pid: int) -> None:
                from engine.runtime import hooks

                state = json.dumps({**hook_state, "pid": pid, "status": "creating"}).encode()
                hooks.run_all(tr.hooks["prestart"], state, "prestart")
                hooks.run_all(tr.hooks["createRuntime"], state, "createRuntime")

            started = launch(LaunchConfig(
                spec=tr.spec, mountpoint=tr.rootfs, stdio=caller_stdio(), cgroup=cgroup, seccomp_program=program,
                gate=StartGate(str(fifo)), hook_state=hook_state, preserve_fds=req.preserve_fds,
                before_rootfs=before_rootfs if tr.hooks["prestart"] or tr.hooks["createRuntime"] else None))
            if started.pty_master is not None and req.console_socket:
                from stockade.oci_runtime.console import send_master

                master, started.pty_master = started.pty_master, None
                send_master(req.console_socket, master)
            _oom_score_adj(g, started.pid, tr.oom_score_adj)
            save(directory, Record(
                id=cid, bundle=bundle, rootfs=tr.rootfs, pid=started.pid, start=start_time(started.pid),
                created=now(), annotations=tr.annotations,
                cgroup=cgroup.to_state() if cgroup is not None else None,
                hooks={s: [records.asdict(h) for h in tr.hooks[s]] for s in ("poststart", "poststop")}))
            if req.pid_file:
                pid_file = Path(os.path.abspath(req.pid_file))
                write_atomic(pid_file, str(started.pid).encode(), mode=0o644)
        g.log.debug(f"created container {cid}: init {started.pid}")
        return started
    except BaseException:
        if started is not None:
            if started.pty_master is not None:
                os.close(started.pty_master)
            kill_and_reap(started.pid)
        if cgroup is not None:
            cgroup.destroy()
        remove(directory)
        raise


def run(g: Globals, req: CreateRequest, *, detach: bool) -> int:
    """``run``: create, start, and (unless ``detach``) hold the container as ``stockade run`` holds one
    (signals forwarded, the pty relayed), then delete it; the container's exit code."""
    from engine.containers.monitor import FORWARDED, attach
    from engine.runtime.init import exit_code
    from stockade.oci_runtime.lifecycle import delete, start

    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)  # until the init exists to receive them
    try:
        started = create(g, CreateRequest(req.cid, req.bundle, req.pid_file, req.console_socket,
                                          req.preserve_fds, keep_terminal=not detach))
        try:
            start(g, req.cid)
        except BaseException:
            delete(g, req.cid, force=True)
            raise
        if detach:
            return 0
        status = attach(started, interactive=True)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
    delete(g, req.cid, force=True)
    return exit_code(status)
