"""save/load: OCI layout archives that skopeo reads and writes, docker-archive, and hostile archives."""

from __future__ import annotations

import io
import json
import subprocess  # nosec B404 # skopeo with argument lists
import tarfile
from pathlib import Path

import pytest

from engine.config import Paths
from engine.errors import StockadeError
from engine.reference import Reference
from engine.store import Store
from engine.store.archive import load, save
from engine.store.importer import import_rootfs
from tests.engine.layers.builders import file, tar_bytes
from tests.engine.registry.fixtures import make_config
from tests.engine.registry.hostile import digest_of
from tests.engine.store.helpers import assert_consistent, snapshot


def skopeo(*args: str) -> str:
    return subprocess.run(["skopeo", *args], check=True, capture_output=True, text=True).stdout  # nosec


@pytest.fixture
def store(paths: Paths) -> Store:
    return Store(paths, make_config())


def imported(store: Store, name: str = "local/app:v1") -> object:
    return import_rootfs(store, io.BytesIO(tar_bytes([file("hello", b"hello\n")])), name=Reference.parse(name))


def test_save_is_read_by_skopeo_and_loads_back(store: Store, tmp_path: Path) -> None:
    image = imported(store)
    archive = tmp_path / "app.tar"
    with open(archive, "wb") as f:
        save(store, [(image, ["docker.io/local/app:v1"])], f)  # type: ignore[list-item]
    info = json.loads(skopeo("inspect", f"oci-archive:{archive}:v1"))
    assert info["Digest"] == image.digest  # type: ignore[attr-defined]
    skopeo("copy", "-q", f"oci-archive:{archive}:v1", f"oci:{tmp_path / 'layout'}:v1")
    other = Store(Paths.default(root=tmp_path / "other"), make_config())
    with open(archive, "rb") as f:
        [loaded] = load(other, f)
    assert (loaded.digest, loaded.id, loaded.repo_tags) == (image.digest, image.id,  # type: ignore[attr-defined]
                                                            ("docker.io/local/app:v1",))
    assert (other.layer_dirs(loaded)[0] / "hello").read_bytes() == b"hello\n"
    assert_consistent(other)


def test_load_what_skopeo_wrote(store: Store, busybox_layout: Path, tmp_path: Path) -> None:
    oci = tmp_path / "bb-oci.tar"
    skopeo("copy", "-q", f"oci:{busybox_layout}:busybox", f"oci-archive:{oci}:busybox")
    digest = json.loads(skopeo("inspect", f"oci:{busybox_layout}:busybox"))["Digest"]
    with open(oci, "rb") as f:
        [from_oci] = load(store, f)
    assert from_oci.digest == digest and from_oci.dangling  # ref.name "busybox" is not a full name
    docker = tmp_path / "bb-docker.tar"
    skopeo("copy", "-q", f"oci:{busybox_layout}:busybox", f"docker-archive:{docker}:local/busybox:v1")
    with open(docker, "rb") as f:
        [from_docker] = load(store, f)
    assert from_docker.repo_tags == ("docker.io/local/busybox:v1",)
    assert from_docker.id == from_oci.id  # same config; the layer is stored uncompressed this time
    assert (store.layer_dirs(from_docker)[0] / "bin" / "busybox").is_file()
    assert_consistent(store)


def _archive(members: list[tuple[str, bytes]], *, device: str | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if device:
            info = tarfile.TarInfo(device)
            info.type = tarfile.CHRTYPE
            tar.addfile(info)
    return out.getvalue()


def _index(digest: str, size: int) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                      "digest": digest, "size": size}]}).encode()


HONEST = b'{"honest": true}'
HOSTILE_ARCHIVES = [
    (_archive([("blobs/sha256/" + digest_of(HONEST).partition(":")[2], HONEST + b" ")]),
     "content does not match its digest|more data than"),
    (_archive([("index.json", _index("sha256:" + "a" * 64, 10))]), "is missing from the archive"),
    (_archive([("oci-layout", b"{}")], device="blobs/sha256/dev"), "member 'blobs/sha256/dev' is not a regular file"),
    (b"definitely not a tar archive" * 40, "is not a tar archive"),
    (_archive([("index.json", b" " * (5 * 1024 * 1024))]), "index.json is larger than"),
    (_archive([("manifest.json", json.dumps([{"Config": "../../etc/passwd", "Layers": []}]).encode())]),
     "refers to '../../etc/passwd', which the archive does not contain"),
    (_archive([("blobs/sha256/../../x", b"x")]), "neither an OCI image layout nor a docker save archive"),
    (_archive([("oci-layout", b'{"imageLayoutVersion": "9.9"}'), ("index.json", _index(digest_of(HONEST), 16))]),
     "unsupported OCI layout version '9.9'"),
]


@pytest.mark.parametrize("data,message", HOSTILE_ARCHIVES)
def test_hostile_archives_leave_the_store_unchanged(store: Store, data: bytes, message: str) -> None:
    imported(store)
    before = snapshot(store.layout.root)
    with pytest.raises(StockadeError, match=message) as info:
        load(store, io.BytesIO(data), what="evil.tar")
    assert "evil.tar" in str(info.value) or "blob" in str(info.value)
    assert snapshot(store.layout.root) == before
    assert_consistent(store)
