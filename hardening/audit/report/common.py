"""Plain-dict forms of checks and results shared by the JSON, SARIF and HTML reporters."""

from __future__ import annotations

from typing import Any

from hardening.audit.model import Check, Result

TOOL_NAME = "stockade-audit"
SCHEMA_VERSION = "1.0"


def check_dict(c: Check) -> dict[str, Any]:
    return {"id": c.id, "title": c.title, "domain": c.domain, "severity": c.severity.label,
            "level": c.level, "automated": c.automated, "rationale": c.rationale,
            "remediation": c.remediation, "snippet": c.snippet, "impact": c.impact,
            "refs": dict(c.refs)}


def result_dict(r: Result) -> dict[str, Any]:
    return {
        "check_id": r.check.id, "title": r.check.title, "domain": r.check.domain,
        "severity": r.check.severity.label, "status": r.status.value,
        "target": {"kind": r.target.kind, "id": r.target.id, "name": r.target.name},
        "message": r.message, "evidence": [e.as_dict() for e in r.evidence],
        "location": r.location, "fingerprint": r.fingerprint,
        "suppressed": None if r.suppression is None else {
            "reason": r.suppression.reason, "expires": r.suppression.expires,
            "pattern": r.suppression.pattern},
    }
