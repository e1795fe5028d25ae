"""The repository model without a disk: which keys sign what, versions, snapshot/timestamp chains."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from securesystemslib.signer import CryptoSigner, Key, Signer
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import Metadata, TargetFile

from trust.tuf.model import (
    RELEASES,
    ROLES,
    ROOT,
    SNAPSHOT,
    TARGETS,
    TIMESTAMP,
    RepositoryModel,
)

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
DIGEST = "sha256:" + "ab" * 32


class Signers:
    """In-memory keys: the model asks for a signer per public key, as the key store answers."""

    def __init__(self) -> None:
        self.by_id: dict[str, CryptoSigner] = {}
        self.used: list[str] = []

    def new(self) -> Key:
        signer = CryptoSigner.generate_ecdsa()
        self.by_id[signer.public_key.keyid] = signer
        return signer.public_key

    def __call__(self, key: Key) -> Signer:
        self.used.append(key.keyid)
        return self.by_id[key.keyid]


@pytest.fixture
def signers() -> Signers:
    return Signers()


@pytest.fixture
def model(signers: Signers) -> RepositoryModel:
    m = RepositoryModel(signers, NOW)
    m.initialise({role: signers.new() for role in ROLES})
    return m


def reload(model: RepositoryModel, signers: Signers, now: datetime = NOW) -> RepositoryModel:
    """A fresh model from the published bytes, as the next command would load it."""
    return RepositoryModel(signers, now, dict(model.published))


def verify_chain(model: RepositoryModel) -> None:
    """Every role verifies against its delegator, and snapshot/timestamp point at what exists."""
    md = {role: Metadata.from_bytes(model.published[role]) for role in ROLES}
    md[ROOT].verify_delegate(ROOT, md[ROOT])
    for role in (TARGETS, SNAPSHOT, TIMESTAMP):
        md[ROOT].verify_delegate(role, md[role])
    md[TARGETS].verify_delegate(RELEASES, md[RELEASES])
    assert md[TIMESTAMP].signed.snapshot_meta.version == md[SNAPSHOT].signed.version
    for role in (TARGETS, RELEASES):
        assert md[SNAPSHOT].signed.meta[f"{role}.json"].version == md[role].signed.version


def test_initialise_makes_version_one_of_every_role_with_its_own_key(model: RepositoryModel) -> None:
    verify_chain(model)
    assert [(role, version) for role, version, _ in model.pending] == [
        (ROOT, 1), (TARGETS, 1), (RELEASES, 1), (SNAPSHOT, 1), (TIMESTAMP, 1)]
    root = model.metadata[ROOT].signed
    assert root.consistent_snapshot is True
    keyids = [root.roles[r].keyids[0] for r in (ROOT, TARGETS, SNAPSHOT, TIMESTAMP)]
    assert len(set(keyids)) == 4
    assert all(root.keys[k].scheme == "ecdsa-sha2-nistp256" for k in keyids)
    assert model.metadata[TIMESTAMP].signed.expires == NOW + timedelta(days=7)
    assert model.metadata[ROOT].signed.expires == NOW + timedelta(days=365)


def test_releases_is_delegated_every_target_name_terminating(model: RepositoryModel) -> None:
    delegations = model.metadata[TARGETS].signed.delegations
    role = delegations.roles[RELEASES]
    assert role.terminating
    for name in ("127.0.0.1:5000/ns/app:1.0", "docker.io/library/busybox:latest", "x:y"):
        assert role.is_delegated_path(name)
    assert delegations.keys[role.keyids[0]].keyid not in model.metadata[ROOT].signed.keys


def test_set_target_signs_with_releases_snapshot_timestamp_keys_only(model: RepositoryModel,
                                                                    signers: Signers) -> None:
    m = reload(model, signers)
    signers.used.clear()
    name = "127.0.0.1:5000/ns/app:1.0"
    m.set_target(name, DIGEST, 528, {"mediaType": "application/vnd.oci.image.manifest.v1+json"})
    verify_chain(m)
    assert [(r, v) for r, v, _ in m.pending] == [(RELEASES, 2), (SNAPSHOT, 2), (TIMESTAMP, 2)]
    root = m.metadata[ROOT].signed
    releases_key = m.metadata[TARGETS].signed.delegations.roles[RELEASES].keyids[0]
    assert set(signers.used) == {releases_key, root.roles[SNAPSHOT].keyids[0],
                                 root.roles[TIMESTAMP].keyids[0]}
    target = m.metadata[RELEASES].signed.targets[name]
    assert target.hashes == {"sha256": "ab" * 32} and target.length == 528
    assert target.unrecognized_fields["custom"]["mediaType"].startswith("application/vnd.oci")
    snapshot_meta = m.metadata[SNAPSHOT].signed.meta[f"{RELEASES}.json"]
    assert snapshot_meta.length == len(m.published[RELEASES])


def test_resigning_snapshot_makes_one_new_timestamp(model: RepositoryModel, signers: Signers) -> None:
    m = reload(model, signers, NOW + timedelta(days=3))
    m.resign(TIMESTAMP, SNAPSHOT)
    assert [(r, v) for r, v, _ in m.pending] == [(SNAPSHOT, 2), (TIMESTAMP, 2)]
    assert m.metadata[TIMESTAMP].signed.expires == NOW + timedelta(days=10)
    verify_chain(m)


def test_explicit_expiry_overrides_the_lifetime(model: RepositoryModel, signers: Signers) -> None:
    when = NOW + timedelta(hours=5)
    m = RepositoryModel(signers, NOW, dict(model.published), expires={TIMESTAMP: when})
    m.resign(TIMESTAMP)
    assert m.metadata[TIMESTAMP].signed.expires == when


def test_root_rotation_is_signed_by_old_and_new_root_keys(model: RepositoryModel,
                                                          signers: Signers) -> None:
    old_root = Metadata.from_bytes(model.published[ROOT])
    m = reload(model, signers)
    new_key = signers.new()
    old_key = m.rotate(ROOT, new_key)
    new_root = Metadata.from_bytes(m.published[ROOT])
    assert new_root.signed.version == 2
    assert new_root.signed.roles[ROOT].keyids == [new_key.keyid]
    old_root.verify_delegate(ROOT, new_root)  # what a client trusting only v1 checks
    new_root.verify_delegate(ROOT, new_root)  # and the new root's own threshold
    assert set(new_root.signatures) == {old_key.keyid, new_key.keyid}
    verify_chain(m)


@pytest.mark.parametrize("role", [TARGETS, SNAPSHOT, TIMESTAMP])
def test_top_level_rotation_changes_root_and_resigns_the_role(model: RepositoryModel,
                                                              signers: Signers, role: str) -> None:
    old_root = Metadata.from_bytes(model.published[ROOT])
    m = reload(model, signers)
    new_key = signers.new()
    old_key = m.rotate(role, new_key)
    new_root = Metadata.from_bytes(m.published[ROOT])
    old_root.verify_delegate(ROOT, new_root)
    assert new_root.signed.roles[role].keyids == [new_key.keyid]
    assert old_key.keyid not in new_root.signed.keys
    rotated = Metadata.from_bytes(m.published[role])
    assert list(rotated.signatures) == [new_key.keyid]
    verify_chain(m)


def test_releases_rotation_changes_targets_not_root(model: RepositoryModel, signers: Signers) -> None:
    m = reload(model, signers)
    new_key = signers.new()
    m.rotate(RELEASES, new_key)
    changed = [r for r, _, _ in m.pending]
    assert ROOT not in changed and changed[:2] == [TARGETS, RELEASES]
    assert m.metadata[TARGETS].signed.delegations.roles[RELEASES].keyids == [new_key.keyid]
    verify_chain(m)


def test_old_releases_key_can_no_longer_sign_a_target(model: RepositoryModel, signers: Signers) -> None:
    m = reload(model, signers)
    old_key = m.rotate(RELEASES, signers.new())
    forged = Metadata.from_bytes(m.published[RELEASES])
    evil = "127.0.0.1:5000/ns/app:evil"
    forged.signed.targets[evil] = TargetFile(10, {"sha256": "00" * 32}, evil)
    forged.signatures.clear()
    forged.sign(signers.by_id[old_key.keyid])
    with pytest.raises(UnsignedMetadataError):
        Metadata.from_bytes(m.published[TARGETS]).verify_delegate(RELEASES, forged)


def test_remove_target(model: RepositoryModel, signers: Signers) -> None:
    m = reload(model, signers)
    m.set_target("r/a:1", DIGEST, 10)
    assert m.remove_target("r/a:1") is True
    assert "r/a:1" not in m.metadata[RELEASES].signed.targets
    n = len(m.pending)
    assert m.remove_target("r/a:1") is False
    assert len(m.pending) == n
