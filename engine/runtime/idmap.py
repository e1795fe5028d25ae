"""User-namespace id mappings: subordinate ranges, the maps a container gets, and writing them.

* Rootless: the user's own uid becomes root in the container and ``/etc/subuid``/``/etc/subgid``
  supply the rest (``0 -> uid``, ``1..n -> subordinate range``). Only the setuid helpers
  ``newuidmap``/``newgidmap`` may write such maps, and they check the ranges themselves.
* ``--userns=auto`` as root: a private block of 65536 ids taken from root's subordinate ranges (entries
  for ``root`` or ``containers`` in ``/etc/subuid``), different for every container, so container root
  is not host root and two containers do not share ids.

Root writes ``/proc/PID/uid_map`` directly; the maps are written by the parent while the child waits.
"""

from __future__ import annotations

import os

from engine.errors import StockadeError
from engine.records import Record
from engine.spec import IDMapping

AUTO_SIZE = 65536


class IDMapError(StockadeError):
    """The id mappings for a user namespace cannot be found or written."""

    exit_code = 125


class SubRange(Record, frozen=True):
    start: int
    count: int


def parse_subid(text: str, names: tuple[str, ...]) -> list[SubRange]:
    """The ranges ``/etc/subuid`` (or subgid) gives to any of ``names`` (user name or numeric id)."""
    out = []
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) != 3 or parts[0] not in names:
            continue
        start, count = parts[1], parts[2]
        if (start + count).isascii() and start.isdigit() and count.isdigit() and int(count) > 0:
            out.append(SubRange(int(start), int(count)))
    return out


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def subordinate(user: str, uid: int, kind: str = "uid") -> list[SubRange]:
    return parse_subid(_read(f"/etc/sub{kind}"), (user, str(uid)))


def rootless_mappings(own: int, ranges: list[SubRange], *, what: str, user: str) -> list[IDMapping]:
    """``0 -> own`` then the subordinate ranges from container id 1 upwards."""
    if not ranges:
        raise IDMapError(f"no subordinate {what} range for user {user} in /etc/sub{what}",
                         hint=f"add one, e.g. usermod --add-sub{what}s 100000-165535 {user}")
    maps = [IDMapping(0, own, 1)]
    next_id = 1
    for r in ranges:
        maps.append(IDMapping(next_id, r.start, r.count))
        next_id += r.count
    return maps


def auto_block(ranges: list[SubRange], used: set[int], size: int = AUTO_SIZE) -> int:
    """The host start of a free ``size``-id block inside ``ranges`` not starting at any of ``used``."""
    for r in ranges:
        start = r.start
        while start + size <= r.start + r.count:
            if not any(u < start + size and start < u + size for u in used):
                return start
            start += size
    raise IDMapError(f"no free block of {size} subordinate ids left for --userns=auto",
                     hint="add a larger range for root in /etc/subuid and /etc/subgid")


def become_root() -> None:
    """Once its maps are written, become the user namespace's root: uid and gid 0 inside, with every
    capability over the namespace (supplementary groups dropped where the kernel allows it)."""
    try:
        os.setgroups([])
    except PermissionError:
        pass  # setgroups is denied in a namespace whose gid map an unprivileged writer made
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def _helper(name: str) -> str:
    for d in ("/usr/bin", "/bin", "/usr/sbin", "/sbin"):
        path = os.path.join(d, name)
        if os.access(path, os.X_OK):
            return path
    raise IDMapError(f"{name} is not installed", hint="install the uidmap package")


def _format(maps: list[IDMapping]) -> str:
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps)


def write(pid: int, uid_maps: list[IDMapping], gid_maps: list[IDMapping], *, helper: bool) -> None:
    """Give process ``pid`` (just unshared into a new user namespace) its id mappings."""
    if helper:
        import subprocess  # nosec B404 # newuidmap/newgidmap with argument lists; rootless only

        for name, maps in (("newuidmap", uid_maps), ("newgidmap", gid_maps)):
            argv = [_helper(name), str(pid)]
            for m in maps:
                argv += [str(m.container_id), str(m.host_id), str(m.size)]
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)  # nosec B603
            if proc.returncode != 0:
                raise IDMapError(f"{name} failed: {proc.stderr.strip() or proc.returncode}")
        return
    for name, maps in (("uid_map", uid_maps), ("gid_map", gid_maps)):
        try:
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(_format(maps))
        except OSError as exc:
            raise IDMapError(f"cannot write /proc/{pid}/{name}: {exc.strerror}") from None
