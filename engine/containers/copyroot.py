"""The copy storage driver: a container's root as a private copy of its image's layers.

For hosts (or configurations, ``storage.driver = "copy"``) without overlayfs, and for ``--userns=auto``
containers, whose copy is shifted into their private id block (layers are shared by every container
and owned by the image's own ids, which such a container does not map). The store's layers are in
overlay's "diff" form, so applying them bottom to top interprets overlay's markers the way overlayfs
would: a character device 0:0 is a whiteout (delete what lower layers had), a directory with the
``overlay.opaque`` xattr hides the lower layers' contents. The copy never follows a symlink: a lower
layer's ``etc -> /`` is replaced, not written through, when an upper layer has a directory ``etc``.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

_OPAQUE = (b"trusted.overlay.opaque", b"user.overlay.opaque")


def _is_opaque(path: str) -> bool:
    for name in _OPAQUE:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def _remove(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _copy_xattrs(src: str, dst: str) -> None:
    try:
        names = os.listxattr(src, follow_symlinks=False)
    except OSError:
        return
    for name in names:
        if "overlay." in name:
            continue
        try:
            os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False), follow_symlinks=False)
        except OSError:
            continue


def _finish(src_stat: os.stat_result, dst: str, *, link: bool, shift: tuple[int, int]) -> None:
    try:
        os.chown(dst, src_stat.st_uid + shift[0], src_stat.st_gid + shift[1], follow_symlinks=False)
    except PermissionError:
        pass  # rootless: ids outside our range stay ours
    if not link:
        os.chmod(dst, stat.S_IMODE(src_stat.st_mode))
    os.utime(dst, ns=(src_stat.st_atime_ns, src_stat.st_mtime_ns), follow_symlinks=False)


def _merge(src: str, dst: str, shift: tuple[int, int]) -> None:
    for entry in os.scandir(src):
        s, d = entry.path, os.path.join(dst, entry.name)
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            _remove(d)  # whiteout
            continue
        if stat.S_ISDIR(st.st_mode):
            try:
                existing = os.lstat(d)
            except FileNotFoundError:
                existing = None
            if existing is not None and (not stat.S_ISDIR(existing.st_mode) or _is_opaque(s)):
                _remove(d)
                existing = None
            if existing is None:
                os.mkdir(d, 0o700)
            _merge(s, d, shift)
            _copy_xattrs(s, d)
            _finish(st, d, link=False, shift=shift)
            continue
        _remove(d)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(s), d)
        elif stat.S_ISREG(st.st_mode):
            shutil.copyfile(s, d, follow_symlinks=False)
        else:
            os.mknod(d, st.st_mode, st.st_rdev)
        _copy_xattrs(s, d)
        _finish(st, d, link=stat.S_ISLNK(st.st_mode), shift=shift)


def copy_layers(layers: list[Path], dest: Path, *, shift: tuple[int, int] = (0, 0)) -> None:
    """Build ``dest`` (which must not exist) from ``layers``, bottom to top, adding ``shift`` (uid, gid)
    to every owner: a ``--userns=auto`` container's root is host id ``shift``, and its files must be
    owned inside its block to be the image's files as the image meant them."""
    dest.mkdir(mode=0o755)
    for layer in layers:
        _merge(str(layer), str(dest), shift)
    os.chown(dest, shift[0], shift[1])


def main(argv: list[str]) -> int:
    """``python -m engine.containers.copyroot DEST LAYER…``: the copy in a process of its own, for a
    rootless store, whose layers are copied as root of the user's namespace (owners kept)."""
    if len(argv) < 2:
        print("usage: python -m engine.containers.copyroot DEST LAYER...", file=sys.stderr)
        return 2
    try:
        copy_layers([Path(p) for p in argv[1:]], Path(argv[0]))
    except OSError as exc:
        print(f"stockade: error: copying the image's layers: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
