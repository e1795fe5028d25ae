"""Named and anonymous volumes: directories the engine owns, which outlive the containers using them.

Layout: ``<root>/volumes/<name>/_data`` is what a container mounts, ``<root>/volumes/<name>/volume.json``
describes it (Docker's ``volume inspect`` fields). An anonymous volume (an image's ``VOLUME`` or
``-v /path`` without a source) gets a random 64-hex name and ``"Anonymous": true``; ``rm -v`` and
``volume prune`` remove those, a plain ``rm`` keeps them, as Docker does.

Which containers use a volume is the container records' business: callers pass ``in_use`` (names of
volumes some container mounts) to ``remove`` and ``prune``, as they do for images.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.atomicfile import write_atomic
from engine.config import Paths
from engine.errors import NotFoundError, StockadeError

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$")


class VolumeError(StockadeError):
    """A volume cannot be created or removed."""


@dataclass
class Volume:
    name: str
    mountpoint: Path
    created: str
    labels: dict[str, str] = field(default_factory=dict)
    anonymous: bool = False

    def inspect(self) -> dict[str, Any]:
        return {"CreatedAt": self.created, "Driver": "local", "Labels": self.labels or None,
                "Mountpoint": str(self.mountpoint), "Name": self.name, "Options": None,
                "Scope": "local", "Anonymous": self.anonymous}


class Volumes:
    def __init__(self, root: Path, owner: Paths | None = None) -> None:
        self.base = root / "volumes"
        self.owner = owner  # the store's Paths: a rootless owner's volumes are removed in its namespace

    def _meta(self, name: str) -> Path:
        return self.base / name / "volume.json"

    def create(self, name: str | None = None, *, labels: dict[str, str] | None = None,
               anonymous: bool = False, exist_ok: bool = True) -> Volume:
        """Create a volume (or return the existing one of that name, as ``docker volume create``)."""
        if name is None:
            name, anonymous = secrets.token_hex(32), True
        if not NAME_RE.match(name):
            raise VolumeError(f"invalid volume name {name!r}: use letters, digits, '_', '.' and '-', "
                              f"starting with a letter or digit")
        self.base.mkdir(parents=True, exist_ok=True, mode=0o711)
        vdir = self.base / name
        try:
            vdir.mkdir(mode=0o711)
        except FileExistsError:
            if not exist_ok:
                raise VolumeError(f"volume {name} already exists") from None
            return self.get(name)
        (vdir / "_data").mkdir(mode=0o755)
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        vol = Volume(name, vdir / "_data", created, dict(labels or {}), anonymous)
        write_atomic(self._meta(name), json.dumps(vol.inspect()).encode())
        return vol

    def get(self, name: str) -> Volume:
        if not NAME_RE.match(name):
            raise NotFoundError(f"no such volume: {name}")
        try:
            doc = json.loads(self._meta(name).read_text())
        except FileNotFoundError:
            raise NotFoundError(f"no such volume: {name}") from None
        except ValueError as exc:
            raise VolumeError(f"volume {name}: unreadable metadata ({exc})") from None
        return Volume(name, self.base / name / "_data", str(doc.get("CreatedAt", "")),
                      dict(doc.get("Labels") or {}), bool(doc.get("Anonymous")))

    def list(self) -> list[Volume]:
        try:
            names = sorted(os.listdir(self.base))
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            if NAME_RE.match(name) and self._meta(name).is_file():
                try:
                    out.append(self.get(name))
                except (NotFoundError, VolumeError):
                    continue
        return out

    def remove(self, name: str, *, in_use: set[str], force: bool = False) -> None:
        self.get(name)
        if name in in_use and not force:
            raise VolumeError(f"volume {name} is in use by a container",
                              hint="remove the container first")
        doomed = self.base / f".{name}.removing-{secrets.token_hex(4)}"
        os.rename(self.base / name, doomed)
        self._delete(doomed, name)

    def _delete(self, doomed: Path, name: str) -> None:
        if self.owner is not None and self.owner.rootless:
            # What a container wrote as its users belongs to the user's subordinate ids (podman
            # unshare's case): a plain rmtree failed on it and left the renamed tree behind.
            from engine.containers.create import remove_trees

            remove_trees(self.owner, [doomed])
            if doomed.exists():
                raise VolumeError(f"volume {name}: cannot remove {doomed}")
            return
        shutil.rmtree(doomed)

    def prune(self, *, in_use: set[str], all_volumes: bool = False) -> list[str]:
        """Remove unused volumes: anonymous ones, or all of them with ``all_volumes``; and what a
        removal that failed or was killed after its rename left (``.NAME.removing-…``)."""
        for leftover in self.base.glob(".*.removing-*"):
            self._delete(leftover, leftover.name)
        removed = []
        for vol in self.list():
            if vol.name in in_use or not (vol.anonymous or all_volumes):
                continue
            self.remove(vol.name, in_use=in_use)
            removed.append(vol.name)
        return removed
