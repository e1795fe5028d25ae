"""The content store (see ``store.py``); the names other packages use are re-exported here."""

from engine.store.index import Image
from engine.store.layout import ImageInUseError, StoreError
from engine.store.store import GCResult, InUse, Removed, Store, nothing_in_use

__all__ = ["GCResult", "Image", "ImageInUseError", "InUse", "Removed", "Store", "StoreError",
           "nothing_in_use"]
