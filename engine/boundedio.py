"""Reading a small file nobody vouches for: at most a known number of bytes, then JSON.

Seccomp profiles, bundle configs, pinned TUF roots, image configs and OCI layout documents are all
small JSON files from outside. Each is read with a bound (a runaway or hostile file is refused before
it is in memory, not after) and every failure is one line naming the file. The caller keeps its own
error class (so its exit code and ``except`` clauses stay its own) and its own name for the file:
``what`` is the phrase the message starts from, such as ``"seccomp profile /etc/x.json"``.
"""

from __future__ import annotations

import json
import os
from typing import Any


def read_bytes(path: str | os.PathLike[str], limit: int, *, what: str, error: type[Exception]) -> bytes:
    """The bytes of ``path``, refusing a file larger than ``limit`` bytes without reading past it."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise error(f"cannot read {what}: {exc.strerror}") from None
    if len(data) > limit:
        raise error(f"{what} is larger than {limit} bytes")
    return data


def parse_json(raw: bytes, *, what: str, error: type[Exception]) -> Any:
    """``raw`` parsed as JSON. Nesting deep enough to exhaust the parser's recursion is refused too:
    a hostile document must fail as bad input, never as a crash."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise error(f"{what} is not valid JSON: {exc}") from None


def load_json(path: str | os.PathLike[str], limit: int, *, what: str,
              error: type[Exception]) -> tuple[bytes, Any]:
    """``path``'s exact bytes (for a digest or a cache key) and the document they hold."""
    raw = read_bytes(path, limit, what=what, error=error)
    return raw, parse_json(raw, what=what, error=error)
