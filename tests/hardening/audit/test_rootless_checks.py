"""Engine checks that read a setting a rootless engine does not use judge what a rootless engine does.

``containers.userns = "host"`` is the default and is ignored when rootless (the CLI always runs a
rootless container in the user's own user namespace), so ENG-006 must not report a high-severity
finding the user cannot act on.
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
