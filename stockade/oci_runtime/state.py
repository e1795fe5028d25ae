"""A container's state directory under ``--root``: who it is, where its init is, what ``exec`` needs.

``<root>/<id>/`` holds ``state.json`` (written once the init exists, replaced atomically), ``spec.json``
(the engine spec as created, after the node policy: ``exec`` gets the same confinement from it, and
later edits of the bundle's ``config.json`` change nothing, as the OCI spec requires), ``seccomp.bpf``
(the compiled filter) and ``exec.fifo`` while the container is *created*. Verbs that change a
container hold an ``flock`` on its directory.

The status is derived, as runc derives it, never stored: no live init (pid *and* start time, and not a
zombie) means ``stopped``; a live init with the fifo still present means ``created`` (it is blocked
opening the fifo); otherwise ``running``.
"""

from __future__ import annotations

import json
import os
import re

from engine.containers.locking import ExclusiveLock
from engine.containers.state import start_time
from engine.errors import NotFoundError, StockadeError

# The light verbs (``state``, ``start``, ``kill``, ``delete``) import this module and little else, so
# it keeps to ``os`` paths and imports neither ``pathlib`` nor ``typing`` (~7 ms of each call).
TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any

OCI_VERSION = "1.0.2"
DEFAULT_ROOT = "/run/stockade-runtime"
STATE_FILE, SPEC_FILE, FIFO, PROGRAM = "state.json", "spec.json", "exec.fifo", "seccomp.bpf"
MAX_STATE = 4 * 1024 * 1024
# runc's rule (letters, digits, "_", "+", "-", "."), not starting with "." or "-", at most 1024.
_ID = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9_+.-]{0,1023}$")


class ContainerError(StockadeError):
    """The container is not in a state that allows the operation."""


class ContainerNotFound(NotFoundError):
    """No container of that id under this root."""


def check_id(cid: str) -> str:
    if not _ID.match(cid or ""):
        raise ContainerError(f"invalid container id {cid!r}: use letters, digits, '_', '+', '-', '.' "
                             "(not starting with '.' or '-')")
    return cid


class Record:
    """``state.json``: the OCI state's fields plus what later verbs need to find the container. (A plain
    class: ``state``, ``kill`` and ``delete`` should not pay for importing ``dataclasses``.)"""

    FIELDS = ("id", "bundle", "rootfs", "pid", "start", "created", "annotations", "cgroup", "hooks", "oci_version")
    __slots__ = FIELDS

    def __init__(self, id: str, bundle: str, rootfs: str, pid: int, start: int | None, created: str,
                 annotations: dict[str, str] | None = None, cgroup: dict[str, Any] | None = None,
                 hooks: dict[str, list[dict[str, Any]]] | None = None, oci_version: str = OCI_VERSION) -> None:
        self.id, self.bundle, self.rootfs, self.pid, self.created = id, bundle, rootfs, pid, created
        self.start = start  # the init's start time (clock ticks since boot), against pid reuse
        self.annotations = annotations or {}
        self.cgroup = cgroup
        self.hooks = hooks or {}  # poststart, poststop, as engine Hook fields
        self.oci_version = oci_version

    def to_json(self) -> bytes:
        return json.dumps({name: getattr(self, name) for name in self.FIELDS}, sort_keys=True).encode()


def container_dir(root: str, cid: str) -> str:
    return os.path.join(root, check_id(cid))


def load(root: str, cid: str) -> tuple[str, Record]:
    directory = container_dir(root, cid)
    try:
        with open(os.path.join(directory, STATE_FILE), "rb") as f:
            doc = json.loads(f.read(MAX_STATE))
        return directory, Record(**doc)
    except FileNotFoundError:
        raise ContainerNotFound(f"container {cid} does not exist") from None
    except (OSError, ValueError, TypeError) as exc:
        raise ContainerError(f"container {cid}: unreadable state in {directory}: {exc}") from None


def save(directory: str | os.PathLike[str], record: Record) -> None:
    from pathlib import Path

    from engine.atomicfile import write_atomic

    write_atomic(Path(directory, STATE_FILE), record.to_json(), mode=0o600)


def locked(directory: str | os.PathLike[str]) -> ExclusiveLock:
    """Hold the container's lock (verbs that change it take turns)."""
    return ExclusiveLock(directory, os.O_RDONLY | os.O_DIRECTORY, lambda: ContainerNotFound(
        f"container {os.path.basename(directory)} does not exist"))


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return True
    return data[data.rfind(b")") + 2:][:1] in (b"Z", b"X")


def init_alive(record: Record) -> bool:
    """The recorded init is still the same, unexited process."""
    if record.pid <= 0 or record.start is None or start_time(record.pid) != record.start:
        return False
    return not _zombie(record.pid)


def status(directory: str | os.PathLike[str], record: Record) -> str:
    if not init_alive(record):
        return "stopped"
    return "created" if os.path.exists(os.path.join(directory, FIFO)) else "running"


def oci_state(directory: str | os.PathLike[str], record: Record) -> dict[str, Any]:
    """The OCI runtime spec's state document (plus runc's ``rootfs``, ``created``, ``owner``)."""
    current = status(directory, record)
    return {"ociVersion": record.oci_version, "id": record.id, "pid": record.pid if current != "stopped" else 0,
            "status": current, "bundle": record.bundle, "rootfs": record.rootfs, "created": record.created,
            "owner": "", "annotations": record.annotations}


def remove(directory: str | os.PathLike[str]) -> None:
    """Remove a container's state directory (flat: the files listed in the module docstring, and a
    temporary file a killed writer may have left). Not ``shutil.rmtree``: importing shutil costs
    this short process more than the removal."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return
    for entry in entries:
        os.unlink(entry.path)
    os.rmdir(directory)


def ids(root: str) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(root) if e.is_dir() and _ID.match(e.name))
    except FileNotFoundError:
        return []
