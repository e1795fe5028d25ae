"""What this kernel offers containers: user namespaces, overlayfs, seccomp, cgroups.

Read from /proc and /sys only (no probing syscalls), so ``info`` is cheap and safe to run anywhere.
The runtime asks the same questions before it launches, so the answers ``info`` prints are the ones the
engine acts on: in particular which cgroup hierarchy enforces limits on a hybrid v1/v2 host.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

# Controllers the engine needs for --memory, --pids-limit and --cpus.
LIMIT_CONTROLLERS = ("memory", "pids", "cpu")


def _read(path: str | Path) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


@dataclass(frozen=True)
class CgroupInfo:
    """The cgroup layout: ``v1``, ``v2`` or ``hybrid``, and which version the engine uses for limits."""

    layout: str
    v2_mount: str | None
    v2_controllers: tuple[str, ...]
    v1_mounts: dict[str, str] = field(default_factory=dict)  # controller -> mount point

    @property
    def manager(self) -> str:
        """``v2`` when the unified tree delegates every limit controller, else ``v1`` if mounted.
        This is the host's answer, which is root's; a rootless user asks :meth:`manager_for`."""
        if self.v2_mount and all(c in self.v2_controllers for c in LIMIT_CONTROLLERS):
            return "v2"
        if all(c in self.v1_mounts for c in LIMIT_CONTROLLERS):
            return "v1"
        return "none"

    def manager_for(self, *, rootless: bool) -> str:
        """The hierarchy that enforces limits for this user: an unprivileged user can only be given
        a v2 subtree (delegation); v1 hierarchies belong to root, so a rootless user there gets none
        and the engine ignores --memory, --pids-limit and --cpus with a warning."""
        if rootless and self.manager != "v2":
            return "none"
        return self.manager

    def describe_for(self, *, rootless: bool) -> str:
        """One line for ``info``: the manager that applies to this user, and what that means."""
        manager = self.manager_for(rootless=rootless)
        if manager != "none":
            return f"{manager} (used for --memory, --pids-limit, --cpus)"
        if rootless and self.manager == "v1":
            return "none (rootless on cgroup v1: limits are not enforced)"
        return "none (no hierarchy offers memory, pids and cpu: limits are not enforced)"


def _mounts(mountinfo: str) -> list[tuple[str, str, str]]:
    """(mount point, fstype, super options) for each line of /proc/self/mountinfo."""
    out = []
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        parts, rparts = left.split(), right.split()
        if len(parts) >= 5 and len(rparts) >= 3:
            out.append((parts[4].replace("\\040", " "), rparts[0], rparts[2]))
    return out


def probe_cgroups(mountinfo: str | None = None) -> CgroupInfo:
    """Classify the cgroup layout from mountinfo (a parameter so tests can feed other hosts' layouts)."""
    text = mountinfo if mountinfo is not None else (_read("/proc/self/mountinfo") or "")
    v2_mount: str | None = None
    v1: dict[str, str] = {}
    for point, fstype, opts in _mounts(text):
        if fstype == "cgroup2" and v2_mount is None:
            v2_mount = point
        elif fstype == "cgroup":
            for opt in opts.split(","):
                if opt in ("memory", "pids", "cpu", "cpuacct", "cpuset", "devices", "freezer", "blkio",
                           "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc"):
                    v1.setdefault(opt, point)
    controllers: tuple[str, ...] = ()
    if v2_mount:
        controllers = tuple((_read(Path(v2_mount) / "cgroup.controllers") or "").split())
    layout = "hybrid" if (v1 and v2_mount) else ("v1" if v1 else ("v2" if v2_mount else "none"))
    return CgroupInfo(layout=layout, v2_mount=v2_mount, v2_controllers=controllers, v1_mounts=v1)


@dataclass(frozen=True)
class HostFeatures:
    """Kernel features relevant to running hardened containers."""

    kernel: str
    user_namespaces: bool
    max_user_namespaces: int
    overlayfs: bool
    seccomp: bool
    seccomp_actions: tuple[str, ...]
    cgroups: CgroupInfo
    newuidmap: bool
    rootless: bool = False  # whose view: the cgroup manager reported is the one that applies to it

    def as_dict(self) -> dict[str, object]:
        return {
            "kernel": self.kernel,
            "user_namespaces": self.user_namespaces,
            "max_user_namespaces": self.max_user_namespaces,
            "overlayfs": self.overlayfs,
            "seccomp": self.seccomp,
            "seccomp_actions": list(self.seccomp_actions),
            "newuidmap": self.newuidmap,
            "cgroup_layout": self.cgroups.layout,
            "cgroup_manager": self.cgroups.manager_for(rootless=self.rootless),
            "cgroup_host_manager": self.cgroups.manager,
            "cgroup_v2_controllers": list(self.cgroups.v2_controllers),
            "cgroup_v1_controllers": sorted(self.cgroups.v1_mounts),
        }


def probe(*, rootless: bool = False) -> HostFeatures:
    """Read the host's features now, as they apply to a rootless user or to root."""
    max_userns = int((_read("/proc/sys/user/max_user_namespaces") or "0").strip() or 0)
    # Debian kernels may gate unprivileged user namespaces behind this sysctl.
    unpriv = (_read("/proc/sys/kernel/unprivileged_userns_clone") or "1").strip() != "0"
    status = _read("/proc/self/status") or ""
    filesystems = _read("/proc/filesystems") or ""
    actions = tuple((_read("/proc/sys/kernel/seccomp/actions_avail") or "").split())
    return HostFeatures(
        kernel=os.uname().release,
        user_namespaces=max_userns > 0 and unpriv,
        max_user_namespaces=max_userns,
        overlayfs=any(line.split()[-1:] == ["overlay"] for line in filesystems.splitlines()),
        seccomp="Seccomp:" in status and bool(actions),
        seccomp_actions=actions,
        cgroups=probe_cgroups(),
        newuidmap=any(os.access(os.path.join(d, "newuidmap"), os.X_OK)
                      for d in ("/usr/bin", "/bin", "/usr/sbin")),
        rootless=rootless,
    )
