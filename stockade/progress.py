"""Per-layer progress bars on a terminal, as ``docker pull`` and ``docker push`` draw them.

Drawn on stderr only when it is a terminal; in a pipe nothing is drawn at all (the caller does not
create a renderer). Events arrive from several download threads, so drawing is serialized and
throttled: a redraw at most every ``INTERVAL`` seconds, plus one for every change of state.
"""

from __future__ import annotations

import threading
import time
from typing import TextIO

from engine.store.pull import LayerEvent
from stockade.output import human_size

INTERVAL = 0.1
BAR = 30
LABELS = {"waiting": "Waiting", "downloading": "Downloading", "exists": "Already exists",
          "done": "Pull complete", "pushing": "Pushing", "mounted": "Mounted from another repository"}
PUSH_LABELS = {"exists": "Layer already exists", "done": "Pushed"}


class LayerProgress:
    """One line per layer, redrawn in place with ANSI cursor movement."""

    def __init__(self, stream: TextIO, *, pushing: bool = False) -> None:
        self.stream = stream
        self.labels = {**LABELS, **(PUSH_LABELS if pushing else {})}
        self._lines: dict[str, str] = {}
        self._status: dict[str, str] = {}
        self._drawn = 0
        self._last = 0.0
        self._lock = threading.Lock()

    def _line(self, event: LayerEvent) -> str:
        short = event.digest.partition(":")[2][:12]
        label = self.labels.get(event.status, event.status)
        if event.status not in ("downloading", "pushing") or not event.total:
            return f"{short}: {label}"
        filled = int(BAR * event.current / event.total)
        bar = "=" * max(filled - 1, 0) + (">" if filled < BAR else "=") + " " * (BAR - filled)
        return f"{short}: {label} [{bar[:BAR]}] {human_size(event.current)}/{human_size(event.total)}"

    def update(self, event: LayerEvent) -> None:
        with self._lock:
            changed = self._status.get(event.digest) != event.status
            self._status[event.digest] = event.status
            self._lines[event.digest] = self._line(event)
            now = time.monotonic()
            if changed or now - self._last >= INTERVAL:
                self._draw()
                self._last = now

    def _draw(self) -> None:
        out = []
        if self._drawn:
            out.append(f"\x1b[{self._drawn}A")
        for line in self._lines.values():
            out.append(f"\x1b[2K{line}\n")
        self.stream.write("".join(out))
        self.stream.flush()
        self._drawn = len(self._lines)

    def close(self) -> None:
        with self._lock:
            if self._lines:
                self._draw()
