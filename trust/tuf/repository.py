"""Repository tools: what ``stockade trust init/sign/revoke/resign/key rotate/inspect --repo`` do.

Each operation takes the writer lock, reads the current state (store), lets the model make the new
versions with keys from the key store, and publishes them in order. Nothing is written before the
model has made and signed every new version, so a wrong password or a missing key changes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Mapping

from securesystemslib.signer import Key
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import Targets

from engine.reference import ReferenceError, validate_digest
from trust.tuf.errors import TufRepositoryError
from trust.tuf.keys import KeyStore
from trust.tuf.model import (
    PUBLISH_ORDER,
    RELEASES,
    ROLES,
    ROOT,
    TARGETS,
    RepositoryModel,
    parse_published,
)
from trust.tuf.store import RepositoryFiles

Password = Callable[[], bytes]
_Editing = tuple[RepositoryModel, KeyStore, list["Change"]]


@dataclass(frozen=True)
class Change:
    """What an operation did: the roles it made new versions of, the role versions now current,
    and the files it published."""

    repo: Path
    changed: tuple[str, ...]
    versions: Mapping[str, int]
    written: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {"repository": str(self.repo), "changed": list(self.changed),
                "versions": dict(self.versions), "written": list(self.written)}


def utcnow() -> datetime:
    """Now, to the second (TUF expiry dates have no fractions)."""
    return datetime.now(timezone.utc).replace(microsecond=0)


@contextlib.contextmanager
def _editing(repo: str | Path, password: Password, now: datetime | None,
             expires: Mapping[str, datetime] | None = None) -> Iterator[_Editing]:
    """Lock, load, yield the model; on a clean exit publish what it made and report the change."""
    files = RepositoryFiles(repo)
    with files.locked():
        keys = KeyStore(files.keys_dir, password)
        model = RepositoryModel(keys.signer, now or utcnow(), files.load(), expires=dict(expires or {}))
        result: list[Change] = []
        yield model, keys, result
        result.append(_publish(files, model))


def _publish(files: RepositoryFiles, model: RepositoryModel) -> Change:
    written = files.publish(model.pending)
    made = {role for role, _, _ in model.pending}
    changed = tuple(role for role in PUBLISH_ORDER if role in made)
    versions = {role: model.metadata[role].signed.version for role in ROLES if role in model.metadata}
    return Change(files.root, changed, versions, tuple(written))


def init(repo: str | Path, password: Password, *, now: datetime | None = None) -> Change:
    """Create a repository: five keys (root, targets, releases, snapshot, timestamp) and version 1."""
    files = RepositoryFiles(repo)
    with files.creating():
        keys = KeyStore(files.keys_dir, password)
        model = RepositoryModel(keys.signer, now or utcnow())
        generated: list[Key] = []
        try:
            for _ in ROLES:
                generated.append(keys.generate())
            model.initialise(dict(zip(ROLES, generated)))
            return _publish(files, model)
        except BaseException:
            # Leave no orphaned key behind: a retry must find an empty directory, not a
            # half-made repository it refuses to touch.
            for key in generated:
                keys.remove(key.keyid)
            raise


def sign(repo: str | Path, name: str, digest: str, length: int, password: Password, *,
         now: datetime | None = None, custom: Mapping[str, object] | None = None) -> Change:
    """Record target ``name`` as (digest, length) in ``targets/releases``; bump snapshot, timestamp."""
    try:
        validate_digest(digest)
    except ReferenceError as exc:
        raise TufRepositoryError(str(exc)) from None
    if isinstance(length, bool) or not isinstance(length, int) or length <= 0:
        raise TufRepositoryError(f"invalid manifest length {length!r}: expected a positive size "
                                 "in bytes")
    with _editing(repo, password, now) as (model, _, result):
        model.set_target(name, digest, length, custom)
    return result[0]


def revoke(repo: str | Path, name: str, password: Password, *, now: datetime | None = None) -> Change:
    """Remove target ``name`` so clients refuse the tag from the next timestamp on."""
    with _editing(repo, password, now) as (model, _, result):
        if not model.remove_target(name):
            raise TufRepositoryError(f"{name} is not signed in {repo}; nothing to revoke")
    return result[0]


def resign(repo: str | Path, roles: list[str], password: Password, *, now: datetime | None = None,
           expires: datetime | None = None) -> Change:
    """New versions of ``roles`` with fresh expiry dates (``expires`` overrides the default lifetime)."""
    override = {role: expires for role in roles} if expires else None
    with _editing(repo, password, now, override) as (model, _, result):
        model.resign(*roles)
    return result[0]


def rotate(repo: str | Path, role: str, password: Password, *, now: datetime | None = None) -> Change:
    """Give ``role`` a new key; the old key's file is deleted once the new metadata is published."""
    with _editing(repo, password, now) as (model, keys, result):
        new_key = keys.generate()
        try:
            old = model.rotate(role, new_key)
        except BaseException:
            keys.remove(new_key.keyid)
            raise
    keys.remove(old.keyid)
    return result[0]


def root_sha256(path: str | Path) -> str:
    """The sha256 of a root file, as people compare it when they pin a root out of band."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def describe(repo: str | Path, *, now: datetime | None = None) -> dict[str, object]:
    """Everything ``trust inspect --repo`` shows: each role's version, expiry, keys and whether its
    signatures verify against its delegator, and every target."""
    files = RepositoryFiles(repo)
    md = parse_published(files.load())
    now = now or utcnow()
    missing = [role for role in ROLES if role not in md]
    if missing:
        raise TufRepositoryError(f"{files.root} has no {', '.join(missing)} metadata: not a "
                                 "repository made by `stockade trust init`")
    roles = []
    for role in ROLES:
        signed = md[role].signed
        delegator = md[TARGETS] if role == RELEASES else md[ROOT]
        try:
            delegator.verify_delegate(role, md[role])
            signatures = "valid"
        except UnsignedMetadataError as exc:
            signatures = f"INVALID: {exc}"
        role_info = delegator.signed.get_delegated_role(role)
        roles.append({"role": role, "version": signed.version,
                      "expires": signed.expires.isoformat(),
                      "expired": signed.is_expired(now),
                      "keyids": list(role_info.keyids), "threshold": role_info.threshold,
                      "signatures": signatures})
    return {"repository": str(files.root), "metadata": str(files.metadata_dir),
            "first_root_sha256": root_sha256(files.metadata_dir / "1.root.json"),
            "roles": roles, "targets": list_targets({r: md[r].signed for r in (TARGETS, RELEASES)})}


def list_targets(roles: Mapping[str, object]) -> list[dict[str, object]]:
    """Targets of each targets-type payload in ``roles`` as rows (name, digest, length, role)."""
    rows = []
    for role, signed in roles.items():
        if not isinstance(signed, Targets):
            continue
        for name, target in sorted(signed.targets.items()):
            algorithm, encoded = next(iter(sorted(target.hashes.items())), ("", ""))
            rows.append({"name": name, "digest": f"{algorithm}:{encoded}", "length": target.length,
                         "role": role})
    return rows

