"""The OCI data model without a network: manifests, indexes, media types, platforms, challenges."""

from __future__ import annotations

import json

import pytest

from engine.registry import mediatypes as mt
from engine.registry.auth import parse_challenges
from engine.registry.errors import UnsupportedMediaTypeError, VerificationError
from engine.registry.manifest import ImageIndex, ImageManifest, check_image_manifest, parse_manifest
from engine.registry.platform import Platform, PlatformError, select_manifest

D1, D2, D3 = ("sha256:" + c * 64 for c in "123")


def manifest(**over: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": D1, "size": 10},
        "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": D2, "size": 20}]}
    doc.update(over)
    return doc


def raw(doc: object) -> bytes:
    return json.dumps(doc).encode()


def entry(digest: str, os_: str, arch: str, variant: str | None = None) -> dict[str, object]:
    platform = {"os": os_, "architecture": arch, **({"variant": variant} if variant else {})}
    return {"mediaType": mt.OCI_MANIFEST, "digest": digest, "size": 5, "platform": platform}


def test_image_manifest_parses() -> None:
    parsed = parse_manifest(raw(manifest()), mt.OCI_MANIFEST, where="m")
    assert isinstance(parsed, ImageManifest)
    assert parsed.config.digest == D1 and parsed.layers[0].size == 20 and parsed.is_image
    check_image_manifest(parsed, "m")


@pytest.mark.parametrize("header,body_type,expected", [
    (None, mt.OCI_MANIFEST, mt.OCI_MANIFEST),
    ("application/json", None, mt.OCI_MANIFEST),  # generic header, no mediaType: shape decides
    (f"{mt.DOCKER_MANIFEST}; charset=utf-8", mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST),
])
def test_media_type_comes_from_header_then_body_then_shape(header: str | None, body_type: str | None,
                                                          expected: str) -> None:
    doc = manifest()
    if body_type is None:
        del doc["mediaType"]
    else:
        doc["mediaType"] = body_type
    assert parse_manifest(raw(doc), header, where="m").media_type == expected


def test_index_parses_and_selects_the_host_platform() -> None:
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        entry(D1, "linux", "arm64", "v8"), entry(D2, "linux", "amd64"), entry(D3, "unknown", "unknown")]}
    parsed = parse_manifest(raw(index), mt.OCI_INDEX, where="i")
    assert isinstance(parsed, ImageIndex)
    assert select_manifest(parsed.manifests, Platform.parse("linux/amd64"), where="i").digest == D2
    assert select_manifest(parsed.manifests, Platform.parse("linux/arm64"), where="i").digest == D1
    assert select_manifest(parsed.manifests, Platform.parse("linux/arm64/v8"), where="i").digest == D1
    with pytest.raises(PlatformError, match=r"no manifest for platform linux/s390x \(the index offers: "
                                            r"linux/amd64, linux/arm64/v8\)"):
        select_manifest(parsed.manifests, Platform.parse("linux/s390x"), where="i")


def test_exact_variant_wins_over_first_compatible() -> None:
    entries = parse_manifest(raw({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        entry(D1, "linux", "arm", "v6"), entry(D2, "linux", "arm", "v7")]}), None, where="i")
    assert isinstance(entries, ImageIndex)
    assert select_manifest(entries.manifests, Platform("linux", "arm", "v7"), where="i").digest == D2


@pytest.mark.parametrize("text", ["linux", "linux/", "a/b/c/d", ""])
def test_bad_platform_strings(text: str) -> None:
    with pytest.raises(PlatformError, match="expected os/arch"):
        Platform.parse(text)


@pytest.mark.parametrize("doc,header,message", [
    (b"not json", mt.OCI_MANIFEST, "not valid JSON"),
    (raw([1, 2]), mt.OCI_MANIFEST, "must be a JSON object"),
    (raw(manifest(schemaVersion=1)), mt.OCI_MANIFEST, "schemaVersion must be 2"),
    (raw(manifest()), mt.OCI_INDEX, "the registry says application/vnd.oci.image.index.v1+json but "
                                     "the manifest says application/vnd.oci.image.manifest.v1+json"),
    (raw(manifest(layers="x")), mt.OCI_MANIFEST, "must list its layers"),
    (raw(manifest(config={"mediaType": mt.OCI_CONFIG, "digest": "sha256:../x", "size": 1})),
     mt.OCI_MANIFEST, "m: config: invalid digest"),
    (raw(manifest(config={"mediaType": mt.OCI_CONFIG, "digest": D1, "size": -1})), mt.OCI_MANIFEST,
     "size must be a non-negative integer"),
    (raw(manifest(config={"mediaType": "no slash", "digest": D1, "size": 1})), mt.OCI_MANIFEST,
     "malformed media type"),
    (raw({"schemaVersion": 2}), None, "cannot tell what kind of manifest"),
])
def test_malformed_manifests_are_refused_with_where(doc: bytes, header: str | None, message: str) -> None:
    with pytest.raises(VerificationError) as info:
        parse_manifest(doc, header, where="m")
    assert message in str(info.value)
    assert str(info.value).startswith("m")


@pytest.mark.parametrize("header", ["application/vnd.example.unknown+json", mt.DOCKER_SCHEMA1[1]])
def test_unknown_and_schema1_media_types(header: str) -> None:
    with pytest.raises(UnsupportedMediaTypeError):
        parse_manifest(raw(manifest(mediaType=header)), header, where="m")


def test_artifacts_parse_but_are_not_images() -> None:
    sig = manifest(config={"mediaType": "application/vnd.dev.cosign.artifact.sig.v1+json",
                           "digest": D1, "size": 2})
    parsed = parse_manifest(raw(sig), None, where="sig")
    assert isinstance(parsed, ImageManifest) and not parsed.is_image
    with pytest.raises(UnsupportedMediaTypeError, match="not an image configuration"):
        check_image_manifest(parsed, "sig")
    odd_layer = parse_manifest(raw(manifest(layers=[{"mediaType": "application/x-foo", "digest": D2,
                                                     "size": 1}])), None, where="m")
    assert isinstance(odd_layer, ImageManifest)
    with pytest.raises(UnsupportedMediaTypeError, match=r"layers\[0\] has unsupported media type"):
        check_image_manifest(odd_layer, "m")


def test_challenge_parsing() -> None:
    [bearer] = parse_challenges('Bearer realm="https://auth.example/token",service="reg",'
                                'scope="repository:a/b:pull,push"')
    assert bearer.scheme == "bearer"
    assert bearer.params == {"realm": "https://auth.example/token", "service": "reg",
                             "scope": "repository:a/b:pull,push"}
    basic, other = parse_challenges('Basic realm="a \\"quoted\\", realm", Bearer realm=x')
    assert basic.params["realm"] == 'a "quoted", realm' and other.params == {"realm": "x"}
    assert parse_challenges("") == []
