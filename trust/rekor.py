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
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from trust.untrusted import b64decode
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


def _field(obj: Any, *path: str) -> Any:
    for part in path:
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _same_verifier(value: object, verifier_der: bytes) -> bool:
    try:
        return _verifier_der(value) == verifier_der
    except (ValueError, TypeError, SignatureDataError):
        return False


def check_body(body_raw: bytes, *, signature: bytes, verifier_der: bytes, payload_sha256: bytes) -> None:
    """The log body must record this signature, this key or certificate, and this payload's hash.

    ``payload_sha256`` is the SHA-256 of what was signed for hashedrekord/rekord entries (the
    simple-signing payload, the artifact) and of the DSSE payload for dsse/intoto entries.
    """
    body = loads_strict(body_raw, "Rekor entry body")
    if not isinstance(body, dict):
        raise SignatureDataError("Rekor entry body is not an object")
    kind, version, spec = body.get("kind"), body.get("apiVersion"), body.get("spec")
    wanted = payload_sha256.hex()
    if kind in ("hashedrekord", "rekord") and version == "0.0.1":
        if b64decode(_field(spec, "signature", "content"), "log entry signature") != signature:
            raise VerificationFailed("the log entry records a different signature (replayed entry)")
        if not _same_verifier(_field(spec, "signature", "publicKey", "content"), verifier_der):
            raise VerificationFailed("the log entry records a different key or certificate")
        recorded = (_field(spec, "data", "hash", "algorithm"), _field(spec, "data", "hash", "value"))
    elif kind == "dsse" and version == "0.0.1":
        sigs = _field(spec, "signatures") or []
        if not any(isinstance(s, dict) and b64decode(s.get("signature"), "log entry signature") == signature
                   and _same_verifier(s.get("verifier"), verifier_der) for s in sigs):
            raise VerificationFailed("the log entry records a different signature or signer (replayed entry)")
        recorded = (_field(spec, "payloadHash", "algorithm"), _field(spec, "payloadHash", "value"))
    elif kind == "intoto" and version == "0.0.1":
        if not _same_verifier(_field(spec, "publicKey"), verifier_der):
            raise VerificationFailed("the log entry records a different key or certificate")
        recorded = (_field(spec, "content", "payloadHash", "algorithm"), _field(spec, "content", "payloadHash", "value"))
    else:
        raise VerificationFailed(f"unsupported Rekor entry kind {kind}/{version}")
    if recorded != ("sha256", wanted):
        raise VerificationFailed("the log entry records a different payload hash")


def verify_bundle_entry(entry: dict[str, Any], root: TrustedRoot) -> tuple[int, int | None, bytes]:
    """Verify a bundle's transparency-log entry (inclusion proof, checkpoint, SET) with
    sigstore-python; return (log index, integrated time, canonicalized body) for the caller's
    consistency check. Used for keyed bundles, which sigstore-python will not take whole."""
    from sigstore._internal.trust import KeyringPurpose
    from sigstore.errors import Error
    from sigstore.models import TransparencyLogEntry
    from sigstore_models.rekor.v1 import TransparencyLogEntry as InnerEntry

    try:
        parsed = TransparencyLogEntry(InnerEntry.from_json(json.dumps(entry)))
        parsed._verify(root.sigstore().rekor_keyring(KeyringPurpose.VERIFY))  # noqa: SLF001
    except Error as exc:
        raise VerificationFailed(f"transparency-log entry: {exc}") from None
    except ValueError as exc:
        raise VerificationFailed(f"malformed transparency-log entry: {' '.join(str(exc).split())[:200]}") from None
    inner = parsed._inner  # noqa: SLF001
    return (int(inner.log_index), int(inner.integrated_time) if inner.integrated_time else None,
            bytes(inner.canonicalized_body))
