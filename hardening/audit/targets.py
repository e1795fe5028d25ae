"""Images and containers as the checks see them: small protocols over plain documents.

The image and container checks read an OCI image config, a listing of layer files and a
Docker-shaped ``inspect`` document; nothing here depends on how the store or the runtime keep them.
So the checks run today on fixture documents and OCI layouts, and the engine's store and container
state plug in behind the same protocols (``sources.py``).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Protocol, Sequence


class SourceUnavailable(Exception):
    """The store or the container state cannot be read at all; every check of that kind SKIPs."""


@dataclass(frozen=True)
class LayerFile:
    """One entry of one layer, as a tar header or a directory entry describes it."""

    path: str  # absolute inside the image: /usr/bin/sudo
    mode: int  # permission bits including setuid/setgid/sticky
    uid: int
    gid: int
    kind: str  # file | dir | link | char | block | fifo
    size: int
    layer: int  # 0 = bottom layer


class ImageRecord(Protocol):
    """An image: its identity, its OCI config document, and its layers' files."""

    id: str  # config digest (the image ID)
    digest: str | None  # manifest digest, when known
    tags: tuple[str, ...]  # references naming it
    # What a signer of ``tags[0]`` signed: the digest that tag was resolved to (an index for a
    # multi-platform image; None: the manifest digest), so IMG-009 judges what ``run`` would.
    signed_digest: str | None
    config: Mapping[str, Any]  # the OCI image config (``config``, ``history``, ``created`` …)

    @property
    def name(self) -> str: ...

    def files(self) -> Iterable[LayerFile]:
        """Every entry of every layer, bottom to top (a file deleted later still ships)."""
        ...

    def read_file(self, path: str, limit: int = 1024 * 1024) -> bytes | None:
        """The content a container would see at ``path`` (top-most layer wins), or None."""
        ...


def image_path(path: str) -> str:
    """An absolute, normalised path inside an image (``./etc//passwd`` -> ``/etc/passwd``).

    POSIX keeps a leading ``//`` through normpath, so leading slashes are stripped first.
    """
    return posixpath.normpath("/" + path.lstrip("/"))


def image_name(tags: Sequence[str], image_id: str) -> str:
    """How reports name an image: its first tag, else its short ID."""
    return tags[0] if tags else image_id.split(":")[-1][:12]


@dataclass
class DocumentImage:
    """An image held entirely in memory: a fixture, or an image flattened by another tool.

    ``layers`` is a list of layers, each a list of mappings with ``path``, ``mode`` and optionally
    ``uid``, ``gid``, ``kind``, ``content`` (text) and ``whiteout`` (true: deleted in this layer).
    """

    id: str
    config: Mapping[str, Any]
    tags: tuple[str, ...] = ()
    digest: str | None = None
    layers: Sequence[Sequence[Mapping[str, Any]]] = field(default_factory=list)
    signed_digest: str | None = None

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> "DocumentImage":
        return cls(id=doc["id"], config=doc.get("config", {}), tags=tuple(doc.get("tags", ())),
                   digest=doc.get("digest"), layers=doc.get("layers", []))

    @property
    def name(self) -> str:
        return image_name(self.tags, self.id)

    def files(self) -> Iterator[LayerFile]:
        for index, layer in enumerate(self.layers):
            for entry in layer:
                if entry.get("whiteout"):
                    continue
                content = entry.get("content")
                yield LayerFile(path=image_path(entry["path"]), mode=entry["mode"],
                                uid=entry.get("uid", 0), gid=entry.get("gid", 0),
                                kind=entry.get("kind", "file"),
                                size=len(content.encode()) if content else entry.get("size", 0),
                                layer=index)

    def read_file(self, path: str, limit: int = 1024 * 1024) -> bytes | None:
        want = image_path(path)
        for layer in reversed(self.layers):
            for entry in layer:
                if image_path(entry["path"]) == want:
                    if entry.get("whiteout") or entry.get("content") is None:
                        return None
                    return str(entry["content"]).encode()[:limit]
        return None


class ImageSource(Protocol):
    """Where image checks get their images; raises SourceUnavailable when it cannot be read."""

    def images(self) -> list[ImageRecord]: ...


class ContainerSource(Protocol):
    """Where container checks get Docker-shaped inspect documents (running and stopped)."""

    def containers(self) -> list[Mapping[str, Any]]: ...


@dataclass(frozen=True)
class SignatureVerdict:
    """What the trust layer concluded about an image under the policy's requirements."""

    verified: bool
    detail: str  # which signer, or why it failed


class SignatureVerifier(Protocol):
    """The seam to ``trust/`` and ``policies/``: verify an image against what the policy requires."""

    def verify(self, image: ImageRecord) -> SignatureVerdict: ...


@dataclass
class StaticImages:
    """A fixed list of images (``--image``, fixtures)."""

    items: list[ImageRecord]

    def images(self) -> list[ImageRecord]:
        return list(self.items)


@dataclass
class StaticContainers:
    """A fixed list of inspect documents (fixtures)."""

    items: list[Mapping[str, Any]]

    def containers(self) -> list[Mapping[str, Any]]:
        return list(self.items)


@dataclass
class Unavailable:
    """A source that cannot be read, with the reason every dependent check reports as SKIP."""

    reason: str

    def images(self) -> list[ImageRecord]:
        raise SourceUnavailable(self.reason)

    def containers(self) -> list[Mapping[str, Any]]:
        raise SourceUnavailable(self.reason)


def container_name(doc: Mapping[str, Any]) -> str:
    """Docker prints names with a leading slash in inspect; reports drop it."""
    name = str(doc.get("Name") or "").lstrip("/")
    return name or str(doc.get("Id", ""))[:12]
