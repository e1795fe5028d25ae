"""``import``: a root filesystem tarball becomes a one-layer image, as ``docker import`` does.

The tarball may be plain or compressed (gzip, zstd, bzip2, xz). A gzip tarball is kept as the
layer blob byte for byte (it is already what a registry wants); anything else is decompressed and
gzip-compressed. Either way the uncompressed stream is hashed on the fly for the diff_id, bounded by
``unpack.max_layer_size``, and must start like a tar archive. The layer is then unpacked through the
same safe path as a pulled one, so ``run`` finds it ready and a hostile tarball is refused here.
"""

from __future__ import annotations

import bz2
import hashlib
import json
import lzma
import tarfile
import time
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterator, Sequence

import zstandard

from engine.reference import Reference
from engine.registry import mediatypes as mt
from engine.registry.digest import compute
from engine.registry.manifest import Descriptor
from engine.registry.platform import Platform
from engine.registry.streams import CHUNK, IterReader
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


class _Uncompressed:
    """Hashes the uncompressed tar stream, bounds it, and checks that it starts as a tar archive."""

    def __init__(self, limit: int, what: str) -> None:
        self.limit, self.what = limit, what
        self.size = 0
        self._hash = hashlib.sha256()
        self._head = b""

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise StoreError(f"{self.what}: expands past unpack.max_layer_size ({self.limit} bytes)")
        if len(self._head) < tarfile.BLOCKSIZE:
            self._head += data[:tarfile.BLOCKSIZE - len(self._head)]
        self._hash.update(data)

    def finish(self) -> None:
        """Called at the end of the input, before the blob is committed: refuse a non-tar."""
        if self.size == 0:
            raise StoreError(f"{self.what} is empty (expected a tar archive)")
        if self._head.strip(b"\0"):
            try:
                tarfile.TarInfo.frombuf(self._head.ljust(tarfile.BLOCKSIZE, b"\0"), "utf-8",
                                        "surrogateescape")
            except tarfile.HeaderError:
                raise StoreError(f"{self.what} is not a tar archive") from None

    @property
    def diff_id(self) -> str:
        return f"sha256:{self._hash.hexdigest()}"


def _decompressor(kind: str) -> Callable[[bytes], bytes]:
    if kind == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress
    if kind == "bzip2":
        return bz2.BZ2Decompressor().decompress
    if kind == "xz":
        return lzma.LZMADecompressor().decompress
    return lambda data: data


def _gunzip_all(data: bytes, state: list[Any]) -> bytes:
    """Inflate ``data`` through a gzip stream of possibly several members (``state`` holds the
    current decompressor)."""
    out = []
    while data:
        if state[0] is None:
            state[0] = _zlib.decompressobj(31)
        out.append(state[0].decompress(data))
        data = state[0].unused_data
        if state[0].eof:
            state[0] = None
    return b"".join(out)


def _blob_chunks(source: BinaryIO, tar: _Uncompressed) -> Iterator[bytes]:
    """The layer blob's bytes: the gzip input as is, else the input re-compressed with gzip."""
    head = source.read(6)
    kind = next((k for magic, k in _MAGIC if head.startswith(magic)), "none")
    chunks = _chain(head, source)
    if kind == "gzip":
        state: list[Any] = [None]
        for chunk in chunks:
            tar.feed(_gunzip_all(chunk, state))
            yield chunk
        if state[0] is not None:
            raise StoreError(f"{tar.what}: the gzip stream is truncated")
        tar.finish()
        return
    decompress = _decompressor(kind)
    compressor = _zlib.compressobj(GZIP_LEVEL, _zlib.DEFLATED, 31)
    for chunk in chunks:
        try:
            data = decompress(chunk)
        except (OSError, EOFError, lzma.LZMAError, zstandard.ZstdError) as exc:
            raise StoreError(f"{tar.what}: corrupt {kind} data ({exc})") from None
        tar.feed(data)
        out = compressor.compress(data)
        if out:
            yield out
    tar.finish()
    yield compressor.flush()


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
        tar = _Uncompressed(store.config.unpack.max_layer_size, f"import of {source_name}")
        digest, size = store.blobs.write_stream(IterReader(_blob_chunks(source, tar)))
        diff_id = tar.diff_id
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
