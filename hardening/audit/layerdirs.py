"""An image's files read from its unpacked layer directories (the store's overlay lowerdirs).

Layers are walked without following symbolic links, and a path is read only when no component of it
is a link: a layer that holds ``etc -> /etc`` must not make the audit read the host's files.
Overlay whiteouts (character devices 0:0) mark deletions and are not files.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterator, Sequence

from hardening.audit.targets import LayerFile, image_path

_KINDS = ((stat.S_ISDIR, "dir"), (stat.S_ISREG, "file"), (stat.S_ISLNK, "link"),
          (stat.S_ISCHR, "char"), (stat.S_ISBLK, "block"), (stat.S_ISFIFO, "fifo"))


def _whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def layer_files(dirs: Sequence[Path]) -> Iterator[LayerFile]:
    """Every entry of every layer directory, bottom to top, whiteouts excluded."""
    for index, top in enumerate(dirs):
        for current, subdirs, names in os.walk(top):
            for name in subdirs + names:
                full = os.path.join(current, name)
                try:
                    st = os.lstat(full)
                except OSError:
                    continue
                if _whiteout(st):
                    continue
                kind = next((k for test, k in _KINDS if test(st.st_mode)), "other")
                yield LayerFile(image_path(os.path.relpath(full, top)), stat.S_IMODE(st.st_mode),
                                st.st_uid, st.st_gid, kind, st.st_size, index)


def read_layer_file(dirs: Sequence[Path], path: str, limit: int) -> bytes | None:
    """What a container sees at ``path``: the top-most layer holding it, unless deleted above."""
    parts = image_path(path).strip("/").split("/")
    for top in reversed(dirs):
        current = top
        for i, part in enumerate(parts):
            current = current / part
            try:
                st = os.lstat(current)
            except (FileNotFoundError, NotADirectoryError):
                break
            if _whiteout(st) or stat.S_ISLNK(st.st_mode):
                return None
            if i == len(parts) - 1:
                if not stat.S_ISREG(st.st_mode):
                    return None
                fd = os.open(current, os.O_RDONLY | os.O_NOFOLLOW)
                with os.fdopen(fd, "rb") as f:
                    return f.read(limit)
    return None
