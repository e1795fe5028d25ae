"""Cache entry files: what counts as a hit, what is a miss, and that nothing here ever raises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cachefiles import content_key, read_entry, write_entry

EXPECT = {"format": 1, "key": "k"}


def test_the_key_is_canonical() -> None:
    assert content_key({"a": 1, "b": [1, 2]}) == content_key({"b": [1, 2], "a": 1})
    assert content_key({"a": 1}) != content_key({"a": 2})
    assert content_key({"p": Path("/x")}) == content_key({"p": "/x"})  # other values as their text


def test_an_entry_round_trips_with_owner_only_modes(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "k.json"
    write_entry(path, {**EXPECT, "expires": 2000.0, "result": {"ok": True}})
    assert read_entry(path, expect=EXPECT, now=1000.0) == {**EXPECT, "expires": 2000.0, "result": {"ok": True}}
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700


def test_an_expired_entry_is_a_miss_and_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    write_entry(path, {**EXPECT, "expires": 2000.0})
    assert read_entry(path, expect=EXPECT, now=2000.0) is None
    assert not path.exists()


@pytest.mark.parametrize("content", [
    b"{", b"[]", b"\xff",
    json.dumps({"format": 2, "key": "k", "expires": 2000.0}).encode(),   # another format
    json.dumps({"format": 1, "key": "x", "expires": 2000.0}).encode(),   # not the entry asked for
    json.dumps({"format": 1, "key": "k", "expires": "soon"}).encode(),
    json.dumps({"format": 1, "key": "k"}).encode(),
    json.dumps({"format": 1, "key": "k", "expires": 2000.0, "pad": "x" * 200}).encode(),  # over the bound
], ids=["truncated", "not-an-object", "not-utf8", "format", "key", "expiry-text", "no-expiry",
        "oversized"])
def test_anything_unusable_is_a_miss(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "k.json"
    path.write_bytes(content)
    assert read_entry(path, expect=EXPECT, now=1000.0, max_bytes=200) is None
    assert read_entry(tmp_path / "missing.json", expect=EXPECT, now=1000.0) is None


def test_a_failed_write_is_no_entry_and_no_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    write_entry(blocker / "k.json", {**EXPECT, "expires": 2000.0})
    assert blocker.read_text() == "not a directory"
