"""Host feature probing: the cgroup layout decides which hierarchy enforces limits."""

from __future__ import annotations

from pathlib import Path

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


V1_ONLY = """\
25 30 0:22 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs ro,mode=755
28 25 0:25 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
29 25 0:26 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
"""


def test_rootless_on_cgroup_v1_gets_no_manager() -> None:
    """v1 hierarchies are root's: a rootless user's limits are ignored, and info must say so."""
    info = probe_cgroups(V1_ONLY)
    assert (info.layout, info.manager) == ("v1", "v1")
    assert info.manager_for(rootless=False) == "v1"
    assert info.describe_for(rootless=False) == "v1 (used for --memory, --pids-limit, --cpus)"
    assert info.manager_for(rootless=True) == "none"
    assert info.describe_for(rootless=True) == "none (rootless on cgroup v1: limits are not enforced)"


def test_rootless_on_delegated_cgroup_v2_keeps_v2(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    info = probe_cgroups(PURE_V2.replace("/sys/fs/cgroup ", f"{tmp_path} "))
    assert info.manager_for(rootless=True) == info.manager_for(rootless=False) == "v2"
    assert info.describe_for(rootless=True) == "v2 (used for --memory, --pids-limit, --cpus)"
    bare = probe_cgroups(PURE_V2.replace("/sys/fs/cgroup ", "/nonexistent/cgroup "))
    assert bare.describe_for(rootless=True).startswith("none (no hierarchy offers memory, pids and cpu")


def test_probe_reports_the_manager_for_its_user() -> None:
    cgroups = probe_cgroups()
    for rootless in (False, True):
        report = probe(rootless=rootless).as_dict()
        assert report["cgroup_manager"] == cgroups.manager_for(rootless=rootless)
        assert report["cgroup_host_manager"] == cgroups.manager
