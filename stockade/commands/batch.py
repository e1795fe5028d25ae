"""Verbs that act on many objects at once (``rm a b c``, ``stop``, ``volume rm``, ``prune``), as Docker's do."""

from __future__ import annotations

import sys
from typing import Callable, Iterable

from engine.errors import StockadeError
from stockade.context import Context
from stockade.output import print_json


def each(names: Iterable[str], action: Callable[[str], object]) -> int:
    """Apply ``action`` to every name, printing the name when it succeeds; a failure is one error
    line and the others still go ahead. Exit status 1 if any failed."""
    failed = 0
    for name in names:
        try:
            action(name)
            print(name)
        except StockadeError as exc:
            sys.stderr.write(f"stockade: error: {exc}\n")
            failed = 1
    return failed


def print_pruned(ctx: Context, kind: str, removed: list[str]) -> None:
    """What ``prune`` removed, as Docker prints it: ``{"<Kind>Deleted": […]}`` with ``-o json``,
    else ``Deleted <Kind>:`` and one name a line (``kind``: ``Containers``, ``Volumes``)."""
    if ctx.output == "json":
        print_json({f"{kind}Deleted": removed})
        return
    print(f"Deleted {kind}:")
    for name in removed:
        print(name)
