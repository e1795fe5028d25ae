"""An image read straight from an OCI image layout directory (``--image oci:DIR[:TAG]``).

CI pipelines build an image into a layout (umoci, buildah, skopeo) and want it graded before it is
pushed, with no store involved. Layers are read as tar streams, never extracted; every blob read is
checked against its digest, because a layout is input from outside like any registry.

The layers go through the same hardened readers as unpacking (``engine.layers``): the media type
must name the compression and the blob's magic bytes must agree, a cut gzip or zstd stream (zstd
frames included, which the zstandard reader alone does not notice) is refused, decompressed bytes
and entries are bounded, and no tar header (PAX, GNU long name) may declare more than a megabyte,
where ``tarfile`` would read whatever size a header declares into memory.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterator, Mapping

from engine.boundedio import parse_json, read_bytes
from engine.config import UnpackConfig
from engine.errors import StockadeError
from engine.layers import LayerError, UnpackLimits
from engine.layers.compression import DecompressedStream
from engine.layers.model import Refused
from engine.layers.tarstream import BLOCKDEV, CHARDEV, DIR, FIFO, FILE, HARDLINK, SYMLINK, TarReader
from hardening.audit.targets import LayerFile, image_name, image_path

MAX_JSON = 4 * 1024 * 1024
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
_KIND = {FILE: "file", DIR: "dir", SYMLINK: "link", HARDLINK: "link", CHARDEV: "char", BLOCKDEV: "block",
         FIFO: "fifo"}
_DRAIN = 1024 * 1024


class LayoutError(StockadeError):
    """The OCI layout is missing, malformed, or a blob does not match its digest."""


class _Hashing:
    """A blob file read through, hashed as the decompressor reads it (in its own thread)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.sha = raw, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.sha.update(data)
        return data

    def drain(self) -> None:
        """Hash what the decompressor left unread, so the digest covers the whole blob."""
        while self.read(_DRAIN):
            pass


@dataclass
class OciLayoutImage:
    """One image of a layout, with layer listings built once on load."""

    layout: Path
    id: str
    digest: str | None
    tags: tuple[str, ...]
    config: Mapping[str, Any]
    layer_descs: list[Mapping[str, Any]]
    limits: UnpackLimits
    signed_digest: str | None = None  # the layout's own entry: an index for a multi-platform image
    _files: list[list[LayerFile]] = field(default_factory=list)
    _whiteouts: list[set[str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return image_name(self.tags, self.id)

    def _blob_path(self, digest: str) -> Path:
        algo, _, hexd = digest.partition(":")
        if algo != "sha256" or len(hexd) != 64 or not all(c in "0123456789abcdef" for c in hexd):
            raise LayoutError(f"{self.layout}: unsupported or malformed digest {digest!r}")
        return self.layout / "blobs" / "sha256" / hexd

    def _scan(self, index: int, want: str | None = None, limit: int = 0) -> bytes | None:
        """Read layer ``index``; without ``want`` record its listing, else return that file's bytes."""
        desc = self.layer_descs[index]
        digest = desc.get("digest")
        try:
            raw = open(self._blob_path(str(digest or "")), "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise LayoutError(f"{self.layout}: layer blob {digest} is missing") from None
        files: list[LayerFile] = []
        whiteouts: set[str] = set()
        found: bytes | None = None
        name = None
        hashing = _Hashing(raw)
        try:
            with raw, DecompressedStream(hashing, str(desc.get("mediaType", "")), self.limits.max_bytes) as stream:
                reader = TarReader(stream.chunks())
                for count, entry in enumerate(reader.entries(), 1):
                    if count > self.limits.max_entries:
                        raise Refused(f"more than {self.limits.max_entries} entries (unpack.max_entries)")
                    name = entry.name
                    path = image_path(entry.name)
                    base = posixpath.basename(path)
                    if want is not None:
                        if path == want and entry.kind is FILE:
                            found = reader.read(min(limit, entry.size))
                            break
                        continue
                    if base.startswith(".wh."):
                        parent = posixpath.dirname(path)
                        whiteouts.add(parent + "/" if base == ".wh..wh..opq" else posixpath.join(parent, base[4:]))
                        continue
                    files.append(LayerFile(path, entry.mode, entry.uid, entry.gid, _KIND[entry.kind],
                                           entry.size, index))
                if want is None:
                    hashing.drain()
        except (LayerError, Refused, OSError) as exc:
            after = f" (after entry {name!r})" if name is not None else ""
            raise LayoutError(f"{self.layout}: layer {digest} is refused{after}: {exc}") from None
        if want is None:
            actual = "sha256:" + hashing.sha.hexdigest()
            if actual != digest:
                raise LayoutError(f"{self.layout}: layer {digest} has digest {actual}")
            self._files.append(files)
            self._whiteouts.append(whiteouts)
        return found

    def load(self) -> "OciLayoutImage":
        for i in range(len(self.layer_descs)):
            self._scan(i)
        return self

    def files(self) -> Iterator[LayerFile]:
        for layer in self._files:
            yield from layer

    def read_file(self, path: str, limit: int = 1024 * 1024) -> bytes | None:
        want = image_path(path)
        for index in range(len(self._files) - 1, -1, -1):
            if any(f.path == want and f.kind == "file" for f in self._files[index]):
                return self._scan(index, want, limit)
            wh = self._whiteouts[index]
            if want in wh or any(want.startswith(p) for p in wh if p.endswith("/")):
                return None
        return None


def _read_json(path: Path, digest: str | None = None) -> Any:
    data = read_bytes(path, MAX_JSON, what=str(path), error=LayoutError)
    if digest is not None and "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise LayoutError(f"{path} does not match its digest {digest}")
    return parse_json(data, what=str(path), error=LayoutError)


def _read_object(path: Path, digest: str | None = None) -> dict[str, Any]:
    """A layout document that must be a JSON object (index, manifest, config)."""
    doc = _read_json(path, digest)
    if not isinstance(doc, dict):
        raise LayoutError(f"{path}: expected a JSON object, found {type(doc).__name__}")
    return doc


def _descriptors(doc: Mapping[str, Any], key: str, where: object) -> list[dict[str, Any]]:
    """``doc[key]`` as a list of descriptor objects whose optional maps are maps: a hostile layout
    must fail as bad input (one line naming it), never as an AttributeError."""
    items = doc.get(key) or []
    if not isinstance(items, list) or not all(
            isinstance(i, dict) and all(isinstance(i.get(k) or {}, dict) for k in ("annotations", "platform"))
            for i in items):
        raise LayoutError(f"{where}: {key} must be a list of descriptor objects")
    return items


def _pick(manifests: list[dict[str, Any]], tag: str | None, where: Path) -> Mapping[str, Any]:
    if tag is not None:
        named = [m for m in manifests
                 if (m.get("annotations") or {}).get("org.opencontainers.image.ref.name") == tag]
        if not named:
            raise LayoutError(f"{where}: no image tagged {tag!r}")
        return named[0]
    if len(manifests) != 1:
        raise LayoutError(f"{where}: holds {len(manifests)} images; name one as oci:DIR:TAG")
    return manifests[0]


def open_layout(spec: str, limits: UnpackLimits | None = None) -> OciLayoutImage:
    """``DIR`` or ``DIR:TAG`` -> the image, its layers listed and digest-checked; ``limits`` bound each
    layer as unpacking does (default: the ``[unpack]`` defaults)."""
    directory, _, tag = spec.partition(":")
    layout = Path(directory)
    if not (layout / "oci-layout").is_file():
        raise LayoutError(f"{layout} is not an OCI image layout (no oci-layout file)")
    index = _read_object(layout / "index.json")
    desc = _pick(_descriptors(index, "manifests", layout / "index.json"), tag or None, layout)
    image = OciLayoutImage(layout, "", None, (), {}, [], limits or UnpackLimits.from_config(UnpackConfig()),
                           signed_digest=str(desc.get("digest")))
    manifest = _read_object(image._blob_path(str(desc.get("digest"))), str(desc.get("digest")))
    if desc.get("mediaType") in INDEX_TYPES or manifest.get("mediaType") in INDEX_TYPES:
        children = [m for m in _descriptors(manifest, "manifests", desc.get("digest"))
                    if (m.get("platform") or {}).get("architecture") in (None, "amd64")]
        if not children:
            raise LayoutError(f"{layout}: index {desc.get('digest')} has no linux/amd64 image")
        desc = children[0]
        manifest = _read_object(image._blob_path(str(desc.get("digest"))), str(desc.get("digest")))
    config_desc = manifest.get("config") or {}
    if not isinstance(config_desc, dict):
        raise LayoutError(f"{layout}: manifest {desc.get('digest')}: config must be a descriptor object")
    config = _read_object(image._blob_path(str(config_desc.get("digest"))),
                          str(config_desc.get("digest")))
    image.id = str(config_desc.get("digest"))
    image.digest = str(desc.get("digest"))
    image.tags = (f"oci:{layout}:{tag}",) if tag else (f"oci:{layout}",)
    image.config = config
    image.layer_descs = _descriptors(manifest, "layers", desc.get("digest"))
    return image.load()
