"""A test double for ``engine.runtime.syscalls.Syscalls``: records calls, performs none.

Failures can be scripted per call name (``fail={"mount:devpts": OSError(EINVAL, ...)}``) to drive the
fallbacks the real kernel takes in a user namespace."""

from __future__ import annotations

import os
from typing import Any

from engine.runtime.syscalls import Syscalls


class RecordingSyscalls(Syscalls):
    def __init__(self, fail: dict[str, OSError] | None = None) -> None:
        super().__init__()  # the real openat2: resolving a path inside a scratch root changes nothing
        self.calls: list[tuple[Any, ...]] = []
        self.fail = dict(fail or {})
        self._fds: list[int] = []

    def _maybe_fail(self, key: str) -> None:
        exc = self.fail.pop(key, None)
        if exc is not None:
            raise exc

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int = 0,
              data: str | None = None) -> None:
        self._maybe_fail(f"mount:{fstype}")
        self.calls.append(("mount", source, target, fstype, flags, data))

    def umount2(self, target: str, flags: int = 0) -> None:
        self.calls.append(("umount2", target, flags))

    def pivot_root(self, new_root: str, put_old: str) -> None:
        self.calls.append(("pivot_root", new_root, put_old))

    def open_tree(self, path: str, *, recursive: bool) -> int:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        self.calls.append(("open_tree", path, recursive))
        return fd

    def clone_tree(self, tree_fd: int) -> int:
        fd = os.open(f"/proc/self/fd/{tree_fd}", os.O_PATH | os.O_CLOEXEC)
        self.calls.append(("clone_tree", os.readlink(f"/proc/self/fd/{tree_fd}")))
        return fd

    def mount_setattr(self, tree_fd: int, attr_set: int) -> None:
        self.calls.append(("mount_setattr", os.readlink(f"/proc/self/fd/{tree_fd}"), attr_set))

    def move_mount(self, tree_fd: int, target: str, to_fd: int | None = None) -> None:
        where = target if to_fd is None else os.readlink(f"/proc/self/fd/{to_fd}")
        self.calls.append(("move_mount", os.readlink(f"/proc/self/fd/{tree_fd}"), where))

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        self.calls.append(("prctl", option, arg2))
        return 0

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        self.calls.append(("capset", effective, permitted, inheritable))

    def seccomp_load(self, program: bytes) -> None:
        self.calls.append(("seccomp", len(program)))

    def of(self, name: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == name]
