"""OCI 1.1 referrers: bundles attached to an image, found through the API or the tag schema.

A bundle is pushed as its own manifest (cosign v3's layout, ``pkg/oci/remote/write.go``): artifactType
``application/vnd.dev.sigstore.bundle.v0.3+json``, the empty ``{}`` config, the bundle as its only
layer, ``subject`` = the signed image, and annotations naming the content and predicate type.

Registries with the referrers API index such manifests themselves. Others (Debian's distribution 2.8
answers 404) need the client to maintain an index at the tag ``sha256-<hex>`` listing them
(distribution-spec "Referrers Tag Schema"); it is updated with ``trust.oci.update_tag``. Readers use
the API when it answers, else the tag, and trust neither: every listed manifest is fetched by digest,
must exist, and must name the image as its subject.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from engine.reference import Reference
from engine.registry import Descriptor, ImageIndex, ManifestResult, RegistryClient
from engine.registry import mediatypes as mt
from engine.registry.digest import compute

from trust import oci
from trust.bundle import MEDIA_TYPE_V03
from trust.errors import SignatureDataError
from trust.verdict import VIA_REFERRERS_API, VIA_REFERRERS_TAG

BUNDLE_ARTIFACT = MEDIA_TYPE_V03
ANNOTATION_CONTENT = "dev.sigstore.bundle.content"
ANNOTATION_PREDICATE = "dev.sigstore.bundle.predicateType"
ANNOTATION_CREATED = "org.opencontainers.image.created"


@dataclass(frozen=True)
class Listing:
    """Referrer descriptors of one image and how they were found."""

    via: str
    descriptors: tuple[Descriptor, ...]


def push_bundle(client: RegistryClient, ref: Reference, subject: Descriptor, bundle: bytes,
                predicate_type: str, content: str = "dsse-envelope") -> str:
    """Attach ``bundle`` to ``subject`` as a referrer; return the referrer manifest's digest."""
    config = oci.empty_config(client, ref)
    layer = oci.push_blob(client, ref, bundle, MEDIA_TYPE_V03)
    annotations = {ANNOTATION_CONTENT: content, ANNOTATION_PREDICATE: predicate_type,
                   ANNOTATION_CREATED: dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    manifest = oci.dumps({
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "artifactType": BUNDLE_ARTIFACT,
        "config": config.to_json(), "layers": [layer.to_json()],
        "subject": Descriptor(subject.media_type, subject.digest, subject.size).to_json(),
        "annotations": annotations,
    })
    digest = client.put_manifest(oci.at_digest(ref, compute(manifest)), manifest, mt.OCI_MANIFEST)
    if client.referrers(ref, subject.digest) is None:
        entry = Descriptor(media_type=mt.OCI_MANIFEST, digest=digest, size=len(manifest),
                           annotations=annotations, artifact_type=BUNDLE_ARTIFACT)
        add_to_tag_index(client, ref, subject.digest, entry)
    return digest


def add_to_tag_index(client: RegistryClient, ref: Reference, subject_digest: str, entry: Descriptor) -> None:
    """Add ``entry`` to the referrers tag schema index of ``subject_digest`` without losing others'."""
    tag_ref = oci.at_tag(ref, oci.tag_for(subject_digest))

    def entries(current: ManifestResult | None) -> list[Descriptor]:
        if current is None or not isinstance(current.parsed, ImageIndex):
            return []
        return list(current.parsed.manifests)

    def present(current: ManifestResult) -> bool:
        return any(d.digest == entry.digest for d in entries(current))

    def build(current: ManifestResult | None) -> tuple[bytes, str] | None:
        if current is not None and present(current):
            return None
        # Entries whose manifest is gone (deleted, garbage-collected) are dropped: the registry
        # refuses an index naming an unknown manifest, which would block every later signature.
        # A concurrent writer's entry is never dropped: its manifest is pushed before it is listed.
        kept = [d for d in entries(current)
                if client.head_manifest(oci.at_digest(ref, d.digest)) is not None]
        index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                 "manifests": [d.to_json() for d in kept + [entry]]}
        return oci.dumps(index), mt.OCI_INDEX

    oci.update_tag(client, tag_ref, build, present, what=f"referrers of {subject_digest}")


def list_referrers(client: RegistryClient, ref: Reference, digest: str) -> Listing:
    """The referrers of ``digest``: the API's answer, else the tag schema index (maybe empty)."""
    api = client.referrers(ref, digest)
    if api is not None:
        return Listing(VIA_REFERRERS_API, api.manifests)
    found = oci.get_optional(client, oci.at_tag(ref, oci.tag_for(digest)))
    if found is None:
        return Listing(VIA_REFERRERS_TAG, ())
    if not isinstance(found.parsed, ImageIndex):
        raise SignatureDataError(f"{oci.at_tag(ref, oci.tag_for(digest))} is not an index")
    return Listing(VIA_REFERRERS_TAG, found.parsed.manifests)


def is_bundle_candidate(desc: Descriptor) -> bool:
    """Descriptors that may be bundles: the bundle artifactType, or none given (go-containerregistry
    writes tag-schema entries without it, sigstore/cosign#4641)."""
    return desc.artifact_type in (None, BUNDLE_ARTIFACT)
