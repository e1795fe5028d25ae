"""The engine's image store and container state, behind the audit's image and container protocols.

The store (``engine/store``) and the container state (``engine/containers``) are read only: the audit
never pulls, creates or changes anything. When either package is absent or cannot read its state, the
source raises SourceUnavailable and every dependent check reports SKIP with that reason — an audit
never grades images or containers it could not see.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any, Mapping

from engine.config import Config, Paths
from hardening.audit.targets import ImageRecord, SourceUnavailable


def _require(module: str, what: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise SourceUnavailable(f"{what} not available ({module} is not part of this installation)")


@dataclass
class StoreImages:
    """Images in the engine's content store."""

    paths: Paths
    config: Config | None
    only: str | None = None  # a reference: audit just that image (``--image``)

    def images(self) -> list[ImageRecord]:
        _require("engine.store", "store")
        raise SourceUnavailable("store not available (engine.store has no read API for the audit yet)")


@dataclass
class EngineContainers:
    """Containers in the engine's state directory, as Docker-shaped inspect documents."""

    paths: Paths

    def containers(self) -> list[Mapping[str, Any]]:
        _require("engine.containers", "container state")
        raise SourceUnavailable("container state not available "
                                "(engine.containers has no read API for the audit yet)")
