"""Atomic file writes: a temporary name in the same directory, fsync, rename, fsync the directory.

Nothing half-written is ever visible under its final name, whether the writer is killed (``kill -9``)
or the machine loses power. Used for every file the engine rewrites in place: the image index,
credentials, metadata beside unpacked layers.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make a rename or creation in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(final: Path, tag: str = "tmp") -> Path:
    """A fresh, unguessable sibling of ``final`` that no other writer can be using.

    ``os.urandom`` rather than ``secrets``: the same kernel randomness, without importing hmac and
    hashlib on every start (this module is on the warm ``run`` path)."""
    return final.with_name(f".{final.name}.{tag}-{os.urandom(6).hex()}")


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically; the file is created with ``mode`` (never wider)."""
    tmp = temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
