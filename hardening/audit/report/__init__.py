"""Reporters: one module per output format, each with ``render(report) -> str``.

Imported lazily by format name, so a table run never loads the XML or HTML machinery.
"""

from __future__ import annotations

import importlib

from hardening.audit.runner import Report

FORMATS = ("table", "json", "sarif", "junit", "html")
_MODULES = {"table": "table", "json": "json_doc", "sarif": "sarif", "junit": "junit", "html": "html"}


def render(report: Report, fmt: str) -> str:
    """The report in ``fmt`` (one of FORMATS), ending with a newline."""
    module = importlib.import_module(f"hardening.audit.report.{_MODULES[fmt]}")
    return module.render(report)
