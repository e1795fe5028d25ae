"""The one verification step every gate shares: policy requirements -> ``trust`` -> input-document facts.

``policies.requirements_for`` says which signers an image needs; ``trust.verify.verify_image``
establishes what holds; the evaluator reads the facts from the input document (``image.digest``,
``image.signatures``, ``image.verification``, ``image.tuf``; ARCHITECTURE.md, "Policies"). This module
is the translation between the three, and ``stockade run``, ``policy explain``, ``policy check``, the
audit's IMG-009 and the admission webhook all go through it:

* ``trust_requirements(requirement, …)`` turns one ``SignatureRequirement`` into trust's
  ``Requirements`` (keys from PEM, identities, the trusted root, the TUF authority);
* ``verify_facts(client, reference, requirements, …)`` verifies one image against every requirement
  that applies, all at one digest, and returns ``ImageFacts``. It never raises for the image: a
  registry or trust failure becomes ``verification.error`` and the policy fails closed;
* ``PolicyVerifier`` does both for the command line (registry client made only on a cache miss, the
  verification cache under ``Paths.cache``); ``PolicySignatures`` is the audit's signature seam.

A tag is resolved to a digest once per image (or the caller names the digest it will run): every
requirement is then verified at that digest, and each verdict is cached by it. A verification the
cache answers imports neither sigstore nor tuf and opens no connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from engine.errors import StockadeError

if TYPE_CHECKING:
    from engine.config import Config, Paths
    from engine.registry import RegistryClient
    from hardening.audit.targets import ImageRecord, SignatureVerdict
    from policies import Policy, SignatureRequirement
    from trust.cache import VerificationCache
    from trust.requirements import Requirements
    from trust.trustroot import TrustedRoot
    from trust.verdict import Verdict


def trust_requirements(requirement: SignatureRequirement, *, trusted_root: TrustedRoot | None,
                       tuf_cache: Path) -> Requirements:
    """trust's ``Requirements`` for one policy ``signatures`` entry (raises ``StockadeError`` for a
    key or identity trust cannot use)."""
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
    # The stable reason code (expired, rollback, digest-mismatch, unknown-tag, …) lets a CEL rule
    # or a report tell a stale repository from a moved tag without parsing the message.
    return {"verified": verdict.tag_ok and error is None, "url": evidence.get("url"),
            "digest": evidence.get("digest"), "error": error, "reason": evidence.get("reason")}


def _worse_tuf(kept: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any] | None:
    """The one TUF fact the image section holds when several requirements checked TUF: a failure
    wins. The policy tells repositories apart by URL only, so one entry's success (another pinned
    root for the same URL) must never stand in for another entry's failure."""
    if new is None:
        return kept
    return new if kept is None or (kept["verified"] and not new["verified"]) else kept


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
    expires: float | None = None  # epoch seconds: the earliest expiry of the verdicts behind these facts

    def as_image(self) -> dict[str, Any]:
        """The image section's verified fields (merge into ``{"reference": …}``)."""
        out: dict[str, Any] = {"digest": self.digest, "signatures": list(self.signatures),
                               "verification": {"error": self.error, "failures": list(self.failures)}}
        if self.tuf is not None:
            out["tuf"] = self.tuf
        return out


def verify_facts(client: RegistryClient, reference: str, requirements: Sequence[Requirements], *,
                 cache: VerificationCache | None = None, digest: str | None = None) -> ImageFacts:
    """Verify ``reference`` against every one of ``requirements`` at one digest (``digest`` when the
    caller already knows what it will run, else what the first verification resolves the tag to).
    Registry and trust failures become ``error``: the caller's policy fails closed."""
    from engine.reference import Reference
    from trust.verify import verify_image

    facts = ImageFacts(reference, digest=digest)
    try:
        ref = Reference.parse(reference)
        if digest is not None and ref.digest is None:
            ref = ref.with_digest(digest)  # the tag stays: TUF vouches for it
        for req in requirements:
            verdict = verify_image(client, ref, req, cache=cache)
            if verdict.cached:
                facts.cache_hits += 1
            else:
                facts.cache_misses += 1
            if facts.digest is None:
                facts.digest = verdict.digest
                ref = ref.with_digest(verdict.digest)
            if verdict.expires is not None:
                facts.expires = verdict.expires if facts.expires is None else min(facts.expires, verdict.expires)
            facts.signatures += signature_facts(verdict)
            facts.failures += failure_reasons(verdict)
            facts.tuf = _worse_tuf(facts.tuf, tuf_fact(verdict))
    except StockadeError as exc:
        facts.error = str(exc)
    return facts


class OnDemandClient:
    """A ``RegistryClient`` made on first use: a verification the cache answers never loads the
    network code (``http.client``, ``ssl``) nor connects anywhere."""

    def __init__(self, config: Config, paths: Paths) -> None:
        self._config, self._paths = config, paths
        self._client: RegistryClient | None = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            from engine.registry.client import RegistryClient

            self._client = RegistryClient(self._config, self._paths)
        return getattr(self._client, name)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


class PolicyVerifier:
    """Verifies images against policy requirements for one command: one registry client (made on a
    cache miss), the verification cache, each requirement converted for trust once."""

    def __init__(self, config: Config, paths: Paths, *, use_cache: bool = True) -> None:
        from trust.cache import VerificationCache

        self.paths = paths
        self.client = OnDemandClient(config, paths)
        self.cache = VerificationCache.for_paths(paths.cache) if use_cache else None
        self._converted: dict[SignatureRequirement, Requirements] = {}

    def verify(self, reference: str, requirements: Sequence[SignatureRequirement], *,
               digest: str | None = None) -> ImageFacts:
        """The facts for ``reference`` under ``requirements`` (see ``verify_facts``); a requirement
        trust cannot use (an unsupported key, a bad pattern) is a verification error: fail closed."""
        try:
            reqs = [self._trust(r) for r in requirements]
        except StockadeError as exc:
            return ImageFacts(reference, digest=digest, error=f"the policy's signature requirement cannot "
                                                              f"be used: {exc}")
        return verify_facts(self.client, reference, reqs, cache=self.cache, digest=digest)

    def _trust(self, requirement: SignatureRequirement) -> Requirements:
        found = self._converted.get(requirement)
        if found is None:
            found = trust_requirements(requirement, trusted_root=None, tuf_cache=self.paths.cache / "tuf")
            self._converted[requirement] = found
        return found

    def close(self) -> None:
        self.client.close()


class PolicySignatures:
    """The audit's IMG-009 seam (``hardening.audit.targets.SignatureVerifier``): an image passes when
    the policy's signature rules hold for it, exactly as ``run`` would judge them."""

    def __init__(self, policy: Policy, verifier: PolicyVerifier) -> None:
        self.policy, self.verifier = policy, verifier

    def verify(self, image: ImageRecord) -> SignatureVerdict:
        from hardening.audit.model import CheckError, Skip
        from hardening.audit.targets import SignatureVerdict
        from policies import evaluate, requirements_for
        from policies.loader import SIGNATURE_RULES

        if not image.tags:
            raise Skip("the image has no name, and signatures are found through its repository")
        if image.digest is None:
            raise Skip("the image's manifest digest is unknown, so no signature can be matched to it")
        name = image.tags[0]
        requirements = requirements_for(self.policy, name)
        if not requirements:
            return SignatureVerdict(False, f"policy {self.policy.label} requires no signature for {name}: "
                                           "nothing proves who built it")
        facts = self.verifier.verify(name, requirements, digest=image.signed_digest or image.digest)
        if facts.error is not None:
            raise CheckError(f"cannot verify the signatures of {name}: {facts.error}")
        decision = evaluate(self.policy, {"image": {"reference": name, **facts.as_image()}, "container": {}})
        problems = [r.finding.message for r in decision.results if r.finding.rule in SIGNATURE_RULES]
        if problems:
            return SignatureVerdict(False, "; ".join(problems))
        signers = [f"key {s['keyId'][:16]}" if s["kind"] == "key" else f"identity {s['subject']}"
                   for s in facts.signatures]
        return SignatureVerdict(True, f"signed by {', '.join(dict.fromkeys(signers))} "
                                      f"(policy {self.policy.label})")
