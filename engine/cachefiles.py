"""Cache entries as files: small JSON documents that expire, in a directory only the owner can write.

The verification cache (``trust.cache``) and the admission cache (``stockade.gatecache``) keep the
same kind of entry: found by SHA-256 over everything the cached answer depends on, stamped with a
format number and an expiry, written atomically 0600 in a 0700 directory. A cache only saves time, so
nothing here raises: an entry that is missing, unreadable, malformed, of another format, not the
one asked for, or expired is a miss (an expired one is removed), and a failure to write is no entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

from engine.atomicfile import write_atomic

MAX_ENTRY_BYTES = 4 * 1024 * 1024


def content_key(material: Any) -> str:
    """Hex SHA-256 of ``material`` as canonical JSON (sorted keys, no spaces; other values as str)."""
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def read_entry(path: Path, *, expect: Mapping[str, Any], now: float,
               max_bytes: int = MAX_ENTRY_BYTES) -> dict[str, Any] | None:
    """The entry at ``path`` when each ``expect`` field has its value (its format, its key) and its
    ``expires`` is after ``now``; None otherwise."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(max_bytes + 1)
        if len(raw) > max_bytes:
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


def write_entry(path: Path, entry: Mapping[str, Any]) -> None:
    """Store ``entry`` at ``path`` atomically (0600; the directory made or narrowed to 0700)."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path.parent, 0o700)
        write_atomic(path, json.dumps(entry).encode(), mode=0o600)
