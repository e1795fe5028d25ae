"""The verification cache: positive verdicts, reused until the earliest expiry involved.

The key is SHA-256 over (manifest digest, canonical requirements, trusted-root hash, scope): change
the key set, an identity, a flag or the trusted root and the entry no longer applies. Only positive
verdicts are stored, so a fixed signature is seen at once; a positive one lives at most
``trust.verify.DEFAULT_TTL`` (an hour), less when TUF metadata expires sooner. A removed signature
is therefore noticed within that hour, which is the price of not asking the registry on every run.

Entries are JSON files written atomically in a directory only the owner can write (``Paths.cache /
"verify"``): whoever can write there is as trusted as whoever can write the image store. This
module imports neither sigstore nor tuf, nor anything that does; a hit is a file read.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from engine.cachefiles import content_key, read_entry, write_entry

from trust.verdict import Verdict

FORMAT = 1


class VerificationCache:
    """Positive verdicts on disk, keyed by digest and everything the verdict depended on."""

    def __init__(self, directory: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.clock = clock

    @classmethod
    def for_paths(cls, cache_root: Path) -> "VerificationCache":
        return cls(cache_root / "verify")

    def key(self, digest: str, parts: dict[str, Any]) -> str:
        return content_key({"format": FORMAT, "digest": digest, **parts})

    def _path(self, digest: str, parts: dict[str, Any]) -> Path:
        return self.directory / f"{self.key(digest, parts)}.json"

    def get(self, digest: str, parts: dict[str, Any]) -> Verdict | None:
        """The cached positive verdict, or None (missing, expired, unreadable or malformed)."""
        entry = read_entry(self._path(digest, parts), expect={"format": FORMAT, "digest": digest},
                           now=self.clock())
        if entry is None:
            return None
        try:
            verdict = Verdict.from_json(entry["verdict"])
        except (ValueError, KeyError, TypeError):
            return None
        verdict.expires = float(entry["expires"])
        return verdict

    def put(self, digest: str, parts: dict[str, Any], verdict: Verdict) -> None:
        """Store a positive verdict until ``verdict.expires``; a failure to write is not an error
        (the cache only saves time)."""
        if not verdict.ok or verdict.expires is None or verdict.expires <= self.clock():
            return
        write_entry(self._path(digest, parts), {"format": FORMAT, "digest": digest, "expires": verdict.expires,
                                                "stored": self.clock(), "verdict": verdict.to_json()})
