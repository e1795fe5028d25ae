"""The cosign "simple signing" payload: what a legacy ``.sig`` signature actually signs.

``{"critical":{"identity":{"docker-reference":R},"image":{"docker-manifest-digest":D},
"type":"cosign container image signature"},"optional":{...}|null}``

:func:`build` writes exactly the bytes cosign writes (Go's ``encoding/json``: compact, struct field
order, sorted map keys, ``<>&`` escaped), so a payload Stockade signs is indistinguishable from
cosign's. :func:`parse` is strict in the way containers/image's ``UntrustedSigstorePayload`` is
(``signature/internal/sigstore_payload.go``), the strictest consumer of these payloads: exactly the
keys ``critical`` and ``optional``; exactly ``type``, ``image`` and ``identity`` in ``critical``;
the exact type string; a digest ``algorithm:hex`` of a known algorithm and the right length;
``optional.creator`` a string and ``optional.timestamp`` an integer when present; no duplicate key
anywhere. It never re-serializes: callers verify signatures over the stored bytes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from trust.errors import SignatureDataError

SIGNATURE_TYPE = "cosign container image signature"
MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
# go-digest's registered algorithms and their encoded lengths.
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_DIGEST_RE = re.compile(r"^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")
# containers/image reads these optional keys with fixed types; anything else is free-form.
RESERVED_OPTIONAL = {"creator": str, "timestamp": int}


@dataclass(frozen=True)
class Payload:
    """A parsed payload. ``raw`` is the exact signed bytes."""

    docker_reference: str
    manifest_digest: str
    optional: Mapping[str, Any] | None = field(default=None)
    raw: bytes = b""


def validate_digest(value: object, what: str = "docker-manifest-digest") -> str:
    """``sha256:<64 lowercase hex>`` (or sha384/sha512), as go-digest's ``Parse`` requires."""
    if not isinstance(value, str):
        raise SignatureDataError(f"{what} is not a string")
    m = _DIGEST_RE.match(value)
    if not m:
        raise SignatureDataError(f"{what} {value!r:.80} is not a digest (algorithm:hex)")
    algorithm, encoded = m.groups()
    length = _DIGEST_LENGTHS.get(algorithm)
    if length is None:
        raise SignatureDataError(f"{what} uses unsupported algorithm {algorithm}")
    if len(encoded) != length or not re.fullmatch(r"[a-f0-9]+", encoded):
        raise SignatureDataError(f"{what} {value!r:.80}: {algorithm} needs {length} lowercase hex digits")
    return value


def _go_json(value: Any) -> str:
    """Go encoding/json's compact form: HTML-sensitive characters and U+2028/9 escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


def check_annotations(annotations: Mapping[str, str]) -> None:
    """Refuse ``-a`` annotations that would make containers/image reject the payload."""
    for key, value in annotations.items():
        expected = RESERVED_OPTIONAL.get(key)
        if expected is not None and not isinstance(value, expected):
            raise SignatureDataError(
                f"annotation {key!r} is reserved: containers/image requires a {expected.__name__} "
                "there (choose another key)")


def build(docker_reference: str, manifest_digest: str,
          annotations: Mapping[str, Any] | None = None) -> bytes:
    """The payload bytes cosign would sign for this image (``"optional":null`` without
    annotations, sorted keys with them)."""
    validate_digest(manifest_digest)
    if not docker_reference:
        raise SignatureDataError("docker-reference must not be empty")
    if annotations:
        check_annotations(annotations)
    critical = {"identity": {"docker-reference": docker_reference},
                "image": {"docker-manifest-digest": manifest_digest},
                "type": SIGNATURE_TYPE}
    optional = dict(sorted(annotations.items())) if annotations else None
    return _go_json({"critical": critical, "optional": optional}).encode()


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise SignatureDataError(f"duplicate key {key!r} in signature payload")
        result[key] = value
    return result


def loads_strict(raw: bytes, what: str) -> Any:
    """JSON with duplicate keys refused (two parsers must never disagree about one document)."""
    try:
        return json.loads(raw, object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, SignatureDataError):
            raise
        raise SignatureDataError(f"{what} is not valid JSON: {exc}") from None


def _exact(obj: Any, keys: set[str], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise SignatureDataError(f"{where} is not a JSON object")
    missing, extra = keys - obj.keys(), obj.keys() - keys
    if missing:
        raise SignatureDataError(f"{where} lacks {', '.join(sorted(missing))}")
    if extra:
        raise SignatureDataError(f"{where} has unknown key(s) {', '.join(sorted(extra))}")
    return obj


def parse(raw: bytes) -> Payload:
    """Parse a payload strictly (see the module docstring); raise SignatureDataError naming the rule."""
    doc = _exact(loads_strict(raw, "signature payload"), {"critical", "optional"}, "payload")
    optional = doc["optional"]
    if optional is not None:
        if not isinstance(optional, dict):
            raise SignatureDataError("payload optional is neither an object nor null")
        creator = optional.get("creator")
        if "creator" in optional and not isinstance(creator, str):
            raise SignatureDataError("payload optional.creator is not a string")
        stamp = optional.get("timestamp")
        if "timestamp" in optional and (isinstance(stamp, bool) or not isinstance(stamp, (int, float))
                                        or int(stamp) != stamp):
            raise SignatureDataError("payload optional.timestamp is not an integer")
    critical = _exact(doc["critical"], {"type", "image", "identity"}, "payload critical")
    if critical["type"] != SIGNATURE_TYPE:
        raise SignatureDataError(f"payload type {critical['type']!r:.80} is not {SIGNATURE_TYPE!r}")
    image = _exact(critical["image"], {"docker-manifest-digest"}, "payload critical.image")
    digest = validate_digest(image["docker-manifest-digest"])
    identity = _exact(critical["identity"], {"docker-reference"}, "payload critical.identity")
    reference = identity["docker-reference"]
    if not isinstance(reference, str):
        raise SignatureDataError("payload docker-reference is not a string")
    return Payload(docker_reference=reference, manifest_digest=digest, optional=optional, raw=raw)
