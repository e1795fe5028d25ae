"""Who the container process runs as: ``-u name|uid[:group|gid]`` resolved in the image's own files.

Resolution happens inside the container, after pivot_root, reading ``/etc/passwd`` and ``/etc/group``
of the container's root: a name means what the image says it means, and a hostile symlink in the
image can only lead back into the container. The rules are Docker's (runc's ``GetExecUser``):

* a name must exist in ``/etc/passwd``; a numeric uid need not (it then gets gid 0 and home ``/``);
* without an explicit group, the primary group comes from ``/etc/passwd`` and the supplementary groups
  are every ``/etc/group`` entry listing the user's name;
* an explicit group (name or gid) replaces both; a group name must exist in ``/etc/group``;
* ``--group-add`` entries are added on top (names resolved in ``/etc/group``).
"""

from __future__ import annotations

import os
import stat

from engine.errors import StockadeError
from engine.records import Record, field

MAX_ID = 2**32 - 2  # (uid_t)-1 is "no change" to the kernel
MAX_FILE = 4 * 1024 * 1024  # bound on /etc/passwd and /etc/group as read from an image


class IdentityError(StockadeError):
    """A user or group named for the container does not exist in the image."""

    exit_code = 125


class Identity(Record):
    uid: int
    gid: int
    groups: list[int] = field(default_factory=list)
    home: str = "/"


def _numeric(text: str) -> int | None:
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    if value > MAX_ID:
        raise IdentityError(f"id {text} is out of range (at most {MAX_ID})")
    return value


def _entries(text: str, width: int) -> list[list[str]]:
    """Colon-separated records, skipping comments, blank and malformed lines (as libc does)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) >= width:
            out.append(parts)
    return out


def resolve(user: str, group_add: list[str], passwd: str, group: str) -> Identity:
    """Resolve ``user`` (``name``, ``uid``, ``name:group``, ``uid:gid``) against the image's files."""
    spec = user or "0"
    name, _, group_arg = spec.partition(":")
    if not name:
        raise IdentityError(f"invalid user {user!r}: empty user name")
    users = _entries(passwd, 7)
    groups = _entries(group, 4)

    uid = _numeric(name)
    matched = None
    for entry in users:
        if (uid is None and entry[0] == name) or (uid is not None and entry[2] == str(uid)):
            matched = entry
            break
    if matched is None and uid is None:
        raise IdentityError(f"unable to find user {name}: no matching entries in the image's /etc/passwd")
    if matched is not None:
        uid = _numeric(matched[2])
        gid = _numeric(matched[3])
        home = matched[5] or "/"
    else:
        gid, home = 0, "/"
    if uid is None or gid is None:
        raise IdentityError(f"user {name}: malformed entry in the image's /etc/passwd")

    supplementary: list[int] = []
    if group_arg:
        gid = _lookup_group(group_arg, groups)
    elif matched is not None:
        for entry in groups:
            members = entry[3].split(",") if entry[3] else []
            number = _numeric(entry[2])
            if matched[0] in members and number is not None and number not in supplementary:
                supplementary.append(number)
    for extra in group_add:
        number = _lookup_group(extra, groups)
        if number not in supplementary:
            supplementary.append(number)
    return Identity(uid=uid, gid=gid, groups=supplementary, home=home)


def _lookup_group(text: str, groups: list[list[str]]) -> int:
    number = _numeric(text)
    if number is not None:
        return number
    for entry in groups:
        if entry[0] == text:
            found = _numeric(entry[2])
            if found is not None:
                return found
    raise IdentityError(f"unable to find group {text}: no matching entries in the image's /etc/group")


def read_bounded(path: str) -> str:
    """Read an image file with a size bound; a missing file reads as empty (busybox-less images)."""
    try:
        # O_NONBLOCK: a fifo planted in its place (by the image, or by the container before an
        # exec) must not hold the process here, still unconfined, until someone writes to it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return ""
    with open(fd, "rb") as f:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            return ""
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            raise IdentityError(f"{path} in the image is a fifo or a socket, not a file")
        try:
            data = f.read(MAX_FILE + 1)
        except OSError as exc:
            raise IdentityError(f"cannot read {path} in the image: {exc.strerror}") from None
    if len(data) > MAX_FILE:
        raise IdentityError(f"{path} in the image is larger than {MAX_FILE} bytes")
    return data.decode("utf-8", "replace")
