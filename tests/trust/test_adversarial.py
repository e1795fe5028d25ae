"""Adversarial probes of verification: each builds a signature that must not pass, from real keys,
a real private Sigstore instance (tests/trust/sigstore_instance.py) and trust's own checks.

The threats: an unauthenticated hint steering which key is credited, a transparency-log entry for
another artifact replayed into a bundle, a payload in a format other parsers read differently, and
a statement that names this image among others.
"""

from __future__ import annotations

import hashlib
import json

from tests.trust.sigstore_instance import SigstoreInstance
# The private instance and its trusted root (fixtures), the digest and statement the keyless tests use.
from tests.trust.test_keyless import DIGEST, _statement, instance, root  # noqa: F401
from trust import bundle as bundles
from trust import dsse, simplesigning
from trust.keys import PrivateKey
from trust.requirements import Requirements
from trust.trustroot import TrustedRoot
from trust.untrusted import b64
from trust.verdict import SignatureResult
from trust.verify import Checks, check_bundle, check_legacy

OTHER = "sha256:" + "77" * 32


def _envelope(key: PrivateKey, payload: bytes, payload_type: str = dsse.INTOTO_PAYLOAD_TYPE) -> dsse.Envelope:
    return dsse.Envelope(payload_type, payload, (key.sign(dsse.pae(payload_type, payload)),))


def _bundle(env: dsse.Envelope, hint: str, entries: list[dict] | None = None) -> bundles.Bundle:
    doc = {"mediaType": bundles.MEDIA_TYPE_V03,
           "verificationMaterial": {"publicKey": {"hint": hint}, "tlogEntries": entries or []},
           "dsseEnvelope": env.to_json_obj()}
    return bundles.parse(json.dumps(doc).encode())


def _check(b: bundles.Bundle, *keys: PrivateKey, root: TrustedRoot | None = None, **kw: object) -> SignatureResult:
    req = Requirements(keys=tuple(k.public for k in keys), trusted_root=root, **kw)  # type: ignore[arg-type]
    return check_bundle(Checks(req), b, SignatureResult("bundle-keyed", "test", "t"), digest=DIGEST,
                        predicate_type=dsse.COSIGN_SIGN_PREDICATE)


def test_a_hint_naming_another_key_neither_passes_nor_misattributes(ecdsa_key: PrivateKey,
                                                                   ed25519_key: PrivateKey) -> None:
    """``publicKey.hint`` is unauthenticated: a bundle signed by key A that names key B is credited to
    A when both are accepted, and refused when only B is."""
    b = _bundle(_envelope(ecdsa_key, _statement()), ed25519_key.public.hint)
    result = _check(b, ed25519_key, ecdsa_key)
    assert result.ok and result.signer == {"key_id": ecdsa_key.public.key_id}
    result = _check(b, ed25519_key)
    assert not result.ok and "does not verify with the given key" in result.reasons[0]


def test_a_keyed_bundle_with_a_log_entry_for_another_artifact_fails_require_tlog(
        instance: SigstoreInstance, root: TrustedRoot, ecdsa_key: PrivateKey) -> None:
    """A genuine, verifiable log entry for another statement by the same key, replayed into a bundle
    for this image, is no log evidence for this signature (CVE-2022-36056's shape)."""
    env = _envelope(ecdsa_key, _statement())
    other = _envelope(ecdsa_key, _statement(OTHER))
    replayed = instance.bundle_entry("dsse", instance.log_dsse(ecdsa_key.public.pem, other), instance.log_id)
    result = _check(_bundle(env, ecdsa_key.public.hint, [replayed]), ecdsa_key, root=root, require_tlog=True)
    assert not result.ok and "replayed entry" in result.reasons[0], result.reasons
    genuine = instance.bundle_entry("dsse", instance.log_dsse(ecdsa_key.public.pem, env), instance.log_id)
    result = _check(_bundle(env, ecdsa_key.public.hint, [genuine]), ecdsa_key, root=root, require_tlog=True)
    assert result.ok and result.log is not None, result.reasons


def test_a_legacy_log_entry_for_another_payload_fails(instance: SigstoreInstance, root: TrustedRoot,
                                                      ecdsa_key: PrivateKey) -> None:
    payload = simplesigning.build("example.com/app", DIGEST)
    other = simplesigning.build("example.com/app", OTHER)
    sig = ecdsa_key.sign(payload)
    e = instance.log_hashedrekord(ecdsa_key.public.pem, ecdsa_key.sign(other), hashlib.sha256(other).digest())
    annotation = json.dumps({"SignedEntryTimestamp": b64(e["set"]),
                             "Payload": {"body": b64(e["body"]), "integratedTime": e["time"],
                                         "logIndex": e["index"], "logID": instance.log_id.hex()}})
    annotations = {"dev.cosignproject.cosign/signature": b64(sig), "dev.sigstore.cosign/bundle": annotation}
    result = check_legacy(Checks(Requirements(keys=(ecdsa_key.public,), trusted_root=root, require_tlog=True)),
                          payload, annotations, SignatureResult("cosign-keyed", "test", "t"), digest=DIGEST,
                          reference=None, predicate_type=None)
    assert not result.ok and "different signature" in result.reasons[0], result.reasons


def test_a_dsse_payload_that_is_not_in_toto_is_refused(ecdsa_key: PrivateKey) -> None:
    """A keyed bundle whose signed payload is a simple-signing document (or anything not in-toto)
    names no subject this verifier reads: refused, however well it is signed."""
    payload = simplesigning.build("example.com/app", DIGEST)
    for payload_type in (simplesigning.MEDIA_TYPE, "application/json"):
        b = _bundle(_envelope(ecdsa_key, payload, payload_type), ecdsa_key.public.hint)
        result = _check(b, ecdsa_key)
        assert not result.ok and "payloadType" in result.reasons[0], result.reasons


def test_duplicate_keys_anywhere_in_a_signed_document_are_refused(ecdsa_key: PrivateKey) -> None:
    """Python keeps the last of two equal keys, as Go's encoding/json does; containers/image refuses.
    A payload or statement with ``critical`` (or ``subject``) twice is refused, so no two readers of one
    signed document can see two different images."""
    good = simplesigning.build("example.com/app", DIGEST)
    other = simplesigning.build("example.com/app", OTHER)
    dup = b'{"critical":' + json.dumps(json.loads(other)["critical"]).encode() + b"," + good[1:]
    result = check_legacy(Checks(Requirements(keys=(ecdsa_key.public,))), dup,
                          {"dev.cosignproject.cosign/signature": b64(ecdsa_key.sign(dup))},
                          SignatureResult("cosign-keyed", "test", "t"), digest=DIGEST, reference=None,
                          predicate_type=None)
    assert not result.ok and "duplicate key 'critical'" in result.reasons[0], result.reasons
    statement = _statement()
    dup = statement.replace(b'"subject":', b'"subject":[{"digest":{"sha256":"' + b"77" * 32 + b'"}}],"subject":', 1)
    result = _check(_bundle(_envelope(ecdsa_key, dup), ecdsa_key.public.hint), ecdsa_key)
    assert not result.ok and "duplicate key 'subject'" in result.reasons[0], result.reasons


def test_a_statement_about_several_subjects_covers_each_and_only_those(ecdsa_key: PrivateKey) -> None:
    """in-toto: a statement is about every subject it lists (cosign accepts an attestation when any
    subject matches): one listing this image among others covers it; a digest under another
    algorithm name, or another image's digest, does not."""
    doc = json.loads(_statement(OTHER))
    doc["subject"].append({"name": "x", "digest": {"sha512": DIGEST.partition(":")[2] * 2}})
    result = _check(_bundle(_envelope(ecdsa_key, json.dumps(doc).encode()), ecdsa_key.public.hint), ecdsa_key)
    assert not result.ok and "does not include" in result.reasons[0]
    doc["subject"].append({"digest": {"sha256": DIGEST.partition(":")[2].upper()}})
    result = _check(_bundle(_envelope(ecdsa_key, json.dumps(doc).encode()), ecdsa_key.public.hint), ecdsa_key)
    assert result.ok, result.reasons


def test_a_simple_signing_digest_in_upper_case_or_another_algorithm_does_not_match(ecdsa_key: PrivateKey) -> None:
    def legacy(payload: bytes) -> SignatureResult:
        return check_legacy(Checks(Requirements(keys=(ecdsa_key.public,))), payload,
                            {"dev.cosignproject.cosign/signature": b64(ecdsa_key.sign(payload))},
                            SignatureResult("cosign-keyed", "test", "t"), digest=DIGEST, reference=None,
                            predicate_type=None)

    good = simplesigning.build("example.com/app", DIGEST)
    assert legacy(good).ok
    upper = good.replace(DIGEST.encode(), ("sha256:" + DIGEST.partition(":")[2].upper()).encode())
    assert "lowercase hex" in legacy(upper).reasons[0]
    sha512 = good.replace(DIGEST.encode(), ("sha512:" + DIGEST.partition(":")[2] * 2).encode())
    assert "the payload signs sha512:" in legacy(sha512).reasons[0]
