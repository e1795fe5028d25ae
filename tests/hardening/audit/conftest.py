"""Fixtures for the audit tests: a compliant world, and a report with something of every kind."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from hardening.audit.ignore import IgnoreEntry
from hardening.audit.model import Severity
from hardening.audit.registry import load_registry
from hardening.audit.runner import Report, run_audit
from tests.hardening.audit.fixtures import FIXTURES
from tests.hardening.audit.world import World

# Failures of several severities and domains, a suppressed one, and a name that needs escaping.
MIXED = ("CTR-001", "CTR-015", "IMG-004", "HOST-017", "FILE-001", "ENG-004", "OPS-002")


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


@pytest.fixture
def mixed_report(world: World) -> Report:
    """Every status: failures (one suppressed, one ignore entry expired), skips, an error, passes."""
    for check_id in MIXED:
        FIXTURES[check_id].fail(world)
    world.containers[0]["Name"] = '/web<script>alert("x")</script>'
    world.verifier = None  # IMG-009 SKIPs: the policy requires no signatures
    # A directory where a sysctl file should be: unreadable even for root, so HOST-018 is ERROR.
    world.real("/proc/sys/kernel/dmesg_restrict").unlink()
    world.mkdir("/proc/sys/kernel/dmesg_restrict")
    reg = load_registry()
    ignores = [IgnoreEntry("CTR-015", "container:*", "legacy app writes to /var/cache",
                           date(2026, 12, 31), "ignore.toml: ignore entry 1"),
               IgnoreEntry("HOST-017", "*", "accepted last year", date(2025, 1, 1),
                           "ignore.toml: ignore entry 2")]
    return run_audit(world.view(), list(reg.checks), scope="all", profile="level2",
                     fail_on=Severity.HIGH, ignores=ignores, benchmark=reg.benchmark,
                     tool_version="0.1.0")
