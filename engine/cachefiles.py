"""Cache entries as files: small JSON documents that expire, in a directory only the owner can write.

The verification cache (``trust.cache``) and the admission cache (``stockade.gatecache``) keep the
same kind of entry: found by SHA-256 over everything the cached answer depends on, stamped with a
format number and an expiry, written atomically 0600 in a 0700 directory. A cache only saves time, so
nothing here raises: an entry that is missing, unreadable, malformed, of another format, not the
one asked for, or expired is a miss (an expired one is removed), and a failure to write is no entry.

An entry is believed only when this user wrote it (``read_private``): a regular file, not reached
through a symlink, owned by the effective uid and writable by nobody else. A cache directory can sit
where another user has a hand (under a shared ``--root``, a pre-created XDG directory, a directory
whose chmod failed), and a positive verdict planted there must not turn a failure into a pass.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any, Mapping

from engine.atomicfile import write_atomic

MAX_ENTRY_BYTES = 4 * 1024 * 1024


def content_key(material: Any) -> str:
    """Hex SHA-256 of ``material`` as canonical JSON (sorted keys, no spaces; other values as str)."""
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def written_by_us(st: os.stat_result) -> bool:
    """A regular file of this user's that nobody else can write: the only kind of cache file
    believed (with ``lstat``, a symlink is not one)."""
    return stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022


def read_private(path: Path, max_bytes: int) -> bytes | None:
    """The bytes of ``path`` when this user wrote it and nobody else could have (see the module
    docstring); None for anything else, a larger file included. Raises OSError (a missing file)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        if not written_by_us(os.fstat(fd)):
            return None
        raw = fh.read(max_bytes + 1)
    return raw if len(raw) <= max_bytes else None


def read_entry(path: Path, *, expect: Mapping[str, Any], now: float,
               max_bytes: int = MAX_ENTRY_BYTES) -> dict[str, Any] | None:
    """The entry at ``path`` when each ``expect`` field has its value (its format, its key) and its
    ``expires`` is after ``now``; None otherwise."""
    try:
        raw = read_private(path, max_bytes)
        if raw is None:
            return None
        entry = json.loads(raw)
        if not isinstance(entry, dict) or any(entry.get(k) != v for k, v in expect.items()):
            return None
        if float(entry["expires"]) <= now:
            path.unlink(missing_ok=True)
            return None
    except (OSError, ValueError, RecursionError, KeyError, TypeError):
        return None
    return entry


def private_directory(directory: Path) -> bool:
    """Make ``directory`` (0700) or narrow it to 0700, and say whether entries may go there: only
    into a real directory (not a symlink, whose chmod would land on its target) this user owns.
    Raises OSError when it cannot be made or opened."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if os.fstat(fd).st_uid != os.geteuid():
            return False
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    return True


def write_entry(path: Path, entry: Mapping[str, Any]) -> None:
    """Store ``entry`` at ``path`` atomically (0600, in a ``private_directory``)."""
    with contextlib.suppress(OSError):
        if private_directory(path.parent):
            write_atomic(path, json.dumps(entry).encode(), mode=0o600)
