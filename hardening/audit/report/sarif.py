"""``-o sarif``: SARIF 2.1.0 that GitHub code scanning accepts.

Rules come from the registry (with ``security-severity``, which code scanning turns into its
critical/high/medium/low labels); every result has a location — the offending file under the
``HOSTROOT`` base, or a stable synthetic path such as ``stockade/container/web/config`` — and a
fingerprint that stays the same across runs, so alerts are tracked rather than duplicated.
Failures silenced by the ignore file are kept, with a ``suppressions`` entry carrying the reason.
Checks that could not run are reported as tool execution notifications, not as results.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from hardening.audit.model import Check, Result, Severity, Status
from hardening.audit.report.common import TOOL_NAME
from hardening.audit.runner import Report

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
LEVEL = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning",
         Severity.LOW: "note", Severity.INFO: "note"}
SECURITY_SEVERITY = {Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5",
                     Severity.LOW: "2.0", Severity.INFO: "0.0"}


def _help(c: Check) -> dict[str, str]:
    text = f"{c.remediation}\n\n{c.snippet}\n\nImpact: {c.impact}"
    markdown = f"{c.remediation}\n\n```\n{c.snippet}\n```\n\n**Impact:** {c.impact}"
    return {"text": text, "markdown": markdown}


def rule(c: Check) -> dict[str, Any]:
    refs = [f"{k} {v}" for k, v in sorted(c.refs.items())]
    return {
        "id": c.id,
        "name": "".join(w.capitalize() for w in c.id.split("-")),
        "shortDescription": {"text": c.title},
        "fullDescription": {"text": c.rationale},
        "help": _help(c),
        "defaultConfiguration": {"level": LEVEL[c.severity]},
        "properties": {
            "security-severity": SECURITY_SEVERITY[c.severity],
            "tags": ["security", c.domain, f"cis-level-{c.level}", c.severity.label],
            "precision": "high" if c.automated else "medium",
            "references": refs,
        },
    }


def _location(r: Result) -> dict[str, Any]:
    if r.location and r.location.startswith("/"):
        artifact = {"uri": quote(r.location.lstrip("/"), safe="/"), "uriBaseId": "HOSTROOT"}
    else:
        synthetic = r.location or f"stockade/{r.target.kind}/{r.target.name or r.target.id or 'config'}"
        artifact = {"uri": quote(synthetic, safe="/")}
    return {"physicalLocation": {"artifactLocation": artifact, "region": {"startLine": 1}},
            "message": {"text": r.target.label}}


def _result(r: Result, index: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ruleId": r.check.id,
        "ruleIndex": index,
        "level": LEVEL[r.check.severity],
        "message": {"text": f"{r.check.title} ({r.target.label}): {r.message}"},
        "locations": [_location(r)],
        "partialFingerprints": {"primaryLocationLineHash": r.fingerprint,
                                "stockadeFingerprint/v1": r.fingerprint},
        "properties": {"target": r.target.label,
                       "evidence": [e.as_dict() for e in r.evidence]},
    }
    if r.suppression is not None:
        out["suppressions"] = [{"kind": "external", "status": "accepted",
                                "justification": f"{r.suppression.reason} "
                                                 f"(until {r.suppression.expires})"}]
    return out


def document(report: Report) -> dict[str, Any]:
    checks = sorted(report.checks, key=lambda c: c.id)
    index = {c.id: i for i, c in enumerate(checks)}
    notifications = [{
        "level": "warning",
        "message": {"text": f"{r.check.id} ({r.target.label}) {r.status.value}: {r.message}"},
        "associatedRule": {"id": r.check.id, "index": index[r.check.id]},
    } for r in report.results if r.status is Status.ERROR]
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": TOOL_NAME, "version": report.tool_version or "0",
                                "semanticVersion": report.tool_version or "0.0.0",
                                "rules": [rule(c) for c in checks]}},
            "automationDetails": {"id": f"stockade-audit/{report.scope}/"},
            "originalUriBaseIds": {"HOSTROOT": {"uri": "file:///"}},
            "invocations": [{"executionSuccessful": True,
                             "toolExecutionNotifications": notifications}],
            "results": [_result(r, index[r.check.id]) for r in report.results
                        if r.status is Status.FAIL],
            "properties": {"benchmark": report.benchmark, "profile": report.profile,
                           "score": report.score()},
        }],
    }


def render(report: Report) -> str:
    return json.dumps(document(report), indent=2) + "\n"
