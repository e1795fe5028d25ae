"""Safe layer unpacking: apply an OCI or Docker layer blob to a directory.

Public API (what the store and the runtime use)::

    apply_layer(blob, dest, *, media_type, limits, rootless=False, mode="diff") -> LayerStats
    UnpackLimits(max_bytes, max_entries)      # UnpackLimits.from_config(config.unpack)
    LayerStats(diff_id, size, entries)
    LayerError                                # a StockadeError naming the refused entry
    LAYER_MEDIA_TYPES                         # media type -> "gzip" | "zstd" | "none"

``python -m engine.layers`` runs the same function in a process of its own, for callers that must
unpack under other credentials (inside a user namespace, or as an unprivileged user).
"""

from engine.layers.apply import apply_layer
from engine.layers.compression import LAYER_MEDIA_TYPES
from engine.layers.model import LayerError, LayerStats, UnpackLimits

__all__ = ["apply_layer", "LAYER_MEDIA_TYPES", "LayerError", "LayerStats", "UnpackLimits"]
