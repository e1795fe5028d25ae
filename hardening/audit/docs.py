"""Generate docs/audit-checks.md from the registry: ``python -m hardening.audit.docs [PATH]``.

The check list in the documentation is never written by hand, so it cannot drift from what the
audit runs; a test fails when the committed file is stale.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hardening.audit.model import DOMAINS
from hardening.audit.registry import load_registry

DEFAULT = Path(__file__).resolve().parents[2] / "docs" / "audit-checks.md"
HEADINGS = {"host": "Host", "engine": "Engine configuration", "files": "Files and permissions",
            "images": "Images", "containers": "Containers", "operations": "Operations"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    reg = load_registry()
    out = ["# `stockade audit` checks", "",
           "Generated from `hardening/audit/checks.toml` by `python -m hardening.audit.docs`; "
           "do not edit by hand.", "",
           f"{len(reg.checks)} checks. References are to the {reg.benchmark} unless marked "
           "otherwise (`dockle` IDs for image checks dockle also makes). Level 1 is the practical "
           "baseline (`--profile level1`); level 2 adds defence in depth. *Manual* checks report "
           "evidence a person should confirm.", ""]
    if reg.retired:
        out += [f"Retired IDs (never reused): {', '.join(sorted(reg.retired))}.", ""]
    for domain in DOMAINS:
        checks = [c for c in reg.checks if c.domain == domain]
        out += [f"## {HEADINGS[domain]}", "",
                "| ID | Title | Severity | Level | Mode | References |",
                "| --- | --- | --- | --- | --- | --- |"]
        for c in checks:
            refs = ", ".join(f"{k} {v}" for k, v in sorted(c.refs.items())) or "—"
            out.append(f"| {c.id} | {_cell(c.title)} | {c.severity.label} | {c.level} | "
                       f"{'automated' if c.automated else 'manual'} | {_cell(refs)} |")
        out.append("")
        for c in checks:
            out += [f"### {c.id} {c.title}", "", c.rationale, "",
                    f"**Remediation.** {c.remediation}", "", "```", c.snippet, "```", "",
                    f"**Impact.** {c.impact}", ""]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else DEFAULT
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(render())
    os.replace(tmp, target)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
