"""Content digests: computing them, and checking a stream against one while it flows.

``hashlib.sha256`` releases the GIL on large updates, so several layers hash in parallel threads at
full speed (``streams.CHUNK`` reads keep the updates large).
"""

from __future__ import annotations

import hashlib
from typing import Any

from engine.reference import validate_digest
from engine.registry.errors import VerificationError

def hasher(digest: str) -> Any:
    """A fresh hashlib object for the algorithm of ``digest`` (which must already be validated)."""
    return hashlib.new(digest.partition(":")[0])


def compute(data: bytes, algorithm: str = "sha256") -> str:
    """``algorithm:hex`` of ``data``."""
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def encoded(digest: str) -> str:
    """The hex part of a validated digest (safe as a file name: it is only [a-f0-9])."""
    return validate_digest(digest).partition(":")[2]


def check_bytes(data: bytes, digest: str, *, what: str) -> None:
    """Raise VerificationError unless ``data`` hashes to ``digest``."""
    actual = compute(data, digest.partition(":")[0])
    if actual != digest:
        raise VerificationError(f"{what}: content does not match its digest (expected {digest}, "
                                f"got {actual})")


class DigestVerifier:
    """Accumulates a stream and checks digest and exact size at the end.

    Size is checked on every update so a registry that sends more than the descriptor says is cut
    off at the first extra byte instead of being read to the end.
    """

    def __init__(self, digest: str, size: int | None, *, what: str) -> None:
        self.digest = validate_digest(digest)
        self.size = size
        self.what = what
        self.count = 0
        self._hash = hasher(digest)

    def update(self, chunk: bytes | memoryview) -> None:
        self.count += len(chunk)
        if self.size is not None and self.count > self.size:
            raise VerificationError(f"{self.what}: more data than the {self.size} bytes its descriptor "
                                    "declares (size lie)")
        self._hash.update(chunk)

    def finish(self) -> None:
        """Raise VerificationError if the stream was short or its content does not match."""
        if self.size is not None and self.count != self.size:
            raise VerificationError(f"{self.what}: got {self.count} bytes, its descriptor declares "
                                    f"{self.size} (size lie or truncated transfer)")
        actual = f"{self.digest.partition(':')[0]}:{self._hash.hexdigest()}"
        if actual != self.digest:
            raise VerificationError(f"{self.what}: content does not match its digest (expected "
                                    f"{self.digest}, got {actual})")
