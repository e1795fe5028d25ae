"""How checks read a machine: files, /proc and /sys under a root directory, and commands.

Every host check reads through a ``HostView`` and a ``CommandRunner`` instead of touching ``/`` or
``subprocess`` itself, so the same checks grade the running host (root ``/``), a host filesystem
mounted elsewhere (``--host-root``), or a fixture tree in a test, without privileges.
"""

from __future__ import annotations

import os
import shutil
import stat as stat_mod
import subprocess  # nosec B404 # argument lists only, fixed programs (auditctl)
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Mapping, Protocol, Sequence

from hardening.audit.model import CheckError


@dataclass(frozen=True)
class FileInfo:
    """The parts of stat(2) the file checks compare."""

    path: str  # as the host sees it (absolute, without the view's root)
    mode: int  # permission bits only (mode & 0o7777)
    uid: int
    gid: int
    kind: str  # file | dir | link | socket | fifo | char | block

    def mode_text(self) -> str:
        return f"{self.mode:04o}"


@dataclass(frozen=True)
class Mount:
    """One line of /proc/self/mountinfo."""

    point: str
    fstype: str
    source: str
    options: str


_KINDS = ((stat_mod.S_ISDIR, "dir"), (stat_mod.S_ISREG, "file"), (stat_mod.S_ISLNK, "link"),
          (stat_mod.S_ISSOCK, "socket"), (stat_mod.S_ISFIFO, "fifo"), (stat_mod.S_ISCHR, "char"),
          (stat_mod.S_ISBLK, "block"))


def _unescape_mount(text: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (``\\040``)."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        text = text.replace(code, char)
    return text


class HostView:
    """A host's filesystem seen from ``root``.

    ``owners`` overrides the owner of named paths: a fixture tree built by an unprivileged test
    cannot chown its files to root, yet the checks must compare ownership. It is empty for a real
    host. ``live`` says whether commands (``auditctl``) describe this tree's kernel: true for ``/``,
    false for a host disk mounted elsewhere, and true for a fixture paired with a fake runner.
    """

    def __init__(self, root: str | os.PathLike[str] = "/",
                 owners: Mapping[str, tuple[int, int]] | None = None,
                 live: bool | None = None) -> None:
        self.root = Path(root)
        self.owners = dict(owners or {})
        self.live = self.root == Path("/") if live is None else live

    def path(self, host_path: str | os.PathLike[str]) -> Path:
        """The real path of ``host_path`` under the root; ``..`` cannot climb out of it."""
        parts = [p for p in PurePosixPath("/", host_path).parts[1:] if p not in ("", ".")]
        clean: list[str] = []
        for part in parts:
            if part == "..":
                if clean:
                    clean.pop()
            else:
                clean.append(part)
        return self.root.joinpath(*clean)

    def read_text(self, host_path: str | os.PathLike[str], limit: int = 4 * 1024 * 1024) -> str | None:
        """The file's text, or None when it does not exist; other failures raise CheckError."""
        chunks: list[bytes] = []
        size = 0
        try:
            # Small reads: /proc/sys handlers allocate the whole requested size and fail on a big one.
            with open(self.path(host_path), "rb", buffering=0) as f:
                while size < limit and (chunk := f.read(min(65536, limit - size))):
                    chunks.append(chunk)
                    size += len(chunk)
            return b"".join(chunks).decode("utf-8", "replace")
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise CheckError(f"cannot read {host_path}: {exc.strerror}") from None

    def stat(self, host_path: str | os.PathLike[str], follow: bool = True) -> FileInfo | None:
        """Mode, owner and kind of ``host_path``, or None when it does not exist."""
        real = self.path(host_path)
        try:
            st = real.stat() if follow else real.lstat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise CheckError(f"cannot stat {host_path}: {exc.strerror}") from None
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "other")
        key = str(PurePosixPath("/", host_path))
        uid, gid = self.owners.get(key, (st.st_uid, st.st_gid))
        return FileInfo(key, stat_mod.S_IMODE(st.st_mode), uid, gid, kind)

    def listdir(self, host_path: str | os.PathLike[str]) -> list[str]:
        """Sorted names in a directory; [] when it does not exist."""
        try:
            return sorted(os.listdir(self.path(host_path)))
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise CheckError(f"cannot list {host_path}: {exc.strerror}") from None

    def walk(self, host_path: str | os.PathLike[str], max_depth: int = 3) -> list[FileInfo]:
        """Every entry below ``host_path`` (not following links), at most ``max_depth`` levels down."""
        out: list[FileInfo] = []
        base = str(PurePosixPath("/", host_path))
        pending = [(base, 0)]
        while pending:
            current, depth = pending.pop()
            for name in self.listdir(current):
                child = f"{current.rstrip('/')}/{name}"
                info = self.stat(child, follow=False)
                if info is None:
                    continue
                out.append(info)
                if info.kind == "dir" and depth + 1 < max_depth:
                    pending.append((child, depth + 1))
        return sorted(out, key=lambda i: i.path)

    def sysctl(self, name: str) -> str | None:
        """A sysctl's value (``kernel.kptr_restrict``) from /proc/sys, or None if the kernel lacks it."""
        text = self.read_text("/proc/sys/" + name.replace(".", "/"))
        return None if text is None else text.strip()

    def mounts(self) -> list[Mount]:
        """The mount table of the auditing process's namespace (/proc/self/mountinfo)."""
        text = self.read_text("/proc/self/mountinfo")
        if text is None:
            raise CheckError("/proc/self/mountinfo is not readable (is /proc mounted?)")
        out = []
        for line in text.splitlines():
            left, _, right = line.partition(" - ")
            parts, rparts = left.split(), right.split()
            if len(parts) >= 5 and len(rparts) >= 3:
                out.append(Mount(_unescape_mount(parts[4]), rparts[0], _unescape_mount(rparts[1]),
                                 rparts[2]))
        return out

    def mount_of(self, host_path: str) -> Mount:
        """The mount that holds ``host_path`` (the longest mount point that is a prefix of it)."""
        best: Mount | None = None
        target = PurePosixPath("/", host_path)
        for m in self.mounts():
            point = PurePosixPath(m.point)
            if (target == point or point in target.parents) and (
                    best is None or len(point.parts) >= len(PurePosixPath(best.point).parts)):
                best = m
        if best is None:
            raise CheckError(f"no mount holds {host_path} in /proc/self/mountinfo")
        return best


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


class CommandRunner(Protocol):
    """Runs a fixed program with an argument list; raises FileNotFoundError when it is absent."""

    def run(self, argv: Sequence[str]) -> CommandResult: ...


class SubprocessRunner:
    """The real runner: programs looked up on the standard sbin/bin path, a short timeout."""

    SEARCH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout

    def run(self, argv: Sequence[str]) -> CommandResult:
        program = shutil.which(argv[0], path=self.SEARCH)
        if program is None:
            raise FileNotFoundError(argv[0])
        try:
            proc = subprocess.run([program, *argv[1:]], capture_output=True, text=True,  # nosec B603
                                  timeout=self.timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise CheckError(f"{' '.join(argv)} did not finish in {self.timeout:g}s") from None
        return CommandResult(proc.returncode, proc.stdout, proc.stderr)
