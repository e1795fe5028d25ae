"""Certificate-based signatures from a private Sigstore instance, and every kind of tampering.

The instance (tests/trust/sigstore_instance.py) is a real CA, CT log and transparency log with a
trusted_root.json naming their keys, so sigstore-python checks chain, SCT, inclusion proof,
checkpoint and SET exactly as for public-good signatures. Each tampered case must fail with a reason
a person can act on.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.identity_regexps import CASES
from tests.trust.sigstore_instance import SigstoreInstance
from trust import bundle as bundles
from trust import dsse, simplesigning
from trust.errors import RequirementsError
from trust.identity import IdentityMatcher
from trust.requirements import Requirements
from trust.trustroot import TrustedRoot
from trust.verdict import SignatureResult
from trust.verify import Checks, check_bundle, check_legacy, verify_blob

WHO, ISSUER = "dev@example.com", "https://issuer.example"
DIGEST = "sha256:" + "5a" * 32


@pytest.fixture(scope="module")
def instance() -> SigstoreInstance:
    return SigstoreInstance()


@pytest.fixture
def root(instance: SigstoreInstance, tmp_path: Path) -> TrustedRoot:
    return TrustedRoot.load(instance.write_trusted_root(tmp_path / "trusted_root.json"))


def _req(root: TrustedRoot, identity: str = WHO, **kw: object) -> Requirements:
    return Requirements(identities=(IdentityMatcher(identity=identity, issuer=ISSUER),), trusted_root=root,
                        **kw)  # type: ignore[arg-type]


def _statement(digest: str = DIGEST) -> bytes:
    return dsse.statement("example.com/app", digest.partition(":")[2], dsse.COSIGN_SIGN_PREDICATE)


def _check(root: TrustedRoot, raw: bytes, digest: str = DIGEST, **kw: object) -> SignatureResult:
    return check_bundle(Checks(_req(root, **kw)), bundles.parse(raw),  # type: ignore[arg-type]
                        SignatureResult("bundle-keyless", "test", "t"), digest=digest,
                        predicate_type=dsse.COSIGN_SIGN_PREDICATE)


def _legacy(root: TrustedRoot, payload: bytes, sig: bytes, pem: bytes, annotation: str,
            digest: str = DIGEST, **kw: object) -> SignatureResult:
    annotations = {"dev.cosignproject.cosign/signature": base64.b64encode(sig).decode(),
                   "dev.sigstore.cosign/certificate": pem.decode(), "dev.sigstore.cosign/bundle": annotation}
    return check_legacy(Checks(_req(root, **kw)), payload, annotations,  # type: ignore[arg-type]
                        SignatureResult("cosign-keyless", "test", "t"), digest=digest, reference=None,
                        predicate_type=None)


def test_keyless_bundle_verifies(instance: SigstoreInstance, root: TrustedRoot) -> None:
    result = _check(root, instance.dsse_bundle(dsse.INTOTO_PAYLOAD_TYPE, _statement(), WHO, ISSUER))
    assert result.ok, result.reasons
    assert result.signer == {"identity": WHO, "issuer": ISSUER}
    assert result.log is not None and result.log["integrated_time"]


def test_keyless_legacy_signature_verifies(instance: SigstoreInstance, root: TrustedRoot) -> None:
    payload = simplesigning.build("example.com/app", DIGEST)
    result = _legacy(root, payload, *instance.legacy_signature(payload, WHO, ISSUER), require_tlog=True)
    assert result.ok, result.reasons


def test_keyless_legacy_attestation(instance: SigstoreInstance, root: TrustedRoot) -> None:
    predicate = "https://slsa.dev/provenance/v1"
    statement = dsse.statement("example.com/app", DIGEST.partition(":")[2], predicate, {"builder": "ci"})
    envelope, pem, annotation = instance.legacy_attestation(statement, WHO, ISSUER)
    annotations = {"dev.cosignproject.cosign/signature": "", "dev.sigstore.cosign/certificate": pem.decode(),
                   "dev.sigstore.cosign/bundle": annotation}
    result = check_legacy(Checks(_req(root, require_tlog=True)), envelope, annotations,
                          SignatureResult("cosign-keyless", "test", "t"), digest=DIGEST, reference=None,
                          predicate_type=predicate)
    assert result.ok, result.reasons
    assert result.statement is not None and result.statement["predicate"] == {"builder": "ci"}
    other = check_legacy(Checks(_req(root)), envelope, annotations, SignatureResult("cosign-keyless", "test", "t"),
                         digest="sha256:" + "00" * 32, reference=None, predicate_type=predicate)
    assert not other.ok and "subject does not include" in other.reasons[0]


def test_regexp_identity_is_searched_as_cosign_does(instance: SigstoreInstance, root: TrustedRoot) -> None:
    """cosign's --certificate-identity-regexp is Go's unanchored MatchString: a pattern matches
    anywhere in the identity unless anchored (the shared table in tests/support/identity_regexps.py
    holds the semantics; this runs it through a real certificate and sigstore-python)."""
    raw = instance.dsse_bundle(dsse.INTOTO_PAYLOAD_TYPE, _statement(), WHO, ISSUER)
    cases = ((IdentityMatcher(identity_regexp=r".*@example\.com", issuer_regexp="https://.*"), True),
             (IdentityMatcher(identity_regexp=r"@example\.com", issuer=ISSUER), True),
             (IdentityMatcher(identity_regexp=r"example", issuer_regexp=r"issuer"), True),
             (IdentityMatcher(identity_regexp=r"^@example\.com$", issuer=ISSUER), False),
             (IdentityMatcher(identity=WHO, issuer_regexp=r"^issuer$"), False))
    for matcher, ok in cases:
        result = check_bundle(Checks(Requirements(identities=(matcher,), trusted_root=root)), bundles.parse(raw),
                              SignatureResult("b", "t", "t"), digest=DIGEST, predicate_type=dsse.COSIGN_SIGN_PREDICATE)
        assert result.ok is ok, (matcher, result.reasons)
    assert "does not match /^issuer$/" in result.reasons[0]


# --- tampering ------------------------------------------------------------------------------------

def test_changed_payload_byte(instance: SigstoreInstance, root: TrustedRoot) -> None:
    doc = json.loads(instance.dsse_bundle(dsse.INTOTO_PAYLOAD_TYPE, _statement(), WHO, ISSUER))
    payload = bytearray(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    payload[payload.index(b"5a")] = ord("6")
    doc["dsseEnvelope"]["payload"] = base64.b64encode(bytes(payload)).decode()
    result = _check(root, json.dumps(doc).encode())
    assert not result.ok
    assert "log entry payload hash does not match" in result.reasons[0] or "signature" in result.reasons[0]


def test_changed_legacy_payload_byte(instance: SigstoreInstance, root: TrustedRoot) -> None:
    payload = simplesigning.build("example.com/app", DIGEST)
    sig, pem, annotation = instance.legacy_signature(payload, WHO, ISSUER)
    changed = payload.replace(b"example.com", b"examplf.com")
    result = _legacy(root, changed, sig, pem, annotation)
    assert not result.ok and "does not verify with the certificate's key" in result.reasons[0]


def test_signature_over_another_digest(instance: SigstoreInstance, root: TrustedRoot) -> None:
    other = "sha256:" + "77" * 32
    result = _check(root, instance.dsse_bundle(dsse.INTOTO_PAYLOAD_TYPE, _statement(other), WHO, ISSUER))
    assert not result.ok and f"does not include {DIGEST}" in result.reasons[0]
    payload = simplesigning.build("example.com/app", other)
    result = _legacy(root, payload, *instance.legacy_signature(payload, WHO, ISSUER))
    assert not result.ok and f"the payload signs {other}, not this image's {DIGEST}" in result.reasons[0]


def test_certificate_for_another_identity(instance: SigstoreInstance, root: TrustedRoot) -> None:
    raw = instance.dsse_bundle(dsse.INTOTO_PAYLOAD_TYPE, _statement(), "mallory@example.com", ISSUER)
    result = _check(root, raw)
    assert not result.ok and "'mallory@example.com' is not 'dev@example.com'" in result.reasons[0]
    payload = simplesigning.build("example.com/app", DIGEST)
    result = _legacy(root, payload, *instance.legacy_signature(payload, "mallory@example.com", ISSUER))
    assert not result.ok and "is not 'dev@example.com'" in result.reasons[0]


def test_expired_certificate_outside_its_log_time(instance: SigstoreInstance, root: TrustedRoot) -> None:
    two_hours_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)
    raw = instance.dsse_bundle(dsse.INTOTO_PAYLOAD_TYPE, _statement(), WHO, ISSUER, not_before=two_hours_ago)
    result = _check(root, raw)
    assert not result.ok and "certificate chain" in result.reasons[0]
    payload = simplesigning.build("example.com/app", DIGEST)
    result = _legacy(root, payload, *instance.legacy_signature(payload, WHO, ISSUER, not_before=two_hours_ago))
    assert not result.ok
    assert "but the log recorded the signature at" in result.reasons[0]


def test_wrong_rekor_key(instance: SigstoreInstance, tmp_path: Path) -> None:
    wrong = TrustedRoot.load(instance.write_trusted_root(tmp_path / "wrong.json",
                                                         log_key=ec.generate_private_key(ec.SECP256R1())))
    result = _check(wrong, instance.dsse_bundle(dsse.INTOTO_PAYLOAD_TYPE, _statement(), WHO, ISSUER))
    assert not result.ok and "invalid log entry" in result.reasons[0]
    payload = simplesigning.build("example.com/app", DIGEST)
    result = _legacy(wrong, payload, *instance.legacy_signature(payload, WHO, ISSUER))
    assert not result.ok and "wrong or missing Rekor key" in result.reasons[0]


def test_missing_inclusion_proof(instance: SigstoreInstance, root: TrustedRoot) -> None:
    doc = json.loads(instance.dsse_bundle(dsse.INTOTO_PAYLOAD_TYPE, _statement(), WHO, ISSUER))
    del doc["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    result = _check(root, json.dumps(doc).encode())
    assert not result.ok and "inclusion proof" in result.reasons[0]


def test_forged_inclusion_proof_hash(instance: SigstoreInstance, root: TrustedRoot) -> None:
    for _ in range(3):  # a tree with a few leaves, so the proof has hashes to forge
        instance.message_bundle(b"filler", WHO, ISSUER)
    doc = json.loads(instance.dsse_bundle(dsse.INTOTO_PAYLOAD_TYPE, _statement(), WHO, ISSUER))
    proof = doc["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    proof["hashes"][0] = base64.b64encode(hashlib.sha256(b"forged").digest()).decode()
    result = _check(root, json.dumps(doc).encode())
    assert not result.ok and "inclusion proof" in result.reasons[0]


def test_certificate_without_sct(instance: SigstoreInstance, root: TrustedRoot) -> None:
    raw = instance.dsse_bundle(dsse.INTOTO_PAYLOAD_TYPE, _statement(), WHO, ISSUER, sct=False)
    result = _check(root, raw)
    assert not result.ok and "SCT" in result.reasons[0]


def test_keyless_needs_an_identity_requirement(instance: SigstoreInstance, root: TrustedRoot,
                                               ecdsa_key: object) -> None:
    from trust.keys import PrivateKey

    assert isinstance(ecdsa_key, PrivateKey)
    req = Requirements(keys=(ecdsa_key.public,), trusted_root=root)
    result = check_bundle(Checks(req), bundles.parse(instance.dsse_bundle(dsse.INTOTO_PAYLOAD_TYPE, _statement(),
                                                                           WHO, ISSUER)),
                          SignatureResult("b", "t", "t"), digest=DIGEST, predicate_type=dsse.COSIGN_SIGN_PREDICATE)
    assert not result.ok and "give --certificate-identity" in result.reasons[0]


def test_keyless_blob_bundle(instance: SigstoreInstance, root: TrustedRoot, tmp_path: Path) -> None:
    artifact = tmp_path / "release.tar"
    artifact.write_bytes(b"release bits")
    bundle = tmp_path / "release.tar.sigstore.json"
    bundle.write_bytes(instance.message_bundle(artifact.read_bytes(), WHO, ISSUER))
    assert verify_blob(artifact, bundle, _req(root)).ok
    artifact.write_bytes(b"release bitz")
    assert not verify_blob(artifact, bundle, _req(root)).ok


@pytest.mark.parametrize("pattern, value, matches", CASES)
def test_identity_regexp_semantics_shared_with_policies(pattern: str, value: str, matches: bool) -> None:
    as_identity = IdentityMatcher(identity_regexp=pattern, issuer=ISSUER)
    as_issuer = IdentityMatcher(identity=WHO, issuer_regexp=pattern)
    assert (as_identity.mismatch([value], ISSUER) is None) is matches
    assert (as_issuer.mismatch([WHO], value) is None) is matches


def test_anchored_regexp_refuses_an_identity_with_a_trailing_newline(instance: SigstoreInstance,
                                                                       root: TrustedRoot) -> None:
    """Python's ``$`` also matches before a final newline; Go's (cosign's) only at the very end. A
    certificate for ``dev@example.com\\n`` must not pass ``^dev@example\\.com$`` (nor an issuer with
    a control character an issuer pattern): no real identity holds control characters."""
    raw = instance.dsse_bundle(dsse.INTOTO_PAYLOAD_TYPE, _statement(), WHO + "\n", ISSUER)
    anchored = IdentityMatcher(identity_regexp=r"^dev@example\.com$", issuer=ISSUER)
    result = check_bundle(Checks(Requirements(identities=(anchored,), trusted_root=root)), bundles.parse(raw),
                          SignatureResult("b", "t", "t"), digest=DIGEST, predicate_type=dsse.COSIGN_SIGN_PREDICATE)
    assert not result.ok and "control character" in result.reasons[0], result.reasons
    payload = simplesigning.build("example.com/app", DIGEST)
    sig, pem, annotation = instance.legacy_signature(payload, WHO + "\n", ISSUER)
    annotations = {"dev.cosignproject.cosign/signature": base64.b64encode(sig).decode(),
                   "dev.sigstore.cosign/certificate": pem.decode(), "dev.sigstore.cosign/bundle": annotation}
    result = check_legacy(Checks(Requirements(identities=(anchored,), trusted_root=root)), payload, annotations,
                          SignatureResult("cosign-keyless", "t", "t"), digest=DIGEST, reference=None,
                          predicate_type=None)
    assert not result.ok and "control character" in result.reasons[0], result.reasons
    by_issuer = IdentityMatcher(identity=WHO, issuer_regexp=r"^https://issuer\.example$")
    assert "control character" in (by_issuer.mismatch([WHO], ISSUER + "\n") or "")
    assert by_issuer.mismatch([WHO], ISSUER) is None


def test_regexp_classes_are_ascii_as_in_go() -> None:
    r"""Go's ``\d``, ``\w``, ``\s`` and ``\b`` are ASCII; Python's match any Unicode digit or letter,
    so ``@refs/tags/v\d+$`` would accept a tag ``v١`` (ARABIC-INDIC DIGIT ONE) and ``^org/\w+$``
    a look-alike ``org/аpp`` (Cyrillic а). Fulcio's otherName identities and the issuer are UTF-8."""
    tag = IdentityMatcher(identity_regexp=r"@refs/tags/v\d+$", issuer=ISSUER)
    assert tag.mismatch(["https://ci.example/w.yml@refs/tags/v1"], ISSUER) is None
    assert tag.mismatch(["https://ci.example/w.yml@refs/tags/v\u0661"], ISSUER) is not None
    org = IdentityMatcher(identity=WHO, issuer_regexp=r"^https://issuer\.example/\w+$")
    assert org.mismatch([WHO], "https://issuer.example/app") is None
    assert org.mismatch([WHO], "https://issuer.example/\u0430pp") is not None
    with pytest.raises(RequirementsError, match="not a valid regular expression"):
        IdentityMatcher(identity_regexp=r"(?u)\w", issuer=ISSUER)  # Python-only flag, not Go syntax
