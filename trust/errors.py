"""Errors of the trust package: each names the file, image or signature and what to do about it."""

from __future__ import annotations

from engine.errors import StockadeError, UsageError


class TrustError(StockadeError):
    """Base of every trust failure reported to a user."""


class KeyFileError(TrustError):
    """A key file cannot be used (unreadable, malformed, or of a kind we do not support)."""


class WrongPasswordError(KeyFileError):
    """The password does not decrypt the private key."""


class TruncatedKeyError(KeyFileError):
    """The key file ends early or its encoded content is incomplete."""


class UnsupportedKeyError(KeyFileError):
    """The key is well formed but of an algorithm or curve Stockade does not sign or verify with."""


class SignatureDataError(TrustError):
    """Stored signature material (payload, envelope, bundle, manifest) is malformed.

    During verification these are caught per signature and reported as that signature's failure
    reason; they only reach the user as an error when the one thing they asked about is malformed
    (``verify-blob --bundle B`` with a broken B).
    """


class VerificationFailed(TrustError):
    """No signature satisfied the requirements (exit 1, as cosign exits)."""


class RequirementsError(UsageError):
    """The verification requirements themselves are wrong: no key or identity, a bad regular
    expression, conflicting options (exit 2)."""
