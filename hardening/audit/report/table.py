"""``-o table`` (the default): what a person reads in a terminal.

Failures first (most severe first) with their remediation, then what could not be checked, then one
summary line with the score. Passing checks are counted, not listed: a clean host prints little.
"""

from __future__ import annotations

from typing import Sequence

from hardening.audit.model import Result, Status
from hardening.audit.runner import Report


def _columns(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def _row(r: Result) -> list[str]:
    status = "IGNORED" if r.suppression is not None else r.status.value
    return [status, r.check.severity.label.upper(), r.check.id, r.target.label, r.message]


def _id_list(ids: list[str]) -> str:
    """``IMG-001..IMG-020`` for a run of consecutive IDs, else a comma-separated list."""
    if len(ids) > 2 and all(a.split("-")[0] == ids[0].split("-")[0] for a in ids):
        numbers = [int(i.split("-")[1]) for i in ids]
        if numbers == list(range(numbers[0], numbers[0] + len(numbers))):
            return f"{ids[0]}..{ids[-1]}"
    return ",".join(ids)


def render(report: Report) -> str:
    out: list[str] = []
    failures = sorted((r for r in report.results if r.status is Status.FAIL),
                      key=lambda r: (r.suppression is not None, -r.check.severity, r.check.id))
    if failures:
        out += _columns([["STATUS", "SEVERITY", "CHECK", "TARGET", "FINDING"]]
                        + [_row(r) for r in failures])
        out.append("")
        out.append("Remediation:")
        seen: set[str] = set()
        for r in failures:
            if r.check.id in seen or r.suppression is not None:
                continue
            seen.add(r.check.id)
            out.append(f"  {r.check.id} {r.check.title}: {r.check.remediation}")
            out += [f"      {line}" for line in r.check.snippet.splitlines()]
        out.append("")
    # Checks that could not decide, grouped by reason: twenty image checks skipped for one missing
    # store are one line, not twenty.
    groups: dict[tuple[str, str, str], list[str]] = {}
    for r in report.results:
        if r.status in (Status.SKIP, Status.ERROR):
            groups.setdefault((r.status.value, r.target.label, r.message), []).append(r.check.id)
    if groups:
        out += _columns([["STATUS", "CHECKS", "TARGET", "REASON"]]
                        + [[status, _id_list(ids), target, reason]
                           for (status, target, reason), ids in groups.items()])
        out.append("")
    for e in report.expired_ignores:
        out.append(f"expired ignore entry ({e.where}): {e.check} {e.target} expired {e.expires}")
    counts = report.counts()
    score = report.score()
    findings = ", ".join(f"{n} {sev}" for sev, n in report.findings_by_severity().items() if n)
    out.append(f"{len(report.checks)} checks, {len(report.results)} results: {counts['PASS']} passed, "
               f"{counts['FAIL']} failed ({counts['SUPPRESSED']} ignored), {counts['SKIP']} skipped, "
               f"{counts['ERROR']} errors; score {'n/a' if score is None else f'{score:g}%'}"
               + (f"; findings: {findings}" if findings else ""))
    return "\n".join(out) + "\n"
