"""Linux capabilities: names, masks, and the order in which a container process drops them.

The order is the one runc uses and the kernel demands:

1. drop every capability outside the bounding set (``PR_CAPBSET_DROP`` needs CAP_SETPCAP, so this
   happens while the process still has everything);
2. keep the permitted set across the uid change (``PR_SET_KEEPCAPS``), switch groups and user;
3. ``capset`` effective, permitted and inheritable exactly;
4. clear the ambient set and raise the requested ambient capabilities (they need to be permitted
   and inheritable already).

Execve then recomputes the sets from these: a non-root user keeps only the ambient set, root keeps
the bounding set. The inheritable set stays empty unless ambient capabilities need it (CVE-2022-24769).
"""

from __future__ import annotations

from engine.errors import StockadeError
from engine.runtime import syscalls as sc

# capability(7), in kernel order.
NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
NUMBERS = {name: i for i, name in enumerate(NAMES)}


class CapabilityError(StockadeError):
    """A capability name is not one this kernel knows."""


def normalize(name: str) -> str:
    """``net_admin``, ``NET_ADMIN`` and ``CAP_NET_ADMIN`` all name ``CAP_NET_ADMIN``."""
    upper = name.strip().upper()
    full = upper if upper.startswith("CAP_") else f"CAP_{upper}"
    if full not in NUMBERS:
        raise CapabilityError(f"unknown capability {name!r}",
                              hint="names are those of capabilities(7), e.g. NET_BIND_SERVICE")
    return full


def mask(names: list[str] | tuple[str, ...]) -> int:
    """The 64-bit mask of a list of ``CAP_*`` names."""
    value = 0
    for name in names:
        value |= 1 << NUMBERS[normalize(name)]
    return value


def last_cap() -> int:
    """The highest capability this kernel knows (capabilities newer than our table are dropped too)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return len(NAMES) - 1


def current_bounding() -> int:
    """This process's bounding set: what it can still grant. A host may withhold some capabilities
    even from root (this one has no CAP_SYS_RESOURCE); a request for them must not fail capset."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return (1 << 64) - 1


def drop_bounding(keep: int, syscalls: sc.Syscalls, top: int) -> None:
    """Remove from the bounding set every capability 0..top that ``keep`` does not hold."""
    for cap in range(top + 1):
        if not keep & (1 << cap):
            syscalls.prctl(sc.PR_CAPBSET_DROP, cap)


def apply_sets(caps: "CapMasks", syscalls: sc.Syscalls) -> None:
    """Steps 3 and 4 above: set the sets exactly, then the ambient set (after the uid change)."""
    syscalls.capset(caps.effective, caps.permitted, caps.inheritable)
    syscalls.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
    for cap in range(64):
        if caps.ambient & (1 << cap):
            syscalls.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_RAISE, cap)


class CapMasks:
    """The five sets of a spec as masks, computed once before the process starts dropping."""

    def __init__(self, bounding: int, effective: int, permitted: int, inheritable: int,
                 ambient: int) -> None:
        self.bounding, self.effective, self.permitted = bounding, effective, permitted
        # Ambient capabilities must be permitted and inheritable, or PR_CAP_AMBIENT_RAISE fails.
        self.inheritable = inheritable | ambient
        self.permitted |= ambient
        self.ambient = ambient

    @classmethod
    def from_spec(cls, sets: object, available: int = (1 << 64) - 1) -> "CapMasks":
        """The spec's sets, limited to ``available`` (the capabilities this process can grant)."""
        return cls(*(mask(getattr(sets, n)) & available for n in
                     ("bounding", "effective", "permitted", "inheritable", "ambient")))
