"""Errors the policy package reports to a person as one line.

``policies`` imports nothing of ours, so it cannot subclass ``engine.errors.StockadeError``; it marks
its errors ``user_facing`` instead, which the command line prints as ``stockade: error: <message>``
and exits with ``exit_code``. A broken policy or a malformed input document is a configuration
problem (exit 2), never a "deny" (exit 1): a CI gate must tell "the manifest is bad" apart from "the
policy file is bad".
"""

from __future__ import annotations


class PolicyError(Exception):
    """Base of every policy error shown to a user as one line."""

    user_facing = True
    exit_code = 2


class PolicyLoadError(PolicyError):
    """A policy (or policy test, or manifest) file is unreadable or invalid.

    The message always starts with ``FILE:LINE:COL: FIELD:`` so editors and CI logs can jump to it.
    """

    def __init__(self, file: str, line: int | None, column: int | None, field: str, problem: str) -> None:
        self.file, self.line, self.column, self.field, self.problem = file, line, column, field, problem
        where = file if line is None else f"{file}:{line}:{column or 1}"
        super().__init__(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")


class InputDocumentError(PolicyError):
    """An input document handed to the evaluator does not have the published shape."""

    def __init__(self, path: str, problem: str) -> None:
        self.path, self.problem = path, problem
        super().__init__(f"input document: {path}: {problem}")


class ExpressionError(PolicyError):
    """A CEL expression does not compile (the loader adds the file and line)."""
