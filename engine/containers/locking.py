"""A container's lock: the ``flock`` that makes the commands changing one container take turns.

Shared by the engine's container store (a ``.lock`` file in the container's directory) and
``stockade-runtime`` (the state directory itself). Imports nothing beyond ``os`` and ``fcntl``
(not even ``contextlib``): ``stockade-runtime start``, ``kill`` and ``delete`` are short processes
that pay for every module they load.
"""

from __future__ import annotations

import fcntl
import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (~3 ms of a runtime call)
if TYPE_CHECKING:
    from typing import Callable


class ExclusiveLock:
    """``with ExclusiveLock(path, flags, missing):`` holds an exclusive lock on ``path`` (opened with
    ``flags``) for the block, and raises ``missing()`` when it, or its directory, does not exist."""

    def __init__(self, path: str | os.PathLike[str], flags: int, missing: Callable[[], Exception]) -> None:
        self.path, self.flags, self.missing = path, flags, missing
        self.fd = -1

    def __enter__(self) -> None:
        try:
            fd = os.open(self.path, self.flags | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            raise self.missing() from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def __exit__(self, *_: object) -> None:
        os.close(self.fd)
        self.fd = -1
