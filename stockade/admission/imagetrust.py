"""Verification caches for a long-running webhook: in memory in front of trust's, and read-only.

The translation itself (policy requirements -> trust -> input-document facts) is
``stockade.verification``, shared with ``stockade run``, ``policy check`` and the audit; this module
adds what only a server needs: verdicts kept in memory (a hit reads no file) and a view that never
writes, for dry-run reviews.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from trust.cache import VerificationCache

if TYPE_CHECKING:
    from trust.verdict import Verdict


class MemoryFrontedCache(VerificationCache):
    """trust's on-disk cache with the same entries kept in memory, for a long-running server.

    A hit reads no file; expiry is checked on every read as the disk cache does. At most
    ``max_entries`` verdicts are held (expired ones first, then the oldest, make room).
    """

    def __init__(self, directory: Path, *, max_entries: int = 4096, clock: Callable[[], float] = time.time) -> None:
        super().__init__(directory, clock=clock)
        self.max_entries = max_entries
        self._memory: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str, parts: dict[str, Any]) -> Verdict | None:
        from trust.verdict import Verdict

        key = self.key(digest, parts)
        with self._lock:
            entry = self._memory.get(key)
        if entry is not None:
            expires, doc = entry
            if expires > self.clock():
                verdict = Verdict.from_json(doc)
                verdict.expires = expires
                return verdict
            with self._lock:
                self._memory.pop(key, None)
        verdict = super().get(digest, parts)
        if verdict is not None and verdict.expires is not None:
            self._remember(key, verdict)
        return verdict

    def put(self, digest: str, parts: dict[str, Any], verdict: Verdict) -> None:
        super().put(digest, parts, verdict)
        if verdict.ok and verdict.expires is not None and verdict.expires > self.clock():
            self._remember(self.key(digest, parts), verdict)

    def _remember(self, key: str, verdict: Verdict) -> None:
        doc, expires = verdict.to_json(), float(verdict.expires or 0)
        with self._lock:
            if len(self._memory) >= self.max_entries:
                now = self.clock()
                for stale in [k for k, (e, _) in self._memory.items() if e <= now]:
                    del self._memory[stale]
                while len(self._memory) >= self.max_entries:
                    del self._memory[next(iter(self._memory))]
            self._memory[key] = (expires, doc)


class ReadOnlyCache(VerificationCache):
    """A view of a cache that reads and never writes: dry-run reviews leave no trace."""

    def __init__(self, backing: VerificationCache) -> None:
        super().__init__(backing.directory, clock=backing.clock)
        self.backing = backing

    def get(self, digest: str, parts: dict[str, Any]) -> Verdict | None:
        return self.backing.get(digest, parts)

    def put(self, digest: str, parts: dict[str, Any], verdict: Verdict) -> None:
        """Dry run: a positive verdict is not stored."""
