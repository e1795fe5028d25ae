"""``-o junit``: one test suite per domain, one test case per check and target.

CI systems show FAIL as a failed test, ERROR as an errored one, and SKIP (with its reason) and
ignored failures (with the ignore file's reason and expiry) as skipped ones.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # nosec B405 # building a document, never parsing one

from hardening.audit.model import Result, Status
from hardening.audit.runner import Report


def _details(r: Result) -> str:
    lines = [r.message, ""]
    lines += [f"{e.source} {e.locator}: observed {e.observed}"
              + (f", expected {e.expected}" if e.expected else "") for e in r.evidence]
    lines += ["", f"Remediation: {r.check.remediation}", r.check.snippet]
    return "\n".join(lines)


def _case(suite: ET.Element, r: Result) -> str:
    case = ET.SubElement(suite, "testcase", {
        "classname": f"stockade.audit.{r.check.domain}",
        "name": f"{r.check.id} {r.check.title} [{r.target.label}]", "time": "0"})
    if r.status is Status.FAIL and r.suppression is not None:
        ET.SubElement(case, "skipped", {"message": f"ignored until {r.suppression.expires}: "
                                                  f"{r.suppression.reason}"})
        return "skipped"
    if r.status is Status.FAIL:
        node = ET.SubElement(case, "failure", {"message": r.message, "type": r.check.severity.label})
        node.text = _details(r)
        return "failures"
    if r.status is Status.ERROR:
        ET.SubElement(case, "error", {"message": r.message, "type": "audit-error"})
        return "errors"
    if r.status is Status.SKIP:
        ET.SubElement(case, "skipped", {"message": r.message})
        return "skipped"
    return "passed"


def render(report: Report) -> str:
    root = ET.Element("testsuites", {"name": "stockade audit"})
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for domain, results in report.by_domain():
        suite = ET.SubElement(root, "testsuite", {"name": f"stockade.audit.{domain}"})
        counts = {"tests": len(results), "failures": 0, "errors": 0, "skipped": 0}
        for r in results:
            kind = _case(suite, r)
            if kind in counts:
                counts[kind] += 1
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", "0")
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{report.duration:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
