"""The content store's public face: images by name or ID, their manifests, configs and layers.

``Store(paths, config)`` is cheap to build; directories are created on the first write. Queries read
the index without locking. Every operation that adds blobs or layers runs inside :meth:`writing`
(a shared lock the garbage collector takes exclusively), so the collector never deletes what a pull,
an import or a load has written but not yet recorded.

Removal asks the caller whether a container uses an image: ``in_use(image) -> bool``. The store
knows nothing about containers (the runtime keeps them under ``<root>/containers``); the command
line builds the predicate from the container state and passes it to :meth:`remove` and :meth:`prune`.
"""

from __future__ import annotations

import json
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from engine.config import Config, Paths
from engine.errors import NotFoundError
from engine.records import Record
from engine.reference import Reference, ReferenceError
from engine.store.blobs import BlobStore
from engine.store.imageconfig import chain_ids, diff_ids, parse_config, platform_of
from engine.store.index import Image, ImageIndex, IndexDoc
from engine.store.layers import LayerStore
from engine.store.layout import ImageInUseError, StoreError, StoreLayout
from engine.store.locks import Busy, locked, remove_lock_file

if TYPE_CHECKING:
    from engine.registry.client import RegistryClient
    from engine.registry.manifest import Descriptor, ImageManifest
    from engine.registry.platform import Platform
    from engine.store.pull import Progress, PullResult

InUse = Callable[[Image], bool]
_ID = re.compile(r"(?:sha256:)?([a-f0-9]{1,64})")
MIN_ID_PREFIX = 3


def _still_there(index: IndexDoc, image: Image, name: str) -> Image:
    """``image`` as the locked index holds it now. Names are resolved without the lock, so another
    command (an ``rmi``) may have removed the image since: one clear error, not a KeyError."""
    if image.digest not in index.images:
        raise NotFoundError(f"image {name} was removed meanwhile (by another command)")
    return index.image(image.digest)


def nothing_in_use(image: Image) -> bool:
    """The predicate for a store no container uses (tests, tools that run no containers)."""
    return False


class GCResult(Record, frozen=True):
    blobs: int
    layers: int
    bytes: int


class Removed(Record, frozen=True):
    """One line of ``rmi``/``prune`` output: ``Untagged: name`` or ``Deleted: digest``."""

    action: str  # "untagged" | "deleted"
    what: str


class Store:
    def __init__(self, paths: Paths, config: Config) -> None:
        self.paths = paths
        self.config = config
        self.layout = StoreLayout(paths.root)
        self.blobs = BlobStore(self.layout)
        self.index = ImageIndex(self.layout)
        self.layers = LayerStore(self.layout, config.unpack, paths)
        self.max_document = config.unpack.max_manifest_size

    @contextmanager
    def writing(self, *, collect_on_failure: bool = False) -> Iterator[None]:
        """Hold off the garbage collector while blobs and layers are added.

        ``collect_on_failure``: if the block fails, collect garbage afterwards (when no other writer
        runs), so an import or load that was refused leaves none of the blobs and layers it had
        already verified. A pull keeps them instead: its re-run reuses them.
        """
        self.paths.make_root()
        self.layout.ensure()
        try:
            with locked(self.layout.gc_lock, shared=True):
                yield
        except BaseException:
            if collect_on_failure:
                self.gc(blocking=False)
            raise

    # --- queries ----------------------------------------------------------------------------------

    def images(self) -> list[Image]:
        return self.index.load().all_images()

    def resolve(self, name: str) -> Image:
        """An image by reference (``busybox``, ``reg/ns/repo:tag``, ``repo@sha256:…``), by image ID
        or manifest digest, or by an unambiguous ID prefix (``docker images`` short IDs)."""
        doc = self.index.load()
        match = _ID.fullmatch(name)
        if match and (len(match.group(1)) == 64 or name.startswith("sha256:")):
            found = self._by_prefix(doc.all_images(), match.group(1), name)
            if found:
                return found
            raise NotFoundError(f"no image with ID or digest {name} in the store")
        try:
            ref = Reference.parse(name)
        except ReferenceError:
            if match:
                found = self._by_prefix(doc.all_images(), match.group(1), name)
                if found:
                    return found
            raise
        target = doc.digests.get(f"{ref.name}@{ref.digest}") if ref.digest else \
            doc.tags.get(f"{ref.name}:{ref.tag}")
        if ref.digest and target is None and ref.digest in doc.images \
                and any(t.rpartition(":")[0] == ref.name for t in doc.image(ref.digest).repo_tags):
            target = ref.digest
        if target is not None and target in doc.images:
            return doc.image(target)
        if match and len(match.group(1)) >= MIN_ID_PREFIX:
            found = self._by_prefix(doc.all_images(), match.group(1), name)
            if found:
                return found
        raise NotFoundError(f"image {ref} is not in the store (pull it first: stockade pull {name})")

    @staticmethod
    def _by_prefix(images: list[Image], prefix: str, name: str) -> Image | None:
        hits = {i.digest: i for i in images
                if i.id.partition(":")[2].startswith(prefix) or i.digest.partition(":")[2].startswith(prefix)}
        if len(hits) > 1:
            raise StoreError(f"{name!r} is ambiguous: it matches {len(hits)} images; give more digits")
        return next(iter(hits.values()), None)

    def manifest_bytes(self, image: Image) -> bytes:
        return self.blobs.read(image.digest, self.max_document)

    def manifest(self, image: Image) -> ImageManifest:
        from engine.registry.manifest import ImageManifest, parse_manifest  # not on a local run's path

        parsed = parse_manifest(self.manifest_bytes(image), image.media_type, where=f"image {image.digest}")
        if not isinstance(parsed, ImageManifest):
            raise StoreError(f"stored image {image.digest} is not an image manifest")
        return parsed

    def config_bytes(self, image: Image) -> bytes:
        return self.blobs.read(image.id, self.max_document)

    def image_config(self, image: Image) -> dict[str, Any]:
        """The image configuration (OCI config.md): what ``run`` executes, as a dict."""
        return parse_config(self.config_bytes(image), where=f"image {image.id}")

    def layer_dirs(self, image: Image) -> list[Path]:
        """The image's unpacked layer directories, bottom to top (overlay lowerdirs are listed top
        first: reverse this). Layers missing on disk are unpacked from their blobs first."""
        diffs = diff_ids(self.image_config(image))
        chains = chain_ids(diffs)
        missing = [i for i, chain in enumerate(chains) if not self.layers.has(chain)]
        if missing:
            manifest = self.manifest(image)
            with self.writing():
                for i in missing:
                    self.ensure_layer(manifest.layers[i], diffs[i], chains[i], chains[i - 1] if i else None)
        return [self.layers.path(chain) for chain in chains]

    def ensure_layer(self, desc: Descriptor, diff_id: str, chain: str, parent: str | None, *,
                     sync_dir: bool = True) -> None:
        """Unpack layer ``chain`` from its (already stored, verified) blob unless it exists."""
        with self.layers.stage(chain) as stage:
            if stage is not None:
                stage.apply_file(self.blobs.existing(desc.digest), desc.media_type)
                stage.commit(diff_id, parent, desc.digest, sync_dir=sync_dir)

    def history(self, image: Image) -> list[dict[str, Any]]:
        """``docker history``: the config's history, newest first, each non-empty entry with the size
        of the layer it made."""
        config = self.image_config(image)
        layers = list(self.manifest(image).layers)
        rows = []
        for entry in config.get("history") or []:
            if not isinstance(entry, dict):
                continue
            empty = bool(entry.get("empty_layer"))
            layer = None if empty or not layers else layers.pop(0)
            rows.append({"created": entry.get("created"), "created_by": entry.get("created_by", ""),
                         "comment": entry.get("comment", ""), "empty_layer": empty,
                         "layer": layer.digest if layer else None, "size": layer.size if layer else 0})
        for layer in layers:  # layers the history does not describe (tools that write no history)
            rows.append({"created": None, "created_by": "", "comment": "", "empty_layer": False,
                         "layer": layer.digest, "size": layer.size})
        return rows[::-1]

    def inspect(self, image: Image) -> dict[str, Any]:
        """Docker's ``image inspect`` shape, plus the manifest itself (as the registry served it)."""
        config = self.image_config(image)
        manifest = json.loads(self.manifest_bytes(image))
        return {
            "Id": image.id,
            "Digest": image.digest,
            "RepoTags": list(image.repo_tags),
            "RepoDigests": list(image.repo_digests),
            "Created": config.get("created"),
            "Author": config.get("author", ""),
            "Os": config.get("os", ""),
            "Architecture": config.get("architecture", ""),
            "Variant": config.get("variant", ""),
            "Size": image.size,
            "Config": config.get("config") or {},
            "RootFS": config.get("rootfs"),
            "History": config.get("history") or [],
            "MediaType": image.media_type,
            "Manifest": manifest,
            "ImageConfig": config,
        }

    # --- changes ----------------------------------------------------------------------------------

    def pull(self, ref: Reference, client: "RegistryClient", *, platform: "Platform | None" = None,
             progress: "Progress | None" = None) -> "PullResult":
        from engine.store.pull import pull

        return pull(self, client, ref, platform=platform, progress=progress)

    def record(self, manifest_raw: bytes, manifest_digest: str, config: dict[str, Any], *,
               names: Sequence[tuple[str, str | None, str | None]]) -> Image:
        """Store an image manifest whose config and layers are already in the store, and name it:
        each ``(registry/repository, tag or None, digest a registry knows it by, or None)``."""
        from engine.registry.manifest import ImageManifest, parse_manifest

        self.blobs.write_bytes(manifest_raw, manifest_digest)
        manifest = parse_manifest(manifest_raw, None, where=f"manifest {manifest_digest}")
        if not isinstance(manifest, ImageManifest):
            raise StoreError(f"{manifest_digest} is not an image manifest")
        size = self._unpacked_size(config)
        created = config.get("created")
        with self.index.update() as index:
            index.images[manifest_digest] = {
                "id": manifest.config.digest, "mediaType": manifest.media_type, "size": size,
                "created": created if isinstance(created, str) else None,
                "platform": platform_of(config),
                "added": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            for name, tag, digest in names:
                if digest:
                    index.digests[f"{name}@{digest}"] = manifest_digest
                if tag:
                    index.set_tag(f"{name}:{tag}", manifest_digest, digest)
            return index.image(manifest_digest)

    def _unpacked_size(self, config: dict[str, Any]) -> int:
        """The image's size as ``docker images`` shows it: its layers' uncompressed bytes, which
        is what it costs on disk (the compressed blobs a registry reports are a fraction of it).
        Every caller has unpacked the layers before it records the image."""
        total = 0
        for chain in chain_ids(diff_ids(config)):
            size = self.layers.metadata(chain).get("size")
            if not isinstance(size, int):
                raise StoreError(f"layer {chain}: its metadata has no size")
            total += size
        return total

    def tag(self, source: str, target: str, *, resolved: str | None = None) -> Image:
        """Name ``source`` ``target``. ``resolved``: the digest the registry just resolved
        ``target`` to (pinned, see ``engine.store.index``); without it a tag made here has no pin."""
        image = self.resolve(source)
        ref = Reference.parse(target)
        if ref.digest:
            raise ReferenceError(f"cannot tag {target!r}: a tag cannot include a digest")
        self.paths.make_root()
        self.layout.ensure()
        with self.index.update() as index:
            _still_there(index, image, source)
            key = f"{ref.name}:{ref.tag}"
            if resolved is not None or index.tags.get(key) != image.digest:
                index.set_tag(key, image.digest, resolved)
            return index.image(image.digest)

    def remove(self, names: Sequence[str], *, force: bool = False,
               in_use: InUse = nothing_in_use) -> list[Removed]:
        """``rmi``: untag, and delete images left without a tag.

        An image a container uses (``in_use``) is never deleted: without ``force`` the removal is
        refused; with ``force`` its names go and the image stays, untagged, until the container does.
        Removing by ID an image tagged in several repositories needs ``force`` (as Docker).
        """
        out: list[Removed] = []
        for name in names:
            image = self.resolve(name)
            with self.index.update() as index:
                current = _still_there(index, image, name)
                untag = self._names_to_drop(current, name, force)
                left = [t for t in current.repo_tags if t not in untag]
                if not left and in_use(current) and not force:
                    raise ImageInUseError(f"image {name} ({current.id[:19]}) is used by a container: "
                                          "remove the container first, or use --force to untag it")
                for tag in untag:
                    index.drop_tag(tag)
                    out.append(Removed("untagged", tag))
                if not left and not in_use(current):
                    out += [Removed("untagged", d) for d in current.repo_digests]
                    index.forget(current.digest)
                    out.append(Removed("deleted", current.id))
        self.gc(blocking=False)
        return out

    @staticmethod
    def _names_to_drop(image: Image, name: str, force: bool) -> list[str]:
        """The tags ``rmi NAME`` removes: the one named, or all of them for an ID or digest."""
        try:
            ref = Reference.parse(name)
        except ReferenceError:
            ref = None
        if ref is not None and not ref.digest and f"{ref.name}:{ref.tag}" in image.repo_tags:
            return [f"{ref.name}:{ref.tag}"]
        if ref is not None and ref.digest:
            return [t for t in image.repo_tags if t.rpartition(":")[0] == ref.name]
        repos = {t.rpartition(":")[0] for t in image.repo_tags}
        if len(repos) > 1 and not force:
            raise StoreError(f"image {name} is referenced in {len(repos)} repositories "
                             f"({', '.join(sorted(repos))}): remove them by name, or use --force")
        return list(image.repo_tags)

    def prune(self, *, all_unused: bool = False,
              in_use: InUse = nothing_in_use) -> tuple[list[Removed], GCResult]:
        """``image prune``: delete dangling images (with ``all_unused``, every image no container
        uses), then collect garbage. Returns what was removed and the space freed."""
        removed: list[Removed] = []
        if self.layout.index.exists():
            with self.index.update() as index:
                for image in index.all_images():
                    if (image.dangling or all_unused) and not in_use(image):
                        removed += [Removed("untagged", t) for t in image.repo_tags + image.repo_digests]
                        index.forget(image.digest)
                        removed.append(Removed("deleted", image.id))
        return removed, self.gc(blocking=True)

    def gc(self, *, blocking: bool = True) -> GCResult:
        """Delete blobs and layers no image in the index refers to, and leftovers of killed writers.

        Takes the collector's lock exclusively: with ``blocking=False`` it gives up (returning
        nothing freed) while a pull, import or load is running rather than wait for it.
        """
        if not self.layout.root.exists():
            return GCResult(0, 0, 0)
        self.paths.make_root()
        self.layout.ensure()
        try:
            with locked(self.layout.gc_lock, blocking=blocking):
                return self._collect()
        except Busy:
            return GCResult(0, 0, 0)

    def _collect(self) -> GCResult:
        doc = self.index.load()
        # Index blobs a repository digest names (multi-platform pulls) stay with their image.
        live_blobs = {key.partition("@")[2] for key in doc.digests}
        live_chains: set[str] = set()
        for image in doc.all_images():
            live_blobs.add(image.digest)
            live_blobs.add(image.id)
            try:
                manifest = self.manifest(image)
                live_blobs.update(layer.digest for layer in manifest.layers)
                live_chains.update(chain_ids(diff_ids(self.image_config(image))))
            except StoreError:
                continue  # a damaged image keeps what it has; `rmi` it to reclaim
        freed = blobs = layers = 0
        for digest in list(self.blobs.digests()):
            if digest not in live_blobs:
                freed += self.blobs.size(digest)
                self.blobs.delete(digest)
                remove_lock_file(self.layout.blob_lock(digest))
                blobs += 1
        for chain in list(self.layers.chain_ids()):
            if chain not in live_chains:
                try:
                    freed += int(self.layers.metadata(chain).get("size", 0))  # type: ignore[call-overload]
                except (OSError, ValueError):
                    pass
                self.layers.delete(chain)
                remove_lock_file(self.layout.layer_lock(chain))
                layers += 1
        # Leftovers of writers killed mid-way: no writer runs while we hold the lock exclusively.
        for tmp in list(self.blobs.temporaries()):
            tmp.unlink(missing_ok=True)
        self.layers.remove_trees(list((self.layout.layers / "sha256").glob(".*")))
        return GCResult(blobs, layers, freed)
