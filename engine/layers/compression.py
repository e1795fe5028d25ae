"""From a layer blob to bounded, hashed chunks of its uncompressed tar stream.

The media type chooses the decompressor and the blob's first bytes must agree with it: a gzip blob
labelled as zstd (or as a plain tar) is refused rather than guessed at, because a registry or a
manifest that lies about one thing may lie about others.

Decompression runs in a thread of its own that feeds the tar parser through a short queue. isal and
zstandard release the GIL while they inflate, and so do sha256 and the parser's writes, so on two
cores inflating overlaps with creating files (``tar -xzf`` gets the same overlap from a separate
gzip process). The thread also computes the diff_id and enforces ``max_bytes``: it never decompresses
more than one chunk past the limit, so a bomb stops early instead of filling a disk.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import zlib
from typing import BinaryIO, Callable, Iterator

import zstandard

from engine.layers.model import LayerError, Refused
from engine.layers.zstdframes import ZstdFraming

try:  # isal inflates about twice as fast as zlib; fall back to the standard library without it.
    from isal import igzip as _gzip_module
    from isal.isal_zlib import error as _GzipLibError
except ImportError:  # pragma: no cover - isal is a locked dependency; the fallback is for odd builds
    import gzip as _gzip_module  # type: ignore[no-redef]
    _GzipLibError = zlib.error  # type: ignore[misc,assignment]

GZIP, ZSTD, NONE = "gzip", "zstd", "none"

# Every layer media type we apply, with its compression. Anything else is refused by name.
LAYER_MEDIA_TYPES: dict[str, str] = {
    "application/vnd.oci.image.layer.v1.tar": NONE,
    "application/vnd.oci.image.layer.v1.tar+gzip": GZIP,
    "application/vnd.oci.image.layer.v1.tar+zstd": ZSTD,
    "application/vnd.oci.image.layer.nondistributable.v1.tar": NONE,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": GZIP,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": ZSTD,
    "application/vnd.docker.image.rootfs.diff.tar": NONE,
    "application/vnd.docker.image.rootfs.diff.tar.gzip": GZIP,
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": GZIP,
}

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# Compressed formats a plain tar must not start with (gzip, zstd, bzip2, xz, lz4): such a blob is
# mislabelled, and parsing it as tar would only produce a confusing checksum error.
_COMPRESSED_MAGICS = {_GZIP_MAGIC: GZIP, _ZSTD_MAGIC: ZSTD, b"BZh": "bzip2",
                      b"\xfd7zXZ\x00": "xz", b"\x04\x22\x4d\x18": "lz4"}

CHUNK = 2 * 1024 * 1024  # decompressed bytes per hand-off: large enough to amortize the queue
_QUEUE_DEPTH = 4
_PEEK = 8


def compression_of(media_type: str) -> str:
    """The compression a layer media type declares; LayerError for a type we do not apply."""
    try:
        return LAYER_MEDIA_TYPES[media_type.strip()]
    except KeyError:
        raise LayerError(f"unknown layer media type {media_type!r}",
                         hint="expected an OCI or Docker layer type (tar, tar+gzip, tar+zstd)") from None


class _Prefixed:
    """A blob whose first bytes were already read for the magic check, read from the start again."""

    def __init__(self, head: bytes, blob: BinaryIO) -> None:
        self._head = head
        self._blob = blob

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size < 0 or size >= len(self._head):
                head, self._head = self._head, b""
                rest = self._blob.read(-1 if size < 0 else size - len(head))
                return head + rest if rest else head
            head, self._head = self._head[:size], self._head[size:]
            return head
        return self._blob.read(size)

    def readinto(self, buffer: bytearray | memoryview) -> int:
        if self._head:
            data = self.read(len(buffer))
            buffer[:len(data)] = data
            return len(data)
        # Straight into the caller's buffer (isal's reader asks for 512 KiB at a time): a read()
        # here cost two copies of every compressed byte.
        readinto = getattr(self._blob, "readinto", None)
        if readinto is None:
            data = self._blob.read(len(buffer))
            buffer[:len(data)] = data
            return len(data)
        return int(readinto(buffer))


def _read_head(blob: BinaryIO) -> bytes:
    """The blob's first _PEEK bytes (fewer only at its end): a socket may return them piecemeal."""
    head = b""
    while len(head) < _PEEK:
        more = blob.read(_PEEK - len(head))
        if not more:
            break
        head += more
    return head


def _check_magic(kind: str, media_type: str, head: bytes) -> None:
    if kind == GZIP and not head.startswith(_GZIP_MAGIC):
        raise LayerError(f"layer blob is not gzip although its media type is {media_type}")
    if kind == ZSTD and not head.startswith(_ZSTD_MAGIC):
        raise LayerError(f"layer blob is not zstd although its media type is {media_type}")
    if kind == NONE:
        for magic, name in _COMPRESSED_MAGICS.items():
            if head.startswith(magic):
                raise LayerError(f"layer blob is {name}-compressed although its media type "
                                 f"{media_type} says uncompressed tar")


def _reader(kind: str, source: _Prefixed) -> tuple[Callable[[int], bytes], Callable[[], None]]:
    """``read(n)`` returning at most n decompressed bytes (b"" at the end), and a check to run at
    that end which raises Refused if the compressed stream did not end cleanly."""
    if kind == GZIP:  # GzipFile itself refuses a cut member, a bad CRC and trailing garbage
        return _gzip_module.GzipFile(fileobj=source, mode="rb").read, _nothing  # type: ignore[arg-type]
    if kind == ZSTD:
        framing = ZstdFraming(source)  # type: ignore[arg-type]
        # The library's default window limit (128 MiB) bounds the memory a frame header can demand.
        decoder = zstandard.ZstdDecompressor().stream_reader(framing, read_across_frames=True)
        return decoder.read, framing.finish
    return source.read, _nothing


def _nothing() -> None:
    """The end check of formats whose decoder checks their own end."""


# Everything a decompressor raises for a truncated or corrupt stream.
_CORRUPT = (EOFError, OSError, ValueError, zlib.error, _GzipLibError, zstandard.ZstdError)


class DecompressedStream:
    """Iterates the uncompressed tar stream in chunks of up to CHUNK bytes, hashing and bounding it.

    Use as a context manager: leaving it stops the decompression thread, even mid-stream.
    """

    def __init__(self, blob: BinaryIO, media_type: str, max_bytes: int) -> None:
        self.kind = compression_of(media_type)
        head = _read_head(blob)
        _check_magic(self.kind, media_type, head)
        self._read, self._finish = _reader(self.kind, _Prefixed(head, blob))
        self._max_bytes = max_bytes
        self._sha = hashlib.sha256()
        self.size = 0
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(_QUEUE_DEPTH)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="layer-inflate", daemon=True)

    @property
    def diff_id(self) -> str:
        return f"sha256:{self._sha.hexdigest()}"

    def __enter__(self) -> "DecompressedStream":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        while self._thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join()

    def _put(self, item: bytes | BaseException | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            while not self._stop.is_set():
                # Ask for at most one byte past the limit: enough to know it was crossed.
                want = min(CHUNK, self._max_bytes - self.size + 1)
                data = self._read(want)
                if not data:
                    self._finish()
                    self._put(None)
                    return
                self.size += len(data)
                if self.size > self._max_bytes:
                    self._put(Refused(f"decompressed size exceeds the limit of {self._max_bytes} "
                                          "bytes (unpack.max_layer_size)"))
                    return
                self._sha.update(data)
                if not self._put(data):
                    return
        except Refused as exc:
            self._put(exc)
        except _CORRUPT as exc:
            self._put(Refused(f"truncated or corrupt {self.kind} stream: {exc}"))
        except BaseException as exc:  # noqa: BLE001 - a bug must reach the caller, not die in a thread
            self._put(exc)

    def chunks(self) -> Iterator[bytes]:
        """The decompressed chunks in order; raises Refused where the stream goes bad."""
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
