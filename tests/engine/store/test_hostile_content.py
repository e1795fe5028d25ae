"""Content the store cannot file, from a registry or an archive: refused by name, store unchanged.

The store files content under sha256 (``blobs/sha256/<hex>``, ``layers/sha256/<hex>``). A digest of
another registered algorithm (OCI allows sha512) used to reach ``open()`` in a directory that does
not exist: a pull or a load then died on ``FileNotFoundError`` naming a temporary file, after the
layers had been downloaded.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from pathlib import Path

import pytest

from engine.config import Paths
from engine.layers import LayerError
from engine.reference import Reference
from engine.registry import mediatypes as mt
from engine.registry.errors import VerificationError
from engine.registry.platform import Platform, PlatformError
from engine.store import Store, StoreError
from engine.store.archive import load, save
from engine.store.importer import import_rootfs
from engine.store.layout import UnsupportedDigestError
from tests.engine.layers.builders import file, tar_bytes
from tests.engine.registry.fixtures import make_config
from tests.engine.registry.hostile import Hostile, digest_of
from tests.engine.registry.oci import Parts, make_image
from tests.engine.store.helpers import assert_consistent
from tests.support.cli import stockade
from tests.engine.store.test_pull import Make, refused, seeded, store  # noqa: F401 - fixtures


def sha512(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


def manifest_by(parts: Parts, config_digest: str, layer_digest: str) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                       "config": {"mediaType": mt.OCI_CONFIG, "digest": config_digest,
                                  "size": len(parts.config)},
                       "layers": [{"mediaType": parts.layer_type, "digest": layer_digest,
                                   "size": len(parts.layers[0])}]}).encode()


@pytest.mark.parametrize("by", ["config", "layer", "manifest"])
def test_pull_of_sha512_content_is_refused_before_any_download(seeded: Store, make_client: Make,
                                                               hostile: Hostile, by: str) -> None:
    parts = make_image([[file("x", b"x" * 1000)]])
    config, layer = parts.config, parts.layers[0]
    config_digest = sha512(config) if by == "config" else digest_of(config)
    layer_digest = sha512(layer) if by == "layer" else digest_of(layer)
    manifest = manifest_by(parts, config_digest, layer_digest)
    claimed = sha512(manifest) if by == "manifest" else digest_of(manifest)
    hostile.manifest("evil/app", "latest", manifest, mt.OCI_MANIFEST, claimed=claimed)
    hostile.blob("evil/app", config_digest, config)
    hostile.blob("evil/app", layer_digest, layer)
    refused(seeded, make_client(), f"{hostile.host}/evil/app", UnsupportedDigestError,
            r"blob sha512:[0-9a-f]{12}…: the store keeps sha256 content only \(sha512 is not supported\)")
    assert not [s for s in hostile.seen if s.path.startswith("/v2/evil/app/blobs/")]


def test_load_of_a_sha512_blob_member_is_refused(paths: Paths) -> None:
    store = Store(paths, make_config())
    parts = make_image()
    manifest = manifest_by(parts, sha512(parts.config), sha512(parts.layers[0]))
    index = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": mt.OCI_MANIFEST, "digest": sha512(manifest), "size": len(manifest)}]}).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in [("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'), ("index.json", index),
                           *[(f"blobs/sha512/{sha512(d)[7:]}", d) for d in (manifest, parts.config, parts.layers[0])]]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(StoreError, match=r"evil\.tar: member blobs/sha512/[0-9a-f]{128}: blob sha512:"
                                         r"[0-9a-f]{12}…: the store keeps sha256 content only"):
        load(store, io.BytesIO(out.getvalue()), what="evil.tar")
    assert not [p for p in paths.root.rglob("*") if p.is_file() and "locks" not in p.parts]
    assert_consistent(store)


def _index(entries: list[tuple[bytes, str]]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        {"mediaType": media_type, "digest": digest_of(raw), "size": len(raw),
         "platform": {"os": "linux", "architecture": Platform.host().architecture}}
        for raw, media_type in entries]}).encode()


@pytest.mark.parametrize("case", ["index in an index", "entry type lies"])
def test_index_entries_that_are_not_what_they_say(seeded: Store, make_client: Make, hostile: Hostile,
                                                  case: str) -> None:
    """An index must lead to an image manifest of the type it declares, in one step: an index
    nested in the chosen entry, or an entry whose media type lies, is refused, store unchanged."""
    parts = make_image(arch=Platform.host().architecture)
    hostile.image("evil/app", "inner", parts.config, list(parts.layers))
    if case == "index in an index":
        inner = _index([(parts.manifest, mt.OCI_MANIFEST)])
        outer = _index([(inner, mt.OCI_INDEX)])
        hostile.manifest("evil/app", digest_of(inner), inner, mt.OCI_INDEX)
        message = rf"entry {digest_of(inner)} is itself an index"
    else:
        outer = _index([(parts.manifest, mt.DOCKER_MANIFEST)])
        message = re.escape(f"entry {parts.digest} declares {mt.DOCKER_MANIFEST} but the manifest is "
                            f"{mt.OCI_MANIFEST}")
    hostile.manifest("evil/app", "latest", outer, mt.OCI_INDEX)
    refused(seeded, make_client(), f"{hostile.host}/evil/app", VerificationError, message)
    assert not [s for s in hostile.seen if s.path.startswith("/v2/evil/app/blobs/")]


ESC = "\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J"  # OSC 52 (write the clipboard), then clear the screen


def test_escape_sequences_in_an_image_config_never_reach_the_terminal(paths: Paths, make_client: Make,
                                                                    hostile: Hostile) -> None:
    parts = make_image(config={"Labels": {f"k{ESC}": f"v{ESC}"}, "Env": [f"A={ESC}"]})
    doc = json.loads(parts.config)
    doc["created"] = f"yesterday{ESC}"
    doc["author"] = f"me{ESC}"
    doc["history"] = [{"created": f"then{ESC}", "created_by": f"RUN x{ESC}", "comment": f"c{ESC}"}]
    config = json.dumps(doc).encode()
    manifest = json.loads(parts.manifest)
    manifest["config"].update(digest=digest_of(config), size=len(config))
    raw = json.dumps(manifest).encode()
    hostile.manifest("evil/app", "latest", raw, mt.OCI_MANIFEST)
    hostile.blob("evil/app", digest_of(config), config)
    hostile.blob("evil/app", digest_of(parts.layers[0]), parts.layers[0])
    name = f"{hostile.host}/evil/app:latest"
    Store(paths, make_config()).pull(Reference.parse(name), make_client())
    for args in (["images"], ["history", name], ["history", "--no-trunc", name],
                 ["image", "inspect", "-o", "table", name]):
        result = stockade(*args, root=paths.root)
        assert result.returncode == 0, result.stderr
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout, args
        assert r"\x1b]52;c;" in result.stdout, args  # shown, escaped


def test_a_config_platform_in_an_error_is_quoted_not_run(seeded: Store, make_client: Make,
                                                         hostile: Hostile) -> None:
    parts = make_image(arch=f"x{ESC}")
    hostile.image("evil/app", "latest", parts.config, list(parts.layers))
    with pytest.raises(PlatformError, match=r"the image is for linux/x\\x1b\]52;c;") as info:
        seeded.pull(Reference.parse(f"{hostile.host}/evil/app"), make_client(),
                    platform=Platform.parse("linux/arm64"))
    assert "\x1b" not in str(info.value)


def test_archive_members_no_image_needs_are_not_kept(paths: Paths, tmp_path: Path) -> None:
    store = Store(paths, make_config())
    image = import_rootfs(store, io.BytesIO(tar_bytes([file("hello", b"hi\n")])),
                          name=Reference.parse("local/app:v1"))
    saved = io.BytesIO()
    save(store, [(image, ["docker.io/local/app:v1"])], saved)
    junk = [(f"junk/{i}", bytes([i]) * 4096) for i in range(20)] + \
        [(f"blobs/sha256/{digest_of(b'spare' * i)[7:]}", b"spare" * i) for i in range(1, 20)]
    with tarfile.open(fileobj=io.BytesIO(saved.getvalue())) as tar, \
            tarfile.open(tmp_path / "padded.tar", "w") as out:
        for member in tar:
            out.addfile(member, tar.extractfile(member))
        for name, data in junk:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    other = Store(Paths.default(root=tmp_path / "other"), make_config())
    with open(tmp_path / "padded.tar", "rb") as f:
        [loaded] = load(other, f, what="padded.tar")
    assert loaded.digest == image.digest
    manifest = other.manifest(loaded)
    wanted = {loaded.digest, loaded.id, *(layer.digest for layer in manifest.layers)}
    assert set(other.blobs.digests()) == wanted
    assert other.gc().blobs == 0
    assert_consistent(other)


@pytest.mark.parametrize("which,size,message", [
    ("layer", 2 ** 63, r"announces \d+ bytes, its descriptor declares 9223372036854775808 \(size lie\)"),
    ("config", 2 ** 63, r"declares 9223372036854775808 bytes, more than the \d+-byte limit for documents"),
    ("layer", -1, r"layers\[0\]: descriptor size must be a non-negative integer, got -1"),
    ("config", 1.5, r"config: descriptor size must be a non-negative integer, got 1.5"),
])
def test_descriptor_sizes_out_of_range(seeded: Store, make_client: Make, hostile: Hostile, which: str,
                                       size: object, message: str) -> None:
    """Checked: already refused, store unchanged (a size the brief asked about: -1, 2**63, a float)."""
    parts = make_image()
    hostile.image("evil/app", "x", parts.config, list(parts.layers))
    doc = json.loads(parts.manifest)
    (doc["layers"][0] if which == "layer" else doc["config"])["size"] = size
    hostile.manifest("evil/app", "latest", json.dumps(doc).encode(), mt.OCI_MANIFEST)
    refused(seeded, make_client(), f"{hostile.host}/evil/app", VerificationError, message)


@pytest.mark.parametrize("declared", [mt.OCI_LAYER_ZSTD, mt.OCI_LAYER])
def test_gzip_layer_under_another_compression_type(seeded: Store, make_client: Make, hostile: Hostile,
                                                   declared: str) -> None:
    """Checked: the unpacker refuses a blob whose bytes disagree with its media type, and the pull
    leaves the store unchanged (the blob's digest and the config's diff_id are both honest)."""
    parts = make_image()
    hostile.image("evil/app", "latest", parts.config, list(parts.layers), layer_type=declared)
    refused(seeded, make_client(), f"{hostile.host}/evil/app", LayerError, "not zstd|gzip")
