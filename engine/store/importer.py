"""``import``: a root filesystem tarball becomes a one-layer image, as ``docker import`` does.

The tarball may be plain or compressed (gzip, zstd, bzip2, xz). A gzip tarball is kept as the
layer blob byte for byte (it is already what a registry wants); anything else is decompressed and
gzip-compressed. The uncompressed stream comes from the unpacker's own decompression
(:class:`engine.layers.compression.DecompressedStream`: magic-checked, zstd frames followed to the
last one, truncation refused, hashed for the diff_id, and never more than one chunk past
``unpack.max_layer_size``, so a decompression bomb stops at the limit); bzip2 and xz are read
through the standard library's multi-stream readers in front of it. The stream must start like a
tar archive. The layer is then unpacked through the same safe path as a pulled one, so ``run`` finds
it ready and a hostile tarball is refused here.
"""

from __future__ import annotations

import bz2
import json
import lzma
import tarfile
import threading
import time
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterator, Sequence

from engine.layers.compression import DecompressedStream
from engine.layers.model import LayerError, Refused
from engine.reference import Reference
from engine.registry import mediatypes as mt
from engine.registry.digest import compute
from engine.registry.manifest import Descriptor
from engine.registry.platform import Platform
from engine.registry.streams import CHUNK, IterReader, ObservedReader
from engine.store.changes import apply_changes
from engine.store.index import Image
from engine.store.layout import StoreError

if TYPE_CHECKING:
    from engine.store.store import Store

try:  # isal compresses several times faster than zlib at the same ratio
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - isal is a locked dependency
    import zlib as _zlib  # type: ignore[no-redef]

GZIP_LEVEL = 1  # isal's levels are 0-3; 1 is close to zlib -6 in ratio and much faster
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"), (b"BZh", "bzip2"),
          (b"\xfd7zXZ\x00", "xz"))
# The media type DecompressedStream checks the input against, by compression found at its start.
_MEDIA_TYPE = {"gzip": mt.OCI_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD}
_STDLIB_READERS: dict[str, Callable[[BinaryIO], Any]] = {"bzip2": bz2.BZ2File, "xz": lzma.LZMAFile}


class _StdlibReader:
    """A bzip2 or xz stream read through the standard library (several concatenated streams
    included), with its errors reported the way the unpacker reports gzip's and zstd's."""

    def __init__(self, kind: str, source: BinaryIO) -> None:
        self.kind = kind
        self._reader = _STDLIB_READERS[kind](source)

    def read(self, size: int = -1) -> bytes:
        try:
            return self._reader.read(size)
        except (EOFError, OSError, lzma.LZMAError) as exc:
            raise Refused(f"truncated or corrupt {self.kind} stream: {exc}") from None


class _Tap:
    """The compressed bytes the decompression thread has read so far, for the caller to take."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[bytes] = []

    def __call__(self, view: memoryview) -> None:
        with self._lock:
            self._pending.append(bytes(view))

    def take(self) -> bytes:
        with self._lock:
            out, self._pending = b"".join(self._pending), []
        return out


class _Layer:
    """The layer blob of an import, as chunks (:meth:`chunks`), and its diff_id once they ran out."""

    def __init__(self, source: BinaryIO, limit: int, what: str) -> None:
        self.limit, self.what = limit, what
        head = source.read(6)
        self.kind = next((k for magic, k in _MAGIC if head.startswith(magic)), "none")
        self._source = IterReader(_chain(head, source))
        self.diff_id = ""

    def chunks(self) -> Iterator[bytes]:
        """The gzip input as it was read, else the tar stream gzip-compressed; StoreError when the
        input is refused (nothing is yielded after that)."""
        tap = _Tap() if self.kind == "gzip" else None
        source: Any = ObservedReader(self._source, tap) if tap else self._source
        if self.kind in _STDLIB_READERS:
            source = _StdlibReader(self.kind, source)
        compressor = None if tap else _zlib.compressobj(GZIP_LEVEL, _zlib.DEFLATED, 31)
        head = b""
        try:
            with DecompressedStream(source, _MEDIA_TYPE.get(self.kind, mt.OCI_LAYER), self.limit) as tar:
                for data in tar.chunks():
                    if len(head) < tarfile.BLOCKSIZE:
                        head += data[:tarfile.BLOCKSIZE - len(head)]
                    out = tap.take() if tap else compressor.compress(data)  # type: ignore[union-attr]
                    if out:
                        yield out
                self._check_tar(tar.size, head)
                self.diff_id = tar.diff_id
        except (Refused, LayerError) as exc:
            raise StoreError(f"{self.what}: {exc}") from None
        yield tap.take() if tap else compressor.flush()  # type: ignore[union-attr]

    def _check_tar(self, size: int, head: bytes) -> None:
        """At the end of the input, before the blob is committed: refuse an empty input or a non-tar."""
        if size == 0:
            raise StoreError(f"{self.what} is empty (expected a tar archive)")
        if head.strip(b"\0"):
            try:
                tarfile.TarInfo.frombuf(head.ljust(tarfile.BLOCKSIZE, b"\0"), "utf-8", "surrogateescape")
            except tarfile.HeaderError:
                raise StoreError(f"{self.what} is not a tar archive") from None


def _chain(head: bytes, source: BinaryIO) -> Iterator[bytes]:
    if head:
        yield head
    while True:
        chunk = source.read(CHUNK)
        if not chunk:
            return
        yield chunk


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def import_rootfs(store: "Store", source: BinaryIO, *, source_name: str = "-",
                  changes: Sequence[str] = (), message: str | None = None,
                  platform: Platform | None = None, name: Reference | None = None) -> Image:
    """Make an image from the rootfs tarball ``source``; name it ``name`` (else it is dangling)."""
    image_config = apply_changes({}, changes)  # a typo fails before any data is read
    if name is not None and name.digest:
        raise StoreError(f"cannot import as {name}: a new image's name cannot include a digest")
    plat = platform or Platform.host()
    with store.writing(collect_on_failure=True):
        blob = _Layer(source, store.config.unpack.max_layer_size, f"import of {source_name}")
        digest, size = store.blobs.write_stream(IterReader(blob.chunks()))
        diff_id = blob.diff_id
        layer = Descriptor(media_type=mt.OCI_LAYER_GZIP, digest=digest, size=size)
        created = _now()
        config: dict[str, Any] = {
            "created": created, "architecture": plat.architecture, "os": plat.os,
            "config": image_config, "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": created, "created_by": "stockade import",
                         "comment": message or f"Imported from {source_name}"}],
        }
        if plat.variant:
            config["variant"] = plat.variant
        config_raw = json.dumps(config, separators=(",", ":")).encode()
        config_digest = store.blobs.write_bytes(config_raw)
        manifest = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                    "config": {"mediaType": mt.OCI_CONFIG, "digest": config_digest,
                               "size": len(config_raw)},
                    "layers": [layer.to_json()]}
        raw = json.dumps(manifest, separators=(",", ":")).encode()
        store.ensure_layer(layer, diff_id, diff_id, None)
        return store.record(raw, compute(raw), config,
                            names=[(name.name, name.tag, None)] if name else [])
