"""The ways TUF trust for a tag can fail, one class each, so a person (and a script) can tell them apart.

Every class is a StockadeError (one line, exit 1). ``reason`` is a short stable code that ``-o json``
output and the policy input carry; the message says what failed, where, and what to do. The client
maps python-tuf's exceptions onto these in one place (``client._translate``), so the rest of
Stockade never sees a tuf exception and never has to import tuf to catch one.
"""

from __future__ import annotations

from engine.errors import StockadeError


class TufError(StockadeError):
    """Base of every TUF failure."""

    reason = "tuf-error"


class TufRepositoryError(TufError):
    """The local repository directory (``--repo``) is missing, not initialised, or inconsistent."""

    reason = "repository"


class TufKeyError(TufError):
    """A repository key file is unreadable, truncated, or the password does not open it."""

    reason = "key"


class TufRootFileError(TufError):
    """The pinned root file (``--tuf-root``) cannot be read or is not TUF root metadata."""

    reason = "bad-root-file"


class TufUnreachableError(TufError):
    """The TUF repository could not be fetched (connection refused, HTTP error, oversized file)."""

    reason = "unreachable"


class TufExpiredError(TufError):
    """Metadata the client must trust has passed its expiry: the repository was not re-signed."""

    reason = "expired"


class TufRollbackError(TufError):
    """The repository served an older version than one the client already trusted."""

    reason = "rollback"


class TufUntrustedError(TufError):
    """Metadata is not signed by the keys the trusted root names: a wrong pinned root, or tampering."""

    reason = "untrusted"


class TufInvalidMetadataError(TufError):
    """Metadata is signed but malformed or inconsistent with the snapshot (length, hash, version)."""

    reason = "invalid-metadata"


class TufUnknownTagError(TufError):
    """The repository has no target for this tag: nobody signed it (or it was revoked)."""

    reason = "unknown-tag"


class TufDigestMismatchError(TufError):
    """The registry's manifest for the tag is not the one the TUF target records."""

    reason = "digest-mismatch"
