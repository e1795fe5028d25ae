"""A container's directory, resolved and made inside its root: nothing on the way may lead out.

``openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`` from the root: ".." and absolute symlinks stop
at the root, and magic links (``/proc/self/fd/N``, ``/proc/1/root``) are refused, since they jump to
whatever the descriptor or process holds: a host directory cloned for a bind mount, or, with the
host's PID namespace, the host's root. Plain ``os.makedirs`` follows them, and made directories on
the host (in a read-only bind's source, through the clone the executor holds for it).
"""

from __future__ import annotations

import os

from engine.runtime import syscalls as sc

_HOW = os.O_PATH | os.O_DIRECTORY
_CONFINED = sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS


def open_dir(sys_: sc.Syscalls, root: str, path: str, *, mode: int = 0o755) -> int:
    """An ``O_PATH`` descriptor of the directory ``path`` under ``root``, each missing component made
    (with ``mode``) in the directory resolved so far. Raises OSError (ELOOP for a magic link)."""
    root_fd = os.open(root, _HOW | os.O_CLOEXEC)
    try:
        try:
            return sys_.openat2(root_fd, path, _HOW, _CONFINED)
        except FileNotFoundError:
            pass
        fd = os.dup(root_fd)
        names = [p for p in path.split("/") if p]
        try:
            for i, name in enumerate(names):
                # Each prefix from the root itself: RESOLVE_IN_ROOT makes its dirfd the root, so an
                # absolute symlink met further down must not be resolved against the parent.
                prefix = "/".join(names[:i + 1])
                try:
                    nxt = sys_.openat2(root_fd, prefix, _HOW, _CONFINED)
                except FileNotFoundError:
                    os.mkdir(name, mode, dir_fd=fd)  # a dangling symlink here: EEXIST, refused
                    nxt = sys_.openat2(root_fd, prefix, _HOW, _CONFINED)
                os.close(fd)
                fd = nxt
        except BaseException:
            os.close(fd)
            raise
        return fd
    finally:
        os.close(root_fd)
