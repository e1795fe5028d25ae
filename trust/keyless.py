"""Certificate-based ("keyless") verification, delegated to sigstore-python.

Everything that involves a Fulcio-style certificate goes through sigstore-python 4.x: the chain to
the trusted root's CAs at the signing time, the embedded SCT against the CT log keys, the
transparency-log proofs (inclusion proof, checkpoint, SET), the log entry's consistency with the
bundle, and the signature. This module only adapts inputs and turns sigstore's exceptions into
failure reasons. It is imported lazily (by ``trust.verify``) and imports sigstore itself only inside
functions, so nothing here loads on a cached verification.

Two inputs exist:

* a Sigstore bundle with a certificate: ``Verifier.verify_dsse`` / ``verify_artifact`` do it all;
* a legacy cosign ``.sig`` layer with certificate and Rekor-bundle annotations. sigstore-python
  cannot take it whole (it has no inclusion proof, and pre-2022 entries are of kind ``rekord``), so
  the same building blocks are called in sigstore's order: the SET (``trust.rekor``), the chain at
  the log's integrated time and the SCT (sigstore's verifier and SCT code), the X.509 profile, the
  identity policy, the signature, and the entry's consistency with the signature.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from trust import rekor
from trust.bundle import Bundle
from trust.errors import VerificationFailed
from trust.identity import IdentityMatcher, SigstorePolicy, first_mismatch
from trust.keys import PublicKey
from trust.trustroot import TrustedRoot


@dataclass(frozen=True)
class KeylessEvidence:
    """Who signed (per the certificate) and where the log recorded it."""

    identity: str
    issuer: str | None
    log_index: int | None
    integrated_time: int | None
    payload_type: str | None = None
    payload: bytes | None = None

    def as_signer(self) -> dict[str, Any]:
        return {"identity": self.identity, "issuer": self.issuer}


@functools.lru_cache(maxsize=4)
def _sigstore_root(root: TrustedRoot) -> Any:
    return root.sigstore()


@functools.lru_cache(maxsize=4)
def _sigstore_verifier(root: TrustedRoot) -> Any:
    from sigstore.errors import Error
    from sigstore.verify import Verifier

    try:
        return Verifier(trusted_root=_sigstore_root(root))
    except Error as exc:
        raise VerificationFailed(f"trusted root {root.path} cannot verify certificates: {exc}") from None


def _reason(exc: Exception) -> str:
    """sigstore's message on one line, without pydantic's dumps of the whole input."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = re.sub(r" \[type=.*", "", text)
    return text if len(text) <= 300 else text[:297] + "..."


def _check_entries(bundle: Bundle) -> None:
    """Name the commonest defects before sigstore's schema validation reports them as field paths."""
    for entry in bundle.tlog_entries:
        proof = entry.get("inclusionProof")
        if not isinstance(proof, dict) or not isinstance(proof.get("checkpoint"), dict):
            raise VerificationFailed("the transparency-log entry has no inclusion proof with a checkpoint, "
                                     "so nothing proves the log included the signature")


def _evidence_from_bundle(sb: Any, payload_type: str | None = None, payload: bytes | None = None) -> KeylessEvidence:
    from trust.identity import certificate_identity

    names, issuer = certificate_identity(sb.signing_certificate)
    inner = sb.log_entry._inner
    return KeylessEvidence(identity=names[0] if names else "", issuer=issuer,
                           log_index=int(inner.log_index) if inner.log_index is not None else None,
                           integrated_time=int(inner.integrated_time) if inner.integrated_time else None,
                           payload_type=payload_type, payload=payload)


def verify_bundle(bundle: Bundle, root: TrustedRoot, matchers: tuple[IdentityMatcher, ...], *,
                  artifact_sha256: bytes | None = None) -> KeylessEvidence:
    """Verify a certificate bundle fully with sigstore-python; the caller checks a DSSE payload.

    Raises VerificationFailed with sigstore's diagnosis.
    """
    from sigstore.errors import Error
    from sigstore.hashes import Hashed
    from sigstore.models import Bundle as SigstoreBundle
    from sigstore_models.common.v1 import HashAlgorithm

    policy = SigstorePolicy(matchers)
    _check_entries(bundle)
    try:
        sb = SigstoreBundle.from_json(bundle.raw)
        verifier = _sigstore_verifier(root)
        if bundle.envelope is not None:
            payload_type, payload = verifier.verify_dsse(sb, policy)
            return _evidence_from_bundle(sb, payload_type, payload)
        if artifact_sha256 is None:
            raise VerificationFailed("a message-signature bundle needs the signed file")
        verifier.verify_artifact(Hashed(algorithm=HashAlgorithm.SHA2_256, digest=artifact_sha256), sb, policy)
        return _evidence_from_bundle(sb)
    except Error as exc:
        raise VerificationFailed(_reason(exc)) from None
    except ValueError as exc:  # pydantic validation of a malformed bundle
        raise VerificationFailed(f"malformed bundle: {_reason(exc)}") from None


def _check_profile(cert: x509.Certificate) -> None:
    """The Sigstore X.509 profile: digitalSignature key usage, codeSigning extended key usage."""
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        extended = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise VerificationFailed(f"signing certificate lacks {exc.oid._name} (not a code-signing certificate)") from None
    if not usage.digital_signature or ExtendedKeyUsageOID.CODE_SIGNING not in extended:
        raise VerificationFailed("signing certificate is not for code signing (key usage)")


def verify_legacy(*, signed: bytes, signature: bytes, certificate_pem: bytes, rekor_bundle: str | None,
                  payload_sha256: bytes, root: TrustedRoot, matchers: tuple[IdentityMatcher, ...],
                  ignore_sct: bool = False) -> KeylessEvidence:
    """Verify a legacy cosign keyless signature over ``signed`` (the payload, or a DSSE PAE);
    ``payload_sha256`` is what the log entry must record. Raise VerificationFailed with the first
    problem."""
    from sigstore._internal.sct import verify_sct
    from sigstore._internal.timestamp import TimestampSource, TimestampVerificationResult
    from sigstore._internal.trust import KeyringPurpose
    from sigstore.errors import Error

    try:
        cert = x509.load_pem_x509_certificate(certificate_pem)
    except ValueError:
        raise VerificationFailed("the certificate annotation is not a PEM certificate") from None
    reason, names, issuer = first_mismatch(matchers, cert)
    if reason is not None:
        raise VerificationFailed(reason)
    if not PublicKey.from_der(cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
            "certificate").verify(signature, signed):
        raise VerificationFailed("the signature does not verify with the certificate's key")
    if not rekor_bundle:
        raise VerificationFailed("keyless signature without a transparency-log entry "
                                 "(no dev.sigstore.cosign/bundle annotation)")
    entry = rekor.LogEntry.from_annotation(rekor_bundle)
    rekor.verify_set(entry, root)
    when = entry.time
    if not cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:
        raise VerificationFailed(
            f"certificate was valid {cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} to "
            f"{cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ} but the log recorded the signature at "
            f"{when:%Y-%m-%dT%H:%M:%SZ}")
    verifier = _sigstore_verifier(root)
    try:
        chain = verifier._verify_chain_at_time(  # noqa: SLF001 - sigstore's own chain check
            cert, TimestampVerificationResult(source=TimestampSource.TRANSPARENCY_SERVICE, time=when))
        if not ignore_sct:
            verify_sct(cert, chain, _sigstore_root(root).ct_keyring(KeyringPurpose.VERIFY))
    except Error as exc:
        raise VerificationFailed(_reason(exc)) from None
    _check_profile(cert)
    rekor.check_body(entry.body, signature=signature, payload_sha256=payload_sha256,
                     verifier_der=cert.public_bytes(serialization.Encoding.DER))
    return KeylessEvidence(identity=names[0] if names else "", issuer=issuer,
                           log_index=entry.log_index, integrated_time=entry.integrated_time)


def utc(ts: int | None) -> str | None:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else None
