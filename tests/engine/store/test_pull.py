"""Pull into the store: from the real registry, and from a lying one with the store left unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest

from engine.config import Paths
from engine.errors import StockadeError
from engine.layers import LayerError
from engine.reference import Reference
from engine.registry import mediatypes as mt
from engine.registry.client import RegistryClient
from engine.registry.errors import RegistryError, UnsupportedMediaTypeError, VerificationError
from engine.registry.platform import Platform, PlatformError
from engine.store import Store
from engine.store.pull import LayerEvent
from tests.engine.layers.builders import file, symlink
from tests.engine.registry.fixtures import Pushed, make_config
from tests.engine.registry.hostile import Hostile, digest_of, reply
from tests.engine.registry.oci import make_image, push_index
from tests.engine.store.helpers import assert_consistent, snapshot
from tests.support.registry import Registry

Make = Callable[..., RegistryClient]


@pytest.fixture
def store(paths: Paths) -> Store:
    return Store(paths, make_config())


def test_pull_what_skopeo_pushed(store: Store, make_client: Make, pushed_busybox: Pushed) -> None:
    events: list[LayerEvent] = []
    result = store.pull(Reference.parse(pushed_busybox.ref), make_client(), progress=events.append)
    assert result.digest == pushed_busybox.digest == result.image.digest
    assert result.image.repo_tags == (pushed_busybox.ref,)
    assert result.downloaded == sum(e.total for e in events if e.status == "done")
    assert {e.status for e in events} >= {"waiting", "downloading", "done"}
    [layer] = store.layer_dirs(result.image)
    assert (layer / "bin" / "busybox").is_file() and (layer / "etc" / "passwd").read_text().startswith("root:")
    assert store.image_config(result.image)["config"]["User"] == "1000:1000"
    assert_consistent(store)
    again = store.pull(Reference.parse(pushed_busybox.ref), make_client())
    assert again.downloaded == 0 and again.image == result.image
    by_digest = store.pull(Reference.parse(pushed_busybox.ref).with_digest(pushed_busybox.digest),
                           make_client())
    assert by_digest.image.digest == result.image.digest


def test_multi_layer_image_with_shared_base(store: Store, make_client: Make, hostile: Hostile) -> None:
    base = [file("etc/os-release", b"ID=test\n")]
    one = make_image([base, [file("app/one", b"1")]])
    two = make_image([base, [file("app/two", b"2")]])
    hostile.image("evil/one", "latest", one.config, list(one.layers))
    hostile.image("evil/two", "latest", two.config, list(two.layers))
    first = store.pull(Reference.parse(f"{hostile.host}/evil/one"), make_client()).image
    second = store.pull(Reference.parse(f"{hostile.host}/evil/two"), make_client())
    dirs1, dirs2 = store.layer_dirs(first), store.layer_dirs(second.image)
    assert dirs1[0] == dirs2[0] and dirs1[1] != dirs2[1]  # the base layer is unpacked once, shared
    assert second.downloaded == len(two.layers[1])
    assert (dirs2[1] / "app" / "two").read_bytes() == b"2"
    assert_consistent(store)


@pytest.fixture
def seeded(store: Store, make_client: Make, hostile: Hostile) -> Store:
    """A store that already holds an image: adversarial pulls must leave it exactly as it is."""
    honest = make_image([[file("honest", b"yes")]])
    hostile.image("good/app", "latest", honest.config, list(honest.layers))
    store.pull(Reference.parse(f"{hostile.host}/good/app"), make_client())
    return store


def refused(store: Store, client: RegistryClient, ref: str, error: type[Exception], match: str) -> None:
    before = snapshot(store.layout.root)
    with pytest.raises(error, match=match) as info:
        store.pull(Reference.parse(ref), client)
    assert isinstance(info.value, StockadeError) and "\n" not in str(info.value)
    assert snapshot(store.layout.root) == before
    assert_consistent(store)


def test_manifest_digest_mismatch_leaves_store_unchanged(seeded: Store, make_client: Make,
                                                         hostile: Hostile) -> None:
    parts = make_image()
    hostile.manifest("evil/app", "latest", parts.manifest, mt.OCI_MANIFEST, claimed="sha256:" + "1" * 64)
    refused(seeded, make_client(), f"{hostile.host}/evil/app", VerificationError,
            "does not match the digest the registry claims")
    hostile.manifest("evil/app", parts.digest, parts.manifest + b" ", mt.OCI_MANIFEST, claimed=parts.digest)
    refused(seeded, make_client(), f"{hostile.host}/evil/app@{parts.digest}", VerificationError,
            "does not match the digest asked for")


def test_layer_blob_mismatch_leaves_store_unchanged(seeded: Store, make_client: Make, hostile: Hostile) -> None:
    parts = make_image([[file("a", b"A" * 10000)]])
    hostile.image("evil/app", "latest", parts.config, list(parts.layers))
    layer = parts.layers[0]
    hostile.blob("evil/app", digest_of(layer), layer[:-8] + bytes(8))  # same size, other content
    refused(seeded, make_client(), f"{hostile.host}/evil/app", VerificationError,
            rf"blob {digest_of(layer)} .*: content does not match its digest")


def test_config_blob_mismatch_and_size_lie(seeded: Store, make_client: Make, hostile: Hostile) -> None:
    parts = make_image()
    hostile.image("evil/app", "latest", parts.config, list(parts.layers))
    hostile.blob("evil/app", digest_of(parts.config), parts.config.replace(b"amd64", b"arm64"))
    refused(seeded, make_client(), f"{hostile.host}/evil/app", VerificationError, "does not match its digest")
    hostile.blob("evil/app", digest_of(parts.config), parts.config)
    hostile.blob("evil/app", digest_of(parts.layers[0]), parts.layers[0] + b"\0" * 100)
    refused(seeded, make_client(), f"{hostile.host}/evil/app", VerificationError, "size lie")


def test_huge_manifest_leaves_store_unchanged(seeded: Store, make_client: Make, hostile: Hostile) -> None:
    def huge(h: object) -> None:
        reply(h, 200, b"{" + b" " * (8 * 1024 * 1024), {"Content-Type": mt.OCI_MANIFEST},  # type: ignore[arg-type]
              length=8 * 1024 * 1024 + 1)
    hostile.on("GET", "/v2/evil/app/manifests/latest", huge)
    refused(seeded, make_client(), f"{hostile.host}/evil/app", VerificationError, "max_manifest_size")


def test_unknown_layer_media_type_leaves_store_unchanged(seeded: Store, make_client: Make,
                                                         hostile: Hostile) -> None:
    parts = make_image(layer_type="application/vnd.evil.layer")
    hostile.image("evil/app", "latest", parts.config, list(parts.layers), layer_type="application/vnd.evil.layer")
    refused(seeded, make_client(), f"{hostile.host}/evil/app", UnsupportedMediaTypeError,
            r"layers\[0\] has unsupported media type 'application/vnd.evil.layer'")


def test_redirect_loop_leaves_store_unchanged(seeded: Store, make_client: Make, hostile: Hostile) -> None:
    parts = make_image()
    hostile.image("evil/app", "latest", parts.config, list(parts.layers))
    hostile.on("GET", f"/v2/evil/app/blobs/{digest_of(parts.layers[0])}",
               lambda h: reply(h, 302, headers={"Location": "/loop"}))
    hostile.on("GET", "/loop", lambda h: reply(h, 302, headers={"Location": "/v2/evil/app/blobs/"
                                                                 + digest_of(parts.layers[0])}))
    refused(seeded, make_client(), f"{hostile.host}/evil/app", RegistryError, "redirect loop")


def test_diff_id_lie_leaves_store_unchanged(seeded: Store, make_client: Make, hostile: Hostile) -> None:
    parts = make_image(diff_ids=["sha256:" + "d" * 64])
    hostile.image("evil/app", "latest", parts.config, list(parts.layers))
    refused(seeded, make_client(), f"{hostile.host}/evil/app", VerificationError,
            r"its uncompressed content has diff_id sha256:[0-9a-f]{64}, the image config says sha256:d{64}")


def test_escaping_layer_leaves_store_unchanged(seeded: Store, make_client: Make, hostile: Hostile) -> None:
    parts = make_image([[symlink("link", "/etc"), file("link/planted", b"x")]])
    hostile.image("evil/app", "latest", parts.config, list(parts.layers))
    refused(seeded, make_client(), f"{hostile.host}/evil/app", LayerError, "layer entry 'link/planted'")
    assert not Path("/etc/planted").exists()


def test_layer_count_mismatch_and_wrong_platform(seeded: Store, make_client: Make, hostile: Hostile) -> None:
    parts = make_image(diff_ids=["sha256:" + "d" * 64, "sha256:" + "e" * 64])
    hostile.image("evil/app", "latest", parts.config, list(parts.layers))
    refused(seeded, make_client(), f"{hostile.host}/evil/app", VerificationError,
            "the manifest lists 1 layers but the config has 2 diff_ids")
    arm = make_image(arch="arm64")
    hostile.image("evil/arm", "latest", arm.config, list(arm.layers))
    before = snapshot(seeded.layout.root)
    with pytest.raises(PlatformError, match="the image is for linux/arm64, not linux/amd64"):
        seeded.pull(Reference.parse(f"{hostile.host}/evil/arm"), make_client(), platform=Platform.parse("linux/amd64"))
    assert snapshot(seeded.layout.root) == before


def test_one_failing_layer_cancels_the_pull(seeded: Store, make_client: Make, hostile: Hostile) -> None:
    parts = make_image([[file(f"f{i}", bytes([i]) * 200_000)] for i in range(6)])
    hostile.image("evil/app", "latest", parts.config, list(parts.layers))
    bad = parts.layers[3]
    hostile.blob("evil/app", digest_of(bad), bad[:-1] + b"\xff")
    with pytest.raises(VerificationError):
        seeded.pull(Reference.parse(f"{hostile.host}/evil/app"), make_client())
    assert [i.repo_tags for i in seeded.images()] == [(f"{hostile.host}/good/app:latest",)]
    assert_consistent(seeded)
    assert not seeded.blobs.has(digest_of(bad))
    hostile.blob("evil/app", digest_of(bad), bad)
    seeded.pull(Reference.parse(f"{hostile.host}/evil/app"), make_client())  # a re-run completes
    assert_consistent(seeded)
    assert json.loads(seeded.layout.index.read_text())["tags"][f"{hostile.host}/evil/app:latest"] == parts.digest


def test_layer_without_end_of_archive_blocks(store: Store, make_client: Make, hostile: Hostile) -> None:
    """``umoci insert`` writes layers whose tar stream ends after the last entry's data; GNU tar and
    Go's archive/tar (Docker, podman, containerd) accept them, and so must we."""
    import gzip as gz

    from tests.engine.layers.builders import tar_bytes
    from tests.engine.registry.oci import digest as sha

    tar = tar_bytes([file("data", b"x" * 1024)])
    trimmed = tar[:1536]  # header + data, no trailing zero blocks: what `umoci insert` produces
    parts = make_image(diff_ids=[sha(trimmed)])
    blob = gz.compress(trimmed, mtime=0)
    manifest = json.loads(parts.manifest)
    manifest["layers"][0].update(digest=digest_of(blob), size=len(blob))
    hostile.image("umoci/insert", "latest", parts.config, [blob])
    body = json.dumps(manifest).encode()
    hostile.manifest("umoci/insert", "latest", body, mt.OCI_MANIFEST)
    image = store.pull(Reference.parse(f"{hostile.host}/umoci/insert"), make_client()).image
    assert (store.layer_dirs(image)[0] / "data").read_bytes() == b"x" * 1024


def test_multi_platform_index(store: Store, make_client: Make, registry: Registry) -> None:
    client = make_client()
    ref = Reference.parse(f"{registry.host}/store/multi:latest")
    amd, arm = make_image(arch="amd64"), make_image([[file("arm", b"arm")]], arch="arm64")
    index = push_index(client, ref, [(amd, {"os": "linux", "architecture": "amd64"}),
                                     (arm, {"os": "linux", "architecture": "arm64"})])
    result = store.pull(ref, client)
    assert result.digest == digest_of(index) and result.image.digest == amd.digest
    assert result.image.repo_digests == (f"{ref.name}@{digest_of(index)}",)  # Docker's RepoDigests
    assert store.blobs.has(digest_of(index))
    # The tag is pinned to the index it named (what a signer of the tag signed); another tag of
    # the same repository on the same manifest, made here, is judged by the manifest alone.
    tag = f"{ref.name}:latest"
    assert result.image.digest_for(tag) == digest_of(index)
    retagged = store.tag(amd.digest, f"{ref.name}:local")
    assert retagged.digest_for(f"{ref.name}:local") == amd.digest
    assert retagged.digest_for(tag) == digest_of(index)  # an existing tag keeps its pin
    store.remove([f"{ref.name}:local"])
    arm_result = store.pull(ref, client, platform=Platform.parse("linux/arm64"))
    assert arm_result.image.digest == arm.digest and arm_result.image.platform == "linux/arm64"
    assert store.resolve(f"{ref.name}@{digest_of(index)}").digest == arm.digest  # the latest pull
    store.remove([amd.digest])
    assert store.gc().blobs == 0 and store.blobs.has(digest_of(index))  # arm still names it
    assert_consistent(store)
