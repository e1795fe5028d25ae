"""Checks judge what a rootless engine does, not what root's would.

``containers.userns = "host"`` is the default and is ignored when rootless (the CLI always runs a
rootless container in the user's own user namespace), so ENG-006 must not report a high-severity
finding the user cannot act on; a rootless store root must be 0700 (FILE-004).
"""

from __future__ import annotations

from pathlib import Path

from hardening.audit.model import Status
from hardening.audit.registry import load_registry
from hardening.audit.runner import run_audit
from tests.hardening.audit.fixtures import config
from tests.hardening.audit.world import World


def _statuses(world: World, check_id: str) -> list[Status]:
    return [r.status for r in run_audit(world.view(), [load_registry().get(check_id)]).results]


def test_userns_host_passes_for_a_rootless_engine(tmp_path: Path) -> None:
    world = World(tmp_path)
    config("containers", "userns", "host")(world)
    world.rootless = True
    assert _statuses(world, "ENG-006") == [Status.PASS]


def test_userns_host_still_fails_as_root(tmp_path: Path) -> None:
    world = World(tmp_path)
    config("containers", "userns", "host")(world)
    assert _statuses(world, "ENG-006") == [Status.FAIL]


def test_a_rootless_store_root_others_may_traverse_fails(tmp_path: Path) -> None:
    """Any user reads a rootless container's id in /proc/PID/mountinfo: a store root others may
    traverse (0711, 0755: fine for root's) exposes its logs and writable layer, so FILE-004 wants 0700."""
    store = "/home/alice/.local/share/stockade"
    for mode, expected in ((0o711, Status.FAIL), (0o755, Status.FAIL), (0o700, Status.PASS)):
        world = World(tmp_path / f"{mode:o}")
        world.rootless = True
        world.mkdir(store, mode, owner=(1000, 1000))
        assert _statuses(world, "FILE-004") == [expected], oct(mode)
    root = World(tmp_path / "root")
    root.chmod("/var/lib/stockade", 0o711)
    assert _statuses(root, "FILE-004") == [Status.PASS]
