"""Apply one layer tarball to a directory: the OCI changeset rules, with every entry distrusted.

Two modes, one code path:

* ``diff``: ``dest`` is a fresh directory that becomes one overlayfs lower layer. A whiteout
  ``.wh.<name>`` becomes an overlay whiteout (a 0:0 character device, which an unprivileged user may
  create since Linux 5.8) and ``.wh..wh..opq`` the opaque xattr on its directory
  (``trusted.overlay.opaque``, or ``user.overlay.opaque`` for rootless ``userxattr`` mounts).
* ``merge``: ``dest`` is a whole root filesystem built from the layers below; whiteouts delete.

The OCI rules both modes keep (image-spec layer.md): whiteouts and opaque markers act only on what
lower layers put there, whatever their position in the archive; an entry over an existing path
replaces it, except that a directory over a directory keeps it and takes the new attributes. In
diff mode everything already in ``dest`` is this layer's; in merge mode the applier remembers which
paths this layer wrote (and their parents) so a late opaque marker spares them.

Order of work per entry, and why: the parent directory is reached through ``FsRoot`` (no symlink
leads out of the root); the final component is created with ``O_EXCL``/``O_NOFOLLOW`` semantics after
removing whatever was there (so no write ever lands in an existing inode, which could be a hardlink
to anything); file metadata is then set through the new file's own fd (owner before mode, because
chown clears set-id bits; times last). Directory modes and times wait until the end (children would
change the times, and a read-only mode would stop an unprivileged user filling the directory), and
are applied deepest first.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

from engine.layers.compression import DecompressedStream
from engine.layers.fsroot import FsRoot, join, proc_path
from engine.layers.model import LayerError, LayerStats, Mode, Refused, UnpackLimits
from engine.layers.pathrecords import PathRecords
from engine.layers.tarstream import (BLOCKDEV, CHARDEV, DIR, FIFO, FILE, HARDLINK, SYMLINK, TarEntry,
                                     TarReader)
from engine.layers.xattrs import allowed_xattrs, check_xattrs

_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_PATH_MAX = 4096  # longer names could not be opened in the container anyway
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
_AUFS_META = ".wh..wh."  # aufs bookkeeping (.wh..wh.plnk and the like): carries nothing to apply


def apply_layer(blob: BinaryIO, dest: Path, *, media_type: str, limits: UnpackLimits,
                rootless: bool = False, mode: Mode = "diff") -> LayerStats:
    """Apply the layer ``blob`` (compressed as ``media_type`` says) to the directory ``dest``.

    Raises LayerError naming the entry for anything refused; nothing is ever written outside
    ``dest``, but ``dest`` itself is left half-applied: unpack into a temporary directory and rename
    it into place on success (diff mode requires ``dest`` empty). ``rootless`` selects the rootless
    opaque xattr and refuses device nodes; ownership is applied whenever we run as uid 0 (real root
    or root of a user namespace) and skipped otherwise.
    """
    if mode not in ("diff", "merge"):
        raise ValueError(f"mode must be 'diff' or 'merge', not {mode!r}")
    dest = Path(dest)
    if mode == "diff":
        with os.scandir(dest) as it:
            if any(True for _ in it):
                raise ValueError(f"diff mode needs an empty directory, and {dest} is not")
    stream = DecompressedStream(blob, media_type, limits.max_bytes)
    applier = _Applier(dest, merge=mode == "merge", rootless=rootless,
                       max_entries=limits.max_entries)
    try:
        with stream:
            entries = applier.run(TarReader(stream.chunks()))
    finally:
        applier.close()
    return LayerStats(diff_id=stream.diff_id, size=stream.size, entries=entries)


def _umask() -> int | None:
    """The process umask, read without changing it (os.umask would, racing other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return None


def split_name(name: str, what: str = "path") -> list[str]:
    """An archive name as components; Refused for absolute names, ``..``, NUL or excess length."""
    if "\0" in name:
        raise Refused(f"{what} contains a NUL byte")
    if name.startswith("/"):
        raise Refused(f"absolute {what} refused")
    if len(name) * 4 >= _PATH_MAX and len(os.fsencode(name)) >= _PATH_MAX:  # <= 4 bytes a char
        raise Refused(f"{what} is longer than {_PATH_MAX - 1} bytes")
    parts = [p for p in name.split("/") if p and p != "."]
    if ".." in parts:
        raise Refused(f"{what} has a '..' component")
    return parts


class _Applier:
    def __init__(self, dest: Path, *, merge: bool, rootless: bool, max_entries: int) -> None:
        # uid 0 (real root or the root of a user namespace) may chown and set file capabilities;
        # anyone else keeps ownership as it comes, as rootless podman does without a namespace.
        self.privileged = os.geteuid() == 0
        self.root = FsRoot(dest, privileged=self.privileged)
        self.merge = merge
        self.rootless = rootless
        self.max_entries = max_entries
        self.opaque_xattr = "user.overlay.opaque" if rootless else "trusted.overlay.opaque"
        self.dirs: PathRecords[TarEntry | None] = PathRecords()  # metadata set at the end
        self.ours: set[str] = set()  # merge mode: paths this layer wrote, and their parents
        # Merge mode: directories an opaque marker already emptied of lower content. Nothing lower
        # can reappear during this layer, so none is walked twice (duplicate markers, nesting).
        self.cleaned: set[str] = set()
        # Syscalls saved per file (most of a layer): a file created with its final mode needs no
        # fchmod when the umask cannot have changed it, and one that would get our own ids needs no
        # fchown. The latter holds in diff mode only, where every directory is ours and none has
        # the set-gid bit until the end (checked on the root; "grpid" mounts inherit its group).
        self.umask = _umask()
        root = os.fstat(self.root.fd)
        self.own_ids = ((os.geteuid(), os.getegid())
                        if not merge and root.st_gid == os.getegid()
                        and not root.st_mode & stat.S_ISGID else None)

    def close(self) -> None:
        self.root.close()

    def run(self, reader: TarReader) -> int:
        count = 0
        entry: TarEntry | None = None
        try:
            for entry in reader.entries():
                count += 1
                if count > self.max_entries:
                    raise LayerError(f"layer entry {entry.name!r}: the layer has more than "
                                     f"{self.max_entries} entries (unpack.max_entries)")
                self.root.trim()
                try:
                    self._apply(entry, reader)
                except Refused as exc:
                    raise LayerError(f"layer entry {entry.name!r}: {exc}") from None
                except OSError as exc:
                    raise LayerError(f"layer entry {entry.name!r}: cannot apply: "
                                     f"{exc.strerror or exc}") from None
        except Refused as exc:
            where = f"after entry {entry.name!r}" if entry else "before the first entry"
            raise LayerError(f"layer: {exc} ({where})") from None
        self._finish_dirs()
        return count

    # --- one entry ------------------------------------------------------------------------------

    def _apply(self, e: TarEntry, reader: TarReader) -> None:
        parts = split_name(e.name)
        if not parts:
            if e.kind is not DIR:
                raise Refused(f"the layer root must be a directory, not a {e.kind}")
            self.dirs.set("", e)
            return
        base = parts.pop()
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(parts, base)
            return
        pfd, pkey = self.root.resolve_dir(parts, create=True)
        key = join(pkey, base)
        if self.merge:
            self._mark(pkey, key)
        kind = e.kind
        if kind is FILE:
            self._file(pfd, base, key, e, reader)
        elif kind is DIR:
            self._dir(pfd, base, key, e)
        elif kind is SYMLINK:
            self._symlink(pfd, base, key, e)
        elif kind is HARDLINK:
            self._hardlink(pfd, base, key, e)
        else:
            self._special(pfd, base, key, e)

    def _mark(self, pkey: str, key: str) -> None:
        """Remember that this layer wrote ``key`` inside ``pkey`` (merge mode's opaque needs it)."""
        ours = self.ours
        ours.add(key)
        while pkey and pkey not in ours:
            ours.add(pkey)
            pkey = pkey.rpartition("/")[0]

    def _clear(self, pfd: int, name: str, key: str) -> None:
        """Remove whatever is at ``name`` so the entry can be created afresh."""
        st = self.root.lstat(pfd, name)
        if st is not None:
            self._remove(pfd, name, key, st)

    def _remove(self, pfd: int, name: str, key: str, st: os.stat_result) -> None:
        if self.root.remove(pfd, name, key, st):
            self.dirs.drop_tree(key)

    def _file(self, pfd: int, base: str, key: str, e: TarEntry, reader: TarReader) -> None:
        mode = e.mode
        final_mode = self.umask is not None and not mode & (0o7000 | self.umask)
        create_mode = mode if final_mode else 0o600
        try:
            fd = os.open(base, _FILE_FLAGS, create_mode, dir_fd=pfd)
        except FileExistsError:
            self._clear(pfd, base, key)
            fd = os.open(base, _FILE_FLAGS, create_mode, dir_fd=pfd)
        try:
            if e.size:
                reader.copy_to(fd, e.size)
            if (e.uid, e.gid) != self.own_ids:
                self._chown(fd, e)
            if not final_mode:
                os.fchmod(fd, mode)
            if e.xattrs:
                for name, value in allowed_xattrs(e.xattrs, privileged=self.privileged):
                    os.setxattr(fd, name, value)
            os.utime(fd, ns=(e.atime_ns, e.mtime_ns))
        finally:
            os.close(fd)

    def _dir(self, pfd: int, base: str, key: str, e: TarEntry) -> None:
        try:
            os.mkdir(base, 0o700, dir_fd=pfd)
        except FileExistsError:
            st = self.root.lstat(pfd, base)
            if st is None or not stat.S_ISDIR(st.st_mode):
                self._clear(pfd, base, key)
                os.mkdir(base, 0o700, dir_fd=pfd)
        if e.xattrs:  # filtered now, so a refused attribute names this entry
            e.xattrs = dict(allowed_xattrs(e.xattrs, privileged=self.privileged))
        self.dirs.set(key, e)

    def _symlink(self, pfd: int, base: str, key: str, e: TarEntry) -> None:
        if "\0" in e.linkname:
            raise Refused("symlink target contains a NUL byte")
        if e.xattrs:
            check_xattrs(e.xattrs)
        try:
            os.symlink(e.linkname, base, dir_fd=pfd)
        except FileExistsError:
            self._clear(pfd, base, key)
            os.symlink(e.linkname, base, dir_fd=pfd)
        self._chown(base, e, dir_fd=pfd, follow_symlinks=False)
        os.utime(base, ns=(e.atime_ns, e.mtime_ns), dir_fd=pfd, follow_symlinks=False)

    def _hardlink(self, pfd: int, base: str, key: str, e: TarEntry) -> None:
        target = split_name(e.linkname, "hardlink target")
        if not target:
            raise Refused("hardlink to the layer root")
        # Clear first: the target may sit inside what this entry replaces, and must then vanish.
        self._clear(pfd, base, key)
        tbase = target.pop()
        tfd, _ = self.root.resolve_dir(target, create=False)
        st = self.root.lstat(tfd, tbase)
        if st is None:
            raise Refused(f"hardlink target {e.linkname!r} does not exist (a hardlink may only "
                          "point to an entry already applied)")
        if stat.S_ISDIR(st.st_mode):
            raise Refused(f"hardlink target {e.linkname!r} is a directory")
        os.link(tbase, base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)

    def _special(self, pfd: int, base: str, key: str, e: TarEntry) -> None:
        """Device nodes and FIFOs, created by mknod and then given their metadata through an O_PATH
        fd (opening a FIFO or a device for real could block or have effects)."""
        if e.kind is FIFO:
            kind, dev = stat.S_IFIFO, 0
        else:
            if self.rootless and (e.kind is BLOCKDEV or e.devmajor or e.devminor):
                raise Refused(f"{e.kind} {e.devmajor}:{e.devminor} refused in rootless mode")
            kind = stat.S_IFCHR if e.kind is CHARDEV else stat.S_IFBLK
            dev = os.makedev(e.devmajor, e.devminor)
        if e.xattrs:
            check_xattrs(e.xattrs)
        try:
            os.mknod(base, kind | 0o600, dev, dir_fd=pfd)
        except FileExistsError:
            self._clear(pfd, base, key)
            os.mknod(base, kind | 0o600, dev, dir_fd=pfd)
        fd = os.open(base, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
        try:
            path = proc_path(fd)
            self._chown(path, e)
            os.chmod(path, e.mode)
            os.utime(path, ns=(e.atime_ns, e.mtime_ns))
        finally:
            os.close(fd)

    def _chown(self, target: int | str, e: TarEntry, **kw: Any) -> None:
        """Give the entry its owner, when we may (uid 0); chown before chmod, as it clears set-id
        bits. An id the user namespace does not map is the common rootless failure: say so."""
        if not self.privileged:
            return
        try:
            os.chown(target, e.uid, e.gid, **kw)
        except OSError as exc:
            unmapped = " (the user namespace does not map that id)" if exc.errno == errno.EINVAL else ""
            raise Refused(f"cannot give it owner {e.uid}:{e.gid}: {exc.strerror}{unmapped}") from None

    # --- whiteouts ------------------------------------------------------------------------------

    def _whiteout(self, parent: list[str], base: str) -> None:
        if base != OPAQUE_MARKER and base.startswith(_AUFS_META):
            return
        pfd, pkey = self.root.resolve_dir(parent, create=True)
        if self.merge and pkey:
            self._mark(pkey.rpartition("/")[0], pkey)
        if base == OPAQUE_MARKER:
            self._opaque(pfd, pkey)
            return
        victim = base[len(WHITEOUT_PREFIX):]
        if victim in ("", ".", ".."):
            raise Refused(f"whiteout of {victim or 'nothing'!r} refused")
        key = join(pkey, victim)
        st = self.root.lstat(pfd, victim)
        if st is None:
            if not self.merge:
                os.mknod(victim, stat.S_IFCHR, os.makedev(0, 0), dir_fd=pfd)
            return
        if self.merge and key not in self.ours:  # (in diff mode all that exists is this layer's)
            self._remove(pfd, victim, key, st)
        elif stat.S_ISDIR(st.st_mode):  # this layer's own directory: hide only what is below
            vfd, _ = self.root.resolve_dir(key.split("/"), create=False)
            self._opaque(vfd, key)
        # else a file of this same layer, which stays: whiteouts act on lower layers only

    def _opaque(self, fd: int, key: str) -> None:
        """Hide everything lower layers put below the directory ``fd``."""
        if not self.merge:
            os.setxattr(proc_path(fd), self.opaque_xattr, b"y")
            return
        if key in self.cleaned:
            return
        todo = [(fd, key)]
        while todo:
            dfd, dkey = todo.pop()
            self.cleaned.add(dkey)
            for name in self.root.list_dir(dfd):
                ckey = join(dkey, name)
                st = self.root.lstat(dfd, name)
                if st is None:
                    continue
                if ckey not in self.ours:
                    self._remove(dfd, name, ckey, st)
                elif stat.S_ISDIR(st.st_mode) and ckey not in self.cleaned:
                    cfd, _ = self.root.resolve_dir(ckey.split("/"), create=False)
                    todo.append((cfd, ckey))

    # --- the end --------------------------------------------------------------------------------

    def _finish_dirs(self) -> None:
        """Directory owners, modes, xattrs and times, deepest first; then, for an unprivileged run,
        the modes of existing directories it had to open up."""
        if not self.merge and "" not in self.dirs:
            self.dirs.set("", None)  # a layer without a "./" entry still needs a usable root
        for key, e in self.dirs.deepest_first():
            self.root.trim()
            try:
                fd, _ = self.root.resolve_dir(key.split("/") if key else [], create=False)
                self._dir_attributes(proc_path(fd), e)
            except (Refused, OSError) as exc:
                what = f"layer entry {e.name!r}" if e else "layer root"
                why = exc.strerror if isinstance(exc, OSError) else exc
                raise LayerError(f"{what}: cannot set directory attributes: {why}") from None
        for key, mode in self.root.opened_up.deepest_first():
            if key not in self.dirs:
                try:
                    fd, _ = self.root.resolve_dir(key.split("/"), create=False)
                    os.chmod(proc_path(fd), mode)
                except (Refused, OSError) as exc:
                    raise LayerError(f"layer: cannot restore the mode of {key!r}: {exc}") from None

    def _dir_attributes(self, path: str, e: TarEntry | None) -> None:
        if e is None:
            os.chmod(path, 0o755)  # nosec B103 # a root dir is 0755
            return
        if (e.uid, e.gid) != self.own_ids:
            self._chown(path, e)
        os.chmod(path, e.mode)
        for name, value in (e.xattrs or {}).items():
            os.setxattr(path, name, value)
        os.utime(path, ns=(e.atime_ns, e.mtime_ns))
