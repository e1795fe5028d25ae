"""Limits a host cannot enforce: root is refused before anything is created; rootless is warned.

The host's cgroup layout is replaced by one with no usable hierarchy (as on a machine without the
memory, pids and cpu controllers), so these run without touching real cgroups.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import engine.host
from engine.config import Paths
from engine.containers import monitor
from engine.host import CgroupInfo
from engine.runtime.channel import LaunchError
from engine.spec import Resources
from stockade.cli import main

NO_HIERARCHY = CgroupInfo(layout="none", v2_mount=None, v2_controllers=())


@pytest.fixture
def no_cgroups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine.host, "probe_cgroups", lambda mountinfo=None: NO_HIERARCHY)


def test_root_run_with_a_memory_limit_is_refused_before_anything_is_written(
        no_cgroups: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "store"
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    code = main(["--root", str(root), "run", "--rm", "--memory", "64m", "--rootfs", str(rootfs), "/bin/true"])
    assert code == 125  # as docker run: the container never started
    err = capsys.readouterr().err.strip()
    assert err.startswith("stockade: error: --memory, --pids-limit and --cpus need a cgroup hierarchy")
    assert not (root / "containers").exists() or not any((root / "containers").iterdir())


class _Spec:
    resources = Resources(memory=64 << 20)
    cgroup_parent = ""


def test_monitor_refuses_unenforceable_limits_for_root(no_cgroups: None, tmp_path: Path) -> None:
    paths = Paths(root=tmp_path, runroot=tmp_path / "run", config_dir=tmp_path, cache=tmp_path,
                  rootless=False)
    with pytest.raises(LaunchError, match="need a cgroup hierarchy"):
        monitor.container_cgroup(paths, _Spec(), "c1")  # type: ignore[arg-type]


def test_monitor_runs_rootless_without_a_cgroup(no_cgroups: None, tmp_path: Path) -> None:
    paths = Paths(root=tmp_path, runroot=tmp_path / "run", config_dir=tmp_path, cache=tmp_path,
                  rootless=True)
    assert monitor.container_cgroup(paths, _Spec(), "c1") is None  # type: ignore[arg-type]
