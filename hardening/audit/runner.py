"""Run selected checks against their targets and collect one report.

Each check runs once per target of its kind: the host, the engine, every image, every container.
Whatever a check cannot decide becomes SKIP or ERROR with the reason (a missing store, an absent
sysctl, an unreadable file); a check is never allowed to turn "could not look" into PASS. One
check's failure to run never stops the others.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from hardening.audit.ignore import IgnoreEntry, apply_ignores
from hardening.audit.model import (DOMAINS, Check, CheckError, Result, Severity, Skip, Status, Target,
                                   Verdict)
from hardening.audit.registry import run_check
from hardening.audit.targets import SourceUnavailable, container_name
from hardening.audit.view import AuditView

# Scope argument of ``stockade audit`` -> the domains it covers.
SCOPES: dict[str, tuple[str, ...]] = {
    "host": ("host",),
    "engine": ("engine", "files"),
    "images": ("images",),
    "containers": ("containers",),
    "all": DOMAINS,
}
# Weight of a check in the score by severity: a critical pass or failure counts ten low ones.
WEIGHTS = {Severity.CRITICAL: 10, Severity.HIGH: 5, Severity.MEDIUM: 3, Severity.LOW: 1,
           Severity.INFO: 0}


@dataclass
class Report:
    """Everything the reporters need: results, the selection that produced them, and timing."""

    results: list[Result]
    checks: list[Check]
    scope: str
    profile: str
    fail_on: Severity | None
    benchmark: str
    started: datetime
    duration: float
    expired_ignores: list[IgnoreEntry] = field(default_factory=list)
    tool_version: str = ""

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for r in self.results:
            out[r.status.value] += 1
        out["SUPPRESSED"] = sum(1 for r in self.results if r.suppression is not None)
        return out

    def findings_by_severity(self) -> dict[str, int]:
        """Unsuppressed failures per severity, most severe first."""
        out = {s.label: 0 for s in sorted(Severity, reverse=True)}
        for r in self.results:
            if r.is_finding:
                out[r.check.severity.label] += 1
        return out

    def score(self) -> float | None:
        """Percentage of severity-weighted decided results that passed (None when nothing decided)."""
        passed = failed = 0
        for r in self.results:
            weight = WEIGHTS[r.check.severity]
            if r.status is Status.PASS:
                passed += weight
            elif r.is_finding:
                failed += weight
        total = passed + failed
        return round(100.0 * passed / total, 1) if total else None

    def by_domain(self) -> list[tuple[str, list[Result]]]:
        """The results grouped by domain in ``DOMAINS`` order, domains without results left out (the
        sections of the HTML report, the suites of JUnit)."""
        groups = [(d, [r for r in self.results if r.check.domain == d]) for d in DOMAINS]
        return [(d, results) for d, results in groups if results]

    def gating(self) -> list[Result]:
        """Unsuppressed failures at or above ``--fail-on``."""
        if self.fail_on is None:
            return []
        return [r for r in self.results if r.is_finding and r.check.severity >= self.fail_on]

    def exit_code(self) -> int:
        return 1 if self.gating() else 0


def _verdict(check: Check, view: AuditView, target: Any) -> Verdict:
    try:
        return run_check(check, view, target)
    except Skip as exc:
        return Verdict(Status.SKIP, str(exc))
    except SourceUnavailable as exc:
        return Verdict(Status.SKIP, str(exc))
    except CheckError as exc:
        return Verdict(Status.ERROR, str(exc))
    except Exception as exc:  # noqa: BLE001 - one broken check must not hide every other result
        return Verdict(Status.ERROR, f"internal error in {check.impl}: {type(exc).__name__}: {exc}")


def _host_name(view: AuditView) -> str:
    return (view.host.read_text("/proc/sys/kernel/hostname") or "").strip() or "host"


def _targets(kind: str, view: AuditView) -> tuple[list[tuple[Target, Any]], str | None]:
    """(target, object) pairs for a kind, or no targets and the reason every check of it SKIPs."""
    if kind == "host":
        return [(Target("host", name=_host_name(view)), None)], None
    if kind == "engine":
        return [(Target("engine", name=str(view.paths.root)), None)], None
    try:
        if kind == "image":
            images = view.images.images()
            if not images:
                return [], "the store holds no images"
            return [(Target("image", i.digest or i.id, i.name), i) for i in images], None
        docs = view.containers.containers()
        if not docs:
            return [], "there are no containers (running or stopped)"
        return [(Target("container", str(d.get("Id", "")), container_name(d)), d) for d in docs], None
    except SourceUnavailable as exc:
        return [], str(exc)


def run_audit(view: AuditView, checks: list[Check], *, scope: str = "all", profile: str = "level2",
              fail_on: Severity | None = None, ignores: list[IgnoreEntry] | None = None,
              benchmark: str = "", tool_version: str = "") -> Report:
    """Run ``checks`` against ``view`` and return the report (the ignore file already applied)."""
    started, t0 = datetime.now().astimezone(), time.perf_counter()
    results: list[Result] = []
    targets: Mapping[str, tuple[list[tuple[Target, Any]], str | None]] = {
        kind: _targets(kind, view) for kind in {c.target_kind for c in checks}}
    for c in sorted(checks, key=lambda c: (DOMAINS.index(c.domain), c.id)):
        pairs, reason = targets[c.target_kind]
        if not pairs:
            results.append(Result(c, Target(c.target_kind, name="*"), Status.SKIP, reason or ""))
            continue
        for target, obj in pairs:
            v = _verdict(c, view, obj)
            results.append(Result(c, target, v.status, v.message, v.evidence, v.location))
    results, expired = apply_ignores(results, ignores or [], view.now.date())
    return Report(results=results, checks=checks, scope=scope, profile=profile, fail_on=fail_on,
                  benchmark=benchmark, started=started, duration=time.perf_counter() - t0,
                  expired_ignores=expired, tool_version=tool_version)
