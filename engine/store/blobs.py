"""Content-addressed blobs: verified before they become visible, written once even under concurrency.

A blob is written to a temporary name beside its final one, checked against its digest and size,
fsynced, and renamed into place; a reader therefore never sees a partial or wrong blob, whatever
happens to the writer (``kill -9`` included). Each digest has a lock: the first writer downloads,
a concurrent one waits and then finds the blob present, so two pulls of one image fetch each blob
once. Temporary files a killed writer left behind are removed by the next writer of that digest
(who holds the lock, so they cannot be anyone's work in progress) or by the garbage collector.
"""

from __future__ import annotations

import errno
import hashlib
import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, ContextManager, Iterator

from engine.atomicfile import fsync_dir, temp_name
from engine.registry.digest import DigestVerifier, check_bytes, compute
from engine.registry.errors import VerificationError
from engine.registry.streams import iter_chunks
from engine.store.layout import StoreError, StoreLayout
from engine.store.locks import locked

if TYPE_CHECKING:  # the data model is not on a local run's path
    from engine.registry.manifest import Descriptor


class BlobWriter:
    """An open temporary file for one blob; :meth:`commit` makes it visible.

    ``direct``: written around the page cache (``O_DIRECT``), for layer blobs. A layer blob is
    written once and read again only by ``push``, ``save`` or a re-unpack, while a pull also writes
    the unpacked layer, so putting the blob in the page cache doubled the pages a pull allocates and
    copies into. On this machine (a VM whose freed memory goes back to its host, so a fresh page
    costs a fault outside) that was most of a pull's system time: a 257 MiB pull right after another
    large one took 0.74-0.85 s through the page cache and 0.61-0.65 s around it, in one interleaved
    run (skopeo 0.73-0.76 s). Data goes out from one page-aligned buffer; the tail as a padded block,
    then the file is cut to the blob's size. Where ``O_DIRECT`` is refused the writer is buffered.

    Buffered (manifests and configs, read again at once; or where ``O_DIRECT`` is refused): every
    full buffer's writeback is started (``posix_fadvise(DONTNEED)``), so the fsync at commit does not
    write a whole large blob while its download sits idle.
    """

    ALIGN = 4096  # O_DIRECT's alignment of offsets, lengths and memory (every Linux block size divides it)
    BUFFER = 4 * 1024 * 1024  # 8 MiB measured no faster; a pull holds six

    def __init__(self, final: Path, digest: str, size: int | None, *, verify: bool, direct: bool = False) -> None:
        import mmap  # page-aligned memory for O_DIRECT

        self.final = final
        self.tmp = temp_name(final)
        self._verifier = DigestVerifier(digest, size, what=f"blob {digest}") if verify else None
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
        self._fd, self.direct = -1, False
        if direct:
            try:
                self._fd, self.direct = os.open(self.tmp, flags | os.O_DIRECT, 0o600), True
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # EINVAL: this filesystem does not do O_DIRECT
                    raise
                self.tmp.unlink(missing_ok=True)  # some filesystems create the file before refusing
        if self._fd < 0:
            self._fd = os.open(self.tmp, flags, 0o600)
        self._buffer = mmap.mmap(-1, self.BUFFER)
        self._view = memoryview(self._buffer)
        self._fill = self._written = self._flushed = 0  # bytes in the buffer, accepted, in the file
        self.committed = False

    def write(self, data: bytes | memoryview) -> int:
        if self._verifier:
            self._verifier.update(data)
        source = memoryview(data).cast("B")
        while source:
            take = min(len(source), self.BUFFER - self._fill)
            self._view[self._fill:self._fill + take] = source[:take]
            self._fill += take
            source = source[take:]
            if self._fill == self.BUFFER:
                self._flush(self.BUFFER)
        self._written += len(data)
        return len(data)

    def _flush(self, length: int) -> None:
        """Write the first ``length`` bytes of the buffer at the file's end."""
        view = self._view[:length]
        while view:
            view = view[os.write(self._fd, view):]
        if not self.direct:
            os.posix_fadvise(self._fd, self._flushed, length, os.POSIX_FADV_DONTNEED)
        self._flushed += length
        self._fill = 0

    def copy_from(self, source: BinaryIO) -> None:
        for chunk in iter_chunks(source):
            self.write(chunk)

    def commit(self, *, sync_dir: bool = True) -> None:
        """Verify (unless the source already did), fsync, rename into place. ``sync_dir=False``:
        the caller fsyncs the blob directory itself, once for many blobs (a pull does)."""
        if self._verifier:
            self._verifier.finish()
        if self._fill and self.direct:  # O_DIRECT writes whole blocks: pad, then cut the file to size
            padded = -(-self._fill // self.ALIGN) * self.ALIGN
            self._view[self._fill:padded] = bytes(padded - self._fill)
            self._flush(padded)
            os.ftruncate(self._fd, self._written)
        elif self._fill:
            self._flush(self._fill)
        os.fsync(self._fd)
        self._close()
        os.chmod(self.tmp, 0o644)
        os.replace(self.tmp, self.final)
        if sync_dir:
            fsync_dir(self.final.parent)
        self.committed = True

    def _close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            self._view.release()
            self._buffer.close()

    def discard(self) -> None:
        self._close()
        self.tmp.unlink(missing_ok=True)


class BlobStore:
    def __init__(self, layout: StoreLayout) -> None:
        self.layout = layout

    def path(self, digest: str) -> Path:
        return self.layout.blob(digest)

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise self._missing(digest) from None

    def existing(self, digest: str) -> Path:
        """The path of a blob that must be in the store (StoreError if it is not)."""
        path = self.path(digest)
        if not path.is_file():
            raise self._missing(digest)
        return path

    def _missing(self, digest: str) -> StoreError:
        return StoreError(f"blob {digest} is missing from the store at {self.layout.root} "
                          "(pull the image again)")

    def read(self, digest: str, limit: int) -> bytes:
        """A small blob (manifest, config), re-verified: the store's own files are checked too."""
        with self.open(digest) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise StoreError(f"blob {digest} is larger than {limit} bytes")
        try:
            check_bytes(data, digest, what=f"stored blob {digest}")
        except VerificationError as exc:
            raise StoreError(f"{exc} (the store at {self.layout.root} is damaged)") from None
        return data

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    @contextmanager
    def ingest(self, digest: str, size: int | None, *, verify: bool = True,
               direct: bool = False) -> Iterator[BlobWriter | None]:
        """Lock ``digest`` and yield a writer, or None if the blob is already present.

        ``verify=False`` is for a source that checked digest and size itself (a
        :class:`~engine.registry.client.BlobReader` read to its end); the writer then skips a second
        sha256 pass over the data. ``direct``: around the page cache (layer blobs, see BlobWriter).
        """
        with locked(self.layout.blob_lock(digest)):
            with self._writer(digest, size, verify=verify, direct=direct) as writer:
                yield writer

    @contextmanager
    def _writer(self, digest: str, size: int | None, *, verify: bool,
                direct: bool = False) -> Iterator[BlobWriter | None]:
        """The part of :meth:`ingest` after the lock is held."""
        final = self.path(digest)
        if final.is_file():
            yield None
            return
        self._remove_stale(final)
        writer = BlobWriter(final, digest, size, verify=verify, direct=direct)
        try:
            yield writer
        finally:
            if not writer.committed:
                writer.discard()

    def write_bytes(self, data: bytes, digest: str | None = None, *, lock_held: bool = False,
                    sync_dir: bool = True) -> str:
        """Store ``data`` (checked against ``digest`` when given); return its digest.
        ``lock_held``: the caller already holds this digest's lock (see :meth:`locked`)."""
        digest = digest or compute(data)
        with (self._writer(digest, len(data), verify=True) if lock_held
              else self.ingest(digest, len(data))) as writer:
            if writer is not None:
                writer.write(data)
                writer.commit(sync_dir=sync_dir)
        return digest

    @property
    def directory(self) -> Path:
        """Where blobs are renamed into place (to fsync once after many ``sync_dir=False`` commits)."""
        return self.layout.blobs / "sha256"

    def locked(self, digest: str) -> ContextManager[None]:
        """Hold ``digest``'s lock: no one else writes (or deletes) that blob meanwhile."""
        return locked(self.layout.blob_lock(digest))

    def write_stream(self, source: BinaryIO, expected: Descriptor | None = None) -> tuple[str, int]:
        """Store a stream of unknown digest (an import, an archive member); return (digest, size).

        The data goes to a temporary file first and is hashed on the way; it is renamed under its
        digest while that digest's lock is held.
        """
        staging = temp_name(self.layout.blobs / "sha256" / "stream")
        hasher = hashlib.sha256()
        size = 0
        try:
            with open(staging, "xb") as f:
                for chunk in iter_chunks(source):
                    hasher.update(chunk)
                    f.write(chunk)
                    size += len(chunk)
                f.flush()
                os.fsync(f.fileno())
            digest = f"sha256:{hasher.hexdigest()}"
            if expected is not None and (expected.digest != digest or expected.size != size):
                raise StoreError(f"content does not match its descriptor (expected {expected.digest}, "
                                 f"{expected.size} bytes; got {digest}, {size} bytes)")
            with locked(self.layout.blob_lock(digest)):
                final = self.path(digest)
                if not final.is_file():
                    os.chmod(staging, 0o644)
                    os.replace(staging, final)
                    fsync_dir(final.parent)
        finally:
            staging.unlink(missing_ok=True)
        return digest, size

    def delete(self, digest: str) -> None:
        with locked(self.layout.blob_lock(digest)):
            self.path(digest).unlink(missing_ok=True)

    def digests(self) -> Iterator[str]:
        for algorithm_dir in self.layout.blobs.iterdir():
            for entry in algorithm_dir.iterdir():
                if not entry.name.startswith("."):
                    yield f"{algorithm_dir.name}:{entry.name}"

    def temporaries(self) -> Iterator[Path]:
        for algorithm_dir in self.layout.blobs.iterdir():
            yield from (e for e in algorithm_dir.iterdir() if e.name.startswith("."))

    @staticmethod
    def _remove_stale(final: Path) -> None:
        for stale in final.parent.glob(f".{final.name}.tmp-*"):
            stale.unlink(missing_ok=True)
