"""Small stream adapters the client and the store share: chunks, observed reads, slices, iterators.

They exist so each byte of a blob is touched once: a download is hashed, written and unpacked in one
pass (``ObservedReader`` calls a function on every chunk as it flows by), and uploads report progress
the same way. Reads are ``CHUNK`` bytes at a time: large enough that per-call costs vanish and that
``hashlib`` and file writes release the GIL for most of the work.
"""

from __future__ import annotations

import io
from typing import BinaryIO, Callable, Iterator

CHUNK = 1024 * 1024  # bytes per read when streaming blobs


def iter_chunks(source: BinaryIO, size: int = CHUNK) -> Iterator[memoryview]:
    """The stream's bytes as views of one reused buffer (use each before asking for the next)."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    while True:
        n = source.readinto(buffer)  # type: ignore[attr-defined]
        if not n:
            return
        yield view[:n]


def drain(source: BinaryIO) -> None:
    """Read to the end (a verifying reader reports a bad digest only at EOF)."""
    for _ in iter_chunks(source):
        pass


class ObservedReader(io.RawIOBase):
    """Reads from ``source`` and hands every chunk read to ``observe`` on the way through."""

    def __init__(self, source: BinaryIO, observe: Callable[[memoryview], object]) -> None:
        super().__init__()
        self._source, self._observe = source, observe

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = self._source.readinto(buffer)  # type: ignore[attr-defined]
        if n:
            self._observe(memoryview(buffer)[:n])
        return n

    def close(self) -> None:
        self._source.close()
        super().close()


class SliceReader(io.RawIOBase):
    """``length`` bytes of ``source`` starting at ``start`` (one chunk of a chunked upload)."""

    def __init__(self, source: BinaryIO, start: int, length: int) -> None:
        super().__init__()
        self._source = source
        self._source.seek(start)
        self._left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._left <= 0:
            return 0
        n = self._source.readinto(memoryview(buffer)[:self._left])  # type: ignore[attr-defined]
        self._left -= n
        return n

    def close(self) -> None:
        self._source.close()
        super().close()


class IterReader(io.RawIOBase):
    """A readable stream over an iterator of byte chunks (a generator that transforms a stream)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks, self._pending = chunks, memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            try:
                self._pending = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n
