"""The OCI data model: descriptors, image manifests and indexes, parsed defensively.

This module does no I/O (python-tuf keeps its ``metadata.py`` apart from the network the same way):
it turns bytes a registry or an archive sent into checked, immutable objects, and refuses anything
malformed with a :class:`VerificationError` naming where. Callers bound the size of the bytes before
they get here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from engine.errors import StockadeError, printable
from engine.registry import mediatypes as mt
from engine.registry.errors import UnsupportedMediaTypeError, VerificationError
from engine.registry.platform import Platform
from engine.reference import validate_digest

# RFC 6838 type/subtype (with +suffix and parameters stripped): what a media type may look like.
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")


def _fail(where: str, reason: str) -> VerificationError:
    return VerificationError(f"{where}: {reason}")


def _str_map(value: Any, where: str, key: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in value.items()):
        raise _fail(where, f"{key} must be a map of strings")
    return dict(value)


def check_media_type(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _MEDIA_TYPE.fullmatch(value):
        raise _fail(where, f"malformed media type {value!r}")
    return value


@dataclass(frozen=True)
class Descriptor:
    """A pointer to content: media type, digest and exact size (OCI image-spec descriptor.md)."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    artifact_type: str | None = None
    urls: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, obj: Any, where: str) -> "Descriptor":
        if not isinstance(obj, dict):
            raise _fail(where, "a descriptor must be an object")
        media_type = check_media_type(obj.get("mediaType"), where)
        digest = obj.get("digest")
        if not isinstance(digest, str):
            raise _fail(where, "descriptor has no digest")
        try:
            validate_digest(digest)
        except StockadeError as exc:
            raise _fail(where, str(exc)) from None
        size = obj.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise _fail(where, f"descriptor size must be a non-negative integer, got {size!r}")
        platform = obj.get("platform")
        urls = obj.get("urls") or []
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise _fail(where, "descriptor urls must be a list of strings")
        artifact_type = obj.get("artifactType")
        return cls(media_type=media_type, digest=digest, size=size,
                   annotations=_str_map(obj.get("annotations"), where, "annotations"),
                   platform=Platform.from_json(platform, where) if platform is not None else None,
                   artifact_type=check_media_type(artifact_type, where) if artifact_type else None,
                   urls=tuple(urls))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform:
            out["platform"] = self.platform.to_json()
        return out


@dataclass(frozen=True)
class ImageManifest:
    """An OCI image manifest or a Docker schema-2 manifest: one config and its layers."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)
    subject: Descriptor | None = None
    artifact_type: str | None = None

    @property
    def is_image(self) -> bool:
        """True when the config is an image configuration (not a signature or other artifact)."""
        return self.config.media_type in mt.IMAGE_CONFIGS


@dataclass(frozen=True)
class ImageIndex:
    """An OCI image index or a Docker manifest list: manifests for several platforms (or artifacts)."""

    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)
    subject: Descriptor | None = None


def _load_json(raw: bytes, where: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _fail(where, f"not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise _fail(where, "a manifest must be a JSON object")
    return doc


def detect_media_type(doc: Mapping[str, Any], declared: str | None, where: str) -> str:
    """The manifest's media type: the Content-Type the registry declared, checked against the body.

    A generic or missing Content-Type falls back to the body's ``mediaType`` and then to its shape
    (OCI makes ``mediaType`` optional). A body that names a different type than the header is
    refused: a confused registry must not make Stockade read an index as an image or vice versa.
    """
    body_type = doc.get("mediaType")
    if body_type is not None and not isinstance(body_type, str):
        raise _fail(where, "mediaType must be a string")
    header = (declared or "").split(";", 1)[0].strip() or None
    if header in (None, "application/json", "text/plain", "application/octet-stream"):
        header = None
    if header and body_type and header != body_type:
        raise _fail(where, f"the registry says {printable(header)} but the manifest says "
                           f"{printable(body_type)}")
    chosen = header or body_type
    if chosen is None:
        if "manifests" in doc:
            chosen = mt.OCI_INDEX
        elif "config" in doc:
            chosen = mt.OCI_MANIFEST
        else:
            raise _fail(where, "cannot tell what kind of manifest this is (no mediaType)")
    if chosen in mt.DOCKER_SCHEMA1:
        raise UnsupportedMediaTypeError(f"{where}: Docker schema 1 manifests are not supported "
                                        "(deprecated since 2017; push the image again with a current tool)")
    if chosen not in mt.MANIFESTS:
        raise UnsupportedMediaTypeError(f"{where}: unsupported manifest media type {chosen!r}")
    return chosen


def parse_manifest(raw: bytes, media_type: str | None, *, where: str) -> ImageManifest | ImageIndex:
    """Parse manifest bytes; ``media_type`` is what the registry or archive declared (may be None)."""
    doc = _load_json(raw, where)
    kind = detect_media_type(doc, media_type, where)
    if doc.get("schemaVersion") != 2:
        raise _fail(where, f"schemaVersion must be 2, got {doc.get('schemaVersion')!r}")
    subject = doc.get("subject")
    subject_desc = Descriptor.from_json(subject, f"{where}: subject") if subject is not None else None
    annotations = _str_map(doc.get("annotations"), where, "annotations")
    if kind in mt.INDEXES:
        manifests = doc.get("manifests")
        if not isinstance(manifests, list):
            raise _fail(where, "an index must list its manifests")
        return ImageIndex(media_type=kind, annotations=annotations, subject=subject_desc,
                          manifests=tuple(Descriptor.from_json(m, f"{where}: manifests[{i}]")
                                          for i, m in enumerate(manifests)))
    config = Descriptor.from_json(doc.get("config"), f"{where}: config")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise _fail(where, "a manifest must list its layers")
    artifact_type = doc.get("artifactType")
    return ImageManifest(media_type=kind, config=config, annotations=annotations, subject=subject_desc,
                         layers=tuple(Descriptor.from_json(layer, f"{where}: layers[{i}]")
                                      for i, layer in enumerate(layers)),
                         artifact_type=check_media_type(artifact_type, where) if artifact_type else None)


def check_image_manifest(manifest: ImageManifest, where: str) -> None:
    """Refuse a manifest that is not a runnable image: unknown config or layer media types."""
    if not manifest.is_image:
        raise UnsupportedMediaTypeError(f"{where}: config media type {manifest.config.media_type!r} is "
                                        "not an image configuration (is this a signature or artifact?)")
    for i, layer in enumerate(manifest.layers):
        if layer.media_type not in mt.LAYER_COMPRESSION:
            raise UnsupportedMediaTypeError(f"{where}: layers[{i}] has unsupported media type "
                                            f"{layer.media_type!r}")
