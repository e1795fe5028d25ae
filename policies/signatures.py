"""Who must have signed an image: requirements for ``trust``, and checks of what it verified.

The run pipeline asks ``requirements_for(policy, reference)`` before evaluating, hands exactly
those requirements to ``trust``'s verifiers, and puts the verified facts in the input document
(``image.signatures``, ``image.tuf``, ``image.verification``). The evaluator then checks the
facts: an image that matches a ``signatures`` entry without a satisfying verified signature is a
violation, and a verification error fails closed.

Matching follows sigstore's policy-controller: every entry whose ``images`` globs match must be
satisfied (AND); within an entry any listed key or identity counts (OR), ``threshold`` distinct
ones are needed. Regular expressions match anywhere, as cosign's ``--certificate-identity-regexp``
does and as ``trust.identity`` does with the same patterns: anchor them (``^…$``); ``policy lint``
warns when they are not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from policies.decision import Finding
from policies.document import Subject
from policies.globs import matches_signed_image


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def regexp_matches(pattern: str, value: str) -> bool:
    r"""Unanchored, as cosign and policy-controller (Go's ``regexp.MatchString``) and ``trust.identity``,
    and with Go's meanings where Python's differ: ``\d``, ``\w``, ``\s``, ``\b`` are ASCII
    (``re.ASCII``), and a value holding a control character never matches (Python's ``$`` also
    matches before a final newline, so ``^me@x\.com$`` would accept ``"me@x.com\n"``)."""
    return _CONTROL.search(value) is None and re.search(pattern, value, re.ASCII) is not None


@dataclass(frozen=True, slots=True)
class KeyRequirement:
    key_id: str          # hex SHA-256 of the DER SubjectPublicKeyInfo, as trust.keys.PublicKey.key_id
    pem: str             # the public key, PEM
    path: str | None     # where it was read from (absolute), for messages


@dataclass(frozen=True, slots=True)
class IdentityRequirement:
    subject: str | None = None
    subject_regexp: str | None = None
    issuer: str | None = None
    issuer_regexp: str | None = None

    def accepts(self, subject: str | None, issuer: str | None) -> bool:
        if subject is None or issuer is None:
            return False
        ok_subject = subject == self.subject if self.subject is not None else \
            regexp_matches(self.subject_regexp or "", subject)
        ok_issuer = issuer == self.issuer if self.issuer is not None else \
            regexp_matches(self.issuer_regexp or "", issuer)
        return ok_subject and ok_issuer

    def describe(self) -> str:
        subject = self.subject if self.subject is not None else f"~/{self.subject_regexp}/"
        issuer = self.issuer if self.issuer is not None else f"~/{self.issuer_regexp}/"
        return f"{subject} (issuer {issuer})"


@dataclass(frozen=True, slots=True)
class TufRequirement:
    url: str
    root: str            # absolute path of the pinned root.json
    root_sha256: str


@dataclass(frozen=True, slots=True)
class SignatureRequirement:
    """One ``signatures`` entry that applies to an image, as plain data for ``trust``."""

    name: str
    images: tuple[str, ...]
    keys: tuple[KeyRequirement, ...]
    identities: tuple[IdentityRequirement, ...]
    transparency_log: bool
    threshold: int
    tuf: TufRequirement | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "images": list(self.images),
            "keys": [{"keyId": k.key_id, "path": k.path, "pem": k.pem} for k in self.keys],
            "identities": [{k: v for k, v in (("subject", i.subject), ("subjectRegExp", i.subject_regexp),
                                              ("issuer", i.issuer), ("issuerRegExp", i.issuer_regexp)) if v}
                           for i in self.identities],
            "transparencyLog": self.transparency_log, "threshold": self.threshold,
            "tuf": None if self.tuf is None else {"url": self.tuf.url, "root": self.tuf.root,
                                                   "rootSha256": self.tuf.root_sha256},
        }


def _distinct_signers(accepted: list[set[int]]) -> dict[int, int]:
    """The most listed entries that distinct signers satisfy, each signer counting for one entry at
    most (a maximum bipartite matching, by augmenting paths): ``accepted[s]`` is the entries signer
    ``s`` satisfies; the result maps entry -> signer. One signature whose identity two overlapping
    patterns accept is one signer, not two."""
    owner: dict[int, int] = {}

    def assign(signer: int, seen: set[int]) -> bool:
        for entry in sorted(accepted[signer] - seen):
            seen.add(entry)
            if entry not in owner or assign(owner[entry], seen):
                owner[entry] = signer
                return True
        return False

    for signer in range(len(accepted)):
        assign(signer, set())
    return owner


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """The ``signatures`` rule for one entry (it applies only to images its globs match)."""

    rule: ClassVar[str] = "signatures"
    requirement: SignatureRequirement

    def check(self, s: Subject, out: list[Finding]) -> None:
        req = self.requirement
        if not matches_signed_image(req.images, s.image.name):
            return
        if req.keys or req.identities:
            self._signers(s, out)
        if req.tuf is not None:
            self._tuf(req.tuf, s, out)

    def _signers(self, s: Subject, out: list[Finding]) -> None:
        req, image = self.requirement, s.image
        expected = {"signedBy": [f"key {k.key_id}" + (f" ({k.path})" if k.path else "") for k in req.keys]
                    + [f"identity {i.describe()}" for i in req.identities],
                    "threshold": req.threshold, "transparencyLog": "required" if req.transparency_log else "optional"}
        fix = f"sign {image.name} with a listed key or identity (stockade sign), or check the policy's keys"
        if image.verification_error is not None:
            out.append(Finding(self.rule, "image.verification.error",
                               f"signature verification failed ({req.name}): {image.verification_error}",
                               image.verification_error, expected,
                               "fix what stopped verification; an unverifiable image is refused"))
            return
        if image.digest is None:
            out.append(Finding(self.rule, "image.digest", f"the image digest is unknown, so no signature can "
                                                          f"match ({req.name})", None, expected,
                               "resolve the image to its digest before evaluating"))
            return
        # Which listed entries each distinct signer (a key id, or a subject and issuer) satisfies.
        signers: dict[tuple[str | None, ...], set[int]] = {}
        for sig in image.signatures:
            if sig.digest != image.digest or (req.transparency_log and not sig.tlog):
                continue
            if sig.kind == "key":
                entries = {n for n, k in enumerate(req.keys) if k.key_id == sig.key_id}
                signer: tuple[str | None, ...] = ("key", sig.key_id)
            else:
                entries = {len(req.keys) + n for n, ident in enumerate(req.identities)
                           if ident.accepts(sig.subject, sig.issuer)}
                signer = ("keyless", sig.subject, sig.issuer)
            signers.setdefault(signer, set()).update(entries)
        satisfied = _distinct_signers(list(signers.values()))
        if len(satisfied) < req.threshold:
            found = [f"key {sig.key_id}" if sig.kind == "key" else f"identity {sig.subject} (issuer {sig.issuer})"
                     + ("" if sig.tlog else ", no tlog entry") for sig in image.signatures] + list(image.failures)
            what = "no signature" if not image.signatures else "no signature by a required signer"
            out.append(Finding(self.rule, "image.signatures",
                               f"{what} ({req.name}: {len(satisfied)} of {req.threshold} required)",
                               found or None, expected, fix))

    def _tuf(self, tuf_req: TufRequirement, s: Subject, out: list[Finding]) -> None:
        fact, image = s.image.tuf, s.image
        expected = {"url": tuf_req.url, "digest": image.digest}
        problem = None
        if fact is None:
            problem = "the tag was not checked against the TUF repository"
        elif fact.error is not None or not fact.verified:
            problem = f"TUF verification failed: {fact.error or 'not verified'}"
        elif fact.url is not None and fact.url.rstrip("/") != tuf_req.url.rstrip("/"):
            problem = f"TUF target came from {fact.url}, not the policy's repository"
        elif image.digest is None or fact.digest != image.digest:
            problem = "the TUF target's digest is not the image's digest"
        if problem:
            out.append(Finding("signatures.tuf", "image.tuf", f"{problem} ({self.requirement.name})",
                               None if fact is None else {"verified": fact.verified, "url": fact.url,
                                                          "digest": fact.digest, "error": fact.error},
                               expected, f"publish {image.reference} in the TUF repository "
                                         "(stockade trust sign) or use the digest it lists"))
