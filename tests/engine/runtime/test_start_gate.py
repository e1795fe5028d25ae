"""The launcher's create-then-start mode, with real namespaces (as root): the init stops confined but
before exec until the fifo is opened, runs createContainer hooks on the host side and startContainer
hooks inside, reports a missing program at create time, and a spec can join a namespace by path."""

from __future__ import annotations

import json
import os
import subprocess  # nosec B404 # the driver runs with an argument list
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.engine.runtime.support import probe_rootfs  # noqa: F401 - fixture
from tests.support.cli import REPO

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="starts real containers as root")


def _driver(rootfs: Path, work: Path, mode: str, **kw: Any) -> subprocess.Popen:  # type: ignore[type-arg]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "tests.engine.runtime.gate_driver", str(rootfs), str(work),
                             mode], stdout=subprocess.PIPE, text=True, env=env, **kw)


def _run(rootfs: Path, work: Path, mode: str) -> dict[str, Any]:
    proc = _driver(rootfs, work, mode)
    out, _ = proc.communicate(timeout=60)
    report: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return report


def test_created_init_waits_confined_until_started(probe_rootfs: Path, tmp_path: Path) -> None:
    report = _run(probe_rootfs, tmp_path, "plain")
    assert report["before_start"] == sys.executable  # still the builder's fork: nothing exec'd
    assert report["fifo"] == "0" and report["exit"] == 0
    assert report["output"].split() == ["ran", "as", "0", "alpha"]


def test_hooks_run_in_the_container_namespaces(probe_rootfs: Path, tmp_path: Path) -> None:
    report = _run(probe_rootfs, tmp_path, "hooks")
    assert report["exit"] == 0
    created = json.loads((tmp_path / "out" / "create.json").read_text())
    started = json.loads((tmp_path / "out" / "start.json").read_text())
    assert created == {"ociVersion": "1.0.2", "id": "gate-test", "pid": report["pid"], "status": "creating"}
    assert started["status"] == "created" and started["pid"] == report["pid"]
    # startContainer runs as the confined process: only CAP_KILL (bit 5) left
    assert (tmp_path / "out" / "start.caps").read_text().split() == ["CapEff:", "0000000000000020"]


def test_missing_program_fails_create(probe_rootfs: Path, tmp_path: Path) -> None:
    report = _run(probe_rootfs, tmp_path, "missing")
    assert report["code"] == 127 and "no such file or directory" in report["error"]


def test_joining_a_namespace_by_path(probe_rootfs: Path, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    holder = _driver(probe_rootfs, tmp_path / "a", "hold", stdin=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdin is not None
        first = json.loads(holder.stdout.readline())
        joined = _run(probe_rootfs, tmp_path / "b", f"join:{first['pid']}")
        assert joined["exit"] == 0 and joined["output"].split()[-1] == "alpha"  # the holder's uts namespace
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert json.loads(holder.communicate(timeout=60)[0].strip().splitlines()[-1])["exit"] == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
