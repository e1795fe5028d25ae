"""The ignore file: accepted findings, each with a reason and an expiry.

```toml
[[ignore]]
check = "CTR-015"                 # an ID or a prefix
target = "container:legacy-*"     # optional glob on kind:name (default: every target)
reason = "legacy app writes to /var/cache; fix tracked in OPS-123"
expires = 2027-03-31
```

A matching entry suppresses a failure: it is still reported (SARIF ``suppressions``, JSON
``suppressed``) but no longer sets the exit code. An expired entry is inert, so an accepted risk
comes back for review on its date, and the report lists it. A malformed file is a configuration
error (exit 2): a typo must not silently hide or unhide findings.
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Iterable

from engine.errors import ConfigError
from hardening.audit.model import Result, Suppression

KEYS = {"check", "target", "reason", "expires"}


@dataclass(frozen=True)
class IgnoreEntry:
    check: str
    target: str
    reason: str
    expires: date
    where: str  # file and entry number, for messages

    def matches(self, result: Result) -> bool:
        return (result.check.id.startswith(self.check)
                and fnmatch.fnmatchcase(result.target.label, self.target))

    def as_dict(self) -> dict[str, str]:
        return {"check": self.check, "target": self.target, "reason": self.reason,
                "expires": self.expires.isoformat(), "where": self.where}


def load_ignore_file(path: str | Path, known_ids: Iterable[str]) -> list[IgnoreEntry]:
    """Parse and validate an ignore file; every problem is a ConfigError naming file and entry."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"ignore file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read ignore file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    unknown_top = set(doc) - {"ignore"}
    if unknown_top:
        raise ConfigError(f"{path}: unknown key {sorted(unknown_top)[0]!r} (expected [[ignore]] tables)")
    ids = list(known_ids)
    entries = []
    for n, raw in enumerate(doc.get("ignore", []), start=1):
        where = f"{path}: ignore entry {n}"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: must be a table")
        extra = set(raw) - KEYS
        if extra:
            raise ConfigError(f"{where}: unknown key {sorted(extra)[0]!r} (known: {', '.join(sorted(KEYS))})")
        for key in ("check", "reason", "expires"):
            if key not in raw or raw[key] in ("", None):
                raise ConfigError(f"{where}: {key} is required")
        check = str(raw["check"]).upper()
        if not any(i.startswith(check) for i in ids):
            raise ConfigError(f"{where}: no check ID starts with {check!r}")
        expires = raw["expires"]
        if isinstance(expires, str):
            try:
                expires = date.fromisoformat(expires)
            except ValueError:
                raise ConfigError(f"{where}: expires {expires!r} is not a date (YYYY-MM-DD)") from None
        if not isinstance(expires, date):
            raise ConfigError(f"{where}: expires must be a date (YYYY-MM-DD)")
        if not isinstance(raw["reason"], str) or not raw["reason"].strip():
            raise ConfigError(f"{where}: reason must be a non-empty string")
        entries.append(IgnoreEntry(check, str(raw.get("target", "*")), raw["reason"].strip(),
                                   expires if not hasattr(expires, "date") else expires.date(), where))
    return entries


def apply_ignores(results: list[Result], entries: list[IgnoreEntry], today: date
                  ) -> tuple[list[Result], list[IgnoreEntry]]:
    """Mark failures matched by a live entry as suppressed; return them and the expired entries."""
    live = [e for e in entries if e.expires >= today]
    expired = [e for e in entries if e.expires < today]
    out = []
    for r in results:
        entry = next((e for e in live if e.matches(r)), None) if r.status.value == "FAIL" else None
        if entry is not None:
            r = replace(r, suppression=Suppression(entry.reason, entry.expires.isoformat(),
                                                   f"{entry.check} {entry.target}"))
        out.append(r)
    return out, expired
