"""Fixtures for the unpacking tests: a destination beside a sentinel tree that must never change."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.layers import LayerStats, UnpackLimits, apply_layer
from tests.engine.layers.builders import GZIP
from tests.engine.layers.tree import snapshot

LIMITS = UnpackLimits(max_bytes=64 * 1024 * 1024, max_entries=10_000)


def apply(data: bytes, dest: Path, *, media_type: str = GZIP, mode: str = "diff",
          rootless: bool = False, limits: UnpackLimits = LIMITS) -> LayerStats:
    return apply_layer(io.BytesIO(data), dest, media_type=media_type, limits=limits,
                       rootless=rootless, mode=mode)  # type: ignore[arg-type]


@dataclass
class Sandbox:
    """``dest`` to unpack into, and ``outside``: a sibling tree (a secret file, an etc/ directory)
    that an escaping entry would hit. ``assert_untouched`` proves nothing outside ``dest`` changed."""

    root: Path
    dest: Path
    outside: Path
    before: dict[str, object]

    def assert_untouched(self) -> None:
        assert snapshot(self.root, skip=("dest",)) == self.before


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    root = tmp_path / "sandbox"
    dest = root / "dest"
    outside = root / "outside"
    (outside / "etc").mkdir(parents=True)
    (outside / "secret").write_text("keep me\n")
    (outside / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    dest.mkdir()
    return Sandbox(root, dest, outside, snapshot(root, skip=("dest",)))
