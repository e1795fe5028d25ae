"""Signing: images (legacy ``.sig`` layers or OCI 1.1 referrer bundles), attestations, and blobs.

An image is always signed by digest: a tag is resolved to the manifest digest first, and what is
signed names that digest, so moving the tag later cannot move the signature. Keyed signing needs no
network other than the registry: there is no public transparency log to upload to here, and a
keyed bundle without a log entry is verified by Stockade's own code (see ``trust.bundle``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from engine.reference import Reference
from engine.registry import Descriptor, ImageIndex, Platform, RegistryClient
from engine.registry.platform import select_manifest

from trust import bundle, dsse, legacy, oci, referrers, simplesigning
from trust.untrusted import b64, file_sha256
from trust.keys import PrivateKey



@dataclass(frozen=True)
class Signed:
    """Where a signature went."""

    digest: str  # the image digest signed
    media_type: str
    location: str  # tag or referrer manifest
    format: str
    key_id: str

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "media_type": self.media_type, "format": self.format,
                "location": self.location, "key_id": self.key_id}


def resolve_target(client: RegistryClient, ref: Reference, platform: str | None = None) -> Descriptor:
    """The descriptor to sign: the manifest the reference names, or one platform's manifest."""
    top = client.get_manifest(ref)
    if platform and isinstance(top.parsed, ImageIndex):
        entry = select_manifest(top.parsed.manifests, Platform.parse(platform), where=f"index {ref}")
        child = client.get_manifest(oci.at_digest(ref, entry.digest))
        return child.descriptor
    return top.descriptor


def sign_image(client: RegistryClient, ref: Reference, key: PrivateKey, *, fmt: str = "legacy",
               annotations: Mapping[str, str] | None = None, platform: str | None = None) -> Signed:
    """Sign the image ``ref`` names (resolved to its digest) in the given format."""
    target = resolve_target(client, ref, platform)
    if fmt == "bundle":
        statement = dsse.statement(ref.name, target.digest.partition(":")[2], dsse.COSIGN_SIGN_PREDICATE)
        raw = bundle.dsse_bundle(key, dsse.INTOTO_PAYLOAD_TYPE, statement)
        digest = referrers.push_bundle(client, ref, target, raw, dsse.COSIGN_SIGN_PREDICATE)
        return Signed(target.digest, target.media_type, f"{ref.name}@{digest}", fmt, key.public.key_id)
    payload = simplesigning.build(ref.name, target.digest, annotations)
    signature = key.sign(payload)
    tag_ref = legacy.append(client, ref, target.digest, legacy.SIG_SUFFIX, payload, simplesigning.MEDIA_TYPE,
                            {legacy.SIGNATURE: b64(signature)})
    return Signed(target.digest, target.media_type, str(tag_ref), fmt, key.public.key_id)


def attest_image(client: RegistryClient, ref: Reference, key: PrivateKey, predicate_type: str,
                 predicate: Any, *, fmt: str = "legacy", platform: str | None = None) -> Signed:
    """Attach a signed in-toto statement about the image (legacy ``.att`` layer or referrer bundle)."""
    target = resolve_target(client, ref, platform)
    statement = dsse.statement(ref.name, target.digest.partition(":")[2], predicate_type, predicate)
    if fmt == "bundle":
        raw = bundle.dsse_bundle(key, dsse.INTOTO_PAYLOAD_TYPE, statement)
        digest = referrers.push_bundle(client, ref, target, raw, predicate_type)
        return Signed(target.digest, target.media_type, f"{ref.name}@{digest}", fmt, key.public.key_id)
    envelope = dsse.Envelope(dsse.INTOTO_PAYLOAD_TYPE, statement,
                             (key.sign(dsse.pae(dsse.INTOTO_PAYLOAD_TYPE, statement)),))
    tag_ref = legacy.append(client, ref, target.digest, legacy.ATT_SUFFIX, oci.dumps(envelope.to_json_obj()),
                            legacy.DSSE_ENVELOPE, {legacy.SIGNATURE: "", legacy.PREDICATE_TYPE: predicate_type})
    return Signed(target.digest, target.media_type, str(tag_ref), fmt, key.public.key_id)


def sign_blob(key: PrivateKey, path: Path) -> bytes:
    """A keyed Sigstore bundle v0.3 over the file.

    ECDSA and RSA keys sign the file's SHA-256 (a message signature, as ``cosign sign-blob``).
    Ed25519 cannot: Sigstore verifiers hash the artifact for message signatures and pure Ed25519
    signs the message itself (sigstore-js then fails), so an Ed25519 key signs a DSSE in-toto
    statement whose subject is the file instead, which every verifier checks over its PAE.
    """
    digest = file_sha256(path)
    if key.public.algorithm == "PKIX_ED25519":
        statement = dsse.statement(path.name, digest.hex(), dsse.COSIGN_SIGN_PREDICATE)
        return bundle.dsse_bundle(key, dsse.INTOTO_PAYLOAD_TYPE, statement)
    signature = key.sign_digest(digest, path.read_bytes)
    return bundle.message_bundle(key, digest, signature)
