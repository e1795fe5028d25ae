"""Describe a directory tree completely enough to compare two unpackings of one layer."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path


def describe(path: Path, *, times: bool = True) -> dict[str, object]:
    """Type, mode, owner, times, content, link target, device and xattrs of one path."""
    st = os.lstat(path)
    d: dict[str, object] = {"mode": oct(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}
    if times:
        d["mtime"] = st.st_mtime_ns
    if stat.S_ISREG(st.st_mode):
        d["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        d["nlink"] = st.st_nlink
    elif stat.S_ISLNK(st.st_mode):
        d["target"] = os.readlink(path)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        d["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
    if not stat.S_ISLNK(st.st_mode):
        d["xattrs"] = sorted((k, os.getxattr(path, k, follow_symlinks=False))
                             for k in os.listxattr(path, follow_symlinks=False))
    return d


def snapshot(root: Path, *, times: bool = True, skip: tuple[str, ...] = ()) -> dict[str, object]:
    """Every path under ``root`` (``.`` for the root itself) mapped to its description; hardlinked
    files also name the first path of their inode, so link groups compare too."""
    out: dict[str, object] = {".": describe(root, times=times)}
    first_of_inode: dict[int, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if os.path.relpath(os.path.join(dirpath, d), root)
                             not in skip)
        for name in dirnames + sorted(filenames):
            p = Path(dirpath, name)
            rel = os.path.relpath(p, root)
            if rel in skip:
                continue
            d = describe(p, times=times)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                d["link_group"] = first_of_inode.setdefault(st.st_ino, rel)
            out[rel] = d
    return out


def depth(root: Path, limit: int) -> int:
    """How many directory levels lie below ``root``, counting no further than ``limit + 1``
    (iterative, so a hostile depth cannot exhaust the stack)."""
    level, current = 0, [str(root)]
    while current and level <= limit:
        below = []
        for directory in current:
            with os.scandir(directory) as entries:
                below += [e.path for e in entries if e.is_dir(follow_symlinks=False)]
        if below:
            level += 1
        current = below
    return level


def remove_tree(root: Path) -> None:
    """Delete ``root`` and everything under it, deepest first, without recursion.

    Python 3.11's ``shutil.rmtree`` recurses once per level and raises RecursionError about 1,000
    levels down, so a deep tree left in pytest's temp area breaks the cleanup of a later session."""
    stack: list[tuple[str, bool]] = [(str(root), False)]
    while stack:
        path, emptied = stack.pop()
        if emptied:
            os.rmdir(path)
            continue
        stack.append((path, True))
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, False))
                else:
                    os.unlink(entry.path)

