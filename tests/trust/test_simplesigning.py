"""The cosign simple-signing payload: byte-for-byte what cosign writes, parsed as strictly as
containers/image parses it (``signature/internal/sigstore_payload.go``), in both directions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trust import simplesigning
from trust.errors import SignatureDataError

DIGEST = "sha256:" + "ab" * 32


def test_build_matches_cosign_bytes(vectors: Path) -> None:
    for folder in ("legacy-keyed", "legacy-keyless"):
        raw = (vectors / "sigstore-rs" / folder / "payload.json").read_bytes()
        parsed = simplesigning.parse(raw)
        assert simplesigning.build(parsed.docker_reference, parsed.manifest_digest) == raw


def test_build_with_annotations_sorts_keys_and_escapes_like_go() -> None:
    raw = simplesigning.build("example.com/app", DIGEST, {"z": "1", "a": "<b>&"})
    assert raw.endswith(b'"optional":{"a":"\\u003cb\\u003e\\u0026","z":"1"}}')
    assert simplesigning.parse(raw).optional == {"a": "<b>&", "z": "1"}


def test_our_payload_passes_the_strict_rules() -> None:
    raw = simplesigning.build("127.0.0.1:5000/busybox", DIGEST, {"creator": "stockade"})
    parsed = simplesigning.parse(raw)
    assert (parsed.docker_reference, parsed.manifest_digest, parsed.raw) == ("127.0.0.1:5000/busybox", DIGEST, raw)


def test_reserved_annotation_types_are_enforced() -> None:
    with pytest.raises(SignatureDataError, match="reserved"):
        simplesigning.build("r", DIGEST, {"timestamp": "yesterday"})


def _doc(**changes: object) -> dict:
    doc = {"critical": {"identity": {"docker-reference": "r"}, "image": {"docker-manifest-digest": DIGEST},
                        "type": simplesigning.SIGNATURE_TYPE}, "optional": None}
    for path, value in changes.items():
        target = doc
        *parents, last = path.split("__")
        for p in parents:
            target = target[p]
        if value is ...:
            del target[last]
        else:
            target[last] = value
    return doc


@pytest.mark.parametrize(("doc", "message"), [
    (_doc(extra=1), "unknown key"),
    (_doc(optional=...), "lacks optional"),
    (_doc(critical__extra="x"), "unknown key"),
    (_doc(critical__type="cosign container image signature "), "is not"),
    (_doc(critical__type=...), "lacks type"),
    (_doc(critical__image__other="x"), "unknown key"),
    (_doc(critical__image__docker_manifest_digest="x"), "unknown key"),
    (_doc(critical__image={"docker-manifest-digest": "sha256:ABCD"}), "needs 64 lowercase hex"),
    (_doc(critical__image={"docker-manifest-digest": "sha256:" + "A" * 64}), "lowercase"),
    (_doc(critical__image={"docker-manifest-digest": "md5:" + "a" * 32}), "unsupported algorithm"),
    (_doc(critical__image={"docker-manifest-digest": "sha256" + "a" * 64}), "not a digest"),
    (_doc(critical__image={"docker-manifest-digest": 5}), "not a string"),
    (_doc(critical__identity={"docker-reference": 5}), "not a string"),
    (_doc(critical__identity={}), "lacks docker-reference"),
    (_doc(optional=[]), "neither an object nor null"),
    (_doc(optional={"creator": 7}), "creator is not a string"),
    (_doc(optional={"timestamp": 1.5}), "timestamp is not an integer"),
    (_doc(optional={"timestamp": "1"}), "timestamp is not an integer"),
    (_doc(critical=[]), "not a JSON object"),
])
def test_strict_parser_rejects(doc: dict, message: str) -> None:
    with pytest.raises(SignatureDataError, match=message):
        simplesigning.parse(json.dumps(doc).encode())


def test_duplicate_keys_are_rejected() -> None:
    raw = simplesigning.build("r", DIGEST).replace(b'"optional":null', b'"optional":null,"optional":{}')
    with pytest.raises(SignatureDataError, match="duplicate key"):
        simplesigning.parse(raw)


def test_free_form_optional_keys_and_sha512_are_accepted() -> None:
    doc = _doc(optional={"timestamp": 1700000000, "anything": {"nested": [1]}},
               critical__image={"docker-manifest-digest": "sha512:" + "0" * 128})
    assert simplesigning.parse(json.dumps(doc).encode()).optional["anything"] == {"nested": [1]}


def test_not_json() -> None:
    with pytest.raises(SignatureDataError, match="not valid JSON"):
        simplesigning.parse(b"\xff{")


def test_a_payload_containers_image_writes_is_accepted() -> None:
    # NewUntrustedSigstorePayload: creator and timestamp in optional, Go's map order (sorted keys)
    raw = (b'{"critical":{"identity":{"docker-reference":"quay.io/app/app:1"},'
           b'"image":{"docker-manifest-digest":"' + DIGEST.encode() + b'"},'
           b'"type":"cosign container image signature"},'
           b'"optional":{"creator":"containers/image 5.32.0","timestamp":1730000000}}')
    parsed = simplesigning.parse(raw)
    assert parsed.optional == {"creator": "containers/image 5.32.0", "timestamp": 1730000000}
    assert parsed.docker_reference == "quay.io/app/app:1"
