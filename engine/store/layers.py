"""Unpacked layers, one directory per chain id, shared by every image that uses the same stack.

A layer is applied by :func:`engine.layers.apply_layer` (mode "diff") into a temporary directory
beside its final place; its diff_id is compared with the image config's before the directory is
renamed to ``layers/sha256/<chain id hex>``. The rename is the commit: a directory at the final name
is always complete and verified. A per-chain lock makes concurrent pulls unpack each layer once.

A rootless store unpacks and deletes layer trees as root of the user's user namespace
(:mod:`engine.store.rootless`), so files keep the image's owners shifted into the user's subordinate
range; such a layer is unpacked from its stored blob rather than streamed (:attr:`LayerStore.streams`).
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Iterator, Sequence

from engine.atomicfile import fsync_dir
from engine.config import Paths, UnpackConfig
from engine.records import Record
from engine.registry.errors import VerificationError
from engine.store.layout import StoreLayout, remove_tree
from engine.store.locks import locked

if TYPE_CHECKING:
    from engine.layers.model import LayerStats
    from engine.store.rootless import UserNamespace

METADATA = "layer.json"
DIFF = "diff"


class LayerStage(Record):
    """A layer being unpacked into a temporary directory; :meth:`commit` publishes it."""

    chain_id: str
    final: Path
    tmp: Path
    limits: UnpackConfig
    rootless: bool
    namespace: "UserNamespace | None" = None  # rootless with subordinate ids: unpack in there
    without_namespace: str = ""  # rootless without them: the warning that says why
    stats: "LayerStats | None" = None

    def apply(self, stream: BinaryIO, media_type: str) -> "LayerStats":
        """Unpack a stream in this process (root, or a rootless user without subordinate ids)."""
        # The unpacker and its decompressors load only here, not for a store that is only read.
        from engine.layers import UnpackLimits, apply_layer

        if self.rootless:
            from engine.store.rootless import warn_once

            warn_once(self.without_namespace)
        (self.tmp / DIFF).mkdir(mode=0o755)
        self.stats = apply_layer(stream, self.tmp / DIFF, media_type=media_type,
                                 limits=UnpackLimits.from_config(self.limits), rootless=self.rootless,
                                 mode="diff")
        return self.stats

    def apply_file(self, blob: Path, media_type: str) -> "LayerStats":
        """Unpack a stored blob: in the user's namespace when there is one, else in this process."""
        if self.namespace is None:
            with open(blob, "rb") as stream:
                return self.apply(stream, media_type)
        from engine.layers import UnpackLimits

        (self.tmp / DIFF).mkdir(mode=0o755)
        self.stats = self.namespace.unpack(blob, self.tmp / DIFF, media_type=media_type,
                                           limits=UnpackLimits.from_config(self.limits))
        return self.stats

    def commit(self, diff_id: str, parent: str | None, blob: str, *, sync_dir: bool = True) -> None:
        """Check the diff_id the unpacker computed against the image config's, then rename.

        Durability: the rename is made durable (``sync_dir=False``: the caller fsyncs the layers
        directory once for many layers), the tree's files are not fsynced one by one (the unpacker
        does not fsync, as containerd's and containers/storage's do not): a layer survives any
        process crash complete, and a power loss before the kernel writes it back may cut files
        short, as for those peers. ``layer.json`` is therefore not fsynced on its own either."""
        if self.stats is None:
            raise RuntimeError("commit before apply")
        if self.stats.diff_id != diff_id:
            raise VerificationError(f"layer {blob}: its uncompressed content has diff_id "
                                    f"{self.stats.diff_id}, the image config says {diff_id}")
        meta = {"chainId": self.chain_id, "diffId": diff_id, "parent": parent, "blob": blob,
                "size": self.stats.size, "entries": self.stats.entries}
        with open(self.tmp / METADATA, "x") as f:
            json.dump(meta, f)
        os.rename(self.tmp, self.final)
        if sync_dir:
            fsync_dir(self.final.parent)


class LayerStore:
    def __init__(self, layout: StoreLayout, limits: UnpackConfig, paths: Paths) -> None:
        self.layout = layout
        self.limits = limits
        self.paths = paths
        self.rootless = paths.rootless

    @cached_property
    def _namespace(self) -> "tuple[UserNamespace | None, str]":
        """The user namespace layer trees are made and deleted in (None for root, or for a rootless
        user without subordinate ids: then the reason)."""
        if not self.rootless:
            return None, ""
        from engine.runtime.idmap import IDMapError
        from engine.store.rootless import UserNamespace

        try:
            return UserNamespace.for_user(self.paths), ""
        except IDMapError as exc:
            reason = exc.args[0]
            return None, f"{reason}: layers are unpacked as your own user, so every file in a " \
                         f"rootless container is owned by root" + (f" ({exc.hint})" if exc.hint else "")

    @property
    def streams(self) -> bool:
        """Whether a layer can be unpacked while its blob downloads (in this process)."""
        return self._namespace[0] is None

    def remove_trees(self, trees: Sequence[Path]) -> None:
        """Delete layer trees (in the user's namespace for a rootless store: they hold files of its
        subordinate ids, which the user itself cannot delete)."""
        namespace = self._namespace[0]
        if namespace is not None:
            namespace.remove(trees)
            return
        for tree in trees:
            remove_tree(tree)

    @property
    def directory(self) -> Path:
        """Where layers are renamed into place (to fsync once after many ``sync_dir=False`` commits)."""
        return self.layout.layers / "sha256"

    def path(self, chain_id: str) -> Path:
        """The directory to use as an overlay lowerdir for this layer."""
        return self.layout.layer(chain_id) / DIFF

    def has(self, chain_id: str) -> bool:
        return self.layout.layer(chain_id).is_dir()

    def metadata(self, chain_id: str) -> dict[str, object]:
        with open(self.layout.layer(chain_id) / METADATA) as f:
            doc: dict[str, object] = json.load(f)
        return doc

    @contextmanager
    def stage(self, chain_id: str) -> Iterator[LayerStage | None]:
        """Lock ``chain_id``; yield a stage to unpack into, or None if the layer already exists.
        A stage not committed when the block ends is removed."""
        final = self.layout.layer(chain_id)
        with locked(self.layout.layer_lock(chain_id)):
            if final.is_dir():
                yield None
                return
            self.remove_trees(list(final.parent.glob(f".{final.name}.tmp-*")))
            tmp = final.with_name(f".{final.name}.tmp-{os.urandom(6).hex()}")
            tmp.mkdir(mode=0o711)
            namespace, why = self._namespace
            stage = LayerStage(chain_id, final, tmp, self.limits, self.rootless, namespace, why)
            try:
                yield stage
            finally:
                if tmp.exists():
                    self.remove_trees([tmp])

    def chain_ids(self) -> Iterator[str]:
        root = self.layout.layers / "sha256"
        for entry in root.iterdir():
            if not entry.name.startswith("."):
                yield f"sha256:{entry.name}"

    def delete(self, chain_id: str) -> None:
        with locked(self.layout.layer_lock(chain_id)):
            final = self.layout.layer(chain_id)
            if final.exists():
                # Rename first so a half-deleted tree is never mistaken for a complete layer.
                doomed = final.with_name(f".{final.name}.tmp-{os.urandom(6).hex()}")
                os.rename(final, doomed)
                self.remove_trees([doomed])
