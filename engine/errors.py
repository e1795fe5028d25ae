"""Errors that carry a diagnosis a person can act on.

Every failure caused by input from outside (a user, a registry, a layer, a file) is raised as a
StockadeError subclass whose message is one line naming what was wrong and where. The command line
prints it as ``stockade: error: <message>`` and exits with ``exit_code``; only ``--debug`` shows a
traceback. Bugs stay ordinary exceptions so they are never mistaken for a user's mistake.
"""

from __future__ import annotations


class StockadeError(Exception):
    """Base of every error Stockade reports to a user as one line."""

    exit_code: int = 1
    # The command line prints any exception marked user_facing as one line (no traceback);
    # policies, which import nothing of ours, marks its own errors the same way.
    user_facing: bool = True

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} ({self.hint})" if self.hint else base


class UsageError(StockadeError):
    """The command line itself is wrong (exit 2, as argparse does)."""

    exit_code = 2


class ConfigError(StockadeError):
    """A configuration file is unreadable or invalid (exit 2: fix the set-up, not the data)."""

    exit_code = 2


class NotFoundError(StockadeError):
    """A named object (image, container, volume, blob) does not exist."""


def printable(text: str) -> str:
    """``text`` (what a registry, a manifest or an image config says) with its control characters
    shown as escapes (``\\x1b``): quoted in a message or a listing, an escape sequence must not reach
    the user's terminal, where it could rewrite the screen or set the clipboard."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
