"""The verbs on an existing container: ``start``, ``state``, ``kill``, ``delete``, ``ps``, ``list``.

The init is not this process's child (the caller's subreaper holds it), so liveness is read from
``/proc`` (pid, start time, not a zombie) and ``delete`` waits for the init to die by polling rather
than ``waitpid``. The container's processes are those of its cgroup, or, without one, those sharing
its init's PID namespace.

``start`` opens ``exec.fifo`` for reading (non-blocking, so an init that died cannot hang it), waits
for the init's byte, then removes the fifo: from then on the container is *running*. ``poststart``
hooks run after that and ``poststop`` hooks after ``delete``; a failing one is a warning in the log,
as the OCI spec asks.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time

from engine.errors import StockadeError
from stockade.oci_runtime.state import (FIFO, STATE_FILE, ContainerError, ContainerNotFound, Record,
                                        container_dir, init_alive, load, locked, oci_state, remove, status)

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (see state.py)
if TYPE_CHECKING:
    from typing import Any

    from engine.runtime.cgroups import Cgroup
    from stockade.oci_runtime.cli import Globals

START_POLL = 0.1  # seconds between liveness checks while waiting for the init's byte
STOP_WAIT = 10.0  # seconds ``delete --force`` waits for SIGKILL to take effect


def _run_hooks(g: Globals, record: Record, stage: str, current: str) -> None:
    """``poststart``/``poststop``: every hook runs; a failure is only a warning (OCI)."""
    specs = record.hooks.get(stage) or []
    if not specs:
        return
    from engine.runtime import hooks
    from engine.spec import Hook

    state = json.dumps({"ociVersion": record.oci_version, "id": record.id, "status": current,
                        "pid": record.pid, "bundle": record.bundle, "annotations": record.annotations}).encode()
    for spec in specs:
        try:
            hooks.run(Hook(**spec), state, stage)
        except Exception as exc:  # noqa: BLE001 - logged, the lifecycle goes on
            g.log.warning(str(exc))


def start(g: Globals, cid: str) -> None:
    directory, record = load(g.root, cid)
    with locked(directory):
        current = status(directory, record)
        if current != "created":
            raise ContainerError(f"cannot start a container that is {current}" if current == "running"
                                 else "cannot start a container that has stopped")
        fifo = os.path.join(directory, FIFO)
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            while True:
                if poller.poll(int(START_POLL * 1000)):
                    if os.read(fd, 1) == b"0":
                        break
                    raise ContainerError(f"container {cid}: its init closed the start fifo without starting")
                if not init_alive(record):
                    raise ContainerError(f"container {cid}: its init exited before it could start")
        finally:
            os.close(fd)
        os.unlink(fifo)
    _run_hooks(g, record, "poststart", "running")


def state(g: Globals, cid: str) -> None:
    directory, record = load(g.root, cid)
    sys.stdout.write(json.dumps(oci_state(directory, record), indent=2) + "\n")


def parse_signal(text: str) -> int:
    """``9``, ``KILL``, ``SIGKILL`` (runc's forms)."""
    if text.isdigit():
        number = int(text)
        if not 0 < number < signal.NSIG:
            raise ContainerError(f"invalid signal {text}")
        return number
    name = text.upper()
    name = name if name.startswith("SIG") else f"SIG{name}"
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise ContainerError(f"unknown signal {text!r}") from None


def _cgroup(record: Record) -> Cgroup | None:
    if not record.cgroup:
        return None
    from engine.runtime import cgroups

    return cgroups.from_state(record.cgroup)


def processes(record: Record) -> list[int]:
    """The container's processes: its cgroup's, else its PID namespace's members."""
    cgroup = _cgroup(record)
    if cgroup is not None:
        return sorted(cgroup.procs())
    if not init_alive(record):
        return []
    try:
        target = os.stat(f"/proc/{record.pid}/ns/pid")
    except OSError:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ns = os.stat(f"/proc/{entry}/ns/pid")
            except OSError:
                continue
            if (ns.st_dev, ns.st_ino) == (target.st_dev, target.st_ino):
                found.append(int(entry))
    return sorted(found)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def kill(g: Globals, cid: str, sig_text: str, *, all_processes: bool) -> None:
    directory, record = load(g.root, cid)
    sig = parse_signal(sig_text)
    if all_processes:
        for pid in processes(record):
            _signal(pid, sig)
        return
    if status(directory, record) == "stopped":
        raise ContainerError("container not running")
    _signal(record.pid, sig)


def _wait_stopped(record: Record, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while init_alive(record):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def delete(g: Globals, cid: str, *, force: bool) -> None:
    directory = container_dir(g.root, cid)
    if os.path.isdir(directory) and not os.path.exists(os.path.join(directory, STATE_FILE)):
        remove(directory)  # a create that died half-way: nothing runs
        return
    try:
        directory, record = load(g.root, cid)
    except ContainerNotFound:
        if force:
            return  # as runc: forcing the deletion of what is already gone succeeds
        raise
    with locked(directory):
        current = status(directory, record)
        if current == "running" and not force:
            raise ContainerError(f"cannot delete container {cid} that is not stopped: {current}")
        if current != "stopped":
            _signal(record.pid, signal.SIGKILL)
            if not _wait_stopped(record, STOP_WAIT):
                raise ContainerError(f"container {cid}: its init {record.pid} did not die after SIGKILL")
        cgroup = _cgroup(record)
        if cgroup is not None:
            for pid in cgroup.procs():  # what the init left behind (a shared PID namespace)
                _signal(pid, signal.SIGKILL)
            cgroup.destroy()
        remove(directory)
    _run_hooks(g, record, "poststop", "stopped")


def ps(g: Globals, cid: str, fmt: str, ps_args: list[str]) -> None:
    directory, record = load(g.root, cid)
    if status(directory, record) == "stopped":
        raise ContainerError("container not running")
    pids = processes(record)
    if fmt == "json":
        sys.stdout.write(json.dumps(pids) + "\n")
        return
    if fmt != "table":
        raise ContainerError(f"invalid format option {fmt!r} (table or json)")
    # As runc: the host's ``ps`` output, its header and the container's rows.
    import subprocess  # nosec B404 # ``ps`` with an argument list

    out = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, text=True,  # nosec B603 B607
                         check=False).stdout.splitlines()
    if not out:
        return
    header = out[0].split()
    column = header.index("PID") if "PID" in header else 1
    wanted = {str(p) for p in pids}
    sys.stdout.write("\n".join([out[0], *(line for line in out[1:]
                                          if len(line.split()) > column and line.split()[column] in wanted)]) + "\n")


def list_containers(g: Globals, fmt: str, quiet: bool) -> None:
    from stockade.oci_runtime.state import ids

    rows: list[dict[str, Any]] = []
    for cid in ids(g.root):
        try:
            directory, record = load(g.root, cid)
        except StockadeError:
            continue  # being created or deleted right now
        rows.append(oci_state(directory, record))
    if quiet:
        sys.stdout.write("".join(f"{r['id']}\n" for r in rows))
    elif fmt == "json":
        sys.stdout.write(json.dumps(rows) + "\n")
    else:
        lines = ["ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER"]
        lines += [f"{r['id']}\t{r['pid']}\t{r['status']}\t{r['bundle']}\t{r['created']}\troot" for r in rows]
        sys.stdout.write("\n".join(lines) + "\n")
