"""``inspect NAME…``: Docker's catch-all inspect, for any kind of object the engine holds.

Each name is looked up by the inspectors in ``INSPECTORS`` order (containers before images, as
Docker does, once the runtime registers its inspector); ``--type`` restricts the search to one kind.
An inspector is ``"module:function"`` with ``function(ctx, name) -> dict | None`` (None: no object of
that kind has this name), so a new kind of object is one line here and imports nothing until used.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any, Callable

from engine.errors import NotFoundError
from stockade.context import Context
from stockade.output import add_output_flag

INSPECTORS: tuple[tuple[str, str], ...] = (
    ("container", "stockade.commands.containers:inspect_container"),
    ("image", "stockade.commands.images:inspect_image"),
)

Inspector = Callable[[Context, str], "dict[str, Any] | None"]


def _inspector(target: str) -> Inspector:
    module, _, function = target.partition(":")
    found: Inspector = getattr(importlib.import_module(module), function)
    return found


def inspect_objects(ctx: Context, names: list[str], kinds: list[str],
                    what: str = "object") -> list[dict[str, Any]]:
    """The inspect document of each name, from the first inspector of ``kinds`` that knows it;
    NotFoundError ``no such <what>: NAME`` for a name none knows."""
    inspectors = [_inspector(target) for kind, target in INSPECTORS if kind in kinds]
    docs = []
    for name in names:
        for inspector in inspectors:
            doc = inspector(ctx, name)
            if doc is not None:
                docs.append(doc)
                break
        else:
            raise NotFoundError(f"no such {what}: {name}")
    return docs


def cmd_inspect(ctx: Context) -> int:
    from stockade.commands.images import print_inspected

    kinds = [ctx.args.type] if ctx.args.type else [kind for kind, _ in INSPECTORS]
    print_inspected(ctx, inspect_objects(ctx, ctx.args.names, kinds))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("inspect", help="show low-level information on objects as JSON")
    p.add_argument("names", nargs="+", metavar="NAME|ID")
    p.add_argument("--type", choices=[kind for kind, _ in INSPECTORS], help="only this kind of object")
    add_output_flag(p, default="json")
    p.set_defaults(func=cmd_inspect)
