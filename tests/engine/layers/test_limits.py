"""Bounds and broken streams: bombs, entry counts, truncation, corruption, lying media types."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import zlib

import pytest
import zstandard

from engine.layers import LayerError, UnpackLimits, apply_layer
from tests.engine.layers.builders import (DOCKER_GZIP, GZIP, TAR, ZSTD, compress, directory, file,
                                          layer, tar_bytes)
from tests.engine.layers.conftest import Sandbox, apply


def _gzip_bomb(name: str, claimed: int) -> bytes:
    """A gzip layer of one file declaring ``claimed`` bytes of zeros: about 1000:1 compressed."""
    header = tarfile.TarInfo(name)
    header.size = claimed
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [z.compress(header.tobuf(tarfile.PAX_FORMAT))]
    block = bytes(1024 * 1024)
    for _ in range(claimed // len(block)):
        parts.append(z.compress(block))
    parts.append(z.compress(bytes(1024)) + z.flush())
    return b"".join(parts)


def test_decompression_bomb_stops_at_max_bytes(sandbox: Sandbox) -> None:
    bomb = _gzip_bomb("bomb", 256 * 1024 * 1024)
    assert len(bomb) < 1024 * 1024  # a tiny blob claiming 256 MiB
    limit = 4 * 1024 * 1024
    with pytest.raises(LayerError, match=r"layer entry 'bomb': decompressed size exceeds the limit "
                                         r"of 4194304 bytes"):
        apply(bomb, sandbox.dest, limits=UnpackLimits(max_bytes=limit, max_entries=10))
    assert os.path.getsize(sandbox.dest / "bomb") <= limit
    sandbox.assert_untouched()


def test_too_many_entries(sandbox: Sandbox) -> None:
    entries = [file(f"f{i}", b"x") for i in range(6)]
    with pytest.raises(LayerError, match=r"layer entry 'f3': the layer has more than 3 entries"):
        apply(layer(entries), sandbox.dest, limits=UnpackLimits(max_bytes=1 << 20, max_entries=3))
    assert not (sandbox.dest / "f3").exists()
    sandbox.assert_untouched()


def test_truncated_gzip_names_the_entry_being_read(sandbox: Sandbox) -> None:
    blob = layer([file("small", b"hello"), file("big", os.urandom(8 * 1024 * 1024))])
    with pytest.raises(LayerError, match=r"layer entry 'big': truncated or corrupt gzip stream"):
        apply(blob[: len(blob) * 2 // 3], sandbox.dest)
    sandbox.assert_untouched()


def test_corrupt_gzip(sandbox: Sandbox) -> None:
    blob = bytearray(layer([file("data", os.urandom(256 * 1024))]))
    blob[len(blob) // 2] ^= 0xFF
    blob[len(blob) // 2 + 1] ^= 0xFF
    with pytest.raises(LayerError, match=r"truncated or corrupt gzip stream"):
        apply(bytes(blob), sandbox.dest)
    sandbox.assert_untouched()


def test_truncated_zstd(sandbox: Sandbox) -> None:
    blob = layer([file("big", os.urandom(256 * 1024))], ZSTD)
    with pytest.raises(LayerError, match=r"layer entry 'big': truncated zstd stream"):
        apply(blob[:-100], sandbox.dest, media_type=ZSTD)


def test_truncated_plain_tar_inside_data(sandbox: Sandbox) -> None:
    blob = tar_bytes([file("a", b"x" * 5000)])
    with pytest.raises(LayerError, match=r"layer entry 'a': archive truncated inside this entry"):
        apply(blob[:2048], sandbox.dest, media_type=TAR)


def test_plain_tar_without_end_marker(sandbox: Sandbox) -> None:
    """What ``umoci insert`` writes: accepted, as GNU tar, Go's archive/tar and tarfile do."""
    raw = tar_bytes([file("a", b"x" * 1024)])[:1536]  # header and data, no end-of-archive blocks
    stats = apply(compress(raw, GZIP), sandbox.dest)
    assert (sandbox.dest / "a").read_bytes() == b"x" * 1024
    assert (stats.size, stats.entries) == (1536, 1)


def test_plain_tar_ending_inside_a_block(sandbox: Sandbox) -> None:
    """umoci 0.4.7 also omits the padding after a file's last partial block; GNU tar, Go's
    archive/tar and tarfile refuse that (unexpected EOF), and so do we."""
    raw = tar_bytes([file("a", b"x" * 1000)])[:1512]
    with pytest.raises(LayerError, match=r"archive truncated inside an entry's data or padding "
                                         r"\(after entry 'a'\)"):
        apply(compress(raw, GZIP), sandbox.dest)


def test_header_checksum_mismatch(sandbox: Sandbox) -> None:
    blob = bytearray(tar_bytes([file("a", b"x"), file("b", b"y")], tarfile.USTAR_FORMAT))
    blob[1024 + 10] ^= 0x01  # inside b's name
    with pytest.raises(LayerError, match=r"checksum mismatch \(after entry 'a'\)"):
        apply(bytes(blob), sandbox.dest, media_type=TAR)


def test_oversized_pax_header(sandbox: Sandbox) -> None:
    blob = tar_bytes([file("a", b"x", pax={"comment": "y" * (2 * 1024 * 1024)})])
    with pytest.raises(LayerError, match=r"PAX header of \d+ bytes exceeds"):
        apply(blob, sandbox.dest, media_type=TAR)


def test_sparse_file_refused(sandbox: Sandbox) -> None:
    blob = tar_bytes([file("holes", b"x", pax={"GNU.sparse.major": "1", "GNU.sparse.minor": "0"})])
    with pytest.raises(LayerError, match=r"unsupported tar entry 'holes': GNU sparse file"):
        apply(blob, sandbox.dest, media_type=TAR)


@pytest.mark.parametrize(("blob_type", "declared", "match"), [
    (GZIP, ZSTD, "not zstd"),
    (ZSTD, GZIP, "not gzip"),
    (GZIP, TAR, "gzip-compressed although"),
    (ZSTD, TAR, "zstd-compressed although"),
    (TAR, GZIP, "not gzip"),
    (TAR, DOCKER_GZIP, "not gzip"),
])
def test_magic_must_match_media_type(sandbox: Sandbox, blob_type: str, declared: str,
                                     match: str) -> None:
    blob = layer([file("a", b"x")], blob_type)
    with pytest.raises(LayerError, match=match):
        apply(blob, sandbox.dest, media_type=declared)
    assert os.listdir(sandbox.dest) == []


@pytest.mark.parametrize("media_type", ["application/vnd.oci.image.layer.v1.tar+bzip2",
                                        "application/vnd.oci.image.config.v1+json", "", "gzip"])
def test_unknown_media_type(sandbox: Sandbox, media_type: str) -> None:
    with pytest.raises(LayerError, match=r"unknown layer media type"):
        apply(layer([file("a", b"x")]), sandbox.dest, media_type=media_type)


def test_diff_mode_needs_an_empty_directory(sandbox: Sandbox) -> None:
    (sandbox.dest / "leftover").write_text("x")
    with pytest.raises(ValueError, match="empty"):
        apply(layer([file("a", b"x")]), sandbox.dest)


def test_multi_member_gzip_and_trailing_padding_count_for_the_diff_id(sandbox: Sandbox) -> None:
    """pigz-style concatenated members are one stream; padding after the end block is hashed."""
    raw = tar_bytes([directory("d"), file("d/a", b"hello")]) + bytes(10240)
    blob = gzip.compress(raw[:700], mtime=0) + gzip.compress(raw[700:], mtime=0)
    stats = apply_layer(io.BytesIO(blob), sandbox.dest, media_type=GZIP,
                        limits=UnpackLimits(1 << 20, 10))
    assert stats.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert stats.size == len(raw)
    assert (sandbox.dest / "d" / "a").read_bytes() == b"hello"


def test_stats_match_the_uncompressed_stream(sandbox: Sandbox) -> None:
    raw = tar_bytes([directory("d"), file("d/a", b"1"), file("d/b", b"2")])
    stats = apply(compress(raw, GZIP), sandbox.dest)
    assert stats.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert (stats.size, stats.entries) == (len(raw), 3)


@pytest.mark.parametrize("cut", [1, 3, 4, 100])
def test_zstd_cut_anywhere_in_the_last_frame(sandbox: Sandbox, cut: int) -> None:
    """The zstd library returns a short result without error for a cut frame; we must not."""
    raw = tar_bytes([file("a", os.urandom(4096))]) + bytes(8192)
    blob = zstandard.ZstdCompressor(write_checksum=True).compress(raw)
    with pytest.raises(LayerError, match=r"zstd stream"):
        apply(blob[:-cut], sandbox.dest, media_type=ZSTD)


def test_zstd_garbage_after_the_last_frame(sandbox: Sandbox) -> None:
    blob = layer([file("a", b"x")], ZSTD) + b"not a frame"
    with pytest.raises(LayerError, match=r"data after the last frame"):
        apply(blob, sandbox.dest, media_type=ZSTD)


def test_zstd_several_frames_and_a_skippable_frame(sandbox: Sandbox) -> None:
    raw = tar_bytes([file("a", b"first"), file("b", b"second" * 1000)])
    skippable = (0x184D2A53).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"12345"
    blob = (zstandard.ZstdCompressor().compress(raw[:1000]) + skippable
            + zstandard.ZstdCompressor(write_content_size=False).compress(raw[1000:]))
    stats = apply(blob, sandbox.dest, media_type=ZSTD)
    assert stats.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert (sandbox.dest / "b").read_bytes() == b"second" * 1000


def test_zlib_fallback_when_isal_is_missing(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without isal the standard library's gzip takes over, with the same checks."""
    import engine.layers.compression as compression

    monkeypatch.setattr(compression, "_gzip_module", gzip)
    raw = tar_bytes([directory("d"), file("d/a", os.urandom(300_000))])
    stats = apply(compress(raw, GZIP), sandbox.dest)
    assert stats.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    other = sandbox.root / "truncated"
    other.mkdir()
    with pytest.raises(LayerError, match="truncated or corrupt gzip stream"):
        apply(compress(raw, GZIP)[:-20], other)
