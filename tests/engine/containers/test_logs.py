"""json-file logs: Docker's format, size rotation, tail, and follow across a rotation."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Iterable

from engine.containers.logs import PARTIAL_LIMIT, JsonFileWriter, entries, follow, log_files


def _write_stdout(path: Path, chunks: Iterable[str], *, max_size: int, max_file: int) -> None:
    """Each chunk written to stdout through one writer, which is then closed."""
    w = JsonFileWriter(path, max_size=max_size, max_file=max_file)
    for chunk in chunks:
        w.write("stdout", chunk.encode())
    w.close()


def test_lines_streams_and_partials(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    w = JsonFileWriter(path, max_size=0, max_file=1)
    w.write("stdout", b"one\ntw")
    w.write("stderr", b"err\n")
    w.write("stdout", b"o\n")
    w.write("stdout", b"no newline")
    w.close()
    got = [(e["stream"], e["log"]) for e in entries(path)]
    assert got == [("stdout", "one\n"), ("stderr", "err\n"), ("stdout", "two\n"), ("stdout", "no newline")]
    first = json.loads(path.read_text().splitlines()[0])
    assert set(first) == {"log", "stream", "time"} and first["time"].endswith("Z")


def test_long_lines_are_split(tmp_path: Path) -> None:
    _write_stdout(tmp_path / "l.log", ["x" * (PARTIAL_LIMIT * 2 + 5)], max_size=0, max_file=1)
    assert [len(e["log"]) for e in entries(tmp_path / "l.log")] == [PARTIAL_LIMIT, PARTIAL_LIMIT, 5]


def test_rotation_keeps_max_file(tmp_path: Path) -> None:
    path = tmp_path / "r.log"
    _write_stdout(path, (f"line {i}\n" for i in range(100)), max_size=200, max_file=3)
    files = log_files(path)
    assert [f.name for f in files] == ["r.log.2", "r.log.1", "r.log"]
    assert all(f.stat().st_size <= 200 for f in files)
    lines = [e["log"] for e in entries(path)]
    assert lines[-1] == "line 99\n" and "line 0\n" not in lines  # the oldest were dropped
    assert [e["log"] for e in entries(path, tail=2)] == ["line 98\n", "line 99\n"]
    assert entries(path, tail=0) == []


def test_single_file_truncates(tmp_path: Path) -> None:
    path = tmp_path / "s.log"
    _write_stdout(path, (f"{i}\n" for i in range(20)), max_size=150, max_file=1)
    assert log_files(path) == [path] and path.stat().st_size <= 150


def test_follow_survives_rotation(tmp_path: Path) -> None:
    path = tmp_path / "f.log"
    w = JsonFileWriter(path, max_size=120, max_file=2)
    done = threading.Event()

    def produce() -> None:
        for i in range(30):
            w.write("stdout", f"n{i}\n".encode())
            time.sleep(0.005)
        w.close()
        done.set()

    t = threading.Thread(target=produce)
    t.start()
    seen = [e["log"] for e in follow(path, lambda: not done.is_set(), start_at_end=False, poll=0.01)]
    t.join()
    numbers = [int(s[1:]) for s in seen]
    assert numbers == sorted(numbers) and numbers[-1] == 29
