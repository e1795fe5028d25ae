"""sigstore-js (npm ``@sigstore/verify``, run by the machine's Node.js) accepts every bundle Stockade
writes and rejects tampered ones: an independent implementation checks our format and crypto.

The npm project is tests/interop/sigstore-js (pinned by package-lock.json, installed by ``make
setup`` with ``npm ci``); ``verify.js`` there runs the verifier fully offline from a trusted root.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess  # nosec B404 # runs node with an argument list
from pathlib import Path

import pytest

from tests.support.cli import stockade
from tests.support.images import skopeo_push
from tests.support.registry import Registry
from tests.trust.sigstore_instance import SigstoreInstance
from trust import dsse

INTEROP = Path(__file__).resolve().parents[1] / "interop" / "sigstore-js"
PW = {"STOCKADE_PASSWORD": "pw"}
WHO, ISSUER = "ci@example.com", "https://issuer.example"


@pytest.fixture(scope="module")
def node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (scripts/install-host-deps.sh installs it)")
    if not (INTEROP / "node_modules" / "@sigstore" / "verify").is_dir():
        pytest.fail(f"sigstore-js is not installed: run `make setup` (npm ci in {INTEROP})")
    return node


@pytest.fixture(scope="module")
def public_root(vectors: Path) -> Path:
    # A keyed bundle needs no CA or log; any well-formed root will do for toTrustMaterial.
    return vectors / "sigstore-python" / "trusted_root" / "production.trusted_root.json"


def sigstore_js(node: str, bundle: Path, root: Path, **kw: str | Path) -> dict:
    argv = [node, str(INTEROP / "verify.js"), "--bundle", str(bundle), "--root", str(root)]
    for name, value in kw.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=INTEROP)  # nosec B603
    doc = json.loads(proc.stdout)
    assert (proc.returncode == 0) == doc["ok"], proc.stderr
    return doc


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    out = {}
    for kind in ("ecdsa-p256", "ed25519"):
        r = stockade("key", "generate", "--type", kind, "--output-key-prefix", str(tmp_path / kind), env=PW)
        assert r.returncode == 0, r.stderr
        out[kind] = (tmp_path / f"{kind}.key", tmp_path / f"{kind}.pub")
    return out


@pytest.mark.parametrize("kind", ["ecdsa-p256", "ed25519"])
def test_sign_blob_bundles_verify_in_sigstore_js(node: str, public_root: Path, tmp_path: Path,
                                                 keys: dict[str, tuple[Path, Path]], kind: str) -> None:
    key, pub = keys[kind]
    artifact = tmp_path / "artifact.bin"
    artifact.write_bytes(bytes(range(256)) * 64)
    bundle = tmp_path / "artifact.bin.sigstore.json"
    assert stockade("sign-blob", "--key", key, "--bundle", bundle, artifact, env=PW).returncode == 0
    # Ed25519 signs a DSSE statement about the file (see trust.sign.sign_blob); the subject binds it.
    subject = {"subject_digest": hashlib.sha256(artifact.read_bytes()).hexdigest()} if kind == "ed25519" else {}
    ok = sigstore_js(node, bundle, public_root, artifact=artifact, key=pub, **subject)
    assert ok["ok"] and ok["tlogEntries"] == 0, ok

    # tampered artifact
    changed = tmp_path / "changed.bin"
    changed.write_bytes(artifact.read_bytes()[:-1] + b"\x00")
    if kind == "ed25519":
        subject = {"subject_digest": hashlib.sha256(changed.read_bytes()).hexdigest()}
    assert not sigstore_js(node, bundle, public_root, artifact=changed, key=pub, **subject)["ok"]
    assert stockade("verify-blob", changed, "--bundle", bundle, "--key", pub).returncode == 1
    assert stockade("verify-blob", artifact, "--bundle", bundle, "--key", pub).returncode == 0
    # tampered signature
    doc = json.loads(bundle.read_text())
    holder = doc["messageSignature"] if "messageSignature" in doc else doc["dsseEnvelope"]["signatures"][0]
    field = "signature" if "messageSignature" in doc else "sig"
    sig = bytearray(base64.b64decode(holder[field]))
    sig[-1] ^= 1
    holder[field] = base64.b64encode(bytes(sig)).decode()
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(doc))
    assert not sigstore_js(node, tampered, public_root, artifact=artifact, key=pub)["ok"]
    # another key
    other = keys["ed25519" if kind == "ecdsa-p256" else "ecdsa-p256"][1]
    assert not sigstore_js(node, bundle, public_root, artifact=artifact, key=other)["ok"]


def test_image_bundle_from_sign_verifies_in_sigstore_js(node: str, public_root: Path, tmp_path: Path,
                                                        registry: Registry, busybox_layout: Path,
                                                        keys: dict[str, tuple[Path, Path]]) -> None:
    image = f"{registry.host}/interop/busybox:1"
    digest = skopeo_push(busybox_layout, "busybox", image)
    key, pub = keys["ecdsa-p256"]
    r = stockade("sign", "--key", key, "--format", "bundle", image, "-o", "json", env=PW)
    assert r.returncode == 0, r.stderr
    location = json.loads(r.stdout)["location"]
    manifest = json.loads(_get(registry, f"/v2/interop/busybox/manifests/{location.rpartition('@')[2]}"))
    assert manifest["artifactType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert manifest["subject"]["digest"] == digest
    bundle = tmp_path / "image.sigstore.json"
    bundle.write_bytes(_get(registry, f"/v2/interop/busybox/blobs/{manifest['layers'][0]['digest']}"))
    hexdigest = digest.partition(":")[2]
    ok = sigstore_js(node, bundle, public_root, key=pub, subject_digest=hexdigest)
    assert ok["ok"] and ok["predicateType"] == "https://sigstore.dev/cosign/sign/v1", ok
    assert not sigstore_js(node, bundle, public_root, key=pub, subject_digest="0" * 64)["ok"]
    doc = json.loads(bundle.read_text())
    payload = base64.b64decode(doc["dsseEnvelope"]["payload"]).replace(hexdigest.encode(), b"0" * 64)
    doc["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    bundle.write_text(json.dumps(doc))
    assert not sigstore_js(node, bundle, public_root, key=pub, subject_digest="0" * 64)["ok"]


def test_private_instance_bundles_verify_in_sigstore_js(node: str, tmp_path: Path) -> None:
    """The keyless test fixtures are sound by an independent verifier's standard too."""
    instance = SigstoreInstance()
    root = instance.write_trusted_root(tmp_path / "root.json")
    artifact = tmp_path / "a.txt"
    artifact.write_bytes(b"keyless")
    message = tmp_path / "m.json"
    message.write_bytes(instance.message_bundle(artifact.read_bytes(), WHO, ISSUER))
    assert sigstore_js(node, message, root, artifact=artifact, identity=WHO, issuer=ISSUER)["ok"]
    assert not sigstore_js(node, message, root, artifact=artifact, identity="x@example.com", issuer=ISSUER)["ok"]
    statement = dsse.statement("a.txt", "ab" * 32, "https://example.com/predicate")
    envelope = tmp_path / "d.json"
    envelope.write_bytes(instance.dsse_bundle(dsse.INTOTO_PAYLOAD_TYPE, statement, WHO, ISSUER))
    assert sigstore_js(node, envelope, root, identity=WHO, issuer=ISSUER, subject_digest="ab" * 32)["ok"]
    doc = json.loads(envelope.read_text())
    del doc["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    envelope.write_text(json.dumps(doc))
    assert not sigstore_js(node, envelope, root, identity=WHO, issuer=ISSUER)["ok"]


def _get(registry: Registry, path: str) -> bytes:
    import urllib.request

    req = urllib.request.Request(registry.url + path, headers={
        "Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"})
    with urllib.request.urlopen(req, timeout=10) as resp:  # nosec B310 # loopback test registry
        return resp.read()
