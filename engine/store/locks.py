"""File locks that work between processes *and* between threads of one process.

``flock(2)`` locks belong to an open file description, so two threads that each open the lock file
exclude each other just as two processes do (POSIX ``fcntl`` record locks would not: they are
per-process). A lock file may be deleted by the garbage collector while it holds the lock; whoever
then acquires a lock on the unlinked file notices (its inode is no longer the one at the path) and
tries again, so deleting lock files never lets two holders in at once.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class Busy(Exception):
    """A non-blocking lock attempt found the lock held."""


def _open_locked(path: Path, operation: int) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, operation)
        except BlockingIOError:
            os.close(fd)
            raise Busy(str(path)) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the file was removed while we waited: lock the new one


@contextmanager
def locked(path: Path, *, shared: bool = False, blocking: bool = True) -> Iterator[None]:
    """Hold a lock on ``path`` (created if missing) for the ``with`` block.

    Raises :class:`Busy` when ``blocking`` is False and another holder has it.
    """
    operation = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if blocking else fcntl.LOCK_NB)
    fd = _open_locked(path, operation)
    try:
        yield
    finally:
        os.close(fd)


def remove_lock_file(path: Path) -> bool:
    """Delete an idle lock file (the GC's job); False if someone holds it."""
    try:
        fd = _open_locked(path, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except Busy:
        return False
    try:
        path.unlink(missing_ok=True)
    finally:
        os.close(fd)
    return True
