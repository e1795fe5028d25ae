"""Run a helper program as root of a fresh user namespace: rootless work that needs real ownership.

A rootless store must unpack a layer owned by the ids the image names (a file of ``app``, uid 1000,
must become host uid ``subuid_start + 999``), which only the root of a user namespace carrying the
user's subordinate ranges can do. ``run_in_userns`` forks, unshares a user namespace, has the parent
write the maps with ``newuidmap``/``newgidmap`` (the same maps a rootless container gets, see
``containers.create.user_mappings``), becomes uid 0 inside and execs ``argv``, e.g.
``python -m engine.layers apply BLOB DEST --rootless``; it returns the exit status and output.
"""

from __future__ import annotations

import os
import selectors

from engine.runtime import idmap
from engine.runtime import syscalls as sc
from engine.spec import IDMapping


def run_in_userns(argv: list[str], uid_maps: list[IDMapping], gid_maps: list[IDMapping], *,
                  helper: bool = True, syscalls: sc.Syscalls | None = None,
                  capture: bool = True) -> tuple[int, bytes, bytes]:
    """Run ``argv`` as uid 0 of a new user namespace with the given maps; (exit code, stdout, stderr).
    ``capture=False``: ``argv`` shares this process's stdin, stdout and stderr (``stockade unshare``)
    and the output returned is empty."""
    sys_ = syscalls or sc.default()
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    out_r, out_w = os.pipe() if capture else (-1, -1)
    err_r, err_w = os.pipe() if capture else (-1, -1)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            for fd in (ready_r, go_w, out_r, err_r):
                if fd >= 0:
                    os.close(fd)
            sys_.unshare(sc.CLONE_NEWUSER)
            os.write(ready_w, b"u")
            if os.read(go_r, 1) != b"g":
                os._exit(125)
            idmap.become_root()
            if capture:
                null = os.open(os.devnull, os.O_RDONLY)
                for src, target in ((null, 0), (out_w, 1), (err_w, 2)):
                    os.dup2(src, target)
            os.execv(argv[0], argv)
        except BaseException as exc:  # noqa: BLE001 - reported on stderr, exit 125
            os.write(2, f"stockade: error: cannot run {argv[0]} in a user namespace: {exc}\n".encode())
        os._exit(125)
    for fd in (ready_w, go_r, out_w, err_w):
        if fd >= 0:
            os.close(fd)
    try:
        if os.read(ready_r, 1) == b"u":
            idmap.write(pid, uid_maps, gid_maps, helper=helper)
            os.write(go_w, b"g")
    finally:
        # Without "g" (the maps failed) the child reads end-of-file and exits; reap it either way.
        os.close(ready_r)
        os.close(go_w)
        out, err = _collect(out_r, err_r) if capture else (b"", b"")
        _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out, err


def _collect(out_r: int, err_r: int) -> tuple[bytes, bytes]:
    chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}
    sel = selectors.DefaultSelector()
    for fd in chunks:
        sel.register(fd, selectors.EVENT_READ)
    open_fds = set(chunks)
    while open_fds:
        for key, _ in sel.select():
            data = os.read(key.fd, 65536)
            if data:
                chunks[key.fd].append(data)
            else:
                sel.unregister(key.fd)
                os.close(key.fd)
                open_fds.discard(key.fd)
    sel.close()
    return b"".join(chunks[out_r]), b"".join(chunks[err_r])
