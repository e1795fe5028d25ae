"""The image index (``<root>/images.json``): which images the store holds and what names they have.

Three maps, all keyed by canonical strings:

* ``images``: image manifest digest -> record (image id = config digest, media type, size, created,
  platform, when added);
* ``tags``: ``registry/repository:tag`` -> image manifest digest;
* ``digests``: ``registry/repository@digest`` -> image manifest digest, for every digest a registry
  knows the image by (Docker's RepoDigests): the manifest's own, or the index's when the image was
  pulled through a multi-platform index;
* ``pins``: ``registry/repository:tag`` -> the digest the registry resolved that tag to when the
  image was pulled (or pushed) under it. A signer signs what a tag names, which for a
  multi-platform image is the index: the policy gate must verify the digest *this tag* was resolved
  to, not any digest of the repository (another tag of the same repository may name the same
  manifest unsigned). A tag made locally has no pin. Optional, so older indexes still load: a tag
  without a pin is judged by the image manifest's own digest.

Readers load the file without locking (it is only ever replaced atomically); writers hold the index
lock across read-modify-write so concurrent pulls never lose each other's entries.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Any, Iterator

from engine.atomicfile import write_atomic
from engine.records import Record
from engine.store.layout import StoreError, StoreLayout
from engine.store.locks import locked

VERSION = 1


class Image(Record, frozen=True):
    """One image in the store. ``id`` is Docker's image ID (the config digest); ``digest`` is the
    image manifest's digest; names are canonical (``127.0.0.1:5000/ns/repo:tag``)."""

    id: str
    digest: str
    media_type: str
    repo_tags: tuple[str, ...]
    repo_digests: tuple[str, ...]
    created: str | None
    size: int
    platform: str
    added: str
    pins: tuple[tuple[str, str], ...] = ()  # (tag, the digest the registry resolved it to)

    @property
    def dangling(self) -> bool:
        return not self.repo_tags

    def digest_for(self, tag: str) -> str:
        """The digest ``tag`` (``registry/repository:tag``) named when this image was stored under
        it: what a signer of that tag signed."""
        return dict(self.pins).get(tag, self.digest)


class IndexDoc:
    """The parsed index; mutate it only inside :meth:`ImageIndex.update`."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.images: dict[str, dict[str, Any]] = doc["images"]
        self.tags: dict[str, str] = doc["tags"]
        self.digests: dict[str, str] = doc["digests"]
        self.pins: dict[str, str] = doc["pins"]

    def to_json(self) -> dict[str, Any]:
        return {"version": VERSION, "images": self.images, "tags": self.tags, "digests": self.digests,
                "pins": self.pins}

    def set_tag(self, tag: str, manifest_digest: str, resolved: str | None) -> None:
        """Point ``tag`` at an image; ``resolved`` is the digest a registry resolved it to (None
        for a tag made locally, which keeps no pin)."""
        self.tags[tag] = manifest_digest
        if resolved:
            self.pins[tag] = resolved
        else:
            self.pins.pop(tag, None)

    def drop_tag(self, tag: str) -> None:
        self.tags.pop(tag, None)
        self.pins.pop(tag, None)

    def image(self, manifest_digest: str) -> Image:
        record = self.images[manifest_digest]
        tags = tuple(sorted(t for t, m in self.tags.items() if m == manifest_digest))
        digests = tuple(sorted(d for d, m in self.digests.items() if m == manifest_digest))
        return Image(id=record["id"], digest=manifest_digest, media_type=record["mediaType"],
                     repo_tags=tags, repo_digests=digests, created=record.get("created"),
                     size=record["size"], platform=record.get("platform", ""), added=record["added"],
                     pins=tuple((t, self.pins[t]) for t in tags if t in self.pins))

    def all_images(self) -> list[Image]:
        return [self.image(d) for d in self.images]

    def forget(self, manifest_digest: str) -> None:
        """Remove an image and every name pointing at it."""
        self.images.pop(manifest_digest, None)
        for table in (self.tags, self.digests):
            for key in [k for k, m in table.items() if m == manifest_digest]:
                del table[key]
        self.pins = {t: d for t, d in self.pins.items() if t in self.tags}


def _validate(doc: Any, where: str) -> dict[str, Any]:
    if not isinstance(doc, dict) or doc.get("version") != VERSION:
        raise StoreError(f"{where}: not a version-{VERSION} image index")
    for key in ("images", "tags", "digests"):
        value = doc.get(key)
        if not isinstance(value, dict):
            raise StoreError(f"{where}: '{key}' must be an object")
    for digest, record in doc["images"].items():
        if not isinstance(record, dict) or not all(isinstance(record.get(k), str)
                                                   for k in ("id", "mediaType", "added")) \
                or not isinstance(record.get("size"), int):
            raise StoreError(f"{where}: malformed record for image {digest}")
    if not isinstance(doc.setdefault("pins", {}), dict):
        raise StoreError(f"{where}: 'pins' must be an object")
    for key in ("tags", "digests", "pins"):
        if not all(isinstance(v, str) for v in doc[key].values()):
            raise StoreError(f"{where}: malformed '{key}'")
    return doc


class ImageIndex:
    def __init__(self, layout: StoreLayout) -> None:
        self.layout = layout

    def load(self) -> IndexDoc:
        path = self.layout.index
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return IndexDoc({"images": {}, "tags": {}, "digests": {}, "pins": {}})
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise StoreError(f"{path}: the image index is damaged ({exc})") from None
        return IndexDoc(_validate(doc, str(path)))

    @contextmanager
    def update(self) -> Iterator[IndexDoc]:
        """Read-modify-write under the index lock; the new index replaces the old atomically when
        the block ends without an exception."""
        with locked(self.layout.index_lock):
            doc = self.load()
            yield doc
            data = json.dumps(doc.to_json(), indent=1, sort_keys=True).encode() + b"\n"
            write_atomic(self.layout.index, data, mode=0o600)
