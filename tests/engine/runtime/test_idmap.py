"""Subordinate id ranges and the maps a rootless or --userns=auto container gets."""

from __future__ import annotations

import pytest

from engine.runtime.idmap import IDMapError, SubRange, auto_block, parse_subid, rootless_mappings
from engine.spec import IDMapping

SUBUID = "alice:100000:65536\n1001:300000:1000\nbob:200000:65536\nbad line\ncarol:x:5\nroot:1000000:262144\n"


def test_parse_by_name_and_uid() -> None:
    assert parse_subid(SUBUID, ("alice", "1001")) == [SubRange(100000, 65536), SubRange(300000, 1000)]
    assert parse_subid(SUBUID, ("carol",)) == []


def test_rootless_maps() -> None:
    maps = rootless_mappings(1001, [SubRange(100000, 65536)], what="uid", user="alice")
    assert maps == [IDMapping(0, 1001, 1), IDMapping(1, 100000, 65536)]
    with pytest.raises(IDMapError, match="no subordinate uid range for user dave"):
        rootless_mappings(1002, [], what="uid", user="dave")


def test_auto_blocks_do_not_overlap() -> None:
    ranges = parse_subid(SUBUID, ("root",))
    first = auto_block(ranges, set())
    second = auto_block(ranges, {first})
    assert first == 1000000 and second == first + 65536
    with pytest.raises(IDMapError, match="no free block"):
        auto_block(ranges, {1000000, 1065536, 1131072, 1196608})
