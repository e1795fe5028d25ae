"""Verification of images, attestations and blobs against a set of requirements.

For an image, every place a signature may be is searched, in cosign v3's order: OCI 1.1 referrers
(through the API, or the ``sha256-<hex>`` tag schema index when the registry has no API), then the
legacy ``sha256-<hex>.sig`` tag. Each signature found is verified on its exact stored bytes, and the
verdict lists every valid one with its evidence and every invalid one with its reasons. The image is
verified when at least one signature satisfies every requirement (``trust.requirements``).

Digests: a reference resolves to one manifest. When that is an image index, the *index* digest is
what is verified unless ``platform`` selects a platform manifest (``scope="platform"``) or both are
required (``scope="both"``); the verdict names each digest verified and its role. A signature on
an index covers its platform manifests by content address; a signature on one platform's manifest
says nothing about the index or the other platforms.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from engine.errors import StockadeError

from trust import bundle as bundles
from trust import dsse, rekor, simplesigning
from trust.errors import SignatureDataError, VerificationFailed
from trust.keys import PublicKey
from trust.options import SCOPES
from trust.requirements import Requirements
from trust.trustroot import TrustedRoot
from trust.tuf.errors import TufDigestMismatchError, TufError
from trust.untrusted import b64decode, file_sha256
from trust.verdict import VIA_FILE, VIA_LEGACY_TAG, SignatureResult, TargetResult, Verdict

if TYPE_CHECKING:
    from engine.reference import Reference
    from engine.registry import RegistryClient

    from trust.cache import VerificationCache

DEFAULT_TTL = 3600.0  # seconds a positive verdict is reused when nothing expires sooner


@dataclass
class Checks:
    """Requirements plus the trusted root, loaded on first use (only certificates and log entries
    need it) and then shared by every signature of one verification."""

    req: Requirements
    _root: TrustedRoot | None = field(default=None)

    @property
    def root(self) -> TrustedRoot:
        if self._root is None:
            self._root = self.req.root()
        return self._root


def _log(index: int | None, integrated_time: int | None) -> dict[str, Any]:
    return {"index": index, "integrated_time": integrated_time}


# --- content checks --------------------------------------------------------------------------------

def _check_simplesigning(payload: bytes, digest: str, reference: Reference | None, req: Requirements,
                         result: SignatureResult) -> None:
    parsed = simplesigning.parse(payload)
    if parsed.manifest_digest != digest:
        result.fail(f"the payload signs {parsed.manifest_digest}, not this image's {digest}")
    if req.check_reference and reference is not None and parsed.docker_reference != reference.name:
        result.fail(f"the payload names {parsed.docker_reference!r}, not {reference.name!r} "
                    "(--check-reference)")


def _check_statement(envelope: dsse.Envelope, digest: str, predicate_type: str,
                     result: SignatureResult, keep: bool) -> None:
    statement = dsse.parse_statement(envelope)
    if not statement.covers(digest):
        result.fail(f"the statement's subject does not include {digest} (it is about another artifact)")
    if statement.predicate_type != predicate_type:
        result.fail(f"the statement's predicateType is {statement.predicate_type!r}, not {predicate_type!r}")
    if keep and result.ok:
        result.statement = statement.document


# --- bundles ---------------------------------------------------------------------------------------

def check_bundle(checks: Checks, b: bundles.Bundle, result: SignatureResult, *, digest: str,
                 predicate_type: str | None, keep_statement: bool = False,
                 artifact_sha256: bytes | None = None, artifact: Callable[[], bytes] | None = None) -> SignatureResult:
    """Verify one bundle against the requirements; failures are recorded on ``result``."""
    req = checks.req
    try:
        if b.keyless:
            if not req.identities:
                return result.fail("signed with a certificate (keyless); give --certificate-identity[-regexp] "
                                   "and --certificate-oidc-issuer[-regexp] to accept it")
            from trust import keyless

            evidence = keyless.verify_bundle(b, checks.root, req.identities, artifact_sha256=artifact_sha256)
            result.signer = evidence.as_signer()
            result.log = _log(evidence.log_index, evidence.integrated_time)
        else:
            if not req.keys:
                return result.fail(f"signed with a key (hint {b.public_key_hint}); give --key to accept it")
            key = bundles.verify_keyed(b, req.keys, artifact_sha256=artifact_sha256, artifact=artifact)
            result.signer = {"key_id": key.key_id}
            _check_bundle_log(checks, b, key, artifact_sha256, result)
        if b.envelope is not None and predicate_type is not None:
            _check_statement(b.envelope, digest, predicate_type, result, keep_statement)
    except (VerificationFailed, SignatureDataError) as exc:
        result.fail(str(exc))
    return result


def _check_bundle_log(checks: Checks, b: bundles.Bundle, key: PublicKey, artifact_sha256: bytes | None,
                      result: SignatureResult) -> None:
    if not b.tlog_entries:
        if checks.req.require_tlog:
            result.fail("the keyed bundle has no transparency-log entry (required by --require-tlog)")
        return
    index, when, body = rekor.verify_bundle_entry(b.tlog_entries[0], checks.root)
    payload_sha256 = hashlib.sha256(b.envelope.payload).digest() if b.envelope else artifact_sha256
    rekor.check_body(body, signature=b.signature, verifier_der=key.der, payload_sha256=payload_sha256 or b"")
    result.log = _log(index, when)


# --- legacy .sig/.att layers ----------------------------------------------------------------------

def _keyed_legacy_log(checks: Checks, annotation: str | None, signature: bytes, key: PublicKey,
                      payload_sha256: bytes, result: SignatureResult) -> None:
    if not annotation:
        if checks.req.require_tlog:
            result.fail("no transparency-log entry (required by --require-tlog)")
        return
    entry = rekor.LogEntry.from_annotation(annotation)
    rekor.verify_set(entry, checks.root)
    rekor.check_body(entry.body, signature=signature, verifier_der=key.der, payload_sha256=payload_sha256)
    result.log = _log(entry.log_index, entry.integrated_time)


def check_legacy(checks: Checks, blob: bytes, annotations: dict[str, str], result: SignatureResult, *,
                 digest: str, reference: Reference | None, predicate_type: str | None) -> SignatureResult:
    """Verify one legacy layer: ``blob`` is a simple-signing payload (``predicate_type`` None) or a
    DSSE envelope (an attestation)."""
    from trust import legacy

    req = checks.req
    try:
        if predicate_type is None:
            envelope = None
            signatures: tuple[bytes, ...] = (b64decode(annotations.get(legacy.SIGNATURE), "signature annotation"),)
            signed, payload_sha256 = blob, hashlib.sha256(blob).digest()
        else:
            envelope = dsse.Envelope.from_bytes(blob, "attestation envelope")
            signatures, signed = envelope.signatures, envelope.pae
            payload_sha256 = hashlib.sha256(envelope.payload).digest()
        cert = annotations.get(legacy.CERTIFICATE)
        if cert:
            if not req.identities:
                return result.fail("signed with a certificate (keyless); give --certificate-identity[-regexp] "
                                   "and --certificate-oidc-issuer[-regexp] to accept it")
            from trust import keyless

            evidence = keyless.verify_legacy(signed=signed, signature=signatures[0], certificate_pem=cert.encode(),
                                             rekor_bundle=annotations.get(legacy.BUNDLE),
                                             payload_sha256=payload_sha256, root=checks.root,
                                             matchers=req.identities, ignore_sct=req.ignore_sct)
            result.signer = evidence.as_signer()
            result.log = _log(evidence.log_index, evidence.integrated_time)
        else:
            if not req.keys:
                return result.fail("signed with a key; give --key to accept it")
            match = next(((k, s) for k in req.keys for s in signatures if k.verify(s, signed)), None)
            if match is None:
                ids = ", ".join(k.key_id[:16] for k in req.keys)
                return result.fail(f"the signature does not verify with the given key(s) ({ids}): "
                                   "signed by another key, or the payload was changed")
            result.signer = {"key_id": match[0].key_id}
            _keyed_legacy_log(checks, annotations.get(legacy.BUNDLE), match[1], match[0], payload_sha256, result)
        if envelope is None:
            _check_simplesigning(blob, digest, reference, req, result)
        else:
            _check_statement(envelope, digest, predicate_type or "", result, keep=True)
    except (VerificationFailed, SignatureDataError) as exc:
        result.fail(str(exc))
    return result


# --- images -----------------------------------------------------------------------------------------

def _legacy_results(client: RegistryClient, checks: Checks, ref: Reference, target: TargetResult,
                    predicate_type: str | None) -> None:
    from trust import legacy

    suffix = legacy.SIG_SUFFIX if predicate_type is None else legacy.ATT_SUFFIX
    for layer in legacy.read(client, ref, target.digest, suffix):
        keyless_ = legacy.CERTIFICATE in layer.annotations
        result = SignatureResult(kind="cosign-keyless" if keyless_ else "cosign-keyed", via=VIA_LEGACY_TAG,
                                 location=f"{layer.location} ({layer.descriptor.digest})")
        if layer.descriptor.media_type != legacy.expected_media_type(suffix):
            target.signatures.append(result.fail(f"layer media type {layer.descriptor.media_type!r} is not "
                                                 f"{legacy.expected_media_type(suffix)!r}"))
            continue
        try:
            blob = client.fetch_blob(layer.tag_ref, layer.descriptor)
        except StockadeError as exc:
            target.signatures.append(result.fail(f"cannot read the signature layer: {exc}"))
            continue
        target.signatures.append(check_legacy(checks, blob, dict(layer.annotations), result, digest=target.digest,
                                              reference=ref, predicate_type=predicate_type))


def _referrer_results(client: RegistryClient, checks: Checks, ref: Reference, target: TargetResult,
                      predicate_type: str | None) -> None:
    from engine.registry import ImageManifest, ManifestUnknownError

    from trust import oci, referrers

    predicate_type = predicate_type or dsse.COSIGN_SIGN_PREDICATE
    listing = referrers.list_referrers(client, ref, target.digest)
    for desc in listing.descriptors:
        if not referrers.is_bundle_candidate(desc):
            continue
        announced = desc.annotations.get(referrers.ANNOTATION_PREDICATE)
        if announced is not None and announced != predicate_type:
            continue  # another kind of attestation; not what was asked for
        location = f"{ref.name}@{desc.digest}"
        result = SignatureResult(kind="bundle", via=listing.via, location=location)
        try:
            found = client.get_manifest(oci.at_digest(ref, desc.digest))
        except ManifestUnknownError:
            target.signatures.append(result.fail(
                f"the referrers index lists {desc.digest}, but the registry has no such manifest "
                "(a stale or tampered index)"))
            continue
        except StockadeError as exc:
            target.signatures.append(result.fail(f"cannot read the referrer: {exc}"))
            continue
        manifest = found.parsed
        if not isinstance(manifest, ImageManifest) or manifest.artifact_type != referrers.BUNDLE_ARTIFACT:
            continue
        if manifest.subject is None or manifest.subject.digest != target.digest:
            subject = manifest.subject.digest if manifest.subject else "nothing"
            target.signatures.append(result.fail(f"the referrer's subject is {subject}, not {target.digest}"))
            continue
        layer = next((d for d in manifest.layers if d.media_type in bundles.MEDIA_TYPES), None)
        if layer is None:
            target.signatures.append(result.fail("the referrer has no Sigstore bundle layer"))
            continue
        try:
            b = bundles.parse(client.fetch_blob(ref, layer), f"bundle {location}")
        except StockadeError as exc:
            target.signatures.append(result.fail(str(exc)))
            continue
        result.kind = "bundle-keyless" if b.keyless else "bundle-keyed"
        target.signatures.append(check_bundle(checks, b, result, digest=target.digest,
                                              predicate_type=predicate_type,
                                              keep_statement=predicate_type != dsse.COSIGN_SIGN_PREDICATE))


def _targets(client: RegistryClient, ref: Reference, platform: str | None, scope: str) -> tuple[str, list[TargetResult]]:
    from engine.registry import ImageIndex, Platform
    from engine.registry.platform import select_manifest

    from trust import oci

    top = client.get_manifest(ref)
    if not isinstance(top.parsed, ImageIndex):
        return top.digest, [TargetResult(top.digest, top.media_type, "manifest")]
    top_target = TargetResult(top.digest, top.media_type, "index")
    if scope == "resolved":  # a --platform alone means: that platform's manifest
        scope = "platform" if platform else "index"
    if scope == "index":
        return top.digest, [top_target]
    wanted = Platform.parse(platform) if platform else Platform.host()
    entry = select_manifest(top.parsed.manifests, wanted, where=f"index {ref}")
    child = client.get_manifest(oci.at_digest(ref, entry.digest))
    child_target = TargetResult(child.digest, child.media_type, f"platform {entry.platform or wanted}")
    return top.digest, ([top_target, child_target] if scope == "both" else [child_target])


def cache_key_parts(ref: Reference, requirements: Requirements, *, platform: str | None, scope: str,
                    predicate_type: str | None) -> dict[str, Any]:
    """Everything a verdict for ``ref``'s digest depends on besides the digest: the verification
    cache's key. The reference itself is left out (a digest's signatures hold wherever it is pulled
    from) except where a requirement makes the answer depend on it."""
    parts: dict[str, Any] = {"platform": platform, "scope": scope, "predicate_type": predicate_type,
                             "root": requirements.root().sha256, "requirements": requirements.canonical()}
    if requirements.check_reference:
        # the signed payload must name this repository: a verdict for another one says nothing
        parts["repository"] = ref.name
    if requirements.tuf is not None:
        # TUF vouches for a tag, not a digest: another tag on the same digest is another question.
        parts["tag"] = f"{ref.name}:{ref.tag}"
    return parts


def verify_image(client: RegistryClient, reference: Reference | str, requirements: Requirements, *,
                 platform: str | None = None, scope: str = "resolved", predicate_type: str | None = None,
                 cache: VerificationCache | None = None) -> Verdict:
    """Verify the image ``reference`` names (see the module docstring for digests and scopes).

    ``predicate_type`` turns this into attestation verification (``.att`` layers and bundles whose
    statement has that predicate type). With ``cache``, a positive verdict for the same digest,
    requirements and trusted root is returned without contacting the registry for signatures and
    without importing sigstore or tuf. Registry failures raise; signature problems are reasons.
    """
    from engine.reference import Reference

    ref = Reference.parse(reference) if isinstance(reference, str) else reference
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}")
    checks = Checks(requirements)
    key_parts = cache_key_parts(ref, requirements, platform=platform, scope=scope,
                                predicate_type=predicate_type)
    if cache is not None and ref.digest:
        hit = cache.get(ref.digest, key_parts)
        if hit is not None:
            return hit
    resolved, targets = _targets(client, ref, platform, scope)
    if cache is not None and not ref.digest:
        hit = cache.get(resolved, key_parts)
        if hit is not None:
            return hit
    verdict = Verdict(reference=str(ref), digest=resolved, targets=targets,
                      signatures_required=requirements.wants_signatures)
    expires = time.time() + DEFAULT_TTL
    if requirements.tuf is not None:
        try:
            evidence = requirements.tuf.resolve(ref, offline=requirements.offline)
            verdict.tag_authority = {"digest": evidence.digest, **evidence.details}
            if evidence.digest != resolved:
                verdict.tag_ok = False
                verdict.tag_authority.update(error=f"the tag resolves to {resolved}, but TUF says {evidence.digest}",
                                             reason=TufDigestMismatchError.reason)
            if evidence.expires is not None:
                expires = min(expires, evidence.expires.timestamp())
        except StockadeError as exc:
            verdict.tag_ok = False
            # the stable code (expired, rollback, unknown-tag, …) scripts branch on, as `trust verify` prints it
            verdict.tag_authority = {"error": str(exc), "reason": getattr(exc, "reason", TufError.reason)}
    if requirements.wants_signatures:
        for target in targets:
            for source, find in (("referrers", _referrer_results), ("legacy tag", _legacy_results)):
                try:
                    find(client, checks, ref, target, predicate_type)
                except StockadeError as exc:
                    # One broken source (a malformed index, an unreachable tag) must not hide the
                    # signatures of another; nothing here can make the verdict positive by itself.
                    target.errors.append(f"{source}: {exc}")
    verdict.expires = expires
    if cache is not None and verdict.ok:
        cache.put(resolved, key_parts, verdict)
    return verdict


# --- blobs ------------------------------------------------------------------------------------------

def verify_blob(path: Path, bundle_path: Path, requirements: Requirements, *,
                sha256: bytes | None = None) -> SignatureResult:
    """Verify a file against a Sigstore bundle. For a DSSE bundle the file must be the in-toto
    statement's subject (any predicate type); for a message signature, what was signed.
    ``sha256`` is the file's digest when the caller has it already."""
    try:
        raw = bundle_path.read_bytes()
    except OSError as exc:
        raise VerificationFailed(f"cannot read bundle {bundle_path}: {exc.strerror}") from None
    sha = sha256 or file_sha256(path)
    result = SignatureResult(kind="bundle", via=VIA_FILE, location=str(bundle_path))
    try:
        b = bundles.parse(raw, f"bundle {bundle_path}")
    except SignatureDataError as exc:
        return result.fail(str(exc))
    result.kind = "bundle-keyless" if b.keyless else "bundle-keyed"
    check_bundle(Checks(requirements), b, result, digest="sha256:" + sha.hex(), predicate_type=None,
                 artifact_sha256=sha, artifact=path.read_bytes)
    if result.ok and b.envelope is not None:
        try:
            statement = dsse.parse_statement(b.envelope)
        except SignatureDataError as exc:
            return result.fail(str(exc))
        if not statement.covers("sha256:" + sha.hex()):
            result.fail(f"the statement's subject does not include {path} (sha256:{sha.hex()})")
        else:
            result.statement = statement.document
    return result

