"""Fixtures for the unpacking tests: a destination beside a sentinel tree that must never change."""

from __future__ import annotations

import io
import os
import pwd
import shutil
import subprocess  # nosec B404 # useradd/userdel with argument lists
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from engine.layers import LayerStats, UnpackLimits, apply_layer
from tests.engine.layers.builders import GZIP
from tests.engine.layers.tree import depth, snapshot

LIMITS = UnpackLimits(max_bytes=64 * 1024 * 1024, max_entries=10_000)


def apply(data: bytes, dest: Path, *, media_type: str = GZIP, mode: str = "diff",
          rootless: bool = False, limits: UnpackLimits = LIMITS) -> LayerStats:
    return apply_layer(io.BytesIO(data), dest, media_type=media_type, limits=limits,
                       rootless=rootless, mode=mode)  # type: ignore[arg-type]


@dataclass
class Sandbox:
    """``dest`` to unpack into, and ``outside``: a sibling tree (a secret file, an etc/ directory)
    that an escaping entry would hit. ``assert_untouched`` proves nothing outside ``dest`` changed."""

    root: Path
    dest: Path
    outside: Path
    before: dict[str, object]

    def assert_untouched(self) -> None:
        assert snapshot(self.root, skip=("dest",)) == self.before


MAX_LEFT_DEPTH = 100


@pytest.fixture(autouse=True)
def leaves_no_deep_tree(tmp_path: Path) -> Iterator[None]:
    """A test may build trees ~1,000 levels deep, but must remove them (``tree.remove_tree``): pytest
    deletes old temp directories with Python 3.11's recursive rmtree, whose RecursionError then
    fails a later session after every test passed."""
    yield
    found = depth(tmp_path, MAX_LEFT_DEPTH)
    assert found <= MAX_LEFT_DEPTH, f"the test left a tree over {MAX_LEFT_DEPTH} levels deep in {tmp_path}"


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    root = tmp_path / "sandbox"
    dest = root / "dest"
    outside = root / "outside"
    (outside / "etc").mkdir(parents=True)
    (outside / "secret").write_text("keep me\n")
    (outside / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    dest.mkdir()
    return Sandbox(root, dest, outside, snapshot(root, skip=("dest",)))


@dataclass
class User:
    """An unprivileged account for rootless tests, with its /etc/subuid range."""

    name: str
    uid: int
    gid: int
    subuid_start: int


def _subid_start(name: str, path: str = "/etc/subuid") -> int:
    for line in Path(path).read_text().splitlines():
        owner, start, _ = line.split(":")
        if owner == name:
            return int(start)
    raise AssertionError(f"{name} has no range in {path}")


@pytest.fixture(scope="session")
def unprivileged_user() -> Iterator[User]:
    """``stk-unpack``: created with useradd (which also gives it a subuid range) for this session
    unless it exists already, and removed afterwards if this session created it."""
    name = "stk-unpack"
    try:
        pw = pwd.getpwnam(name)
        created = False
    except KeyError:
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", name],  # nosec B603 B607
                       check=True, capture_output=True)
        pw = pwd.getpwnam(name)
        created = True
    try:
        yield User(name, pw.pw_uid, pw.pw_gid, _subid_start(name))
    finally:
        if created:
            subprocess.run(["userdel", name], check=True, capture_output=True)  # nosec B603 B607


@pytest.fixture
def user_workdir(unprivileged_user: User) -> Iterator[Path]:
    """A directory the unprivileged user owns, on a path it can reach (pytest's tmp_path is 0700)."""
    workdir = Path(tempfile.mkdtemp(prefix="stockade-rootless-", dir="/var/tmp"))
    os.chmod(workdir, 0o755)
    os.chown(workdir, unprivileged_user.uid, unprivileged_user.gid)
    try:
        yield workdir
    finally:
        shutil.rmtree(workdir)  # as root: read-only directories the test made are no obstacle
