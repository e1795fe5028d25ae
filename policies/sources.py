"""Where an input document came from, so reports can point at a file and line.

``policy check`` builds documents from Kubernetes manifests and run lines; a SARIF result needs the
file and the line of the offending field, and a fingerprint that survives unrelated edits (so it
names the object and container, never a line number).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True, slots=True)
class Source:
    file: str
    line: int | None
    identity: str                      # stable: "Deployment/ns/web containers[app]", "run busybox"
    label: str                         # short, for tables
    locate: Callable[[str], tuple[int | None, str | None]] = field(default=lambda path: (None, None))


@dataclass(frozen=True, slots=True)
class Located:
    """An input document and where it came from."""

    document: dict[str, Any]
    source: Source
