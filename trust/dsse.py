"""DSSE envelopes and the in-toto statements they carry.

A DSSE signature covers PAE(payloadType, payload) = ``"DSSEv1" SP len(type) SP type SP len(body)
SP body`` (secure-systems-lab/dsse ``protocol.md``), never the JSON envelope, so the envelope can be
re-encoded without breaking anything; the payload bytes are the base64-decoded ``payload`` field,
used exactly as stored.

cosign v3 signs an image with a statement whose subject is the manifest digest and whose
predicateType is ``https://sigstore.dev/cosign/sign/v1``; attestations carry any predicate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from trust.errors import SignatureDataError
from trust.simplesigning import loads_strict
from trust.untrusted import b64, b64decode

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
STATEMENT_TYPES = (STATEMENT_V1, "https://in-toto.io/Statement/v0.1")
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope with its payload decoded; signatures as raw bytes."""

    payload_type: str
    payload: bytes
    signatures: tuple[bytes, ...]

    @classmethod
    def from_json_obj(cls, obj: Any, what: str = "DSSE envelope") -> "Envelope":
        if not isinstance(obj, dict):
            raise SignatureDataError(f"{what} is not a JSON object")
        payload_type = obj.get("payloadType")
        if not isinstance(payload_type, str) or not payload_type:
            raise SignatureDataError(f"{what} has no payloadType")
        payload = b64decode(obj.get("payload"), f"{what} payload")
        sigs = obj.get("signatures")
        if not isinstance(sigs, list) or not sigs:
            raise SignatureDataError(f"{what} has no signatures")
        decoded = []
        for i, s in enumerate(sigs):
            if not isinstance(s, dict):
                raise SignatureDataError(f"{what} signature {i} is not an object")
            decoded.append(b64decode(s.get("sig"), f"{what} signature {i}"))
        return cls(payload_type, payload, tuple(decoded))

    @classmethod
    def from_bytes(cls, raw: bytes, what: str = "DSSE envelope") -> "Envelope":
        return cls.from_json_obj(loads_strict(raw, what), what)

    def to_json_obj(self) -> dict[str, Any]:
        return {"payload": b64(self.payload), "payloadType": self.payload_type,
                "signatures": [{"sig": b64(s)} for s in self.signatures]}

    @property
    def pae(self) -> bytes:
        return pae(self.payload_type, self.payload)


def statement(subject_name: str | None, sha256_hex: str, predicate_type: str,
              predicate: Any = None) -> bytes:
    """An in-toto Statement v1 about one artifact, compact JSON."""
    subject: dict[str, Any] = {"digest": {"sha256": sha256_hex}}
    if subject_name:
        subject = {"name": subject_name, **subject}
    doc: dict[str, Any] = {"_type": STATEMENT_V1, "subject": [subject], "predicateType": predicate_type}
    doc["predicate"] = predicate if predicate is not None else {}
    return json.dumps(doc, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Statement:
    """The parts of an in-toto statement verification needs."""

    predicate_type: str
    subject_digests: tuple[tuple[str, str], ...]  # (algorithm, lowercase hex)
    document: dict[str, Any]

    def covers(self, digest: str) -> bool:
        """True when a subject carries ``digest`` (``algorithm:hex``)."""
        algorithm, _, hexpart = digest.partition(":")
        return (algorithm, hexpart.lower()) in self.subject_digests


def parse_statement(envelope: Envelope, what: str = "attestation") -> Statement:
    """Parse the in-toto statement inside a DSSE envelope (payload type checked first)."""
    if envelope.payload_type != INTOTO_PAYLOAD_TYPE:
        raise SignatureDataError(f"{what} payloadType is {envelope.payload_type!r:.80}, "
                                 f"not {INTOTO_PAYLOAD_TYPE}")
    doc = loads_strict(envelope.payload, f"{what} statement")
    if not isinstance(doc, dict) or doc.get("_type") not in STATEMENT_TYPES:
        raise SignatureDataError(f"{what} is not an in-toto statement")
    predicate_type = doc.get("predicateType")
    if not isinstance(predicate_type, str):
        raise SignatureDataError(f"{what} statement has no predicateType")
    subjects = doc.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise SignatureDataError(f"{what} statement has no subject")
    digests = []
    for s in subjects:
        if not isinstance(s, dict) or not isinstance(s.get("digest"), dict):
            raise SignatureDataError(f"{what} statement subject without a digest")
        for algorithm, value in s["digest"].items():
            if isinstance(value, str):
                digests.append((algorithm, value.lower()))
    return Statement(predicate_type, tuple(digests), doc)
