"""Diff layers under a real overlayfs show exactly the tree merge mode builds from the same layers."""

from __future__ import annotations

import os
import subprocess  # nosec B404 # mount/umount with argument lists
from pathlib import Path

import pytest

from tests.engine.layers.builders import (Entry, directory, file, hardlink, layer, opaque, symlink,
                                          whiteout)
from tests.engine.layers.conftest import apply
from tests.engine.layers.tree import snapshot

pytestmark = pytest.mark.root

LAYERS: list[list[Entry]] = [
    [directory("./"), directory("etc"), file("etc/motd", b"hello"), file("etc/keep", b"keep"),
     directory("var"), directory("var/cache"), directory("var/cache/apt"),
     file("var/cache/apt/pkg", b"pkg"), file("var/cache/top", b"top"),
     directory("usr"), directory("usr/lib"), file("usr/lib/x", b"lib", mode=0o755),
     hardlink("usr/lib/y", "usr/lib/x"), symlink("lib", "usr/lib"),
     directory("tree"), directory("tree/deep"), file("tree/deep/f", b"f"),
     directory("opt"), directory("opt/a"), file("opt/a/b", b"b")],
    [directory("./"), directory("etc"), whiteout("etc/motd"),
     directory("var"), directory("var/cache"), opaque("var/cache"), file("var/cache/new", b"new"),
     whiteout("tree"), directory("opt"), file("opt/a", b"a is a file now"),
     directory("usr"), directory("usr/lib"), file("usr/lib/z", b"z")],
    [directory("./", mode=0o751), directory("etc"), file("etc/motd", b"back again"),
     directory("var"), whiteout("var/cache"), directory("tree"), file("tree/reborn", b"r"),
     directory("usr"), directory("usr/lib"), whiteout("usr/lib/y")],
]


def _mount_overlay(lowers: list[Path], target: Path) -> None:
    lowerdir = ":".join(str(p) for p in reversed(lowers))  # overlayfs lists the top layer first
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"ro,lowerdir={lowerdir}",  # nosec B603 B607
                    str(target)], check=True, capture_output=True)


def _without_link_counts(tree: dict[str, object]) -> dict[str, object]:
    """overlayfs reports a lower file's own link count (usr/lib/x still has y beside it in the
    lowest layer) where the merged tree has one link fewer: compare everything else."""
    return {path: {k: v for k, v in d.items() if k not in ("nlink", "link_group")}  # type: ignore[union-attr]
            for path, d in tree.items()}


def test_overlay_of_diff_layers_equals_merge(tmp_path: Path) -> None:
    diffs = []
    for i, entries in enumerate(LAYERS):
        d = tmp_path / f"diff{i}"
        d.mkdir()
        apply(layer(entries), d)
        diffs.append(d)
    merged = tmp_path / "merged"
    merged.mkdir()
    for entries in LAYERS:
        apply(layer(entries), merged, mode="merge")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    _mount_overlay(diffs, mnt)
    try:
        view = _without_link_counts(snapshot(mnt))
    finally:
        subprocess.run(["umount", str(mnt)], check=True)  # nosec B603 B607
    expected = _without_link_counts(snapshot(merged))
    assert view == expected
    # and the tree is what the three layers mean, not merely the same mistake twice
    assert sorted(p for p in expected if p != ".") == [
        "etc", "etc/keep", "etc/motd", "lib", "opt", "opt/a", "tree", "tree/reborn", "usr",
        "usr/lib", "usr/lib/x", "usr/lib/z", "var"]
    assert (merged / "etc/motd").read_bytes() == b"back again"
    assert os.stat(merged).st_mode & 0o777 == 0o751
