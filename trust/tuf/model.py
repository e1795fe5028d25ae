"""The TUF repository as data: the rules that turn the current metadata into the next versions.

No file, key file or clock is touched here. The caller hands in the current metadata of every role,
a way to get a signer for a key id, and the time; the model edits roles through python-tuf's
``Repository`` abstraction (``edit_*``, ``do_snapshot``, ``do_timestamp``) and records every new
version it makes, serialized once, in ``pending`` (the store publishes them in ``PUBLISH_ORDER``). This
keeps every security rule (which keys sign which role, version bumps, snapshot and timestamp
bookkeeping, root rotation signed by old and new keys) testable without a disk, as python-tuf keeps
its metadata API apart from I/O.

The repository has the shape Docker Content Trust gave Notary, on TUF 1.0:

* ``root``, ``targets``, ``snapshot`` and ``timestamp`` with one ECDSA P-256 key each, threshold 1;
* ``targets`` delegates every target name to ``targets/releases`` (terminating), and tag signing
  happens there, so the targets key can stay offline like the root key;
* a target is named ``<registry>/<repository>:<tag>`` (the canonical reference without a digest,
  ``client.target_name``); its ``length`` and ``hashes.sha256`` are the manifest's size and digest.

Target names contain ``/``, so the delegation cannot use ``paths`` globs (a ``*`` never matches
across ``/`` in TUF); it uses the sixteen one-digit ``path_hash_prefixes``, which together match
every name and are understood by every TUF 1.0 client.

Consistent snapshots are on: every version of snapshot, targets and delegated targets is published
under its own versioned name, so a plain web server serving the directory while ``trust sign`` runs
never shows a client a mix of old and new files; only ``timestamp.json`` is replaced in place, last.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Iterator, Mapping

from securesystemslib.signer import Key, Signer
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization import DeserializationError
from tuf.api.serialization.json import JSONSerializer
from tuf.repository import Repository

from trust.tuf.errors import TufRepositoryError

ROOT, TARGETS, SNAPSHOT, TIMESTAMP = Root.type, Targets.type, Snapshot.type, Timestamp.type
RELEASES = "targets/releases"
TOP_LEVEL = (ROOT, TARGETS, SNAPSHOT, TIMESTAMP)
ROLES = (ROOT, TARGETS, RELEASES, SNAPSHOT, TIMESTAMP)
TARGETS_ROLES = (TARGETS, RELEASES)
# The order a new set of versions must become visible in: what a role points at before the role,
# root just before timestamp (so the window where a client sees a rotated root with an old
# timestamp is one rename), timestamp last (it is what makes everything else current).
PUBLISH_ORDER = (RELEASES, TARGETS, SNAPSHOT, ROOT, TIMESTAMP)
ALL_NAMES = [format(i, "x") for i in range(16)]

# How long a freshly signed version stays valid. Timestamp and snapshot are meant to be re-signed
# often by an online key (`stockade trust resign` from cron); targets and root rarely, offline.
DEFAULT_LIFETIMES: Mapping[str, timedelta] = {
    ROOT: timedelta(days=365),
    TARGETS: timedelta(days=365),
    RELEASES: timedelta(days=365),
    SNAPSHOT: timedelta(days=30),
    TIMESTAMP: timedelta(days=7),
}

SignerFor = Callable[[Key], Signer]


def serialize(md: Metadata) -> bytes:
    """The exact bytes published for ``md`` (pretty JSON, as python-tuf writes by default)."""
    return md.to_bytes(JSONSerializer(compact=False))


def digest_hashes(digest: str) -> dict[str, str]:
    """``sha256:<hex>`` as a TUF hashes dict; the caller has validated the digest's form."""
    algorithm, _, encoded = digest.partition(":")
    return {algorithm: encoded}


@dataclass
class RepositoryModel(Repository):
    """Every role's current metadata, and the new versions an operation has made so far.

    ``signer_for`` returns a signer for a public key (the key store decrypts it on first use), so an
    operation only asks for the keys it actually signs with: ``trust sign`` never needs the root or
    targets key.
    """

    signer_for: SignerFor
    now: datetime
    published: dict[str, bytes] = field(default_factory=dict)  # role -> current version's bytes
    lifetimes: Mapping[str, timedelta] = field(default_factory=lambda: dict(DEFAULT_LIFETIMES))
    expires: dict[str, datetime] = field(default_factory=dict)  # explicit expiry per role
    pending: list[tuple[str, int, bytes]] = field(default_factory=list)  # new versions made
    metadata: dict[str, Metadata] = field(init=False)
    _extra_root_keys: list[Key] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.metadata = parse_published(self.published)

    # --- python-tuf Repository interface ---------------------------------------------------------

    def open(self, role: str) -> Metadata:
        """A copy of the current metadata (an aborted edit must leave the current one untouched)."""
        current = self.metadata.get(role)
        if current is not None:
            return copy.deepcopy(current)
        return Metadata(_first_signed(role))

    def close(self, role: str, md: Metadata) -> None:
        """Make ``md`` the next version of ``role``: bump, set expiry, sign afresh, serialize."""
        current = self.metadata.get(role)
        md.signed.version = current.signed.version + 1 if current is not None else 1
        md.signed.expires = self.expires.get(role, self.now + self.lifetimes[role])
        md.signatures.clear()
        for key in self._signing_keys(role, md):
            md.sign(self.signer_for(key), append=True)
        data = serialize(md)
        self.metadata[role] = md
        self.published[role] = data
        self.pending.append((role, md.signed.version, data))

    @property
    def targets_infos(self) -> dict[str, MetaFile]:
        return {f"{role}.json": self._metafile(role) for role in TARGETS_ROLES
                if role in self.metadata}

    @property
    def snapshot_info(self) -> MetaFile:
        return self._metafile(SNAPSHOT)

    # --- operations --------------------------------------------------------------------------------

    def initialise(self, keys: Mapping[str, Key]) -> None:
        """Create version 1 of every role, one key each (``keys`` maps role name to public key)."""
        with self.edit_root() as root:
            for role in TOP_LEVEL:
                root.add_key(keys[role], role)
        with self.edit_targets() as targets:
            targets.delegations = Delegations(
                keys={keys[RELEASES].keyid: keys[RELEASES]},
                roles={RELEASES: DelegatedRole(RELEASES, [keys[RELEASES].keyid], 1, True,
                                               path_hash_prefixes=list(ALL_NAMES))})
        with self.edit_targets(RELEASES):
            pass
        with self.edit_snapshot() as snapshot:
            snapshot.meta = dict(self.targets_infos)
        with self.edit_timestamp() as timestamp:
            timestamp.snapshot_meta = self.snapshot_info

    def set_target(self, name: str, digest: str, length: int,
                   custom: Mapping[str, object] | None = None) -> TargetFile:
        """Record ``name`` -> (digest, length) in ``targets/releases``, then snapshot and timestamp."""
        target = TargetFile(length, digest_hashes(digest), name,
                            unrecognized_fields={"custom": dict(custom)} if custom else None)
        with self.edit_targets(RELEASES) as releases:
            releases.targets[name] = target
        self.publish()
        return target

    def remove_target(self, name: str) -> bool:
        """Drop ``name`` from ``targets/releases``; False if it was not there."""
        if name not in self.metadata[RELEASES].signed.targets:
            return False
        with self.edit_targets(RELEASES) as releases:
            del releases.targets[name]
        self.publish()
        return True

    def publish(self, *, force_snapshot: bool = False) -> None:
        """A new snapshot (if a targets role changed, or forced) and a new timestamp pointing at it."""
        self.do_snapshot(force=force_snapshot)
        self.do_timestamp(force=True)

    def resign(self, *roles: str) -> None:
        """New versions of ``roles`` with fresh expiry dates, then snapshot and timestamp as needed.

        A targets-type or root change needs a new snapshot (targets) and timestamp anyway, and a new
        snapshot needs a new timestamp, so each role is re-signed once however many are named.
        """
        for role in (r for r in (ROOT, TARGETS, RELEASES) if r in roles):
            with self.edit(role):
                pass
        self.publish(force_snapshot=SNAPSHOT in roles)

    def rotate(self, role: str, new_key: Key) -> Key:
        """Replace ``role``'s key with ``new_key``; return the key it replaced.

        A top-level role's key lives in root, so rotation makes a new root version. For root itself
        that version is signed by the old root key as well as the new one: a client that trusts
        only the old root accepts the new version (TUF 1.0 §5.3.4) and carries on from there. The
        releases key lives in targets' delegation, so only targets is re-signed (by its own key).
        The rotated role is then re-signed with the new key, and snapshot and timestamp follow.
        """
        if role == RELEASES:
            delegations = self._delegations()
            old_keyid = delegations.roles[RELEASES].keyids[0]
            old = delegations.keys[old_keyid]
            with self.edit_targets() as editable:
                editable.revoke_key(old_keyid, RELEASES)
                editable.add_key(new_key, RELEASES)
        else:
            root = self.metadata[ROOT].signed
            old_keyid = root.roles[role].keyids[0]
            old = root.keys[old_keyid]
            if role == ROOT:
                self._extra_root_keys = [old]
            try:
                with self.edit_root() as editable:
                    editable.revoke_key(old_keyid, role)
                    editable.add_key(new_key, role)
            finally:
                self._extra_root_keys = []
        if role == ROOT:
            self.publish()
        else:
            self.resign(role)
        return old

    # --- helpers -------------------------------------------------------------------------------------

    def _signing_keys(self, role: str, md: Metadata) -> Iterator[Key]:
        """The keys that must sign the new version of ``role``: those the delegator names."""
        if role == ROOT:
            root: Root = md.signed
            yield from (root.keys[k] for k in root.roles[ROOT].keyids)
            yield from (k for k in self._extra_root_keys if k.keyid not in root.roles[ROOT].keyids)
        elif role == RELEASES:
            delegations = self._delegations()
            yield from (delegations.keys[k] for k in delegations.roles[RELEASES].keyids)
        else:
            root = self.metadata[ROOT].signed
            yield from (root.keys[k] for k in root.roles[role].keyids)

    def _delegations(self) -> Delegations:
        """Targets' delegations, which must name ``targets/releases`` in a Stockade repository."""
        delegations = self.metadata[TARGETS].signed.delegations
        if delegations is None or delegations.roles is None or RELEASES not in delegations.roles:
            raise TufRepositoryError(f"targets metadata does not delegate to {RELEASES}: "
                                     "not a repository made by `stockade trust init`")
        return delegations

    def _metafile(self, role: str) -> MetaFile:
        """Version, length and sha256 of the bytes published for ``role``'s current version."""
        return MetaFile.from_data(self.metadata[role].signed.version, self.published[role],
                                  ["sha256"])


def parse_published(published: Mapping[str, bytes]) -> dict[str, Metadata]:
    """Parse each role's published bytes; a file that does not parse names its role."""
    metadata = {}
    for role, data in published.items():
        try:
            metadata[role] = Metadata.from_bytes(data)
        except DeserializationError as exc:
            raise TufRepositoryError(f"{role} metadata in the repository is invalid: {exc}") from None
    return metadata


def _first_signed(role: str) -> Root | Targets | Snapshot | Timestamp:
    """An empty payload for the first version of ``role`` (close() sets version and expiry)."""
    if role == ROOT:
        return Root(consistent_snapshot=True)
    if role == SNAPSHOT:
        return Snapshot(meta={})
    if role == TIMESTAMP:
        return Timestamp()
    return Targets()
