"""Rootless unpacking for real: as a plain unprivileged user, and as root of a user namespace.

Each case runs ``python -m engine.layers apply`` under setpriv as ``stk-unpack`` (created by the
fixture with useradd) against a directory that user owns, then inspects the result as root.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess  # nosec B404 # setpriv/unshare with argument lists
import sys
import tarfile
from pathlib import Path

import pytest

from tests.engine.layers.builders import (Entry, directory, file, hardlink, layer, opaque, symlink,
                                          whiteout)
from tests.engine.layers.conftest import User

REPO = Path(__file__).resolve().parents[3]
# The venv's interpreter as invoked (its real path would lose the venv and its packages).
PYTHON = sys.executable
USERNS = ["unshare", "--user", "--map-auto", "--map-root-user"]  # 0 -> user, 1.. -> its subuids

pytestmark = pytest.mark.root

LAYER = [
    directory("./"), directory("etc"), file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
    whiteout("etc/motd"), directory("home"), directory("home/app", uid=1000, gid=1000, mode=0o750),
    file("home/app/.profile", b"export A=1\n", uid=1000, gid=1000),
    directory("bin"), file("bin/su", b"\x7fELF", mode=0o4755), hardlink("bin/su2", "bin/su"),
    symlink("bin/sh", "busybox"), directory("ro", mode=0o555), file("ro/inside", b"i", mode=0o444),
    directory("var"), directory("var/cache"), opaque("var/cache"), file("var/cache/new", b"n"),
    Entry("run/fifo", tarfile.FIFOTYPE, mode=0o600),
    Entry("dev/whiteout", tarfile.CHRTYPE, mode=0o600),  # a 0:0 char device: a whiteout, allowed
]


def run_as(user: User, workdir: Path, *argv: str, userns: bool = False,
           check: bool = True) -> subprocess.CompletedProcess[str]:
    prefix = ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--init-groups"]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(workdir), "PYTHONPATH": str(REPO),
           "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([*prefix, *(USERNS if userns else []), *argv],  # nosec B603
                          cwd=REPO, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{argv} failed ({proc.returncode}): {proc.stderr}")
    return proc


def unpack(user: User, workdir: Path, entries: list[Entry], dest: str, *extra: str,
           userns: bool = False, check: bool = True) -> subprocess.CompletedProcess[str]:
    blob = workdir / f"{dest}.tar.gz"
    blob.write_bytes(layer(entries))
    target = workdir / dest
    if not target.exists():
        run_as(user, workdir, "mkdir", str(target))
    return run_as(user, workdir, PYTHON, "-m", "engine.layers", "apply", "--rootless", *extra,
                  str(blob), str(target), userns=userns, check=check)


def test_plain_user_diff_layer(unprivileged_user: User, user_workdir: Path) -> None:
    user = unprivileged_user
    out = unpack(user, user_workdir, LAYER, "diff")
    assert json.loads(out.stdout)["entries"] == len(LAYER)
    d = user_workdir / "diff"
    owners = {(st.st_uid, st.st_gid) for st in (os.lstat(p) for p in [d, *d.rglob("*")])}
    assert owners == {(user.uid, user.gid)}  # no namespace: ownership stays the user's
    motd = os.lstat(d / "etc/motd")
    assert stat.S_ISCHR(motd.st_mode) and motd.st_rdev == 0
    assert os.getxattr(d / "var/cache", "user.overlay.opaque") == b"y"
    assert "trusted.overlay.opaque" not in os.listxattr(d / "var/cache")
    assert stat.S_IMODE(os.stat(d / "bin/su").st_mode) == 0o4755
    assert os.stat(d / "bin/su").st_ino == os.stat(d / "bin/su2").st_ino
    assert stat.S_IMODE(os.stat(d / "ro").st_mode) == 0o555
    assert stat.S_IMODE(os.stat(d / "home/app").st_mode) == 0o750
    assert stat.S_ISFIFO(os.lstat(d / "run/fifo").st_mode)


def test_plain_user_device_node_refused(unprivileged_user: User, user_workdir: Path) -> None:
    entries = [file("ok", b"x"), Entry("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0)]
    proc = unpack(unprivileged_user, user_workdir, entries, "dev", check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("stockade: error: layer entry 'dev/sda': block device 8:0 "
                                  "refused in rootless mode")


def test_plain_user_merge_into_read_only_directories(unprivileged_user: User,
                                                     user_workdir: Path) -> None:
    """The user must open up its own read-only directories to change them, then restore them."""
    user = unprivileged_user
    lower = [directory("ro", mode=0o555), file("ro/old", b"o"), directory("ro/sub", mode=0o500),
             file("ro/sub/f", b"f"), directory("locked", mode=0o500), file("locked/x", b"x")]
    unpack(user, user_workdir, lower, "root", "--mode", "merge")
    upper = [file("ro/new", b"n"), whiteout("ro/old"), whiteout("ro/sub"), opaque("locked")]
    unpack(user, user_workdir, upper, "root", "--mode", "merge")
    root = user_workdir / "root"
    assert sorted(os.listdir(root / "ro")) == ["new"]
    assert os.listdir(root / "locked") == []
    assert stat.S_IMODE(os.stat(root / "ro").st_mode) == 0o555
    assert stat.S_IMODE(os.stat(root / "locked").st_mode) == 0o500


def test_user_namespace_root_applies_ownership(unprivileged_user: User, user_workdir: Path) -> None:
    user = unprivileged_user
    unpack(user, user_workdir, LAYER, "ns", userns=True)
    d = user_workdir / "ns"
    outer_1000 = user.subuid_start + 1000 - 1  # inner 1 maps to the first subuid
    app = os.stat(d / "home/app")
    assert (app.st_uid, app.st_gid) == (outer_1000, outer_1000)
    assert os.stat(d / "home/app/.profile").st_uid == outer_1000
    assert os.stat(d / "etc/passwd").st_uid == user.uid  # inner root is the user
    assert stat.S_IMODE(os.stat(d / "bin/su").st_mode) == 0o4755  # chown did not eat the bit


def test_user_namespace_unmapped_owner_is_refused(unprivileged_user: User,
                                                  user_workdir: Path) -> None:
    entries = [directory("d", uid=5_000_000), file("far", b"x", uid=4_000_000, gid=0)]
    proc = unpack(unprivileged_user, user_workdir, entries, "unmapped", userns=True, check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("stockade: error: layer entry 'far': cannot give it owner "
                                  "4000000:0: Invalid argument (the user namespace does not map")
    entries = [directory("d", uid=5_000_000), file("d/f", b"x")]
    proc = unpack(unprivileged_user, user_workdir, entries, "unmapped-dir", userns=True, check=False)
    assert proc.stderr.startswith("stockade: error: layer entry 'd/': cannot set directory "
                                  "attributes: cannot give it owner 5000000:0")


def test_rootless_overlay_view_equals_merge(unprivileged_user: User, user_workdir: Path) -> None:
    """Diff layers made rootless, mounted by the user's own overlayfs (userxattr) in a user and
    mount namespace, show the tree the same user's merge mode builds."""
    user = unprivileged_user
    layers = [
        [directory("./"), directory("etc"), file("etc/motd", b"m"), file("etc/keep", b"k"),
         directory("var"), directory("var/cache"), file("var/cache/old", b"o")],
        [directory("./"), directory("etc"), whiteout("etc/motd"), directory("var"),
         directory("var/cache"), opaque("var/cache"), file("var/cache/new", b"n")],
    ]
    for i, entries in enumerate(layers):
        unpack(user, user_workdir, entries, f"diff{i}")
        unpack(user, user_workdir, entries, "merged", "--mode", "merge")
    run_as(user, user_workdir, "mkdir", str(user_workdir / "mnt"))
    lowerdir = f"{user_workdir / 'diff1'}:{user_workdir / 'diff0'}"
    script = (
        "import json, subprocess, sys\n"
        "from pathlib import Path\n"
        "from tests.engine.layers.tree import snapshot\n"
        "w = Path(sys.argv[1])\n"
        "subprocess.run(['mount', '-t', 'overlay', 'overlay', '-o',\n"
        "                'ro,userxattr,lowerdir=' + sys.argv[2], str(w / 'mnt')], check=True)\n"
        "print(json.dumps([snapshot(w / 'mnt'), snapshot(w / 'merged')], default=str))\n")
    proc = subprocess.run(["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}",  # nosec B603
                           "--init-groups", *USERNS, "--mount", PYTHON, "-c", script,
                           str(user_workdir), lowerdir],
                          cwd=REPO, capture_output=True, text=True,
                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(REPO),
                               "PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.returncode == 0, proc.stderr
    view, merged = json.loads(proc.stdout)
    assert view == merged
    assert sorted(view) == [".", "etc", "etc/keep", "var", "var/cache", "var/cache/new"]
