"""Reading image files safely: layer directories and OCI layout tar streams are input from outside."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from hardening.audit.layerdirs import layer_files, read_layer_file
from hardening.audit.model import Status
from hardening.audit.oci_layout import LayoutError, open_layout
from hardening.audit.registry import load_registry
from hardening.audit.runner import run_audit
from hardening.audit.sources import StoreImage
from hardening.audit.targets import StaticImages
from tests.hardening.audit.world import World


def _layers(tmp_path: Path) -> list[Path]:
    bottom, middle, top = (tmp_path / n for n in ("l0", "l1", "l2"))
    (bottom / "etc").mkdir(parents=True)
    (bottom / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (bottom / "etc/shadow").write_text("root::1::::::\n")
    (middle / "etc").mkdir(parents=True)
    os.mknod(middle / "etc/shadow", stat.S_IFCHR | 0o000, os.makedev(0, 0))  # overlay whiteout
    top.mkdir()
    return [bottom, middle, top]


def test_top_layer_wins_and_whiteouts_delete(tmp_path: Path) -> None:
    dirs = _layers(tmp_path)
    assert read_layer_file(dirs, "/etc/passwd", 1024) == b"root:x:0:0::/root:/bin/sh\n"
    assert read_layer_file(dirs, "etc/shadow", 1024) is None
    listed = {(f.path, f.layer) for f in layer_files(dirs)}
    assert ("/etc/shadow", 0) in listed and ("/etc/shadow", 1) not in listed  # deleted, still shipped


def test_a_symlink_in_a_layer_never_reads_the_host(tmp_path: Path) -> None:
    dirs = _layers(tmp_path)
    os.symlink("/etc", dirs[2] / "etc")  # a hostile top layer: etc -> the host's /etc
    os.symlink("/etc/hostname", dirs[2] / "hostname")
    assert read_layer_file(dirs, "/etc/passwd", 1024) is None
    assert read_layer_file(dirs, "/hostname", 1024) is None
    links = [f for f in layer_files(dirs) if f.kind == "link"]
    assert {f.path for f in links} == {"/etc", "/hostname"}  # listed, not followed


def test_unpacked_layers_missing_is_an_error_not_a_pass(world: World) -> None:
    image = StoreImage("sha256:" + "1" * 64, None, ("registry.example/app:1",),
                       {"config": {"User": "1000"}}, [], ["sha256:" + "2" * 64])
    view = world.view()
    view.images = StaticImages([image])
    report = run_audit(view, load_registry().select(["images"], include=["IMG-003", "IMG-001"]))
    by_id = {r.check.id: r for r in report.results}
    assert by_id["IMG-001"].status is Status.PASS  # config-only checks still run
    assert by_id["IMG-003"].status is Status.ERROR and "not unpacked" in by_id["IMG-003"].message


def _tar(members: list[tuple[str, bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data, mode in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _layout_with(tmp_path: Path, members: list[tuple[str, bytes, int]]) -> Path:
    """A one-layer OCI layout made by hand (uncompressed tar), digests computed honestly."""
    return _layout_of(tmp_path, _tar(members), "application/vnd.oci.image.layer.v1.tar")


def _layout_of(tmp_path: Path, blob: bytes, media_type: str) -> Path:
    """A one-layer OCI layout around ``blob`` as its layer, every digest (the layer's too) honest."""
    import hashlib
    import json

    layout = tmp_path / "layout"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return "sha256:" + digest

    layer = put(blob)
    config = put(json.dumps({"config": {"User": "1000"}, "rootfs": {"type": "layers",
                                                                     "diff_ids": [layer]}}).encode())
    manifest = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": config, "size": 1},
                               "layers": [{"mediaType": media_type, "digest": layer, "size": len(blob)}]}).encode())
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest, "size": 1,
         "annotations": {"org.opencontainers.image.ref.name": "t"}}]}))
    return layout


def test_layout_entry_names_cannot_escape(tmp_path: Path) -> None:
    layout = _layout_with(tmp_path, [("../../etc/sudoers.d/x", b"", 0o644),
                                     ("./usr/bin/sudo", b"", 0o4755),
                                     ("etc/.wh.shadow", b"", 0o644)])
    image = open_layout(f"{layout}:t")
    paths = {f.path for f in image.files()}
    assert paths == {"/etc/sudoers.d/x", "/usr/bin/sudo"}  # normalised inside the image root
    assert image.read_file("/etc/shadow") is None


def test_layout_with_a_wrong_config_digest_is_refused(tmp_path: Path) -> None:
    layout = _layout_with(tmp_path, [("etc/passwd", b"root:x:0:0::/:/bin/sh\n", 0o644)])
    config = next(p for p in (layout / "blobs/sha256").iterdir() if b'"User"' in p.read_bytes())
    config.write_bytes(config.read_bytes().replace(b'"1000"', b'"0"   '))
    with pytest.raises(LayoutError, match="does not match its digest"):
        open_layout(f"{layout}:t")


def test_layout_with_a_missing_blob_is_refused_naming_it(tmp_path: Path) -> None:
    layout = _layout_with(tmp_path, [("etc/passwd", b"root:x:0:0::/:/bin/sh\n", 0o644)])
    config = next(p for p in (layout / "blobs/sha256").iterdir() if b'"User"' in p.read_bytes())
    config.unlink()
    with pytest.raises(LayoutError, match=f"cannot read {config}: No such file or directory"):
        open_layout(f"{layout}:t")


@pytest.mark.parametrize("index", [
    [],                                                     # not an object
    {"manifests": "sha256:abc"},                            # not a list
    {"manifests": [1]},                                     # not descriptors
    {"manifests": [{"digest": "sha256:" + "0" * 64, "annotations": ["t"]}]},
    {"manifests": [{"digest": "sha256:" + "0" * 64, "platform": "linux/amd64"}]},
])
def test_a_layout_index_of_the_wrong_shape_is_bad_input(tmp_path: Path, index: object) -> None:
    """A hostile index.json fails as one LayoutError naming the file, never as an AttributeError."""
    import json

    layout = _layout_with(tmp_path, [("etc/passwd", b"", 0o644)])
    (layout / "index.json").write_text(json.dumps(index))
    with pytest.raises(LayoutError, match="index.json"):
        open_layout(f"{layout}:t")


def test_layout_tag_must_exist(tmp_path: Path) -> None:
    layout = _layout_with(tmp_path, [("etc/passwd", b"", 0o644)])
    with pytest.raises(LayoutError, match="no image tagged 'other'"):
        open_layout(f"{layout}:other")


PASSWD = [("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644)]
OCI_TAR, OCI_ZSTD = "application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+zstd"


def test_zstd_and_gzip_layers_are_listed_and_read(tmp_path: Path) -> None:
    import gzip

    import zstandard

    for blob, media_type in ((zstandard.ZstdCompressor().compress(_tar(PASSWD)), OCI_ZSTD),
                             (gzip.compress(_tar(PASSWD)), "application/vnd.oci.image.layer.v1.tar+gzip")):
        image = open_layout(f"{_layout_of(tmp_path / media_type[-4:], blob, media_type)}:t")
        (listed,) = image.files()
        assert (listed.path, listed.mode, listed.kind, listed.size) == ("/etc/passwd", 0o644, "file", 26)
        assert image.read_file("/etc/passwd") == PASSWD[0][1]
        assert image.read_file("/etc/passwd", limit=4) == b"root"


def test_a_pax_header_declaring_a_huge_size_is_refused_unread(tmp_path: Path) -> None:
    """tarfile in stream mode reads a PAX header of whatever size it declares into memory; the
    layer reader bounds headers at 1 MiB and refuses before reading it."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("etc/passwd")
        info.pax_headers = {"comment": "x"}
        tar.addfile(info, io.BytesIO(b""))
    raw = bytearray(buf.getvalue())
    assert raw[156:157] == b"x"  # the first block is the entry's PAX header
    raw[124:136] = b"%011o\0" % (2**32 - 1)  # declares 4 GiB
    raw[148:156] = b" " * 8
    raw[148:156] = b"%06o\0 " % sum(raw[:512])
    layout = _layout_of(tmp_path, bytes(raw), OCI_TAR)
    with pytest.raises(LayoutError, match=r"is refused: PAX header of 4294967295 bytes exceeds the 1048576-byte bound"):
        open_layout(f"{layout}:t")


def test_a_cut_zstd_layer_is_refused(tmp_path: Path) -> None:
    """Without its last four bytes (the frame checksum) zstandard's stream reader still returns the
    whole tar; the frame check notices the cut. The layout's digests match the cut blob."""
    import zstandard

    blob = zstandard.ZstdCompressor(write_checksum=True).compress(_tar(PASSWD))
    assert zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob[:-4])).read() == _tar(PASSWD)
    with pytest.raises(LayoutError, match=r"refused \(after entry .etc/passwd.\): truncated zstd stream: it ends inside"):
        open_layout(f"{_layout_of(tmp_path, blob[:-4], OCI_ZSTD)}:t")


def test_a_layer_must_be_what_its_media_type_says_and_within_limits(tmp_path: Path) -> None:
    import gzip

    from engine.layers import UnpackLimits

    with pytest.raises(LayoutError, match="is gzip-compressed although its media type"):
        open_layout(f"{_layout_of(tmp_path / 'a', gzip.compress(_tar(PASSWD)), OCI_TAR)}:t")
    with pytest.raises(LayoutError, match="unknown layer media type 'application/x-tar'"):
        open_layout(f"{_layout_of(tmp_path / 'b', _tar(PASSWD), 'application/x-tar')}:t")
    layout = _layout_with(tmp_path / "c", [(f"f{i}", b"x" * 600, 0o644) for i in range(8)])
    with pytest.raises(LayoutError, match="decompressed size exceeds the limit of 4096 bytes"):
        open_layout(f"{layout}:t", UnpackLimits(max_bytes=4096, max_entries=100))
    with pytest.raises(LayoutError, match="after entry 'f2'.*more than 3 entries"):
        open_layout(f"{layout}:t", UnpackLimits(max_bytes=1 << 20, max_entries=3))
