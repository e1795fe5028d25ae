"""The store's queries and changes: names and IDs, tags, removal with the in-use predicate, prune, gc."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from engine.config import Paths
from engine.errors import NotFoundError
from engine.records import replace
from engine.reference import Reference, ReferenceError
from engine.registry.client import RegistryClient
from engine.store import Image, ImageInUseError, Store, StoreError
from engine.store.imageconfig import chain_ids
from tests.engine.layers.builders import file
from tests.engine.registry.fixtures import make_config
from tests.engine.registry.hostile import Hostile, digest_of
from tests.engine.registry.oci import Parts, make_image
from tests.engine.store.helpers import assert_consistent

Make = Callable[..., RegistryClient]


@pytest.fixture
def store(paths: Paths) -> Store:
    return Store(paths, make_config())


@pytest.fixture
def two(store: Store, make_client: Make, hostile: Hostile) -> tuple[Image, Image, Parts, Parts]:
    """Two images sharing a base layer: reg/a:1 and reg/b:1."""
    base = [file("base", b"shared")]
    pa, pb = make_image([base, [file("a", b"a")]]), make_image([base, [file("b", b"b")]])
    hostile.image("ns/a", "1", pa.config, list(pa.layers))
    hostile.image("ns/b", "1", pb.config, list(pb.layers))
    client = make_client()
    a = store.pull(Reference.parse(f"{hostile.host}/ns/a:1"), client).image
    b = store.pull(Reference.parse(f"{hostile.host}/ns/b:1"), client).image
    return a, b, pa, pb


def test_resolve_by_name_digest_id_and_prefix(store: Store, two: tuple[Image, Image, Parts, Parts],
                                              hostile: Hostile) -> None:
    a, b, pa, _ = two
    name = f"{hostile.host}/ns/a"
    assert store.resolve(f"{name}:1") == a
    assert store.resolve(f"{name}@{pa.digest}") == a
    assert store.resolve(a.id) == store.resolve(a.id.partition(":")[2]) == a
    assert store.resolve(a.digest) == a
    assert store.resolve(a.id.partition(":")[2][:12]) == a
    with pytest.raises(NotFoundError, match=rf"image {name}:2 is not in the store \(pull it first"):
        store.resolve(f"{name}:2")
    with pytest.raises(NotFoundError, match="no image with ID or digest"):
        store.resolve("sha256:" + "0" * 64)
    with pytest.raises(ReferenceError):
        store.resolve("Not/Valid")
    twins = [replace(a, id="sha256:abc" + c * 61, digest="sha256:" + c * 64) for c in "12"]
    with pytest.raises(StoreError, match="'abc' is ambiguous: it matches 2 images"):
        Store._by_prefix(twins, "abc", "abc")


def test_tag_and_remove(store: Store, two: tuple[Image, Image, Parts, Parts], hostile: Hostile) -> None:
    a, b, _, _ = two
    name = f"{hostile.host}/ns/a"
    store.tag(f"{name}:1", "other/name:v2")
    assert store.resolve("other/name:v2").repo_tags == (f"{name}:1", "docker.io/other/name:v2")
    with pytest.raises(ReferenceError, match="cannot tag"):
        store.tag(f"{name}:1", f"x@sha256:{'a' * 64}")
    with pytest.raises(StoreError, match="referenced in 2 repositories"):
        store.remove([a.id])
    removed = store.remove(["other/name:v2"])
    assert [(r.action, r.what) for r in removed] == [("untagged", "docker.io/other/name:v2")]
    removed = store.remove([f"{name}:1"])
    assert ("deleted", a.id) in [(r.action, r.what) for r in removed]
    assert [i.id for i in store.images()] == [b.id]
    # a's own layer is gone, the shared base stays (b uses it)
    chains_b = chain_ids(store.image_config(b)["rootfs"]["diff_ids"])
    assert sorted(store.layers.chain_ids()) == sorted(chains_b)
    assert_consistent(store)


def test_in_use_images_are_never_deleted(store: Store, two: tuple[Image, Image, Parts, Parts],
                                         hostile: Hostile) -> None:
    a, _, _, _ = two
    name = f"{hostile.host}/ns/a:1"
    in_use = lambda image: image.id == a.id  # noqa: E731 - the predicate the CLI builds
    with pytest.raises(ImageInUseError, match=rf"image {name} .* is used by a container"):
        store.remove([name], in_use=in_use)
    assert store.resolve(name) == a
    removed = store.remove([name], force=True, in_use=in_use)
    assert [(r.action, r.what) for r in removed] == [("untagged", name)]
    kept = store.resolve(a.digest)
    assert kept.dangling and store.layer_dirs(kept)  # untagged, still whole for its container
    removed, _ = store.prune(in_use=in_use)
    assert removed == [] and store.resolve(a.digest)
    removed, freed = store.prune()
    assert ("deleted", a.id) in [(r.action, r.what) for r in removed] and freed.blobs >= 2


def test_prune_all_and_gc_of_leftovers(store: Store, two: tuple[Image, Image, Parts, Parts]) -> None:
    orphan = store.blobs.write_bytes(b"nobody refers to me")
    stale = store.layout.blobs / "sha256" / ".abc.tmp-123"
    stale.write_bytes(b"killed writer")
    result = store.gc()
    assert result.blobs == 1 and not store.blobs.has(orphan) and not stale.exists()
    removed, freed = store.prune(all_unused=True)
    assert len([r for r in removed if r.action == "deleted"]) == 2
    assert store.images() == [] and list(store.blobs.digests()) == [] and list(store.layers.chain_ids()) == []
    assert freed.layers == 3


def test_layer_dirs_reunpack_a_missing_layer(store: Store, two: tuple[Image, Image, Parts, Parts]) -> None:
    a, _, _, _ = two
    dirs = store.layer_dirs(a)
    assert [(d / name).read_bytes() for d, name in zip(dirs, ("base", "a"))] == [b"shared", b"a"]
    store.layers.delete(chain_ids(store.image_config(a)["rootfs"]["diff_ids"])[1])
    assert store.layer_dirs(a) == dirs and (dirs[1] / "a").read_bytes() == b"a"


def test_history_and_inspect(store: Store, two: tuple[Image, Image, Parts, Parts]) -> None:
    a, _, pa, _ = two
    history = store.history(a)
    assert [h["created_by"] for h in history] == ["layer 1", "layer 0"]
    assert [h["layer"] for h in history] == [digest_of(pa.layers[1]), digest_of(pa.layers[0])]
    doc = store.inspect(a)
    assert doc["Id"] == a.id and doc["Digest"] == pa.digest and doc["Architecture"] == "amd64"
    assert doc["Manifest"]["config"]["digest"] == a.id
    assert doc["Config"]["Cmd"] == ["/bin/sh"]


def test_damaged_index_is_reported(store: Store, tmp_path: Path) -> None:
    store.layout.ensure()
    store.layout.index.write_text('{"version": 1, "images": [], "tags": {}, "digests": {}}')
    with pytest.raises(StoreError, match=r"images.json: 'images' must be an object"):
        store.images()
    store.layout.index.write_text("{")
    with pytest.raises(StoreError, match="the image index is damaged"):
        store.images()
