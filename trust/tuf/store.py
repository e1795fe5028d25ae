"""A TUF repository on disk: plain files a web server can serve, and where each version goes.

Layout of ``--repo DIR``::

    DIR/metadata/          serve this directory (its URL is what clients pass to --tuf)
        1.root.json …      every root version (clients walk them to follow key rotations)
        root.json          a copy of the newest root, for a first download to pin (check it!)
        N.targets.json     each version of targets, under its version (consistent snapshots)
        N.targets/releases.json      the delegated role's versions: ngclient asks for
        N.targets%2Freleases.json    ``N.targets%2Freleases.json``; servers that decode %2F
                                     (python's http.server, nginx) look for the first name,
                                     servers that do not (Apache with NoDecode) for the second
        N.snapshot.json
        timestamp.json     the one file replaced in place, always last
    DIR/keys/              never serve: encrypted private keys, one per key id (see keys.py)
    DIR/lock               serialises writers (two `trust sign` runs must not both make version N)

The current state is read back the way a client reads it: timestamp -> snapshot version -> the
targets versions it lists, and root is the highest ``N.root.json``. So a crash half-way through an
operation leaves the previous state current: new versioned files are not referenced until the new
timestamp is renamed into place.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from pathlib import Path
from typing import Iterable, Iterator
from urllib.parse import quote

from engine.atomicfile import write_atomic
from engine.boundedio import read_bytes
from trust.tuf.errors import TufRepositoryError
from trust.tuf.model import PUBLISH_ORDER, ROOT, SNAPSHOT, TARGETS_ROLES, TIMESTAMP

METADATA_DIR = "metadata"
KEYS_DIR = "keys"
LOCK_FILE = "lock"
MAX_METADATA_BYTES = 16 * 1024 * 1024
_ROOT_FILE = re.compile(r"([1-9][0-9]{0,9})\.root\.json")


def versioned_names(role: str, version: int) -> list[str]:
    """The file names one version of ``role`` is published under (see the module docstring)."""
    if role == TIMESTAMP:
        return [f"{TIMESTAMP}.json"]
    names = [f"{version}.{role}.json"]
    quoted = f"{version}.{quote(role, safe='')}.json"
    if quoted != names[0]:
        names.append(quoted)
    return names


class RepositoryFiles:
    """The files of one repository directory: reading the current state, publishing new versions."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self.metadata_dir = self.root / METADATA_DIR
        self.keys_dir = self.root / KEYS_DIR

    def exists(self) -> bool:
        return (self.metadata_dir / "1.root.json").is_file()

    @contextlib.contextmanager
    def creating(self) -> Iterator[None]:
        """Make a new repository's directories and hold its lock; refuse an existing repository.

        The check happens under the lock, so of two concurrent ``trust init`` runs one creates the
        repository and the other fails, instead of both writing version 1 with different keys.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        with self.locked():
            if self.exists() or (self.keys_dir.exists() and any(self.keys_dir.iterdir())):
                raise TufRepositoryError(f"{self.root} already holds a TUF repository; "
                                         "use `stockade trust key rotate` or a new directory")
            self.metadata_dir.mkdir(exist_ok=True)
            self.keys_dir.mkdir(mode=0o700, exist_ok=True)
            os.chmod(self.keys_dir, 0o700)
            yield

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the repository's writer lock (blocking) for the duration of the block."""
        if not self.root.is_dir():
            raise TufRepositoryError(f"{self.root} does not exist")
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def load(self) -> dict[str, bytes]:
        """The current version of every role, as published bytes."""
        if not self.exists():
            raise TufRepositoryError(f"{self.root} is not a TUF repository (no "
                                     f"{METADATA_DIR}/1.root.json); "
                                     "create one with `stockade trust init --repo DIR`")
        published = {ROOT: self._read(f"{self.root_version()}.root.json"),
                     TIMESTAMP: self._read(f"{TIMESTAMP}.json")}
        snapshot_version = self._version_in(published[TIMESTAMP], TIMESTAMP, "meta", "snapshot.json")
        published[SNAPSHOT] = self._read(f"{snapshot_version}.snapshot.json")
        meta = self._field(published[SNAPSHOT], SNAPSHOT, "meta")
        for filename in meta:
            role = filename.removesuffix(".json")
            if role not in TARGETS_ROLES:
                raise TufRepositoryError(f"snapshot lists {filename!r}: a Stockade repository has only "
                                         f"{', '.join(r + '.json' for r in TARGETS_ROLES)}")
            version = self._version_in(published[SNAPSHOT], SNAPSHOT, "meta", filename)
            published[role] = self._read(versioned_names(role, version)[0])
        return published

    def root_version(self) -> int:
        """The highest N for which ``N.root.json`` exists."""
        versions = [int(m.group(1)) for p in self.metadata_dir.iterdir()
                    if (m := _ROOT_FILE.fullmatch(p.name))]
        if not versions:
            raise TufRepositoryError(f"no root metadata in {self.metadata_dir}")
        return max(versions)

    def publish(self, pending: Iterable[tuple[str, int, bytes]]) -> list[str]:
        """Write new versions in ``PUBLISH_ORDER`` (versions of one role in ascending order).

        Returns the file names written, relative to the metadata directory.
        """
        written: list[str] = []
        ordered = sorted(pending, key=lambda p: (PUBLISH_ORDER.index(p[0]), p[1]))
        for role, version, data in ordered:
            for name in versioned_names(role, version):
                path = self.metadata_dir / name
                path.parent.mkdir(exist_ok=True)
                write_atomic(path, data)
                written.append(name)
            if role == ROOT:
                write_atomic(self.metadata_dir / "root.json", data)
        return written

    def _read(self, name: str) -> bytes:
        path = self.metadata_dir / name
        if not path.exists():  # a clearer diagnosis than ENOENT; the bounded read still fails cleanly
            raise TufRepositoryError(f"{path} is missing: the repository is incomplete")
        # Nothing read from disk is trusted blindly: the size is bounded even in one's own repository.
        return read_bytes(path, MAX_METADATA_BYTES, what=str(path), error=TufRepositoryError)

    @staticmethod
    def _field(data: bytes, role: str, name: str) -> dict:  # type: ignore[type-arg]
        try:
            value = json.loads(data)["signed"][name]
        except (ValueError, KeyError, TypeError):
            raise TufRepositoryError(f"{role} metadata has no signed.{name}") from None
        if not isinstance(value, dict):
            raise TufRepositoryError(f"{role} metadata: signed.{name} is not an object")
        return value

    def _version_in(self, data: bytes, role: str, name: str, key: str) -> int:
        entry = self._field(data, role, name).get(key)
        version = entry.get("version") if isinstance(entry, dict) else None
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise TufRepositoryError(f"{role} metadata lists no valid version for {key}")
        return version
