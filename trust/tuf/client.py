"""TUF client: is this tag's manifest the one the repository's signers recorded?

Everything security-relevant is python-tuf's ngclient: it starts from the pinned root (``bootstrap``,
never from a cached root), walks root versions to follow key rotations, checks signatures,
thresholds, versions (rollback), expiry (freeze) and snapshot consistency, and keeps what it has
verified in a per-repository cache under ``Paths.cache/tuf``. This module only chooses the cache
directory, serialises access to it, pins the clock when asked, compares the target with the
registry's manifest, and turns each failure into one of the distinct errors in ``errors.py``.

tuf is imported inside the functions that use it, so importing this module costs nothing: the warm
``run`` path and a verification-cache hit never load it.

Two pieces of ngclient state have no public accessor and are reached in ``_Session`` only: the
reference time (``_trusted_set.reference_time``, to pin the clock for a given ``now``) and the
trusted metadata set after a refresh (to report versions and expiry, and to walk every delegated
role for ``trust inspect``). Both have been stable since tuf 2.0; tuf is pinned below 8, and the
tests exercise both.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Protocol
from urllib.parse import urlsplit

from engine.boundedio import read_bytes
from trust.tuf.errors import (
    TufDigestMismatchError,
    TufError,
    TufExpiredError,
    TufInvalidMetadataError,
    TufRollbackError,
    TufRootFileError,
    TufUnknownTagError,
    TufUnreachableError,
    TufUntrustedError,
)

if TYPE_CHECKING:
    from tuf.api.metadata import Signed, TargetFile
    from tuf.ngclient import Updater

MAX_ROOT_BYTES = 512_000  # ngclient's own root_max_length
RELEASES = "targets/releases"


class TagReference(Protocol):
    """What the client needs of an image reference (``engine.reference.Reference`` has it)."""

    registry: str
    repository: str
    tag: str | None


def target_name(ref: TagReference) -> str:
    """The TUF target name of a tag: ``<registry>/<repository>:<tag>`` (README "TUF trust for tags")."""
    if not ref.tag:
        raise TufUnknownTagError(f"{ref.registry}/{ref.repository} names no tag: TUF trust is "
                                 "recorded per tag (IMAGE:TAG)")
    return f"{ref.registry}/{ref.repository}:{ref.tag}"


@dataclass(frozen=True)
class TufResult:
    """A tag verified through TUF: which target, at which repository state, valid until when."""

    target: str
    digest: str
    length: int
    url: str
    root_sha256: str  # of the pinned root file: part of a verification cache key
    versions: dict[str, int]  # role -> trusted version after the refresh
    expires: datetime  # the earliest expiry among the metadata relied on: a cache must not outlive it
    custom: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The evidence as plain JSON (``verify -o json``, the policy input)."""
        return {"kind": "tuf", "target": self.target, "digest": self.digest, "length": self.length,
                "url": self.url, "root_sha256": self.root_sha256, "versions": dict(self.versions),
                "expires": self.expires.isoformat(), "custom": dict(self.custom)}


def resolve(ref: TagReference | str, url: str, root_path: str | os.PathLike[str],
            cache_dir: str | os.PathLike[str], *, now: datetime | None = None) -> TufResult:
    """The manifest digest and length the TUF repository records for ``ref``'s tag now.

    ``ref`` is an image reference with a tag, or a target name already formed. ``cache_dir`` is the
    TUF cache root (``Paths.cache / "tuf"``); ``now`` pins the clock expiry is judged against.
    Raises a ``TufError`` subclass for each way it can fail (see ``errors.py``).
    """
    name = ref if isinstance(ref, str) else target_name(ref)
    with _Session(url, root_path, cache_dir, now) as session:
        session.refresh()
        info = session.target(name)
        algorithm = "sha256" if "sha256" in info.hashes else next(iter(sorted(info.hashes)), "")
        return TufResult(target=name, digest=f"{algorithm}:{info.hashes.get(algorithm, '')}",
                         length=info.length, url=session.url, root_sha256=session.root_sha256,
                         versions=session.versions(), expires=session.earliest_expiry(),
                         custom=dict(info.unrecognized_fields.get("custom") or {}))


def verify_tag(ref: TagReference | str, digest: str, length: int, url: str,
               root_path: str | os.PathLike[str], cache_dir: str | os.PathLike[str], *,
               now: datetime | None = None) -> TufResult:
    """Require the TUF target for ``ref``'s tag to record exactly ``digest`` and ``length``: those
    of the manifest the registry serves for the tag now. Arguments as for :func:`resolve`."""
    result = resolve(ref, url, root_path, cache_dir, now=now)
    if result.digest != digest or result.length != length:
        raise TufDigestMismatchError(
            f"{result.target}: the registry serves {digest} ({length} bytes) but the TUF repository "
            f"{result.url} signed {result.digest} ({result.length} bytes); the tag was moved without "
            "being signed again (`stockade trust sign`), or the registry is not serving what was signed")
    return result


@dataclass(frozen=True)
class TufTagAuthority:
    """``trust.requirements.TagAuthority`` for ``verify_image``: one TUF repository and pinned root.

    ``verify_image`` compares the digest ``resolve`` returns with the registry's, and caches a
    positive verdict no longer than ``TagEvidence.expires`` (the earliest TUF expiry involved).
    """

    url: str
    root_path: Path
    cache_dir: Path
    now: datetime | None = None

    def cache_key(self) -> str:
        """The repository and the pinned root's hash: another root is another authority."""
        root_sha256 = hashlib.sha256(_read_root(self.root_path)).hexdigest()
        return f"tuf:{self.url.rstrip('/')}/#root-sha256={root_sha256}"

    def resolve(self, reference: TagReference, *, offline: bool) -> Any:
        from trust.requirements import TagEvidence

        if offline:
            raise TufUnreachableError(f"TUF trust needs the repository {self.url} to prove the "
                                      "tag's target is current; it cannot be checked --offline")
        result = resolve(reference, self.url, self.root_path, self.cache_dir, now=self.now)
        return TagEvidence(digest=result.digest, expires=result.expires, details=result.as_dict())


def lookup(name: str, url: str, root_path: str | os.PathLike[str],
           cache_dir: str | os.PathLike[str], *, now: datetime | None = None) -> dict[str, Any]:
    """The target ``name`` as the repository records it (refreshing first); unknown -> error."""
    with _Session(url, root_path, cache_dir, now) as session:
        session.refresh()
        info = session.target(name)
        return {"name": name, "length": info.length, "hashes": dict(info.hashes),
                "custom": dict(info.unrecognized_fields.get("custom") or {}),
                "versions": session.versions()}


def fetch_target(name: str, url: str, root_path: str | os.PathLike[str],
                 cache_dir: str | os.PathLike[str], *, target_base_url: str,
                 now: datetime | None = None) -> bytes:
    """Download target ``name`` (length and hashes checked by ngclient) and return its bytes.

    This is how a Sigstore ``trusted_root.json`` is taken from a TUF repository such as
    tuf-repo-cdn.sigstore.dev: ``fetch_target("trusted_root.json", url, pinned_root, …)``.
    """
    with _Session(url, root_path, cache_dir, now, target_base_url=target_base_url) as session:
        session.refresh()
        return session.download(session.target(name))


def describe_remote(url: str, root_path: str | os.PathLike[str], cache_dir: str | os.PathLike[str],
                    *, now: datetime | None = None) -> dict[str, Any]:
    """What ``trust inspect --tuf URL`` shows: the trusted versions and expiry of every role, and
    every target of every role the delegations reach, all verified by ngclient."""
    with _Session(url, root_path, cache_dir, now) as session:
        session.refresh()
        roles, targets = [], []
        for role, signed in session.walk():
            roles.append({"role": role, "version": signed.version,
                          "expires": signed.expires.isoformat()})
            for name, info in sorted(getattr(signed, "targets", {}).items()):
                algorithm, encoded = next(iter(sorted(info.hashes.items())), ("", ""))
                targets.append({"name": name, "digest": f"{algorithm}:{encoded}",
                                "length": info.length, "role": role})
        return {"url": url, "root_sha256": session.root_sha256, "roles": roles, "targets": targets}


def cache_directory(cache_dir: str | os.PathLike[str], url: str, root_sha256: str) -> Path:
    """The cache for one (repository URL, pinned root): two pins never share verified state."""
    key = hashlib.sha256(f"{url}\n{root_sha256}".encode()).hexdigest()[:32]
    return Path(cache_dir) / key


class _Session:
    """One locked, clock-pinned ngclient Updater, with every tuf exception translated."""

    def __init__(self, url: str, root_path: str | os.PathLike[str], cache_dir: str | os.PathLike[str],
                 now: datetime | None, *, target_base_url: str | None = None) -> None:
        scheme = urlsplit(url).scheme
        if scheme not in ("http", "https"):
            raise TufUnreachableError(f"TUF repository URL {url!r} must start with http:// or https://")
        self.url = url.rstrip("/") + "/"
        self.root_path = Path(root_path)
        self.root_bytes = _read_root(self.root_path)
        self.root_sha256 = hashlib.sha256(self.root_bytes).hexdigest()
        self.directory = cache_directory(cache_dir, self.url, self.root_sha256)
        self.now = now
        self.target_base_url = target_base_url
        self._stack = contextlib.ExitStack()
        self.updater: Updater

    def __enter__(self) -> "_Session":
        from tuf.api import exceptions
        from tuf.ngclient import Updater

        from engine.cachefiles import private_directory

        metadata_dir = self.directory / "metadata"
        try:
            private = private_directory(self.directory)
        except OSError as exc:
            raise TufError(f"cannot use the TUF cache directory {self.directory}: {exc.strerror}") from None
        if not private:
            # ngclient writes trusted metadata here (and we lock a file in it): through a symlink,
            # or in another user's directory, that would be someone else's to redirect or rewrite.
            raise TufError(f"the TUF cache directory {self.directory} is a symlink or belongs to "
                           "another user; remove it")
        metadata_dir.mkdir(exist_ok=True, mode=0o700)
        with contextlib.ExitStack() as stack:  # released here unless the session starts
            lock = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                           0o600)
            stack.callback(os.close, lock)
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self.updater = Updater(str(metadata_dir), self.url,
                                       target_dir=str(self.directory / "targets"),
                                       target_base_url=self.target_base_url,
                                       bootstrap=self.root_bytes)
            except exceptions.RepositoryError as exc:
                raise TufRootFileError(f"--tuf-root {self.root_path} is not valid TUF root "
                                       f"metadata: {exc}") from None
            if self.now is not None:
                self.updater._trusted_set.reference_time = self.now  # see module docstring
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc_info: object) -> bool | None:
        return self._stack.__exit__(*exc_info)  # type: ignore[arg-type]

    @contextlib.contextmanager
    def translated(self, what: str) -> Iterator[None]:
        """Turn python-tuf's exceptions into Stockade's, each naming the repository and the cause."""
        from tuf.api import exceptions

        url = self.url
        try:
            yield
        except TufError:
            raise
        except exceptions.ExpiredMetadataError as exc:
            at = (self.now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
            raise TufExpiredError(f"TUF metadata from {url} has expired ({exc}; judged at {at}): "
                                  "the repository must be re-signed (for a Stockade repository: "
                                  "`stockade trust resign`)") from None
        except exceptions.EqualVersionNumberError as exc:
            raise TufInvalidMetadataError(f"TUF repository {url} served a changed file under a "
                                          f"version already trusted ({exc})") from None
        except exceptions.BadVersionNumberError as exc:
            raise TufRollbackError(f"TUF repository {url} served older metadata than this client "
                                   f"already trusts ({exc}): a rollback or replay; refusing it "
                                   f"(trusted state: {self.directory})") from None
        except exceptions.UnsignedMetadataError as exc:
            raise TufUntrustedError(f"TUF metadata from {url} is not signed by the keys of the "
                                    f"trusted root ({exc}): wrong --tuf-root {self.root_path}, or "
                                    "tampered metadata") from None
        except exceptions.DownloadHTTPError as exc:
            raise TufUnreachableError(f"cannot fetch {what} from TUF repository {url}: HTTP "
                                      f"{exc.status_code}") from None
        except exceptions.DownloadError as exc:
            cause = exc.__cause__ or exc
            cause = getattr(cause, "reason", None) or cause  # urllib3's MaxRetryError wraps the cause
            raise TufUnreachableError(f"cannot fetch {what} from TUF repository {url}: "
                                      f"{type(cause).__name__}: {cause}") from None
        except exceptions.RepositoryError as exc:
            raise TufInvalidMetadataError(f"TUF metadata from {url} is invalid: {exc}") from None

    def refresh(self) -> None:
        with self.translated("metadata"):
            self.updater.refresh()

    def target(self, name: str) -> TargetFile:
        with self.translated(f"the metadata for {name}"):
            info = self.updater.get_targetinfo(name)
        if info is None:
            raise TufUnknownTagError(f"{name} is not signed in the TUF repository {self.url}: no "
                                     "target of that name (sign it with `stockade trust sign`, or "
                                     "check the name)")
        return info

    def download(self, info: TargetFile) -> bytes:
        target_dir = self.directory / "targets"
        target_dir.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target_dir, suffix=".download")
        os.close(fd)
        try:
            with self.translated(f"target {info.path}"):
                self.updater.download_target(info, filepath=tmp)
            return Path(tmp).read_bytes()
        finally:
            os.unlink(tmp)

    def versions(self) -> dict[str, int]:
        trusted = self.updater._trusted_set  # see module docstring
        versions = {"root": trusted.root.version, "timestamp": trusted.timestamp.version,
                    "snapshot": trusted.snapshot.version, "targets": trusted.targets.version}
        if RELEASES in trusted:
            versions[RELEASES] = trusted[RELEASES].version
        return versions

    def earliest_expiry(self) -> datetime:
        return min(signed.expires for signed in self.updater._trusted_set)  # see module docstring

    def walk(self) -> Iterator[tuple[str, Signed]]:
        """Every role from root down through every delegation ngclient can verify (bounded)."""
        trusted = self.updater._trusted_set  # see module docstring
        yield "root", trusted.root
        yield "timestamp", trusted.timestamp
        yield "snapshot", trusted.snapshot
        seen: set[str] = set()
        stack = [("targets", "root")]
        while stack and len(seen) < self.updater.config.max_delegations:
            role, parent = stack.pop()
            if role in seen:
                continue
            seen.add(role)
            with self.translated(f"delegated role {role}"):
                signed = self.updater._load_targets(role, parent)  # see module docstring
            yield role, signed
            if signed.delegations is not None and signed.delegations.roles:
                stack.extend((child, role) for child in reversed(list(signed.delegations.roles)))


def _read_root(path: Path) -> bytes:
    return read_bytes(path, MAX_ROOT_BYTES, what=f"--tuf-root {path}", error=TufRootFileError)
