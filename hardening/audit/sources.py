"""The engine's image store and container state, behind the audit's image and container protocols.

Read only: the audit never pulls, unpacks, creates or changes anything. When a package is absent
from the installation, or the configuration that locates it does not load, the source raises
SourceUnavailable and every dependent check reports SKIP with that reason — an audit never grades
images or containers it could not see.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from engine.config import Config, Paths
from hardening.audit.layerdirs import layer_files, read_layer_file
from hardening.audit.model import CheckError
from hardening.audit.targets import ImageRecord, LayerFile, SourceUnavailable, image_name


def _require(module: str, what: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise SourceUnavailable(f"{what} not available ({module} is not part of this installation)")


@dataclass
class StoreImage:
    """One image of the store: identity and config from the index, files from its layers."""

    id: str
    digest: str | None
    tags: tuple[str, ...]
    config: Mapping[str, Any]
    layer_dirs: list[Path] = field(default_factory=list)
    missing_layers: list[str] = field(default_factory=list)
    signed_digest: str | None = None

    @property
    def name(self) -> str:
        return image_name(self.tags, self.id)

    def _dirs(self) -> list[Path]:
        if self.missing_layers:
            raise CheckError(f"layer {self.missing_layers[0]} of {self.name} is not unpacked "
                             f"(the audit does not unpack; run the image once or pull it again)")
        return self.layer_dirs

    def files(self) -> list[LayerFile]:
        return list(layer_files(self._dirs()))

    def read_file(self, path: str, limit: int = 1024 * 1024) -> bytes | None:
        return read_layer_file(self._dirs(), path, limit)


@dataclass
class StoreImages:
    """Images in the engine's content store (``only``: just the one ``--image`` names)."""

    paths: Paths
    config: Config | None
    only: str | None = None

    def images(self) -> list[ImageRecord]:
        _require("engine.store", "store")
        if self.config is None:
            raise SourceUnavailable("store not available (the configuration does not load)")
        from engine.store.imageconfig import chain_ids, diff_ids
        from engine.store.store import Store

        store = Store(self.paths, self.config)
        chosen = [store.resolve(self.only)] if self.only else store.images()
        out: list[ImageRecord] = []
        for image in chosen:
            config = store.image_config(image)
            chains = chain_ids(diff_ids(config))
            tags = _named_first(image.repo_tags, self.only)
            out.append(StoreImage(image.id, image.digest, tags, config,
                                  [store.layers.path(c) for c in chains],
                                  [c for c in chains if not store.layers.has(c)],
                                  image.digest_for(tags[0]) if tags else None))
        return out


def _named_first(tags: tuple[str, ...], only: str | None) -> tuple[str, ...]:
    """The image's tags, the one ``--image`` named first: the audit judges an image by its first
    name (IMG-009's signature is the one that name carries), and the user chose that name."""
    from engine.reference import Reference, ReferenceError

    try:
        ref = Reference.parse(only) if only else None
    except ReferenceError:  # an ID or digest prefix: no name was chosen
        ref = None
    chosen = f"{ref.name}:{ref.tag}" if ref is not None and not ref.digest else None
    return tuple(sorted(tags, key=lambda t: t != chosen))


@dataclass
class EngineContainers:
    """Containers in the engine's state, as Docker-shaped inspect documents.

    ``State.Running`` is re-derived from the live process (a record can claim a container runs
    after its monitor was killed), so checks that look inside running containers see the truth.
    """

    paths: Paths

    def containers(self) -> list[Mapping[str, Any]]:
        _require("engine.containers", "container state")
        from engine.containers.state import is_running
        from engine.containers.store import ContainerStore

        store = ContainerStore(self.paths)
        out = []
        for cid in sorted(store.ids()):
            doc = store.load(cid)
            running = is_running(doc)
            out.append({**doc, "State": {**doc.get("State", {}), "Running": running,
                                         "Pid": doc.get("State", {}).get("Pid", 0) if running else 0}})
        return out
