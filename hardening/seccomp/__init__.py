"""Seccomp for Stockade's containers: Docker's default profile, compiled once, cached by content.

``compiled_filter()`` is what the run pipeline calls. It returns the path of a compiled BPF program
for one container's capability set, building it only when the cache has no program for this exact
(profile bytes, capabilities, architecture, kernel version, libseccomp version). A cache hit reads
one small file and never imports libseccomp's bindings: compiling Docker's profile costs tens of
milliseconds, loading the compiled program about one.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
from pathlib import Path

from engine.cachefiles import private_directory, written_by_us
from hardening.seccomp.profile import DEFAULT_PROFILE, ProfileError, host_arch, kernel_version

FORMAT = b"stockade-seccomp/1"  # bump when the compiled form (e.g. the ENOSYS stub) changes


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


def libseccomp_version() -> str:
    """The installed libseccomp's version, read without loading the Python bindings."""
    try:
        lib = ctypes.CDLL("libseccomp.so.2")
    except OSError:
        raise ProfileError("libseccomp is not installed (needed for seccomp filters)",
                           hint="apt-get install libseccomp2") from None
    lib.seccomp_version.restype = ctypes.POINTER(_Version)
    v = lib.seccomp_version().contents
    return f"{v.major}.{v.minor}.{v.micro}"


def profile_path(name: str | None) -> Path | None:
    """``default`` (or None) is Docker's profile, ``unconfined`` is no filter, anything else a file."""
    if name in (None, "", "default", "runtime/default", "docker/default"):
        return DEFAULT_PROFILE
    if name == "unconfined":
        return None
    return Path(name)


def cache_key(raw_profile: bytes, caps: list[str]) -> str:
    h = hashlib.sha256()
    for part in (FORMAT, raw_profile, ",".join(sorted(set(caps))).encode(), host_arch()[0].encode(),
                 "{}.{}".format(*kernel_version()).encode(), libseccomp_version().encode()):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()


def compiled_filter(profile: str | None, caps: list[str], cache_dir: Path) -> Path | None:
    """The compiled BPF for ``profile`` and a container with capabilities ``caps`` (None: unconfined)."""
    path = profile_path(profile)
    if path is None:
        return None
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ProfileError(f"cannot read seccomp profile {path}: {exc.strerror}") from None
    out = cache_dir / f"{cache_key(raw, caps)}.bpf"
    if not private_directory(cache_dir):
        raise ProfileError(f"seccomp cache {cache_dir} is not this user's own directory: refusing "
                           "programs anyone else could have written")
    with contextlib.suppress(OSError):  # a cached program counts only if this user wrote it
        if written_by_us(os.lstat(out)):  # the directory is ours and 0700: nobody swaps it now
            return out
    import tempfile

    from hardening.seccomp.compile import compile_profile
    from hardening.seccomp.profile import expand, load

    _, doc = load(path)
    compiled = compile_profile(expand(doc, caps))
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".tmp-", suffix=".bpf")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(compiled.program)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise
    return out


def expanded_profile(profile: str | None, caps: list[str]) -> dict[str, object] | None:
    """The OCI ``linux.seccomp`` document a container gets (for inspect and the policy input)."""
    path = profile_path(profile)
    if path is None:
        return None
    from hardening.seccomp.profile import expand, load

    _, doc = load(path)
    return expand(doc, caps)
