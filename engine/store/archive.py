"""``save`` and ``load``: images as OCI image layout archives (tar), readable by skopeo and Docker.

``save`` writes an OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/…``) and, for
``docker load``, Docker's ``manifest.json`` beside it. Each tag is one ``index.json`` entry annotated
with ``io.containerd.image.name`` (the full name) and ``org.opencontainers.image.ref.name`` (the
tag), the convention containerd, Docker and podman share.

``load`` reads such an archive, or a classic ``docker save`` archive (``manifest.json`` with
``<id>/layer.tar`` members), as a stream (stdin works). The archive is untrusted: members are never
extracted as paths, only read as content; every ``blobs/`` member is verified against the digest its
name claims; the JSON documents are bounded; links may only point at other members; and every
layer is unpacked through the safe unpacker before the image is recorded.
"""

from __future__ import annotations

import io
import json
import posixpath
import re
import tarfile
from typing import TYPE_CHECKING, Any, BinaryIO, Iterable, Sequence

from engine.reference import Reference, ReferenceError
from engine.registry import mediatypes as mt
from engine.registry.digest import compute
from engine.registry.errors import VerificationError
from engine.registry.manifest import (Descriptor, ImageIndex, ImageManifest, check_image_manifest,
                                      parse_manifest)
from engine.registry.platform import Platform, select_manifest
from engine.store.imageconfig import chain_ids, diff_ids, parse_config
from engine.store.index import Image
from engine.store.layout import StoreError

if TYPE_CHECKING:
    from engine.store.store import Store

NAME_ANNOTATION = "io.containerd.image.name"
REF_ANNOTATION = "org.opencontainers.image.ref.name"
_BLOB_PATH = re.compile(r"blobs/([a-z0-9]+)/([a-f0-9]+)")
_DOCUMENTS = ("oci-layout", "index.json", "manifest.json", "repositories")
MAX_MEMBERS = 100_000


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    return info


def save(store: "Store", selection: Sequence[tuple[Image, Sequence[str]]], out: BinaryIO) -> None:
    """Write the images in ``selection`` (each with the names to record for it) as one archive."""
    entries: list[dict[str, Any]] = []
    docker_manifest: list[dict[str, Any]] = []
    blobs: dict[str, int] = {}
    for image, names in selection:
        manifest = store.manifest(image)
        desc = Descriptor(media_type=image.media_type, digest=image.digest,
                          size=len(store.manifest_bytes(image)))
        for digest, size in [(desc.digest, desc.size), (manifest.config.digest, manifest.config.size)] \
                + [(layer.digest, layer.size) for layer in manifest.layers]:
            blobs[digest] = size
        for name in names or [None]:  # type: ignore[list-item]
            entry = desc.to_json()
            if name:
                ref = Reference.parse(name)
                entry["annotations"] = {NAME_ANNOTATION: str(ref), REF_ANNOTATION: ref.tag or "latest"}
            entries.append(entry)
        docker_manifest.append({"Config": _blob_member(manifest.config.digest),
                                "RepoTags": list(names),
                                "Layers": [_blob_member(layer.digest) for layer in manifest.layers]})
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        layout = json.dumps({"imageLayoutVersion": mt.OCI_LAYOUT_VERSION}).encode()
        _add_bytes(tar, "oci-layout", layout)
        for digest, size in blobs.items():
            with store.blobs.open(digest) as f:
                tar.addfile(_tarinfo(_blob_member(digest), size), f)
        _add_bytes(tar, "index.json", json.dumps(index).encode())
        _add_bytes(tar, "manifest.json", json.dumps(docker_manifest).encode())


def _blob_member(digest: str) -> str:
    algorithm, _, hex_ = digest.partition(":")
    return f"blobs/{algorithm}/{hex_}"


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    tar.addfile(_tarinfo(name, len(data)), io.BytesIO(data))


class _Loader:
    def __init__(self, store: "Store", what: str) -> None:
        self.store, self.what = store, what
        self.documents: dict[str, bytes] = {}
        self.paths: dict[str, tuple[str, int]] = {}  # member path -> (digest, size) of its content
        self.links: dict[str, str] = {}

    def read(self, source: BinaryIO) -> None:
        try:
            tar = tarfile.open(fileobj=source, mode="r|*")
        except tarfile.TarError as exc:
            raise StoreError(f"{self.what} is not a tar archive ({exc})") from None
        with tar:
            try:
                for count, member in enumerate(tar):
                    if count >= MAX_MEMBERS:
                        raise StoreError(f"{self.what}: more than {MAX_MEMBERS} members")
                    self._member(tar, member)
            except tarfile.TarError as exc:
                raise StoreError(f"{self.what}: damaged tar archive ({exc})") from None

    def _member(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        name = posixpath.normpath(member.name.lstrip("/")).removeprefix("./")
        if member.isdir():
            return
        if member.issym() or member.islnk():
            target = member.linkname if member.islnk() else \
                posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
            self.links[name] = target.lstrip("/")
            return
        if not member.isfile():
            raise StoreError(f"{self.what}: member {member.name!r} is not a regular file")
        stream = tar.extractfile(member)
        if stream is None:
            raise StoreError(f"{self.what}: cannot read member {member.name!r}")
        blob = _BLOB_PATH.fullmatch(name)
        if name in _DOCUMENTS:
            if member.size > self.store.max_document:
                raise StoreError(f"{self.what}: {name} is larger than {self.store.max_document} bytes")
            self.documents[name] = stream.read()
        elif blob:
            digest = f"{blob.group(1)}:{blob.group(2)}"
            try:
                self.store.layout.blob(digest)  # a well-formed sha256 digest (no sha512), or refused
            except (ReferenceError, StoreError) as exc:
                raise StoreError(f"{self.what}: member {name}: {exc}") from None
            with self.store.blobs.ingest(digest, member.size) as writer:
                if writer is not None:
                    writer.copy_from(stream)  # type: ignore[arg-type]
                    writer.commit()
            self.paths[name] = (digest, member.size)
        else:
            self.paths[name] = self.store.blobs.write_stream(stream)  # type: ignore[arg-type]

    def content(self, path: str) -> tuple[str, int]:
        seen = set()
        path = posixpath.normpath(path).removeprefix("./")
        while path in self.links and path not in seen:
            seen.add(path)
            path = self.links[path]
        if path not in self.paths:
            raise StoreError(f"{self.what}: refers to {path!r}, which the archive does not contain")
        return self.paths[path]

    def document(self, name: str) -> Any:
        try:
            return json.loads(self.documents[name])
        except ValueError as exc:
            raise StoreError(f"{self.what}: {name} is not valid JSON ({exc})") from None


def _names_of(entry: Descriptor) -> list[tuple[str, str | None, None]]:
    """The name an index entry was saved under, if it is a full reference."""
    for key in (NAME_ANNOTATION, REF_ANNOTATION):
        value = entry.annotations.get(key)
        if value and ("/" in value or key == NAME_ANNOTATION):
            try:
                ref = Reference.parse(value)
            except ReferenceError:
                continue
            return [(ref.name, ref.tag, None)]
    return []


def _finish(store: "Store", raw: bytes, digest: str, names: list[tuple[str, str | None, None]],
            where: str) -> Image:
    """Check that an image is complete in the store, unpack its layers, record it."""
    manifest = parse_manifest(raw, None, where=where)
    if not isinstance(manifest, ImageManifest):
        raise VerificationError(f"{where}: expected an image manifest")
    check_image_manifest(manifest, where)
    config = parse_config(store.blobs.read(manifest.config.digest, store.max_document),
                          where=f"{where}: config")
    diffs = diff_ids(config)
    if len(diffs) != len(manifest.layers):
        raise VerificationError(f"{where}: {len(manifest.layers)} layers but {len(diffs)} diff_ids")
    chains = chain_ids(diffs)
    for i, layer in enumerate(manifest.layers):
        if not store.blobs.has(layer.digest):
            raise StoreError(f"{where}: layer {layer.digest} is missing from the archive")
        store.ensure_layer(layer, diffs[i], chains[i], chains[i - 1] if i else None)
    return store.record(raw, digest, config, names=names)


def _load_oci(store: "Store", loader: _Loader) -> list[Image]:
    index = parse_manifest(loader.documents["index.json"], mt.OCI_INDEX, where=f"{loader.what}: index.json")
    if not isinstance(index, ImageIndex):
        raise StoreError(f"{loader.what}: index.json is not an image index")
    images = []
    for i, entry in enumerate(index.manifests):
        where = f"{loader.what}: index.json manifests[{i}]"
        if not store.blobs.has(entry.digest):
            raise StoreError(f"{where}: manifest {entry.digest} is missing from the archive")
        raw = store.blobs.read(entry.digest, store.max_document)
        if entry.media_type in mt.INDEXES:  # a multi-platform image: take the host's
            nested = parse_manifest(raw, entry.media_type, where=where)
            if not isinstance(nested, ImageIndex):
                raise VerificationError(f"{where}: expected an index")
            entry_for_host = select_manifest(nested.manifests, Platform.host(), where=where)
            images.append(_finish(store, store.blobs.read(entry_for_host.digest, store.max_document),
                                  entry_for_host.digest, _names_of(entry), where))
        else:
            images.append(_finish(store, raw, entry.digest, _names_of(entry), where))
    return images


def _sniff_layer_type(store: "Store", digest: str) -> str:
    with store.blobs.open(digest) as f:
        head = f.read(4)
    if head.startswith(b"\x1f\x8b"):
        return mt.DOCKER_LAYER_GZIP
    if head == b"\x28\xb5\x2f\xfd":
        return mt.OCI_LAYER_ZSTD
    return mt.OCI_LAYER


def _load_docker(store: "Store", loader: _Loader) -> list[Image]:
    doc = loader.document("manifest.json")
    if not isinstance(doc, list):
        raise StoreError(f"{loader.what}: manifest.json must be a list")
    images = []
    for i, entry in enumerate(doc):
        where = f"{loader.what}: manifest.json[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str) \
                or not isinstance(entry.get("Layers"), list):
            raise StoreError(f"{where}: needs Config and Layers")
        config_digest, config_size = loader.content(entry["Config"])
        layers = []
        for path in entry["Layers"]:
            if not isinstance(path, str):
                raise StoreError(f"{where}: Layers must be paths")
            digest, size = loader.content(path)
            layers.append({"mediaType": _sniff_layer_type(store, digest), "digest": digest, "size": size})
        manifest = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                    "config": {"mediaType": mt.OCI_CONFIG, "digest": config_digest, "size": config_size},
                    "layers": layers}
        raw = json.dumps(manifest, separators=(",", ":")).encode()
        names = []
        for tag in entry.get("RepoTags") or []:
            try:
                ref = Reference.parse(str(tag))
            except ReferenceError as exc:
                raise StoreError(f"{where}: {exc}") from None
            names.append((ref.name, ref.tag, None))
        images.append(_finish(store, raw, compute(raw), names, where))
    return images


def load(store: "Store", source: BinaryIO, *, what: str = "archive") -> list[Image]:
    """Load every image in the archive ``source``; return them as recorded."""
    with store.writing(collect_on_failure=True):
        loader = _Loader(store, what)
        loader.read(source)
        if "index.json" in loader.documents:
            layout = loader.document("oci-layout") if "oci-layout" in loader.documents else {}
            if isinstance(layout, dict) and layout.get("imageLayoutVersion", "1.0.0") != "1.0.0":
                version = layout.get("imageLayoutVersion")
                raise StoreError(f"{what}: unsupported OCI layout version {version!r}")
            images = _load_oci(store, loader)
        elif "manifest.json" in loader.documents:
            images = _load_docker(store, loader)
        else:
            raise StoreError(f"{what} is neither an OCI image layout nor a docker save archive "
                             "(no index.json or manifest.json)")
        if not images:
            raise StoreError(f"{what} contains no images")
    # Every member was stored as it streamed by; those no loaded image refers to (an archive may
    # carry anything) go now, not at the next rmi or prune.
    store.gc(blocking=False)
    return images


def selection_names(image: Image, requested: str) -> Iterable[str]:
    """The names ``save REQUESTED`` records: the tag asked for, or every tag for an ID."""
    try:
        ref = Reference.parse(requested)
    except ReferenceError:
        return image.repo_tags
    key = f"{ref.name}:{ref.tag}"
    return [key] if not ref.digest and key in image.repo_tags else image.repo_tags
