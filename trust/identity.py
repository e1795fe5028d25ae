r"""Keyless identities: who a Fulcio-style certificate says signed, and whether that is acceptable.

A certificate names its signer in the subjectAltName (an email, a URI such as a GitHub workflow, or
Fulcio's otherName) and the OIDC issuer that vouched for it in extension 1.3.6.1.4.1.57264.1.8
(a DER UTF8String; older certificates use 1.3.6.1.4.1.57264.1.1 holding the raw string).

Regular expressions are searched (``re.search``), as cosign's ``--certificate-identity-regexp`` and
policy-controller's ``subjectRegExp`` do (Go's ``regexp.MatchString``), and as ``policies`` does for
the same patterns: users port them between the three, so one pattern must mean one thing. An
unanchored pattern such as ``@example\.com`` therefore also accepts ``me@example.com.evil.test``;
anchor it (``^…$``) to match the whole value (``stockade policy lint`` warns about unanchored ones).

One divergence is closed by refusing: Python's ``$`` also matches before a final newline, Go's only
at the very end, so ``^me@example\.com$`` would accept a certificate for ``me@example.com\n`` here
and not in cosign. A name or issuer holding a control character never matches a pattern (no real
identity holds one; Fulcio's would be a forgery or a broken OIDC provider). Patterns are compiled
with ``re.ASCII``, so ``\d``, ``\w``, ``\s`` and ``\b`` mean what they mean in Go.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from trust.errors import RequirementsError

ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
OTHERNAME_SAN = ObjectIdentifier("1.3.6.1.4.1.57264.1.7")


def _der_utf8(value: bytes) -> str | None:
    """Decode a DER UTF8String (tag 0x0C, short or long length)."""
    if len(value) < 2 or value[0] != 0x0C:
        return None
    length, offset = value[1], 2
    if length & 0x80:
        count = length & 0x7F
        length, offset = int.from_bytes(value[2:2 + count], "big"), 2 + count
    body = value[offset:offset + length]
    return body.decode("utf-8", "replace") if len(body) == length else None


def certificate_identity(cert: x509.Certificate) -> tuple[list[str], str | None]:
    """(subject alternative names, OIDC issuer) of a signing certificate."""
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if san is not None:
        names += san.get_values_for_type(x509.RFC822Name)
        names += san.get_values_for_type(x509.UniformResourceIdentifier)
        for other in san.get_values_for_type(x509.OtherName):
            if other.type_id == OTHERNAME_SAN:
                decoded = _der_utf8(other.value)
                if decoded is not None:
                    names.append(decoded)
    issuer = None
    for ext in cert.extensions:
        if ext.oid == ISSUER_V2 and isinstance(ext.value, x509.UnrecognizedExtension):
            issuer = _der_utf8(ext.value.value)
            break
    if issuer is None:
        for ext in cert.extensions:
            if ext.oid == ISSUER_V1 and isinstance(ext.value, x509.UnrecognizedExtension):
                issuer = ext.value.value.decode("utf-8", "replace")
    return names, issuer


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def regexp_matches(pattern: re.Pattern[str], value: str) -> bool:
    """Unanchored, as cosign and policy-controller (Go's ``regexp.MatchString``) and ``policies``;
    never for a value with a control character (see the module docstring: ``$`` and a final newline)."""
    return _CONTROL.search(value) is None and pattern.search(value) is not None


def _control_note(values: list[str]) -> str:
    return " (it holds a control character, which no pattern accepts)" if any(
        _CONTROL.search(v) for v in values) else ""


def _compile(pattern: str | None, flag: str) -> re.Pattern[str] | None:
    r"""``re.ASCII``: Go's ``\d``, ``\w``, ``\s`` and ``\b`` are ASCII-only, Python's are Unicode
    (``\d`` would accept ARABIC-INDIC DIGIT ONE in ``v\d+``); ``(?u)`` is refused as Go refuses it."""
    if pattern is None:
        return None
    try:
        return re.compile(pattern, re.ASCII)
    except (re.error, ValueError) as exc:  # ValueError: (?u) against re.ASCII
        raise RequirementsError(f"{flag} {pattern!r} is not a valid regular expression: {exc}") from None


@dataclass(frozen=True)
class IdentityMatcher:
    """One acceptable keyless signer: an identity and an issuer, each exact or a regular expression."""

    identity: str | None = None
    identity_regexp: str | None = None
    issuer: str | None = None
    issuer_regexp: str | None = None

    def __post_init__(self) -> None:
        if (self.identity is None) == (self.identity_regexp is None):
            raise RequirementsError("give exactly one of --certificate-identity and "
                                    "--certificate-identity-regexp")
        if (self.issuer is None) == (self.issuer_regexp is None):
            raise RequirementsError("give exactly one of --certificate-oidc-issuer and "
                                    "--certificate-oidc-issuer-regexp")
        _compile(self.identity_regexp, "--certificate-identity-regexp")
        _compile(self.issuer_regexp, "--certificate-oidc-issuer-regexp")

    def canonical(self) -> dict[str, Any]:
        return {k: v for k, v in (("identity", self.identity), ("identity_regexp", self.identity_regexp),
                                  ("issuer", self.issuer), ("issuer_regexp", self.issuer_regexp))
                if v is not None}

    def describe(self) -> str:
        who = self.identity if self.identity is not None else f"/{self.identity_regexp}/"
        via = self.issuer if self.issuer is not None else f"/{self.issuer_regexp}/"
        return f"{who} from {via}"

    def mismatch(self, names: list[str], issuer: str | None) -> str | None:
        """None when (names, issuer) is acceptable, else the reason it is not."""
        if self.issuer is not None and issuer != self.issuer:
            if issuer is None:
                return f"certificate has no OIDC issuer extension (expected {self.issuer!r})"
            return f"certificate issuer {issuer!r} is not {self.issuer!r}"
        pattern = _compile(self.issuer_regexp, "--certificate-oidc-issuer-regexp")
        # Certificates from before Fulcio recorded the issuer (2021) have none: as in cosign, a
        # regular expression is matched against the empty string.
        if pattern is not None and not regexp_matches(pattern, issuer or ""):
            return (f"certificate issuer {issuer or '(none)'!r} does not match /{self.issuer_regexp}/"
                    + _control_note([issuer or ""]))
        if not names:
            return "certificate has no subject alternative name"
        if self.identity is not None and self.identity not in names:
            return f"certificate identity {', '.join(names)!r} is not {self.identity!r}"
        pattern = _compile(self.identity_regexp, "--certificate-identity-regexp")
        if pattern is not None and not any(regexp_matches(pattern, n) for n in names):
            return (f"certificate identity {', '.join(names)!r} does not match /{self.identity_regexp}/"
                    + _control_note(names))
        return None


def first_mismatch(matchers: tuple[IdentityMatcher, ...], cert: x509.Certificate) -> tuple[str | None, list[str], str | None]:
    """(None if some matcher accepts the certificate else the reasons, names, issuer)."""
    names, issuer = certificate_identity(cert)
    reasons = []
    for matcher in matchers:
        reason = matcher.mismatch(names, issuer)
        if reason is None:
            return None, names, issuer
        reasons.append(reason)
    return "; ".join(reasons) or "no identity was required", names, issuer


class SigstorePolicy:
    """A sigstore-python ``VerificationPolicy`` (anything with ``verify(cert)``) over our matchers,
    so exact and regular-expression identities are checked the same way on every path."""

    def __init__(self, matchers: tuple[IdentityMatcher, ...]) -> None:
        self.matchers = matchers

    def verify(self, cert: x509.Certificate) -> None:
        from sigstore.errors import VerificationError

        reason, _, _ = first_mismatch(self.matchers, cert)
        if reason is not None:
            raise VerificationError(reason)
