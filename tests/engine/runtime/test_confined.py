"""``confined.open_dir``: directories resolved and made inside a root, on a scratch root (no privileges)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.runtime import confined
from engine.runtime import syscalls as sc


def _made(root: Path, path: str) -> str:
    fd = confined.open_dir(sc.default(), str(root), path)
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def test_symlinks_resolve_against_the_root_even_below_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "srv").mkdir(parents=True)
    (root / "a").mkdir()
    (root / "a" / "b").symlink_to("/srv")  # absolute, one level down: the root's /srv, not /a/srv
    (root / "up").symlink_to("/../../..")
    assert _made(root, "/a/b/new/deeper") == str(root / "srv" / "new" / "deeper")
    assert _made(root, "/up/x") == str(root / "x")  # ".." stops at the root
    assert not (tmp_path / "x").exists() and not (tmp_path / "srv").exists()


def test_a_dangling_symlink_is_not_made_through(tmp_path: Path) -> None:
    # (magic links are refused by RESOLVE_NO_MAGICLINKS: test_escapes shows it in real containers)
    root = tmp_path / "root"
    root.mkdir()
    (root / "dangling").symlink_to("/../nowhere")
    with pytest.raises(FileExistsError):
        _made(root, "/dangling/sub")
    assert not (tmp_path / "nowhere").exists() and not (root / "nowhere").exists()
