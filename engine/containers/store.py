"""Containers on disk: one directory per container, a Docker-shaped record, names, and locks.

Layout (``<root>`` is the store root, ``<runroot>`` the runtime directory)::

    <root>/containers/<id>/container.json   the record: Docker's inspect document plus "Stockade"
    <root>/containers/<id>/config.json      the runtime spec (engine.spec.Spec) it was created with
    <root>/containers/<id>/seccomp.bpf      the compiled filter, so start and exec load the same one
    <root>/containers/<id>/hostname|hosts|resolv.conf
    <root>/containers/<id>/upper, work      the overlay's writable layer
    <root>/containers/<id>/<id>-json.log    logs of a detached container (rotated: .1, .2, ...)
    <root>/containers/.names/<name>         the name reservation (contains the id)
    <runroot>/containers/<id>/rootfs        empty mount point for the root (mounted only inside the
                                            container's own mount namespace)

Every record change is a read-modify-write under the container's lock and an atomic replace, so the
record on disk is always whole, whichever process crashes (``write_file``). A record is the truth about what was asked; whether
a container still runs is checked against the kernel (process start times), see ``state.py``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Callable

from engine.config import Paths
from engine.containers.locking import ExclusiveLock
from engine.errors import NotFoundError, StockadeError

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
ID_RE = re.compile(r"^[0-9a-f]{64}$")
_ADJECTIVES = ("amber", "brave", "calm", "deft", "eager", "fair", "glad", "hardy", "keen", "lucid",
               "merry", "noble", "quiet", "rapid", "sharp", "stout", "tidy", "vivid", "wise", "zesty")
_NOUNS = ("anchor", "bastion", "citadel", "donjon", "embrasure", "fort", "gate", "keep", "lookout",
          "moat", "outpost", "palisade", "rampart", "redoubt", "sentry", "tower", "turret", "ward")


def write_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` atomically (temporary name in the same directory, then rename).

    Not fsynced, on purpose: a rename is atomic against a crash of any process, which is what a
    container's state must survive; after a power loss no container is running anyway, and the
    writes sit on the start path of every container."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class ContainerError(StockadeError):
    """A container operation cannot be done in the container's current state."""


class NameInUseError(ContainerError):
    exit_code = 125


def generate_name() -> str:
    a, n = os.urandom(2)
    return f"{_ADJECTIVES[a % len(_ADJECTIVES)]}_{_NOUNS[n % len(_NOUNS)]}_{os.urandom(2).hex()}"


class ContainerStore:
    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        # Directories are 0711: a --userns=auto container's init (an unprivileged host uid) must reach
        # its own root and /etc files through them, but nobody may list them; records are 0600.
        self.base = paths.root / "containers"
        self.runbase = paths.runroot / "containers"
        self.names = self.base / ".names"

    # --- paths ------------------------------------------------------------------------------------
    def dir(self, cid: str) -> Path:
        return self.base / cid

    def rundir(self, cid: str) -> Path:
        return self.runbase / cid

    def record_path(self, cid: str) -> Path:
        return self.dir(cid) / "container.json"

    def spec_path(self, cid: str) -> Path:
        return self.dir(cid) / "config.json"

    def log_path(self, cid: str) -> Path:
        return self.dir(cid) / f"{cid}-json.log"

    # --- creation ---------------------------------------------------------------------------------
    def reserve(self, name: str | None) -> tuple[str, str]:
        """A new container id and its name (given or generated), reserved atomically."""
        self.paths.make_root()
        self.base.mkdir(parents=True, exist_ok=True, mode=0o711)
        self.names.mkdir(exist_ok=True, mode=0o700)
        cid = os.urandom(32).hex()
        if name is not None:
            name = name.lstrip("/")
            if not NAME_RE.match(name):
                raise ContainerError(f"invalid container name {name!r}: use letters, digits, '_', '.' "
                                     f"and '-', starting with a letter or digit")
        # The directory first: a name file whose owner has no directory can then only be the
        # leftover of a creator that died, never a reservation still in progress.
        self.dir(cid).mkdir(mode=0o711)
        try:
            for _ in range(20):
                candidate = name or generate_name()
                try:
                    fd = os.open(self.names / candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                except FileExistsError:
                    if self._reclaim_stale(candidate):
                        continue
                    if name is not None:
                        other = self._name_owner(candidate)
                        raise NameInUseError(f'the container name "/{candidate}" is already in use by '
                                             f'container {other[:12]}',
                                             hint="remove that container or choose another name") from None
                    continue
                with os.fdopen(fd, "w") as f:
                    f.write(cid)
                return cid, candidate
            raise ContainerError("could not generate a free container name")
        except BaseException:
            self.dir(cid).rmdir()
            raise

    def _reclaim_stale(self, name: str) -> bool:
        """Free a name whose owner has no directory (left by a creator or remover that died)."""
        owner = self._name_owner(name)
        if owner == "?" or not ID_RE.match(owner) or self.dir(owner).exists():
            return False
        (self.names / name).unlink(missing_ok=True)
        return True

    def _name_owner(self, name: str) -> str:
        try:
            return (self.names / name).read_text().strip()
        except OSError:
            return "?"

    def release_name(self, name: str, cid: str) -> None:
        if self._name_owner(name) == cid:
            (self.names / name).unlink(missing_ok=True)

    # --- records ----------------------------------------------------------------------------------
    def ids(self) -> list[str]:
        try:
            entries = os.listdir(self.base)
        except FileNotFoundError:
            return []
        return [e for e in entries if ID_RE.match(e) and (self.base / e / "container.json").is_file()]

    def load(self, cid: str) -> dict[str, Any]:
        try:
            with open(self.record_path(cid)) as f:
                doc: dict[str, Any] = json.load(f)
        except FileNotFoundError:
            raise NotFoundError(f"no such container: {cid}") from None
        except ValueError as exc:
            raise ContainerError(f"container {cid[:12]}: its record is unreadable ({exc})") from None
        return doc

    def save(self, doc: dict[str, Any]) -> None:
        # Compact: json's C encoder does not indent (with indent=1 the pure-Python one ran, ~1 ms of
        # a start's three saves); ``inspect`` prints records readably.
        write_file(self.record_path(doc["Id"]), json.dumps(doc, separators=(",", ":")).encode(), mode=0o600)

    def locked(self, cid: str) -> ExclusiveLock:
        return ExclusiveLock(self.dir(cid) / ".lock", os.O_RDWR | os.O_CREAT,
                       lambda: NotFoundError(f"no such container: {cid}"))

    def update(self, cid: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Apply ``change`` to the record under the container's lock and save it."""
        with self.locked(cid):
            doc = self.load(cid)
            change(doc)
            self.save(doc)
            return doc

    def find(self, ref: str) -> str:
        """A container id from a full id, a name (with or without '/') or an unambiguous id prefix."""
        ref = ref.strip()
        if ID_RE.match(ref) and self.record_path(ref).is_file():
            return ref
        name = ref.lstrip("/")
        if NAME_RE.match(name):
            owner = self._name_owner(name)
            if owner != "?" and self.record_path(owner).is_file():
                return owner
        if re.fullmatch(r"[0-9a-f]{1,64}", ref):
            hits = [c for c in self.ids() if c.startswith(ref)]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise ContainerError(f"{ref!r} matches {len(hits)} containers; give more of the id")
        raise NotFoundError(f"no such container: {ref}")
