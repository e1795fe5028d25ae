"""``import``: rootfs tarballs (plain or compressed) become one-layer images, ``--change`` applies,
and a bad tarball is refused with the store left as it was."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
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
    (gzip.compress(ROOTFS)[:-20], StoreError, "the gzip stream is truncated"),
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
    with pytest.raises(StoreError, match=r"expands past unpack.max_layer_size \(4096 bytes\)"):
        import_rootfs(store, io.BytesIO(gzip.compress(tar_bytes([file("big", bytes(100_000))]))))
    assert store.images() == []
