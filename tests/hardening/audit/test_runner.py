"""Selection, SKIP/ERROR semantics, scoring, the exit-code gate and the ignore file."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from engine.errors import ConfigError
from hardening.audit.ignore import IgnoreEntry, load_ignore_file
from hardening.audit.model import Severity, Status
from hardening.audit.registry import IMPLS, load_registry
from hardening.audit.runner import SCOPES, run_audit
from hardening.audit.targets import Unavailable
from tests.hardening.audit.fixtures import FIXTURES
from tests.hardening.audit.world import World

REG = load_registry()


def test_profiles_and_prefix_selection() -> None:
    level1 = REG.select(SCOPES["all"], "level1")
    assert level1 and all(c.level == 1 for c in level1)
    assert len(REG.select(SCOPES["all"], "level2")) == len(REG.checks)
    assert {c.id for c in REG.select(SCOPES["all"], include=["ctr-00"])} == {f"CTR-00{i}" for i in range(1, 10)}
    chosen = REG.select(SCOPES["all"], include=["HOST", "ENG-003"], exclude=["HOST-0"])
    assert [c.id for c in chosen] == ["ENG-003"]
    assert {c.domain for c in REG.select(SCOPES["engine"])} == {"engine", "files"}


@pytest.mark.parametrize("pattern", ["NOPE", "HOST-9", "CTR-0001"])
def test_a_pattern_matching_nothing_is_an_error(pattern: str) -> None:
    with pytest.raises(ValueError, match="no check ID starts with"):
        REG.select(SCOPES["all"], include=[pattern])
    with pytest.raises(ValueError):
        REG.select(SCOPES["all"], exclude=[pattern])


def test_unavailable_sources_skip_with_their_reason(world: World) -> None:
    view = world.view()
    view.images = Unavailable("store not available (fixture)")
    view.containers = Unavailable("container state not available (fixture)")
    report = run_audit(view, REG.select(["images", "containers", "operations"]))
    assert all(r.status is Status.SKIP for r in report.results)
    assert {r.message for r in report.results} == {"store not available (fixture)",
                                                    "container state not available (fixture)"}


def test_no_targets_is_skip_never_pass(world: World) -> None:
    world.images, world.containers = [], []
    report = run_audit(world.view(), REG.select(["images", "containers", "operations"]))
    assert {r.status for r in report.results} == {Status.SKIP}


def test_a_broken_check_is_an_error_and_the_others_still_run(world: World,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object) -> None:
        raise KeyError("boom")

    monkeypatch.setitem(IMPLS, "HOST-013", broken)
    report = run_audit(world.view(), REG.select(["host"]))
    errors = [r for r in report.results if r.status is Status.ERROR]
    assert [r.check.id for r in errors] == ["HOST-013"]
    assert "KeyError" in errors[0].message
    assert sum(r.status is Status.PASS for r in report.results) == len(report.results) - 1


def test_missing_auditctl_skips_rule_checks_and_fails_auditd(world: World) -> None:
    world.auditctl.installed = False
    report = run_audit(world.view(), REG.select(["host"], include=["HOST-004", "HOST-005", "HOST-010"]))
    by_id = {r.check.id: r for r in report.results}
    assert by_id["HOST-004"].status is Status.FAIL
    assert by_id["HOST-005"].status is Status.SKIP and "auditctl" in by_id["HOST-005"].message
    assert world.auditctl.calls == [["auditctl", "-l"]]  # read once per audit


def test_an_unreadable_configuration_errors_engine_checks_but_fails_eng012(world: World) -> None:
    FIXTURES["ENG-012"].fail(world)
    report = run_audit(world.view(), REG.select(["engine"], include=["ENG-003", "ENG-012"]))
    by_id = {r.check.id: r for r in report.results}
    assert by_id["ENG-012"].status is Status.FAIL
    assert by_id["ENG-003"].status is Status.ERROR and "does not load" in by_id["ENG-003"].message


def test_fail_on_gates_the_exit_code_without_hiding_findings(world: World) -> None:
    FIXTURES["HOST-017"].fail(world)  # medium
    checks = REG.select(["host"])
    for threshold, code in ((Severity.HIGH, 0), (Severity.MEDIUM, 1), (Severity.LOW, 1), (None, 0)):
        report = run_audit(world.view(), checks, fail_on=threshold)
        assert report.exit_code() == code
        assert [r.check.id for r in report.results if r.status is Status.FAIL] == ["HOST-017"]


def test_score_weights_by_severity(world: World) -> None:
    FIXTURES["CTR-001"].fail(world)  # critical: weight 10
    report = run_audit(world.view(), REG.select(["containers"], include=["CTR-001", "CTR-017"]))
    assert report.score() == 9.1  # 1 (CTR-017, low) / 11


def _load_ignores(tmp_path: Path, text: str, known_ids: list[str] | None = None) -> list[IgnoreEntry]:
    """``text`` written as an ignore file and loaded (against every registered check by default)."""
    path = tmp_path / "ignore.toml"
    path.write_text(text)
    return load_ignore_file(path, [c.id for c in REG.checks] if known_ids is None else known_ids)


def test_ignore_entries_suppress_until_they_expire(world: World, tmp_path: Path) -> None:
    FIXTURES["HOST-017"].fail(world)
    FIXTURES["HOST-020"].fail(world)
    entries = _load_ignores(tmp_path, """
[[ignore]]
check = "HOST-017"
target = "host:fix*"
reason = "kptr needed by the profiler on this box"
expires = 2026-12-31

[[ignore]]
check = "HOST-02"
reason = "old exception"
expires = "2026-01-01"
""")
    report = run_audit(world.view(), REG.select(["host"]), fail_on=Severity.LOW, ignores=entries)
    by_id = {r.check.id: r for r in report.results}
    assert by_id["HOST-017"].status is Status.FAIL and by_id["HOST-017"].suppression is not None
    assert by_id["HOST-020"].suppression is None  # the entry for it expired on 2026-01-01
    assert [e.check for e in report.expired_ignores] == ["HOST-02"]
    assert [r.check.id for r in report.gating()] == ["HOST-020"]


def test_ignore_target_glob_must_match(world: World, tmp_path: Path) -> None:
    FIXTURES["CTR-015"].fail(world)
    entries = _load_ignores(tmp_path, """
[[ignore]]
check = "CTR-015"
target = "container:other-*"
reason = "only the batch containers"
expires = 2030-01-01
""")
    report = run_audit(world.view(), REG.select(["containers"], include=["CTR-015"]), ignores=entries)
    assert report.results[0].suppression is None


@pytest.mark.parametrize("text, message", [
    ('[[ignore]]\ncheck = "CTR-015"\nexpires = 2030-01-01\n', "reason is required"),
    ('[[ignore]]\ncheck = "CTR-015"\nreason = "x"\n', "expires is required"),
    ('[[ignore]]\ncheck = "CTR-015"\nreason = "x"\nexpires = "soon"\n', "not a date"),
    ('[[ignore]]\ncheck = "NOPE-1"\nreason = "x"\nexpires = 2030-01-01\n', "no check ID starts with"),
    ('[[ignore]]\ncheck = "CTR"\nreason = "x"\nexpires = 2030-01-01\nuntil = 1\n', "unknown key 'until'"),
    ('[[ignore]\n', "invalid TOML"),
    ('ignores = []\n', "unknown key 'ignores'"),
])
def test_malformed_ignore_files_are_configuration_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        _load_ignores(tmp_path, text)
    assert info.value.exit_code == 2
    assert str(tmp_path / "ignore.toml") in str(info.value)


def test_ignore_dates_compare_as_dates(tmp_path: Path) -> None:
    entries = _load_ignores(tmp_path, '[[ignore]]\ncheck = "CTR"\nreason = "r"\nexpires = 2030-01-01T00:00:00Z\n',
                            ["CTR-001"])
    assert entries[0].expires == date(2030, 1, 1)


@pytest.mark.parametrize("opts, engine_default, status", [
    (["no-new-privileges"], False, Status.PASS),
    ([], True, Status.PASS),  # the engine's default applies, as Docker's daemon default does
    ([], False, Status.FAIL),
    (["no-new-privileges:false"], True, Status.FAIL),  # an explicit opt-out beats the default
])
def test_no_new_privileges_from_the_container_or_the_engine_default(
        world: World, opts: list[str], engine_default: bool, status: Status) -> None:
    world.containers[0]["HostConfig"]["SecurityOpt"] = opts
    world.config["containers"]["no_new_privileges"] = engine_default
    report = run_audit(world.view(), REG.select(["containers"], include=["CTR-013"]))
    assert report.results[0].status is status, report.results[0].message
