"""Sigstore bundles (v0.1 to v0.3): writing keyed bundles, reading any bundle, verifying keyed ones.

Stockade writes bundle v0.3 (``application/vnd.dev.sigstore.bundle.v0.3+json``) signed with a key:
``verificationMaterial.publicKey.hint`` names the key (base64 SHA-256 of its DER form, as cosign
writes it) and there is no certificate. Without a transparency-log entry nobody but the holder of
the public key can check such a bundle, and sigstore-python refuses public-key bundles altogether
(sigstore/sigstore-python#1244), so keyed bundles are verified by our own code here; sigstore-js
(``@sigstore/verify`` with ``toTrustMaterial(root, keys)``) accepts them, which the interop tests
prove. Bundles with a certificate are verified by sigstore-python (``trust.keyless``).

Reading never re-serializes: the exact bytes are kept for sigstore-python, and signatures are
checked over the decoded payload or artifact digest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from trust.dsse import Envelope
from trust.untrusted import b64, b64decode
from trust.errors import SignatureDataError, VerificationFailed
from trust.keys import PrivateKey, PublicKey
from trust.simplesigning import loads_strict

MEDIA_TYPE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
MEDIA_TYPES = (
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    MEDIA_TYPE_V03,
)
MAX_BUNDLE_SIZE = 4 * 1024 * 1024


@dataclass(frozen=True)
class Bundle:
    """A parsed bundle; ``raw`` is exactly what was read."""

    raw: bytes
    media_type: str
    public_key_hint: str | None
    certificate_der: bytes | None
    tlog_entries: tuple[dict[str, Any], ...]
    message_digest: bytes | None  # SHA-256 the bundle claims for a message signature
    message_signature: bytes | None
    envelope: Envelope | None

    @property
    def keyless(self) -> bool:
        return self.certificate_der is not None

    @property
    def signature(self) -> bytes:
        if self.envelope is not None:
            return self.envelope.signatures[0]
        assert self.message_signature is not None  # parse() guarantees one of the two
        return self.message_signature


def parse(raw: bytes, what: str = "bundle") -> Bundle:
    """Parse and shape-check a bundle; SignatureDataError names what is missing or malformed."""
    if len(raw) > MAX_BUNDLE_SIZE:
        raise SignatureDataError(f"{what} is larger than {MAX_BUNDLE_SIZE} bytes")
    doc = loads_strict(raw, what)
    if not isinstance(doc, dict):
        raise SignatureDataError(f"{what} is not a JSON object")
    media_type = doc.get("mediaType")
    if media_type not in MEDIA_TYPES:
        raise SignatureDataError(f"{what} has unsupported mediaType {media_type!r:.80}")
    vm = doc.get("verificationMaterial")
    if not isinstance(vm, dict):
        raise SignatureDataError(f"{what} has no verificationMaterial")
    hint = cert = None
    if isinstance(vm.get("publicKey"), dict):
        hint = vm["publicKey"].get("hint")
        if not isinstance(hint, str):
            raise SignatureDataError(f"{what} publicKey has no hint")
    elif isinstance(vm.get("certificate"), dict):
        cert = b64decode(vm["certificate"].get("rawBytes"), f"{what} certificate")
    elif isinstance(vm.get("x509CertificateChain"), dict):
        certs = vm["x509CertificateChain"].get("certificates")
        if not isinstance(certs, list) or not certs or not isinstance(certs[0], dict):
            raise SignatureDataError(f"{what} has an empty certificate chain")
        cert = b64decode(certs[0].get("rawBytes"), f"{what} certificate")
    else:
        raise SignatureDataError(f"{what} names neither a public key nor a certificate")
    entries = vm.get("tlogEntries", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise SignatureDataError(f"{what} tlogEntries is not a list of objects")
    envelope = digest = signature = None
    if "dsseEnvelope" in doc:
        envelope = Envelope.from_json_obj(doc["dsseEnvelope"], f"{what} DSSE envelope")
    elif isinstance(doc.get("messageSignature"), dict):
        ms = doc["messageSignature"]
        signature = b64decode(ms.get("signature"), f"{what} signature")
        md = ms.get("messageDigest")
        if isinstance(md, dict):
            if md.get("algorithm") != "SHA2_256":
                raise SignatureDataError(f"{what} message digest algorithm {md.get('algorithm')!r} "
                                         "is not SHA2_256")
            digest = b64decode(md.get("digest"), f"{what} message digest")
    else:
        raise SignatureDataError(f"{what} has neither a messageSignature nor a dsseEnvelope")
    return Bundle(raw, media_type, hint, cert, tuple(entries), digest, signature, envelope)


def _dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _verification_material(key: PublicKey) -> dict[str, Any]:
    # protobuf JSON omits empty repeated fields, but @sigstore/bundle requires tlogEntries to exist.
    return {"publicKey": {"hint": key.hint}, "tlogEntries": []}


def message_bundle(key: PrivateKey, artifact_sha256: bytes, signature: bytes) -> bytes:
    """A keyed bundle over an artifact (what ``sign-blob --bundle`` writes)."""
    return _dumps({
        "mediaType": MEDIA_TYPE_V03,
        "verificationMaterial": _verification_material(key.public),
        "messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": b64(artifact_sha256)},
                             "signature": b64(signature)},
    })


def dsse_bundle(key: PrivateKey, payload_type: str, payload: bytes) -> bytes:
    """A keyed bundle holding a DSSE envelope signed with ``key`` (what ``sign --format bundle``
    pushes, with an in-toto statement as payload)."""
    envelope = Envelope(payload_type, payload, (key.sign(Envelope(payload_type, payload, ()).pae),))
    return _dumps({
        "mediaType": MEDIA_TYPE_V03,
        "verificationMaterial": _verification_material(key.public),
        "dsseEnvelope": envelope.to_json_obj(),
    })


def _candidates(bundle: Bundle, keys: tuple[PublicKey, ...]) -> list[PublicKey]:
    # The hint is unauthenticated: it only orders the attempts.
    return sorted(keys, key=lambda k: k.hint != bundle.public_key_hint)


def verify_keyed(bundle: Bundle, keys: tuple[PublicKey, ...], *,
                 artifact_sha256: bytes | None = None,
                 artifact: Callable[[], bytes] | None = None) -> PublicKey:
    """Return the key whose signature the bundle carries; raise VerificationFailed with the reason.

    A message signature needs the artifact (its SHA-256, and the bytes for Ed25519); a DSSE bundle
    is checked over PAE(payloadType, payload) and the caller checks what the payload says.
    """
    if bundle.keyless:
        raise VerificationFailed("the bundle carries a certificate, not a public-key hint")
    if bundle.envelope is not None:
        pae = bundle.envelope.pae
        for key in _candidates(bundle, keys):
            if any(key.verify(sig, pae) for sig in bundle.envelope.signatures):
                return key
    else:
        if artifact_sha256 is None or artifact is None:
            raise VerificationFailed("a message-signature bundle needs the signed file")
        if bundle.message_digest is not None and bundle.message_digest != artifact_sha256:
            raise VerificationFailed(
                f"the bundle signs sha256:{bundle.message_digest.hex()}, not the file's "
                f"sha256:{artifact_sha256.hex()}")
        for key in _candidates(bundle, keys):
            if key.verify_digest(bundle.signature, artifact_sha256, artifact):
                return key
    ids = ", ".join(k.key_id[:16] for k in keys)
    raise VerificationFailed(f"the signature does not verify with the given key(s) ({ids})")

