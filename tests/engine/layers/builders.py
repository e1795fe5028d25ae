"""Hand-built layer tarballs for the unpacking tests: every hostile shape is made here with tarfile.

``entry(...)`` describes one member (any name, type, owner, PAX records, even names tarfile's own
extraction would refuse); ``layer(...)`` packs them and compresses as asked. Nothing here unpacks:
the code under test does that.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from dataclasses import dataclass, field

import zstandard

GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
TAR = "application/vnd.oci.image.layer.v1.tar"
DOCKER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MTIME = 1_600_000_000


@dataclass
class Entry:
    name: str
    type: bytes = tarfile.REGTYPE
    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: float = MTIME
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    pax: dict[str, str] = field(default_factory=dict)

    def tarinfo(self) -> tarfile.TarInfo:
        info = tarfile.TarInfo(self.name)
        info.type = self.type
        info.size = len(self.data)
        info.mode = self.mode
        info.uid, info.gid = self.uid, self.gid
        info.mtime = self.mtime
        info.linkname = self.linkname
        info.devmajor, info.devminor = self.devmajor, self.devminor
        info.pax_headers = dict(self.pax)
        return info


def file(name: str, data: bytes = b"", **kw: object) -> Entry:
    return Entry(name, data=data, **kw)  # type: ignore[arg-type]


def directory(name: str, mode: int = 0o755, **kw: object) -> Entry:
    return Entry(name, tarfile.DIRTYPE, mode=mode, **kw)  # type: ignore[arg-type]


def symlink(name: str, target: str, **kw: object) -> Entry:
    return Entry(name, tarfile.SYMTYPE, mode=0o777, linkname=target, **kw)  # type: ignore[arg-type]


def hardlink(name: str, target: str) -> Entry:
    return Entry(name, tarfile.LNKTYPE, linkname=target)


def whiteout(path: str) -> Entry:
    """The OCI whiteout entry for ``path`` (``dir/.wh.name``)."""
    head, _, base = path.rpartition("/")
    return Entry(f"{head}/.wh.{base}" if head else f".wh.{base}")


def opaque(directory_path: str) -> Entry:
    return Entry(f"{directory_path}/.wh..wh..opq" if directory_path else ".wh..wh..opq")


def xattr(name: str, value: bytes) -> dict[str, str]:
    """A PAX record carrying one xattr (binary values survive via surrogateescape)."""
    return {f"SCHILY.xattr.{name}": value.decode("utf-8", "surrogateescape")}


def tar_bytes(entries: list[Entry], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for e in entries:
            tar.addfile(e.tarinfo(), io.BytesIO(e.data) if e.data else None)
    return out.getvalue()


def compress(data: bytes, media_type: str) -> bytes:
    if media_type.endswith("gzip"):
        return gzip.compress(data, mtime=0)
    if media_type.endswith("zstd"):
        return zstandard.ZstdCompressor().compress(data)
    return data


def layer(entries: list[Entry], media_type: str = GZIP, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    return compress(tar_bytes(entries, fmt), media_type)
