"""Adversarial TUF probes: a target for another name, a delegate signing outside its hash prefixes,
a rotated root missing the old root's signature, a recorded length that differs. Each must fail with
its own reason; python-tuf's ngclient does the checking, these prove Stockade relies on it fully."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from engine.reference import Reference
from trust.tuf import client, repository
from trust.tuf import client as client_mod
from trust.tuf.errors import TufDigestMismatchError, TufError, TufUnknownTagError, TufUntrustedError
from trust.tuf.model import RELEASES

from .conftest import TufRepo, password
from .test_client import DIGEST, NAME, signed, verify  # noqa: F401 - signed is a fixture


@pytest.mark.parametrize("other", ["127.0.0.1:5000/ns/other:1.0", "127.0.0.2:5000/ns/app:1.0",
                                   "127.0.0.1:5001/ns/app:1.0", "127.0.0.1:5000/ns/app:1.00",
                                   "127.0.0.1:5000/app:1.0"])
def test_a_target_for_another_repository_registry_or_tag_vouches_for_nothing_here(signed: TufRepo,
                                                                                  other: str) -> None:
    with pytest.raises(TufUnknownTagError):
        client.verify_tag(Reference.parse(other), DIGEST, 528, signed.url, signed.root, signed.cache)


def test_a_recorded_length_that_differs_is_refused(signed: TufRepo) -> None:
    with pytest.raises(TufDigestMismatchError, match="529 bytes"):
        verify(signed, DIGEST, 529)


def test_a_delegate_signing_outside_its_hash_prefixes_is_not_believed(signed: TufRepo) -> None:
    """The targets role narrows targets/releases to the hash prefixes NAME is not under; the
    releases key still signs NAME, and the client must not find it there."""
    prefix = hashlib.sha256(NAME.encode()).hexdigest()[0]
    with repository._editing(signed.path, password, None) as (model, _, _):  # noqa: SLF001
        with model.edit_targets() as targets:
            assert targets.delegations is not None and targets.delegations.roles is not None
            role = targets.delegations.roles[RELEASES]
            role.path_hash_prefixes = [p for p in role.path_hash_prefixes or [] if p != prefix]
        model.publish()
    repository.sign(signed.path, NAME, DIGEST, 528, password)  # the delegate signs it anyway
    with pytest.raises(TufUnknownTagError):
        verify(signed, cache=signed.cache.with_name("fresh-cache"))


def test_a_rotated_root_without_the_old_roots_signature_is_refused(signed: TufRepo) -> None:
    """TUF 1.0 §5.3.4: root N+1 must meet root N's threshold too, or whoever holds only the new key
    could replace the pinned root."""
    old = json.loads(signed.root.read_text())
    old_keys = set(old["signed"]["roles"]["root"]["keyids"])
    repository.rotate(signed.path, "root", password)
    path = signed.metadata("2.root.json")
    doc = json.loads(path.read_text())
    assert {s["keyid"] for s in doc["signatures"]} & old_keys
    doc["signatures"] = [s for s in doc["signatures"] if s["keyid"] not in old_keys]
    path.write_text(json.dumps(doc))
    with pytest.raises(TufUntrustedError):
        verify(signed, cache=signed.cache.with_name("fresh-cache"))


def test_a_tuf_failure_is_not_hidden_by_another_success(
        tuf_repo: TufRepo, image: tuple[str, str], client: Any, tmp_path: Path) -> None:
    """Two policy entries name the same repository URL with different pinned roots; the image's tag
    is signed under one of them only. The image section carries one TUF fact, so the failure must be
    it: the policy's URL check cannot tell the two roots apart."""
    from stockade.verification import verify_facts
    from trust.requirements import Requirements

    ref, digest = image
    length = len(client.get_manifest(Reference.parse(ref)).raw)
    repository.sign(tuf_repo.path, client_mod.target_name(Reference.parse(ref)), digest, length, password)
    repository.init(tmp_path / "other", password)
    right = client_mod.TufTagAuthority(tuf_repo.url, tuf_repo.root, tuf_repo.cache)
    wrong = client_mod.TufTagAuthority(tuf_repo.url, tmp_path / "other/metadata/1.root.json", tuf_repo.cache)
    for order in ((wrong, right), (right, wrong)):
        facts = verify_facts(client, ref, [Requirements(tuf=a) for a in order])
        assert facts.tuf is not None and not facts.tuf["verified"] and facts.tuf["reason"] == "untrusted", facts.tuf
    facts = verify_facts(client, ref, [Requirements(tuf=right)])
    assert facts.tuf is not None and facts.tuf["verified"] and facts.tuf["digest"] == digest, facts.tuf


def test_a_tuf_cache_directory_another_user_planted_is_refused(signed: TufRepo, tmp_path: Path) -> None:
    """ngclient writes root, timestamp, snapshot and targets metadata into the cache directory: one
    planted as a symlink would have them (and the lock file) written wherever it points, as root."""
    victim = tmp_path / "victim"
    victim.mkdir()
    session = client_mod.cache_directory(signed.cache, signed.url.rstrip("/") + "/",
                                         repository.root_sha256(signed.root))
    session.parent.mkdir(parents=True)
    session.symlink_to(victim)
    with pytest.raises(TufError, match="cache directory"):
        verify(signed)
    assert not list(victim.iterdir())
    session.unlink()
    session.mkdir()
    os.chown(session, 65534, 65534)  # another user's directory: its metadata is theirs to rewrite
    with pytest.raises(TufError, match="cache directory"):
        verify(signed)
