"""Docker's ``json-file`` log driver: one JSON object per line of output, rotated by size.

Each entry is ``{"log": "text\\n", "stream": "stdout"|"stderr", "time": RFC3339Nano}``, the format
``docker logs`` reads, so existing tooling understands Stockade's logs. The monitor writes them; when
the file would grow past ``max_size`` it is rotated (``log`` -> ``log.1`` -> ... up to ``max_file``
files in all, the oldest dropped). Readers walk the rotated files oldest first and, with ``follow``,
keep reading while the container runs, reopening the file when the monitor rotates it.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from pathlib import Path
from typing import Callable, Iterator

from engine.containers.state import now

PARTIAL_LIMIT = 16 * 1024  # a line longer than this is logged in pieces, as Docker does


class JsonFileWriter:
    def __init__(self, path: Path, *, max_size: int, max_file: int) -> None:
        self.path = path
        self.max_size = max(0, max_size)
        self.max_file = max(1, max_file)
        self._pending: dict[str, bytes] = {}
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - closed in close()
        self._size = self._file.tell()

    def write(self, stream: str, data: bytes) -> None:
        buf = self._pending.get(stream, b"") + data
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            self._entry(stream, buf[:nl + 1])
            buf = buf[nl + 1:]
        while len(buf) >= PARTIAL_LIMIT:
            self._entry(stream, buf[:PARTIAL_LIMIT])
            buf = buf[PARTIAL_LIMIT:]
        self._pending[stream] = buf

    def _entry(self, stream: str, chunk: bytes) -> None:
        line = json.dumps({"log": chunk.decode("utf-8", "replace"), "stream": stream,
                           "time": now()}).encode() + b"\n"
        if self.max_size and self._size + len(line) > self.max_size and self._size > 0:
            self._rotate()
        self._file.write(line)
        self._size += len(line)

    def _rotate(self) -> None:
        self._file.close()
        if self.max_file == 1:
            self._file = open(self.path, "wb", buffering=0)  # noqa: SIM115
        else:
            for n in range(self.max_file - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{n}")
                source = self.path if n == 1 else self.path.with_name(f"{self.path.name}.{n - 1}")
                if source.exists():
                    os.replace(source, older)
            self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115
        self._size = 0

    def close(self) -> None:
        for stream, rest in self._pending.items():
            if rest:
                self._entry(stream, rest)
        self._pending.clear()
        self._file.close()


def log_files(path: Path) -> list[Path]:
    """The log and its rotated predecessors, oldest first."""
    rotated = []
    for candidate in path.parent.glob(f"{path.name}.*"):
        suffix = candidate.name[len(path.name) + 1:]
        if suffix.isascii() and suffix.isdigit():
            rotated.append((int(suffix), candidate))
    return [p for _, p in sorted(rotated, reverse=True)] + ([path] if path.exists() else [])


def _parse(line: bytes) -> dict[str, str] | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    if isinstance(entry, dict) and isinstance(entry.get("log"), str):
        return entry
    return None


def entries(path: Path, tail: int | None = None) -> list[dict[str, str]]:
    """Every entry (or the last ``tail``), oldest first."""
    out: deque[dict[str, str]] = deque(maxlen=tail if tail is not None and tail >= 0 else None)
    for f in log_files(path):
        try:
            with open(f, "rb") as fh:
                for line in fh:
                    entry = _parse(line)
                    if entry is not None:
                        out.append(entry)
        except FileNotFoundError:
            continue  # rotated away while we listed
    return list(out)


def follow(path: Path, running: Callable[[], bool], *, start_at_end: bool,
           poll: float = 0.1) -> Iterator[dict[str, str]]:
    """New entries as the monitor writes them, until the container has stopped and all is read."""
    fh = None
    inode = None
    while True:
        if fh is None:
            try:
                fh = open(path, "rb")  # noqa: SIM115 - closed below
                inode = os.fstat(fh.fileno()).st_ino
                if start_at_end:
                    fh.seek(0, os.SEEK_END)
                    start_at_end = False
            except FileNotFoundError:
                fh = None
        got = False
        if fh is not None:
            for line in iter(fh.readline, b""):
                if not line.endswith(b"\n"):
                    fh.seek(-len(line), os.SEEK_CUR)  # a line still being written
                    break
                entry = _parse(line)
                if entry is not None:
                    got = True
                    yield entry
            try:
                if os.stat(path).st_ino != inode:  # rotated: continue in the new file
                    fh.close()
                    fh = None
                    continue
            except FileNotFoundError:
                pass
        if not got:
            if not running():
                # One last read: the monitor may have written and exited since we looked.
                if fh is not None:
                    for line in fh:
                        entry = _parse(line)
                        if entry is not None:
                            yield entry
                    fh.close()
                return
            time.sleep(poll)
