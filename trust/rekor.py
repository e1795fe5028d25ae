"""Rekor (transparency log) evidence: signed entry timestamps and log-entry consistency.

A legacy cosign signature carries its log evidence in the ``dev.sigstore.cosign/bundle`` layer
annotation: ``{"SignedEntryTimestamp": b64, "Payload": {"body": b64, "integratedTime": int,
"logIndex": int, "logID": hex}}``. The SET is the log's signature over the RFC 8785 canonical JSON
of the four ``Payload`` fields; verifying it proves the log accepted ``body`` at ``integratedTime``.
The body must then describe *this* signature (same signature bytes, same key or certificate, same
payload hash), or a valid log entry for something else could be replayed (CVE-2022-36056).

Log keys come from the trusted root, chosen by ``logID`` (SHA-256 of the key's DER form) and only
within the key's ``validFor`` window. This module needs no sigstore import: a keyed signature with a
log entry is checked without loading sigstore-python.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from trust.dsse import b64decode
from trust.errors import SignatureDataError, VerificationFailed
from trust.keys import PublicKey
from trust.simplesigning import loads_strict
from trust.trustroot import TrustedRoot


@dataclass(frozen=True)
class LogEntry:
    """A legacy cosign bundle annotation, parsed."""

    body: bytes
    integrated_time: int
    log_index: int
    log_id: str  # hex
    set_signature: bytes

    @classmethod
    def from_annotation(cls, raw: str | bytes) -> "LogEntry":
        doc = loads_strict(raw.encode() if isinstance(raw, str) else raw, "Rekor bundle annotation")
        if not isinstance(doc, dict) or not isinstance(doc.get("Payload"), dict):
            raise SignatureDataError("Rekor bundle annotation has no Payload")
        p = doc["Payload"]
        for name, kind in (("body", str), ("integratedTime", int), ("logIndex", int), ("logID", str)):
            if not isinstance(p.get(name), kind) or isinstance(p.get(name), bool):
                raise SignatureDataError(f"Rekor bundle annotation Payload.{name} is missing or mistyped")
        try:
            bytes.fromhex(p["logID"])
        except ValueError:
            raise SignatureDataError("Rekor bundle annotation logID is not hex") from None
        return cls(body=b64decode(p["body"], "Rekor entry body"), integrated_time=p["integratedTime"],
                   log_index=p["logIndex"], log_id=p["logID"].lower(),
                   set_signature=b64decode(doc.get("SignedEntryTimestamp"), "SignedEntryTimestamp"))

    def canonical_payload(self) -> bytes:
        """RFC 8785 form of the SET's signed data (ASCII strings and integers only, so sorted
        compact JSON is exactly the canonical form)."""
        return json.dumps({"body": base64.b64encode(self.body).decode(),
                           "integratedTime": self.integrated_time, "logID": self.log_id,
                           "logIndex": self.log_index}, sort_keys=True, separators=(",", ":")).encode()

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.integrated_time, tz=timezone.utc)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def log_key(root: TrustedRoot, log_id_hex: str, when: datetime) -> PublicKey:
    """The trusted log key with this id, valid at ``when``; VerificationFailed naming the problem."""
    wanted = bytes.fromhex(log_id_hex)
    for tlog in root.document.get("tlogs", []):
        key_id = b64decode(tlog.get("logId", {}).get("keyId"), "trusted root logId")
        if key_id != wanted:
            continue
        pk = tlog.get("publicKey", {})
        valid = pk.get("validFor", {})
        start, end = _parse_time(valid.get("start")), _parse_time(valid.get("end"))
        if start is None or when < start or (end is not None and when > end):
            raise VerificationFailed(f"log key {log_id_hex[:16]}… was not valid at {when:%Y-%m-%dT%H:%M:%SZ}")
        return PublicKey.from_der(b64decode(pk.get("rawBytes"), "trusted root log key"),
                                  f"trusted root {root.path} log key")
    raise VerificationFailed(f"the log entry was signed by log {log_id_hex[:16]}…, which the trusted "
                             f"root {root.path} does not list (wrong or missing Rekor key)")


def verify_set(entry: LogEntry, root: TrustedRoot) -> None:
    """Check the signed entry timestamp against the trusted root's log key."""
    key = log_key(root, entry.log_id, entry.time)
    if not key.verify(entry.set_signature, entry.canonical_payload()):
        raise VerificationFailed("the Rekor signed entry timestamp does not verify with the trusted "
                                 "log key (the entry was altered, or the root has the wrong Rekor key)")


def _verifier_der(pem_b64: object) -> bytes:
    """DER of the key or certificate a log body names (base64 of a PEM document)."""
    pem = b64decode(pem_b64, "log entry verifier")
    if b"CERTIFICATE" in pem:
        return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    return serialization.load_pem_public_key(pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def check_body(entry: LogEntry, *, signature: bytes, payload: bytes, verifier_der: bytes) -> None:
    """The log body must record this signature, this verifier and this payload's hash."""
    body = loads_strict(entry.body, "Rekor entry body")
    if not isinstance(body, dict):
        raise SignatureDataError("Rekor entry body is not an object")
    kind, version = body.get("kind"), body.get("apiVersion")
    if kind not in ("hashedrekord", "rekord") or version != "0.0.1":
        raise VerificationFailed(f"unsupported Rekor entry {kind}/{version} for a cosign signature")
    spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
    sig = spec.get("signature") if isinstance(spec.get("signature"), dict) else {}
    data = spec.get("data") if isinstance(spec.get("data"), dict) else {}
    digest = (data.get("hash") or {}) if isinstance(data.get("hash"), dict) else {}
    if b64decode(sig.get("content"), "log entry signature") != signature:
        raise VerificationFailed("the log entry records a different signature (replayed entry)")
    try:
        recorded = _verifier_der((sig.get("publicKey") or {}).get("content"))
    except (ValueError, TypeError):
        raise VerificationFailed("the log entry's verifier is not a key or certificate") from None
    if recorded != verifier_der:
        raise VerificationFailed("the log entry records a different key or certificate")
    if digest.get("algorithm") != "sha256" or digest.get("value") != hashlib.sha256(payload).hexdigest():
        raise VerificationFailed("the log entry records a different payload hash")
