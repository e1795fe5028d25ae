"""``import``: rootfs tarballs (plain or compressed) become one-layer images, ``--change`` applies,
and a bad tarball is refused with the store left as it was."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import subprocess  # nosec B404 # a Python child with an argument list, to measure its peak memory
import sys
import tarfile
from pathlib import Path

import pytest
import zstandard

from engine.config import Paths
from engine.layers import LayerError
from engine.reference import Reference
from engine.store import Store, StoreError
from engine.store.changes import ChangeError, apply_changes
from engine.store.importer import import_rootfs
from tests.engine.layers.builders import directory, file, symlink, tar_bytes
from tests.engine.registry.fixtures import make_config
from tests.engine.registry.hostile import digest_of
from tests.engine.store.helpers import assert_consistent, snapshot
from tests.support.cli import REPO

ROOTFS = tar_bytes([directory("bin"), file("bin/tool", b"#!/bin/sh\necho hi\n", mode=0o755),
                    directory("etc"), file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")])


@pytest.fixture
def store(paths: Paths) -> Store:
    return Store(paths, make_config())


@pytest.mark.parametrize("compress", [
    lambda d: d, lambda d: gzip.compress(d), bz2.compress, lzma.compress,
    lambda d: zstandard.ZstdCompressor().compress(d)], ids=["tar", "gzip", "bzip2", "xz", "zstd"])
def test_import_any_compression(store: Store, compress: object) -> None:
    data = compress(ROOTFS)  # type: ignore[operator]
    image = import_rootfs(store, io.BytesIO(data), source_name="rootfs.tar",
                          name=Reference.parse("local/rootfs:v1"))
    assert image.repo_tags == ("docker.io/local/rootfs:v1",) and image.repo_digests == ()
    config = store.image_config(image)
    assert config["rootfs"]["diff_ids"] == [digest_of(ROOTFS)]
    assert image.size == len(ROOTFS)  # uncompressed, as docker images counts it, whatever the input
    assert config["history"][0]["comment"] == "Imported from rootfs.tar"
    manifest = store.manifest(image)
    if data[:2] == b"\x1f\x8b":
        assert manifest.layers[0].digest == digest_of(data)  # a gzip tarball is kept byte for byte
    assert gzip.decompress(store.blobs.open(manifest.layers[0].digest).read()) == ROOTFS
    [layer] = store.layer_dirs(image)
    assert (layer / "bin" / "tool").read_bytes().startswith(b"#!/bin/sh")
    assert_consistent(store)


def test_import_with_changes(store: Store) -> None:
    image = import_rootfs(store, io.BytesIO(ROOTFS), message="first build", changes=[
        "USER 1000", 'CMD ["/bin/tool", "--flag"]', "ENTRYPOINT /bin/sh -c", 'ENV A=1 B="two words"',
        "ENV LEGACY value with spaces", "EXPOSE 80 53/udp 8000-8001", 'LABEL org.example="a b" x=y',
        "VOLUME /data /cache", "WORKDIR /srv", "WORKDIR app", "STOPSIGNAL SIGINT", "ONBUILD RUN true"])
    assert image.dangling
    config = store.image_config(image)
    assert config["history"][0]["comment"] == "first build"
    assert config["config"] == {
        "User": "1000", "Cmd": ["/bin/tool", "--flag"], "Entrypoint": ["/bin/sh", "-c", "/bin/sh -c"],
        "Env": ["A=1", "B=two words", "LEGACY=value with spaces"],
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}},
        "Labels": {"org.example": "a b", "x": "y"}, "Volumes": {"/data": {}, "/cache": {}},
        "WorkingDir": "/srv/app", "StopSignal": "SIGINT", "OnBuild": ["RUN true"]}


@pytest.mark.parametrize("change,message", [
    ("RUN echo hi", "RUN is not allowed (allowed: CMD, ENTRYPOINT, ENV"),
    ("", "an empty instruction is not allowed"),
    ("USER", "USER needs a value"),
    ("EXPOSE 70000", "ports must be 1-65535"),
    ("EXPOSE 80/icmp", "protocol must be tcp, udp or sctp"),
    ("EXPOSE http", "not a port or port range"),
    ("ENV =x", "a key is empty"),
    ("LABEL novalue", "expected key=value pairs"),
    ('ENV A="unterminated', "No closing quotation"),
    ("STOPSIGNAL SIGNOPE", "not a signal name or number"),
])
def test_bad_changes(change: str, message: str) -> None:
    with pytest.raises(ChangeError) as info:
        apply_changes({}, [change])
    assert message in str(info.value)


@pytest.mark.parametrize("data,error,message", [
    (b"", StoreError, "is empty"),
    (b"this is not a tarball at all" * 30, StoreError, "is not a tar archive"),
    (gzip.compress(b"plain text, compressed" * 50), StoreError, "is not a tar archive"),
    (gzip.compress(ROOTFS)[:-20], StoreError, "truncated or corrupt gzip stream"),
    (zstandard.ZstdCompressor().compress(ROOTFS)[:-9], StoreError, "truncated zstd stream: it ends inside a frame"),
    (bz2.compress(ROOTFS)[:-9], StoreError, "truncated or corrupt bzip2 stream"),
    (lzma.compress(ROOTFS)[:-9], StoreError, "truncated or corrupt xz stream"),
    (tar_bytes([symlink("escape", "/etc"), file("escape/planted", b"x")]), LayerError,
     "layer entry 'escape/planted'"),
])
def test_bad_tarballs_leave_the_store_unchanged(store: Store, data: bytes, error: type[Exception],
                                                message: str) -> None:
    import_rootfs(store, io.BytesIO(ROOTFS), name=Reference.parse("local/ok"))
    before = snapshot(store.layout.root)
    with pytest.raises(error, match=message):
        import_rootfs(store, io.BytesIO(data), source_name="bad.tar", name=Reference.parse("local/bad"))
    assert snapshot(store.layout.root) == before
    assert not Path("/etc/planted").exists()


def test_bounded_by_max_layer_size(paths: Paths) -> None:
    store = Store(paths, make_config(unpack={"max_layer_size": 4096}))
    with pytest.raises(StoreError, match=r"exceeds the limit of 4096 bytes \(unpack.max_layer_size\)"):
        import_rootfs(store, io.BytesIO(gzip.compress(tar_bytes([file("big", bytes(100_000))]))))
    assert store.images() == []


def _zstd_bomb(expanded: int) -> bytes:
    """One zstd frame holding a tar whose single file is ``expanded`` zero bytes (~32,000:1)."""
    info = tarfile.TarInfo("bomb")
    info.size = expanded
    compressor = zstandard.ZstdCompressor(level=1).compressobj()
    zeros = bytes(64 << 20)
    parts = [compressor.compress(info.tobuf(format=tarfile.GNU_FORMAT))]
    parts += [compressor.compress(zeros) for _ in range(expanded // len(zeros))]
    return b"".join(parts) + compressor.flush()


def test_zstd_bomb_stops_at_the_limit_in_bounded_memory(paths: Paths, tmp_path: Path) -> None:
    """2 GiB of zeros in ~64 KiB of zstd, imported in a process of its own (to read its peak memory)
    with a 16 MiB limit: refused at the limit, the store as it was, memory nowhere near 2 GiB."""
    store = Store(paths, make_config(unpack={"max_layer_size": 16 << 20}))
    import_rootfs(store, io.BytesIO(ROOTFS), name=Reference.parse("local/ok"))
    before = snapshot(store.layout.root)
    bomb = tmp_path / "bomb.tar.zst"
    bomb.write_bytes(_zstd_bomb(2 << 30))
    assert bomb.stat().st_size < 256 << 10
    script = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from engine.config import Paths\n"
        "from engine.store import Store\n"
        "from engine.store.importer import import_rootfs\n"
        "from tests.engine.registry.fixtures import make_config\n"
        "root = Path(sys.argv[1])\n"
        "store = Store(Paths.default(root=root), make_config(unpack={'max_layer_size': 16 << 20}))\n"
        "try:\n"
        "    with open(sys.argv[2], 'rb') as f:\n"
        "        import_rootfs(store, f, source_name='bomb.tar.zst')\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    proc = subprocess.run([sys.executable, "-c", script, str(paths.root), str(bomb)], cwd=REPO,  # nosec
                          capture_output=True, text=True, timeout=120, check=False)
    error, peak_kib = proc.stdout.splitlines()
    assert int(peak_kib) < 256 << 10  # KiB; inflating whole input chunks took 2.1 GiB here
    assert error == ("StoreError import of bomb.tar.zst: decompressed size exceeds the limit of "
                     f"{16 << 20} bytes (unpack.max_layer_size)"), proc.stderr
    assert snapshot(store.layout.root) == before
    assert [i.repo_tags for i in store.images()] == [("docker.io/local/ok:latest",)]


def test_multi_frame_zstd_and_multi_member_gzip_import_whole(store: Store) -> None:
    """A tarball compressed in pieces (pzstd, pigz -i and friends write several frames or members)
    is read to its last frame: every file arrives and the diff_id is the whole tar's."""
    half = len(ROOTFS) // 2
    frames = zstandard.ZstdCompressor().compress(ROOTFS[:half]) + \
        zstandard.ZstdCompressor().compress(ROOTFS[half:])
    members = gzip.compress(ROOTFS[:half]) + gzip.compress(ROOTFS[half:])
    for data in (frames, members):
        image = import_rootfs(store, io.BytesIO(data), source_name="pieces")
        assert store.image_config(image)["rootfs"]["diff_ids"] == [digest_of(ROOTFS)]
        [layer] = store.layer_dirs(image)
        assert (layer / "etc" / "passwd").read_bytes() == b"root:x:0:0::/root:/bin/sh\n"
    assert_consistent(store)
