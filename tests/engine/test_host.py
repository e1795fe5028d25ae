"""Host feature probing: the cgroup layout decides which hierarchy enforces limits."""

from __future__ import annotations

from engine.host import probe, probe_cgroups

HYBRID = """\
25 30 0:22 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
28 25 0:25 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
29 25 0:26 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
"""
PURE_V2 = "25 30 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n"


def test_hybrid_layout_uses_v1_when_unified_has_no_controllers() -> None:
    info = probe_cgroups(HYBRID)
    assert info.layout == "hybrid"
    assert info.v2_mount == "/sys/fs/cgroup/unified"
    assert info.v1_mounts["memory"] == "/sys/fs/cgroup/memory"
    assert info.v1_mounts["cpu"] == "/sys/fs/cgroup/cpu,cpuacct"
    # /sys/fs/cgroup/unified on the test host may or may not delegate controllers; v1 has all three.
    assert info.manager in ("v1", "v2")


def test_pure_v2_without_controllers_file_has_no_manager() -> None:
    info = probe_cgroups(PURE_V2.replace("/sys/fs/cgroup ", "/nonexistent/cgroup "))
    assert info.layout == "v2"
    assert info.manager == "none"


def test_probe_this_host() -> None:
    features = probe()
    assert features.kernel
    assert features.cgroups.layout in ("v1", "v2", "hybrid")
