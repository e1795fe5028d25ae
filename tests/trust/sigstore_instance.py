"""A private Sigstore instance for tests: our own CA, CT log, transparency log and trusted root.

It mints what Fulcio, the CT log and Rekor would: short-lived code-signing certificates with an
embedded precertificate SCT, log entries (hashedrekord and dsse 0.0.1) with a signed entry timestamp,
a real RFC 6962 Merkle inclusion proof and a signed checkpoint; and a ``trusted_root.json`` naming
the three keys. sigstore-python and sigstore-js then verify real certificate-based signatures fully
offline, exactly as they would public-good ones. Knobs let tests produce each kind of bad evidence.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from trust import dsse
from trust.bundle import MEDIA_TYPE_V03
from trust.keys import PrivateKey

SCT_OID = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
UTC = dt.timezone.utc


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def _der_utf8(text: str) -> bytes:
    raw = text.encode()
    assert len(raw) < 128
    return bytes([0x0C, len(raw)]) + raw


def _der_octet_string(data: bytes) -> bytes:
    n = len(data)
    if n < 128:
        return bytes([0x04, n]) + data
    length = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x04, 0x80 | len(length)]) + length + data


def _iso(t: dt.datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- RFC 6962 Merkle tree --------------------------------------------------------------------------

def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(a: bytes, b: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + a + b).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _mth(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node(_mth(leaves[:k]), _mth(leaves[k:]))


def _path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 PATH(m, D[n]): audit path from leaf m, bottom-up."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return _path(m, leaves[:k]) + [_mth(leaves[k:])]
    return _path(m - k, leaves[k:]) + [_mth(leaves[:k])]


@dataclass
class Issued:
    """A signing certificate and its private key (as Fulcio hands out)."""

    key: PrivateKey
    cert: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class SigstoreInstance:
    """CA + CT log + Rekor, with a growing log; ``trusted_root()`` describes it."""

    name: str = "stockade-test"
    ca_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP384R1()))
    ct_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    log_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    leaves: list[bytes] = field(default_factory=list)
    epoch: dt.datetime = field(default_factory=lambda: dt.datetime(2024, 1, 1, tzinfo=UTC))
    # Checkpoint signers are matched to the log by name: sigstore-js requires the name to be found
    # in the log's baseUrl, as "rekor.sigstore.dev" is in "https://rekor.sigstore.dev".
    log_host: str = "rekor.stockade.test"

    def __post_init__(self) -> None:
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.name),
                             x509.NameAttribute(NameOID.COMMON_NAME, f"{self.name} root")])
        ski = x509.SubjectKeyIdentifier.from_public_key(self.ca_key.public_key())
        self.ca_cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                        .public_key(self.ca_key.public_key()).serial_number(x509.random_serial_number())
                        .not_valid_before(self.epoch).not_valid_after(self.epoch + dt.timedelta(days=3650))
                        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                       critical=True)
                        .add_extension(ski, critical=False)
                        .sign(self.ca_key, hashes.SHA384()))

    # --- identities --------------------------------------------------------------------------------
    @property
    def log_id(self) -> bytes:
        return hashlib.sha256(_spki(self.log_key)).digest()

    @property
    def ct_log_id(self) -> bytes:
        return hashlib.sha256(_spki(self.ct_key)).digest()

    def trusted_root(self, *, log_key: ec.EllipticCurvePrivateKey | None = None) -> dict[str, Any]:
        """The trusted_root.json document; ``log_key`` substitutes another Rekor key (a wrong root)."""
        lk = log_key or self.log_key
        start = {"start": _iso(self.epoch)}
        return {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [{"baseUrl": f"https://{self.log_host}", "hashAlgorithm": "SHA2_256",
                       "publicKey": {"rawBytes": _b64(_spki(lk)), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                                     "validFor": start},
                       "logId": {"keyId": _b64(hashlib.sha256(_spki(lk)).digest())}}],
            "certificateAuthorities": [{"subject": {"organization": self.name, "commonName": f"{self.name} root"},
                                        "uri": "https://fulcio.invalid",
                                        "certChain": {"certificates": [{"rawBytes": _b64(
                                            self.ca_cert.public_bytes(serialization.Encoding.DER))}]},
                                        "validFor": start}],
            "ctlogs": [{"baseUrl": "https://ctfe.invalid", "hashAlgorithm": "SHA2_256",
                        "publicKey": {"rawBytes": _b64(_spki(self.ct_key)), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                                      "validFor": start},
                        "logId": {"keyId": _b64(self.ct_log_id)}}],
            "timestampAuthorities": [],
        }

    def write_trusted_root(self, path: Path, **kw: Any) -> Path:
        path.write_text(json.dumps(self.trusted_root(**kw), indent=2))
        return path

    # --- Fulcio + CT -------------------------------------------------------------------------------
    def issue(self, identity: str, issuer: str, *, not_before: dt.datetime | None = None,
              minutes: int = 10, sct: bool = True) -> Issued:
        """A code-signing certificate for ``identity`` with an embedded precertificate SCT."""
        key = PrivateKey(ec.generate_private_key(ec.SECP256R1()))
        start = not_before or dt.datetime.now(UTC) - dt.timedelta(minutes=1)
        san: x509.GeneralName = (x509.RFC822Name(identity) if "@" in identity and "://" not in identity
                                 else x509.UniformResourceIdentifier(identity))
        serial = x509.random_serial_number()
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key())

        def builder() -> x509.CertificateBuilder:
            return (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(self.ca_cert.subject)
                    .public_key(key.key.public_key()).serial_number(serial)
                    .not_valid_before(start).not_valid_after(start + dt.timedelta(minutes=minutes))
                    .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                                   critical=True)
                    .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
                    .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.key.public_key()), critical=False)
                    .add_extension(aki, critical=False)
                    .add_extension(x509.SubjectAlternativeName([san]), critical=True)
                    .add_extension(x509.UnrecognizedExtension(ISSUER_V1, issuer.encode()), critical=False)
                    .add_extension(x509.UnrecognizedExtension(ISSUER_V2, _der_utf8(issuer)), critical=False))

        if not sct:
            return Issued(key, builder().sign(self.ca_key, hashes.SHA384()))
        tbs = builder().sign(self.ca_key, hashes.SHA384()).tbs_certificate_bytes
        timestamp = int(start.timestamp() * 1000) + 1000
        issuer_key_hash = hashlib.sha256(_spki(self.ca_key)).digest()
        signed = (b"\x00\x00" + struct.pack(">Q", timestamp) + b"\x00\x01" + issuer_key_hash
                  + len(tbs).to_bytes(3, "big") + tbs + b"\x00\x00")
        sig = self.ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        sct_bytes = (b"\x00" + self.ct_log_id + struct.pack(">Q", timestamp) + b"\x00\x00"
                     + b"\x04\x03" + struct.pack(">H", len(sig)) + sig)
        sct_list = struct.pack(">H", len(sct_bytes) + 2) + struct.pack(">H", len(sct_bytes)) + sct_bytes
        cert = (builder().add_extension(x509.UnrecognizedExtension(SCT_OID, _der_octet_string(sct_list)),
                                        critical=False)
                .sign(self.ca_key, hashes.SHA384()))
        assert cert.tbs_precertificate_bytes == tbs
        return Issued(key, cert)

    # --- Rekor -------------------------------------------------------------------------------------
    def _integrate(self, body: bytes, integrated_time: int | None) -> dict[str, Any]:
        index = len(self.leaves)
        self.leaves.append(_leaf(body))
        size = len(self.leaves)
        root = _mth(self.leaves)
        when = integrated_time if integrated_time is not None else int(dt.datetime.now(UTC).timestamp())
        log_id_hex = self.log_id.hex()
        set_payload = json.dumps({"body": _b64(body), "integratedTime": when, "logID": log_id_hex,
                                  "logIndex": index}, sort_keys=True, separators=(",", ":")).encode()
        set_sig = self.log_key.sign(set_payload, ec.ECDSA(hashes.SHA256()))
        note = f"{self.log_host} - 1\n{size}\n{_b64(root)}\n"
        note_sig = self.log_key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
        checkpoint = note + f"\n\u2014 {self.log_host} {_b64(self.log_id[:4] + note_sig)}\n"
        return {"index": index, "time": when, "set": set_sig, "body": body, "root": root, "size": size,
                "path": _path(index, self.leaves), "checkpoint": checkpoint}

    @staticmethod
    def bundle_entry(kind: str, e: dict[str, Any], log_id: bytes) -> dict[str, Any]:
        return {"logIndex": str(e["index"]), "logId": {"keyId": _b64(log_id)},
                "kindVersion": {"kind": kind, "version": "0.0.1"}, "integratedTime": str(e["time"]),
                "inclusionPromise": {"signedEntryTimestamp": _b64(e["set"])},
                "inclusionProof": {"logIndex": str(e["index"]), "rootHash": _b64(e["root"]),
                                   "treeSize": str(e["size"]), "hashes": [_b64(h) for h in e["path"]],
                                   "checkpoint": {"envelope": e["checkpoint"]}},
                "canonicalizedBody": _b64(e["body"])}

    def log_hashedrekord(self, verifier_pem: bytes, signature: bytes, sha256_digest: bytes,
                         integrated_time: int | None = None, kind: str = "hashedrekord") -> dict[str, Any]:
        spec: dict[str, Any] = {"data": {"hash": {"algorithm": "sha256", "value": sha256_digest.hex()}},
                                "signature": {"content": _b64(signature), "publicKey": {"content": _b64(verifier_pem)}}}
        if kind == "rekord":
            spec["signature"]["format"] = "x509"
        body = json.dumps({"apiVersion": "0.0.1", "kind": kind, "spec": spec}, separators=(",", ":")).encode()
        return self._integrate(body, integrated_time)

    def log_dsse(self, verifier_pem: bytes, envelope: dsse.Envelope, integrated_time: int | None = None) -> dict[str, Any]:
        env_json = json.dumps(envelope.to_json_obj(), separators=(",", ":")).encode()
        body = json.dumps({"apiVersion": "0.0.1", "kind": "dsse", "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": hashlib.sha256(env_json).hexdigest()},
            "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(envelope.payload).hexdigest()},
            "signatures": [{"signature": _b64(s), "verifier": _b64(verifier_pem)} for s in envelope.signatures]}},
            separators=(",", ":")).encode()
        return self._integrate(body, integrated_time)

    # --- complete signatures -------------------------------------------------------------------------
    def message_bundle(self, artifact: bytes, identity: str, issuer: str, **issue_kw: Any) -> bytes:
        """A keyless bundle v0.3 over ``artifact`` (hashedrekord), as ``cosign sign-blob`` makes."""
        who = self.issue(identity, issuer, **issue_kw)
        digest = hashlib.sha256(artifact).digest()
        sig = who.key.sign(artifact)
        entry = self.log_hashedrekord(who.pem, sig, digest)
        return json.dumps({
            "mediaType": MEDIA_TYPE_V03,
            "verificationMaterial": {"certificate": {"rawBytes": _b64(who.cert.public_bytes(serialization.Encoding.DER))},
                                     "tlogEntries": [self.bundle_entry("hashedrekord", entry, self.log_id)]},
            "messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": _b64(digest)},
                                 "signature": _b64(sig)},
        }).encode()

    def dsse_bundle(self, payload_type: str, payload: bytes, identity: str, issuer: str,
                    integrated_time: int | None = None, **issue_kw: Any) -> bytes:
        """A keyless bundle v0.3 with a DSSE envelope (dsse 0.0.1 log entry), as cosign v3 makes."""
        who = self.issue(identity, issuer, **issue_kw)
        env = dsse.Envelope(payload_type, payload, (who.key.sign(dsse.pae(payload_type, payload)),))
        entry = self.log_dsse(who.pem, env, integrated_time)
        return json.dumps({
            "mediaType": MEDIA_TYPE_V03,
            "verificationMaterial": {"certificate": {"rawBytes": _b64(who.cert.public_bytes(serialization.Encoding.DER))},
                                     "tlogEntries": [self.bundle_entry("dsse", entry, self.log_id)]},
            "dsseEnvelope": env.to_json_obj(),
        }).encode()

    def legacy_signature(self, payload: bytes, identity: str, issuer: str, integrated_time: int | None = None,
                         **issue_kw: Any) -> tuple[bytes, bytes, str]:
        """(signature, certificate PEM, ``dev.sigstore.cosign/bundle`` annotation) for a legacy
        keyless ``.sig`` layer, as cosign 1.x/2.x writes it."""
        who = self.issue(identity, issuer, **issue_kw)
        sig = who.key.sign(payload)
        e = self.log_hashedrekord(who.pem, sig, hashlib.sha256(payload).digest(), integrated_time)
        return sig, who.pem, self.annotation(e)

    def legacy_attestation(self, statement: bytes, identity: str, issuer: str) -> tuple[bytes, bytes, str]:
        """(DSSE envelope JSON, certificate PEM, bundle annotation) for a keyless ``.att`` layer."""
        who = self.issue(identity, issuer)
        env = dsse.Envelope(dsse.INTOTO_PAYLOAD_TYPE, statement,
                            (who.key.sign(dsse.pae(dsse.INTOTO_PAYLOAD_TYPE, statement)),))
        e = self.log_dsse(who.pem, env)
        return json.dumps(env.to_json_obj()).encode(), who.pem, self.annotation(e)

    def annotation(self, e: dict[str, Any]) -> str:
        """The ``dev.sigstore.cosign/bundle`` layer annotation for a log entry."""
        return json.dumps({"SignedEntryTimestamp": _b64(e["set"]),
                           "Payload": {"body": _b64(e["body"]), "integratedTime": e["time"],
                                       "logIndex": e["index"], "logID": self.log_id.hex()}})

    def sign_image_legacy(self, client: Any, ref: Any, digest: str, identity: str, issuer: str) -> None:
        """Attach a keyless legacy ``.sig`` layer for ``digest`` to the image in the registry."""
        from trust import legacy, simplesigning

        payload = simplesigning.build(ref.name, digest)
        sig, pem, annotation = self.legacy_signature(payload, identity, issuer)
        legacy.append(client, ref, digest, legacy.SIG_SUFFIX, payload, simplesigning.MEDIA_TYPE,
                      {legacy.SIGNATURE: _b64(sig), legacy.CERTIFICATE: pem.decode(), legacy.BUNDLE: annotation})
