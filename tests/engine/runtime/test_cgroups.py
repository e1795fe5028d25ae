"""Limits written to cgroup v1 and v2 layouts, over fake cgroupfs directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.host import CgroupInfo
from engine.runtime.cgroups import CgroupError, CgroupV1, CgroupV2, for_container, from_state
from engine.spec import Resources


def _v1(tmp_path: Path) -> dict[str, str]:
    mounts = {}
    for c in ("memory", "pids", "cpu", "cpuacct"):
        (tmp_path / c).mkdir()
        mounts[c] = str(tmp_path / c)
    return mounts


def test_v1_limits_and_oom(tmp_path: Path) -> None:
    info = CgroupInfo(layout="hybrid", v2_mount=None, v2_controllers=(), v1_mounts=_v1(tmp_path))
    limits = Resources(memory=64 << 20, pids=5, cpu_quota=50000, cpu_period=100000)
    cg = for_container(info, "stockade", "abc", limits)
    assert isinstance(cg, CgroupV1)
    cg.create()
    cg.apply(limits)
    assert (tmp_path / "memory/stockade/abc/memory.limit_in_bytes").read_text() == str(64 << 20)
    assert (tmp_path / "pids/stockade/abc/pids.max").read_text() == "5"
    assert (tmp_path / "cpu/stockade/abc/cpu.cfs_quota_us").read_text() == "50000"
    assert not cg.oom_killed()
    (tmp_path / "memory/stockade/abc/memory.oom_control").write_text(
        "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    assert cg.oom_killed()
    again = from_state(cg.to_state())
    assert isinstance(again, CgroupV1) and again.oom_killed()
    cg.add(1234)
    assert (tmp_path / "pids/stockade/abc/cgroup.procs").read_text() == "1234"


def test_v1_missing_controller(tmp_path: Path) -> None:
    mounts = _v1(tmp_path)
    del mounts["pids"]
    cg = CgroupV1.under(mounts, "stockade/x")
    cg.create()
    with pytest.raises(CgroupError, match="pids cgroup controller is not mounted"):
        cg.apply(Resources(pids=3))


def test_v2_delegates_and_limits(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    info = CgroupInfo(layout="v2", v2_mount=str(tmp_path), v2_controllers=("cpu", "memory", "pids"))
    limits = Resources(memory=1 << 20, pids=0, cpu_quota=25000, cpu_period=100000)
    cg = for_container(info, "/stockade/", "abc", limits)
    assert isinstance(cg, CgroupV2)
    cg.create()
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert (tmp_path / "stockade/cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert not (tmp_path / "stockade/abc/cgroup.subtree_control").exists()  # no internal processes
    (tmp_path / "stockade/abc/memory.swap.max").write_text("max")
    cg.apply(limits)
    d = tmp_path / "stockade/abc"
    assert (d / "memory.max").read_text() == str(1 << 20)
    assert (d / "memory.swap.max").read_text() == str(1 << 20)
    assert (d / "pids.max").read_text() == "max"
    assert (d / "cpu.max").read_text() == "25000 100000"
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert from_state(cg.to_state()).oom_killed()


def test_only_the_controllers_limits_need(tmp_path: Path) -> None:
    info = CgroupInfo(layout="hybrid", v2_mount=None, v2_controllers=(), v1_mounts=_v1(tmp_path))
    assert for_container(info, "stockade", "x", Resources()) is None  # no limits, no cgroup
    cg = for_container(info, "stockade", "x", Resources(pids=3))
    assert isinstance(cg, CgroupV1) and set(cg.by_controller) == {"pids"}


def test_no_manager() -> None:
    info = CgroupInfo(layout="none", v2_mount=None, v2_controllers=())
    assert for_container(info, "stockade", "x", Resources(pids=1)) is None
    assert from_state({}) is None
