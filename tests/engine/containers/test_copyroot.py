"""The copy driver applies overlay-form layers: whiteouts, opaque directories, never through symlinks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.containers.copyroot import copy_layers


def _whiteout(path: Path) -> None:
    os.mknod(path, 0o600 | 0o020000, os.makedev(0, 0))


@pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts are device nodes and trusted xattrs")
def test_whiteouts_opaque_and_symlinks(tmp_path: Path) -> None:
    low, up, dest = tmp_path / "low", tmp_path / "up", tmp_path / "dest"
    (low / "etc").mkdir(parents=True)
    (low / "etc/passwd").write_text("root\n")
    (low / "gone").write_text("x")
    (low / "opaque/old").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (low / "escape").symlink_to(outside)
    (up / "opaque").mkdir(parents=True)
    os.setxattr(up / "opaque", "trusted.overlay.opaque", b"y")
    (up / "opaque/new").write_text("n")
    _whiteout(up / "gone")
    (up / "escape").mkdir()  # replaces the symlink; must not write into `outside`
    (up / "escape/file").write_text("in")
    os.chmod(up / "escape/file", 0o640)
    copy_layers([low, up], dest)
    assert (dest / "etc/passwd").read_text() == "root\n"
    assert not (dest / "gone").exists()
    assert sorted(os.listdir(dest / "opaque")) == ["new"]
    assert (dest / "escape").is_dir() and not (dest / "escape").is_symlink()
    assert list(outside.iterdir()) == []
    assert oct((dest / "escape/file").stat().st_mode & 0o777) == "0o640"
    assert b"overlay" not in b"".join(n.encode() for n in os.listxattr(dest / "opaque"))
