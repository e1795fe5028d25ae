"""Decisions -> SARIF 2.1.0 for GitHub code scanning (``policy check -o sarif``).

One run, one rule per rule id that produced a result, one result per finding with the manifest file
and the line of the offending field (the container's line when the field is absent). Levels:
enforce -> error, warn -> warning, audit -> note; an exempted finding carries a SARIF suppression
with the exception's reason. ``partialFingerprints`` hash the rule, the file, the object and
container, and the input path, never a line number, so an alert survives unrelated edits.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Iterable

from policies.decision import Decision, Result
from policies.sources import Source

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {"enforce": "error", "warn": "warning", "audit": "note"}
FINGERPRINT_KEY = "stockade/v1"


def _uri(file: str) -> str:
    rel = os.path.relpath(os.path.abspath(file))
    return (file if rel.startswith("..") else rel).replace(os.sep, "/")


def _result(r: Result, source: Source, rule_index: int, exempt: bool) -> dict[str, Any]:
    f = r.finding
    line, field_path = source.locate(f.path)
    line = line or source.line or 1
    text = f"{f.message}: {source.label} ({f.path}: found {f.found!r}, expected {f.expected!r})"
    if f.fix:
        text += f". Fix: {f.fix}"
    key = "\x00".join((f.rule, _uri(source.file), source.identity, f.path))
    result: dict[str, Any] = {
        "ruleId": f.rule, "ruleIndex": rule_index, "level": LEVELS[r.mode], "message": {"text": text},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(source.file)},
                                            "region": {"startLine": line}},
                       "logicalLocations": [{"fullyQualifiedName": field_path or source.identity}]}],
        "partialFingerprints": {FINGERPRINT_KEY: hashlib.sha256(key.encode()).hexdigest()},
        "properties": {"object": source.identity, "inputPath": f.path, "mode": r.mode},
    }
    if exempt:
        result["suppressions"] = [{"kind": "external", "status": "accepted",
                                   "justification": f"exception {r.exception} until {r.exception_expires}: "
                                                    f"{r.exception_reason}"}]
    return result


def to_sarif(checked: Iterable[tuple[Source, Decision]], version: str) -> dict[str, Any]:
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for source, decision in checked:
        groups = ((decision.violations, False), (decision.warnings, False), (decision.audits, False),
                  (decision.exempted, True))
        for items, exempt in groups:
            for r in items:
                if r.finding.rule not in rules:
                    rules[r.finding.rule] = {
                        "id": r.finding.rule, "name": r.finding.rule.replace(".", "/"),
                        "shortDescription": {"text": r.finding.message},
                        "help": {"text": r.finding.fix or r.finding.message},
                        "defaultConfiguration": {"level": LEVELS[r.mode]},
                        "properties": {"tags": ["security", "container"]},
                    }
                results.append(_result(r, source, list(rules).index(r.finding.rule), exempt))
    return {
        "$schema": SCHEMA_URI, "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "stockade-policy", "version": version,
                                      "informationUri": "https://stockade.dev/policies",
                                      "rules": list(rules.values())}},
                  "columnKind": "unicodeCodePoints", "results": results}],
    }
