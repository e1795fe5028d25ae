"""The values that cross the unpacking API: limits in, statistics out, one error type.

They live apart from the unpacking code so the store (and the configuration) can import them without
pulling in the decompressors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from engine.errors import StockadeError

if TYPE_CHECKING:
    from engine.config import UnpackConfig

Mode = Literal["diff", "merge"]


class LayerError(StockadeError):
    """A layer was refused: its media type, its compressed stream or one of its tar entries.

    The message names the entry (as the archive spells it) whenever one is involved, so a user can
    find the offending file with ``tar -tvf``.
    """


class Refused(Exception):
    """Internal: the stream or the entry being applied is refused. Only the applier knows which entry
    it was working on, so it turns this into a LayerError that names it."""


@dataclass(frozen=True)
class UnpackLimits:
    """What one layer may expand into; a layer past either bound is refused as soon as it gets there.

    ``max_bytes`` counts the whole decompressed tar stream (headers and padding included), so a
    decompression bomb stops after at most ``max_bytes`` of output, not when the disk is full.
    """

    max_bytes: int
    max_entries: int

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_entries <= 0:
            raise ValueError(f"unpack limits must be positive, got {self}")

    @classmethod
    def from_config(cls, unpack: "UnpackConfig") -> "UnpackLimits":
        """The limits the ``[unpack]`` configuration section sets."""
        return cls(max_bytes=unpack.max_layer_size, max_entries=unpack.max_entries)


@dataclass(frozen=True)
class LayerStats:
    """What applying a layer found.

    ``diff_id`` is ``sha256:<hex>`` of the uncompressed tar stream, for the caller to compare with the
    image config's ``rootfs.diff_ids``; ``size`` is that stream's length in bytes and ``entries`` the
    number of tar entries (whiteouts included, PAX and GNU long-name headers not).
    """

    diff_id: str
    size: int
    entries: int
