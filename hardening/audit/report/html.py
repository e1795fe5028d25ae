"""``-o html``: a self-contained page a person reads in a browser.

No scripts, fonts or stylesheets are fetched: the chart is inline SVG and the style is inline CSS,
so the file can be attached to a ticket or archived as a CI artefact and still render. Every value
from the audited machine is HTML-escaped (a container name is input like any other).
"""

from __future__ import annotations

from html import escape

from hardening.audit.model import Result, Status
from hardening.audit.runner import Report

COLOURS = {"critical": "#7b1fa2", "high": "#c62828", "medium": "#ef6c00", "low": "#f9a825",
           "info": "#607d8b"}
CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:72rem}
h1{margin-bottom:.2rem} .meta{color:#666;margin-top:0}
table{border-collapse:collapse;margin:.5rem 0 1rem} td,th{border:1px solid #ddd;padding:.3rem .6rem;text-align:left}
.sev{color:#fff;border-radius:3px;padding:0 .4rem;font-size:.85em;text-transform:uppercase}
.finding{border:1px solid #ddd;border-left-width:6px;border-radius:4px;padding:.5rem 1rem;margin:.6rem 0}
.finding h3{margin:.2rem 0;font-size:1.05em} pre{background:#f5f5f5;padding:.5rem;overflow-x:auto}
.ignored{opacity:.6} .summary{display:flex;gap:2rem;align-items:flex-start;flex-wrap:wrap}
"""


def _badge(severity: str) -> str:
    return f'<span class="sev" style="background:{COLOURS[severity]}">{escape(severity)}</span>'


def _chart(findings: dict[str, int]) -> str:
    """Horizontal bars, one per severity, scaled to the largest count."""
    top = max(findings.values()) or 1
    rows = []
    for i, (sev, n) in enumerate(findings.items()):
        y = 10 + i * 30
        width = int(260 * n / top)
        rows.append(f'<text x="0" y="{y + 15}" font-size="13">{sev}</text>'
                    f'<rect x="70" y="{y}" width="{width}" height="20" fill="{COLOURS[sev]}">'
                    f'<title>{sev}: {n}</title></rect>'
                    f'<text x="{75 + width}" y="{y + 15}" font-size="13">{n}</text>')
    height = 20 + 30 * len(findings)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="findings by severity" '
            f'width="380" height="{height}" viewBox="0 0 380 {height}">{"".join(rows)}</svg>')


def _finding(r: Result) -> str:
    sev = r.check.severity.label
    evidence = "".join(f"<li>{escape(e.source)} <code>{escape(e.locator)}</code>: {escape(e.observed)}"
                       + (f" (expected {escape(e.expected)})" if e.expected else "") + "</li>"
                       for e in r.evidence[:10])
    ignored = ""
    if r.suppression is not None:
        ignored = (f'<p><strong>Ignored</strong> until {escape(r.suppression.expires)}: '
                   f'{escape(r.suppression.reason)}</p>')
    return (f'<div class="finding{" ignored" if r.suppression else ""}" '
            f'style="border-left-color:{COLOURS[sev]}" data-check="{escape(r.check.id)}">'
            f'<h3>{_badge(sev)} {escape(r.check.id)} {escape(r.check.title)}</h3>'
            f'<p><strong>{escape(r.target.label)}</strong>: {escape(r.message)}</p>{ignored}'
            f'{f"<ul>{evidence}</ul>" if evidence else ""}'
            f'<p><strong>Remediation:</strong> {escape(r.check.remediation)}</p>'
            f'<pre>{escape(r.check.snippet)}</pre>'
            f'<p><strong>Impact:</strong> {escape(r.check.impact)}</p></div>')


def render(report: Report) -> str:
    findings = report.findings_by_severity()
    counts = report.counts()
    score = report.score()
    sev_rows = "".join(f'<tr><td>{_badge(s)}</td><td class="count" data-severity="{s}">{n}</td></tr>'
                       for s, n in findings.items())
    status_rows = "".join(f'<tr><td>{k}</td><td class="count" data-status="{k}">{v}</td></tr>'
                          for k, v in counts.items())
    sections = []
    for domain, results in report.by_domain():
        fails = sorted((r for r in results if r.status is Status.FAIL),
                       key=lambda r: (r.suppression is not None, -r.check.severity, r.check.id))
        passed = sum(r.status is Status.PASS for r in results)
        undecided = [r for r in results if r.status in (Status.SKIP, Status.ERROR)]
        body = "".join(_finding(r) for r in fails) or "<p>No findings.</p>"
        if undecided:
            body += ("<details><summary>Not checked (" + str(len(undecided)) + ")</summary><table>"
                     + "".join(f"<tr><td>{r.status.value}</td><td>{escape(r.check.id)}</td>"
                               f"<td>{escape(r.target.label)}</td><td>{escape(r.message)}</td></tr>"
                               for r in undecided) + "</table></details>")
        sections.append(f'<section id="domain-{domain}"><h2>{domain.capitalize()}</h2>'
                        f'<p>{len(fails)} failed, {passed} passed, {len(undecided)} not checked</p>'
                        f'{body}</section>')
    expired = "".join(f"<li>{escape(e.where)}: {escape(e.check)} {escape(e.target)} expired "
                      f"{e.expires.isoformat()}</li>" for e in report.expired_ignores)
    gate = (f"fail on {report.fail_on.label} and above: exit {report.exit_code()}"
            if report.fail_on is not None else "no failure threshold")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Stockade audit report</title><style>{CSS}</style></head>
<body>
<h1>Stockade audit report</h1>
<p class="meta">{escape(report.benchmark)} &middot; scope {escape(report.scope)} &middot; profile
{escape(report.profile)} &middot; {escape(report.started.isoformat(timespec="seconds"))} &middot; {gate}</p>
<section id="summary"><h2>Summary</h2>
<p id="score">Score: {"n/a" if score is None else f"{score:g}%"}</p>
<div class="summary">
<table id="severity-counts"><tr><th>Severity</th><th>Findings</th></tr>{sev_rows}</table>
{_chart(findings)}
<table id="status-counts"><tr><th>Status</th><th>Results</th></tr>{status_rows}</table>
</div>
{f"<h3>Expired ignore entries</h3><ul>{expired}</ul>" if expired else ""}
</section>
{"".join(sections)}
</body></html>
"""


