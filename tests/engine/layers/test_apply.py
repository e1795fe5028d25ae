"""What a well-formed layer becomes: metadata, links, special files, whiteouts in both modes."""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from pathlib import Path

import pytest

from tests.engine.layers.builders import (DOCKER_GZIP, GZIP, MTIME, TAR, ZSTD, Entry, compress,
                                          directory, file, hardlink, layer, opaque, symlink,
                                          tar_bytes, whiteout, xattr)
from tests.engine.layers.conftest import Sandbox, apply
from tests.engine.layers.tree import remove_tree, snapshot

# A VFS_CAP_REVISION_2 file capability: cap_net_raw (bit 13) permitted, effective flag set.
CAP_NET_RAW = bytes.fromhex("0100000200200000000000000000000000000000")


def test_modes_owners_times_and_xattrs(sandbox: Sandbox) -> None:
    dest = sandbox.dest
    apply(layer([
        directory("srv", mode=0o2775, uid=1234, gid=5678, mtime=MTIME + 7),
        file("srv/setuid", b"#!/bin/sh\n", mode=0o4755, uid=0, gid=0),
        file("srv/setgid", b"x", mode=0o2711, uid=1234, gid=5678),
        file("srv/readonly", b"r", mode=0o400, pax={"mtime": "1600000000.123456789"}),
        directory("tmp", mode=0o1777),
        file("srv/ping", b"\x7fELF", mode=0o755,
             pax={**xattr("security.capability", CAP_NET_RAW), **xattr("user.note", b"kept"),
                  **xattr("security.selinux", b"system_u:object_r:bin_t:s0"),
                  **xattr("trusted.something", b"dropped")}),
        directory("ro", mode=0o555, pax=xattr("user.dir", b"1")),
        file("ro/inside", b"written before ro/ got its mode"),
    ]), dest)
    srv = os.stat(dest / "srv")
    assert (stat.S_IMODE(srv.st_mode), srv.st_uid, srv.st_gid) == (0o2775, 1234, 5678)
    assert srv.st_mtime_ns == (MTIME + 7) * 10**9  # set after its children were written
    assert stat.S_IMODE(os.stat(dest / "srv/setuid").st_mode) == 0o4755
    setgid = os.stat(dest / "srv/setgid")
    assert (stat.S_IMODE(setgid.st_mode), setgid.st_uid, setgid.st_gid) == (0o2711, 1234, 5678)
    readonly = os.stat(dest / "srv/readonly")
    assert stat.S_IMODE(readonly.st_mode) == 0o400
    assert readonly.st_mtime_ns == 1_600_000_000_123_456_789
    assert stat.S_IMODE(os.stat(dest / "tmp").st_mode) == 0o1777
    ping = dest / "srv/ping"
    assert sorted(os.listxattr(ping)) == ["security.capability", "user.note"]
    assert os.getxattr(ping, "security.capability") == CAP_NET_RAW
    assert os.getxattr(ping, "user.note") == b"kept"
    assert stat.S_IMODE(os.stat(dest / "ro").st_mode) == 0o555
    assert os.getxattr(dest / "ro", "user.dir") == b"1"
    assert (dest / "ro/inside").read_bytes() == b"written before ro/ got its mode"


def test_hardlinks_stay_hardlinks(sandbox: Sandbox) -> None:
    dest = sandbox.dest
    apply(layer([directory("bin"), file("bin/gzip", b"gzip binary", mode=0o755),
                 hardlink("bin/gunzip", "bin/gzip"), directory("usr/bin"),
                 hardlink("usr/bin/zcat", "./bin/gzip")]), dest)
    inodes = {os.stat(dest / p).st_ino for p in ("bin/gzip", "bin/gunzip", "usr/bin/zcat")}
    assert len(inodes) == 1
    assert os.stat(dest / "bin/gzip").st_nlink == 3


def test_symlinks_fifos_and_devices(sandbox: Sandbox) -> None:
    dest = sandbox.dest
    apply(layer([
        symlink("abs", "/usr/lib/os-release", uid=7, gid=8, mtime=MTIME + 3),
        symlink("dangling", "nowhere/at/all"),
        symlink("up", "../../../../escapes/but/is/only/data"),
        Entry("fifo", tarfile.FIFOTYPE, mode=0o620, uid=5, gid=6),
        Entry("dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3),
        Entry("dev/loop0", tarfile.BLKTYPE, mode=0o660, devmajor=7, devminor=0, gid=6),
    ]), dest)
    link = os.lstat(dest / "abs")
    assert os.readlink(dest / "abs") == "/usr/lib/os-release"
    assert (link.st_uid, link.st_gid, link.st_mtime_ns) == (7, 8, (MTIME + 3) * 10**9)
    assert os.readlink(dest / "up") == "../../../../escapes/but/is/only/data"
    fifo = os.lstat(dest / "fifo")
    assert stat.S_ISFIFO(fifo.st_mode) and stat.S_IMODE(fifo.st_mode) == 0o620
    assert (fifo.st_uid, fifo.st_gid) == (5, 6)
    null = os.lstat(dest / "dev/null")
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(null.st_mode) == 0o666
    loop = os.lstat(dest / "dev/loop0")
    assert stat.S_ISBLK(loop.st_mode) and loop.st_rdev == os.makedev(7, 0) and loop.st_gid == 6


def test_symlinked_directories_inside_the_root_are_followed(sandbox: Sandbox) -> None:
    """usrmerge: ``lib -> usr/lib``; a later write to lib/x lands in usr/lib/x."""
    dest = sandbox.dest
    apply(layer([directory("usr/lib"), symlink("lib", "usr/lib"),
                 directory("usr/share/doc"), symlink("usr/lib/doc", "../share/doc")]), dest,
          mode="merge")
    apply(layer([file("lib/libc.so", b"elf"), file("lib/doc/README", b"read me"),
                 symlink("usr/lib/top", "../.."), file("lib/top/at-root", b"r")]), dest,
          mode="merge")
    assert (dest / "usr/lib/libc.so").read_bytes() == b"elf"
    assert (dest / "usr/share/doc/README").read_bytes() == b"read me"
    assert (dest / "at-root").read_bytes() == b"r"
    assert os.path.islink(dest / "lib")


def test_entries_replace_each_other(sandbox: Sandbox) -> None:
    """Later entries win: a file over a directory (with children), a directory over a file, a
    symlink over a file; a directory over a directory keeps its children and takes new modes."""
    dest = sandbox.dest
    apply(layer([
        directory("was_dir"), file("was_dir/child", b"gone"), file("was_dir", b"now a file"),
        file("was_file", b"gone"), directory("was_file", mode=0o750),
        file("was_target", b"gone"), symlink("was_target", "elsewhere"),
        directory("kept", mode=0o700), file("kept/child", b"stays"), directory("kept", mode=0o711),
    ]), dest)
    assert (dest / "was_dir").read_bytes() == b"now a file"
    assert stat.S_IMODE(os.stat(dest / "was_file").st_mode) == 0o750
    assert os.readlink(dest / "was_target") == "elsewhere"
    assert (dest / "kept/child").read_bytes() == b"stays"
    assert stat.S_IMODE(os.stat(dest / "kept").st_mode) == 0o711


def test_merge_replaces_across_layers(sandbox: Sandbox) -> None:
    dest = sandbox.dest
    apply(layer([directory("a"), file("a/x", b"1"), file("b", b"file"), directory("c"),
                 file("c/keep", b"lower")]), dest, mode="merge")
    apply(layer([file("a", b"a is a file now"), directory("b"), file("b/y", b"2"),
                 directory("c", mode=0o701), file("c/new", b"upper")]), dest, mode="merge")
    assert (dest / "a").read_bytes() == b"a is a file now"
    assert (dest / "b/y").read_bytes() == b"2"
    assert sorted(os.listdir(dest / "c")) == ["keep", "new"]
    assert stat.S_IMODE(os.stat(dest / "c").st_mode) == 0o701


def test_names_long_pax_gnu_and_unicode(sandbox: Sandbox) -> None:
    dest = sandbox.dest
    deep = "/".join(["segment-%02d" % i for i in range(30)]) + "/" + "n" * 250
    names = [deep, "ünïcødé/文件.txt", "emoji/🐳.txt", "space dir/with space"]
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        target = dest / str(fmt)
        target.mkdir()
        apply(layer([file(n, n.encode()) for n in names], fmt=fmt), target, mode="merge")
        for n in names:
            assert (target / n).read_bytes() == n.encode()


def test_non_utf8_names_are_kept_as_bytes(sandbox: Sandbox) -> None:
    raw = b"latin1-\xe9t\xe9"
    entry = file(raw.decode("utf-8", "surrogateescape"), b"x")
    apply(layer([entry], fmt=tarfile.GNU_FORMAT), sandbox.dest)
    assert os.listdir(os.fsencode(sandbox.dest)) == [raw]


@pytest.mark.parametrize("media_type", [GZIP, ZSTD, TAR, DOCKER_GZIP,
                                        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"])
def test_every_media_type_gives_the_same_tree(tmp_path: Path, media_type: str) -> None:
    entries = [directory("etc"), file("etc/hostname", b"box\n"), symlink("etc/mtab", "/proc/mounts"),
               directory("bin"), file("bin/sh", os.urandom(100_000), mode=0o755)]
    raw = tar_bytes([directory("./"), *entries])
    reference, dest = tmp_path / "ref", tmp_path / "dest"
    reference.mkdir()
    dest.mkdir()
    apply(raw, reference, media_type=TAR)
    stats = apply(compress(raw, media_type), dest, media_type=media_type)
    assert stats.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert snapshot(dest) == snapshot(reference)


def test_root_directory_mode(tmp_path: Path) -> None:
    """Diff mode: the layer's ``./`` entry sets dest's mode; without one dest becomes 0755 (an
    overlay layer's root must be traversable, whatever mode the temporary directory had)."""
    with_root, without = tmp_path / "with", tmp_path / "without"
    with_root.mkdir(mode=0o700)
    without.mkdir(mode=0o700)
    apply(layer([directory("./", mode=0o751), file("a", b"x")]), with_root)
    apply(layer([file("a", b"x")]), without)
    assert stat.S_IMODE(os.stat(with_root).st_mode) == 0o751
    assert stat.S_IMODE(os.stat(without).st_mode) == 0o755


def test_implicit_parents_are_0755(sandbox: Sandbox) -> None:
    old = os.umask(0o077)
    try:
        apply(layer([file("a/b/c", b"x")]), sandbox.dest)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(sandbox.dest / "a/b").st_mode) == 0o755


# --- whiteouts ----------------------------------------------------------------------------------

def _is_whiteout(path: Path) -> bool:
    st = os.lstat(path)
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


@pytest.mark.parametrize(("rootless", "xattr_name"),
                         [(False, "trusted.overlay.opaque"), (True, "user.overlay.opaque")])
def test_diff_mode_whiteouts_become_overlay_whiteouts(sandbox: Sandbox, rootless: bool,
                                                      xattr_name: str) -> None:
    dest = sandbox.dest
    apply(layer([directory("etc"), whiteout("etc/motd"), directory("var/cache"),
                 file("var/cache/new", b"n"), opaque("var/cache"), whiteout("gone-dir"),
                 Entry("etc/.wh..wh.plnk")]), dest, rootless=rootless)
    assert _is_whiteout(dest / "etc/motd")
    assert _is_whiteout(dest / "gone-dir")
    assert os.getxattr(dest / "var/cache", xattr_name) == b"y"
    assert (dest / "var/cache/new").read_bytes() == b"n"
    assert not list(dest.rglob(".wh.*"))  # markers never materialise as files


def test_diff_mode_whiteout_spares_this_layers_own_entries(sandbox: Sandbox) -> None:
    """Whiteouts act on lower layers only (image-spec): a file of the same layer stays; a
    directory of the same layer stays and becomes opaque (hiding only the lower one's content)."""
    dest = sandbox.dest
    apply(layer([file("same", b"mine"), whiteout("same"), directory("d"), file("d/mine", b"m"),
                 whiteout("d")]), dest)
    assert (dest / "same").read_bytes() == b"mine"
    assert (dest / "d/mine").read_bytes() == b"m"
    assert os.getxattr(dest / "d", "trusted.overlay.opaque") == b"y"


def test_merge_mode_whiteouts_delete(sandbox: Sandbox) -> None:
    dest = sandbox.dest
    apply(layer([directory("etc"), file("etc/motd", b"hi"), file("etc/keep", b"k"),
                 directory("var/cache/apt"), file("var/cache/apt/pkg", b"p"),
                 file("var/cache/top", b"t"), directory("tree/deep/er"),
                 file("tree/deep/er/f", b"f")]), dest, mode="merge")
    apply(layer([directory("etc"), whiteout("etc/motd"), whiteout("tree"),
                 whiteout("etc/never-existed")]), dest, mode="merge")
    assert sorted(os.listdir(dest / "etc")) == ["keep"]
    assert not (dest / "tree").exists()


@pytest.mark.parametrize("marker_first", [True, False])
def test_merge_mode_opaque_spares_this_layer_whatever_the_order(sandbox: Sandbox,
                                                                marker_first: bool) -> None:
    """image-spec: the opaque marker applies before the layer's own entries, wherever it stands."""
    dest = sandbox.dest
    apply(layer([directory("a/b/c"), file("a/b/c/bar", b"lower"), file("a/old", b"lower"),
                 symlink("a/link", "b")]), dest, mode="merge")
    upper = [directory("a"), directory("a/b"), directory("a/b/c"), file("a/b/c/foo", b"upper")]
    entries = [upper[0], opaque("a"), *upper[1:]] if marker_first else [*upper, opaque("a")]
    apply(layer(entries), dest, mode="merge")
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == [
        "a", "a/b", "a/b/c", "a/b/c/foo"]


def test_merge_whiteout_spares_this_layers_file(sandbox: Sandbox) -> None:
    dest = sandbox.dest
    apply(layer([file("f", b"lower")]), dest, mode="merge")
    apply(layer([file("f", b"upper"), whiteout("f")]), dest, mode="merge")
    assert (dest / "f").read_bytes() == b"upper"


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o000])
def test_file_modes_do_not_depend_on_the_umask(sandbox: Sandbox, umask: int) -> None:
    old = os.umask(umask)
    try:
        apply(layer([file("rw", b"x", mode=0o666), file("ro", b"x", mode=0o444),
                      file("none", b"x", mode=0o000), file("s", b"x", mode=0o6755)]), sandbox.dest)
    finally:
        os.umask(old)
    modes = {p: stat.S_IMODE(os.stat(sandbox.dest / p).st_mode) for p in ("rw", "ro", "none", "s")}
    assert modes == {"rw": 0o666, "ro": 0o444, "none": 0o000, "s": 0o6755}


def test_deep_and_wide_trees_bound_the_open_fds(sandbox: Sandbox) -> None:
    """1,200 nested directories and 600 sibling ones exceed both fd-cache bounds; every fd is
    closed at the end and the tree is whole."""
    deep = "/".join(["d"] * 1200)
    entries = [file(f"{deep}/bottom", b"b"), symlink(f"{deep}/up", "/".join([".."] * 1199)),
               file(f"{deep}/up/d/via-link", b"v"),
               *[file(f"wide/{i:03d}/f", b"w") for i in range(600)], file(f"{deep}/again", b"a")]
    before = len(os.listdir("/proc/self/fd"))
    try:
        apply(layer(entries), sandbox.dest)
        assert len(os.listdir("/proc/self/fd")) == before
        assert (sandbox.dest / deep / "bottom").read_bytes() == b"b"
        assert (sandbox.dest / deep / "again").read_bytes() == b"a"
        assert (sandbox.dest / "d/d/via-link").read_bytes() == b"v"  # up is the first d
        assert len(os.listdir(sandbox.dest / "wide")) == 600
    finally:
        remove_tree(sandbox.dest)  # pytest's own cleanup cannot remove 1,200 levels (tree.remove_tree)
