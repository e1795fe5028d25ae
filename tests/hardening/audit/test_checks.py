"""Every check in the registry passes on its passing fixture and fails on its failing one.

Parametrised over the registry itself: a check added to checks.toml without an entry in
fixtures.py fails here, as does a fixture left behind for a check that no longer exists.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hardening.audit.model import Status
from hardening.audit.registry import load_registry
from hardening.audit.runner import run_audit
from tests.hardening.audit.fixtures import FIXTURES
from tests.hardening.audit.world import World

CHECK_IDS = [c.id for c in load_registry().checks]


def _statuses(world: World, check_id: str) -> list[tuple[Status, str]]:
    report = run_audit(world.view(), [load_registry().get(check_id)])
    return [(r.status, r.message) for r in report.results]


def test_every_fixture_names_a_registered_check() -> None:
    assert sorted(set(FIXTURES) - set(CHECK_IDS)) == []


@pytest.mark.parametrize("check_id", CHECK_IDS)
def test_check_passes_on_its_passing_fixture(check_id: str, tmp_path: Path) -> None:
    fixture = FIXTURES.get(check_id)
    assert fixture is not None, f"{check_id} has no fixtures in tests/hardening/audit/fixtures.py"
    world = World(tmp_path)
    if fixture.make_pass is not None:
        fixture.make_pass(world)
    results = _statuses(world, check_id)
    assert results, check_id
    assert all(status is Status.PASS for status, _ in results), results


@pytest.mark.parametrize("check_id", CHECK_IDS)
def test_check_fails_on_its_failing_fixture(check_id: str, tmp_path: Path) -> None:
    fixture = FIXTURES.get(check_id)
    assert fixture is not None, f"{check_id} has no fixtures in tests/hardening/audit/fixtures.py"
    world = World(tmp_path)
    fixture.fail(world)
    results = _statuses(world, check_id)
    assert any(status is Status.FAIL for status, _ in results), results
    assert all(message for _, message in results)
