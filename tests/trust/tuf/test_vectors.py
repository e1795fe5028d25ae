"""Real public TUF repositories through our client, served on loopback (../shared/vectors/).

* python-tuf's own test repository (TUF 1.0, RSA and Ed25519 keys, nested delegations);
* a snapshot of Sigstore's public-good TUF repository, whose ``trusted_root.json`` target then
  verifies a real cosign bundle in sigstore-python: TUF -> trusted root -> bundle, one chain;
* a repository made by tuf-on-ci 0.11 (KMS and Yubikey ECDSA keys, empty signatures, custom fields).

Each MANIFEST.md says what the folder must yield; the clock is pinned to a folder's ``faketime``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Callable

import pytest

from trust.tuf import client
from trust.tuf.errors import (
    TufExpiredError,
    TufInvalidMetadataError,
    TufUnknownTagError,
    TufUntrustedError,
)

from .conftest import VECTORS, Served

PYTHON_TUF = VECTORS / "python-tuf" / "repository"
SIGSTORE = VECTORS / "tuf-conformance" / "sigstore-root-signing"
TUF_ON_CI = VECTORS / "tuf-conformance" / "tuf-on-ci-0.11"
COSIGN = VECTORS / "cosign"
# cosign/MANIFEST.md: the bundle's certificate identity and the in-toto subject it signs.
COSIGN_IDENTITY = "cody@soyland.com"
COSIGN_ISSUER = "https://github.com/login/oauth"
COSIGN_SUBJECT = "732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"

pytestmark = pytest.mark.skipif(not VECTORS.is_dir(), reason="shared vectors not present")


def faketime(folder: Path) -> datetime:
    return datetime.fromisoformat((folder / "faketime").read_text().strip())


# --- python-tuf ----------------------------------------------------------------------------------

@pytest.fixture
def python_tuf(serve: Callable[[Path], Served]) -> Served:
    return serve(PYTHON_TUF)


def test_python_tuf_repository_refreshes_and_resolves_delegations(python_tuf: Served,
                                                                  tmp_path: Path) -> None:
    root = PYTHON_TUF / "metadata" / "1.root.json"
    url = python_tuf.metadata_url()
    file1 = client.lookup("file1.txt", url, root, tmp_path)
    assert file1["length"] == 31
    sha256 = file1["hashes"]["sha256"]
    assert sha256.startswith("65b8c67f") and sha256.endswith("40da")
    assert client.lookup("file3.txt", url, root, tmp_path)["length"] == 28  # through role1
    with pytest.raises(TufUnknownTagError):
        client.lookup("no-such-file.txt", url, root, tmp_path)
    data = client.describe_remote(url, root, tmp_path)
    assert [r["role"] for r in data["roles"]] == ["root", "timestamp", "snapshot", "targets",
                                                  "role1", "role2"]
    assert {t["name"] for t in data["targets"]} == {"file1.txt", "file2.txt", "file3.txt"}


def test_python_tuf_targets_download_with_hash_check(python_tuf: Served, tmp_path: Path) -> None:
    root = PYTHON_TUF / "metadata" / "1.root.json"
    for name in ("file1.txt", "file2.txt", "file3.txt"):
        body = client.fetch_target(name, python_tuf.metadata_url(), root, tmp_path,
                                   target_base_url=python_tuf.metadata_url("targets"))
        assert body == (PYTHON_TUF / "targets" / name).read_bytes()


def edited_python_tuf(tmp_path: Path, serve: Callable[[Path], Served], file: str, old: bytes,
                      new: bytes) -> tuple[Served, Path]:
    """A copy of the python-tuf repository with one edit in ``file``, served; and its root."""
    copy = tmp_path / "repo"
    shutil.copytree(PYTHON_TUF, copy)
    path = copy / file
    edited = path.read_bytes().replace(old, new)
    assert edited != path.read_bytes()
    path.write_bytes(edited)
    return serve(copy), copy / "metadata" / "1.root.json"


def test_python_tuf_edited_metadata_byte_fails_the_signature(serve: Callable[[Path], Served],
                                                             tmp_path: Path) -> None:
    served, root = edited_python_tuf(tmp_path, serve, "metadata/targets.json", b'"length": 31',
                                     b'"length": 32')
    # The snapshot in this repository lists targets.json by version only (no hashes), so the
    # edited byte is caught by the signature check.
    with pytest.raises(TufUntrustedError, match="targets"):
        client.lookup("file1.txt", served.metadata_url(), root, tmp_path / "cache")


def test_python_tuf_edited_target_fails_the_hash_check(serve: Callable[[Path], Served],
                                                       tmp_path: Path) -> None:
    served, root = edited_python_tuf(tmp_path, serve, "targets/file1.txt", b"example", b"exampel")
    with pytest.raises(TufInvalidMetadataError, match="hash"):
        client.fetch_target("file1.txt", served.metadata_url(), root, tmp_path / "cache",
                            target_base_url=served.metadata_url("targets"))


# --- Sigstore's TUF repository -> trusted_root.json -> a cosign bundle ---------------------------

@pytest.fixture
def sigstore_tuf(serve: Callable[[Path], Served]) -> Served:
    return serve(SIGSTORE)


def fetch_trusted_root(served: Served, cache: Path, now: datetime | None) -> bytes:
    return client.fetch_target("trusted_root.json", served.metadata_url(),
                               SIGSTORE / "initial_root.json", cache,
                               target_base_url=served.metadata_url("targets"), now=now)


def verify_cosign_bundle(trusted_root: bytes, tmp_path: Path, identity: str) -> tuple[str, bytes]:
    """sigstore-python verifying the cosign vector's DSSE bundle from ``trusted_root`` (offline)."""
    from sigstore.models import Bundle, TrustedRoot
    from sigstore.verify import Verifier
    from sigstore.verify.policy import Identity

    root_file = tmp_path / "trusted_root.json"
    root_file.write_bytes(trusted_root)
    verifier = Verifier(trusted_root=TrustedRoot.from_file(str(root_file)))
    bundle = Bundle.from_json((COSIGN / "oci-attestation.sigstore.json").read_bytes())
    return verifier.verify_dsse(bundle, Identity(identity=identity, issuer=COSIGN_ISSUER))


def test_sigstore_tuf_chain_verifies_the_cosign_bundle(sigstore_tuf: Served, tmp_path: Path) -> None:
    trusted_root = fetch_trusted_root(sigstore_tuf, tmp_path / "cache", faketime(SIGSTORE))
    assert len(trusted_root) == 4537
    assert hashlib.sha256(trusted_root).hexdigest().startswith("f44a1b88")
    assert trusted_root == (COSIGN / "trusted_root_pgi.json").read_bytes()
    payload_type, payload = verify_cosign_bundle(trusted_root, tmp_path, COSIGN_IDENTITY)
    assert payload_type == "application/vnd.in-toto+json"
    statement = json.loads(payload)
    assert [s["digest"]["sha256"] for s in statement["subject"]] == [COSIGN_SUBJECT]


def test_sigstore_tuf_chain_rejects_another_identity(sigstore_tuf: Served, tmp_path: Path) -> None:
    from sigstore.errors import VerificationError

    trusted_root = fetch_trusted_root(sigstore_tuf, tmp_path / "cache", faketime(SIGSTORE))
    with pytest.raises(VerificationError):
        verify_cosign_bundle(trusted_root, tmp_path, "someone@else.example")


def test_sigstore_tuf_snapshot_is_expired_today(sigstore_tuf: Served, tmp_path: Path) -> None:
    with pytest.raises(TufExpiredError, match="expired") as err:
        fetch_trusted_root(sigstore_tuf, tmp_path / "cache", None)
    assert err.value.reason == "expired"


def test_sigstore_tuf_walks_the_root_chain_from_the_initial_root(sigstore_tuf: Served,
                                                                 tmp_path: Path) -> None:
    info = client.lookup("trusted_root.json", sigstore_tuf.metadata_url(),
                         SIGSTORE / "initial_root.json", tmp_path, now=faketime(SIGSTORE))
    assert info["versions"]["root"] == 12 and info["versions"]["snapshot"] == 159
    assert info["hashes"]["sha256"].startswith("f44a1b88")


# --- tuf-on-ci --------------------------------------------------------------------------------------

def test_tuf_on_ci_repository_yields_its_artifact(serve: Callable[[Path], Served],
                                                  tmp_path: Path) -> None:
    served = serve(TUF_ON_CI)
    name = (TUF_ON_CI / "targetpath").read_text().strip()
    body = client.fetch_target(name, served.metadata_url(), TUF_ON_CI / "initial_root.json", tmp_path,
                               target_base_url=served.metadata_url("targets"), now=faketime(TUF_ON_CI))
    assert len(body) == 34
    assert hashlib.sha256(body).hexdigest().startswith("45f337ee")
    assert hashlib.sha256(body).hexdigest().endswith("fab3")
