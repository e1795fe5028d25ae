"""The registry's data: stable, complete, validated; the host view's parsing; octal mode logic."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hardening.audit import docs
from hardening.audit.hostview import HostView
from hardening.audit.model import Severity, Status
from hardening.audit.registry import _build, load_registry
from hardening.audit.runner import run_audit
from tests.hardening.audit.world import World

REG = load_registry()
BASE = {"id": "HOST-900", "domain": "host", "title": "t", "severity": "low", "level": 1,
        "automated": True, "rationale": "r", "remediation": "m", "snippet": "s", "impact": "i",
        "impl": "sysctl"}


def test_registry_shape() -> None:
    assert 100 <= len(REG.checks) <= 130
    assert len({c.id for c in REG.checks}) == len(REG.checks)
    assert not {c.id for c in REG.checks} & REG.retired
    for c in REG.checks:
        assert c.title and c.rationale and c.remediation and c.snippet and c.impact
        for name, section in c.refs.items():
            assert re.fullmatch(r"[a-z0-9.-]+", name) and section
    assert {c.domain for c in REG.checks} == {"host", "engine", "files", "images", "containers",
                                              "operations"}
    assert {c.severity for c in REG.checks} == set(Severity)


@pytest.mark.parametrize("change, message", [
    ({"id": "HOST-1"}, "must look like"),
    ({"domain": "images"}, "does not match its ID"),
    ({"level": 3}, "level must be 1 or 2"),
    ({"impl": "nothing"}, "no implementation"),
    ({"rationale": ""}, "missing rationale"),
    ({"severity": "urgent"}, "unknown severity"),
])
def test_invalid_entries_are_rejected(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _build({**BASE, **change}, frozenset())


def test_retired_ids_are_never_reused() -> None:
    with pytest.raises(ValueError, match="retired"):
        _build(BASE, frozenset({"HOST-900"}))


def test_docs_are_generated_from_the_registry() -> None:
    committed = Path(docs.DEFAULT).read_text()
    assert committed == docs.render(), "docs/audit-checks.md is stale: python -m hardening.audit.docs"
    for c in REG.checks:
        assert f"| {c.id} |" in committed


def test_host_view_cannot_climb_out_of_its_root(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("inside\n")
    view = HostView(tmp_path)
    assert view.path("/../../etc/passwd") == tmp_path / "etc" / "passwd"
    assert view.read_text("../../../etc/passwd") == "inside\n"
    assert view.read_text("/missing") is None and view.stat("/missing") is None


def test_mountinfo_parsing_and_longest_prefix(tmp_path: Path) -> None:
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/mountinfo").write_text(
        "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
        "23 22 8:2 / /var/lib rw - xfs /dev/sda2 rw\n"
        "24 23 8:3 / /var/lib/my\\040store rw - ext4 /dev/sda3 rw\n")
    view = HostView(tmp_path)
    assert view.mount_of("/var/lib/my store/x").fstype == "ext4"
    assert view.mount_of("/var/lib/stockade").point == "/var/lib"
    assert view.mount_of("/var/library").point == "/"


@pytest.mark.parametrize("mode, ok", [
    (0o644, True), (0o600, True), (0o400, True), (0o000, True),
    # docker-bench compares "570 -le 644" as decimals and passes these; a bit mask does not.
    (0o570, False), (0o470, False), (0o606, False), (0o645, False), (0o1644, False), (0o4644, False),
])
def test_modes_compare_as_octal_bits(world: World, mode: int, ok: bool) -> None:
    world.chmod("/etc/stockade/config.toml", mode)
    report = run_audit(world.view(), REG.select(["files"], include=["FILE-001"]))
    assert report.results[0].status is (Status.PASS if ok else Status.FAIL), report.results[0].message


def test_ownership_counts_as_much_as_mode(world: World) -> None:
    world.owners["/etc/stockade/config.toml"] = (1000, 1000)
    report = run_audit(world.view(), REG.select(["files"], include=["FILE-001"]))
    assert report.results[0].status is Status.FAIL and "uid 1000" in report.results[0].message


def test_rootless_owner_may_own_its_files(world: World) -> None:
    world.rootless = True
    world.mkdir("/home/alice/.config/stockade", 0o755, owner=(1000, 1000))
    world.write("/home/alice/.config/stockade/config.toml", "", 0o600, owner=(1000, 1000))
    report = run_audit(world.view(), REG.select(["files"], include=["FILE-001", "FILE-002"]))
    assert [r.status for r in report.results] == [Status.PASS, Status.PASS]
