"""Signing and verifying images in a real registry (Debian's distribution 2.8 on loopback).

Covers both layouts (legacy ``.sig`` and OCI 1.1 referrer bundles through the tag schema, since
this registry has no referrers API), appending, concurrent signers, image indexes, tampering in the
registry, keyless signatures from the private Sigstore instance, attestations (including cosign's
own public attestation bundle attached to the image it was made for) and ``--require-tlog``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess  # nosec B404 # runs our own CLI concurrently, argument lists
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.reference import Reference
from engine.registry import Descriptor, ImageIndex, ImageManifest
from engine.registry import mediatypes as mt
from tests.support.cli import REPO, stockade
from tests.trust.sigstore_instance import SigstoreInstance
from trust import bundle as bundles
from trust import dsse, legacy, oci, referrers, simplesigning
from trust.untrusted import b64
from trust.keys import PrivateKey, generate, write_key_pair

PW = {"STOCKADE_PASSWORD": "pw"}
WHO, ISSUER = "release@example.com", "https://issuer.example"


def verify(image: str, *args: Any) -> tuple[int, dict[str, Any]]:
    r = stockade("verify", image, "--no-cache", "-o", "json", *args)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout)


def sign(image: str, key: Path, *args: Any) -> dict[str, Any]:
    r = stockade("sign", "--key", key, image, "-o", "json", *args, env=PW)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def invalid_reasons(doc: dict[str, Any]) -> list[str]:
    return [reason for t in doc["targets"] for s in t["invalid"] for reason in s["reasons"]]


def test_legacy_sign_and_verify(image: tuple[str, str], key_files: tuple[Path, Path], client: Any) -> None:
    ref, digest = image
    key, pub = key_files
    signed = sign(ref, key, "-a", "team=platform")
    assert signed["digest"] == digest and signed["location"].endswith(f":{oci.tag_for(digest, '.sig')}")
    rc, doc = verify(ref, "--key", pub)
    assert rc == 0, doc
    (target,) = doc["targets"]
    assert target == {**target, "digest": digest, "role": "manifest", "verified": True}
    (sig,) = target["signatures"]
    assert sig["kind"] == "cosign-keyed" and sig["found"]["via"] == "legacy-tag"
    assert sig["key_id"] == hashlib.sha256(
        PrivateKey(load_key(key).key).public.der).hexdigest()
    # the stored payload is cosign's, byte for byte, and passes containers/image's strict rules
    (layer,) = legacy.read(client, Reference.parse(ref), digest, ".sig")
    payload = client.fetch_blob(layer.tag_ref, layer.descriptor)
    assert payload == simplesigning.build(Reference.parse(ref).name, digest, {"team": "platform"})
    assert simplesigning.parse(payload).manifest_digest == digest


def load_key(path: Path) -> PrivateKey:
    from trust.keys import load_private_key

    return load_private_key(path, lambda: b"pw")


def test_signing_again_appends(image: tuple[str, str], key_files: tuple[Path, Path], tmp_path: Path) -> None:
    ref, _ = image
    key, pub = key_files
    other_key, other_pub = write_key_pair(generate("ed25519"), b"pw", tmp_path / "other")
    sign(ref, key)
    sign(ref, other_key)
    for p in (pub, other_pub):
        rc, doc = verify(ref, "--key", p)
        assert rc == 0
        assert len(doc["targets"][0]["signatures"]) == 1 and len(doc["targets"][0]["invalid"]) == 1
    rc, doc = verify(ref, "--key", pub, "--key", other_pub)
    assert rc == 0 and len(doc["targets"][0]["signatures"]) == 2


def test_wrong_key_fails_with_reason(image: tuple[str, str], key_files: tuple[Path, Path], tmp_path: Path) -> None:
    ref, _ = image
    sign(ref, key_files[0])
    _, other_pub = write_key_pair(generate(), b"pw", tmp_path / "other")
    rc, doc = verify(ref, "--key", other_pub)
    assert rc == 1 and doc["verified"] is False
    assert "does not verify with the given key" in invalid_reasons(doc)[0]
    r = stockade("verify", ref, "--key", other_pub, "--no-cache")
    assert r.returncode == 1 and "Verification FAILED" in r.stdout and "does not verify" in r.stdout


def test_unsigned_image_fails(image: tuple[str, str], key_files: tuple[Path, Path]) -> None:
    rc, doc = verify(image[0], "--key", key_files[1])
    assert rc == 1 and doc["targets"][0]["signatures"] == [] and doc["targets"][0]["invalid"] == []
    r = stockade("verify", image[0], "--key", key_files[1], "--no-cache")
    assert "(no signatures found)" in r.stdout


def test_bundle_sign_and_verify(image: tuple[str, str], key_files: tuple[Path, Path], client: Any) -> None:
    ref, digest = image
    key, pub = key_files
    signed = sign(ref, key, "--format", "bundle")
    rc, doc = verify(ref, "--key", pub)
    assert rc == 0, doc
    (sig,) = doc["targets"][0]["signatures"]
    assert sig["kind"] == "bundle-keyed" and sig["found"] == {"via": "referrers-tag", "location": signed["location"]}
    # the referrers tag schema index lists the referrer, with its artifact type and annotations
    index = client.get_manifest(oci.at_tag(Reference.parse(ref), oci.tag_for(digest)))
    assert isinstance(index.parsed, ImageIndex)
    (entry,) = index.parsed.manifests
    assert entry.artifact_type == referrers.BUNDLE_ARTIFACT
    assert entry.annotations[referrers.ANNOTATION_PREDICATE] == dsse.COSIGN_SIGN_PREDICATE
    found = client.get_manifest(oci.at_digest(Reference.parse(ref), entry.digest))
    assert isinstance(found.parsed, ImageManifest) and found.parsed.subject.digest == digest
    assert found.parsed.config.media_type == mt.OCI_EMPTY


def _concurrently(argvs: list[list[str]]) -> None:
    import os

    env = dict(os.environ, PYTHONPATH=str(REPO), **PW)
    procs = [subprocess.Popen([sys.executable, "-m", "stockade", *a], env=env,  # nosec B603
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for a in argvs]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()


@pytest.mark.parametrize("fmt", ["bundle", "legacy"])
def test_concurrent_signers_lose_nothing(image: tuple[str, str], tmp_path: Path, fmt: str) -> None:
    ref, _ = image
    signers = [write_key_pair(generate(), b"pw", tmp_path / f"s{i}") for i in range(4)]
    _concurrently([["sign", "--key", str(k), "--format", fmt, ref] for k, _ in signers])
    rc, doc = verify(ref, *[arg for _, pub in signers for arg in ("--key", pub)])
    assert rc == 0
    assert len(doc["targets"][0]["signatures"]) == 4, doc


# --- tampering in the registry ---------------------------------------------------------------------

def _put_sig_manifest(client: Any, ref: Reference, digest: str, layers: list[Descriptor]) -> None:
    config = oci.push_blob(client, ref, b"{}", mt.OCI_CONFIG)
    manifest = oci.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": config.to_json(),
                          "layers": [d.to_json() for d in layers]})
    client.put_manifest(oci.at_tag(ref, oci.tag_for(digest, ".sig")), manifest, mt.OCI_MANIFEST)


def test_changed_payload_byte_in_the_registry(image: tuple[str, str], key_files: tuple[Path, Path],
                                              client: Any) -> None:
    ref_text, digest = image
    ref = Reference.parse(ref_text)
    sign(ref_text, key_files[0])
    (layer,) = legacy.read(client, ref, digest, ".sig")
    payload = client.fetch_blob(layer.tag_ref, layer.descriptor)
    changed = payload.replace(b'"optional":null', b'"optional":{}')
    desc = oci.push_blob(client, ref, changed, simplesigning.MEDIA_TYPE)
    _put_sig_manifest(client, ref, digest, [Descriptor(desc.media_type, desc.digest, desc.size,
                                                       annotations=dict(layer.annotations))])
    rc, doc = verify(ref_text, "--key", key_files[1])
    assert rc == 1
    assert "signed by another key, or the payload was changed" in invalid_reasons(doc)[0]


def test_signature_over_another_digest(image: tuple[str, str], key_files: tuple[Path, Path], client: Any,
                                       registry: Any, busybox_layout: Path) -> None:
    ref_text, digest = image
    ref = Reference.parse(ref_text)
    # a valid signature for another image, copied under this image's .sig tag
    other = Reference.parse(f"{registry.host}/t/other-for-digest:1")
    payload = simplesigning.build(ref.name, "sha256:" + "ab" * 32)
    sig = load_key(key_files[0]).sign(payload)
    desc = oci.push_blob(client, ref, payload, simplesigning.MEDIA_TYPE)
    _put_sig_manifest(client, ref, digest, [Descriptor(desc.media_type, desc.digest, desc.size,
                                                       annotations={legacy.SIGNATURE: b64(sig)})])
    rc, doc = verify(ref_text, "--key", key_files[1])
    assert rc == 1
    assert invalid_reasons(doc) == [f"the payload signs sha256:{'ab' * 32}, not this image's {digest}"]
    assert other.repository  # the other image never needed to exist: the digest alone binds


def test_referrers_index_pointing_at_a_missing_manifest(image: tuple[str, str], key_files: tuple[Path, Path],
                                                        client: Any, registry: Any) -> None:
    import urllib.request

    ref_text, digest = image
    ref = Reference.parse(ref_text)
    # The registry refuses an index naming an unknown manifest, so the referrer is deleted after it was
    # listed: what a registry garbage collection or a tampered tag leaves behind.
    missing = sign(ref_text, key_files[0], "--format", "bundle")["location"].rpartition("@")[2]
    req = urllib.request.Request(f"{registry.url}/v2/{ref.repository}/manifests/{missing}", method="DELETE")
    assert urllib.request.urlopen(req, timeout=10).status == 202  # nosec B310 # loopback registry
    rc, doc = verify(ref_text, "--key", key_files[1])
    assert rc == 1
    assert invalid_reasons(doc) == [f"the referrers index lists {missing}, but the registry has no such manifest "
                                    "(a stale or tampered index)"]
    # signing again drops the dangling entry (the registry would refuse an index still naming it)
    sign(ref_text, key_files[0], "--format", "bundle")
    rc, doc = verify(ref_text, "--key", key_files[1])
    assert rc == 0 and doc["targets"][0]["invalid"] == []


def test_a_broken_source_does_not_hide_the_others(image: tuple[str, str], key_files: tuple[Path, Path],
                                                  client: Any) -> None:
    ref_text, digest = image
    ref = Reference.parse(ref_text)
    sign(ref_text, key_files[0])
    # the referrers tag holds an image manifest instead of an index
    top = client.get_manifest(ref)
    client.put_manifest(oci.at_tag(ref, oci.tag_for(digest)), top.raw, top.media_type)
    rc, doc = verify(ref_text, "--key", key_files[1])
    assert rc == 0
    assert doc["targets"][0]["errors"] == [f"referrers: {ref.name}:{oci.tag_for(digest)} is not an index"]
    r = stockade("verify", ref_text, "--key", key_files[1], "--no-cache")
    assert "error   referrers:" in r.stdout


def test_referrer_for_another_subject(image: tuple[str, str], key_files: tuple[Path, Path], client: Any) -> None:
    ref_text, digest = image
    ref = Reference.parse(ref_text)
    elsewhere = client.get_manifest(ref).descriptor
    elsewhere = Descriptor(elsewhere.media_type, "sha256:" + "cd" * 32, elsewhere.size)
    raw = bundles.dsse_bundle(load_key(key_files[0]), dsse.INTOTO_PAYLOAD_TYPE,
                              dsse.statement(ref.name, digest.partition(":")[2], dsse.COSIGN_SIGN_PREDICATE))
    referrer = referrers.push_bundle(client, ref, elsewhere, raw, dsse.COSIGN_SIGN_PREDICATE)
    entry = Descriptor(mt.OCI_MANIFEST, referrer, 1, artifact_type=referrers.BUNDLE_ARTIFACT)
    referrers.add_to_tag_index(client, ref, digest, entry)
    rc, doc = verify(ref_text, "--key", key_files[1])
    assert rc == 1
    assert invalid_reasons(doc) == [f"the referrer's subject is sha256:{'cd' * 32}, not {digest}"]


# --- indexes ---------------------------------------------------------------------------------------

@pytest.fixture
def index_image(image: tuple[str, str], client: Any) -> tuple[str, str, str, str]:
    """An OCI index over the busybox manifest (linux/amd64) and a variant of it (linux/arm64)."""
    ref_text, amd64 = image
    ref = Reference.parse(ref_text)
    top = client.get_manifest(ref)
    doc = json.loads(top.raw)
    doc["annotations"] = {"org.example.variant": "arm64"}
    arm_raw = json.dumps(doc).encode()
    arm64 = client.put_manifest(oci.at_digest(ref, "sha256:" + hashlib.sha256(arm_raw).hexdigest()), arm_raw,
                                top.media_type)
    index = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        {"mediaType": top.media_type, "digest": amd64, "size": len(top.raw),
         "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": top.media_type, "digest": arm64, "size": len(arm_raw),
         "platform": {"os": "linux", "architecture": "arm64"}}]}).encode()
    multi = oci.at_tag(ref, "multi")
    index_digest = client.put_manifest(multi, index, mt.OCI_INDEX)
    return str(multi), index_digest, amd64, arm64


def test_index_signature_and_platform_manifests(index_image: tuple[str, str, str, str],
                                                key_files: tuple[Path, Path]) -> None:
    ref, index_digest, amd64, _ = index_image
    key, pub = key_files
    assert sign(ref, key)["digest"] == index_digest  # the index is what a tag names
    rc, doc = verify(ref, "--key", pub)
    assert rc == 0 and [(t["role"], t["digest"]) for t in doc["targets"]] == [("index", index_digest)]
    rc, doc = verify(ref, "--key", pub, "--platform", "linux/amd64")
    assert rc == 1 and [(t["role"], t["digest"]) for t in doc["targets"]] == [("platform linux/amd64", amd64)]
    rc, doc = verify(ref, "--key", pub, "--platform", "linux/amd64", "--scope", "both")
    assert rc == 1 and [t["verified"] for t in doc["targets"]] == [True, False]
    assert sign(ref, key, "--platform", "linux/amd64")["digest"] == amd64
    rc, doc = verify(ref, "--key", pub, "--platform", "linux/amd64", "--scope", "both")
    assert rc == 0 and [t["verified"] for t in doc["targets"]] == [True, True]
    r = stockade("verify", ref, "--key", pub, "--no-cache", "--platform", "linux/amd64", "--scope", "both")
    assert f"index {index_digest}: verified" in r.stdout
    assert f"platform linux/amd64 {amd64}: verified" in r.stdout
    rc, doc = verify(ref, "--key", pub, "--platform", "linux/arm64")
    assert rc == 1


def test_check_reference(image: tuple[str, str], key_files: tuple[Path, Path], registry: Any,
                         busybox_layout: Path, client: Any) -> None:
    from tests.support.images import skopeo_push

    ref_text, digest = image
    sign(ref_text, key_files[0])
    mirror = f"{registry.host}/t/mirror-check-reference:1"
    assert skopeo_push(busybox_layout, "busybox", mirror) == digest
    sig_tag = oci.tag_for(digest, ".sig")
    found = client.get_manifest(oci.at_tag(Reference.parse(ref_text), sig_tag))
    for d in (found.parsed.config, *found.parsed.layers):  # copy blobs, then the .sig manifest
        client.push_blob(Reference.parse(mirror), d, lambda d=d: __import__("io").BytesIO(
            client.fetch_blob(Reference.parse(ref_text), d)))
    client.put_manifest(oci.at_tag(Reference.parse(mirror), sig_tag), found.raw, found.media_type)
    assert verify(mirror, "--key", key_files[1])[0] == 0  # cosign's default: the reference is not checked
    rc, doc = verify(mirror, "--key", key_files[1], "--check-reference")
    assert rc == 1
    assert f"names '{Reference.parse(ref_text).name}', not '{Reference.parse(mirror).name}'" in invalid_reasons(doc)[0]


# --- keyless in the registry -------------------------------------------------------------------------

def test_keyless_legacy_and_bundle_signatures(image: tuple[str, str], client: Any, tmp_path: Path) -> None:
    ref_text, digest = image
    ref = Reference.parse(ref_text)
    instance = SigstoreInstance()
    root = instance.write_trusted_root(tmp_path / "trusted_root.json")
    instance.sign_image_legacy(client, ref, digest, WHO, ISSUER)
    statement = dsse.statement(ref.name, digest.partition(":")[2], dsse.COSIGN_SIGN_PREDICATE)
    target = client.get_manifest(ref).descriptor
    referrers.push_bundle(client, ref, target, instance.dsse_bundle(dsse.INTOTO_PAYLOAD_TYPE, statement, WHO, ISSUER),
                          dsse.COSIGN_SIGN_PREDICATE)
    rc, doc = verify(ref_text, "--certificate-identity", WHO, "--certificate-oidc-issuer", ISSUER,
                     "--trusted-root", root, "--offline", "--require-tlog")
    assert rc == 0, doc
    kinds = sorted((s["kind"], s["identity"], s["issuer"]) for s in doc["targets"][0]["signatures"])
    assert kinds == [("bundle-keyless", WHO, ISSUER), ("cosign-keyless", WHO, ISSUER)]
    assert all(isinstance(s["log_index"], int) and s["integrated_time"] for s in doc["targets"][0]["signatures"])
    rc, doc = verify(ref_text, "--certificate-identity", "someone@else.example", "--certificate-oidc-issuer",
                     ISSUER, "--trusted-root", root)
    assert rc == 1 and len(invalid_reasons(doc)) == 2
    rc, doc = verify(ref_text, "--certificate-identity", WHO, "--certificate-oidc-issuer", ISSUER)
    assert rc == 1  # the public-good root does not know this CA


# --- transparency log for keyed signatures ----------------------------------------------------------

def test_require_tlog_for_keyed_signatures(image: tuple[str, str], key_files: tuple[Path, Path], client: Any,
                                           tmp_path: Path) -> None:
    ref_text, digest = image
    ref = Reference.parse(ref_text)
    key, pub = key_files
    signer = load_key(key)
    sign(ref_text, key)
    rc, doc = verify(ref_text, "--key", pub, "--require-tlog")
    assert rc == 1 and "no transparency-log entry (required by --require-tlog)" in invalid_reasons(doc)[0]
    instance = SigstoreInstance()
    root = instance.write_trusted_root(tmp_path / "root.json")
    # a keyed legacy signature with a SET, as `cosign sign --key` with tlog upload writes it
    payload = simplesigning.build(ref.name, digest, {"logged": "yes"})
    sig = signer.sign(payload)
    e = instance.log_hashedrekord(signer.public.pem, sig, hashlib.sha256(payload).digest())
    annotation = json.dumps({"SignedEntryTimestamp": base64.b64encode(e["set"]).decode(),
                             "Payload": {"body": base64.b64encode(e["body"]).decode(), "integratedTime": e["time"],
                                         "logIndex": e["index"], "logID": instance.log_id.hex()}})
    legacy.append(client, ref, digest, ".sig", payload, simplesigning.MEDIA_TYPE,
                  {legacy.SIGNATURE: b64(sig), legacy.BUNDLE: annotation})
    # a keyed bundle with a log entry (inclusion proof, checkpoint, SET)
    statement = dsse.statement(ref.name, digest.partition(":")[2], dsse.COSIGN_SIGN_PREDICATE)
    env = dsse.Envelope(dsse.INTOTO_PAYLOAD_TYPE, statement, (signer.sign(dsse.pae(dsse.INTOTO_PAYLOAD_TYPE,
                                                                                   statement)),))
    entry = instance.bundle_entry("dsse", instance.log_dsse(signer.public.pem, env), instance.log_id)
    doc_b = {"mediaType": bundles.MEDIA_TYPE_V03,
             "verificationMaterial": {"publicKey": {"hint": signer.public.hint}, "tlogEntries": [entry]},
             "dsseEnvelope": env.to_json_obj()}
    referrers.push_bundle(client, ref, client.get_manifest(ref).descriptor, oci.dumps(doc_b),
                          dsse.COSIGN_SIGN_PREDICATE)
    rc, doc = verify(ref_text, "--key", pub, "--require-tlog", "--trusted-root", root)
    assert rc == 0, doc
    logged = sorted((s["kind"], s["log_index"]) for s in doc["targets"][0]["signatures"])
    assert [k for k, _ in logged] == ["bundle-keyed", "cosign-keyed"] and all(i is not None for _, i in logged)
    assert len(doc["targets"][0]["invalid"]) == 1  # the first, unlogged signature


# --- attestations -----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["legacy", "bundle"])
def test_attest_and_verify_attestation(image: tuple[str, str], key_files: tuple[Path, Path], tmp_path: Path,
                                       fmt: str) -> None:
    ref, digest = image
    key, pub = key_files
    predicate = tmp_path / "provenance.json"
    predicate.write_text(json.dumps({"builder": {"id": "https://ci.example/builder"}}))
    r = stockade("attest", "--key", key, "--type", "https://slsa.dev/provenance/v1", "--predicate", predicate,
                 "--format", fmt, ref, env=PW)
    assert r.returncode == 0, r.stderr
    r = stockade("verify-attestation", ref, "--type", "https://slsa.dev/provenance/v1", "--key", pub,
                 "--no-cache", "-o", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    (att,) = json.loads(r.stdout)["targets"][0]["signatures"]
    assert att["statement"]["predicate"] == {"builder": {"id": "https://ci.example/builder"}}
    assert att["statement"]["subject"][0]["digest"] == {"sha256": digest.partition(":")[2]}
    r = stockade("verify-attestation", ref, "--type", "https://slsa.dev/provenance/v1", "--key", pub, "--no-cache")
    assert r.returncode == 0 and '"id": "https://ci.example/builder"' in r.stdout
    r = stockade("verify-attestation", ref, "--type", "https://example.com/other", "--key", pub, "--no-cache")
    assert r.returncode == 1
    # an attestation is not a signature
    assert verify(ref, "--key", pub)[0] == 1


@pytest.mark.parametrize("content,message", [
    (b"{" * 8 + b" " * (16 * 1024 * 1024), "is larger than 16777216 bytes"),
    (b"{not json", "is not valid JSON"),
])
def test_attest_refuses_an_oversized_or_malformed_predicate(image: tuple[str, str], key_files: tuple[Path, Path],
                                                            tmp_path: Path, content: bytes, message: str) -> None:
    ref, _ = image
    predicate = tmp_path / "predicate.json"
    predicate.write_bytes(content)
    r = stockade("attest", "--key", key_files[0], "--type", "https://slsa.dev/provenance/v1", "--predicate",
                 predicate, ref, env=PW)
    assert r.returncode == 2
    assert r.stderr.startswith(f"stockade: error: predicate {predicate} {message}")
    assert len(r.stderr.strip().splitlines()) == 1


EMPTY_CONFIG = b'{"architecture":"","created":"0001-01-01T00:00:00Z","os":"","rootfs":{"type":"layers","diff_ids":null},"config":{}}'


def test_cosign_public_attestation_on_the_image_it_was_made_for(vectors: Path, registry: Any, client: Any,
                                                                image: tuple[str, str]) -> None:
    """cosign's pkg/cosign/verify_oci_test.go, against Stockade: its attestation bundle verifies on
    go-containerregistry's empty image (rebuilt byte for byte here) and nowhere else."""
    ref = Reference.parse(f"{registry.host}/t/cosign-empty:latest")
    config = oci.push_blob(client, ref, EMPTY_CONFIG, mt.DOCKER_CONFIG)
    manifest = ('{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
                f'"config":{{"mediaType":"{mt.DOCKER_CONFIG}","size":{config.size},"digest":"{config.digest}"}},'
                '"layers":[]}').encode()
    digest = client.put_manifest(ref, manifest, mt.DOCKER_MANIFEST)
    assert digest == "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"
    raw = (vectors / "cosign" / "oci-attestation.sigstore.json").read_bytes()
    predicate = "https://cosign.sigstore.dev/attestation/v1"
    referrers.push_bundle(client, ref, client.get_manifest(ref).descriptor, raw, predicate)
    busybox = Reference.parse(image[0])
    referrers.push_bundle(client, busybox, client.get_manifest(busybox).descriptor, raw, predicate)
    common = ["--type", predicate, "--certificate-identity", "cody@soyland.com", "--certificate-oidc-issuer",
              "https://github.com/login/oauth", "--trusted-root", vectors / "cosign" / "trusted_root_pgi.json",
              "--offline", "--no-cache", "-o", "json"]
    r = stockade("verify-attestation", str(ref), *common)
    assert r.returncode == 0, r.stdout
    (att,) = json.loads(r.stdout)["targets"][0]["signatures"]
    assert att["statement"]["predicate"]["Data"] == '{"foo": "bar"}\n' and att["log_index"] == 175508996
    r = stockade("verify-attestation", image[0], *common)
    assert r.returncode == 1 and "subject does not include" in r.stdout
