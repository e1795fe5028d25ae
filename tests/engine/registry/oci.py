"""Hand-made, internally consistent images (config, layers, manifest) for registry and store tests."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from dataclasses import dataclass
from typing import Any

from engine.reference import Reference
from engine.registry import mediatypes as mt
from engine.registry.client import RegistryClient
from engine.registry.manifest import Descriptor
from tests.engine.layers.builders import GZIP, Entry, file, tar_bytes


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Parts:
    config: bytes
    layers: tuple[bytes, ...]
    manifest: bytes
    layer_type: str

    @property
    def digest(self) -> str:
        return digest(self.manifest)

    def descriptor(self, data: bytes, media_type: str) -> dict[str, Any]:
        return {"mediaType": media_type, "digest": digest(data), "size": len(data)}


def make_image(layers: list[list[Entry]] | None = None, *, arch: str = "amd64",
               config: dict[str, Any] | None = None, layer_type: str = GZIP,
               diff_ids: list[str] | None = None) -> Parts:
    """An image whose layers are ``layers`` (default: one layer with /hello), gzip-compressed."""
    tars = [tar_bytes(entries) for entries in (layers or [[file("hello", b"hello world\n")]])]
    blobs = tuple(gzip.compress(t, mtime=0) if layer_type == GZIP else t for t in tars)
    doc = {"architecture": arch, "os": "linux", "created": "2024-01-02T03:04:05Z",
           "config": {"Cmd": ["/bin/sh"], **(config or {})},
           "rootfs": {"type": "layers", "diff_ids": diff_ids or [digest(t) for t in tars]},
           "history": [{"created": "2024-01-02T03:04:05Z", "created_by": f"layer {i}"}
                       for i in range(len(tars))]}
    config_raw = json.dumps(doc).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": digest(config_raw), "size": len(config_raw)},
        "layers": [{"mediaType": layer_type, "digest": digest(b), "size": len(b)} for b in blobs],
    }).encode()
    return Parts(config_raw, blobs, manifest, layer_type)


def push_parts(client: RegistryClient, ref: Reference, parts: Parts, **kw: object) -> list[str]:
    """Upload an image's blobs and manifest with our client; return the blob outcomes."""
    outcomes = []
    blobs = [(parts.config, mt.OCI_CONFIG)] + [(b, parts.layer_type) for b in parts.layers]
    for data, media_type in blobs:
        desc = Descriptor(media_type, digest(data), len(data))
        outcomes.append(client.push_blob(ref, desc, lambda d=data: io.BytesIO(d), **kw))  # type: ignore[misc]
    client.put_manifest(ref, parts.manifest, mt.OCI_MANIFEST)
    return outcomes


def push_index(client: RegistryClient, ref: Reference, images: list[tuple[Parts, dict[str, str]]]) -> bytes:
    """Push each image by digest and an OCI index of them (with the given platforms) under ``ref``;
    return the index bytes."""
    for parts, _ in images:
        push_parts(client, ref.with_tag("parts"), parts)
    index = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        {"mediaType": mt.OCI_MANIFEST, "digest": parts.digest, "size": len(parts.manifest), "platform": platform}
        for parts, platform in images]}).encode()
    client.put_manifest(ref, index, mt.OCI_INDEX)
    return index
