"""What "nothing half-written" means, checkable: store snapshots and a consistency check."""

from __future__ import annotations

import hashlib
from pathlib import Path

from engine.store import Store
from engine.store.imageconfig import chain_ids, diff_ids


def snapshot(root: Path) -> dict[str, str]:
    """Every file and directory under the store root with a content hash, except the lock files
    (empty files whose only content is their name; creating one changes nothing a reader sees)."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel == "locks" or rel.startswith("locks/"):
            continue
        if path.is_symlink():
            out[rel] = "-> " + str(path.readlink())
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


def assert_consistent(store: Store) -> None:
    """No blob whose content differs from its name, no leftover temporary, every image complete."""
    root = store.layout.blobs / "sha256"
    if root.exists():
        for blob in root.iterdir():
            assert not blob.name.startswith("."), f"leftover temporary {blob}"
            assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name, f"corrupt blob {blob}"
    layers = store.layout.layers / "sha256"
    if layers.exists():
        assert not [p for p in layers.iterdir() if p.name.startswith(".")], "leftover layer temporary"
    for image in store.images():
        manifest = store.manifest(image)
        for layer in manifest.layers:
            assert store.blobs.has(layer.digest)
        chains = chain_ids(diff_ids(store.image_config(image)))
        assert all(store.layers.has(chain) for chain in chains), f"image {image.digest} lacks a layer"
