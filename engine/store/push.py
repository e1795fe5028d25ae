"""Push: an image from the store to a registry, blobs first, manifest last.

Blobs the registry already has are skipped (``HEAD``); blobs the image is known to have in another
repository of the same registry are mounted across repositories instead of uploaded; the rest are
uploaded in parallel (monolithic, or in PATCH chunks of ``chunk_size``). The manifest goes last, byte
for byte as stored, so the pushed digest is the local one, and the registry's answer is checked.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
import threading
from typing import TYPE_CHECKING, BinaryIO, Callable

from engine.reference import Reference
from engine.registry.client import RegistryClient
from engine.registry.manifest import Descriptor
from engine.store.index import Image
from engine.store.pull import LayerEvent, Progress

if TYPE_CHECKING:
    from engine.store.store import Store


@dataclass(frozen=True)
class PushResult:
    digest: str
    size: int  # bytes of the manifest, as ``docker push`` prints it
    uploaded: int  # blob bytes sent


def push(store: "Store", client: RegistryClient, image: Image, dest: Reference, *,
         chunk_size: int | None = None, progress: Progress | None = None) -> PushResult:
    manifest = store.manifest(image)
    raw = store.manifest_bytes(image)
    sources = []
    for name in image.repo_tags + image.repo_digests:
        ref = Reference.parse(name)
        if ref.registry == dest.registry and ref.repository != dest.repository:
            sources.append(ref)
    blobs: dict[str, Descriptor] = {manifest.config.digest: manifest.config}
    for layer in manifest.layers:
        blobs.setdefault(layer.digest, layer)
    uploaded = 0
    lock = threading.Lock()

    def one(desc: Descriptor) -> None:
        nonlocal uploaded
        done = 0

        def count(n: int) -> None:
            nonlocal done
            done += n
            if progress:
                progress(LayerEvent(desc.digest, "pushing", done, desc.size))

        outcome = client.push_blob(dest, desc, _opener(store, desc.digest), mount_from=sources,
                                   chunk_size=chunk_size, progress=count)
        if outcome == "uploaded":
            with lock:
                uploaded += desc.size
        if progress:
            progress(LayerEvent(desc.digest, {"uploaded": "done"}.get(outcome, outcome), desc.size,
                                desc.size))

    if progress:
        for desc in blobs.values():
            progress(LayerEvent(desc.digest, "waiting", 0, desc.size))
    workers = max(1, min(store.config.registries.max_parallel_downloads, len(blobs)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="push") as pool:
        for future in [pool.submit(one, d) for d in blobs.values()]:
            future.result()
    digest = client.put_manifest(dest, raw, image.media_type)
    with store.index.update() as index:
        if image.digest in index.images:
            index.digests[f"{dest.name}@{digest}"] = image.digest
            if dest.tag and index.tags.get(f"{dest.name}:{dest.tag}") == image.digest:
                index.set_tag(f"{dest.name}:{dest.tag}", image.digest, digest)  # the registry's now
    return PushResult(digest=digest, size=len(raw), uploaded=uploaded)


def _opener(store: "Store", digest: str) -> Callable[[], BinaryIO]:
    return lambda: store.blobs.open(digest)
