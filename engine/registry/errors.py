"""Errors from talking to a registry, each naming the registry, the repository or the object.

A registry is never trusted: a wrong digest, a size lie or an oversized document is a
:class:`VerificationError`, distinct from a registry that is merely unreachable or refuses us, so callers
(and the audit log) can tell tampering from an outage.
"""

from __future__ import annotations

from engine.errors import NotFoundError, StockadeError


class RegistryError(StockadeError):
    """A registry request failed: unreachable, refused, or answered with an error."""


class AuthError(RegistryError):
    """The registry wants credentials we do not have, or rejected the ones we sent."""


class TLSError(RegistryError):
    """The TLS connection to a registry could not be established or verified."""


class ManifestUnknownError(RegistryError, NotFoundError):
    """The registry has no manifest (or blob) by that tag or digest."""


class VerificationError(RegistryError):
    """What the registry sent does not match what was asked for (digest, size, media type, bounds)."""


class UnsupportedMediaTypeError(VerificationError):
    """A manifest or layer media type Stockade does not know how to handle."""
