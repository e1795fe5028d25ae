"""``-o json``: one document, versioned by ``schema_version`` and described by
``report.schema.json`` (shipped in this package). Within a major version changes are additive only.
"""

from __future__ import annotations

import json
from typing import Any

from hardening.audit.report.common import SCHEMA_VERSION, TOOL_NAME, check_dict, result_dict
from hardening.audit.runner import Report


def document(report: Report) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": TOOL_NAME, "version": report.tool_version},
        "benchmark": report.benchmark,
        "scope": report.scope,
        "profile": report.profile,
        "fail_on": report.fail_on.label if report.fail_on is not None else None,
        "started": report.started.isoformat(timespec="seconds"),
        "duration_seconds": round(report.duration, 4),
        "summary": {
            "checks": len(report.checks),
            "results": len(report.results),
            "status": report.counts(),
            "findings": report.findings_by_severity(),
            "score": report.score(),
            "exit_code": report.exit_code(),
        },
        "ignored": {"expired": [e.as_dict() for e in report.expired_ignores]},
        "checks": [check_dict(c) for c in sorted(report.checks, key=lambda c: c.id)],
        "results": [result_dict(r) for r in report.results],
    }


def render(report: Report) -> str:
    return json.dumps(document(report), indent=2) + "\n"
