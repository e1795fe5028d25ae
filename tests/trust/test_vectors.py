"""The real public vectors (../shared/vectors) give their documented verdicts, fully offline.

Each case names the MANIFEST.md verdict it checks. Keyless bundles go through sigstore-python;
legacy cosign signatures through our checks (with sigstore-python's chain and SCT code).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from trust import bundle as bundles
from trust.identity import IdentityMatcher
from trust.keys import load_public_key
from trust.requirements import Requirements
from trust.trustroot import TrustedRoot
from trust.verdict import SignatureResult
from trust.verify import Checks, check_bundle, check_legacy, verify_blob

GITHUB = "https://github.com/login/oauth"
ACTIONS = "https://token.actions.githubusercontent.com"


def _req(root: Path, identity: str, issuer: str, **kw: object) -> Requirements:
    return Requirements(identities=(IdentityMatcher(identity=identity, issuer=issuer),),
                        trusted_root=TrustedRoot.load(root), **kw)  # type: ignore[arg-type]


def _roots(vectors: Path) -> dict[str, Path]:
    base = vectors / "sigstore-python" / "trusted_root"
    return {"staging": base / "staging.trusted_root.json", "production": base / "production.trusted_root.json"}


PASSING = [
    ("bundle.txt.sigstore", "bundle.txt", "staging", "a@tny.town", GITHUB),
    ("bundle_v3.txt.sigstore", "bundle_v3.txt", "staging", "william@yossarian.net", GITHUB),
    ("bundle_v3_alt.txt.sigstore", "bundle_v3_alt.txt", "staging", "william@yossarian.net", GITHUB),
    ("bundle_v3_github.whl.sigstore", "bundle_v3_github.whl", "production",
     "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2", ACTIONS),
    ("staging-rekor-v2.txt.sigstore.json", "staging-rekor-v2.txt", "staging", "jku@goto.fi", GITHUB),
    ("a.dsse.staging-rekor-v2.txt.sigstore.json", "a.txt", "staging",
     "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/"
     "extremely-dangerous-oidc-beacon.yml@refs/heads/main", ACTIONS),
]


@pytest.mark.parametrize(("name", "artifact", "root", "identity", "issuer"), PASSING)
def test_public_bundles_pass(vectors: Path, name: str, artifact: str, root: str, identity: str, issuer: str) -> None:
    d = vectors / "sigstore-python" / "bundles"
    result = verify_blob(d / artifact, d / name, _req(_roots(vectors)[root], identity, issuer, offline=True))
    assert result.ok, result.reasons
    assert result.signer == {"identity": identity, "issuer": issuer}
    assert result.log and result.log["index"] is not None


@pytest.mark.parametrize(("name", "artifact", "root", "identity", "issuer"), PASSING[:2])
def test_each_instance_accepts_only_its_own_bundles(vectors: Path, name: str, artifact: str, root: str,
                                                    identity: str, issuer: str) -> None:
    other = "production" if root == "staging" else "staging"
    d = vectors / "sigstore-python" / "bundles"
    result = verify_blob(d / artifact, d / name, _req(_roots(vectors)[other], identity, issuer))
    assert not result.ok
    assert "certificate chain" in " ".join(result.reasons)


def test_dsse_bundle_subject_is_not_the_neighbouring_file(vectors: Path) -> None:
    name, _, root, identity, issuer = PASSING[-1]
    d = vectors / "sigstore-python" / "bundles"
    result = verify_blob(d / "a.dsse.staging-rekor-v2.txt", d / name, _req(_roots(vectors)[root], identity, issuer))
    assert not result.ok
    assert "subject does not include" in result.reasons[0]


def test_wrong_identity_is_reported(vectors: Path) -> None:
    d = vectors / "sigstore-python" / "bundles"
    result = verify_blob(d / "bundle_v3.txt", d / "bundle_v3.txt.sigstore",
                         _req(_roots(vectors)["staging"], "mallory@example.com", GITHUB))
    assert not result.ok
    assert "'william@yossarian.net' is not 'mallory@example.com'" in result.reasons[0]


def test_tampered_artifact_fails(vectors: Path, tmp_path: Path) -> None:
    d = vectors / "sigstore-python" / "bundles"
    changed = tmp_path / "bundle_v3.txt"
    changed.write_bytes((d / "bundle_v3.txt").read_bytes() + b"!")
    result = verify_blob(changed, d / "bundle_v3.txt.sigstore",
                         _req(_roots(vectors)["staging"], "william@yossarian.net", GITHUB))
    assert not result.ok


@pytest.mark.parametrize(("name", "message"), [
    ("bundle_cve_2022_36056.txt.sigstore", "inconsistent with other materials"),
    ("bundle_invalid_version.txt.sigstore", "unsupported mediaType"),
    ("bundle_no_cert_v1.txt.sigstore", "empty certificate chain"),
    ("bundle_no_checkpoint.txt.sigstore", "checkpoint"),
    ("bundle_no_log_entry.txt.sigstore", "log entry"),
    ("bundle_v3_no_signed_time.txt.sigstore.json", "inclusion promise or signed timestamp"),
])
def test_public_bundles_fail_with_a_reason(vectors: Path, name: str, message: str) -> None:
    d = vectors / "sigstore-python" / "bundles"
    artifact = d / name.replace(".sigstore.json", "").replace(".sigstore", "")
    result = verify_blob(artifact, d / name, _req(_roots(vectors)["staging"], "william@yossarian.net", GITHUB))
    assert not result.ok
    assert message in " ".join(result.reasons)


def test_tsa_bundle_passes_and_tsa_defects_fail(vectors: Path, tmp_path: Path) -> None:
    tsa = vectors / "sigstore-python" / "tsa"
    root = json.loads(_roots(vectors)["staging"].read_text())
    root["timestampAuthorities"] = [json.loads((tsa / "ca.json").read_text())]
    root_path = tmp_path / "root.json"
    root_path.write_text(json.dumps(root))
    req = _req(root_path, "alexis.challande@trailofbits.com", "https://accounts.google.com")
    assert verify_blob(tsa / "bundle.txt", tsa / "bundle.txt.sigstore", req).ok
    for bad, message in (("bundle.duplicate.sigstore", "duplicate"),
                         ("bundle.many_timestamp.sigstore", "too many"),
                         ("bundle.txt.late_timestamp.sigstore", "certificate chain")):
        result = verify_blob(tsa / "bundle.txt", tsa / bad, req)
        assert not result.ok and message in " ".join(result.reasons), bad


def test_cosign_attestation_bundle_binds_its_subject(vectors: Path) -> None:
    raw = (vectors / "cosign" / "oci-attestation.sigstore.json").read_bytes()
    req = _req(vectors / "cosign" / "trusted_root_pgi.json", "cody@soyland.com", GITHUB)
    predicate = "https://cosign.sigstore.dev/attestation/v1"
    good = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"
    ok = check_bundle(Checks(req), bundles.parse(raw), SignatureResult("bundle-keyless", "file", "v"),
                      digest=good, predicate_type=predicate, keep_statement=True)
    assert ok.ok, ok.reasons
    assert ok.statement and ok.statement["predicate"]["Data"] == '{"foo": "bar"}\n'
    other = check_bundle(Checks(req), bundles.parse(raw), SignatureResult("bundle-keyless", "file", "v"),
                         digest="sha256:" + "0" * 64, predicate_type=predicate)
    assert not other.ok and "subject does not include" in other.reasons[0]
    regexp = Requirements(identities=(IdentityMatcher(identity_regexp=r".*@example\.com", issuer=GITHUB),),
                          trusted_root=TrustedRoot.load(vectors / "cosign" / "trusted_root_pgi.json"))
    mismatch = check_bundle(Checks(regexp), bundles.parse(raw), SignatureResult("bundle-keyless", "file", "v"),
                            digest=good, predicate_type=predicate)
    assert not mismatch.ok and "does not match" in mismatch.reasons[0]


def test_cosign_v3_image_signature_from_sigstore_rs(vectors: Path) -> None:
    raw = (vectors / "sigstore-rs" / "bundle_v03.json").read_bytes()
    req = _req(_roots(vectors)["production"],
               "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0",
               ACTIONS)
    digest = "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172"
    good = check_bundle(Checks(req), bundles.parse(raw), SignatureResult("bundle-keyless", "file", "v"),
                        digest=digest, predicate_type="https://sigstore.dev/cosign/sign/v1")
    assert good.ok, good.reasons
    assert good.log == {"index": 1261105807, "integrated_time": 1775719409}
    bad = check_bundle(Checks(req), bundles.parse(raw), SignatureResult("bundle-keyless", "file", "v"),
                       digest="sha256:" + "1" * 64, predicate_type="https://sigstore.dev/cosign/sign/v1")
    assert not bad.ok


def _legacy(vectors: Path, folder: str) -> tuple[bytes, dict[str, str]]:
    d = vectors / "sigstore-rs" / folder
    annotations = {"dev.cosignproject.cosign/signature": (d / "signature.b64").read_text().strip()}
    if (d / "cert.pem").exists():
        annotations["dev.sigstore.cosign/certificate"] = (d / "cert.pem").read_text()
        annotations["dev.sigstore.cosign/bundle"] = (d / "rekor-bundle.json").read_text()
    return (d / "payload.json").read_bytes(), annotations


def test_legacy_keyed_signature(vectors: Path) -> None:
    payload, annotations = _legacy(vectors, "legacy-keyed")
    digest = "sha256:f3cfc9d0dbf931d3db4685ec659b7ac68e2a578219da4aae65427886e649b06b"
    good = Requirements(keys=(load_public_key(vectors / "sigstore-rs/legacy-keyed/cosign.pub"),))
    result = check_legacy(Checks(good), payload, annotations, SignatureResult("cosign-keyed", "file", "v"),
                          digest=digest, reference=None, predicate_type=None)
    assert result.ok, result.reasons
    wrong = Requirements(keys=(load_public_key(vectors / "sigstore-rs/legacy-keyed/wrong.pub"),))
    result = check_legacy(Checks(wrong), payload, annotations, SignatureResult("cosign-keyed", "file", "v"),
                          digest=digest, reference=None, predicate_type=None)
    assert not result.ok and "does not verify with the given key" in result.reasons[0]


def test_legacy_keyless_signature_with_rekor_set(vectors: Path) -> None:
    payload, annotations = _legacy(vectors, "legacy-keyless")
    digest = "sha256:5f481572d088dc4023afb35fced9530ced3d9b03bf7299c6f492163cb9f0452e"
    root = TrustedRoot.load(_roots(vectors)["production"])
    matcher = (IdentityMatcher(identity="flavio@castelli.me", issuer_regexp=".*"),)
    # The 2021 certificate predates embedded SCTs: cosign needs --insecure-ignore-sct for it too.
    req = Requirements(identities=matcher, trusted_root=root, ignore_sct=True, require_tlog=True)
    result = check_legacy(Checks(req), payload, annotations, SignatureResult("cosign-keyless", "file", "v"),
                          digest=digest, reference=None, predicate_type=None)
    assert result.ok, result.reasons
    assert result.log == {"index": 783607, "integrated_time": 1634714717}
    strict = Requirements(identities=matcher, trusted_root=root)
    result = check_legacy(Checks(strict), payload, annotations, SignatureResult("cosign-keyless", "file", "v"),
                          digest=digest, reference=None, predicate_type=None)
    assert not result.ok and "signed certificate timestamp" in result.reasons[0]


def test_legacy_keyless_set_with_a_changed_body_fails(vectors: Path) -> None:
    payload, annotations = _legacy(vectors, "legacy-keyless")
    doc = json.loads(annotations["dev.sigstore.cosign/bundle"])
    doc["Payload"]["integratedTime"] += 1
    annotations["dev.sigstore.cosign/bundle"] = json.dumps(doc)
    req = Requirements(identities=(IdentityMatcher(identity="flavio@castelli.me", issuer_regexp=".*"),),
                       trusted_root=TrustedRoot.load(_roots(vectors)["production"]), ignore_sct=True)
    result = check_legacy(Checks(req), payload, annotations, SignatureResult("cosign-keyless", "file", "v"),
                          digest="sha256:5f481572d088dc4023afb35fced9530ced3d9b03bf7299c6f492163cb9f0452e",
                          reference=None, predicate_type=None)
    assert not result.ok and "signed entry timestamp does not verify" in result.reasons[0]


def test_bad_trusted_root_is_rejected_at_load(vectors: Path) -> None:
    from trust.errors import TrustError

    with pytest.raises(TrustError, match="unsupported mediaType 'bad-media-type'"):
        TrustedRoot.load(vectors / "sigstore-python" / "trusted_root" / "trustedroot.badtype.json")
    assert TrustedRoot.load(vectors / "sigstore-python" / "trusted_root" / "trustedroot.v1.json").sha256


def test_signature_b64_is_what_the_payload_was_signed_with(vectors: Path) -> None:
    d = vectors / "sigstore-rs" / "legacy-keyed"
    key = load_public_key(d / "cosign.pub")
    assert key.verify(base64.b64decode((d / "signature.b64").read_text()), (d / "payload.json").read_bytes())


def test_default_root_is_sigstore_pythons_public_good_root(vectors: Path) -> None:
    from tests.support.cli import stockade

    d = vectors / "sigstore-python" / "bundles"
    _, _, _, identity, issuer = PASSING[3]
    r = stockade("verify-blob", d / "bundle_v3_github.whl", "--bundle", d / "bundle_v3_github.whl.sigstore",
                 "--certificate-identity", identity, "--certificate-oidc-issuer", issuer, "--offline", "-o", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["signature"]["identity"] == identity
    r = stockade("verify-blob", d / "bundle_v3.txt", "--bundle", d / "bundle_v3.txt.sigstore",
                 "--certificate-identity", "william@yossarian.net", "--certificate-oidc-issuer", GITHUB)
    assert r.returncode == 1 and "certificate chain" in r.stdout  # a staging bundle, the production root
