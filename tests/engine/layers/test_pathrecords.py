"""Deferred per-directory records: removal of an ancestor forgets them, re-creation revives."""

from __future__ import annotations

from engine.layers.pathrecords import PathRecords


def test_drop_tree_forgets_the_path_and_below_only() -> None:
    records: PathRecords[str] = PathRecords()
    for key in ("", "a", "a/b", "a/b/c", "ab", "x/y"):
        records.set(key, key.upper())
    records.drop_tree("a/b")
    assert dict(records.deepest_first()) == {"": "", "a": "A", "ab": "AB", "x/y": "X/Y"}
    assert "a/b/c" not in records and "a" in records


def test_a_record_made_after_the_removal_survives_it() -> None:
    records: PathRecords[int] = PathRecords()
    records.set("d/e", 1)
    records.drop_tree("d")
    records.set("d", 2)      # d re-created by a later entry
    records.set("d/f", 3)
    assert dict(records.deepest_first()) == {"d": 2, "d/f": 3}


def test_keep_first_and_order() -> None:
    records: PathRecords[int] = PathRecords()
    records.keep_first("p", 0o555)
    records.keep_first("p", 0o755)
    records.keep_first("p/q/r", 0o500)
    records.set("", 0o755)
    assert list(records.deepest_first()) == [("p/q/r", 0o500), ("p", 0o555), ("", 0o755)]
    records.drop_tree("p")
    records.keep_first("p", 0o700)  # a new directory at the same path: its own first mode
    assert dict(records.deepest_first())["p"] == 0o700
