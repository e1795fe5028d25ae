"""The TUF client over loopback: each way a tag can fail TUF trust fails with its own error.

Repositories are made by our repository tools and served by python's http.server on 127.0.0.1; the
client is python-tuf's ngclient driven through ``trust.tuf.client``. The clock is pinned through the
``now`` parameter, never by sleeping.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import pytest
from tuf.api.metadata import MetaFile

from engine.reference import Reference
from trust.tuf import client, repository
from trust.tuf.errors import (
    TufDigestMismatchError,
    TufExpiredError,
    TufInvalidMetadataError,
    TufRollbackError,
    TufRootFileError,
    TufUnknownTagError,
    TufUnreachableError,
    TufUntrustedError,
)
from trust.tuf.keys import KeyStore
from trust.tuf.model import RepositoryModel
from trust.tuf.store import RepositoryFiles

from .conftest import Served, TufRepo, password

DIGEST = "sha256:" + "12" * 32
OTHER = "sha256:" + "34" * 32
NAME = "127.0.0.1:5000/ns/app:1.0"


REF = Reference.parse(NAME)


def verify(repo: TufRepo, digest: str = DIGEST, length: int = 528, *, root: Path | None = None,
           cache: Path | None = None, now: datetime | None = None) -> client.TufResult:
    return client.verify_tag(REF, digest, length, repo.url, root or repo.root, cache or repo.cache,
                             now=now)


@pytest.fixture
def signed(tuf_repo: TufRepo) -> TufRepo:
    repository.sign(tuf_repo.path, NAME, DIGEST, 528, password,
                    custom={"mediaType": "application/vnd.oci.image.manifest.v1+json"})
    return tuf_repo


def test_verified_tag_reports_its_evidence(signed: TufRepo) -> None:
    result = verify(signed)
    assert result.target == NAME and result.digest == DIGEST and result.length == 528
    assert result.versions == {"root": 1, "timestamp": 2, "snapshot": 2, "targets": 1,
                               "targets/releases": 2}
    timestamp = json.loads(signed.metadata("timestamp.json").read_bytes())
    assert result.expires.isoformat().replace("+00:00", "Z") == timestamp["signed"]["expires"]
    assert result.custom == {"mediaType": "application/vnd.oci.image.manifest.v1+json"}
    assert result.root_sha256 == repository.root_sha256(signed.root)
    doc = result.as_dict()
    assert doc["kind"] == "tuf" and doc["versions"]["targets/releases"] == 2
    json.dumps(doc)  # plain JSON for -o json and the policy input


def test_the_client_asks_for_the_quoted_delegated_role_name(signed: TufRepo) -> None:
    verify(signed)
    assert "/2.targets%2Freleases.json" in signed.served.requests


def test_warm_cache_fetches_only_the_timestamp(signed: TufRepo) -> None:
    verify(signed)
    signed.served.requests.clear()
    verify(signed)
    # The next root version is probed (404: none) and the timestamp fetched; snapshot and targets
    # come from the verified cache because the timestamp still points at them.
    assert signed.served.requests == ["/2.root.json", "/timestamp.json"]


def test_tag_moved_without_resigning_is_refused(signed: TufRepo) -> None:
    with pytest.raises(TufDigestMismatchError, match="moved without being signed again") as err:
        verify(signed, OTHER)
    assert err.value.reason == "digest-mismatch"
    assert DIGEST in str(err.value) and OTHER in str(err.value)
    with pytest.raises(TufDigestMismatchError):
        verify(signed, DIGEST, 529)  # same digest string, other length: still refused


def test_unknown_and_revoked_tags_are_refused(signed: TufRepo) -> None:
    other = Reference.parse("127.0.0.1:5000/ns/app:2.0")
    with pytest.raises(TufUnknownTagError, match="127.0.0.1:5000/ns/app:2.0 is not signed") as err:
        client.verify_tag(other, DIGEST, 528, signed.url, signed.root, signed.cache)
    assert err.value.reason == "unknown-tag"
    verify(signed)
    repository.revoke(signed.path, NAME, password)
    with pytest.raises(TufUnknownTagError):
        verify(signed)


def test_a_reference_without_a_tag_is_refused(signed: TufRepo) -> None:
    with pytest.raises(TufUnknownTagError, match="names no tag"):
        client.verify_tag(Reference.parse(f"127.0.0.1:5000/ns/app@{DIGEST}"), DIGEST, 528, signed.url,
                          signed.root, signed.cache)


def test_expired_timestamp_is_refused_and_resigning_cures_it(signed: TufRepo) -> None:
    now = datetime.now(timezone.utc)
    verify(signed, now=now + timedelta(days=6))
    with pytest.raises(TufExpiredError, match="timestamp.json is expired") as err:
        verify(signed, now=now + timedelta(days=8))
    assert err.value.reason == "expired"
    # The operator's cron job re-signs the timestamp: clients at that time accept it again.
    repository.resign(signed.path, ["timestamp"], password, now=now + timedelta(days=7))
    assert verify(signed, now=now + timedelta(days=8)).versions["timestamp"] == 3


def test_expired_snapshot_is_refused(signed: TufRepo) -> None:
    now = datetime.now(timezone.utc)
    repository.resign(signed.path, ["timestamp"], password, now=now,
                      expires=now + timedelta(days=60))
    with pytest.raises(TufExpiredError, match="snapshot.json is expired"):
        verify(signed, now=now + timedelta(days=31))


def test_timestamp_rollback_is_refused(signed: TufRepo) -> None:
    old = signed.metadata("timestamp.json").read_bytes()
    repository.resign(signed.path, ["timestamp"], password)
    assert verify(signed).versions["timestamp"] == 3
    signed.metadata("timestamp.json").write_bytes(old)  # a mirror replays version 2
    with pytest.raises(TufRollbackError, match="version 2 must be >= 3") as err:
        verify(signed)
    assert err.value.reason == "rollback"


def test_snapshot_rollback_is_refused(signed: TufRepo) -> None:
    """A new, validly signed timestamp that points back at an older snapshot (a compromised
    timestamp key replaying old targets) is refused once the client has seen the newer one."""
    repository.sign(signed.path, "127.0.0.1:5000/ns/app:1.1", OTHER, 99, password)
    assert verify(signed).versions["snapshot"] == 3
    files = RepositoryFiles(signed.path)
    keys = KeyStore(files.keys_dir, password)
    model = RepositoryModel(keys.signer, repository.utcnow(), files.load())
    with model.edit_timestamp() as timestamp:
        timestamp.snapshot_meta = MetaFile(2)
    files.publish(model.pending)
    with pytest.raises(TufRollbackError, match="snapshot"):
        verify(signed)


def test_a_wrong_root_is_refused(signed: TufRepo, tmp_path: Path) -> None:
    repository.init(tmp_path / "other", password)
    wrong = tmp_path / "other" / "metadata" / "1.root.json"
    with pytest.raises(TufUntrustedError, match="not signed by the keys of the trusted root") as err:
        verify(signed, root=wrong)
    assert err.value.reason == "untrusted"
    assert str(wrong) in str(err.value)


def test_a_wrong_root_does_not_poison_the_right_roots_cache(signed: TufRepo, tmp_path: Path) -> None:
    verify(signed)
    repository.init(tmp_path / "other", password)
    with pytest.raises(TufUntrustedError):
        verify(signed, root=tmp_path / "other" / "metadata" / "1.root.json")
    assert verify(signed).digest == DIGEST
    assert len(list(signed.cache.iterdir())) == 2  # one cache per (URL, pinned root)


def test_tampered_timestamp_is_refused(signed: TufRepo) -> None:
    path = signed.metadata("timestamp.json")
    doc = json.loads(path.read_bytes())
    doc["signed"]["expires"] = "2099-01-01T00:00:00Z"
    path.write_text(json.dumps(doc))
    with pytest.raises(TufUntrustedError):
        verify(signed)


def test_tampered_delegated_targets_fail_the_snapshot_hash(signed: TufRepo) -> None:
    path = signed.metadata("2.targets/releases.json")
    path.write_bytes(path.read_bytes().replace(DIGEST.split(":")[1].encode(),
                                               OTHER.split(":")[1].encode()))
    with pytest.raises(TufInvalidMetadataError, match="hash"):
        verify(signed)


@pytest.mark.parametrize("role", ["timestamp", "snapshot", "targets", "targets/releases", "root"])
def test_key_rotation_keeps_old_clients_updating(signed: TufRepo, tmp_path: Path, role: str) -> None:
    warm = tmp_path / "warm-cache"
    verify(signed, cache=warm)
    repository.rotate(signed.path, role, password)
    repository.sign(signed.path, NAME, OTHER, 77, password)  # signed with the new keys
    for cache in (warm, tmp_path / "cold-cache"):
        result = verify(signed, OTHER, 77, cache=cache)  # still pinned to root v1
        assert result.versions["root"] == (1 if role == "targets/releases" else 2)


def test_every_role_rotated_in_turn(signed: TufRepo) -> None:
    for role in ("timestamp", "snapshot", "targets", "targets/releases", "root"):
        repository.rotate(signed.path, role, password)
        assert verify(signed).digest == DIGEST
    assert verify(signed).versions["root"] == 5


def test_unreachable_repository(signed: TufRepo, serve: Callable[[Path], Served],
                                tmp_path: Path) -> None:
    empty = serve(tmp_path)
    with pytest.raises(TufUnreachableError, match="HTTP 404") as err:
        client.verify_tag(REF, DIGEST, 528, empty.url, signed.root, signed.cache)
    assert err.value.reason == "unreachable"
    with pytest.raises(TufUnreachableError, match="must start with http"):
        client.verify_tag(REF, DIGEST, 528, "file:///etc/", signed.root, signed.cache)


def test_closed_port_is_unreachable(signed: TufRepo) -> None:
    from tests.support.registry import free_port

    with pytest.raises(TufUnreachableError, match="Connection refused"):
        client.verify_tag(REF, DIGEST, 528, f"http://127.0.0.1:{free_port()}/", signed.root,
                          signed.cache)


@pytest.mark.parametrize("content,message", [
    (None, "cannot read --tuf-root"),
    (b"{not json", "not valid TUF root metadata"),
    (b'{"signed": {"_type": "targets"}, "signatures": []}', "not valid TUF root metadata"),
])
def test_bad_root_files(signed: TufRepo, tmp_path: Path, content: bytes | None, message: str) -> None:
    root = tmp_path / "root.json"
    if content is not None:
        root.write_bytes(content)
    with pytest.raises(TufRootFileError, match=message):
        verify(signed, root=root)


def test_a_root_that_is_not_self_signed_is_refused(signed: TufRepo, tmp_path: Path) -> None:
    doc = json.loads(signed.root.read_bytes())
    doc["signed"]["version"] = 1
    doc["signed"]["expires"] = "2099-01-01T00:00:00Z"
    root = tmp_path / "root.json"
    root.write_text(json.dumps(doc))
    with pytest.raises(TufRootFileError):
        verify(signed, root=root)


def test_describe_remote_lists_what_ngclient_verified(signed: TufRepo) -> None:
    data = client.describe_remote(signed.url, signed.root, signed.cache)
    assert [r["role"] for r in data["roles"]] == ["root", "timestamp", "snapshot", "targets",
                                                  "targets/releases"]
    assert data["targets"] == [{"name": NAME, "digest": DIGEST, "length": 528,
                                "role": "targets/releases"}]


def test_tag_authority_for_verify_image(signed: TufRepo, tmp_path: Path) -> None:
    from trust.requirements import TagAuthority, TagEvidence

    authority = client.TufTagAuthority(signed.url, signed.root, signed.cache)
    assert isinstance(authority, TagAuthority)
    evidence = authority.resolve(REF, offline=False)
    assert isinstance(evidence, TagEvidence)
    assert evidence.digest == DIGEST
    assert evidence.expires == verify(signed).expires
    assert evidence.details["target"] == NAME and evidence.details["kind"] == "tuf"
    with pytest.raises(TufUnreachableError, match="--offline"):
        authority.resolve(REF, offline=True)
    repository.init(tmp_path / "other", password)
    other = client.TufTagAuthority(signed.url, tmp_path / "other/metadata/1.root.json", signed.cache)
    assert authority.cache_key() != other.cache_key()
    assert authority.cache_key() == client.TufTagAuthority(signed.url, signed.root,
                                                           tmp_path / "c").cache_key()
