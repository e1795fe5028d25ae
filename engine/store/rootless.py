"""A rootless store's layers keep their image owners: unpacked, copied and deleted in a user namespace.

Why: unpacked as the plain user, every file of a layer is the user's, and the user is root inside a
rootless container, so every file there is root's (``/home/app``, uid 1000 in the image, is not
writable by ``app``). A rootless container maps the user to 0 and the user's subordinate ranges
(``/etc/subuid``, ``/etc/subgid``) to 1…n; a helper process that is root of a user namespace with the
same maps (``engine.containers.create.user_mappings``, entered by
``engine.runtime.userns.run_in_userns``) gives each file the host id its image id maps to, so the
container sees the image's owners again: the unpacker applies ownership whenever it is uid 0.

What that implies, and what this module also does: such trees hold files of subordinate ids, which
the user can neither delete nor always read (a 0700 directory of ``app``), so deleting them (``rmi``,
``image prune``, the collector, a refused layer, a container's copy) and the copy driver's copy run
as root of the same namespace too, as ``podman unshare`` does for podman.

A user without a subordinate range keeps the old behaviour (unpacked as the user, every file root's
inside) and is told so once, on stderr.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from engine.config import Paths
from engine.store.layout import StoreError

if TYPE_CHECKING:
    from engine.layers.model import LayerStats, UnpackLimits
    from engine.spec import IDMapping

RM = "/bin/rm"
_warned = False


def warn_once(warning: str) -> None:
    """Say (once per process) why a rootless layer is unpacked as the plain user."""
    global _warned
    if not _warned:
        _warned = True
        sys.stderr.write(f"stockade: warning: {warning}\n")


@dataclass(frozen=True)
class UserNamespace:
    """The rootless user's id maps, and the store's work done as root inside them."""

    uid_maps: "list[IDMapping]"
    gid_maps: "list[IDMapping]"

    @classmethod
    def for_user(cls, paths: Paths) -> "UserNamespace":
        """The maps a rootless container of this user gets; IDMapError when the user has no
        subordinate range (ownership cannot be kept then)."""
        from engine.containers.create import user_mappings
        from engine.containers.store import ContainerStore

        return cls(*user_mappings(paths, "host", ContainerStore(paths)))

    def _run(self, argv: list[str]) -> tuple[bytes, str | None]:
        """Run ``argv`` as root of the namespace: (stdout, None) or (stdout, its last error line)."""
        from engine.runtime.userns import run_in_userns

        code, out, err = run_in_userns(argv, self.uid_maps, self.gid_maps)
        if code == 0:
            return out, None
        lines = err.decode(errors="replace").strip().splitlines()
        return out, lines[-1].removeprefix("stockade: error: ") if lines else f"exit status {code}"

    def unpack(self, blob: Path, dest: Path, *, media_type: str, limits: "UnpackLimits") -> "LayerStats":
        """Apply layer ``blob`` to the empty directory ``dest`` (mode diff), owners kept; a refused
        layer raises LayerError with the unpacker's message (naming the entry)."""
        from engine.layers.model import LayerError, LayerStats

        out, error = self._run([sys.executable, "-m", "engine.layers", "apply", "--rootless",
                                "--mode", "diff", "--media-type", media_type,
                                "--max-bytes", str(limits.max_bytes),
                                "--max-entries", str(limits.max_entries), str(blob), str(dest)])
        if error is not None:
            raise LayerError(error)
        doc = json.loads(out)
        return LayerStats(diff_id=doc["diff_id"], size=int(doc["size"]), entries=int(doc["entries"]))

    def remove(self, paths: Sequence[Path]) -> None:
        """Delete the trees ``paths`` (files of subordinate ids included), in one helper process."""
        present = [str(p) for p in paths if p.exists() or p.is_symlink()]
        if present:
            _, error = self._run([RM, "-rf", "--", *present])
            if error is not None:
                raise StoreError(f"cannot remove {present[0]}: {error}")

    def copy_layers(self, layers: Sequence[Path], dest: Path) -> None:
        """The copy driver's copy of ``layers`` (bottom to top) at ``dest``, owners kept."""
        _, error = self._run([sys.executable, "-m", "engine.containers.copyroot", str(dest),
                              *map(str, layers)])
        if error is not None:
            raise StoreError(f"cannot copy the image's layers to {dest}: {error}")
