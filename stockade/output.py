"""Output for people (aligned tables, Docker's look) and for scripts (``-o json``).

Every listing and inspection verb takes ``-o/--output``; JSON goes to stdout as one document so
``jq`` and CI steps can read it, and nothing else is printed to stdout in that mode.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Iterable, Mapping, Sequence, TextIO

from engine.errors import printable

FORMATS = ("table", "json")


def add_output_flag(parser: argparse.ArgumentParser, formats: Sequence[str] = FORMATS,
                    default: str = "table") -> None:
    """Give a verb the standard ``-o/--output`` option."""
    parser.add_argument("-o", "--output", choices=formats, default=default,
                        help=f"output format (default: {default})")


def print_json(data: Any, stream: TextIO | None = None) -> None:
    """Pretty JSON with a trailing newline; non-JSON values (paths, datetimes) become strings."""
    out = stream or sys.stdout
    json.dump(data, out, indent=2, sort_keys=False, default=str)
    out.write("\n")


Column = tuple[str, str | Callable[[Mapping[str, Any]], Any]]


def print_table(rows: Iterable[Mapping[str, Any]], columns: Sequence[Column],
                stream: TextIO | None = None) -> None:
    """Columns separated by at least three spaces, headers in capitals, as ``docker ps`` prints.
    Every cell is shown through ``printable``: names, commands and labels come from images and
    registries, and an escape sequence in one must not reach the terminal."""
    out = stream or sys.stdout
    headers = [h.upper() for h, _ in columns]
    cells = []
    for row in rows:
        line = []
        for _, key in columns:
            value = key(row) if callable(key) else row.get(key)
            line.append("" if value is None else printable(str(value)))
        cells.append(line)
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def fmt(values: Sequence[str]) -> str:
        return "   ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()

    out.write(fmt(headers) + "\n")
    for line in cells:
        out.write(fmt(line) + "\n")


def print_mapping(data: Mapping[str, Any], stream: TextIO | None = None, indent: int = 0) -> None:
    """``key: value`` lines, nested mappings indented, as ``docker info`` prints."""
    out = stream or sys.stdout
    pad = " " * indent
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.write(f"{pad}{key}:\n")
            print_mapping(value, out, indent + 2)
        elif isinstance(value, (list, tuple)):
            out.write(f"{pad}{key}: {', '.join(str(v) for v in value) if value else '(none)'}\n")
        else:
            out.write(f"{pad}{key}: {value}\n")


def human_size(n: int | float) -> str:
    """Sizes as Docker prints them: decimal units, three significant digits (``1.09MB``)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            if unit == "B":
                return f"{int(value)}B"
            return f"{value:.3g}{unit}"
        value /= 1000
    return f"{value:.3g}TB"  # pragma: no cover - loop always returns
