"""Policy signature requirements -> ``trust`` verification -> the input document's image facts.

``policies.requirements_for`` says which signers an image needs; ``trust.verify.verify_image``
establishes what holds; the evaluator reads the facts from the input document (``image.digest``,
``image.signatures``, ``image.verification``, ``image.tuf``). This module is the translation between
the three, shaped so the ``run`` pipeline and ``policy check`` can use it as the webhook does:

* ``trust_requirements(requirement, …)`` turns one ``SignatureRequirement`` into trust's
  ``Requirements`` (keys from PEM, identities, the trusted root, the TUF authority);
* ``verify_facts(client, reference, pairs, cache=…)`` verifies one image against every requirement
  that applies, all at the same digest, and returns ``ImageFacts`` (never raises for the image:
  a registry or trust failure becomes ``verification.error`` and the policy fails closed).

A tag is resolved to a digest once per image: every requirement is then verified at that digest,
and the verdict is cached by it. The node pulls the tag later, so what runs can differ from what was
verified (time of check, time of use); only a digest reference closes that gap.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from engine.errors import StockadeError
from trust.cache import VerificationCache

if TYPE_CHECKING:
    from engine.registry import RegistryClient
    from policies import SignatureRequirement
    from trust.requirements import Requirements
    from trust.trustroot import TrustedRoot
    from trust.verdict import Verdict


def trust_requirements(requirement: SignatureRequirement, *, trusted_root: TrustedRoot | None,
                       tuf_cache: Path) -> Requirements:
    """trust's ``Requirements`` for one policy ``signatures`` entry (raises ``StockadeError`` for a
    key or identity trust cannot use, so a server finds it at start-up, not per request)."""
    from trust.identity import IdentityMatcher
    from trust.keys import PublicKey
    from trust.requirements import Requirements

    keys = tuple(PublicKey.from_pem(k.pem.encode(), k.path or f"key {k.key_id[:16]} of {requirement.name}")
                 for k in requirement.keys)
    identities = tuple(IdentityMatcher(i.subject, i.subject_regexp, i.issuer, i.issuer_regexp)
                       for i in requirement.identities)
    tuf = None
    if requirement.tuf is not None:
        from trust.tuf.client import TufTagAuthority

        tuf = TufTagAuthority(requirement.tuf.url, Path(requirement.tuf.root), tuf_cache)
    return Requirements(keys=keys, identities=identities, trusted_root=trusted_root,
                        require_tlog=requirement.transparency_log, tuf=tuf)


def signature_facts(verdict: Verdict) -> list[dict[str, Any]]:
    """The valid signatures of a verdict as the input document lists them (one per signer found)."""
    facts = []
    for target in verdict.targets:
        for sig in target.signatures:
            if not sig.ok:
                continue
            tlog: Any = False
            if sig.log:
                tlog = {"logIndex": sig.log.get("index"), "integratedTime": sig.log.get("integrated_time")}
            if "key_id" in sig.signer:
                fact = {"kind": "key", "keyId": sig.signer["key_id"]}
            else:
                fact = {"kind": "keyless", "subject": sig.signer.get("identity"), "issuer": sig.signer.get("issuer")}
            facts.append({**fact, "tlog": tlog, "digest": target.digest, "source": sig.via})
    return facts


def failure_reasons(verdict: Verdict) -> list[str]:
    """Why each invalid signature failed, and discovery errors, one line each."""
    out = []
    for target in verdict.targets:
        for sig in target.signatures:
            out += [f"{sig.kind} at {sig.location}: {reason}" for reason in sig.reasons]
        out += list(target.errors)
    return out


def tuf_fact(verdict: Verdict) -> dict[str, Any] | None:
    evidence = verdict.tag_authority
    if evidence is None:
        return None
    error = evidence.get("error")
    return {"verified": verdict.tag_ok and error is None, "url": evidence.get("url"),
            "digest": evidence.get("digest"), "error": error}


@dataclass
class ImageFacts:
    """What verification established about one image, for ``document["image"]``."""

    reference: str
    digest: str | None = None
    signatures: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    error: str | None = None
    tuf: dict[str, Any] | None = None
    cache_hits: int = 0
    cache_misses: int = 0

    def as_image(self) -> dict[str, Any]:
        """The image section's verified fields (merge into ``{"reference": …}``)."""
        out: dict[str, Any] = {"digest": self.digest, "signatures": list(self.signatures),
                               "verification": {"error": self.error, "failures": list(self.failures)}}
        if self.tuf is not None:
            out["tuf"] = self.tuf
        return out


def verify_facts(client: RegistryClient, reference: str, requirements: Sequence[Requirements], *,
                 cache: VerificationCache | None = None) -> ImageFacts:
    """Verify ``reference`` against every one of ``requirements`` at one digest (see the module
    docstring). Registry and trust failures become ``error``: the caller's policy fails closed."""
    from engine.reference import Reference
    from trust.verify import verify_image

    facts = ImageFacts(reference)
    try:
        ref = Reference.parse(reference)
        for req in requirements:
            verdict = verify_image(client, ref, req, cache=cache)
            if verdict.cached:
                facts.cache_hits += 1
            else:
                facts.cache_misses += 1
            if facts.digest is None:
                facts.digest = verdict.digest
                ref = ref.with_digest(verdict.digest)  # the tag stays: TUF vouches for it
            facts.signatures += signature_facts(verdict)
            facts.failures += failure_reasons(verdict)
            facts.tuf = tuf_fact(verdict) or facts.tuf
    except StockadeError as exc:
        facts.error = str(exc)
    return facts


class MemoryFrontedCache(VerificationCache):
    """trust's on-disk cache with the same entries kept in memory, for a long-running server.

    A hit reads no file; expiry is checked on every read as the disk cache does. At most
    ``max_entries`` verdicts are held (expired ones first, then the oldest, make room).
    """

    def __init__(self, directory: Path, *, max_entries: int = 4096, clock: Callable[[], float] = time.time) -> None:
        super().__init__(directory, clock=clock)
        self.max_entries = max_entries
        self._memory: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str, parts: dict[str, Any]) -> Verdict | None:
        from trust.verdict import Verdict

        key = self.key(digest, parts)
        with self._lock:
            entry = self._memory.get(key)
        if entry is not None:
            expires, doc = entry
            if expires > self.clock():
                verdict = Verdict.from_json(doc)
                verdict.expires = expires
                return verdict
            with self._lock:
                self._memory.pop(key, None)
        verdict = super().get(digest, parts)
        if verdict is not None and verdict.expires is not None:
            self._remember(key, verdict)
        return verdict

    def put(self, digest: str, parts: dict[str, Any], verdict: Verdict) -> None:
        super().put(digest, parts, verdict)
        if verdict.ok and verdict.expires is not None and verdict.expires > self.clock():
            self._remember(self.key(digest, parts), verdict)

    def _remember(self, key: str, verdict: Verdict) -> None:
        doc, expires = verdict.to_json(), float(verdict.expires or 0)
        with self._lock:
            if len(self._memory) >= self.max_entries:
                now = self.clock()
                for stale in [k for k, (e, _) in self._memory.items() if e <= now]:
                    del self._memory[stale]
                while len(self._memory) >= self.max_entries:
                    del self._memory[next(iter(self._memory))]
            self._memory[key] = (expires, doc)


class ReadOnlyCache(VerificationCache):
    """A view of a cache that reads and never writes: dry-run reviews leave no trace."""

    def __init__(self, backing: VerificationCache) -> None:
        super().__init__(backing.directory, clock=backing.clock)
        self.backing = backing

    def get(self, digest: str, parts: dict[str, Any]) -> Verdict | None:
        return self.backing.get(digest, parts)

    def put(self, digest: str, parts: dict[str, Any], verdict: Verdict) -> None:
        """Dry run: a positive verdict is not stored."""
