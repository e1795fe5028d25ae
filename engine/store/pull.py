"""Pull: registry -> verified blobs -> unpacked layers -> an image in the index.

Order matters for "nothing half-written": the manifest and config are fetched and verified in memory
first; layers stream in parallel (``registries.max_parallel_downloads``), each through one pass that
hashes it, writes the blob's temporary file and feeds the unpacker; a layer becomes visible only
after its digest, size and diff_id all check out. The config and manifests are written, and the
image recorded in the index, only when every layer is in place. A failed pull therefore leaves no
image, no unverified byte under a final name, and at most some verified layers that a re-run reuses
(``image prune`` removes them if no image wants them).
"""

from __future__ import annotations

import io
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from engine.atomicfile import fsync_dir
from engine.errors import printable
from engine.reference import Reference
from engine.registry.client import RegistryClient
from engine.registry.errors import VerificationError
from engine.registry.manifest import Descriptor, check_image_manifest
from engine.registry.platform import Platform, PlatformError
from engine.registry.streams import CHUNK, ObservedReader, drain
from engine.store.imageconfig import chain_ids, config_platform, diff_ids, parse_config, platform_of
from engine.store.index import Image

if TYPE_CHECKING:
    from engine.store.store import Store


@dataclass(frozen=True)
class LayerEvent:
    """Progress of one layer, for progress bars: ``status`` is one of "waiting", "downloading",
    "exists" (already in the store), "done"."""

    digest: str
    status: str
    current: int
    total: int


Progress = Callable[[LayerEvent], None]


@dataclass(frozen=True)
class PullResult:
    image: Image
    digest: str  # what the reference resolved to (an index digest for a multi-platform image)
    downloaded: int  # layer bytes fetched from the registry (0 when everything was present)


class PullCancelled(Exception):
    """Another layer of the same pull failed; this one stops early."""


class _Puller:
    def __init__(self, store: "Store", client: RegistryClient, ref: Reference,
                 progress: Progress | None) -> None:
        self.store, self.client, self.ref = store, client, ref
        self.progress = progress
        self.cancel = threading.Event()
        self.downloaded = 0
        self._count_lock = threading.Lock()

    def _emit(self, desc: Descriptor, status: str, current: int = 0) -> None:
        if self.progress:
            self.progress(LayerEvent(desc.digest, status, current, desc.size))

    def _counter(self, desc: Descriptor) -> Callable[[int], None]:
        done = 0

        def count(n: int) -> None:
            nonlocal done
            if self.cancel.is_set():
                raise PullCancelled()
            done += n
            with self._count_lock:
                self.downloaded += n
            self._emit(desc, "downloading", done)
        return count

    def layer(self, desc: Descriptor, diff_id: str, chain: str, parent: str | None) -> None:
        """Make sure blob ``desc`` and the unpacked layer ``chain`` are both in the store."""
        store = self.store
        if store.blobs.has(desc.digest) and store.layers.has(chain):
            self._emit(desc, "exists", desc.size)
            return
        # verify=False: the BlobReader checks digest and size of every byte it delivers and
        # raises at EOF; nothing is committed before the stream was read to its end.
        with store.blobs.ingest(desc.digest, desc.size, verify=False, direct=True) as writer:
            if writer is None:
                store.ensure_layer(desc, diff_id, chain, parent, sync_dir=False)
                self._emit(desc, "exists", desc.size)
                return
            with self.client.open_blob(self.ref, desc, progress=self._counter(desc)) as reader:
                if not store.layers.streams:
                    writer.copy_from(reader)  # unpacked below, from the verified blob
                    writer.commit(sync_dir=False)
                else:
                    with store.layers.stage(chain) as stage:
                        if stage is None:
                            writer.copy_from(reader)
                            writer.commit(sync_dir=False)
                        else:
                            # One pass: the reader hashes, the observer writes the blob file, the
                            # unpacker gets the bytes.
                            tee = ObservedReader(reader, writer.write)  # type: ignore[arg-type]
                            stream = io.BufferedReader(tee, CHUNK)
                            stage.apply(stream, desc.media_type)
                            drain(stream)  # raises here if the blob's digest or size is wrong
                            # raises if the diff_id is wrong
                            stage.commit(diff_id, parent, desc.digest, sync_dir=False)
                            writer.commit(sync_dir=False)
        if not store.layers.streams:
            # A rootless store unpacks in the user's namespace, in a helper process that reads
            # the blob file (the layer still becomes visible only once its diff_id checks out).
            store.ensure_layer(desc, diff_id, chain, parent, sync_dir=False)
        self._emit(desc, "done", desc.size)

    def layers(self, layers: tuple[Descriptor, ...], diffs: list[str]) -> None:
        chains = chain_ids(diffs)
        jobs = [(layers[i], diffs[i], chains[i], chains[i - 1] if i else None) for i in range(len(layers))]
        for desc, *_ in jobs:
            self._emit(desc, "waiting")
        workers = max(1, min(self.store.config.registries.max_parallel_downloads, len(jobs)))
        # Largest first: a small layer queued behind the big ones finishes in their shadow, while a
        # big one queued behind a small one would run alone at the end.
        by_size = sorted(jobs, key=lambda job: job[0].size, reverse=True)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pull") as pool:
            futures = [pool.submit(self.layer, *job) for job in by_size]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in done if f.exception() is not None]
            if failed:
                self.cancel.set()
                wait(futures)
                errors = [f.exception() for f in futures if f.exception() is not None]
                real = [e for e in errors if not isinstance(e, PullCancelled)]
                raise (real or errors)[0]  # type: ignore[misc]


def pull(store: "Store", client: RegistryClient, ref: Reference, *, platform: Platform | None = None,
         progress: Progress | None = None) -> PullResult:
    """Pull ``ref`` (for ``platform``, default the host's) into ``store``; see the module docstring."""
    with store.writing():
        resolved = client.resolve(ref, platform)
        manifest = resolved.manifest
        where = f"image {ref}"
        check_image_manifest(manifest, where)
        if any(layer.digest == manifest.config.digest for layer in manifest.layers):
            raise VerificationError(f"{where}: a layer has the config's digest {manifest.config.digest}")
        # Every digest the image will be filed under, checked before a byte is downloaded: a
        # registry may name content by sha512, which the store refuses by name.
        for digest in (resolved.top.digest, resolved.image.digest, manifest.config.digest,
                       *(layer.digest for layer in manifest.layers)):
            store.layout.blob(digest)
        # The config's lock is held for the whole pull: a concurrent pull of the same image waits
        # here and then finds everything in place, so each blob is downloaded once.
        with store.blobs.locked(manifest.config.digest):
            if store.blobs.has(manifest.config.digest):
                config_raw = store.blobs.read(manifest.config.digest, client.max_document)
            else:
                config_raw = client.fetch_blob(ref, manifest.config)
            config = parse_config(config_raw, where=f"{where}: config {manifest.config.digest}")
            diffs = diff_ids(config)
            if len(diffs) != len(manifest.layers):
                raise VerificationError(f"{where}: the manifest lists {len(manifest.layers)} layers but "
                                        f"the config has {len(diffs)} diff_ids")
            if platform is not None and not platform.matches(config_platform(config)):
                found = printable(platform_of(config)) or "no platform"
                raise PlatformError(f"{where}: the image is for {found}, not {platform}")
            puller = _Puller(store, client, ref, progress)
            puller.layers(manifest.layers, diffs)
            store.blobs.write_bytes(config_raw, manifest.config.digest, lock_held=True, sync_dir=False)
        if resolved.top.digest != resolved.image.digest:
            store.blobs.write_bytes(resolved.top.raw, resolved.top.digest, sync_dir=False)
        # Every rename of this pull made durable at once, before the index may name any of it
        # (one fsync per directory instead of three per layer: under another writer's load each
        # directory fsync waits for a journal commit).
        fsync_dir(store.blobs.directory)
        fsync_dir(store.layers.directory)
        image = store.record(resolved.image.raw, resolved.image.digest, config,
                             names=[(ref.name, ref.tag if not ref.digest else None, resolved.top.digest)])
        return PullResult(image=image, digest=resolved.top.digest, downloaded=puller.downloaded)
