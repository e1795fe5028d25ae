"""Which capabilities a container gets: Docker's default set, adjusted by ``--cap-add``/``--cap-drop``.

Docker's rules, so a command line moved from Docker means the same thing here:

* the start is Docker's default set of 14 (``DEFAULT``), or every capability with ``--privileged``;
* ``--cap-drop ALL`` empties it, ``--cap-add ALL`` fills it;
* then each named capability is added or dropped; a capability both added and dropped stays added
  (the explicit grant wins, as in current Docker).

Names may be given with or without ``CAP_`` and in any case; unknown names are errors.
"""

from __future__ import annotations

from engine.runtime.capabilities import NAMES, normalize

DEFAULT = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
           "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
           "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE")


def _names(values: list[str]) -> tuple[bool, list[str]]:
    """(whether ALL was named, the other names normalized)."""
    has_all = any(v.strip().upper() in ("ALL", "CAP_ALL") for v in values)
    return has_all, [normalize(v) for v in values if v.strip().upper() not in ("ALL", "CAP_ALL")]


def resolve(cap_add: list[str], cap_drop: list[str], *, privileged: bool = False) -> list[str]:
    """The container's capability set (``CAP_*`` names, kernel order)."""
    add_all, adds = _names(cap_add)
    drop_all, drops = _names(cap_drop)
    if privileged or add_all:
        caps = set(NAMES)
    elif drop_all:
        caps = set()
    else:
        caps = set(DEFAULT)
    caps -= set(drops)
    caps |= set(adds)
    return [n for n in NAMES if n in caps]


def normalized(values: list[str]) -> list[str]:
    """Names as the record shows them (``CAP_NET_ADMIN``, ``ALL``)."""
    has_all, names = _names(values)
    return (["ALL"] if has_all else []) + names
