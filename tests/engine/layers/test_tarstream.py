"""The tar reader on its own: every header form layers use, chunk boundaries anywhere, and the
malformed headers it must refuse rather than interpret."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Iterator

import pytest

from engine.layers.model import Refused
from engine.layers.tarstream import DIR, FILE, HARDLINK, SYMLINK, TarEntry, TarReader
from tests.engine.layers.builders import (Entry, directory, file, hardlink, symlink, tar_bytes,
                                          xattr)


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


def read_all(data: bytes, tmp: Path, chunk: int = 1 << 20) -> list[tuple[TarEntry, bytes]]:
    """Every entry with the data copy_to wrote for it."""
    reader = TarReader(_chunks(data, chunk))
    out = []
    for entry in reader.entries():
        content = b""
        if entry.kind is FILE and entry.size:
            target = tmp / "data"
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                reader.copy_to(fd, entry.size)
            finally:
                os.close(fd)
            content = target.read_bytes()
        out.append((entry, content))
    return out


def _fix_checksum(block: bytearray) -> bytes:
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


MIXED = [
    directory("d"), file("d/empty"), file("d/block", b"b" * 512), file("d/odd", b"o" * 513),
    file("d/" + "long-" * 40, b"long name"), symlink("d/" + "l" * 120, "t" * 150),
    hardlink("d/hl", "d/odd"), file("x", os.urandom(70_000), pax=xattr("user.k", b"\x00\xffv")),
]


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_chunk_boundaries_do_not_matter(tmp_path: Path, fmt: int) -> None:
    data = tar_bytes(MIXED, fmt)
    expected = [(e.name, e.kind, e.size, e.linkname, e.xattrs, c)
                for e, c in read_all(data, tmp_path)]
    assert [n for n, *_ in expected] == [e.name.rstrip("/") + ("/" if e.type == tarfile.DIRTYPE
                                                              else "") for e in MIXED]
    if fmt == tarfile.PAX_FORMAT:  # GNU format has no place for xattrs
        assert expected[-1][4] == {"user.k": b"\x00\xffv"}
    assert expected[3][5] == b"o" * 513
    for size in (1, 3, 511, 512, 513, 4096):
        got = [(e.name, e.kind, e.size, e.linkname, e.xattrs, c)
               for e, c in read_all(data, tmp_path, size)]
        assert got == expected


def test_base256_numbers_and_negative_mtime(tmp_path: Path) -> None:
    data = tar_bytes([file("big-ids", b"x", uid=10_000_000, gid=2**31, mtime=-1000)],
                     tarfile.GNU_FORMAT)
    (entry, _), = read_all(data, tmp_path)
    assert (entry.uid, entry.gid, entry.mtime_ns) == (10_000_000, 2**31, -1000 * 10**9)


def test_pax_overrides_and_global_headers(tmp_path: Path) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"mtime": "123.5", "uid": "42"}) as tar:
        for e in (file("a", b"1"), file("b", b"2", pax={"uid": "7", "mtime": "9.000000001"})):
            tar.addfile(e.tarinfo(), io.BytesIO(e.data))
    (a, _), (b, _) = read_all(out.getvalue(), tmp_path)
    assert (a.uid, a.mtime_ns) == (42, 123_500_000_000)
    assert (b.uid, b.mtime_ns, b.atime_ns) == (7, 9_000_000_001, 9_000_000_001)


def test_pre_posix_directory_marked_by_slash(tmp_path: Path) -> None:
    data = bytearray(tar_bytes([file("olddir/")], tarfile.USTAR_FORMAT))
    header = bytearray(data[:512])
    header[156:157] = b"\0"
    header[257:265] = bytes(8)  # no ustar magic: a v7 header
    data[:512] = _fix_checksum(header)
    (entry, _), = read_all(bytes(data), tmp_path)
    assert entry.kind is DIR


def test_signed_checksum_of_old_tars_is_accepted(tmp_path: Path) -> None:
    data = bytearray(tar_bytes([file("é-name", b"x")], tarfile.USTAR_FORMAT))
    header = bytearray(data[:512])
    header[148:156] = b" " * 8
    signed = sum(b - 256 if b > 127 else b for b in header)
    header[148:156] = b"%06o\0 " % signed
    data[:512] = header
    (entry, _), = read_all(bytes(data), tmp_path)
    assert entry.name == "é-name"


def test_header_only_types_ignore_their_size_field(tmp_path: Path) -> None:
    """As Go's archive/tar and Python's tarfile do: a symlink or hardlink header carries no data,
    whatever its size field says, so the next block is the next header."""
    data = bytearray(tar_bytes([symlink("s", "t"), hardlink("h", "s"), file("f", b"data")],
                               tarfile.USTAR_FORMAT))
    for offset in (0, 512):
        header = bytearray(data[offset:offset + 512])
        header[124:136] = b"%011o\0" % 1024
        data[offset:offset + 512] = _fix_checksum(header)
    kinds = [(e.kind, c) for e, c in read_all(bytes(data), tmp_path)]
    assert kinds == [(SYMLINK, b""), (HARDLINK, b""), (FILE, b"data")]


@pytest.mark.parametrize(("offset", "value", "message"), [
    (100, b"0o00644\0", "bad mode field"),     # int() would take the 0o prefix; tar would not
    (108, b"-000001\0", "bad uid field"),
    (124, b"1_000\0\0\0\0\0\0\0", "bad size field"),
    (148, b"0000000\0", "checksum mismatch"),
    (136, b"\x81" + bytes(11), "bad mtime field"),
])
def test_malformed_numeric_fields(tmp_path: Path, offset: int, value: bytes, message: str) -> None:
    data = bytearray(tar_bytes([file("f", b"x")], tarfile.USTAR_FORMAT))
    header = bytearray(data[:512])
    header[offset:offset + len(value)] = value
    data[:512] = header if offset == 148 else _fix_checksum(header)
    with pytest.raises(Refused, match=message):
        read_all(bytes(data), tmp_path)


def _pax_entry(records: bytes) -> bytes:
    info = tarfile.TarInfo("././@PaxHeader")
    info.type = tarfile.XHDTYPE
    info.size = len(records)
    return info.tobuf(tarfile.USTAR_FORMAT) + records + bytes(-len(records) % 512)


@pytest.mark.parametrize(("records", "message"), [
    (b"99 path=short\n", "overruns"),
    (b"11 path=abc\n", "overruns"),  # the length counts itself: 12 would be right
    (b"x path=abc\n", "bad record length"),
    (b"9 =value\n", "without a key"),
    (b"11 uid=12a\n", "bad uid value"),
    (b"15 mtime=1.2.3\n", "bad time"),
])
def test_malformed_pax_records(tmp_path: Path, records: bytes, message: str) -> None:
    data = _pax_entry(records) + tar_bytes([file("f", b"x")], tarfile.USTAR_FORMAT)
    with pytest.raises(Refused, match=message):
        read_all(data, tmp_path)


def test_endless_meta_headers_are_refused(tmp_path: Path) -> None:
    data = _pax_entry(b"13 path=abcd\n") * 9 + tar_bytes([file("f")], tarfile.USTAR_FORMAT)
    with pytest.raises(Refused, match="too many PAX"):
        read_all(data, tmp_path)


def test_archive_ending_after_a_pax_header(tmp_path: Path) -> None:
    with pytest.raises(Refused, match="ends after a PAX"):
        read_all(_pax_entry(b"13 path=abcd\n") + bytes(1024), tmp_path)


def test_unknown_entry_type(tmp_path: Path) -> None:
    data = tar_bytes([Entry("odd", b"Z")], tarfile.USTAR_FORMAT)
    with pytest.raises(Refused, match=r"unsupported tar entry 'odd': type b'Z'"):
        read_all(data, tmp_path)
