"""The legacy cosign layout: ``sha256-<hex>.sig`` and ``.att`` tags with one layer per signature.

Each layer's blob is what was signed (a simple-signing payload, or a DSSE envelope for ``.att``)
and its annotations carry the rest (cosign ``pkg/oci/static/signature.go``):

* ``dev.cosignproject.cosign/signature``: the signature, base64 (empty for DSSE, which embeds it);
* ``dev.sigstore.cosign/certificate`` and ``dev.sigstore.cosign/chain``: PEM, for keyless;
* ``dev.sigstore.cosign/bundle``: the Rekor signed entry timestamp and entry (see ``trust.rekor``).

Signing again appends a layer and keeps every earlier one; the tag update uses the converging
read-modify-write of ``trust.oci.update_tag``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from engine.reference import Reference
from engine.registry import Descriptor, ImageManifest, ManifestResult, RegistryClient
from engine.registry import mediatypes as mt

from trust import oci
from trust.errors import SignatureDataError
from trust.simplesigning import MEDIA_TYPE as SIMPLESIGNING

SIGNATURE = "dev.cosignproject.cosign/signature"
CERTIFICATE = "dev.sigstore.cosign/certificate"
CHAIN = "dev.sigstore.cosign/chain"
BUNDLE = "dev.sigstore.cosign/bundle"
PREDICATE_TYPE = "predicateType"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
SIG_SUFFIX, ATT_SUFFIX = ".sig", ".att"


@dataclass(frozen=True)
class Layer:
    """One stored signature: the layer descriptor and where its manifest lives."""

    descriptor: Descriptor
    tag_ref: Reference

    @property
    def annotations(self) -> Mapping[str, str]:
        return self.descriptor.annotations

    @property
    def location(self) -> str:
        return f"{self.tag_ref}"


def _config(layers: list[Descriptor]) -> bytes:
    # A minimal image configuration listing the layers, as cosign's (go-containerregistry's) has.
    return oci.dumps({"architecture": "", "os": "", "config": {},
                      "rootfs": {"type": "layers", "diff_ids": [d.digest for d in layers]}})


def append(client: RegistryClient, ref: Reference, image_digest: str, suffix: str,
           blob: bytes, media_type: str, annotations: Mapping[str, str]) -> Reference:
    """Add one signature layer to the ``.sig``/``.att`` manifest of ``image_digest``; return its tag."""
    tag_ref = oci.at_tag(ref, oci.tag_for(image_digest, suffix))
    layer = oci.push_blob(client, ref, blob, media_type)
    layer = Descriptor(media_type=media_type, digest=layer.digest, size=layer.size,
                       annotations=dict(annotations))

    def existing(current: ManifestResult | None) -> list[Descriptor]:
        if current is None or not isinstance(current.parsed, ImageManifest):
            return []
        return list(current.parsed.layers)

    def present(current: ManifestResult) -> bool:
        return any(d.digest == layer.digest and d.annotations == layer.annotations for d in existing(current))

    def build(current: ManifestResult | None) -> tuple[bytes, str] | None:
        if current is not None and present(current):
            return None
        layers = existing(current) + [layer]
        config = oci.push_blob(client, ref, _config(layers), mt.OCI_CONFIG)
        manifest = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": config.to_json(),
                    "layers": [d.to_json() for d in layers]}
        return oci.dumps(manifest), mt.OCI_MANIFEST

    oci.update_tag(client, tag_ref, build, present, what=f"signatures of {image_digest}")
    return tag_ref


def read(client: RegistryClient, ref: Reference, image_digest: str, suffix: str) -> list[Layer]:
    """Every layer of the ``.sig``/``.att`` manifest (empty when there is none)."""
    tag_ref = oci.at_tag(ref, oci.tag_for(image_digest, suffix))
    found = oci.get_optional(client, tag_ref)
    if found is None:
        return []
    if not isinstance(found.parsed, ImageManifest):
        raise SignatureDataError(f"{tag_ref} is not a signature manifest ({found.media_type})")
    return [Layer(d, tag_ref) for d in found.parsed.layers]


def expected_media_type(suffix: str) -> str:
    return SIMPLESIGNING if suffix == SIG_SUFFIX else DSSE_ENVELOPE
