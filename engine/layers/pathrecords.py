"""Values kept per directory until the end of a layer, forgotten when an ancestor is removed.

Removing a directory must drop every record at or below it. Scanning all records for the prefix on
each removal is quadratic, and a hostile layer can make it so (a hundred thousand directories,
each then replaced by a file). Instead every record and every removal is stamped from one counter,
removals cost O(1), and a record counts only if no removal of its path or an ancestor came after it.
"""

from __future__ import annotations

from typing import Generic, Iterator, TypeVar

T = TypeVar("T")


class PathRecords(Generic[T]):
    """Records keyed by canonical relative path ("" is the root, which is never removed)."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[int, T]] = {}
        self._removed: dict[str, int] = {}
        self._clock = 0

    def set(self, key: str, value: T) -> None:
        self._clock += 1
        self._values[key] = (self._clock, value)

    def keep_first(self, key: str, value: T) -> None:
        """Record ``value`` unless a live record exists (the first one seen is the one to keep)."""
        if key not in self:
            self.set(key, value)

    def drop_tree(self, key: str) -> None:
        """Forget ``key`` and everything below it."""
        self._clock += 1
        self._removed[key] = self._clock

    def _alive(self, key: str, stamp: int) -> bool:
        removed = self._removed
        if not removed:
            return True
        prefix = key
        while prefix:
            if removed.get(prefix, 0) > stamp:
                return False
            prefix = prefix.rpartition("/")[0]
        return True

    def __contains__(self, key: str) -> bool:
        found = self._values.get(key)
        return found is not None and self._alive(key, found[0])

    def deepest_first(self) -> Iterator[tuple[str, T]]:
        """The live records, children before their parents."""
        live = [(key, value) for key, (stamp, value) in self._values.items()
                if self._alive(key, stamp)]
        live.sort(key=lambda kv: kv[0].count("/") + bool(kv[0]), reverse=True)
        return iter(live)
