"""Where the store keeps things under ``<root>`` (``--root``), and the errors it raises.

::

    <root>/blobs/sha256/<hex>               content by digest: manifests, configs, compressed layers
    <root>/blobs/sha256/.<hex>.tmp-<rand>   a download in progress (never read; removed when stale)
    <root>/layers/sha256/<chain hex>/diff   a layer unpacked once per chain id (an overlay lowerdir)
    <root>/layers/sha256/<chain hex>/layer.json   its diff_id, parent chain, size and entry count
    <root>/images.json                      the image index: images, tags, repository digests
    <root>/locks/                           flock files: one per blob and per layer, the index, gc
    <root>/containers/<id>/                 (the runtime's: the store never touches it)

Only the store writes under ``blobs``, ``layers`` and ``images.json``; everyone else goes through
:class:`~engine.store.store.Store`.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from engine.errors import StockadeError
from engine.records import Record
from engine.reference import validate_digest


class StoreError(StockadeError):
    """The store refused an operation, or found its own files damaged."""


class ImageInUseError(StoreError):
    """``rmi`` of an image a container uses, without ``--force``."""


class UnsupportedDigestError(StoreError):
    """Content named by a digest algorithm the store does not file under (anything but sha256)."""


STORE_ALGORITHM = "sha256"


def _encoded(digest: str, what: str) -> str:
    """The hex of a sha256 digest: the store files content under sha256 only. A registry or an
    archive may name content by another registered algorithm (sha512); that is refused here, by
    name, instead of failing later on a directory that does not exist."""
    algorithm, _, hex_ = validate_digest(digest).partition(":")
    if algorithm != STORE_ALGORITHM:
        raise UnsupportedDigestError(f"{what} {digest[:len(algorithm) + 13]}…: the store keeps "
                                     f"{STORE_ALGORITHM} content only ({algorithm} is not supported)")
    return hex_


class StoreLayout(Record, frozen=True):
    root: Path

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    @property
    def layers(self) -> Path:
        return self.root / "layers"

    @property
    def index(self) -> Path:
        return self.root / "images.json"

    @property
    def locks(self) -> Path:
        return self.root / "locks"

    def blob(self, digest: str) -> Path:
        return self.blobs / STORE_ALGORITHM / _encoded(digest, "blob")

    def layer(self, chain_id: str) -> Path:
        return self.layers / STORE_ALGORITHM / _encoded(chain_id, "layer")

    def blob_lock(self, digest: str) -> Path:
        return self.locks / "blobs" / f"{STORE_ALGORITHM}-{_encoded(digest, 'blob')}"

    def layer_lock(self, chain_id: str) -> Path:
        return self.locks / "layers" / f"{STORE_ALGORITHM}-{_encoded(chain_id, 'layer')}"

    @property
    def index_lock(self) -> Path:
        return self.locks / "index"

    @property
    def gc_lock(self) -> Path:
        return self.locks / "gc"

    def ensure(self) -> None:
        """Create the directories (idempotent). The root is traversable but not listable by others:
        a container's user may need to reach its layers through the overlay mount."""
        self.root.mkdir(mode=0o711, parents=True, exist_ok=True)
        for directory, mode in ((self.blobs / "sha256", 0o700), (self.layers / "sha256", 0o711),
                                (self.locks / "blobs", 0o700), (self.locks / "layers", 0o700)):
            directory.mkdir(mode=mode, parents=True, exist_ok=True)


def remove_tree(path: Path) -> None:
    """Delete a directory tree even where a layer made directories unreadable or unwritable (a
    rootless user is not exempt from permissions the way root is). Each failing path is fixed
    (made accessible) and retried once; a second failure on the same path is raised."""
    fixed: set[str] = set()

    def fix(func: object, failed: str, exc_info: tuple[type, BaseException, object]) -> None:
        if failed in fixed:
            raise StoreError(f"cannot remove {failed}: {exc_info[1]}")
        fixed.add(failed)
        for target in (os.path.dirname(failed), failed):
            try:
                if stat.S_ISDIR(os.lstat(target).st_mode):
                    os.chmod(target, 0o700)
            except OSError:
                pass
        if os.path.isdir(failed) and not os.path.islink(failed):
            shutil.rmtree(failed, onerror=fix)
        else:
            try:
                os.unlink(failed)
            except FileNotFoundError:
                pass

    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path, onerror=fix)
